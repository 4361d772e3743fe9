// One client library in its own process, driven by bench/e2e.ts over the IPC
// channel, so process.cpuUsage() here is that client's CPU and nothing else's
// (the broker and the orchestrator are other processes). Each library is
// loaded only when first asked for, so a memory run carries one library.
//   forked as: node --expose-gc --import tsx bench/e2e-worker.ts

import { readFileSync } from 'node:fs';
import { drive } from './e2e-driver.js';
import { processCpuMs } from './proc-cpu.js';

export type Lib = 'ours' | 'peer';

export interface PublishCommand {
  cmd: 'publish';
  lib: Lib;
  url: string;
  qos: 0 | 1 | 2;
  n: number;
  warm: number;
  window: number;
  payloadBytes: number;
  /** mosquitto's process id, to sample its CPU over the measured window; null when not found. */
  brokerPid: number | null;
}

export interface DrainCommand {
  cmd: 'drain';
  lib: Lib;
  url: string;
  clientId: string;
  n: number;
  brokerPid: number | null;
}

export interface MemoryCommand {
  cmd: 'memory';
  lib: Lib;
  url: string;
  count: number;
  /** Dormouse capacities profile: 'defaults' or 'small'. */
  profile: 'defaults' | 'small';
}

export type Command = PublishCommand | DrainCommand | MemoryCommand;

/** Wall time and this process's CPU time (user + system) for one measured run. */
export interface Timing {
  ms: number;
  cpuUs: number;
  /** read(2)/write(2)-family system calls of this process during the run (Linux /proc/self/io); NaN elsewhere. */
  readCalls: number;
  writeCalls: number;
  /** CPU time mosquitto used over the same window (ms); NaN where /proc is missing. */
  brokerCpuMs: number;
}

export interface MemoryResult {
  count: number;
  heapUsed: number;
  arrayBuffers: number;
  rss: number;
}

const TOPIC = 'bench/e2e';
const DRAIN_TIMEOUT_MS = 30_000;

/** A persistent idle subscriber's needs: one subscription, small packets, no outgoing work. */
export const SMALL_PROFILE = Object.freeze({
  capacities: { inflight: 1, outbox: 1, storeBytes: 64, incomingQos2: 2, subscriptions: 1, subscriptionBytes: 32 },
  receiveBufferSize: 256,
  sendBufferSize: 128,
});

// Minimal common shape of the two clients, for the shared driver.
interface Handle {
  publish(qos: 0 | 1 | 2, payload: Uint8Array, done: (err?: Error | null) => void): void;
  end(): Promise<void>;
}

type OursModule = typeof import('../hosts/node/client.js');
type PeerModule = typeof import('mqtt');
let oursMod: OursModule | null = null;
let peerMod: PeerModule | null = null;
async function ours(): Promise<OursModule> {
  // The orchestrator passes a plain-JavaScript bundle of the host (bench/bundle.ts):
  // what users run, without tsx's per-closure __name wrappers.
  const bundled = process.env.DORMOUSE_E2E_BUNDLE;
  return (oursMod ??= (await import(bundled ?? '../hosts/node/client.js')) as OursModule);
}
async function peer(): Promise<PeerModule> {
  if (!peerMod) {
    const m = (await import('mqtt')) as unknown as PeerModule & { default?: PeerModule };
    peerMod = m.default ?? m;
  }
  return peerMod;
}

let nextId = 0;
const uniqueId = (lib: Lib) => `e2e-${lib}-${process.pid}-${++nextId}`;

async function openPublisher(lib: Lib, url: string, window: number): Promise<Handle> {
  if (lib === 'ours') {
    const { connect } = await ours();
    const c = connect(url, { clientId: uniqueId(lib), reconnectPeriod: 0, capacities: { inflight: window } });
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('close', () => reject(new Error('ours: connection closed before CONNACK')));
    });
    const opts = [{ qos: 0 as const }, { qos: 1 as const }, { qos: 2 as const }];
    return {
      publish: (qos, payload, done) => void c.publish(TOPIC, payload, opts[qos], done),
      end: () => c.end(),
    };
  }
  const mqtt = await peer();
  const c = await mqtt.connectAsync(url, { clientId: uniqueId(lib), reconnectPeriod: 0, clean: true });
  const opts = [{ qos: 0 as const }, { qos: 1 as const }, { qos: 2 as const }];
  return {
    publish: (qos, payload, done) => void c.publish(TOPIC, payload as Buffer, opts[qos], (err) => done(err)),
    end: () => c.endAsync(),
  };
}

/** The kernel's count of this process's read and write system calls (syscr, syscw), or NaN. */
function ioCalls(): { r: number; w: number } {
  try {
    const io = readFileSync('/proc/self/io', 'utf8');
    return { r: Number(/syscr: (\d+)/.exec(io)?.[1] ?? NaN), w: Number(/syscw: (\d+)/.exec(io)?.[1] ?? NaN) };
  } catch {
    return { r: NaN, w: NaN };
  }
}

function measure<T>(run: () => Promise<T>, brokerPid: number | null): Promise<Timing> {
  const b0 = processCpuMs(brokerPid);
  const io0 = ioCalls();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  return run().then(() => {
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    const io = ioCalls();
    const b1 = processCpuMs(brokerPid);
    // Two of the reads are the /proc reads themselves.
    return { ms: ns / 1e6, cpuUs: cpu.user + cpu.system, readCalls: io.r - io0.r - 2, writeCalls: io.w - io0.w, brokerCpuMs: b1 - b0 };
  });
}

async function publishRun(c: PublishCommand): Promise<Timing> {
  const h = await openPublisher(c.lib, c.url, c.window);
  const payload = Buffer.alloc(c.payloadBytes, 0x61);
  const one = (qos: 0 | 1 | 2) => (done: (err?: Error | null) => void) => h.publish(qos, payload, done);
  const sentinel = () => new Promise<void>((resolve, reject) => h.publish(1, payload, (e) => (e ? reject(e) : resolve())));
  await drive(c.warm, c.window, one(c.qos));
  await sentinel();
  const t = await measure(async () => {
    await drive(c.n, c.window, one(c.qos));
    // QoS 0 has no ack: a QoS 1 message behind the run is acknowledged only
    // once the broker has read everything before it on this connection.
    if (c.qos === 0) await sentinel();
  }, c.brokerPid);
  await h.end();
  return t;
}

async function drainRun(c: DrainCommand): Promise<Timing> {
  let received = 0;
  let finish: () => void = () => {};
  let timer: NodeJS.Timeout | undefined;
  const all = new Promise<void>((resolve, reject) => {
    finish = resolve;
    timer = setTimeout(() => reject(new Error(`${c.lib}: received ${received} of ${c.n} queued messages within ${DRAIN_TIMEOUT_MS} ms`)), DRAIN_TIMEOUT_MS);
  });
  const onMessage = () => { if (++received === c.n) finish(); };
  let end: () => Promise<void> = async () => {};
  // Dormouse delivers a QoS 2 message on its PUBLISH (the id stored first);
  // MQTT.js on its PUBREL. So that both windows hold the whole exchange, ours
  // ends once no incoming id is held any more (every PUBREL answered).
  let released: () => boolean = () => true;
  const t = await measure(async () => {
    if (c.lib === 'ours') {
      const { connect } = await ours();
      // Over MQTT 3.1.1 the broker does not learn our Receive Maximum, and
      // mosquitto sends a queued QoS 2 backlog almost whole before its first
      // PUBREL: the incoming QoS 2 table must hold the backlog.
      const cl = connect(c.url, { clientId: c.clientId, clean: false, reconnectPeriod: 0, capacities: { incomingQos2: Math.min(65535, c.n + 64) } });
      cl.on('message', onMessage);
      end = () => cl.end();
      released = () => cl.core.session.incomingCount === 0;
    } else {
      const mqtt = await peer();
      const cl = mqtt.connect(c.url, { clientId: c.clientId, clean: false, reconnectPeriod: 0 });
      cl.on('message', onMessage);
      end = () => cl.endAsync();
    }
    try {
      await all;
      while (!released()) await new Promise((r) => setTimeout(r, 1));
    } finally {
      clearTimeout(timer);
    }
  }, c.brokerPid);
  // Let the last QoS 2 release (PUBREL/PUBCOMP) finish before leaving.
  await new Promise((r) => setTimeout(r, 150));
  await end();
  return t;
}

async function memoryRun(c: MemoryCommand): Promise<MemoryResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the worker needs --expose-gc');
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
      gc();
    }
  };
  type Idle = { end: () => Promise<unknown> };
  let open: (i: number) => Promise<Idle>;
  if (c.lib === 'ours') {
    const { connect } = await ours();
    const profile = c.profile === 'small' ? SMALL_PROFILE : {};
    open = async (i) => {
      const cl = connect(c.url, { clientId: `idle-ours-${i}`, reconnectPeriod: 0, ...profile });
      await cl.subscribe(`idle/${i}`, { qos: 1 });
      return cl;
    };
  } else {
    const mqtt = await peer();
    open = async (i) => {
      const cl = await mqtt.connectAsync(c.url, { clientId: `idle-peer-${i}`, reconnectPeriod: 0 });
      await cl.subscribeAsync(`idle/${i}`, { qos: 1 });
      return { end: () => cl.endAsync(true) };
    };
  }
  // Warm the code paths with one client so the baseline holds compiled code
  // and the library's own caches, not only the per-client cost.
  const warm = await open(-1);
  await warm.end();
  await settle();
  const before = process.memoryUsage();
  const clients: Idle[] = [];
  for (let i = 0; i < c.count; i += 50) {
    const batch: Promise<Idle>[] = [];
    for (let k = i; k < Math.min(c.count, i + 50); k++) batch.push(open(k));
    clients.push(...(await Promise.all(batch)));
  }
  await new Promise((r) => setTimeout(r, 300));
  await settle();
  const after = process.memoryUsage();
  await Promise.all(clients.map((cl) => cl.end()));
  return {
    count: c.count,
    heapUsed: after.heapUsed - before.heapUsed,
    arrayBuffers: after.arrayBuffers - before.arrayBuffers,
    rss: after.rss - before.rss,
  };
}

function run(c: Command): Promise<unknown> {
  switch (c.cmd) {
    case 'publish': return publishRun(c);
    case 'drain': return drainRun(c);
    case 'memory': return memoryRun(c);
  }
}

// Load the library before the first measurement, so no import sits inside one.
const preload = process.env.DORMOUSE_E2E_PRELOAD === 'peer' ? peer() : ours();

process.on('message', (msg: { id: number; command: Command }) => {
  run(msg.command).then(
    (result) => process.send!({ id: msg.id, ok: true, result }),
    (err: Error) => process.send!({ id: msg.id, ok: false, error: String(err?.stack ?? err) }),
  );
});
void preload.then(() => process.send!({ ready: true }));
