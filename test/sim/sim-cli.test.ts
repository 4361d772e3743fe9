// `dormouse sim` as a user runs it: the real bin spawned with node, stdout and
// stderr as pipes (not a terminal, as in CI or `> log`), its exit code read.
// Each run is a few hundred devices or a few seconds of wall time.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../sim/brokers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'dormouse.mjs');
const live = new Set<ChildProcess>();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `dormouse ARGS`, from source, stdin closed; resolves when it exits (killed after `ms`). */
function dormouse(args: readonly string[], ms = 60_000): Promise<Run> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { cwd: ROOT, env: { ...process.env, DORMOUSE_FROM_SOURCE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

afterAll(() => {
  for (const c of live) c.kill('SIGKILL');
});

describe('dormouse sim, run as a user runs it', () => {
  it('says what runs (the fleet that runs, not the one in the file), prints progress lines on stderr without a terminal, and keeps --json stdout to one line', async () => {
    const r = await dormouse(['sim', 'storm', '--devices', '300', '--variant', 'no-backoff', '--variant', 'full-jitter', '--json', '--progress', '0.2']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe(
      'dormouse sim: storm: runs 300 devices for 420 s + 60 s drain of virtual time: the Dormouse core against a broker model (sim/broker-model.ts) on a virtual clock: no sockets, no real broker (the scenario has 5,000 devices)',
    );
    const progress = lines.filter((l) => l.startsWith('progress: '));
    expect(progress.length, r.stderr).toBeGreaterThanOrEqual(1);
    for (const l of progress) expect(l).toMatch(/^progress: +\d+ % \((no-backoff|full-jitter)\), \d+ s elapsed(, about \d+ s left)?$/);
    expect(r.stderr).not.toMatch(/\r|\x1b/); // no bar drawn into a pipe
    const out = r.stdout.split('\n');
    expect(out).toHaveLength(2);
    expect(out[1]).toBe('');
    const json = JSON.parse(out[0]) as { ok: boolean; run: { devices: number; scenarioDevices: number }; variants: Array<{ devices: number }> };
    expect(json.ok).toBe(true);
    expect(json.run).toMatchObject({ devices: 300, scenarioDevices: 5000 });
    expect(json.variants.map((v) => v.devices)).toEqual([300, 300]);
  });

  it('the text summary names the device count that ran and the override; --progress 0 is silent', async () => {
    const r = await dormouse(['sim', 'trucks', '--devices', '40', '--duration', '600', '--progress', '0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('runs 40 devices for 600 s + 300 s drain of virtual time: the Dormouse core against a broker model');
    expect(r.stdout).toContain('(the scenario has 5,000 devices; the scenario runs 3,000 s; its faults are scaled into this run)');
    expect(r.stdout).toMatch(/^scenario as written, for 5,000 devices: 5,000 trucks/m);
    expect(r.stdout).toMatch(/^guarantees: every accepted QoS 1\/2 message \([\d,]+\) reached the broker/m);
    expect(r.stderr).not.toContain('progress:');
  });

  it('a run that accepted nothing fails (exit 3, a line that says why), in real time and in virtual time', async () => {
    // Always-on devices publish first after fleet.everyS (60 s): a 2 s run has nothing to check.
    const rt = await dormouse(['sim', 'storm', '--realtime', '--devices', '3', '--duration', '2', '--variant', 'full-jitter']);
    expect(rt.code, rt.stderr).toBe(3);
    expect(rt.stderr).toContain("dormouse sim: run failed: full-jitter: no message was accepted: no device published a reading (the run, 2 s, is shorter than the devices' period, fleet.everyS 60 s)");
    expect(rt.stdout).toContain('RUN FAILED: it could not do its work');
    expect(rt.stdout).not.toContain('guarantees: every accepted');
    const vt = await dormouse(['sim', 'storm', '--devices', '5', '--duration', '30', '--variant', 'full-jitter', '--json']);
    expect(vt.code, vt.stderr).toBe(3);
    const json = JSON.parse(vt.stdout) as { ok: boolean; failures: string[] };
    expect(json.ok).toBe(false);
    expect(json.failures).toEqual([expect.stringContaining('full-jitter: no message was accepted')]);
  });

  it('a real-time run against a broker that is not there fails at once, saying so', async () => {
    const port = await freePort();
    const r = await dormouse(['sim', 'battery', '--realtime', '--broker', `mqtt://127.0.0.1:${port}`, '--devices', '2', '--duration', '2']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`dormouse sim: run failed, nothing was tested: cannot reach the broker at mqtt://127.0.0.1:${port}: connect ECONNREFUSED`);
    expect(r.stdout).toBe('');
    expect(r.ms).toBeLessThan(20_000);
  });

  it('an unknown scenario name lists the shipped ones (exit 2)', async () => {
    const names = readdirSync(path.join(ROOT, 'sim/scenarios')).map((f) => f.replace(/\.yaml$/, '')).sort();
    expect(names).toEqual(['battery', 'storm', 'trucks']);
    const r = await dormouse(['sim', 'truks']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`dormouse sim: truks: no such file, and no shipped scenario of that name: the shipped scenarios are ${names.join(', ')}`);
    const p = await dormouse(['plan', 'storms']);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('storms: no such file, and no shipped scenario of that name: the shipped scenarios are battery, storm, trucks');
  });
});
