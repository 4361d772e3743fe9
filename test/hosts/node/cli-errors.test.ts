// What `dormouse pub` and `dormouse sub` say when something is wrong, run as a
// user runs them: the bin in a child process, its stderr and exit code.
// Session files that cannot be used or are damaged, and connections that fail
// in ways that used to mislead. Permission tests run the child as nobody when
// the suite runs as root (root ignores file permissions; CI runs as root).
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMosquitto, startMosquitto, type MosquittoHandle } from '../../support/brokers.js';
import { makeTestPki, type TestPki } from '../../support/certs.js';
import { connect } from '../../../hosts/node/client.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'dormouse.mjs');
const live = new Set<ChildProcess>();
const AS_ROOT = process.getuid?.() === 0;
/** nobody: an unprivileged user for the permission tests when the suite runs as root. */
const NOBODY = { uid: 65534, gid: 65534 };

const work = mkdtempSync(path.join(tmpdir(), 'dormouse-cli-errors-'));
chmodSync(work, 0o777); // nobody's children write here too
afterAll(() => {
  for (const c of live) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
let n = 0;
const fresh = (): string => {
  const d = path.join(work, `case${n++}`);
  mkdirSync(d, { mode: 0o777 });
  chmodSync(d, 0o777);
  return d;
};

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<Result>;
}

function start(args: readonly string[], opts: { input?: string; unprivileged?: boolean } = {}): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, DORMOUSE_FROM_SOURCE: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(opts.unprivileged && AS_ROOT ? NOBODY : {}),
  });
  live.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  child.stdin!.on('error', () => {});
  child.stdin!.end(opts.input ?? '');
  const done = new Promise<Result>((resolve) => {
    child.once('close', (code) => {
      live.delete(child);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
  return { child, stdout: () => Buffer.concat(out).toString(), stderr: () => Buffer.concat(err).toString(), done };
}

async function run(args: readonly string[], opts: { input?: string; unprivileged?: boolean; ms?: number } = {}): Promise<Result> {
  const r = start(args, opts);
  const t = setTimeout(() => r.child.kill('SIGKILL'), opts.ms ?? 15_000);
  const res = await r.done;
  clearTimeout(t);
  return res;
}

/** Exactly one line on stderr, no stack trace. */
function oneLine(r: Result): string {
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('dormouse: a --session-file that cannot be used is one line on stderr, exit 1 (no broker needed)', () => {
  // The broker address is never reached: the session file is checked first.
  const pub = (file: string) => ['pub', '-p', '1', '-t', 'a', '-m', 'x', '-q', '1', '-i', 'dev', '--session-file', file];

  it('under a regular file', async () => {
    const d = fresh();
    writeFileSync(path.join(d, 'plain'), 'x');
    const r = await run(pub(path.join(d, 'plain', 'sub', 'session')));
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(`Error: cannot create the session directory "${path.join(d, 'plain', 'sub')}": "${path.join(d, 'plain')}" is a file, not a directory.`);
  });

  it('in a directory the user cannot write, or cannot create', async () => {
    const d = fresh();
    const locked = path.join(d, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    const inside = await run(pub(path.join(locked, 'session')), { unprivileged: true });
    expect(inside.code).toBe(1);
    expect(oneLine(inside)).toBe(`Error: cannot write the session files in "${locked}": permission denied.`);
    const below = await run(pub(path.join(locked, 'new', 'session')), { unprivileged: true });
    expect(below.code).toBe(1);
    expect(oneLine(below)).toBe(`Error: cannot create the session directory "${path.join(locked, 'new')}": permission denied.`);
    expect(readdirSync(locked)).toEqual([]);
  });

  it('a file that is not a dormouse session is refused and left as it was', async () => {
    const d = fresh();
    const prefix = path.join(d, 'notes');
    const foreign = '#!/bin/sh\necho my own script\n';
    writeFileSync(`${prefix}.0`, foreign);
    const r = await run(pub(prefix));
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(`Error: "${prefix}.0" is not a dormouse session file: refusing to overwrite it (move it away, or choose another session file).`);
    expect(readFileSync(`${prefix}.0`, 'utf8')).toBe(foreign);
    expect(readdirSync(d)).toEqual(['notes.0']);
    // Random bytes are not ours either.
    writeFileSync(`${prefix}.0`, Uint8Array.from({ length: 300 }, (_, i) => (i * 151 + 7) & 0xff));
    writeFileSync(`${prefix}.1`, Uint8Array.from({ length: 200 }, (_, i) => (i * 89 + 3) & 0xff));
    const r2 = await run(pub(prefix));
    expect(r2.code).toBe(1);
    expect(oneLine(r2)).toMatch(/are not dormouse session files: refusing to overwrite it/);
  });
});

describeMosquitto('dormouse: session files against mosquitto', () => {
  let broker: MosquittoHandle;
  const brokerReady = startMosquitto({ persistence: false }).then((b) => (broker = b));
  afterAll(async () => { await brokerReady; await broker.dispose(); });

  it('both slots damaged (a flipped byte in each, or cut short): the bytes are kept beside it, stderr says so, a new session starts', async () => {
    await brokerReady;
    const port = String(broker.port);
    for (const damage of ['flip', 'truncate'] as const) {
      const d = fresh();
      const prefix = path.join(d, 'dev');
      const args = ['pub', '-p', port, '-t', 'damaged/t', '-m', 'x', '-q', '1', '-i', `dmg-${damage}`, '--session-file', prefix];
      const first = await run(args);
      expect(first.code, first.stderr).toBe(0);
      expect(existsSync(`${prefix}.0`) && existsSync(`${prefix}.1`)).toBe(true);
      const damaged: Buffer[] = [];
      for (const slot of [0, 1]) {
        const b = readFileSync(`${prefix}.${slot}`);
        const bad = damage === 'flip' ? Buffer.from(b) : b.subarray(0, 20 + slot * 7);
        if (damage === 'flip') bad[30] ^= 0x04;
        writeFileSync(`${prefix}.${slot}`, bad);
        damaged.push(bad);
      }
      const again = await run(args);
      expect(again.code, again.stderr).toBe(0);
      const line = oneLine(again);
      expect(line).toMatch(new RegExp(`^Warning: the session in ${prefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} was damaged \\(no readable copy in either slot\\): its bytes are kept in .*dev\\.0\\.damaged-\\d{8}T\\d{6}Z and .*dev\\.1\\.damaged-\\d{8}T\\d{6}Z; starting a new session\\.$`));
      const kept = readdirSync(d).filter((f) => f.includes('.damaged-')).sort();
      expect(kept).toHaveLength(2);
      expect(readFileSync(path.join(d, kept[0]!))).toEqual(damaged[0]);
      expect(readFileSync(path.join(d, kept[1]!))).toEqual(damaged[1]);
      // The new session works: a third run restores it without a word.
      const third = await run(args);
      expect(third.code, third.stderr).toBe(0);
      expect(third.stderr).toBe('');
    }
  });

  it('a session write that fails after connecting (permissions changed under a running sub): one line, exit 1', async () => {
    await brokerReady;
    const port = String(broker.port);
    const d = fresh();
    const prefix = path.join(d, 'reader');
    const sub = start(['sub', '-d', '-p', port, '-t', 'late/t', '-q', '2', '-i', 'late-reader', '--session-file', prefix], { unprivileged: true });
    for (let k = 0; k < 200 && !/^Subscribed \(mid: /m.test(sub.stdout()); k++) await new Promise((r) => setTimeout(r, 50));
    expect(sub.stdout()).toMatch(/^Subscribed \(mid: /m);
    for (const slot of [0, 1]) if (existsSync(`${prefix}.${slot}`)) chmodSync(`${prefix}.${slot}`, 0o444);
    chmodSync(d, 0o555); // a slot not written yet cannot be created either
    // An incoming QoS 2 message: its id must be in the session before it is printed.
    const pub = await run(['pub', '-p', port, '-t', 'late/t', '-m', 'm', '-q', '2']);
    expect(pub.code, pub.stderr).toBe(0);
    const t = setTimeout(() => sub.child.kill('SIGKILL'), 10_000);
    const r = await sub.done;
    clearTimeout(t);
    chmodSync(d, 0o777);
    expect(r.code, r.stderr).toBe(1);
    expect(oneLine(r)).toMatch(new RegExp(`^Error: cannot write the session file "${prefix}\\.[01]": permission denied\\.$`));
    expect(r.stdout).not.toMatch(/^m$/m);
  });
});

/** mosquitto_pub's own answer to the same command line, when mosquitto-clients is installed (to compare exit codes). */
async function mosquittoPub(shellArgs: string): Promise<{ code: number | null; stderr: string } | null> {
  if (spawnSync('sh', ['-c', 'command -v mosquitto_pub'], { encoding: 'utf8' }).status !== 0) return null;
  // Not spawnSync: a server in this process has to answer it.
  const child = spawn('sh', ['-c', `exec mosquitto_pub ${shellArgs}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b; });
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((r) => child.once('close', r));
  clearTimeout(t);
  return { code, stderr };
}

describe('dormouse: connections that fail say what happened (no broker needed)', () => {
  let server: net.Server;
  let port = 0;
  const ready = new Promise<void>((resolve) => {
    // Accepts, reads the CONNECT, closes: an overloaded broker, a wrong port behind a proxy.
    server = net.createServer((s) => { s.on('error', () => {}); s.once('data', () => s.destroy()); });
    server.listen(0, '127.0.0.1', () => { port = (server.address() as net.AddressInfo).port; resolve(); });
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('a server that accepts and closes: pub says the connection was lost and exits 7, as mosquitto_pub', async () => {
    await ready;
    const p = String(port);
    const plain = await run(['pub', '-p', p, '-t', 'a', '-m', 'x']);
    const d = fresh();
    const withFile = await run(['pub', '-p', p, '-t', 'a', '-m', 'x', '-q', '1', '-i', 'dev', '--session-file', path.join(d, 's')]);
    for (const r of [plain, withFile]) {
      expect(r.code, r.stderr).toBe(7);
      expect(oneLine(r)).toBe('Error: The connection was lost: the server closed it before CONNACK.');
    }
    const theirs = await mosquittoPub(`-p ${p} -t a -m x`);
    if (theirs) {
      expect(theirs.stderr).toMatch(/The connection was lost/);
      expect(plain.code).toBe(theirs.code);
    }
  });

  it('sub against the same server keeps reconnecting with backoff (as mosquitto_sub), and never claims a CONNACK timeout', async () => {
    await ready;
    const t0 = Date.now();
    const r = await run(['sub', '-p', String(port), '-t', 'a', '-W', '3']);
    expect(r.code, r.stderr).toBe(27);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2900);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('Timed out');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    // The client reports the close before CONNACK once; the later attempts end the same way.
    expect(lines[0]).toBe('Warning: The connection was lost (the server closed the connection before CONNACK); reconnecting.');
    for (const l of lines.slice(1, -1)) expect(l).toBe('Warning: The connection was closed before CONNACK; reconnecting.');
    // Full jitter from a 1 s base: a handful of attempts in 3 s, not a busy loop.
    expect(lines.length).toBeLessThan(20);
    expect(r.stderr).not.toMatch(/CONNACK .*within/);
  });

  it('invalid UTF-8 in -t is refused before connecting, as mosquitto_pub refuses it', async () => {
    const self = (cmd: string) => `exec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(BIN)} ${cmd} -p 1 -t "$(printf 'sensors/\\377t')" -m x`;
    for (const cmd of ['pub', 'sub']) {
      const r = spawnSync('sh', ['-c', self(cmd)], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DORMOUSE_FROM_SOURCE: '1' }, timeout: 15_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toBe(`Error: Malformed UTF-8 in -t argument. Use 'dormouse ${cmd} --help' to see usage.\n`);
    }
    // A real U+FFFD is valid UTF-8: not refused (the run then fails to connect to port 1).
    const ok = await run(['pub', '-p', '1', '-t', 'sensors/\uFFFD', '-m', 'x']);
    expect(ok.stderr).toBe('Error: Connection refused\n');
    const theirs = await mosquittoPub(`-p 1 -t "$(printf 'sensors/\\377t')" -m x`);
    if (theirs) {
      expect(theirs.stderr).toMatch(/^Error: Malformed UTF-8 in -t argument\./);
      expect(theirs.code).toBe(1);
    }
  });
});

describeMosquitto('dormouse: TLS, restarts and downgrades against mosquitto', () => {
  let broker: MosquittoHandle;
  let pki: TestPki;
  const brokerReady = startMosquitto({ extraConfig: [] }).then((b) => (broker = b));
  afterAll(async () => { await brokerReady; await broker.dispose(); pki?.dispose(); });

  it('--cafile against a plain MQTT port: "A TLS error occurred", the handshake named, exit 8 as mosquitto_pub', async () => {
    await brokerReady;
    pki = makeTestPki();
    const args = ['-h', '127.0.0.1', '-p', String(broker.port), '--cafile', pki.files.caCert, '-t', 'a'];
    const pub = await run(['pub', ...args, '-m', 'x']);
    const sub = await run(['sub', ...args, '-W', '5']);
    for (const r of [pub, sub]) {
      expect(r.code, r.stderr).toBe(8);
      expect(oneLine(r)).toBe(`Error: A TLS error occurred: the TLS handshake failed: the server closed the connection (is 127.0.0.1:${broker.port} a TLS port?).`);
    }
    const theirs = await mosquittoPub(`-h 127.0.0.1 -p ${broker.port} --cafile ${pki.files.caCert} -t a -m x`);
    if (theirs) {
      expect(theirs.stderr).toMatch(/A TLS error occurred/);
      expect(pub.code).toBe(theirs.code);
    }
  });

  it('sub -c -i reconnects when the broker restarts mid-stream and prints all 500 QoS 1 messages', async () => {
    await brokerReady;
    const port = String(broker.port);
    const reader = ['sub', '-p', port, '-t', 'stream/t', '-q', '1', '-c', '-i', 'stream-reader'];
    // The persistent subscription first, so nothing depends on when the long-running sub is ready.
    const made = await run([...reader, '-E']);
    expect(made.code, made.stderr).toBe(0);
    const sub = start(reader);
    const writer = connect(broker.url, { clientId: 'stream-writer', clean: false, reconnectPeriod: 100, reconnect: { capMs: 500 }, capacities: { outbox: 512, storeBytes: 32_768 } });
    writer.on('error', () => {});
    const acked: Array<Promise<void>> = [];
    const publish = async (from: number, to: number) => {
      for (let k = from; k <= to; k++) acked.push((await writer.publish('stream/t', `m${k}`, { qos: 1 })).acknowledged);
    };
    const distinct = () => new Set(sub.stdout().split('\n').filter((l) => l !== '')).size;
    const until = async (what: () => boolean, ms: number, why: string) => {
      const end = Date.now() + ms;
      while (!what()) {
        if (Date.now() > end) throw new Error(`${why}; stdout lines: ${distinct()}; stderr: ${sub.stderr()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    try {
      await publish(1, 250);
      await until(() => distinct() >= 50, 20_000, 'the sub printed fewer than 50 lines');
      await broker.restart(); // SIGTERM: mosquitto saves the queued messages; then it starts again on the same port
      await publish(251, 500);
      await Promise.all(acked);
      await until(() => distinct() === 500, 60_000, 'not every message was printed');
    } finally {
      await writer.end();
      sub.child.kill('SIGTERM');
    }
    const r = await sub.done;
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect(new Set(lines)).toEqual(new Set(Array.from({ length: 500 }, (_, k) => `m${k + 1}`)));
    expect(r.stderr).toMatch(/^Warning: The connection was lost.*; reconnecting\.$/m);
    expect(r.stderr).not.toMatch(/Error/);
  }, 120_000);

  it('sub says on stderr, without -d, when the broker granted a lower QoS than asked', async () => {
    const capped = await startMosquitto({ persistence: false, extraConfig: ['max_qos 0'] });
    try {
      for (const v of ['mqttv311', 'mqttv5']) {
        const r = await run(['sub', '-p', String(capped.port), '-t', 'capped/#', '-t', 'other', '-q', '2', '-V', v, '-W', '1']);
        expect(r.code, r.stderr).toBe(27);
        expect(r.stderr).toBe(
          "Warning: Subscription to 'capped/#' granted QoS 0, lower than the QoS 2 asked for.\n" +
          "Warning: Subscription to 'other' granted QoS 0, lower than the QoS 2 asked for.\n" +
          'Timed out\n',
        );
      }
    } finally {
      await capped.dispose();
    }
  });
});
