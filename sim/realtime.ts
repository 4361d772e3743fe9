// The same scenarios with real sockets: Node Dormouse clients (hosts/node)
// through FaultProxy to aedes (embedded, 127.0.0.1, the default) or to a
// broker given by URL (e.g. a mosquitto you started). An observer subscribed
// straight to the broker checks the guarantees as in virtual time. Bounded:
// by default at most 200 devices and 60 s; faults are scaled into that time.
//
// Faults: an outage partitions a second proxy that the affected share of
// devices use; a broker restart or power outage refuses every connection at
// the main proxy for the window (devices are also dropped and rebooted from
// their stores for a power outage). Against an external mosquitto with
// `sys_interval 1`, $SYS/broker/messages/stored and heap/current are recorded.

import { connect, type NodeClient } from '../hosts/node/client.js';
import { RecordState } from '../modules/session/session-state.js';
import { DropReason } from '../modules/session/ports.js';
import { FaultProxy } from './proxy.js';
import { startAedes, type AedesHandle } from './brokers.js';
import { MemorySnapshotStore } from './memory-store.js';
import { Prng } from './prng.js';
import { Drop, GuaranteeTracker, readStamp, writeStamp } from './guarantees.js';
import { applyVariant, type FaultSpec, type Scenario } from './scenario.js';
import { connectSecondsSince, faultMarks, workNotDone, type RunShape, type VariantResult, type SeriesPoint } from './virtual.js';
import type { ConnectSeconds, DashboardFeed, DeviceState, Frame } from './dashboard/types.js';

export interface RealtimeOptions {
  devices?: number;
  durationS?: number;
  seed?: number;
  variants?: string[];
  /** mqtt://host:port; default an embedded aedes on 127.0.0.1. */
  broker?: string;
  feed?: DashboardFeed | null;
  onProgress?: (fraction: number, label: string) => void;
  /** Longest wait after the run for backlogs to drain, s. Default min(drainS, 15). */
  drainS?: number;
}

export interface RealtimeResult {
  scenario: string;
  description: string;
  mode: 'realtime';
  broker: string;
  seed: number;
  run: RunShape;
  variants: VariantResult[];
  /** Highest $SYS/broker/messages/stored and heap/current seen (mosquitto with sys_interval), if any. */
  sys: { storedPeak: number | null; heapPeakBytes: number | null };
  assumptions: string[];
  /** No guarantee broken and the run did its work (see failures). */
  ok: boolean;
  violations: string[];
  /** Why the run could not do its work, one line each; empty when it did. */
  failures: string[];
  wallMs: number;
}

/** The run could not start: the broker cannot be reached. Nothing was tested. */
export class RunFailure extends Error {}

/** How long the observer may take to reach the broker before the run is given up. */
const BROKER_WAIT_MS = 10_000;

const DEFAULT_DEVICES = 200;
const DEFAULT_DURATION_S = 60;

export async function runRealtime(base: Scenario, opts: RealtimeOptions = {}): Promise<RealtimeResult> {
  const t0 = performance.now();
  const list = base.variants.length > 0 ? base.variants.filter((v) => !opts.variants || opts.variants.includes(v.name)) : [{ name: base.name, overrides: {} }];
  const external = opts.broker !== undefined;
  let aedes: AedesHandle | null = null;
  const variants: VariantResult[] = [];
  const sys = { storedPeak: null as number | null, heapPeakBytes: null as number | null };
  try {
    if (!external) aedes = await startAedes();
    const url = opts.broker ?? aedes!.url;
    for (let i = 0; i < list.length; i++) {
      const v = list[i];
      let s = Object.keys(v.overrides).length > 0 ? applyVariant({ ...base, variants: [] }, v.overrides) : structuredClone(base);
      s = shape(s, opts, external);
      variants.push(await runOne(s, v.name, url, opts, sys, (f) => opts.onProgress?.((i + f) / list.length, v.name)));
    }
  } finally {
    await aedes?.close();
  }
  const violations = variants.flatMap((r) => r.guarantees.violations.map((x) => `${r.name}: ${x}`));
  const shaped = shape(structuredClone(base), opts, external);
  const failures = variants.map((r) => workNotDone(r, shaped.durationS, shaped.fleet)).filter((x): x is string => x !== null);
  const run = realtimeRunShape(base, opts);
  const brokerText = opts.broker ?? 'aedes (embedded, MQTT 3.1.1)';
  return {
    scenario: base.name,
    description: base.description,
    mode: 'realtime',
    broker: brokerText,
    seed: opts.seed ?? base.seed,
    run,
    variants,
    sys,
    assumptions: [
      `bounded run: ${variants[0]?.devices ?? 0} devices, ${variants[0]?.simSeconds ?? 0} s of wall time per run (faults scaled into it)`,
      external ? 'broker given by URL; its queue is read from $SYS when it publishes it' : 'aedes speaks MQTT 3.1.1 only: the fleet runs at protocol 4 (message expiry is kept in the device outbox only)',
      'device sessions are kept in memory stores (as RTC memory / NVS would keep them)',
    ],
    ok: violations.length === 0 && failures.length === 0,
    violations,
    failures,
    wallMs: performance.now() - t0,
  };
}

/** What a real-time run of this scenario with these options runs. */
export function realtimeRunShape(base: Scenario, opts: RealtimeOptions): RunShape {
  const external = opts.broker !== undefined;
  const shaped = shape(structuredClone(base), opts, external);
  return {
    devices: shaped.fleet.devices,
    scenarioDevices: base.fleet.devices,
    durationS: shaped.durationS,
    scenarioDurationS: base.durationS,
    drainS: opts.drainS ?? Math.min(base.drainS, 15),
    against: `real sockets: Dormouse Node clients through a fault proxy on 127.0.0.1 to ${external ? `the broker at ${opts.broker}` : 'aedes, embedded on 127.0.0.1 (MQTT 3.1.1)'}`,
  };
}

function shape(s: Scenario, o: RealtimeOptions, external: boolean): Scenario {
  s.fleet.devices = o.devices ?? Math.min(s.fleet.devices, DEFAULT_DEVICES);
  const dur = o.durationS ?? Math.min(s.durationS, DEFAULT_DURATION_S);
  const k = dur / s.durationS;
  s.faults = s.faults.map((f) => scale(f, k));
  s.durationS = dur;
  s.fleet.startSpreadS = Math.min(s.fleet.startSpreadS, dur / 4);
  if (o.seed !== undefined) s.seed = o.seed;
  if (!external) s.fleet.protocol = 4;
  return s;
}

function scale(f: FaultSpec, k: number): FaultSpec {
  if (k >= 1) return f;
  if (f.kind === 'outage') return { ...f, atS: f.atS * k, durationS: f.durationS * k, staggerS: f.staggerS * k };
  if (f.kind === 'power-outage') return { ...f, atS: f.atS * k, durationS: f.durationS * k };
  return { ...f, atS: f.atS * k };
}

interface RtDevice {
  idx: number;
  id: string;
  store: MemorySnapshotStore | null;
  client: NodeClient | null;
  viaOutage: boolean;
  off: boolean;
  asleep: boolean;
  seqOffset: number;
  acked: number;
  timers: Set<NodeJS.Timeout>;
}

async function runOne(
  s: Scenario,
  name: string,
  url: string,
  o: RealtimeOptions,
  sys: RealtimeResult['sys'],
  progress: (f: number) => void,
): Promise<VariantResult> {
  const wall0 = performance.now();
  const f = s.fleet;
  const rng = new Prng(s.seed);
  const tracker = new GuaranteeTracker(f.devices);
  if (f.session === 'clean') tracker.clean.fill(1);
  const target = new URL(url);
  const port = Number(target.port || 1883);
  const host = target.hostname;
  const main = await FaultProxy.start({ targetHost: host, targetPort: port, seed: s.seed });
  const tunnel = await FaultProxy.start({ targetHost: host, targetPort: port, seed: s.seed + 1 });
  if (s.network.latencyMs > 0) {
    main.delay(s.network.latencyMs);
    tunnel.delay(s.network.latencyMs);
  }
  const connectsPerSecond: number[] = [];
  const onPacket = (dir: string, type: number) => {
    if (dir === 'c2s' && type === 1) bump(connectsPerSecond, Math.floor((performance.now() - wall0) / 1000));
  };
  main.onPacket = onPacket;
  tunnel.onPacket = onPacket;

  // The observer: straight to the broker, persistent, at the fleet's QoS.
  const observer = connect(url, { clientId: `dormouse-sim-observer-${s.name}-${name}`.slice(0, 64), protocolVersion: f.protocol, clean: true, keepalive: 30 });
  // No broker, no run: give up at the first refusal (or after BROKER_WAIT_MS) instead of retrying for ever.
  const unreachable = await new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => resolve(`no answer within ${BROKER_WAIT_MS / 1000} s`), BROKER_WAIT_MS);
    observer.once('error', (e: Error) => {
      clearTimeout(timer);
      resolve(e.message);
    });
    observer.once('connect', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
  observer.on('error', () => {});
  if (unreachable !== null) {
    await observer.end(true);
    await main.close();
    await tunnel.close();
    throw new RunFailure(`cannot reach the broker at ${url}: ${unreachable}`);
  }
  observer.on('message', (topic: string, payload: Buffer, packet: { qos: number }) => {
    if (topic.startsWith('$SYS/')) {
      const n = Number(String(payload));
      if (topic.endsWith('messages/stored')) sys.storedPeak = Math.max(sys.storedPeak ?? 0, n);
      else sys.heapPeakBytes = Math.max(sys.heapPeakBytes ?? 0, n);
      return;
    }
    const [dev, seq] = readStamp(new Uint8Array(payload.buffer, payload.byteOffset, payload.length));
    tracker.received(dev, seq, packet.qos);
  });
  await observer.subscribe(f.topic.replace('{id}', '+'), { qos: f.qos });
  await observer.subscribe(['$SYS/broker/messages/stored', '$SYS/broker/heap/current'], { qos: 0 }).catch(() => {});

  const payload = new Uint8Array(f.payloadBytes);
  let publishing = true;
  const devs: RtDevice[] = [];
  const pad = String(f.devices - 1).length;
  for (let i = 0; i < f.devices; i++) {
    devs.push({
      idx: i,
      id: `${s.name}-rt-${String(i).padStart(pad, '0')}`,
      store: f.session === 'persistent' ? new MemorySnapshotStore() : null,
      client: null,
      viaOutage: false,
      off: false,
      asleep: false,
      seqOffset: 0,
      acked: 0,
      timers: new Set(),
    });
  }
  const outage = s.faults.find((x) => x.kind === 'outage');
  if (outage?.kind === 'outage') for (const d of devs) d.viaOutage = rng.float() < outage.share;

  const later = (d: RtDevice | null, ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      d?.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    d?.timers.add(t);
    return t;
  };
  const globalTimers: NodeJS.Timeout[] = [];

  const boot = (d: RtDevice): NodeClient => {
    const c = connect((d.viaOutage ? tunnel : main).url, {
      clientId: d.id,
      clean: f.session === 'clean',
      store: d.store ?? undefined,
      protocolVersion: f.protocol,
      keepalive: f.keepaliveS,
      properties: f.protocol === 5 && f.session === 'persistent' ? { sessionExpiryInterval: f.sessionExpiryS } : undefined,
      capacities: { ...f.capacities },
      outboxPolicy: f.outboxPolicy,
      sessionLostPolicy: f.sessionLost,
      reconnect: { ...f.reconnect },
      connectTimeout: f.connectTimeoutS * 1000,
      random: () => rng.float(),
    });
    c.on('error', () => {});
    c.on('acked', () => {
      tracker.acked++;
      d.acked++;
    });
    c.on('drop', (e: { token: number; reason: number }) => {
      if (e.token === 0) return;
      const why = e.reason === DropReason.Expired ? Drop.Expired : e.reason === DropReason.SessionLostDiscarded ? Drop.SessionLost : e.reason === DropReason.RefusedByServer ? Drop.Refused : Drop.OutboxFull;
      tracker.drop(d.idx, e.token + d.seqOffset, why);
    });
    d.client = c;
    d.asleep = false;
    return c;
  };

  const heldBy = (d: RtDevice, c: NodeClient): number[] => {
    const ss = c.core.session;
    const out: number[] = [];
    for (let i = ss.first; i < ss.first + ss.span; i++) if (ss.state(i) !== RecordState.Free) out.push(ss.token(i) + d.seqOffset);
    return out;
  };

  const abandonClean = (d: RtDevice) => {
    if (d.client && f.session === 'clean' && f.qos > 0) for (const seq of heldBy(d, d.client)) tracker.drop(d.idx, seq, Drop.CleanSessionEnded);
  };

  const sleepThenWake = (d: RtDevice, wokeAt: number) => {
    const c = d.client;
    if (c === null) return;
    abandonClean(d);
    d.client = null;
    d.asleep = true;
    void c.end();
    const next = wokeAt + f.everyS * 1000 - Date.now();
    later(d, next, () => wake(d));
  };

  const wake = (d: RtDevice) => {
    if (d.off || (!publishing && d.store === null)) return;
    const wokeAt = Date.now();
    const c = boot(d);
    if (publishing) {
      // Publish through the NodeClient so its timer is armed; the token is what the core returned.
      writeStamp(payload, d.idx, tracker.next[d.idx]);
      c.publish(f.topic.replace('{id}', d.id), payload, f.expiryS === null ? { qos: f.qos } : { qos: f.qos, properties: { messageExpiryInterval: f.expiryS } }).then(
        (acc) => {
          if (f.qos === 0) tracker.qos0Sent++;
          else d.seqOffset = tracker.accept(d.idx) - acc.token;
        },
        () => tracker.rejected++,
      );
    }
    let done = false;
    const finish = () => {
      if (done || d.client !== c) return;
      done = true;
      sleepThenWake(d, wokeAt);
    };
    c.once('sleepReady', () => setImmediate(finish));
    later(d, f.awakeWindowS * 1000, finish);
  };

  const startAlwaysOn = (d: RtDevice) => {
    if (d.off) return;
    boot(d);
    const tickPublish = () => {
      if (d.off || d.client === null) return;
      if (publishing) {
        writeStamp(payload, d.idx, tracker.next[d.idx]);
        d.client.publish(f.topic.replace('{id}', d.id), payload, f.expiryS === null ? { qos: f.qos } : { qos: f.qos, properties: { messageExpiryInterval: f.expiryS } }).then(
          (acc) => {
            if (f.qos === 0) tracker.qos0Sent++;
            else d.seqOffset = tracker.accept(d.idx) - acc.token;
          },
          () => tracker.rejected++,
        );
      }
      later(d, f.everyS * 1000, tickPublish);
    };
    later(d, f.everyS * 1000, tickPublish);
  };

  const start = f.mode === 'sleepy' ? wake : startAlwaysOn;
  for (const d of devs) later(d, rng.float() * f.startSpreadS * 1000, () => start(d));

  let restoredAt = -1;
  let backCount = 0;
  let fleetBackAt = -1;
  for (const fault of s.faults) {
    const at = fault.atS * 1000;
    if (fault.kind === 'outage') {
      globalTimers.push(setTimeout(() => tunnel.partition(fault.durationS * 1000, fault.mode === 'cut' ? 'refuse' : 'blackhole'), at));
    } else if (fault.kind === 'broker-restart') {
      globalTimers.push(setTimeout(() => { main.partition(fault.downForS * 1000, 'refuse'); tunnel.partition(fault.downForS * 1000, 'refuse'); }, at));
    } else {
      globalTimers.push(
        setTimeout(() => {
          for (const d of devs) {
            for (const t of d.timers) clearTimeout(t);
            d.timers.clear();
            abandonClean(d);
            d.off = true;
            const c = d.client;
            d.client = null;
            void c?.end(true);
          }
          const down = (fault.durationS + fault.brokerBootS) * 1000;
          main.partition(down, 'refuse');
          tunnel.partition(down, 'refuse');
        }, at),
        setTimeout(() => {
          restoredAt = performance.now();
          for (const d of devs) {
            d.off = false;
            later(d, rng.float() * fault.bootSpreadS * 1000, () => {
              start(d);
              d.client?.once('connect', () => {
                if (++backCount === devs.length) fleetBackAt = performance.now();
              });
            });
          }
        }, at + fault.durationS * 1000),
      );
    }
  }

  const series: SeriesPoint[] = [];
  const stateOf = (d: RtDevice): DeviceState => (d.off ? 'offline' : d.client === null ? 'asleep' : d.client.connected ? 'awake' : 'reconnecting');
  const marks = faultMarks(s.faults);
  let connectSecondsSent = 0;
  const frame = (over = false): Frame => {
    const totals = { devices: devs.length, awake: 0, asleep: 0, offline: 0, reconnecting: 0 };
    let connectSeconds: ConnectSeconds;
    [connectSeconds, connectSecondsSent] = connectSecondsSince(connectsPerSecond, connectSecondsSent, performance.now() - wall0, over);
    for (const d of devs) totals[stateOf(d)]++;
    const sec = Math.floor((performance.now() - wall0) / 1000) - 1;
    return {
      scenario: `${name} (realtime)`,
      simTimeMs: Math.round(performance.now() - wall0),
      wallTimeMs: Math.round(performance.now() - wall0),
      devices: devs.slice(0, 2000).map((d) => ({
        id: d.id,
        state: stateOf(d),
        inflight: d.client?.core.session.inflight ?? 0,
        queued: d.client?.core.session.queued ?? 0,
        sent: tracker.next[d.idx],
        acked: d.acked,
        lost: 0,
      })),
      totals,
      broker: { queued: sys.storedPeak ?? 0, delivered: tracker.delivered + tracker.qos0Delivered, connects: main.packets('c2s', 'CONNECT') + tunnel.packets('c2s', 'CONNECT'), connectsPerSecond: sec >= 0 ? (connectsPerSecond[sec] ?? 0) : 0, memoryEstimateBytes: sys.heapPeakBytes ?? 0, connectSeconds },
      counters: { accepted: tracker.accepted, acked: tracker.acked, lost: 0, duplicates: tracker.dupQ2, dropped: tracker.dropped.reduce((a, b) => a + b, 0) },
      marks,
    };
  };
  o.feed?.setDetailProvider((id) => {
    const d = devs.find((x) => x.id === id);
    if (!d) return null;
    return { id, state: stateOf(d), inflight: [], outbox: [], handshakes: [] };
  });
  const runMs = s.durationS * 1000;
  const ticker = setInterval(() => {
    const t = performance.now() - wall0;
    progress(Math.min(1, t / runMs));
    o.feed?.frame(frame());
    series.push({ tS: Math.round(t / 100) / 10, brokerQueued: 0, brokerMemoryBytes: 0, devicesOffline: devs.filter((d) => !d.off && d.client !== null && !d.client.connected).length, devicesAwake: devs.filter((d) => d.client?.connected).length, outboxHeld: devs.reduce((a, d) => a + (d.client?.core.session.live ?? 0), 0), connectsPerSecond: connectsPerSecond[Math.floor(t / 1000) - 1] ?? 0 });
  }, 250);

  await sleep(runMs);
  // Drain: faults heal, no new readings, wait (bounded) until devices hold nothing.
  publishing = false;
  main.heal();
  tunnel.heal();
  const drainMs = (o.drainS ?? Math.min(s.drainS, 15)) * 1000;
  const drainEnd = performance.now() + drainMs;
  while (performance.now() < drainEnd) {
    const holding = devs.some((d) => (d.client?.core.session.live ?? 0) > 0 || (d.client === null && d.store !== null && d.asleep && storeHolds(d)));
    if (!holding) break;
    await sleep(200);
  }
  await sleep(300 + s.network.latencyMs * 4); // the observer's last deliveries
  clearInterval(ticker);
  for (const t of globalTimers) clearTimeout(t);
  for (const d of devs) {
    for (const t of d.timers) clearTimeout(t);
    d.timers.clear();
  }
  const heldAtEnd = new Map<number, number[]>();
  for (const d of devs) if (d.client) heldAtEnd.set(d.idx, heldBy(d, d.client));
  await Promise.all(devs.map((d) => d.client?.end(true)));
  const g = tracker.report((idx) => heldAtEnd.get(idx) ?? []);
  const last = frame(true);
  o.feed?.frame({ ...last, counters: { ...last.counters, lost: g.lost } });
  await observer.end();
  await main.close();
  await tunnel.close();
  const wallMs = performance.now() - wall0;
  const peak = (a: number[]) => a.reduce((m, x) => (x > m ? x : m), 0);
  return {
    name,
    devices: devs.length,
    qos: f.qos,
    session: f.session,
    simSeconds: Math.round(wallMs / 1000),
    wallMs: Math.round(wallMs),
    events: 0,
    deviceSecondsPerWallSecond: devs.length,
    setupBytesPerDevice: 0,
    guarantees: g,
    broker: {
      connects: main.packets('c2s', 'CONNECT') + tunnel.packets('c2s', 'CONNECT'),
      refusedBusy: 0,
      peakConnectsPerSecond: peak(connectsPerSecond),
      peakAttemptsPerSecond: peak(connectsPerSecond),
      queuedPeak: sys.storedPeak ?? 0,
      queuedPeakAtS: 0,
      queuedEnd: 0,
      memoryPeakBytes: sys.heapPeakBytes ?? 0,
      droppedQueueFull: 0,
      expired: 0,
      publishesIn: main.packets('c2s', 'PUBLISH') + tunnel.packets('c2s', 'PUBLISH'),
      publishesOut: main.packets('s2c', 'PUBLISH') + tunnel.packets('s2c', 'PUBLISH'),
    },
    downlink: null,
    storm: restoredAt >= 0 ? { powerRestoredAtS: (restoredAt - wall0) / 1000, fleetBackAfterS: fleetBackAt >= 0 ? (fleetBackAt - restoredAt) / 1000 : null, devicesBack: backCount, attemptsTotal: peak(connectsPerSecond) } : null,
    energy: null,
    series,
  };

  function storeHolds(d: RtDevice): boolean {
    void d;
    return false; // sleepy persistent devices wake on their own schedule and drain then
  }
}

function bump(a: number[], i: number): void {
  while (a.length <= i) a.push(0);
  a[i]++;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
