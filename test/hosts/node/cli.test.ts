// The `dormouse` command as a user runs it: the real bin spawned with node,
// talking to Debian's mosquitto on 127.0.0.1. The centre piece kills
// `dormouse pub -l -q 2 --session-file` with SIGKILL at seeded random moments
// and restarts it on the same full input until it exits 0; a persistent
// `dormouse sub` must see every line exactly once and in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMosquitto, freePort, startMosquitto, type MosquittoHandle } from '../../support/brokers.js';
import { Prng } from '../../support/prng.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'dormouse.mjs');
const HOST = '127.0.0.1';
const live = new Set<ChildProcess>();

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Cli {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  exited: Promise<Exit>;
  /** Resolves once stdout matches `re` (or passes it); rejects if the process exits first or after `ms`. */
  waitFor(re: RegExp | ((stdout: string) => boolean), ms?: number): Promise<void>;
}

/** Spawns `node --import tsx bin/dormouse.mjs ...args` (from source), with `input` on stdin. */
function start(args: readonly string[], input?: string | Buffer): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, DORMOUSE_FROM_SOURCE: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let exitedNow = false;
  const watchers = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => { out.push(d); for (const w of watchers) w(); });
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  child.stdin!.on('error', () => {}); // killed while we were still writing
  child.stdin!.end(input ?? '');
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedNow = true;
      live.delete(child);
      // Let the pipes drain before anyone reads stdout/stderr.
      const done = (): void => resolve({ code, signal });
      if (child.stdout!.readableEnded && child.stderr!.readableEnded) done();
      else Promise.all([once(child.stdout!, 'close'), once(child.stderr!, 'close')]).then(done);
      for (const w of watchers) w();
    });
  });
  const cli: Cli = {
    child,
    get stdout() { return Buffer.concat(out).toString(); },
    get stderr() { return Buffer.concat(err).toString(); },
    exited,
    waitFor(re, ms = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => { watchers.delete(check); reject(new Error(`no ${re} within ${ms} ms; stdout: ${cli.stdout}\nstderr: ${cli.stderr}`)); }, ms);
        const check = (): void => {
          if (typeof re === 'function' ? re(cli.stdout) : re.test(cli.stdout)) {
            clearTimeout(t);
            watchers.delete(check);
            resolve();
          } else if (exitedNow) {
            clearTimeout(t);
            watchers.delete(check);
            reject(new Error(`exited before ${re}; stdout: ${cli.stdout}\nstderr: ${cli.stderr}`));
          }
        };
        watchers.add(check);
        check();
      });
    },
  };
  return cli;
}

function once(s: NodeJS.EventEmitter, ev: string): Promise<void> {
  return new Promise((r) => s.once(ev, () => r()));
}

interface Result extends Exit {
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs to completion (SIGKILL after `ms`, which fails the caller's expectations on code). */
async function run(args: readonly string[], input?: string | Buffer, ms = 10_000): Promise<Result> {
  const t0 = Date.now();
  const c = start(args, input);
  const timer = setTimeout(() => c.child.kill('SIGKILL'), ms);
  const e = await c.exited;
  clearTimeout(timer);
  return { ...e, stdout: c.stdout, stderr: c.stderr, ms: Date.now() - t0 };
}

/** A subscriber started with -d, resolved once its SUBACK is in; `lines()` drops the debug lines. */
async function startSub(args: readonly string[]): Promise<Cli & { lines(): string[] }> {
  const c = start(['sub', '-d', ...args]);
  await c.waitFor(/^Subscribed \(mid: /m);
  return Object.assign(c, {
    lines: () => c.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('Client ') && !l.startsWith('Subscribed (mid: ')),
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(() => {
  for (const c of live) c.kill('SIGKILL');
});

describe('dormouse: arguments and connection failures (no broker needed)', () => {
  it('bad arguments: one line on stderr, exit 1', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['pub', '-t', 'a'], /^Error: Both topic and message must be supplied\. Use 'dormouse pub --help' to see usage\.\n$/],
      [['sub', '-t', 'a', '-q', '3'], /^Error: Invalid QoS given: 3\. Use 'dormouse sub --help' to see usage\.\n$/],
      [['pub', '-t', 'a/+', '-m', 'x'], /^Error: Invalid publish topic 'a\/\+'.*\n$/],
      [['pub', '-t', 'a', '-m', 'x', '--bogus'], /^Error: Unknown option '--bogus'\. Use 'dormouse pub --help' to see usage\.\n$/],
      [['pub', '-t', 'a', '-l', '-q', '1', '--session-file', '/tmp/x'], /^Error: --session-file needs a fixed client id \(-i\).*\n$/],
      [['frob'], /^Error: Unknown command 'frob'.*\n$/],
    ];
    // Six Node processes at once: on a loaded machine their start-up alone can take 10 s (the default kill).
    const results = await Promise.all(cases.map(([args]) => run(args, undefined, 30_000)));
    results.forEach((r, k) => {
      expect(r.code, cases[k]![0].join(' ')).toBe(1);
      expect(r.stderr).toMatch(cases[k]![1]);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    });
  });

  it('--help prints the usage on stdout and exits 1, as mosquitto_pub does', async () => {
    const r = await run(['pub', '--help']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^dormouse pub is a simple MQTT client/);
    expect(r.stdout).toMatch(/--session-file/);
  });

  it('an unreachable broker: "Error: Connection refused", exit 1, at once (no retrying)', async () => {
    const port = await freePort();
    const [p, s] = await Promise.all([
      run(['pub', '-h', HOST, '-p', String(port), '-t', 'a', '-m', 'x', '-q', '1']),
      run(['sub', '-h', HOST, '-p', String(port), '-t', 'a']),
    ]);
    for (const r of [p, s]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('Error: Connection refused\n');
      expect(r.ms).toBeLessThan(5000);
    }
  });
});

describeMosquitto('dormouse pub and sub through mosquitto', () => {
  let broker: MosquittoHandle;
  let dir: string;
  let common: string[];
  beforeAll(async () => {
    broker = await startMosquitto();
    dir = mkdtempSync(path.join(tmpdir(), 'dormouse-cli-'));
    common = ['-h', HOST, '-p', String(broker.port)];
  });
  afterAll(async () => {
    for (const c of live) c.kill('SIGKILL');
    await broker?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const version of ['mqttv311', 'mqttv5'] as const) {
    it(`${version}: -m, -f and -n reach sub -v -C, which exits 0`, async () => {
      const t = `cli/${version}`;
      const file = path.join(dir, `payload-${version}.txt`);
      writeFileSync(file, 'from a file\nwith two lines');
      const sub = await startSub([...common, '-V', version, '-t', `${t}/#`, '-q', '2', '-v', '-C', '3']);
      const pubs = [
        ['-t', `${t}/m`, '-m', 'hello', '-q', '0'],
        ['-t', `${t}/f`, '-f', file, '-q', '1'],
        ['-t', `${t}/n`, '-n', '-q', '2'],
      ];
      for (const args of pubs) {
        const r = await run(['pub', ...common, '-V', version, ...args]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      }
      expect((await sub.exited).code).toBe(0);
      expect(sub.lines()).toEqual([`${t}/m hello`, `${t}/f from a file`, 'with two lines', `${t}/n (null)`]);
    });
  }

  it('-l publishes every line in order, empty lines included; -N prints without newlines', async () => {
    const sub = await startSub([...common, '-t', 'cli/lines', '-q', '1', '-C', '5', '-N']);
    const r = await run(['pub', ...common, '-t', 'cli/lines', '-l', '-q', '1'], 'one\ntwo\n\nfour\nfive');
    expect(r.code).toBe(0);
    expect((await sub.exited).code).toBe(0);
    // -d lines end with '\n'; the payloads (-N) do not.
    expect(sub.stdout.replace(/(Client|Subscribed) [^\n]*\n/g, '')).toBe('onetwofourfive');
  });

  it('-r retains; sub -R hides it (and -W exits 27), plain sub and --retained-only show it', async () => {
    expect((await run(['pub', ...common, '-t', 'cli/r', '-m', 'kept', '-r', '-q', '1'])).code).toBe(0);
    const hidden = await run(['sub', ...common, '-t', 'cli/r', '-R', '-W', '1']);
    expect(hidden.code).toBe(27);
    expect(hidden.stdout).toBe('');
    expect(hidden.stderr).toBe('Timed out\n');
    const shown = await run(['sub', ...common, '-t', 'cli/r', '-v', '-C', '1', '-W', '5']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toBe('cli/r kept\n');
    // --retained-only prints retained messages and exits at the first live one (not printed).
    const only = start(['sub', ...common, '-t', 'cli/r', '-v', '--retained-only', '-W', '5']);
    await only.waitFor(/^cli\/r kept\n/);
    expect((await run(['pub', ...common, '-t', 'cli/r', '-m', 'live'])).code).toBe(0);
    expect((await only.exited).code).toBe(0);
    expect(only.stdout).toBe('cli/r kept\n');
    expect((await run(['pub', ...common, '-t', 'cli/r', '-n', '-r'])).code).toBe(0); // clear it
  });

  it('sub -W without -C exits 27 after the timeout; -C stops at the count', async () => {
    const t0 = Date.now();
    const r = await run(['sub', ...common, '-t', 'cli/quiet', '-W', '1']);
    expect(r.code).toBe(27);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    const sub = await startSub([...common, '-t', 'cli/count', '-C', '2']);
    await run(['pub', ...common, '-t', 'cli/count', '-l'], 'a\nb\nc\n');
    expect((await sub.exited).code).toBe(0);
    expect(sub.lines()).toEqual(['a', 'b']);
  });

  it('a refused CONNACK prints the reason and exits with its code (MQTT 5: 140 bad authentication method)', async () => {
    const r = await run(['pub', ...common, '-V', 'mqttv5', '-D', 'connect', 'authentication-method', 'nope', '-t', 'a', '-m', 'x']);
    expect(r.code).toBe(140);
    expect(r.stderr).toBe('Connection error: Connection Refused: bad authentication method.\n');
  });

  it('-d prints mosquitto-style packet lines', async () => {
    const r = await run(['pub', ...common, '-d', '-i', 'cli-debug', '-t', 'cli/d', '-m', 'hello', '-q', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      'Client cli-debug sending CONNECT',
      'Client cli-debug received CONNACK (0)',
      "Client cli-debug sending PUBLISH (d0, q2, r0, m1, 'cli/d', ... (5 bytes))",
      'Client cli-debug received PUBREC (Mid: 1)',
      'Client cli-debug sending PUBREL (m1)',
      'Client cli-debug received PUBCOMP (Mid: 1, RC:0)',
      'Client cli-debug sending DISCONNECT',
      '',
    ].join('\n'));
  });

  for (const [how, extra] of [['-c -i', []], ['--session-file', ['--session-file', 'SESSION']]] as const) {
    it(`a persistent sub (${how}) receives what was queued while it was away`, async () => {
      const file = path.join(dir, `away-${how.length}`);
      const args = [...common, '-V', 'mqttv5', '-c', '-i', `away-${how.length}`, '-q', '1', '-t', 'cli/away', ...extra.map((a) => (a === 'SESSION' ? file : a))];
      expect((await run(['sub', ...args, '-E'])).code).toBe(0);
      expect((await run(['pub', ...common, '-t', 'cli/away', '-l', '-q', '1'], 'x\ny\nz\n')).code).toBe(0);
      const r = await run(['sub', ...args, '-C', '3', '-W', '5']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('x\ny\nz\n');
    });
  }

  /**
   * `pub -l --session-file` killed (SIGKILL) at seeded random moments and
   * restarted on the same full input until it exits 0. Most kills land after
   * a random number (1-80) of new PUBLISHes in its -d output, so mid-stream
   * whatever the machine's speed; some land anywhere from the spawn
   * (start-up, connecting). Returns what a persistent sub printed.
   */
  async function killAndRestart(qos: 1 | 2, n: number, seed: number, version: 'mqttv311' | 'mqttv5') {
    const rng = new Prng(seed);
    const topic = `cli/kill/q${qos}`;
    const input = Array.from({ length: n }, (_, k) => `line-${String(k + 1).padStart(4, '0')}`).join('\n') + '\n';
    const subFile = path.join(dir, `kill-sub-${qos}`);
    const subArgs = [...common, '-V', version, '-q', String(qos), '-c', '-i', `kill-sub-${qos}`, '--session-file', subFile, '-t', topic];
    expect((await run(['sub', ...subArgs, '-E'])).code).toBe(0);
    const sub = start(['sub', ...subArgs]);
    const pubFile = path.join(dir, `kill-pub-${qos}`);
    const pubArgs = ['pub', ...common, '-V', version, '-d', '-l', '-q', String(qos), '-c', '-i', `kill-pub-${qos}`, '--session-file', pubFile, '-t', topic];
    const log: string[] = [];
    let kills = 0;
    let resent = 0;
    let runs = 0;
    for (;;) {
      runs++;
      if (runs > 20) throw new Error(`no clean exit in 20 runs:\n${log.join('\n')}`);
      const p = start(pubArgs, input);
      let how = 'ran to the end';
      if (kills < 12) {
        if (rng.bool(0.8)) {
          const after = rng.int(1, 80);
          how = `kill after ${after} new PUBLISHes`;
          await p.waitFor((out) => out.split('sending PUBLISH (d0').length > after, 5000).catch(() => {});
        } else {
          // Anywhere from the spawn, but never past 80 new PUBLISHes: every kill leaves work for the next run.
          const ms = rng.int(0, 600);
          how = `kill ${ms} ms after spawn`;
          await Promise.race([sleep(ms), p.waitFor((out) => out.split('sending PUBLISH (d0').length > 80, 5000).catch(() => {})]);
        }
        if (p.child.exitCode === null && p.child.signalCode === null) {
          p.child.kill('SIGKILL');
          kills++;
        }
      } else {
        setTimeout(() => p.child.kill('SIGKILL'), 15_000).unref();
      }
      const e = await p.exited;
      const published = (p.stdout.match(/sending PUBLISH \(d0/g) ?? []).length;
      const dups = (p.stdout.match(/sending PUBLISH \(d1/g) ?? []).length;
      log.push(`run ${runs}: ${how}: ${e.signal ?? `exit ${e.code}`}, ${published} new PUBLISHes, ${dups} resent with DUP; ${p.stderr.trim()}`);
      // A restarted run that held unacknowledged PUBLISHes resends them first, with DUP.
      if (dups > 0) resent++;
      if (e.signal === 'SIGKILL') continue;
      expect(e.code, log.join('\n')).toBe(0);
      break;
    }
    // Everything was acknowledged by the broker before the last run exited; give the sub a moment.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && new Set(sub.stdout.split('\n').filter(Boolean)).size < n) await sleep(20);
    await sleep(300); // late duplicates, if any, would show up now
    sub.child.kill('SIGTERM');
    const stuck = setTimeout(() => sub.child.kill('SIGKILL'), 5000);
    expect((await sub.exited).code, `sub after SIGTERM: ${sub.stderr}`).toBe(0);
    clearTimeout(stuck);
    const got = sub.stdout.split('\n').filter(Boolean);
    const want = input.trimEnd().split('\n');
    return { got, want, kills, runs, resent, log };
  }

  it('THE KEY TEST: pub -l -q 2 --session-file, SIGKILLed and restarted on the same input: every line exactly once, in order', async () => {
    const seed = Number(process.env.DORMOUSE_CLI_SEED ?? 0x5eed2);
    const t0 = Date.now();
    const { got, want, kills, runs, resent, log } = await killAndRestart(2, 300, seed, 'mqttv311');
    console.info(`[cli kill test pub q2] seed ${seed}: ${kills} kills, ${runs} runs, ${resent} runs resent with DUP, ${Date.now() - t0} ms`);
    expect(kills, log.join('\n')).toBeGreaterThanOrEqual(3);
    expect(got, log.join('\n')).toEqual(want);
  });

  it('the same at QoS 1 over MQTT 5: no line lost, duplicates only from resends (counted), first copies in order', async () => {
    const seed = Number(process.env.DORMOUSE_CLI_SEED ?? 0x5eed1);
    const t0 = Date.now();
    const { got, want, kills, runs, log } = await killAndRestart(1, 300, seed, 'mqttv5');
    const firsts: string[] = [];
    const seen = new Set<string>();
    for (const l of got) if (!seen.has(l)) { seen.add(l); firsts.push(l); }
    console.info(`[cli kill test pub q1] seed ${seed}: ${kills} kills, ${runs} runs, ${got.length - firsts.length} duplicates, ${Date.now() - t0} ms`);
    expect(kills, log.join('\n')).toBeGreaterThanOrEqual(3);
    expect(firsts, log.join('\n')).toEqual(want);
    for (const l of got) expect(want).toContain(l);
  });

  it('a persistent sub -q 2 --session-file SIGKILLed and restarted: no line printed twice, in order, at most one lost per kill', async () => {
    // The core writes an incoming QoS 2 id to the session file before the
    // message is handed over, so a resent PUBLISH is never printed again. A
    // kill between that write and the write to stdout would lose it; sub
    // fsyncs only before bytes leave, so that gap is microseconds (with the
    // fsync inside it, nearly every kill mid-burst lost one message).
    const seed = Number(process.env.DORMOUSE_CLI_SEED ?? 0x5eed3);
    const rng = new Prng(seed);
    const n = 300;
    const topic = 'cli/kill/sub';
    const want = Array.from({ length: n }, (_, k) => `msg-${String(k + 1).padStart(4, '0')}`);
    const subArgs = ['sub', ...common, '-q', '2', '-c', '-i', 'kill-sub-side', '--session-file', path.join(dir, 'kill-sub-side'), '-t', topic];
    expect((await run([...subArgs, '-E'])).code).toBe(0);
    const pub = start(['pub', ...common, '-l', '-q', '2', '-c', '-i', 'kill-sub-side-pub', '--session-file', path.join(dir, 'kill-sub-side-pub'), '-t', topic], want.join('\n') + '\n');
    const got: string[] = [];
    let kills = 0;
    for (let runs = 1; runs <= 30; runs++) {
      const s = start(subArgs);
      if (kills < 6) {
        const after = rng.int(1, 60);
        await s.waitFor((out) => out.split('\n').length > after, 5000).catch(() => {});
        if (s.child.exitCode === null && s.child.signalCode === null) {
          s.child.kill('SIGKILL');
          kills++;
        }
      } else {
        await s.waitFor((out) => got.length + out.split('\n').length - 1 >= n - kills, 10_000).catch(() => {});
        await sleep(300); // late duplicates would show up now
        s.child.kill('SIGTERM');
        setTimeout(() => s.child.kill('SIGKILL'), 5000).unref();
      }
      const killed = (await s.exited).signal === 'SIGKILL';
      got.push(...s.stdout.split('\n').filter(Boolean));
      if (!killed) break;
    }
    expect((await pub.exited).code).toBe(0);
    const index = got.map((l) => want.indexOf(l));
    const lost = want.filter((l) => !got.includes(l));
    console.info(`[cli kill test sub q2] seed ${seed}: ${kills} kills, ${got.length} printed, ${lost.length} lost ${lost.join(' ')}`);
    expect(index.every((k) => k >= 0)).toBe(true);
    expect(index.every((k, i) => i === 0 || k > index[i - 1]!), got.join(' ')).toBe(true); // in order, no duplicates
    expect(lost.length).toBeLessThanOrEqual(kills); // in practice 0: see above
    expect(kills).toBeGreaterThanOrEqual(3);
  });
});
