// One client library in its own process, driven by bench/e2e.ts over the IPC
// channel, so process.cpuUsage() here is that client's CPU and nothing else's
// (the broker and the orchestrator are other processes). Each library is
// loaded only when first asked for, so a memory run carries one library.
//   forked as: node --expose-gc --import tsx bench/e2e-worker.ts

import { readFileSync } from 'node:fs';
import { drive, SESSION_EXPIRY_S } from './e2e-driver.js';
import { processCpuMs } from './proc-cpu.js';
import { stream, type StreamOptions } from './e2e-stream.js';

export type Lib = 'ours' | 'peer';
/** 4: MQTT 3.1.1, 5: MQTT 5.0 (both clients' protocolVersion). */
export type Version = 4 | 5;

export interface PublishCommand {
  cmd: 'publish';
  lib: Lib;
  url: string;
  version: Version;
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
  version: Version;
  clientId: string;
  n: number;
  /** Dormouse's capacities.incomingQos2; over 5.0 below 65,535 it is also the Receive Maximum it announces. */
  incomingQos2: number;
  brokerPid: number | null;
}

/**
 * Live receive, first half: connect (clean session), subscribe to `topic` at
 * `qos`, answer once the SUBACK is in; the run is measured from the first
 * message to the n-th, and handed over by 'liveResult'.
 */
export interface LiveSubscribeCommand {
  cmd: 'liveSubscribe';
  lib: Lib;
  url: string;
  version: Version;
  qos: 0 | 1 | 2;
  topic: string;
  n: number;
  /** Dormouse's capacities.incomingQos2 (its MQTT 5 Receive Maximum). */
  incomingQos2: number;
  brokerPid: number | null;
}

/** Live receive, second half: waits for the n-th message and returns the Timing of messages 2 to n. */
export interface LiveResultCommand {
  cmd: 'liveResult';
}

/** The live part's publisher (bench/e2e-stream.ts), in a process of its own. */
export interface StreamCommand extends StreamOptions {
  cmd: 'stream';
}

/**
 * The publish part's floor: the same raw-socket publisher (no MQTT client,
 * PUBLISH bytes built once, every read answered at once in one write) run as
 * the measured client: `warm` messages, then `n` measured.
 */
export interface FloorCommand extends StreamOptions {
  cmd: 'floor';
  warm: number;
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

export type Command = PublishCommand | DrainCommand | LiveSubscribeCommand | LiveResultCommand | StreamCommand | FloorCommand | MemoryCommand;

/** Wall time and this process's CPU time (user + system) for one measured run. */
export interface Timing {
  /** Messages the run measured (the live part's window starts at the first one, so n - 1 there). */
  count: number;
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

/** Connection options both clients understand alike (MQTT.js's names; ours takes them too). */
function common(version: Version, clean: boolean) {
  return {
    protocolVersion: version,
    clean,
    reconnectPeriod: 0,
    ...(version === 5 && !clean ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_S } } : {}),
  };
}

async function openPublisher(lib: Lib, url: string, version: Version, window: number): Promise<Handle> {
  if (lib === 'ours') {
    const { connect } = await ours();
    const c = connect(url, { clientId: uniqueId(lib), ...common(version, true), capacities: { inflight: window } });
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
  const c = await mqtt.connectAsync(url, { clientId: uniqueId(lib), ...common(version, true) });
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

/** Starts a measured window; the function it returns ends it and says what the window cost. */
function startWindow(brokerPid: number | null): (count: number) => Timing {
  const b0 = processCpuMs(brokerPid);
  const io0 = ioCalls();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  return (count) => {
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    const io = ioCalls();
    const b1 = processCpuMs(brokerPid);
    // Two of the reads are the /proc reads themselves.
    return { count, ms: ns / 1e6, cpuUs: cpu.user + cpu.system, readCalls: io.r - io0.r - 2, writeCalls: io.w - io0.w, brokerCpuMs: b1 - b0 };
  };
}

async function measure(count: number, run: () => Promise<unknown>, brokerPid: number | null): Promise<Timing> {
  const stop = startWindow(brokerPid);
  await run();
  return stop(count);
}

async function floorRun(c: FloorCommand): Promise<Timing> {
  await stream({ ...c, n: c.warm, clientId: `${c.clientId}-warm` });
  return measure(c.n, () => stream(c), c.brokerPid);
}

async function publishRun(c: PublishCommand): Promise<Timing> {
  const h = await openPublisher(c.lib, c.url, c.version, c.window);
  const payload = Buffer.alloc(c.payloadBytes, 0x61);
  const one = (qos: 0 | 1 | 2) => (done: (err?: Error | null) => void) => h.publish(qos, payload, done);
  const sentinel = () => new Promise<void>((resolve, reject) => h.publish(1, payload, (e) => (e ? reject(e) : resolve())));
  await drive(c.warm, c.window, one(c.qos));
  await sentinel();
  const t = await measure(c.n, async () => {
    await drive(c.n, c.window, one(c.qos));
    // QoS 0 has no ack: a QoS 1 message behind the run is acknowledged only
    // once the broker has read everything before it on this connection.
    if (c.qos === 0) await sentinel();
  }, c.brokerPid);
  await h.end();
  return t;
}

/** A subscriber, either library, connected: `released` says whether every QoS 2 exchange it was sent is complete. */
interface Receiver {
  subscribe: (topic: string, qos: 0 | 1 | 2) => Promise<unknown>;
  end: () => Promise<void>;
  released: () => boolean;
}

/**
 * Dormouse delivers a QoS 2 message on its PUBLISH (the id stored first);
 * MQTT.js on its PUBREL. So that both windows hold the whole exchange, ours
 * ends once no incoming id is held any more (every PUBREL answered).
 */
function openReceiver(lib: Lib, url: string, version: Version, clientId: string, clean: boolean, incomingQos2: number, onMessage: () => void): Promise<Receiver> {
  return lib === 'ours' ? openOurs() : openPeer();
  async function openOurs(): Promise<Receiver> {
    const { connect } = await ours();
    const cl = connect(url, { clientId, ...common(version, clean), capacities: { incomingQos2 } });
    cl.on('message', onMessage);
    const rx = { subscribe: (t: string, qos: 0 | 1 | 2) => cl.subscribe(t, { qos }), end: () => cl.end(), released: () => cl.core.session.incomingCount === 0 };
    return rx;
  }
  async function openPeer(): Promise<Receiver> {
    const mqtt = await peer();
    const cl = mqtt.connect(url, { clientId, ...common(version, clean) });
    cl.on('message', onMessage);
    return { subscribe: (t, qos) => cl.subscribeAsync(t, { qos }), end: () => cl.endAsync(), released: () => true };
  }
}

/** Resolves once `released` holds, looking every millisecond (only after the last message: nothing polls during a run). */
async function whenReleased(released: () => boolean): Promise<void> {
  while (!released()) await new Promise((r) => setTimeout(r, 1));
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
  let rx: Receiver | null = null;
  const t = await measure(c.n, async () => {
    // The orchestrator sizes the incoming QoS 2 table to hold the backlog
    // (see bench/e2e.ts, backlogIncomingQos2).
    rx = await openReceiver(c.lib, c.url, c.version, c.clientId, false, c.incomingQos2, onMessage);
    try {
      await all;
      await whenReleased(rx.released);
    } finally {
      clearTimeout(timer);
    }
  }, c.brokerPid);
  // Let the last QoS 2 release (PUBREL/PUBCOMP) finish before leaving.
  await new Promise((r) => setTimeout(r, 150));
  await rx!.end();
  return t;
}

/** The live subscriber of this process (one at a time): its result, once the n-th message is in. */
let live: Promise<Timing> | null = null;

async function liveSubscribe(c: LiveSubscribeCommand): Promise<void> {
  if (live) throw new Error('a live subscriber is already running in this worker');
  let received = 0;
  let stop: ((count: number) => Timing) | null = null;
  let finish: (t: Timing) => void = () => {};
  let last: Timing | null = null;
  const done = new Promise<void>((resolve) => { finish = (t) => { last = t; resolve(); }; });
  // The window opens at the first message (connect and subscribe are not in
  // it) and closes at the n-th: messages 2 to n.
  const onMessage = () => {
    if (++received === 1) stop = startWindow(c.brokerPid);
    else if (received === c.n) finish(stop!(c.n - 1));
  };
  const rx = await openReceiver(c.lib, c.url, c.version, `live-${c.lib}-${process.pid}-${++nextId}`, true, c.incomingQos2, onMessage);
  await rx.subscribe(c.topic, c.qos);
  live = (async () => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([done, new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${c.lib}: received ${received} of ${c.n} live messages within ${DRAIN_TIMEOUT_MS} ms`)), DRAIN_TIMEOUT_MS);
      })]);
      // QoS 2: ours has delivered at PUBLISH; its window closes when the last PUBREL is answered.
      if (!rx.released()) {
        await whenReleased(rx.released);
        last = stop!(c.n - 1);
      }
      return last!;
    } finally {
      clearTimeout(timer);
      await new Promise((r) => setTimeout(r, 50));
      await rx.end();
    }
  })();
}

async function liveResult(): Promise<Timing> {
  if (!live) throw new Error('liveResult without liveSubscribe');
  try {
    return await live;
  } finally {
    live = null;
  }
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
    case 'liveSubscribe': return liveSubscribe(c);
    case 'liveResult': return liveResult();
    case 'stream': return stream(c);
    case 'floor': return floorRun(c);
    case 'memory': return memoryRun(c);
  }
}

// Load the library before the first measurement, so no import sits inside one.
const which = process.env.DORMOUSE_E2E_PRELOAD;
const preload = which === 'peer' ? peer() : which === 'none' ? Promise.resolve() : ours();

process.on('message', (msg: { id: number; command: Command }) => {
  run(msg.command).then(
    (result) => process.send!({ id: msg.id, ok: true, result }),
    (err: Error) => process.send!({ id: msg.id, ok: false, error: String(err?.stack ?? err) }),
  );
});
void preload.then(() => process.send!({ ready: true }));
