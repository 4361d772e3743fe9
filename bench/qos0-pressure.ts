// QoS 0 back-pressure (issue 12 item 6), Dormouse beside MQTT.js in the same run:
//   node --import tsx bench/qos0-pressure.ts [--quick] [--json]
// Each client library in a fresh process of its own, against mosquitto on 127.0.0.1:
// - tight: one synchronous loop of N publishes with a callback each, never
//   yielding (the caller that publishes from each callback, or from a loop);
// - awaited: `await publish(...)` for each of N messages (MQTT.js: until its callback).
// 1 KiB payloads. Reported per run: peak RSS of the process (getrusage),
// peak heap + ArrayBuffers sampled in the loop, messages accepted / refused,
// callbacks fired of N, whether the process crashed or the connection
// dropped, and the wall time until every callback had fired.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { startMosquitto } from '../sim/brokers.js';

type Lib = 'ours' | 'peer';
type Mode = 'tight' | 'awaited';

interface Outcome {
  lib: Lib;
  mode: Mode;
  n: number;
  ok: number;
  refused: number;
  callbacks: number;
  drops: number;
  peakRssMB: number;
  peakHeapMB: number;
  ms: number;
  closed: boolean;
  error: string | null;
}

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const json = argv.includes('--json');
// MQTT.js adds a 'drain' listener per write once its socket is full, and its
// callbacks then take time quadratic in the backlog (20,000 x 256 B: 34 s),
// so the side-by-side runs are 20,000 messages; Dormouse also runs 15 times
// that, to show its memory does not grow with the count.
const SIDE_BY_SIDE = quick ? 10_000 : 20_000;
const OURS_LONG = quick ? 100_000 : 300_000;
const PAYLOAD_BYTES = 1024;
const TOPIC = 'bench/pressure';
const WAIT_MS = 20_000;

async function child(lib: Lib, mode: Mode, url: string, n: number): Promise<Outcome> {
  const out: Outcome = { lib, mode, n, ok: 0, refused: 0, callbacks: 0, drops: 0, peakRssMB: 0, peakHeapMB: 0, ms: 0, closed: false, error: null };
  let peakHeap = 0;
  const sample = () => {
    const u = process.memoryUsage();
    peakHeap = Math.max(peakHeap, u.heapUsed + u.arrayBuffers);
  };
  process.on('unhandledRejection', (e) => { out.error = `unhandled rejection: ${String(e)}`; });
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  let publish: (cb: (err?: Error | null) => void) => Promise<unknown> | void;
  let end: () => Promise<unknown>;
  if (lib === 'ours') {
    const { connect } = await import('../hosts/node/client.js');
    const c = connect(url, { clientId: `pressure-ours-${process.pid}`, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('close', () => reject(new Error('no CONNACK'))); });
    c.on('close', () => { out.closed = true; });
    c.on('drop', () => out.drops++);
    const opts = { qos: 0 as const };
    publish = (cb) => c.publish(TOPIC, payload, opts, cb);
    end = () => c.end();
  } else {
    const m = await import('mqtt');
    const mqtt = (m as unknown as { default?: typeof m }).default ?? m;
    const c = await mqtt.connectAsync(url, { clientId: `pressure-peer-${process.pid}`, reconnectPeriod: 0 });
    c.on('close', () => { out.closed = true; });
    c.on('error', (e) => { out.error ??= String(e); });
    const opts = { qos: 0 as const };
    // Awaited: as its users wait, until the callback (MQTT.js calls a QoS 0 callback once the bytes are written).
    publish = mode === 'tight'
      ? (cb) => { c.publish(TOPIC, payload, opts, (err) => cb(err)); }
      : (cb) => new Promise<void>((resolve) => c.publish(TOPIC, payload, opts, (err) => { cb(err); resolve(); }));
    end = () => c.endAsync();
  }
  const t0 = performance.now();
  let settle: () => void = () => {};
  const all = new Promise<void>((r) => { settle = r; });
  const cb = (err?: Error | null) => {
    out.callbacks++;
    if (err) out.refused++;
    else out.ok++;
    if (out.callbacks === n) settle();
  };
  try {
    if (mode === 'tight') {
      for (let k = 0; k < n; k++) {
        const p = publish(cb);
        // As a caller that does not wait: the promise (ours) is left alone.
        void p;
        if ((k & 4095) === 0) sample();
      }
    } else {
      for (let k = 0; k < n; k++) {
        try {
          await publish(cb);
        } catch { /* counted by the callback */ }
        if ((k & 4095) === 0) sample();
      }
    }
    // Bounded: a client that never calls back is reported, not waited for.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => { timer = setTimeout(r, WAIT_MS); })]);
    clearTimeout(timer);
    if (out.callbacks < n) out.error ??= `${n - out.callbacks} callbacks had not fired ${WAIT_MS / 1000} s after the loop`;
    sample();
  } catch (e) {
    out.error = String(e);
  }
  out.ms = performance.now() - t0;
  out.peakHeapMB = peakHeap / 1048576;
  out.peakRssMB = process.resourceUsage().maxRSS / 1024;
  const closedEarly = out.closed;
  await Promise.race([end(), new Promise((r) => setTimeout(r, 2000))]);
  out.closed = closedEarly;
  return out;
}

function runChild(lib: Lib, mode: Mode, url: string, n: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const p = fork(fileURLToPath(import.meta.url), ['--child', lib, mode, url, String(n)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    let err = '';
    let got: Outcome | null = null;
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('message', (m: Outcome) => { got = m; });
    p.on('exit', (code, signal) => {
      resolve(got ?? {
        lib, mode, n, ok: 0, refused: 0, callbacks: 0, drops: 0, peakRssMB: 0, peakHeapMB: 0, ms: 0, closed: true,
        error: `process died (code ${code}, signal ${signal}): ${err.trim().split('\n').slice(-3).join(' | ')}`,
      });
    });
  });
}

async function main(): Promise<void> {
  const mosq = await startMosquitto({ persistence: false });
  const rows: Outcome[] = [];
  try {
    for (const mode of ['tight', 'awaited'] as const) {
      for (const lib of ['ours', 'peer'] as const) rows.push(await runChild(lib, mode, mosq.url, SIDE_BY_SIDE));
      rows.push(await runChild('ours', mode, mosq.url, OURS_LONG));
    }
  } finally {
    await mosq.dispose();
  }
  if (json) {
    for (const r of rows) console.log(JSON.stringify(r));
    return;
  }
  console.log(`QoS 0 back-pressure: ${PAYLOAD_BYTES}-byte payloads, mosquitto on 127.0.0.1; ${os.cpus()[0]?.model}, ${os.cpus().length} cores, Linux ${os.release()}, Node ${process.version}`);
  console.log('lib      mode       messages  accepted  refused  callbacks  drop events  peak RSS MB  peak heap+buf MB  ms      connection  error');
  for (const r of rows) {
    console.log(
      `${(r.lib === 'ours' ? 'Dormouse' : 'MQTT.js').padEnd(8)} ${r.mode.padEnd(9)} ${String(r.n).padStart(9)} ${String(r.ok).padStart(9)} ${String(r.refused).padStart(8)} ${String(r.callbacks).padStart(10)} ${String(r.drops).padStart(12)} ${r.peakRssMB.toFixed(1).padStart(12)} ${r.peakHeapMB.toFixed(1).padStart(17)} ${r.ms.toFixed(0).padStart(7)}  ${(r.closed ? 'dropped' : 'kept').padEnd(10)}  ${r.error ?? ''}`,
    );
  }
}

if (argv[0] === '--child') {
  const [, lib, mode, url, n] = argv;
  void child(lib as Lib, mode as Mode, url!, Number(n)).then((o) => {
    if (process.send) process.send(o);
    else console.log(JSON.stringify(o));
    process.exit(0);
  });
} else {
  await main();
}
