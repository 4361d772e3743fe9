// Links on a virtual clock between a device and the broker model: bytes take
// `latencyMs` (plus serialization time at `bitrateBps`, if given) and arrive
// in order. Faults: cut (both ends told at once, as a TCP reset), stall
// (half-open: bytes vanish and nobody is told, so only keepalive finds it),
// partition for a window (the connection stalls and new connections get no
// answer until the window ends), and the broker going down and up again.
//
// A link serves one device for its whole life; each connection attempt gets
// a `LinkConnection`. Events in flight carry the connection they belong to
// and are ignored once it is dead, so a cut never delivers stale bytes.

import type { VirtualClock } from './clock.js';
import type { BrokerConnection, BrokerModel } from './broker-model.js';
import type { Handshake } from './dashboard/types.js';

/** The device end of a link: what the host does with a DormouseClient. */
export interface LinkEnd {
  opened(now: number): void;
  received(bytes: Uint8Array, now: number): void;
  closed(now: number): void;
}

export interface LinkOptions {
  /** One-way delay, ms. Default 20. */
  latencyMs?: number;
  /** Extra one-way delay, uniform in [0, jitterMs), from `random`. Default 0. */
  jitterMs?: number;
  /** Serialization time is added when set (bits per second). */
  bitrateBps?: number;
  random?: () => number;
}

/** What crossed a link: TCP segments and MQTT bytes each way, for the radio model. */
export class LinkCounters {
  bytesUp = 0;
  bytesDown = 0;
  segmentsUp = 0;
  segmentsDown = 0;
  /** TCP connections attempted / established / closed (each costs handshake segments). */
  opens = 0;
  established = 0;
  closes = 0;
  cuts = 0;
  stalls = 0;
}

/** One TCP connection over a link. */
export class LinkConnection {
  /** Until a reset, a power loss, or the FIN of a close reaching the other end. */
  alive = true;
  /** The device closed its side: nothing more reaches it, but what it sent still reaches the broker. */
  deviceClosed = false;
  stalled = false;
  broker: BrokerConnection | null = null;
  connectSeen = false;
  upAt = 0; // arrival time of the last byte sent up (keeps order under jitter)
  downAt = 0;
  constructor(readonly link: VirtualLink) {}
}

/**
 * The broker model on the virtual clock: it can be down (connections are
 * reset), it restarts keeping or losing sessions, it can admit at most
 * `maxConnectsPerSecond` CONNECTs (the rest are refused with "server
 * unavailable", as an overloaded broker does), and it counts connection
 * attempts per second of virtual time.
 */
export class BrokerHost {
  up = true;
  /** TCP connection attempts that reached the broker's host, per second of virtual time (index = second). */
  readonly attemptsPerSecond: number[] = [];
  /** CONNECTs admitted (answered with a CONNACK 0 unless the model refuses), per second. */
  readonly connectsPerSecond: number[] = [];
  refusedBusy = 0;
  resetWhileDown = 0;
  #bucket: number;
  get #burst(): number {
    const r = this.options.maxConnectsPerSecond;
    return r === undefined ? Infinity : Math.max(1, r / 10);
  }
  #bucketAt = 0;
  #tickScheduled = false;

  constructor(
    readonly clock: VirtualClock,
    readonly model: BrokerModel,
    readonly options: { maxConnectsPerSecond?: number; tickEveryMs?: number } = {},
  ) {
    // A burst of a tenth of a second's worth: the rate holds within each second.
    this.#bucket = this.#burst;
  }

  /** Start the broker's periodic tick (keepalive, session and message expiry). */
  startTicking(): void {
    if (this.#tickScheduled) return;
    this.#tickScheduled = true;
    this.clock.after(this.options.tickEveryMs ?? 5000, brokerTick, this);
  }

  /** The broker goes down now (every connection dropped); with `forMs`, it comes back then. */
  down(now: number, keepSessions: boolean, forMs?: number): void {
    this.up = false;
    this.model.restart({ keepSessions, nowMs: now });
    if (forMs !== undefined) this.clock.at(now + forMs, brokerUp, this);
  }

  /** A connection attempt arrived. */
  countAttempt(now: number): void {
    bump(this.attemptsPerSecond, Math.floor(now / 1000));
  }

  /** May this CONNECT be processed? Refill the bucket and take a token. */
  admit(now: number): boolean {
    const rate = this.options.maxConnectsPerSecond;
    if (rate !== undefined) {
      this.#bucket = Math.min(this.#burst, this.#bucket + ((now - this.#bucketAt) / 1000) * rate);
      this.#bucketAt = now;
      if (this.#bucket < 1) {
        this.refusedBusy++;
        return false;
      }
      this.#bucket -= 1;
    }
    bump(this.connectsPerSecond, Math.floor(now / 1000));
    return true;
  }
}

function bump(a: number[], i: number): void {
  while (a.length <= i) a.push(0);
  a[i]++;
}

function brokerTick(h: BrokerHost): void {
  if (h.up) h.model.tick(h.clock.now);
  h.clock.after(h.options.tickEveryMs ?? 5000, brokerTick, h);
}

function brokerUp(h: BrokerHost): void {
  h.up = true;
}

/** A ring of the last packets on a link, kept only for watched devices. */
export class HandshakeLog {
  readonly items: Handshake[] = [];
  constructor(readonly size = 40) {}
  add(tMs: number, dir: 'c2s' | 's2c', bytes: Uint8Array): void {
    let p = 0;
    while (p < bytes.length) {
      const first = bytes[p];
      let len = 0;
      let mul = 1;
      let q = p + 1;
      for (; q < bytes.length && q < p + 5; q++) {
        len += (bytes[q] & 0x7f) * mul;
        mul *= 128;
        if ((bytes[q] & 0x80) === 0) break;
      }
      const body = q + 1;
      this.items.push({ tMs, dir, packet: describePacket(bytes, p, body) });
      if (this.items.length > this.size) this.items.shift();
      p = body + len;
      if (first === 0) break;
    }
  }
}

const NAMES = ['?', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];

/** "PUBLISH q1 id 7 dup", "PUBACK id 7", "CONNACK sp 1 rc 0". */
export function describePacket(b: Uint8Array, start: number, body: number): string {
  const type = b[start] >> 4;
  const name = NAMES[type];
  const u16 = (o: number) => (body + o + 1 < b.length ? (b[body + o] << 8) | b[body + o + 1] : -1);
  if (type === 3) {
    const qos = (b[start] >> 1) & 3;
    const dup = (b[start] & 8) !== 0;
    let s = `PUBLISH q${qos}`;
    if (qos > 0) {
      const tl = u16(0);
      const id = tl >= 0 ? u16(2 + tl) : -1;
      s += ` id ${id}`;
    }
    return dup ? s + ' dup' : s;
  }
  if (type >= 4 && type <= 7) return `${name} id ${u16(0)}`;
  if (type === 2) return `CONNACK sp ${b[body] & 1} rc ${b[body + 1]}`;
  return name;
}

export class VirtualLink {
  readonly counters = new LinkCounters();
  /** Set to keep the last packets (dashboard detail). */
  log: HandshakeLog | null = null;
  conn: LinkConnection | null = null;
  latencyMs: number;
  jitterMs: number;
  bitrateBps: number;
  /** No connectivity until this time (ms). */
  downUntil = -Infinity;
  /** New connections are accepted and then stalled (half-open from the start). */
  stallNew = false;
  #random: () => number;

  constructor(
    readonly clock: VirtualClock,
    readonly broker: BrokerHost,
    public end: LinkEnd,
    options: LinkOptions = {},
  ) {
    this.latencyMs = options.latencyMs ?? 20;
    this.jitterMs = options.jitterMs ?? 0;
    this.bitrateBps = options.bitrateBps ?? 0;
    this.#random = options.random ?? Math.random;
  }

  #delay(bytes: number): number {
    let d = this.latencyMs;
    if (this.jitterMs > 0) d += this.#random() * this.jitterMs;
    if (this.bitrateBps > 0) d += ((bytes + 40) * 8 * 1000) / this.bitrateBps;
    return d;
  }

  get partitioned(): boolean {
    return this.clock.now < this.downUntil;
  }

  // ---- the device side (ClientHooks) -----------------------------------------

  /** hooks.open: SYN out; the answer comes back after a round trip (or never, in a partition). */
  open(): void {
    this.#drop();
    const c = new LinkConnection(this);
    this.conn = c;
    this.counters.opens++;
    if (this.partitioned) return; // no answer: the core's connect timeout fires
    this.clock.at(this.clock.now + this.#delay(0), synArrives, c);
  }

  /** hooks.send: the bytes are only valid during the call, so they are copied. */
  send(bytes: Uint8Array): void {
    const c = this.conn;
    if (c === null || !c.alive) return;
    this.counters.bytesUp += bytes.length;
    this.counters.segmentsUp++;
    this.log?.add(this.clock.now, 'c2s', bytes);
    if (c.stalled || this.partitioned) return;
    const at = Math.max(c.upAt, this.clock.now + this.#delay(bytes.length));
    c.upAt = at;
    this.clock.at(at, upArrives, c, bytes.slice());
  }

  /** hooks.close: FIN after the data already sent; the broker hears it then. */
  close(): void {
    const c = this.conn;
    if (c === null) return;
    this.conn = null;
    if (!c.alive || c.deviceClosed) return;
    c.deviceClosed = true;
    this.counters.closes++;
    if (c.stalled || this.partitioned || c.broker === null) {
      c.alive = false;
      return;
    }
    const at = Math.max(c.upAt, this.clock.now + this.latencyMs);
    this.clock.at(at, finArrives, c);
  }

  // ---- faults ---------------------------------------------------------------

  /** A reset: both ends learn of it now; bytes in flight are lost. */
  cut(): void {
    if (this.conn !== null) this.cutConnection(this.conn);
  }

  /** Reset this connection, even one the device already closed whose last bytes are still on their way. */
  cutConnection(c: LinkConnection): void {
    if (!c.alive) return;
    this.counters.cuts++;
    c.alive = false;
    if (this.conn === c) this.conn = null;
    c.broker?.clientGone(this.clock.now);
    if (!c.deviceClosed) this.end.closed(this.clock.now);
  }

  /** Half-open: the current connection stops carrying bytes; nobody is told. */
  stall(): void {
    const c = this.conn;
    if (c === null || !c.alive || c.stalled) return;
    this.counters.stalls++;
    c.stalled = true;
  }

  /** No connectivity for `ms`: the connection stalls, new ones get no answer. */
  partition(ms: number): void {
    this.downUntil = Math.max(this.downUntil, this.clock.now + ms);
    this.stall();
  }

  /** The device lost power: its connection is simply gone (the broker finds out by keepalive). */
  powerLoss(): void {
    const c = this.conn;
    this.conn = null;
    if (c !== null) c.alive = false;
  }

  #drop(): void {
    const c = this.conn;
    if (c !== null) {
      c.alive = false;
      this.conn = null;
    }
  }
}

// ---- events (shared functions: no closure per event) ---------------------------

function synArrives(c: LinkConnection): void {
  if (!c.alive || c.deviceClosed) return;
  const link = c.link;
  const host = link.broker;
  const now = link.clock.now;
  host.countAttempt(now);
  if (!host.up) {
    host.resetWhileDown++;
    link.clock.at(now + link.latencyMs, rstArrives, c);
    return;
  }
  c.broker = host.model.accept({
    send: (bytes) => downSend(c, bytes),
    close: () => brokerClosed(c),
  });
  if (link.stallNew) c.stalled = true;
  link.counters.established++;
  link.clock.at(now + link.latencyMs, synAckArrives, c);
}

function synAckArrives(c: LinkConnection): void {
  if (!c.alive || c.stalled || c.deviceClosed) return;
  c.link.end.opened(c.link.clock.now);
}

function rstArrives(c: LinkConnection): void {
  if (!c.alive || c.deviceClosed) return;
  c.alive = false;
  const link = c.link;
  if (link.conn === c) link.conn = null;
  link.end.closed(link.clock.now);
}

function upArrives(c: LinkConnection, bytes: Uint8Array): void {
  if (!c.alive || c.stalled || c.broker === null) return;
  const link = c.link;
  const now = link.clock.now;
  if (!c.connectSeen) {
    // The first bytes of a connection are its CONNECT: admission control here.
    c.connectSeen = true;
    if (!link.broker.admit(now)) link.broker.model.refuseNext(3);
  }
  c.broker.receive(bytes, now);
}

function finArrives(c: LinkConnection): void {
  if (!c.alive) return;
  c.alive = false;
  c.broker?.clientGone(c.link.clock.now);
}

/** The broker wrote bytes: they reach the device after the delay. */
function downSend(c: LinkConnection, bytes: Uint8Array): void {
  const link = c.link;
  if (!c.alive || c.deviceClosed) return;
  link.counters.bytesDown += bytes.length;
  link.counters.segmentsDown++;
  link.log?.add(link.clock.now, 's2c', bytes);
  if (c.stalled || link.partitioned) return;
  const at = Math.max(c.downAt, link.clock.now + link.latencyMs + (link.bitrateBps > 0 ? ((bytes.length + 40) * 8 * 1000) / link.bitrateBps : 0));
  c.downAt = at;
  link.clock.at(at, downArrives, c, bytes.slice());
}

function downArrives(c: LinkConnection, bytes: Uint8Array): void {
  if (!c.alive || c.stalled || c.deviceClosed) return;
  c.link.end.received(bytes, c.link.clock.now);
}

/** The broker closed the connection: the device hears it after the bytes already on their way. */
function brokerClosed(c: LinkConnection): void {
  const link = c.link;
  if (!c.alive || c.stalled || c.deviceClosed) return; // a stalled connection's FIN is lost too
  const at = Math.max(c.downAt, link.clock.now + link.latencyMs);
  link.clock.at(at, brokerFinArrives, c);
}

function brokerFinArrives(c: LinkConnection): void {
  if (!c.alive || c.deviceClosed) return;
  c.alive = false;
  const link = c.link;
  if (link.conn === c) link.conn = null;
  link.counters.closes++;
  link.end.closed(link.clock.now);
}
