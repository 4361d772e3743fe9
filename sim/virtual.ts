// The virtual-time simulator: one VirtualClock drives the real Dormouse core
// (one DormouseClient per awake device) and the BrokerModel over VirtualLinks.
// A sleeping device holds no client, only its MemorySnapshotStore (what its
// RTC memory or flash keeps) and a few numbers in shared typed arrays; at each
// wake a new client is restored from the store, as on the board.
//
// Per scenario variant: guarantees (GuaranteeTracker), broker queue and
// connection rate over time, the radio and battery model, and how fast the
// simulation ran (device-seconds of virtual time per wall second).

import { DormouseClient, ConnState, SessionLostPolicy, type ClientOptions } from '../modules/session/client.js';
import { ClientEvent, DropReason, OutboxPolicy, type ClientHooks } from '../modules/session/ports.js';
import { RecordState } from '../modules/session/session-state.js';
import type { PublishPacket } from '../modules/mqtt/types.js';
import { VirtualClock } from './clock.js';
import { BrokerModel } from './broker-model.js';
import { MemorySnapshotStore } from './memory-store.js';
import { BrokerHost, HandshakeLog, VirtualLink, type LinkConnection, type LinkEnd } from './link.js';
import { Prng } from './prng.js';
import { Drop, GuaranteeTracker, readStamp, writeStamp, type GuaranteeReport } from './guarantees.js';
import { addDevice, emptyTotals, energyReport, radioAssumptions, type EnergyReport } from './radio.js';
import { applyVariant, type FaultSpec, type Scenario } from './scenario.js';
import { planFor, type PlanResult } from './plan.js';
import type { ConnectSeconds, DashboardFeed, DeviceDetail, DeviceState, DeviceView, FaultMark, Frame } from './dashboard/types.js';

export interface RunOptions {
  /** Override fleet.devices. */
  devices?: number;
  /** Override durationS. */
  durationS?: number;
  seed?: number;
  /** Only these variants (by name). */
  variants?: string[];
  feed?: DashboardFeed | null;
  /** Wall ms between dashboard frames and progress reports. Default 250. */
  frameEveryMs?: number;
  /** Called with the fraction done (0..1) of the whole run, at most every frameEveryMs. */
  onProgress?: (fraction: number, label: string) => void;
  /** Devices whose last packets are logged from the start (the dashboard can watch others on request). Default 50. */
  watchFirst?: number;
}

export interface SeriesPoint {
  tS: number;
  brokerQueued: number;
  brokerMemoryBytes: number;
  devicesOffline: number;
  devicesAwake: number;
  outboxHeld: number;
  connectsPerSecond: number;
}

export interface VariantResult {
  name: string;
  devices: number;
  qos: number;
  session: string;
  simSeconds: number;
  wallMs: number;
  events: number;
  deviceSecondsPerWallSecond: number;
  /** Heap + array buffers grown while building the fleet, per device. */
  setupBytesPerDevice: number;
  guarantees: GuaranteeReport;
  broker: {
    connects: number;
    refusedBusy: number;
    peakConnectsPerSecond: number;
    peakAttemptsPerSecond: number;
    queuedPeak: number;
    queuedPeakAtS: number;
    queuedEnd: number;
    memoryPeakBytes: number;
    droppedQueueFull: number;
    expired: number;
    publishesIn: number;
    publishesOut: number;
  };
  downlink: { published: number; delivered: number; notPublishedBrokerDown: number } | null;
  storm: { powerRestoredAtS: number; fleetBackAfterS: number | null; devicesBack: number; attemptsTotal: number } | null;
  energy: EnergyReport | null;
  series: SeriesPoint[];
}

/** What actually ran, beside what the scenario file says (overrides and caps change it). */
export interface RunShape {
  devices: number;
  /** fleet.devices in the scenario as written. */
  scenarioDevices: number;
  durationS: number;
  scenarioDurationS: number;
  drainS: number;
  /** What the devices ran against, in words. */
  against: string;
}

export interface SimResult {
  scenario: string;
  description: string;
  mode: 'virtual';
  seed: number;
  run: RunShape;
  variants: VariantResult[];
  plan: PlanResult | null;
  assumptions: string[];
  /** No guarantee broken and the run did its work (see failures). */
  ok: boolean;
  violations: string[];
  /** Why the run could not do its work (e.g. no message was accepted), one line each; empty when it did. */
  failures: string[];
  wallMs: number;
}

/** A variant that tested nothing: no device published, or none reached the broker. */
export function workNotDone(v: VariantResult, durationS: number, fleet: { everyS: number; startSpreadS: number }): string | null {
  const g = v.guarantees;
  const published = v.qos === 0 ? g.qos0Sent : g.accepted;
  if (v.broker.connects === 0) return `${v.name}: no device connected to the broker, so nothing was tested`;
  if (published === 0) {
    const hint =
      durationS < fleet.everyS ? ` (the run, ${durationS} s, is shorter than the devices' period, fleet.everyS ${fleet.everyS} s)`
      : durationS < fleet.startSpreadS ? ` (the run, ${durationS} s, is shorter than the devices' start spread, fleet.startSpreadS ${fleet.startSpreadS} s)`
      : '';
    return `${v.name}: no message was accepted: no device published a reading${hint}, so nothing was tested`;
  }
  return null;
}

export const VIRTUAL_AGAINST = 'the Dormouse core against a broker model (sim/broker-model.ts) on a virtual clock: no sockets, no real broker';

const DEVICE_ASLEEP = 0;
const DEVICE_AWAKE = 1;
const DEVICE_OFF = 2;

/** Run every variant of a scenario (or the scenario itself when it has none). */
export async function runVirtual(base: Scenario, opts: RunOptions = {}): Promise<SimResult> {
  const t0 = performance.now();
  const sc = withRunOptions(base, opts);
  const list = sc.variants.length > 0 ? sc.variants.filter((v) => !opts.variants || opts.variants.includes(v.name)) : [{ name: sc.name, overrides: {} }];
  const results: VariantResult[] = [];
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    const scv = v.overrides && Object.keys(v.overrides).length > 0 ? withRunOptions(applyVariant({ ...sc, variants: [] }, v.overrides), opts) : sc;
    const engine = new Engine(scv, v.name, opts, (f) => opts.onProgress?.((i + f) / list.length, v.name));
    results.push(await engine.run());
  }
  const violations: string[] = [];
  for (const r of results) for (const x of r.guarantees.violations) violations.push(`${r.name}: ${x}`);
  const failures = results.map((r) => workNotDone(r, sc.durationS, sc.fleet)).filter((x): x is string => x !== null);
  const assumptions: string[] = [];
  if (sc.report.energy) assumptions.push(...radioAssumptions(sc.radio, sc.network.bitrateBps, sc.network.latencyMs));
  assumptions.push('device snapshot stores survive power loss (flash/NVS); the broker keeps persistent sessions across restarts unless a fault says otherwise');
  return {
    scenario: sc.name,
    description: sc.description,
    mode: 'virtual',
    seed: sc.seed,
    run: virtualRunShape(base, opts),
    variants: results,
    plan: sc.report.plan ? planFor(sc) : null,
    assumptions,
    ok: violations.length === 0 && failures.length === 0,
    violations,
    failures,
    wallMs: performance.now() - t0,
  };
}

/** What a virtual run of this scenario with these options runs. */
export function virtualRunShape(base: Scenario, opts: RunOptions): RunShape {
  const sc = withRunOptions(base, opts);
  return { devices: sc.fleet.devices, scenarioDevices: base.fleet.devices, durationS: sc.durationS, scenarioDurationS: base.durationS, drainS: sc.drainS, against: VIRTUAL_AGAINST };
}

/** The faults' windows in sim time, for the dashboard's charts. */
export function faultMarks(faults: readonly FaultSpec[]): FaultMark[] {
  return faults.map((f): FaultMark => {
    switch (f.kind) {
      case 'outage':
        return {
          kind: f.kind,
          label: `outage: ${Math.round(f.share * 100)} % of devices cut off (${f.mode}) for ${round1(f.durationS)} s each${f.staggerS > 0 ? `, going over ${round1(f.staggerS)} s` : ''}`,
          fromMs: f.atS * 1000,
          toMs: (f.atS + f.staggerS + f.durationS) * 1000,
        };
      case 'broker-restart':
        return { kind: f.kind, label: `broker restart: down ${round1(f.downForS)} s${f.keepSessions ? '' : ', sessions lost'}`, fromMs: f.atS * 1000, toMs: (f.atS + f.downForS) * 1000 };
      case 'power-outage':
        return { kind: f.kind, label: `power outage: ${round1(f.durationS)} s, the broker back ${round1(f.brokerBootS)} s after the power`, fromMs: f.atS * 1000, toMs: (f.atS + f.durationS + f.brokerBootS) * 1000 };
    }
  });
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * The per-second counts a frame carries: the whole seconds completed since the
 * last frame (all that is left when the run is over). `sent` is how far the
 * previous frames went; returns the counts and the new mark.
 */
export function connectSecondsSince(perSecond: readonly number[], sent: number, nowMs: number, over: boolean): [ConnectSeconds, number] {
  const upTo = over ? perSecond.length : Math.min(perSecond.length, Math.floor(nowMs / 1000));
  const to = Math.max(sent, upTo);
  return [{ fromS: sent, counts: perSecond.slice(sent, to) }, to];
}

function withRunOptions(sc: Scenario, o: RunOptions): Scenario {
  const out = structuredClone(sc);
  if (o.devices !== undefined) out.fleet.devices = o.devices;
  if (o.durationS !== undefined) {
    // Faults are kept inside the shorter run by scaling their times.
    const k = o.durationS / out.durationS;
    if (k < 1) out.faults = out.faults.map((f) => scaleFault(f, k));
    out.durationS = o.durationS;
    out.sampleEveryS = Math.max(0.1, Math.min(out.sampleEveryS, o.durationS / 20));
  }
  if (o.seed !== undefined) out.seed = o.seed;
  return out;
}

function scaleFault(f: FaultSpec, k: number): FaultSpec {
  switch (f.kind) {
    case 'outage':
      return { ...f, atS: f.atS * k, durationS: f.durationS * k, staggerS: f.staggerS * k };
    case 'broker-restart':
      return { ...f, atS: f.atS * k };
    case 'power-outage':
      return { ...f, atS: f.atS * k, durationS: f.durationS * k };
  }
}

/** One device: its store, link and, while awake, its client. Implements the link's device end. */
class SimDevice implements LinkEnd {
  client: DormouseClient | null = null;
  timerAt = Infinity;
  /** Bumped at every wake, sleep and power change: events of an older generation are ignored. */
  gen = 0;
  mode = DEVICE_ASLEEP;
  awakeSince = 0;
  awakeMs = 0;
  wakes = 0;
  nextWakeAt = 0;
  backAfterPower = false;

  constructor(
    readonly sim: Engine,
    readonly idx: number,
    readonly id: string,
    readonly store: MemorySnapshotStore | null,
    readonly link: VirtualLink,
  ) {}

  opened(now: number): void {
    if (this.client === null) return;
    this.client.transportOpened(now);
    this.sim.arm(this);
  }

  received(bytes: Uint8Array, now: number): void {
    if (this.client === null) return;
    this.client.receive(bytes, now);
    this.sim.arm(this);
  }

  closed(now: number): void {
    if (this.client === null) return;
    this.client.transportClosed(now);
    this.sim.arm(this);
  }
}

class Engine {
  readonly clock = new VirtualClock(0);
  readonly rng: Prng;
  readonly model: BrokerModel;
  readonly host: BrokerHost;
  readonly tracker: GuaranteeTracker;
  readonly devices: SimDevice[] = [];
  readonly acked: Uint32Array;
  readonly seqOffset: Int32Array;
  readonly random: () => number;
  readonly clientOptions: Omit<ClientOptions, 'clientId'>;
  readonly payload: Uint8Array;
  readonly downPayload: Uint8Array;
  publishing = true;
  powerRestoredAt = -1;
  devicesBack = 0;
  fleetBackAt = -1;
  downPublished = 0;
  downDelivered = 0;
  downNotPublished = 0;
  series: SeriesPoint[] = [];
  queuedPeak = 0;
  queuedPeakAt = 0;
  setupBytes = 0;
  /** Seconds of host.connectsPerSecond already sent to the dashboard. */
  connectSecondsSent = 0;
  wall0 = 0;
  readonly marks: FaultMark[];
  readonly endMs: number;
  readonly fleetEndMs: number;
  readonly s: Scenario;

  constructor(
    s: Scenario,
    readonly name: string,
    readonly opts: RunOptions,
    readonly progress: (fraction: number) => void,
  ) {
    this.s = s;
    const f = s.fleet;
    this.rng = new Prng(s.seed);
    this.random = () => this.rng.float();
    this.model = new BrokerModel({
      maxQueuedPerSession: s.broker.maxQueuedPerClient,
      maxInflightPerSession: s.broker.maxInflightPerClient,
      maxPacketSize: Math.max(1024, f.payloadBytes + 512),
    });
    this.host = new BrokerHost(this.clock, this.model, {
      maxConnectsPerSecond: s.broker.maxConnectsPerSecond ?? undefined,
      tickEveryMs: s.broker.tickEveryS * 1000,
    });
    this.tracker = new GuaranteeTracker(f.devices);
    if (f.session === 'clean') this.tracker.clean.fill(1);
    this.acked = new Uint32Array(f.devices);
    this.seqOffset = new Int32Array(f.devices);
    this.payload = new Uint8Array(f.payloadBytes);
    this.downPayload = new Uint8Array(Math.max(8, s.downlink?.payloadBytes ?? 8));
    this.marks = faultMarks(s.faults);
    this.endMs = s.durationS * 1000;
    this.fleetEndMs = this.endMs + s.drainS * 1000;
    const persistent = f.session === 'persistent';
    const down = s.downlink;
    this.clientOptions = {
      protocolVersion: f.protocol,
      clean: !persistent,
      keepalive: f.keepaliveS,
      sessionExpiryInterval: persistent ? f.sessionExpiryS : 0,
      capacities: {
        inflight: f.capacities.inflight,
        outbox: f.capacities.outbox,
        storeBytes: f.capacities.storeBytes,
        incomingQos2: 4,
        subscriptions: 1,
        subscriptionBytes: 64,
      },
      receiveBufferSize: Math.max(256, (down?.payloadBytes ?? 0) + 128),
      sendBufferSize: Math.max(512, f.payloadBytes + 128),
      outboxPolicy: f.outboxPolicy === 'drop-oldest' ? OutboxPolicy.DropOldest : f.outboxPolicy === 'drop-newest' ? OutboxPolicy.DropNewest : OutboxPolicy.Reject,
      sessionLostPolicy: f.sessionLost === 'discard' ? SessionLostPolicy.Discard : SessionLostPolicy.Republish,
      reconnect: { baseMs: f.reconnect.baseMs, capMs: f.reconnect.capMs, backoff: f.reconnect.backoff, jitter: f.reconnect.jitter },
      connectTimeoutMs: f.connectTimeoutS * 1000,
    };
    this.model.onMessage = (m) => {
      const [dev, seq] = readStamp(m.payload);
      this.tracker.received(dev, seq, m.qos);
    };
  }

  // ---- set-up ---------------------------------------------------------------

  build(): void {
    const s = this.s;
    const f = s.fleet;
    const before = memoryNow();
    const watch = this.opts.watchFirst ?? 50;
    const pad = String(f.devices - 1).length;
    for (let i = 0; i < f.devices; i++) {
      const id = `${s.name}-${String(i).padStart(pad, '0')}`;
      const store = f.session === 'persistent' ? new MemorySnapshotStore() : null;
      const dev = new SimDevice(this, i, id, store, null as unknown as VirtualLink);
      const link = new VirtualLink(this.clock, this.host, dev, {
        latencyMs: s.network.latencyMs,
        jitterMs: s.network.jitterMs,
        bitrateBps: s.network.bitrateBps,
        random: this.random,
      });
      (dev as { link: VirtualLink }).link = link;
      if (i < watch) link.log = new HandshakeLog();
      this.devices.push(dev);
      const start = this.rng.float() * f.startSpreadS * 1000;
      dev.nextWakeAt = start;
      this.clock.at(start, f.mode === 'sleepy' ? wakeEvent : bootEvent, dev, dev.gen);
    }
    this.setupBytes = Math.max(0, memoryNow() - before);
    for (const fault of s.faults) this.scheduleFault(fault);
    if (s.downlink) this.clock.at(s.downlink.everyS * 1000, downlinkEvent, this);
    this.clock.at(0, sampleEvent, this);
    this.clock.at(this.endMs, endOfFaultsEvent, this);
    this.host.startTicking();
  }

  scheduleFault(f: FaultSpec): void {
    const at = f.atS * 1000;
    switch (f.kind) {
      case 'outage':
        for (const d of this.devices) {
          if (this.rng.float() >= f.share) continue;
          this.clock.at(at + this.rng.float() * f.staggerS * 1000, outageEvent, d, f);
        }
        return;
      case 'broker-restart':
        this.clock.at(at, brokerRestartEvent, this, f);
        return;
      case 'power-outage':
        this.clock.at(at, powerOffEvent, this, f);
        this.clock.at(at + f.durationS * 1000, powerOnEvent, this, f);
        return;
    }
  }

  // ---- devices --------------------------------------------------------------

  /** Keep one timer event per device at its client's next deadline. */
  arm(d: SimDevice): void {
    const c = d.client;
    if (c === null) return;
    const t = c.nextDeadline();
    if (t < d.timerAt) {
      d.timerAt = t;
      this.clock.at(t, timerEvent, d, t);
    }
  }

  newClient(d: SimDevice): DormouseClient {
    const now = this.clock.now;
    const link = d.link;
    const engine = this;
    const hooks: ClientHooks = {
      send: (b) => link.send(b),
      open: () => {
        link.open();
        const s = engine.s.network;
        if (s.cutProbability > 0 && engine.rng.float() < s.cutProbability) {
          engine.clock.after(engine.rng.float() * s.cutWithinMs, cutEvent, link, link.conn!);
        }
      },
      close: () => link.close(),
      message: (p: PublishPacket) => {
        void p;
        engine.downDelivered++;
      },
      event: (kind, a, b) => engine.onClientEvent(d, kind, a, b),
    };
    const c = new DormouseClient({ ...this.clientOptions, clientId: d.id }, hooks, d.store, this.random);
    c.restore(now);
    if (this.s.downlink) c.subscribe(topicOf(this.s.downlink.topic, d.id), this.s.downlink.qos, now);
    d.client = c;
    d.timerAt = Infinity;
    return c;
  }

  onClientEvent(d: SimDevice, kind: ClientEvent, a: number, b: number): void {
    const now = this.clock.now;
    switch (kind) {
      case ClientEvent.Connected:
        if (this.powerRestoredAt >= 0 && !d.backAfterPower) {
          d.backAfterPower = true;
          if (++this.devicesBack === this.devices.length) this.fleetBackAt = now;
        }
        return;
      case ClientEvent.Acked:
        this.tracker.acked++;
        this.acked[d.idx]++;
        return;
      case ClientEvent.Dropped: {
        if (a === 0) return; // drop-newest: publish() returned an error; counted as rejected there
        const why = b === DropReason.Expired ? Drop.Expired : b === DropReason.SessionLostDiscarded ? Drop.SessionLost : b === DropReason.RefusedByServer ? Drop.Refused : Drop.OutboxFull;
        this.tracker.drop(d.idx, a + this.seqOffset[d.idx], why);
        return;
      }
      case ClientEvent.SleepReady:
        if (this.s.fleet.mode === 'sleepy') this.clock.at(now, sleepEvent, d, d.gen);
        return;
    }
  }

  publishReading(d: SimDevice): void {
    const c = d.client!;
    const f = this.s.fleet;
    const t = this.tracker;
    writeStamp(this.payload, d.idx, t.next[d.idx]);
    const token = c.publish(topicOf(f.topic, d.id), this.payload, f.expiryS === null ? { qos: f.qos } : { qos: f.qos, messageExpiryInterval: f.expiryS }, this.clock.now);
    if (token < 0) {
      t.rejected++;
      return;
    }
    if (f.qos === 0) {
      t.qos0Sent++;
      return;
    }
    const seq = t.accept(d.idx);
    this.seqOffset[d.idx] = seq - token;
  }

  /** A clean session keeps nothing: what it still held is given up, by the device's own choice. */
  abandonClean(d: SimDevice): void {
    const c = d.client;
    if (c === null || !c.clean || this.s.fleet.qos === 0) return;
    for (const seq of this.heldBy(d.idx, c)) this.tracker.drop(d.idx, seq, Drop.CleanSessionEnded);
  }

  heldBy(idx: number, c: DormouseClient): number[] {
    const s = c.session;
    const out: number[] = [];
    for (let i = s.first; i < s.first + s.span; i++) if (s.state(i) !== RecordState.Free) out.push(s.token(i) + this.seqOffset[idx]);
    return out;
  }

  /** The device is up: a new generation of events and a client restored from its store. */
  #awaken(d: SimDevice): DormouseClient {
    d.gen++;
    d.mode = DEVICE_AWAKE;
    d.awakeSince = this.clock.now;
    d.wakes++;
    return this.newClient(d);
  }

  wake(d: SimDevice): void {
    const now = this.clock.now;
    const c = this.#awaken(d);
    if (this.publishing) this.publishReading(d);
    c.start(now);
    this.arm(d);
    this.clock.at(now + this.s.fleet.awakeWindowS * 1000, sleepEvent, d, d.gen);
  }

  sleep(d: SimDevice): void {
    const now = this.clock.now;
    const c = d.client;
    if (c === null) return;
    this.abandonClean(d);
    c.end(now);
    d.client = null;
    d.gen++;
    d.mode = DEVICE_ASLEEP;
    d.awakeMs += now - d.awakeSince;
    const every = this.s.fleet.everyS * 1000;
    let next = d.nextWakeAt + every;
    while (next <= now) next += every;
    d.nextWakeAt = next;
    this.clock.at(next, wakeEvent, d, d.gen);
  }

  boot(d: SimDevice): void {
    const now = this.clock.now;
    const c = this.#awaken(d);
    c.start(now);
    this.arm(d);
    this.clock.at(now + this.s.fleet.everyS * 1000, publishEvent, d, d.gen);
  }

  powerOff(d: SimDevice): void {
    const now = this.clock.now;
    if (d.client !== null) {
      this.abandonClean(d);
      d.client = null;
      d.awakeMs += now - d.awakeSince;
    }
    d.link.powerLoss();
    d.gen++;
    d.mode = DEVICE_OFF;
  }

  stateOf(d: SimDevice): DeviceState {
    if (d.mode === DEVICE_OFF) return 'offline';
    const c = d.client;
    if (c === null) return 'asleep';
    if (c.state === ConnState.Connected) return 'awake';
    return d.link.partitioned ? 'offline' : 'reconnecting';
  }

  // ---- running --------------------------------------------------------------

  async run(): Promise<VariantResult> {
    const wall0 = performance.now();
    this.wall0 = wall0;
    this.build();
    const feed = this.opts.feed ?? null;
    feed?.setDetailProvider((id) => this.detail(id));
    const frameEvery = this.opts.frameEveryMs ?? 250;
    let nextFrame = performance.now() + frameEvery;
    const clock = this.clock;
    const end = this.fleetEndMs;
    while (clock.nextAt <= end) {
      for (let k = 0; k < 4096 && clock.nextAt <= end; k++) clock.step();
      const w = performance.now();
      if (w >= nextFrame) {
        nextFrame = w + frameEvery;
        this.progress(clock.now / end);
        if (feed) {
          feed.frame(this.frame(w - wall0, null));
          await new Promise((r) => setImmediate(r));
        }
      }
    }
    clock.runUntil(end);
    const guarantees = this.tracker.report((idx) => this.held(idx));
    const wallMs = performance.now() - wall0;
    if (feed) feed.frame(this.frame(wallMs, guarantees));
    this.progress(1);
    return this.result(guarantees, wallMs);
  }

  /** Sequence numbers a device still holds, read from its client or, asleep, from its store. */
  held(idx: number): number[] {
    const d = this.devices[idx];
    if (d.client !== null) return this.heldBy(idx, d.client);
    if (d.store === null) return [];
    const probe = new DormouseClient({ ...this.clientOptions, clientId: d.id }, NO_HOOKS, d.store.clone(), this.random);
    probe.restore(this.clock.now);
    return this.heldBy(idx, probe);
  }

  sample(): void {
    const s = this.s;
    let offline = 0;
    let awake = 0;
    let held = 0;
    for (const d of this.devices) {
      const st = this.stateOf(d);
      if (st === 'offline' || st === 'reconnecting') offline++;
      if (d.client !== null) {
        awake++;
        held += d.client.session.live;
      }
    }
    const q = this.model.stats.queued;
    if (q > this.queuedPeak) {
      this.queuedPeak = q;
      this.queuedPeakAt = this.clock.now / 1000;
    }
    const sec = Math.floor(this.clock.now / 1000) - 1;
    this.series.push({
      tS: Math.round(this.clock.now / 100) / 10,
      brokerQueued: q,
      brokerMemoryBytes: Math.round(q * this.messageCost()),
      devicesOffline: offline,
      devicesAwake: awake,
      outboxHeld: held,
      connectsPerSecond: sec >= 0 ? (this.host.connectsPerSecond[sec] ?? 0) : 0,
    });
    void s;
    // The dashboard's charts get a point at every sample too, so a fast run is still drawn in full.
    this.opts.feed?.frame(this.frame(performance.now() - this.wall0, null));
  }

  /** Broker bytes per queued message: payload + the overhead O of the plan. */
  messageCost(): number {
    return (this.s.downlink?.payloadBytes ?? this.s.fleet.payloadBytes) + this.s.broker.overheadBytes;
  }

  frame(wallMs: number, g: GuaranteeReport | null): Frame {
    const n = this.devices.length;
    const totals = { devices: n, awake: 0, asleep: 0, offline: 0, reconnecting: 0 };
    for (const d of this.devices) totals[this.stateOf(d)]++;
    const step = Math.max(1, n / 2000);
    const views: DeviceView[] = [];
    for (let x = 0; x < n && views.length < 2000; x += step) {
      const d = this.devices[Math.floor(x)];
      const c = d.client;
      views.push({
        id: d.id,
        state: this.stateOf(d),
        inflight: c?.session.inflight ?? 0,
        queued: c?.session.queued ?? 0,
        sent: this.tracker.next[d.idx],
        acked: this.acked[d.idx],
        lost: 0,
      });
    }
    const sec = Math.floor(this.clock.now / 1000) - 1;
    const t = this.tracker;
    let connectSeconds: ConnectSeconds;
    [connectSeconds, this.connectSecondsSent] = connectSecondsSince(this.host.connectsPerSecond, this.connectSecondsSent, this.clock.now, g !== null);
    return {
      scenario: this.name,
      simTimeMs: this.clock.now,
      wallTimeMs: Math.round(wallMs),
      devices: views,
      totals,
      broker: {
        queued: this.model.stats.queued,
        delivered: t.delivered + t.qos0Delivered,
        connects: this.model.stats.connects,
        connectsPerSecond: sec >= 0 ? (this.host.connectsPerSecond[sec] ?? 0) : 0,
        memoryEstimateBytes: Math.round(this.model.stats.queued * this.messageCost()),
        connectSeconds,
      },
      marks: this.marks,
      counters: {
        accepted: t.accepted,
        acked: t.acked,
        lost: g?.lost ?? 0,
        duplicates: t.dupQ2 + t.dupQ2Clean,
        dropped: t.dropped.reduce((x, y) => x + y, 0),
      },
    };
  }

  detail(id: string): DeviceDetail | null {
    const idx = Number(id.slice(id.lastIndexOf('-') + 1));
    const d = this.devices[idx];
    if (d === undefined || d.id !== id) return null;
    if (d.link.log === null) d.link.log = new HandshakeLog(); // watched from now on
    const c = d.client;
    const inflight: DeviceDetail['inflight'] = [];
    const outbox: DeviceDetail['outbox'] = [];
    if (c !== null) {
      const s = c.session;
      const sec = Math.floor(this.clock.now / 1000);
      for (let i = s.first; i < s.first + s.span; i++) {
        const st = s.state(i);
        if (st === RecordState.Free) continue;
        if (st === RecordState.Queued) {
          const e = s.expiresAt(i);
          outbox.push({ token: s.token(i), qos: s.qos(i), bytes: s.length(i), expiresInS: e === 0 ? null : e - sec });
        } else {
          inflight.push({ token: s.token(i), packetId: s.packetId(i), qos: s.qos(i), state: st === RecordState.SentPubrel ? 'pubrel' : 'sent' });
        }
      }
    }
    return { id, state: this.stateOf(d), inflight, outbox, handshakes: d.link.log.items.slice() };
  }

  result(g: GuaranteeReport, wallMs: number): VariantResult {
    const s = this.s;
    const st = this.model.stats;
    const simS = this.fleetEndMs / 1000;
    let energy: EnergyReport | null = null;
    if (s.report.energy) {
      const totals = emptyTotals();
      for (const d of this.devices) {
        const awake = d.awakeMs + (d.client !== null ? this.clock.now - d.awakeSince : 0);
        addDevice(totals, d.link.counters, awake, Math.max(0, this.fleetEndMs - awake), d.wakes, s.radio, s.network.bitrateBps, s.network.latencyMs);
      }
      energy = energyReport(totals, s.fleet.qos === 0 ? g.qos0Delivered : g.delivered, this.devices.length, s.radio);
    }
    const peak = (a: number[]) => a.reduce((m, x) => (x > m ? x : m), 0);
    const restoredS = this.powerRestoredAt / 1000;
    return {
      name: this.name,
      devices: this.devices.length,
      qos: s.fleet.qos,
      session: s.fleet.session,
      simSeconds: simS,
      wallMs: Math.round(wallMs),
      events: this.clock.events,
      deviceSecondsPerWallSecond: Math.round((this.devices.length * simS) / (wallMs / 1000)),
      setupBytesPerDevice: Math.round(this.setupBytes / this.devices.length),
      guarantees: g,
      broker: {
        connects: st.connects,
        refusedBusy: this.host.refusedBusy,
        peakConnectsPerSecond: peak(this.host.connectsPerSecond),
        peakAttemptsPerSecond: peak(this.host.attemptsPerSecond),
        queuedPeak: this.queuedPeak,
        queuedPeakAtS: this.queuedPeakAt,
        queuedEnd: st.queued,
        memoryPeakBytes: Math.round(this.queuedPeak * this.messageCost()),
        droppedQueueFull: st.dropped,
        expired: st.expired,
        publishesIn: st.publishesIn,
        publishesOut: st.publishesOut,
      },
      downlink: s.downlink ? { published: this.downPublished, delivered: this.downDelivered, notPublishedBrokerDown: this.downNotPublished } : null,
      storm:
        this.powerRestoredAt >= 0
          ? {
              powerRestoredAtS: restoredS,
              fleetBackAfterS: this.fleetBackAt >= 0 ? (this.fleetBackAt - this.powerRestoredAt) / 1000 : null,
              devicesBack: this.devicesBack,
              attemptsTotal: this.host.attemptsPerSecond.slice(Math.floor(restoredS)).reduce((x, y) => x + y, 0),
            }
          : null,
      energy,
      series: this.series,
    };
  }
}

const NO_HOOKS: ClientHooks = { send() {}, open() {}, close() {}, message() {}, event() {} };

function topicOf(pattern: string, id: string): string {
  return pattern.includes('{id}') ? pattern.replace('{id}', id) : pattern;
}

function memoryNow(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

// ---- events: shared functions, the device or engine as argument ----------------

function timerEvent(d: SimDevice, t: number): void {
  if (d.timerAt !== t || d.client === null) return;
  d.timerAt = Infinity;
  d.client.tick(d.sim.clock.now);
  d.sim.arm(d);
}

function wakeEvent(d: SimDevice, gen: number): void {
  if (gen !== d.gen || d.mode === DEVICE_OFF) return;
  const e = d.sim;
  if (!e.publishing && d.store === null) return; // nothing left to deliver after the run for a clean device
  e.wake(d);
}

function sleepEvent(d: SimDevice, gen: number): void {
  if (gen !== d.gen) return;
  d.sim.sleep(d);
}

function bootEvent(d: SimDevice, gen: number): void {
  if (gen !== d.gen) return;
  d.sim.boot(d);
}

function publishEvent(d: SimDevice, gen: number): void {
  if (gen !== d.gen || d.client === null) return;
  const e = d.sim;
  if (e.publishing) {
    e.publishReading(d);
    e.arm(d);
  }
  e.clock.after(e.s.fleet.everyS * 1000, publishEvent, d, gen);
}

function cutEvent(link: VirtualLink, conn: LinkConnection): void {
  link.cutConnection(conn);
}

function outageEvent(d: SimDevice, f: Extract<FaultSpec, { kind: 'outage' }>): void {
  const link = d.link;
  const ms = f.durationS * 1000;
  if (f.mode === 'stall') {
    link.stall();
    return;
  }
  if (f.mode === 'cut') link.cut();
  link.partition(ms);
  // The device finds out by keepalive (or at once after a cut) and retries until the window ends.
  d.sim.arm(d);
}

function brokerRestartEvent(e: Engine, f: Extract<FaultSpec, { kind: 'broker-restart' }>): void {
  e.host.down(e.clock.now, f.keepSessions, f.downForS * 1000);
}

function powerOffEvent(e: Engine, f: Extract<FaultSpec, { kind: 'power-outage' }>): void {
  for (const d of e.devices) e.powerOff(d);
  e.host.down(e.clock.now, true, (f.durationS + f.brokerBootS) * 1000);
}

function powerOnEvent(e: Engine, f: Extract<FaultSpec, { kind: 'power-outage' }>): void {
  const now = e.clock.now;
  e.powerRestoredAt = now;
  e.devicesBack = 0;
  e.fleetBackAt = -1;
  const sleepy = e.s.fleet.mode === 'sleepy';
  for (const d of e.devices) {
    d.mode = DEVICE_ASLEEP;
    d.backAfterPower = false;
    d.gen++;
    const at = now + e.rng.float() * f.bootSpreadS * 1000;
    d.nextWakeAt = at;
    e.clock.at(at, sleepy ? wakeEvent : bootEvent, d, d.gen);
  }
}

function downlinkEvent(e: Engine): void {
  const dl = e.s.downlink!;
  if (e.publishing) {
    const now = e.clock.now;
    const opts = dl.expiryS === null ? { nowMs: now } : { nowMs: now, messageExpiryInterval: dl.expiryS };
    for (const d of e.devices) {
      if (!e.host.up) {
        e.downNotPublished++;
        continue;
      }
      e.model.publish(topicOf(dl.topic, d.id), e.downPayload, dl.qos, opts);
      e.downPublished++;
    }
    e.clock.after(dl.everyS * 1000, downlinkEvent, e);
  }
}

function sampleEvent(e: Engine): void {
  e.sample();
  if (e.clock.now + e.s.sampleEveryS * 1000 <= e.fleetEndMs) e.clock.after(e.s.sampleEveryS * 1000, sampleEvent, e);
}

/** The run proper ends: faults heal, no new readings; what devices hold may still drain. */
function endOfFaultsEvent(e: Engine): void {
  e.publishing = false;
  e.host.up = true;
  for (const d of e.devices) {
    d.link.downUntil = -Infinity;
    d.link.stallNew = false;
  }
}
