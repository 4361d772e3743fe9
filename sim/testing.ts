// The testing kit: what the project's own tests use to run device logic
// across sleep cycles and faults, for users' tests too (`dormouse/testing`).
//
//   import { simulateDevice } from 'dormouse/testing';
//   const run = simulateDevice({ clientId: 'greenhouse-7', wakes: 10, sleepMs: 60_000,
//     onWake: ({ client, now, wake }) => client.publish('sensors/t1', reading(wake), { qos: 1 }, now) });
//   expect(run.atBroker.length).toBe(10);
//
// Everything runs on a virtual clock: ten wakes an hour apart take
// milliseconds, and a seed replays the same run.
export { MemorySnapshotStore, PowerLossError } from './memory-store.js';
export { FaultProxy, type ProxyOptions, type Direction } from './proxy.js';
export { startAedes, startMosquitto, mosquittoAvailable, type AedesHandle, type MosquittoHandle } from './brokers.js';
export { VirtualClock } from './clock.js';
export { BrokerModel, type BrokerOptions, type MessageInfo } from './broker-model.js';
export { VirtualLink, BrokerHost, HandshakeLog, type LinkOptions } from './link.js';
export { Prng } from './prng.js';

import { DormouseClient, type ClientOptions } from '../modules/session/client.js';
import { ClientEvent, type ClientHooks } from '../modules/session/ports.js';
import type { PublishPacket } from '../modules/mqtt/types.js';
import { VirtualClock } from './clock.js';
import { BrokerModel, type BrokerOptions, type MessageInfo } from './broker-model.js';
import { BrokerHost, HandshakeLog, VirtualLink } from './link.js';
import { MemorySnapshotStore } from './memory-store.js';
import { Prng } from './prng.js';

/** What device code sees at each wake. */
export interface WakeContext {
  /** A fresh client, restored from the device's store (as after deep sleep). Not started yet when onWake runs. */
  client: DormouseClient;
  /** Virtual time, ms. */
  now: number;
  /** 0 for the first wake. */
  wake: number;
  link: VirtualLink;
  broker: BrokerModel;
  clock: VirtualClock;
  /** Run `fn` `ms` from now, while this wake lasts (e.g. a fault in the middle of a handshake). */
  after(ms: number, fn: () => void): void;
}

export interface SimulateDeviceOptions {
  /** Client options; clientId defaults to 'device'. A store is always given, so sessions persist unless `clean: true`. */
  client?: Partial<ClientOptions>;
  /** Broker options, or a BrokerModel to share between devices or tests. */
  broker?: BrokerOptions | BrokerModel;
  wakes: number;
  /** Deep sleep between wakes, ms. */
  sleepMs: number;
  /** Longest time awake waiting for acks, ms. Default 5000. */
  awakeWindowMs?: number;
  /** One-way link latency, ms. Default 20. */
  latencyMs?: number;
  seed?: number;
  /** Device logic, at every wake: publish, subscribe, schedule faults. */
  onWake(ctx: WakeContext): void;
  /** Called when a wake ends, before the client is dropped. */
  onSleep?(ctx: WakeContext): void;
  /** Messages the broker routes to the device. */
  onMessage?(p: PublishPacket, ctx: WakeContext): void;
}

export interface SimulatedDevice {
  /** Every message the broker took from the device, in order (duplicates included). */
  atBroker: MessageInfo[];
  /** Tokens acknowledged (PUBACK / PUBCOMP), in order. */
  acked: number[];
  /** [token, DropReason] of every message dropped by a declared policy. */
  dropped: Array<[number, number]>;
  /** Wakes that ended with nothing left to send (SleepReady) rather than at the window's end. */
  sleepReadyWakes: number;
  /** Unacknowledged messages the device still holds at the end. */
  held: number;
  store: MemorySnapshotStore;
  broker: BrokerModel;
  clock: VirtualClock;
  /** The last packets on the link ("PUBLISH q1 id 3 dup", ...). */
  packets: HandshakeLog;
}

/** Run device logic across `wakes` sleep cycles against the broker model, on a virtual clock. */
export function simulateDevice(o: SimulateDeviceOptions): SimulatedDevice {
  const clock = new VirtualClock(1_000_000);
  const broker = o.broker instanceof BrokerModel ? o.broker : new BrokerModel(o.broker);
  const host = new BrokerHost(clock, broker, { tickEveryMs: 1000 });
  host.startTicking();
  const rng = new Prng(o.seed ?? 1);
  const random = () => rng.float();
  const store = new MemorySnapshotStore();
  const out: SimulatedDevice = { atBroker: [], acked: [], dropped: [], sleepReadyWakes: 0, held: 0, store, broker, clock, packets: new HandshakeLog(200) };
  const prevOnMessage = broker.onMessage;
  broker.onMessage = (m) => {
    prevOnMessage?.(m);
    out.atBroker.push(m);
  };
  let client: DormouseClient | null = null;
  let ready = false;
  let gen = 0;
  const end = {
    opened: (now: number) => client?.transportOpened(now),
    received: (b: Uint8Array, now: number) => client?.receive(b, now),
    closed: (now: number) => client?.transportClosed(now),
  };
  const link = new VirtualLink(clock, host, end, { latencyMs: o.latencyMs ?? 20, random });
  link.log = out.packets;
  let ctx!: WakeContext;
  const hooks: ClientHooks = {
    send: (b) => link.send(b),
    open: () => link.open(),
    close: () => link.close(),
    message: (p) => o.onMessage?.(p, ctx),
    event: (kind, a, b) => {
      if (kind === ClientEvent.Acked) out.acked.push(a);
      else if (kind === ClientEvent.Dropped) out.dropped.push([a, b]);
      else if (kind === ClientEvent.SleepReady) ready = true;
    },
  };
  const options: ClientOptions = { clientId: 'device', ...o.client };
  const windowMs = o.awakeWindowMs ?? 5000;
  for (let wake = 0; wake < o.wakes; wake++) {
    const c = new DormouseClient(options, hooks, store, random);
    client = c;
    ready = false;
    const myGen = ++gen;
    c.restore(clock.now);
    ctx = {
      client: c,
      now: clock.now,
      wake,
      link,
      broker,
      clock,
      after: (ms, fn) => clock.after(ms, () => gen === myGen && fn()),
    };
    o.onWake(ctx);
    c.start(clock.now);
    const until = clock.now + windowMs;
    // Run the clock, ticking the client at its deadlines, until it may sleep or the window closes.
    while (!ready && clock.now < until) {
      const next = Math.min(c.nextDeadline(), clock.nextAt, until);
      clock.runUntil(next);
      ctx.now = clock.now;
      c.tick(clock.now);
    }
    if (ready) out.sleepReadyWakes++;
    ctx.now = clock.now;
    o.onSleep?.(ctx);
    c.end(clock.now);
    client = null;
    clock.advance(o.sleepMs);
  }
  // What the device still holds, read as the next boot would.
  const probe = new DormouseClient(options, { send() {}, open() {}, close() {}, message() {}, event() {} }, store.clone(), random);
  probe.restore(clock.now);
  out.held = probe.session.live;
  broker.onMessage = prevOnMessage;
  return out;
}
