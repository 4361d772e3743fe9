// A fault-injecting TCP proxy for MQTT, for the simulator and soak tests.
//
// It listens on 127.0.0.1, forwards every connection to one target, and cuts
// each direction's byte stream at MQTT packet boundaries (fixed header +
// remaining length; no payload decoding), so faults can hit a named packet:
// "close right after the broker's first PUBACK", "stall once the CONNECT is
// through". Every fault taken is logged with the connection and packet index,
// and the random mode is seeded, so a failing run can be replayed.

import net from 'node:net';
import { Prng } from './prng.js';

export type Direction = 'c2s' | 's2c';

/** MQTT control packet types (high nibble of the first byte). */
export const PacketType = Object.freeze({
  CONNECT: 1, CONNACK: 2, PUBLISH: 3, PUBACK: 4, PUBREC: 5, PUBREL: 6, PUBCOMP: 7,
  SUBSCRIBE: 8, SUBACK: 9, UNSUBSCRIBE: 10, UNSUBACK: 11, PINGREQ: 12, PINGRESP: 13, DISCONNECT: 14, AUTH: 15,
} as const);
export type PacketTypeName = keyof typeof PacketType;
const TYPE_NAMES: readonly string[] = Object.freeze(['0', ...Object.keys(PacketType)]);

export function packetTypeName(t: number): string {
  return TYPE_NAMES[t] ?? String(t);
}

export interface ProxyCounters {
  /** TCP connections accepted by the listener (including those then dropped or refused). */
  accepted: number;
  /** Connections closed at accept by drop() or a refusing partition (resets of open ones are only in the log). */
  refused: number;
  /** Connections closed by a cut rule or a random cut. */
  cut: number;
  /** Connections stalled (half-open). */
  stalled: number;
  /** Complete packets forwarded, by direction and type (index 0..15). */
  packets: Record<Direction, number[]>;
  /** Bytes forwarded, by direction. */
  bytes: Record<Direction, number>;
  /** Bytes swallowed by stalled connections. */
  discardedBytes: number;
}

export interface FaultLogEntry {
  conn: number;
  action: 'cut-before' | 'cut-after' | 'stall' | 'drop' | 'refuse';
  dir?: Direction;
  type?: string;
  /** 1-based index of the packet in this connection and direction. */
  index?: number;
}

export interface CutOptions {
  /** Close before forwarding the packet instead of after (default false). */
  before?: boolean;
  /** Count per connection and fire on every connection, instead of once across all (default false). */
  perConnection?: boolean;
  /** Send RST instead of FIN (default false). */
  reset?: boolean;
}

export interface RandomFaultOptions {
  seed: number;
  /** Chance, at each forwarded packet, to close the connection (half before, half after the packet). */
  cutProbability: number;
  /** Chance, at each forwarded packet, to stall the connection for good. */
  stallProbability: number;
  /** Only packets of these types are fault points (default: all). */
  types?: readonly number[];
}

export interface ProxyOptions {
  targetHost?: string;
  targetPort: number;
  /** Seed for drop() and randomFaults() when not given there (default 1). */
  seed?: number;
  /** Port to listen on (default 0: any free port). */
  port?: number;
}

interface CutRule {
  dir: Direction;
  type: number;
  n: number;
  seen: number;
  before: boolean;
  perConnection: boolean;
  reset: boolean;
  armed: boolean;
}

/** A seeded random source in [0, 1) for fault schedules (the shared PRNG of sim/prng.ts). */
export function mulberry32(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.float();
}

const enum FrameState { Header, Raw }

/**
 * Splits a byte stream into whole MQTT packets. After a malformed remaining
 * length (more than 4 bytes) it gives up framing and passes bytes through raw.
 */
class PacketSplitter {
  #pending: Buffer | null = null;
  #state = FrameState.Header;

  /** Calls out(packet, type) for each complete packet; type 0 means unframed raw bytes. */
  push(chunk: Buffer, out: (packet: Buffer, type: number) => void): void {
    if (this.#state === FrameState.Raw) { out(chunk, 0); return; }
    const buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = null;
    let off = 0;
    while (off < buf.length) {
      // Remaining length: 1 to 4 bytes, 7 bits each [MQTT-1.5.5].
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let complete = false;
      for (let k = 0; k < 4 && i < buf.length; k++, i++) {
        const b = buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { complete = true; i++; break; }
      }
      if (!complete) {
        if (i - off - 1 >= 4) {
          this.#state = FrameState.Raw;
          out(buf.subarray(off), 0);
          return;
        }
        break; // header not all here yet
      }
      const end = i + len;
      if (end > buf.length) break;
      out(buf.subarray(off, end), buf[off]! >> 4);
      off = end;
    }
    if (off < buf.length) this.#pending = Buffer.from(buf.subarray(off));
  }
}

interface Leg {
  conn: ProxiedConnection;
  from: net.Socket;
  to: net.Socket;
  dir: Direction;
  split: PacketSplitter;
  index: number;
  perType: number[];
  /** Packets waiting for a delay or a blackhole window: [due time, bytes]. */
  queue: Array<[number, Buffer]>;
  timer: NodeJS.Timeout | null;
  /** Callbacks for when the queue is next empty. */
  idle: Array<() => void>;
}

class ProxiedConnection {
  readonly id: number;
  readonly client: net.Socket;
  readonly server: net.Socket;
  readonly legs: Record<Direction, Leg>;
  stalled = false;
  closed = false;
  upstreamReady = false;

  constructor(id: number, client: net.Socket, server: net.Socket) {
    this.id = id;
    this.client = client;
    this.server = server;
    const leg = (from: net.Socket, to: net.Socket, dir: Direction): Leg =>
      ({ conn: this, from, to, dir, split: new PacketSplitter(), index: 0, perType: new Array<number>(16).fill(0), queue: [], timer: null, idle: [] });
    this.legs = { c2s: leg(client, server, 'c2s'), s2c: leg(server, client, 's2c') };
  }
}

export class FaultProxy {
  readonly counters: ProxyCounters = {
    accepted: 0, refused: 0, cut: 0, stalled: 0,
    packets: { c2s: new Array<number>(16).fill(0), s2c: new Array<number>(16).fill(0) },
    bytes: { c2s: 0, s2c: 0 },
    discardedBytes: 0,
  };
  /** Every fault taken, in order. */
  readonly log: FaultLogEntry[] = [];
  /** Observer of every packet forwarded, in arrival order (for timelines and round-trip counts). */
  onPacket: ((dir: Direction, type: number, bytes: number, conn: number) => void) | null = null;

  readonly #server: net.Server;
  readonly #targetHost: string;
  readonly #targetPort: number;
  readonly #conns = new Set<ProxiedConnection>();
  #nextId = 1;
  #rules: CutRule[] = [];
  #delayMs = 0;
  #dropShare = 0;
  #stallNew = false;
  #partitionUntil = 0;
  #partitionMode: 'refuse' | 'blackhole' = 'refuse';
  #partitionTimer: NodeJS.Timeout | null = null;
  #rand: () => number;
  #random: (RandomFaultOptions & { rand: () => number }) | null = null;

  private constructor(server: net.Server, opts: ProxyOptions) {
    this.#server = server;
    this.#targetHost = opts.targetHost ?? '127.0.0.1';
    this.#targetPort = opts.targetPort;
    this.#rand = mulberry32(opts.seed ?? 1);
    server.on('connection', (s) => this.#accept(s));
  }

  static async start(opts: ProxyOptions): Promise<FaultProxy> {
    const server = net.createServer({ noDelay: true } as net.ServerOpts);
    const proxy = new FaultProxy(server, opts);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number { return (this.#server.address() as net.AddressInfo).port; }
  get url(): string { return `mqtt://127.0.0.1:${this.port}`; }
  /** Connections currently open through the proxy. */
  get liveConnections(): number { return this.#conns.size; }

  /** Count of forwarded packets of a type in a direction. */
  packets(dir: Direction, type: number | PacketTypeName): number {
    return this.counters.packets[dir][typeof type === 'number' ? type : PacketType[type]]!;
  }

  // ------------------------------------------------------------ faults

  /**
   * Close both sides right after (or before) the nth packet of `type` going
   * `dir`. Counted across all connections from now and fired once, unless
   * perConnection (then on every connection's nth such packet).
   */
  cutAfter(dir: Direction, type: number | PacketTypeName, n = 1, opts: CutOptions = {}): void {
    if (!(n >= 1)) throw new RangeError('cutAfter: n counts from 1');
    this.#rules.push({
      dir, type: typeof type === 'number' ? type : PacketType[type], n, seen: 0,
      before: opts.before ?? false, perConnection: opts.perConnection ?? false, reset: opts.reset ?? false, armed: true,
    });
  }

  /**
   * Half-open: every open connection stops forwarding for good while both
   * sockets stay open and silent (incoming bytes are read and discarded, as a
   * dead peer's network would). With includeNew, new connections are accepted
   * and stalled too, until heal().
   */
  stall(opts: { includeNew?: boolean } = {}): void {
    for (const c of this.#conns) this.#stallConn(c, undefined);
    if (opts.includeNew) this.#stallNew = true;
  }

  /** Hold every packet ms milliseconds before forwarding (order kept). 0 turns it off. */
  delay(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('delay: ms must be >= 0');
    this.#delayMs = ms;
  }

  /** Close this share (0..1) of new connections at connect, chosen by the seeded generator. */
  drop(share: number): void {
    if (!(share >= 0 && share <= 1)) throw new RangeError('drop: share must be within 0..1');
    this.#dropShare = share;
  }

  /**
   * A network partition for ms milliseconds. 'refuse': existing connections
   * are reset and new ones are reset at accept. 'blackhole': nothing moves in
   * either direction (new connections are accepted but not connected
   * upstream); when the window ends, held bytes flow again, as after TCP
   * retransmission, unless an endpoint gave up and closed meanwhile.
   */
  partition(ms: number, mode: 'refuse' | 'blackhole' = 'refuse'): void {
    this.#partitionUntil = Date.now() + ms;
    this.#partitionMode = mode;
    if (this.#partitionTimer) clearTimeout(this.#partitionTimer);
    this.#partitionTimer = setTimeout(() => this.#endPartition(), ms);
    if (mode === 'refuse') {
      for (const c of this.#conns) {
        this.log.push({ conn: c.id, action: 'refuse' });
        this.#close(c, true);
      }
    }
  }

  /**
   * Seeded random faults: at each forwarded packet (of `types`, default all),
   * cut with cutProbability (half before, half after the packet) or stall
   * with stallProbability. The same seed and the same traffic give the same
   * faults; see `log`.
   */
  randomFaults(opts: RandomFaultOptions): void {
    if (opts.cutProbability < 0 || opts.stallProbability < 0 || opts.cutProbability + opts.stallProbability > 1) {
      throw new RangeError('randomFaults: probabilities must be >= 0 and sum to at most 1');
    }
    this.#random = { ...opts, rand: mulberry32(opts.seed) };
  }

  /** Remove every fault: rules, delay, drop, random faults, pending partition, stall of new connections. Stalled connections stay dead. */
  heal(): void {
    this.#rules = [];
    this.#delayMs = 0;
    this.#dropShare = 0;
    this.#stallNew = false;
    this.#random = null;
    this.#endPartition();
  }

  /** Close every connection (RST) and the listener. */
  async close(): Promise<void> {
    this.heal();
    for (const c of this.#conns) this.#close(c, true);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ------------------------------------------------------------ machinery

  #partitioned(): boolean {
    return this.#partitionUntil > Date.now();
  }

  #endPartition(): void {
    if (this.#partitionTimer) clearTimeout(this.#partitionTimer);
    this.#partitionTimer = null;
    this.#partitionUntil = 0;
    for (const c of this.#conns) {
      if (!c.upstreamReady && !c.closed) this.#connectUpstream(c);
      this.#flush(c.legs.c2s);
      this.#flush(c.legs.s2c);
    }
  }

  #accept(client: net.Socket): void {
    this.counters.accepted++;
    client.setNoDelay(true);
    const id = this.#nextId++;
    const refuse = (action: 'drop' | 'refuse') => {
      this.counters.refused++;
      this.log.push({ conn: id, action });
      client.on('error', () => {});
      client.resetAndDestroy();
    };
    if (this.#partitioned() && this.#partitionMode === 'refuse') return refuse('refuse');
    if (this.#dropShare > 0 && this.#rand() < this.#dropShare) return refuse('drop');

    const server = new net.Socket();
    const c = new ProxiedConnection(id, client, server);
    this.#conns.add(c);
    for (const leg of [c.legs.c2s, c.legs.s2c]) {
      leg.from.on('data', (chunk: Buffer) => this.#onData(c, leg, chunk));
      leg.from.on('error', () => { /* 'close' follows with hadError */ });
      leg.from.once('close', (hadError: boolean) => this.#onSocketClosed(c, leg, hadError));
    }
    if (this.#stallNew) this.#stallConn(c, undefined);
    else if (!(this.#partitioned() && this.#partitionMode === 'blackhole')) this.#connectUpstream(c);
  }

  /**
   * One side closed. An error resets the other side. A clean close is passed
   * on as FIN once queued bytes are out, except on a stalled connection: a
   * half-open link carries nothing, so the other end is left to find out by
   * itself (keepalive), as it would on a real network.
   */
  #onSocketClosed(c: ProxiedConnection, leg: Leg, hadError: boolean): void {
    if (!this.#conns.has(c)) return;
    if (c.client.destroyed && c.server.destroyed) { this.#close(c, false); return; }
    if (c.stalled) return;
    if (hadError) { this.#close(c, true); return; }
    this.#afterQueue(leg, () => leg.to.end());
    setTimeout(() => this.#close(c, false), 2000).unref();
  }

  #connectUpstream(c: ProxiedConnection): void {
    if (c.stalled || c.closed || c.server.connecting || c.upstreamReady) return;
    c.server.connect({ host: this.#targetHost, port: this.#targetPort, noDelay: true } as net.NetConnectOpts, () => {
      c.upstreamReady = true;
      this.#flush(c.legs.c2s);
    });
  }

  #onData(c: ProxiedConnection, leg: Leg, chunk: Buffer): void {
    if (c.closed) return;
    if (c.stalled) { this.counters.discardedBytes += chunk.length; return; }
    leg.split.push(chunk, (packet, type) => this.#onPacket(c, leg, packet, type));
  }

  #onPacket(c: ProxiedConnection, leg: Leg, packet: Buffer, type: number): void {
    if (c.closed) return;
    if (c.stalled) { this.counters.discardedBytes += packet.length; return; }
    leg.index++;
    leg.perType[type]!++;
    let cut: 'before' | 'after' | null = null;
    let reset = false;
    for (const r of this.#rules) {
      if (!r.armed || r.dir !== leg.dir || r.type !== type) continue;
      const count = r.perConnection ? leg.perType[type]! : ++r.seen;
      if (count !== r.n) continue;
      if (!r.perConnection) r.armed = false;
      cut = r.before ? 'before' : 'after';
      reset = r.reset;
      break;
    }
    let stall = false;
    const rf = this.#random;
    if (!cut && rf && (!rf.types || rf.types.includes(type))) {
      const x = rf.rand();
      if (x < rf.cutProbability) cut = rf.rand() < 0.5 ? 'before' : 'after';
      else if (x < rf.cutProbability + rf.stallProbability) stall = true;
    }
    const where = { conn: c.id, dir: leg.dir, type: packetTypeName(type), index: leg.index };
    if (stall) {
      this.#stallConn(c, where);
      this.counters.discardedBytes += packet.length;
      return;
    }
    if (cut === 'before') {
      this.log.push({ ...where, action: 'cut-before' });
      this.counters.cut++;
      this.#close(c, reset);
      return;
    }
    this.onPacket?.(leg.dir, type, packet.length, c.id);
    this.#enqueue(leg, packet, type);
    if (cut === 'after') {
      this.log.push({ ...where, action: 'cut-after' });
      this.counters.cut++;
      c.closed = true; // no more input; the packet still goes out
      this.#afterQueue(leg, () => {
        if (reset) { this.#close(c, true); return; }
        // end() flushes what the kernel has not taken yet, then FIN; destroy afterwards.
        leg.to.end(() => this.#close(c, false));
        leg.from.end();
        setTimeout(() => this.#close(c, false), 1000).unref();
      });
    }
  }

  #enqueue(leg: Leg, packet: Buffer, type: number): void {
    const now = Date.now();
    const lastDue = leg.queue.length ? leg.queue[leg.queue.length - 1]![0] : 0;
    // Copy: the splitter hands out views into socket chunks.
    leg.queue.push([Math.max(now + this.#delayMs, lastDue), Buffer.from(packet)]);
    this.counters.packets[leg.dir][type]!++;
    this.counters.bytes[leg.dir] += packet.length;
    this.#flush(leg);
  }

  #blocked(leg: Leg, c?: ProxiedConnection): boolean {
    if (this.#partitioned() && this.#partitionMode === 'blackhole') return true;
    if (leg.dir === 'c2s' && c && !c.upstreamReady) return true;
    return false;
  }

  #flush(leg: Leg): void {
    const c = leg.conn;
    if (c.stalled) return;
    if (this.#blocked(leg, c)) return;
    const now = Date.now();
    while (leg.queue.length && leg.queue[0]![0] <= now) {
      const [, bytes] = leg.queue.shift()!;
      if (!leg.to.destroyed) leg.to.write(bytes);
    }
    if (leg.timer) { clearTimeout(leg.timer); leg.timer = null; }
    if (leg.queue.length) {
      leg.timer = setTimeout(() => { leg.timer = null; this.#flush(leg); }, leg.queue[0]![0] - now);
    } else {
      for (const w of leg.idle.splice(0)) w();
    }
  }

  /** Runs fn once the leg's queue is empty (immediately if it is). */
  #afterQueue(leg: Leg, fn: () => void): void {
    if (leg.queue.length === 0) fn();
    else leg.idle.push(fn);
  }

  #stallConn(c: ProxiedConnection, where: Omit<FaultLogEntry, 'action'> | undefined): void {
    if (c.stalled || c.closed) return;
    c.stalled = true;
    this.counters.stalled++;
    this.log.push({ ...(where ?? { conn: c.id }), action: 'stall' });
    for (const leg of [c.legs.c2s, c.legs.s2c]) {
      if (leg.timer) clearTimeout(leg.timer);
      leg.timer = null;
      for (const [, b] of leg.queue) this.counters.discardedBytes += b.length;
      leg.queue = [];
    }
  }

  #close(c: ProxiedConnection, reset: boolean): void {
    if (!this.#conns.has(c)) return;
    c.closed = true;
    this.#conns.delete(c);
    for (const leg of [c.legs.c2s, c.legs.s2c]) {
      if (leg.timer) clearTimeout(leg.timer);
      leg.timer = null;
      leg.queue = [];
      leg.idle = [];
    }
    for (const s of [c.client, c.server]) {
      if (s.destroyed) continue;
      if (!reset) { s.destroy(); continue; }
      try { s.resetAndDestroy(); } catch { s.destroy(); }
    }
  }
}
