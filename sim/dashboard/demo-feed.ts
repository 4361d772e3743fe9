// A made-up fleet that produces plausible dashboard frames without the
// simulator: devices wake, publish at QoS 1 and 2, sleep, and every
// stormEveryMs the broker goes down for brokerDownMs, so every awake device
// backs off with full jitter and reconnects in a storm. Seeded, so a test can
// replay it frame by frame; it is for developing and testing the dashboard,
// not a model of Dormouse (sim/virtual.ts is).
//
//   node --import tsx sim/dashboard/demo-feed.ts [--devices 3000] [--port 8080]

import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../proxy.js';
import { MAX_GRID_DEVICES, startDashboard } from './server.js';
import type { DeviceDetail, DeviceState, DeviceView, Frame, Handshake } from './types.js';

export interface DemoFleetOptions {
  devices?: number;
  seed?: number;
  /** Sim time per step(). Default 250 ms. */
  stepMs?: number;
  /** First broker outage at this sim time, then one every stormEveryMs. */
  firstStormMs?: number;
  stormEveryMs?: number;
  brokerDownMs?: number;
  /** Frame.wallTimeMs = wallStartMs + simTimeMs, so frames are reproducible. */
  wallStartMs?: number;
}

const INFLIGHT_MAX = 4;
const OUTBOX_MAX = 8;
const LOG_MAX = 16;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 8000;

interface InflightRecord { token: number; packetId: number; qos: 1 | 2; state: 'queued' | 'sent' | 'pubrel'; dup: boolean }
interface OutboxRecord { token: number; qos: 0 | 1 | 2; bytes: number; expiresAtMs: number | null }

interface DemoDevice {
  id: string;
  state: DeviceState;
  /** When the current phase (awake, asleep, offline, backoff) ends. */
  nextAtMs: number;
  attempts: number;
  nextPacketId: number;
  nextToken: number;
  inflight: InflightRecord[];
  outbox: OutboxRecord[];
  brokerQueued: number;
  sent: number;
  acked: number;
  lost: number;
  log: Handshake[];
}

export class DemoFleet {
  readonly scenario = 'demo: sleepy fleet with broker outages';
  simTimeMs = 0;
  readonly #rand: () => number;
  readonly #devices: DemoDevice[] = [];
  readonly #byId = new Map<string, DemoDevice>();
  readonly #stepMs: number;
  readonly #firstStormMs: number;
  readonly #stormEveryMs: number;
  readonly #brokerDownMs: number;
  readonly #wallStartMs: number;
  #brokerDownUntilMs = -1;
  /** Connects per step over the last second, for connectsPerSecond. */
  readonly #connectBuckets: number[];
  #connectsThisStep = 0;
  #connects = 0;
  #delivered = 0;
  #accepted = 0;
  #acked = 0;
  #duplicates = 0;
  #dropped = 0;

  constructor(opts: DemoFleetOptions = {}) {
    this.#rand = mulberry32(opts.seed ?? 1);
    this.#stepMs = opts.stepMs ?? 250;
    this.#firstStormMs = opts.firstStormMs ?? 12_000;
    this.#stormEveryMs = opts.stormEveryMs ?? 45_000;
    this.#brokerDownMs = opts.brokerDownMs ?? 3000;
    this.#wallStartMs = opts.wallStartMs ?? 0;
    this.#connectBuckets = new Array(Math.max(1, Math.round(1000 / this.#stepMs))).fill(0);
    const count = opts.devices ?? 600;
    const width = String(count - 1).length;
    for (let i = 0; i < count; i++) {
      const d: DemoDevice = {
        id: `dev-${String(i).padStart(Math.max(4, width), '0')}`,
        state: 'asleep',
        nextAtMs: this.#between(0, 12_000),
        attempts: 0,
        nextPacketId: 1 + Math.floor(this.#rand() * 1000),
        nextToken: 1,
        inflight: [],
        outbox: [],
        brokerQueued: this.#rand() < 0.2 ? 1 : 0,
        sent: 0,
        acked: 0,
        lost: 0,
        log: [],
      };
      this.#devices.push(d);
      this.#byId.set(d.id, d);
    }
  }

  /** Advances one step and returns the frame at its end. */
  step(): Frame {
    this.simTimeMs += this.#stepMs;
    const t = this.simTimeMs;
    this.#connectsThisStep = 0;
    if (t >= this.#firstStormMs && (t - this.#firstStormMs) % this.#stormEveryMs < this.#stepMs) this.#brokerCrash(t);
    for (const d of this.#devices) this.#stepDevice(d, t);
    this.#connectBuckets.shift();
    this.#connectBuckets.push(this.#connectsThisStep);
    return this.frame();
  }

  frame(): Frame {
    const totals = { devices: this.#devices.length, awake: 0, asleep: 0, offline: 0, reconnecting: 0 };
    let queued = 0;
    let inflight = 0;
    for (const d of this.#devices) {
      totals[d.state]++;
      queued += d.brokerQueued;
      inflight += d.inflight.length;
    }
    const stride = Math.max(1, this.#devices.length / MAX_GRID_DEVICES);
    const devices: DeviceView[] = [];
    for (let k = 0; k < Math.min(MAX_GRID_DEVICES, this.#devices.length); k++) {
      const d = this.#devices[Math.floor(k * stride)]!;
      devices.push({ id: d.id, state: d.state, inflight: d.inflight.length, queued: d.outbox.length, sent: d.sent, acked: d.acked, lost: d.lost });
    }
    const connectsLastSecond = this.#connectBuckets.reduce((a, b) => a + b, 0);
    return {
      scenario: this.scenario,
      simTimeMs: this.simTimeMs,
      wallTimeMs: this.#wallStartMs + this.simTimeMs,
      devices,
      totals,
      broker: {
        queued,
        delivered: this.#delivered,
        connects: this.#connects,
        connectsPerSecond: (connectsLastSecond * 1000) / (this.#connectBuckets.length * this.#stepMs),
        memoryEstimateBytes: this.#devices.length * 640 + queued * 180 + inflight * 64,
      },
      counters: { accepted: this.#accepted, acked: this.#acked, lost: 0, duplicates: this.#duplicates, dropped: this.#dropped },
    };
  }

  /** The dashboard's detail provider. */
  detail(id: string): DeviceDetail | null {
    const d = this.#byId.get(id);
    if (!d) return null;
    return {
      id: d.id,
      state: d.state,
      inflight: d.inflight.map(({ token, packetId, qos, state }) => ({ token, packetId, qos, state })),
      outbox: d.outbox.map(({ token, qos, bytes, expiresAtMs }) => ({
        token, qos, bytes, expiresInS: expiresAtMs === null ? null : Math.max(0, Math.round((expiresAtMs - this.simTimeMs) / 1000)),
      })),
      handshakes: d.log.slice(),
    };
  }

  #between(lo: number, hi: number): number {
    return lo + Math.floor(this.#rand() * (hi - lo));
  }

  #log(d: DemoDevice, dir: 'c2s' | 's2c', packet: string, offsetMs: number): void {
    d.log.push({ tMs: this.simTimeMs - this.#stepMs + offsetMs, dir, packet });
    if (d.log.length > LOG_MAX) d.log.shift();
  }

  #brokerCrash(t: number): void {
    this.#brokerDownUntilMs = t + this.#brokerDownMs;
    for (const d of this.#devices) {
      if (d.state !== 'awake') continue;
      d.state = 'reconnecting';
      d.attempts = 0;
      d.nextAtMs = t + this.#between(0, BACKOFF_BASE_MS);
    }
  }

  #stepDevice(d: DemoDevice, t: number): void {
    this.#expireOutbox(d, t);
    switch (d.state) {
      case 'asleep':
        if (this.#rand() < 0.004) d.brokerQueued++; // a command for it, held by the broker
        if (t >= d.nextAtMs) {
          this.#read(d);
          if (this.#rand() < 0.01) { d.state = 'offline'; d.nextAtMs = t + this.#between(4000, 12_000); }
          else this.#tryConnect(d, t);
        }
        break;
      case 'offline':
        if (this.#rand() < 0.05) this.#read(d);
        if (t >= d.nextAtMs) { d.state = 'reconnecting'; d.attempts = 0; d.nextAtMs = t; }
        break;
      case 'reconnecting':
        if (this.#rand() < 0.05) this.#read(d);
        if (t >= d.nextAtMs) this.#tryConnect(d, t);
        break;
      case 'awake':
        this.#advanceInflight(d);
        if (this.#rand() < 0.15) this.#read(d);
        this.#fillInflight(d);
        if (t >= d.nextAtMs && d.inflight.length === 0) {
          this.#log(d, 'c2s', 'DISCONNECT', 200);
          d.state = 'asleep';
          d.nextAtMs = t + this.#between(6000, 20_000);
        }
        break;
    }
  }

  /** A sensor reading: into the outbox, whatever the connection is doing. */
  #read(d: DemoDevice): void {
    const roll = this.#rand();
    const qos: 0 | 1 | 2 = roll < 0.15 ? 0 : roll < 0.7 ? 1 : 2;
    this.#accepted++;
    if (d.outbox.length >= OUTBOX_MAX) { d.outbox.shift(); this.#dropped++; } // drop-oldest policy
    d.outbox.push({ token: d.nextToken++, qos, bytes: 24 + this.#between(0, 40), expiresAtMs: qos === 0 ? this.simTimeMs + 30_000 : null });
  }

  #expireOutbox(d: DemoDevice, t: number): void {
    const before = d.outbox.length;
    d.outbox = d.outbox.filter((o) => o.expiresAtMs === null || o.expiresAtMs > t);
    this.#dropped += before - d.outbox.length;
  }

  #tryConnect(d: DemoDevice, t: number): void {
    this.#log(d, 'c2s', 'CONNECT', 10);
    if (t < this.#brokerDownUntilMs) {
      // Connection refused: back off with full jitter, doubling up to the cap.
      d.state = 'reconnecting';
      d.attempts++;
      d.nextAtMs = t + this.#between(0, Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** d.attempts));
      return;
    }
    this.#connects++;
    this.#connectsThisStep++;
    this.#log(d, 's2c', 'CONNACK sp 1', 40);
    d.state = 'awake';
    d.attempts = 0;
    d.nextAtMs = t + this.#between(800, 2500);
    // Resends of what was sent before the connection died carry DUP [MQTT-3.3.1-1].
    for (const r of d.inflight) {
      if (r.state === 'sent') {
        r.dup = true;
        this.#log(d, 'c2s', `PUBLISH q${r.qos} id ${r.packetId} dup`, 60);
        if (r.qos === 1 && this.#rand() < 0.5) this.#duplicates++;
      } else if (r.state === 'pubrel') {
        this.#log(d, 'c2s', `PUBREL id ${r.packetId}`, 60);
      }
    }
    if (d.brokerQueued > 0) {
      const id = 1 + this.#between(0, 200);
      this.#log(d, 's2c', `PUBLISH q1 id ${id}`, 80);
      this.#log(d, 'c2s', `PUBACK id ${id}`, 110);
      this.#delivered += d.brokerQueued;
      d.brokerQueued = 0;
    }
    this.#fillInflight(d);
  }

  /** Moves outbox entries into free inflight slots and sends them. */
  #fillInflight(d: DemoDevice): void {
    while (d.outbox.length > 0 && d.inflight.length < INFLIGHT_MAX) {
      const o = d.outbox.shift()!;
      d.sent++;
      if (o.qos === 0) {
        this.#log(d, 'c2s', 'PUBLISH q0', 120);
        continue;
      }
      const packetId = d.nextPacketId;
      d.nextPacketId = d.nextPacketId === 65535 ? 1 : d.nextPacketId + 1;
      d.inflight.push({ token: o.token, packetId, qos: o.qos, state: 'sent', dup: false });
      this.#log(d, 'c2s', `PUBLISH q${o.qos} id ${packetId}`, 120);
    }
  }

  /** One round trip per step: PUBACK, or PUBREC then PUBREL, then PUBCOMP. */
  #advanceInflight(d: DemoDevice): void {
    for (const r of d.inflight.slice()) {
      if (this.#rand() < 0.25) continue; // slow ack: a little backlog stays visible
      if (r.qos === 1) {
        this.#log(d, 's2c', `PUBACK id ${r.packetId}`, 30);
        this.#done(d, r);
      } else if (r.state === 'sent') {
        this.#log(d, 's2c', `PUBREC id ${r.packetId}`, 30);
        this.#log(d, 'c2s', `PUBREL id ${r.packetId}`, 35);
        r.state = 'pubrel';
      } else {
        this.#log(d, 's2c', `PUBCOMP id ${r.packetId}`, 30);
        this.#done(d, r);
      }
    }
  }

  #done(d: DemoDevice, r: InflightRecord): void {
    d.inflight.splice(d.inflight.indexOf(r), 1);
    d.acked++;
    this.#acked++;
  }
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const fleet = new DemoFleet({ devices: arg('devices', 1200), seed: arg('seed', 1), wallStartMs: Date.now() });
  const dashboard = await startDashboard({ port: arg('port', 0) });
  dashboard.feed.setDetailProvider((id) => fleet.detail(id));
  const timer = setInterval(() => dashboard.feed.frame(fleet.step()), 250);
  console.log(`dashboard on ${dashboard.url} (demo fleet; Ctrl-C to stop)`);
  process.once('SIGINT', () => {
    clearInterval(timer);
    void dashboard.close().then(() => process.exit(0));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
