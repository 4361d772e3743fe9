// An in-memory, sans-I/O MQTT 3.1.1 / 5.0 broker for tests and the simulator.
//
// Bytes in through BrokerConnection.receive(), bytes out through the
// transport's send(); no sockets, no timers, no randomness, so a run replays
// exactly. Time only moves when the caller passes `nowMs` (receive,
// clientGone, publish, tick). It speaks the wire protocol through the codec in
// modules/mqtt, so what it checks is what a real client will send.
//
// Re-entrancy: a receive() or clientGone() made while the broker is running
// (from inside a send(), close() or onMessage callback) is queued and runs,
// in order, once the current call is done. Nothing the broker does is
// interleaved with another event.
//
// Memory: a session is a few Maps and an array; messages are shared between
// the sessions they go to. Decoders are pooled: a connection holds one only
// while it has an incomplete packet, so a fleet of idle devices costs no
// decode buffers.
//
// Not modelled: shared subscriptions (refused with 0x9E), subscription
// identifiers, enhanced authentication (AUTH is a protocol error), will delay
// (a will is published at once), outgoing topic aliases.

import {
  DECODE_NEED_DATA,
  DECODE_PACKET,
  PacketDecoder,
  PacketType,
  ProtocolVersion,
  ReasonCode,
  encode,
  encodeAck,
  encodePublish,
  encodedLength,
  publishLength,
} from '../modules/mqtt/index.js';
import type {
  ConnectPacket,
  DecodedPublish,
  Packet,
  Properties,
  QoS,
  SubscribePacket,
  UnsubscribePacket,
  Will,
} from '../modules/mqtt/index.js';
import { hasWildcard, isValidTopicFilter, isValidTopicName, topicMatches } from '../modules/mqtt/topic-match.js';

export interface BrokerOptions {
  /** Messages a session may hold waiting (offline, or inflight window full). Default 1000. */
  maxQueuedPerSession?: number;
  /** Outgoing QoS 1/2 messages unacknowledged per session; the client's MQTT 5 Receive Maximum lowers it. Default 20. */
  maxInflightPerSession?: number;
  /** Which message a full queue loses: the oldest queued, or the one arriving. Default 'oldest'. */
  dropPolicy?: 'oldest' | 'newest';
  /** Highest QoS a SUBACK grants. Default 2. */
  maxQoS?: QoS;
  /** Keep QoS 0 messages for offline persistent sessions (the spec allows either: 3.1.1 [MQTT-3.1.2-5]). Default false. */
  queueQoS0?: boolean;
  /** Largest packet accepted from a client, and the size of each pooled decoder's buffer. Default 8192. */
  maxPacketSize?: number;
}

/** The client side of one connection, as the broker sees it. */
export interface ClientTransport {
  /** Bytes for the client. Valid only during the call: copy them if kept. */
  send(bytes: Uint8Array): void;
  /** The broker closed the connection (after any last CONNACK or DISCONNECT). */
  close(): void;
}

/** A message the broker accepted from a client (see BrokerModel.onMessage). */
export interface MessageInfo {
  clientId: string;
  topic: string;
  /** The broker's own copy: it may be kept, not modified. */
  payload: Uint8Array;
  qos: QoS;
  dup: boolean;
  retain: boolean;
}

export interface PublishOptions {
  retain?: boolean;
  /** The current time; default the last time the broker was given. */
  nowMs?: number;
  /** MQTT 5 Message Expiry Interval, seconds. */
  messageExpiryInterval?: number;
  /** Other MQTT 5 PUBLISH properties to forward (content type, user properties...). */
  properties?: Properties;
}

export interface SubscriptionInfo {
  /** The QoS granted. */
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
}

/** A session as tests and the dashboard see it (read-only). */
export interface SessionInfo {
  readonly clientId: string;
  readonly connected: boolean;
  /** Protocol of the last CONNECT. */
  readonly version: ProtocolVersion;
  /** Seconds the session outlives its connection: 0 ends it at disconnect, Infinity for a 3.1.1 CleanSession=0 session. */
  readonly expiryIntervalS: number;
  /** When an offline session expires (ms), or -1 if it does not. */
  readonly expiresAtMs: number;
  /** Topic filter -> subscription. */
  readonly subscriptions: ReadonlyMap<string, SubscriptionInfo>;
  /** Messages waiting to be sent. */
  readonly queued: number;
  /** Outgoing QoS 1/2 messages sent and not yet completely acknowledged. */
  readonly inflight: number;
  /** Inbound QoS 2 packet ids received and not yet released (PUBREL). */
  readonly inboundQos2: ReadonlySet<number>;
  /** Messages this session lost to a full queue. */
  readonly dropped: number;
}

export interface BrokerStats {
  /** CONNECT packets received. */
  connects: number;
  /** CONNACKs sent, by return / reason code. */
  connacks: Record<number, number>;
  /** Connections closed because a new one took their client id. */
  takeovers: number;
  /** PUBLISH packets received from clients (resends included). */
  publishesIn: number;
  /** PUBLISH packets sent to clients (resends included). */
  publishesOut: number;
  /** Messages waiting in session queues now. */
  queued: number;
  /** Messages dropped because a session queue was full. */
  dropped: number;
  /** Queued messages dropped because their Message Expiry Interval passed. */
  expired: number;
  /** Messages not sent because they exceed the client's Maximum Packet Size (or cannot be encoded). */
  tooLarge: number;
  /** Will messages published. */
  wills: number;
  /** Connections closed for malformed input or a protocol violation. */
  protocolErrors: number;
}

// Connection states.
const AWAIT_CONNECT = 0;
const CONNECTED = 1;
const CLOSED = 2;

// Outgoing QoS 1/2 states.
const AWAIT_ACK = 1; // PUBLISH sent, PUBACK / PUBREC due
const AWAIT_COMP = 2; // PUBREL sent, PUBCOMP due

const NEVER = -1;
const PINGRESP_BYTES = Uint8Array.of(0xd0, 0x00); // only ever handed out as a subarray view; receivers copy
// Seconds a v5 session expiry of 0xFFFFFFFF stands for: it never expires (3.3.2.11).
const EXPIRY_NEVER = 0xffffffff;

// 3.1.1 return code <-> 5.0 reason code for refuseNext() (MQTT 5.0 3.2.2.2 / 3.1.1 3.2.2.3).
const V311_TO_V5 = Object.freeze([0, 0x84, 0x85, 0x88, 0x86, 0x87]);
function toV311Code(code: number): number {
  switch (code) {
    case 0x84: return 1;
    case 0x85: return 2;
    case 0x86: return 4;
    case 0x87: case 0x8a: return 5;
    default: return 3; // Server unavailable: the closest 3.1.1 has to everything else
  }
}

/** A message as routed: shared, never modified, by every session it goes to. */
class Message {
  constructor(
    readonly topic: string,
    readonly payload: Uint8Array,
    readonly qos: QoS,
    readonly retain: boolean,
    readonly expiresAtMs: number, // NEVER if no Message Expiry Interval
    readonly properties: Properties | undefined, // forwarded MQTT 5 properties, expiry excluded
  ) {}
}

/** One delivery of a message to one session: queued, then inflight if QoS > 0. */
class Outgoing {
  packetId = 0;
  state = 0;
  constructor(
    readonly msg: Message,
    readonly qos: QoS,
    readonly retain: boolean,
  ) {}
}

class SessionSubscription implements SubscriptionInfo {
  constructor(
    readonly qos: QoS,
    readonly noLocal: boolean,
    readonly retainAsPublished: boolean,
    readonly retainHandling: 0 | 1 | 2,
    readonly wildcard: boolean,
  ) {}
}

class Session implements SessionInfo {
  conn: BrokerConnection | null = null;
  version: ProtocolVersion = ProtocolVersion.V311;
  expiryIntervalS = 0;
  expiresAtMs = NEVER;
  readonly subscriptions = new Map<string, SessionSubscription>();
  wildcards = 0; // subscriptions holding a wildcard
  queue: Outgoing[] = [];
  head = 0; // queue[head..] are waiting
  readonly outgoing = new Map<number, Outgoing>(); // packet id -> inflight, in send order
  readonly inboundQos2 = new Set<number>();
  nextPacketId = 1;
  window = 20;
  dropped = 0;
  // Scratch for #route: the highest matching subscription of this session.
  stamp = 0;
  routeQos = 0;
  routeRetain = false;

  constructor(readonly clientId: string) {}

  get connected(): boolean {
    return this.conn !== null;
  }
  get queued(): number {
    return this.queue.length - this.head;
  }
  get inflight(): number {
    return this.outgoing.size;
  }
}

/** One client connection. Obtain with BrokerModel.accept(). */
export class BrokerConnection {
  /** @internal */ state = AWAIT_CONNECT;
  /** @internal */ version: ProtocolVersion = ProtocolVersion.V311;
  /** @internal */ session: Session | null = null;
  /** @internal */ will: Will | undefined = undefined;
  /** @internal */ keepaliveMs = 0;
  /** @internal */ lastRxMs = 0;
  /** @internal */ decoder: PacketDecoder | null = null;
  /** @internal */ aliases: Map<number, string> | null = null; // inbound MQTT 5 topic aliases
  /** @internal */ maxOutgoing = Infinity; // the client's MQTT 5 Maximum Packet Size
  /** @internal */ id = '';

  constructor(
    private readonly broker: BrokerModel,
    /** @internal */ readonly transport: ClientTransport,
  ) {}

  /** Bytes from the client, in any chunking. Ignored once the connection is closed. */
  receive(bytes: Uint8Array, nowMs: number): void {
    this.broker._event(this, bytes, nowMs);
  }

  /** The client's side closed or was lost: publishes the will unless a DISCONNECT came first. */
  clientGone(nowMs: number): void {
    this.broker._event(this, null, nowMs);
  }

  /** The client id once CONNECT was accepted (assigned if the client sent none), else null. */
  get clientId(): string | null {
    return this.id === '' ? null : this.id;
  }

  /** Accepted and not closed. */
  get connected(): boolean {
    return this.state === CONNECTED;
  }

  /** Not yet closed by either side. */
  get open(): boolean {
    return this.state !== CLOSED;
  }

  /** Protocol of the CONNECT (3.1.1 until one arrives). */
  get protocolVersion(): ProtocolVersion {
    return this.version;
  }
}

interface Deferred {
  conn: BrokerConnection;
  bytes: Uint8Array | null; // null: clientGone
  nowMs: number;
}

export class BrokerModel {
  /** Called once per message accepted from a client: each QoS 0/1 PUBLISH, the first PUBLISH of a QoS 2 id. */
  onMessage: ((info: MessageInfo) => void) | null = null;
  /** MQTT 5 properties put in every successful v5 CONNACK; the broker enforces the limits it announces. */
  connackProperties: Properties | null = null;
  readonly stats: BrokerStats = {
    connects: 0,
    connacks: {},
    takeovers: 0,
    publishesIn: 0,
    publishesOut: 0,
    queued: 0,
    dropped: 0,
    expired: 0,
    tooLarge: 0,
    wills: 0,
    protocolErrors: 0,
  };

  readonly #maxQueued: number;
  readonly #maxInflight: number;
  readonly #dropNewest: boolean;
  readonly #maxQoS: QoS;
  readonly #queueQoS0: boolean;
  readonly #maxPacketSize: number;

  readonly #sessions = new Map<string, Session>();
  readonly #exact = new Map<string, Set<Session>>(); // wildcard-free filter -> subscribers
  readonly #wild = new Set<Session>(); // sessions with a wildcard subscription
  readonly #retained = new Map<string, Message>();
  readonly #connections = new Set<BrokerConnection>();
  readonly #pool: PacketDecoder[] = [];
  #refuse = -1;
  #now = 0;
  #assigned = 0;
  #busy = false;
  readonly #deferred: Deferred[] = [];
  #stamp = 0;
  readonly #hits: Session[] = [];
  #scratch = new Uint8Array(1024);
  #sending = 0;
  #decoders = 0;

  constructor(options: BrokerOptions = {}) {
    this.#maxQueued = options.maxQueuedPerSession ?? 1000;
    this.#maxInflight = options.maxInflightPerSession ?? 20;
    this.#dropNewest = (options.dropPolicy ?? 'oldest') === 'newest';
    this.#maxQoS = options.maxQoS ?? 2;
    this.#queueQoS0 = options.queueQoS0 ?? false;
    this.#maxPacketSize = options.maxPacketSize ?? 8192;
    if (!(this.#maxQueued >= 0) || !(this.#maxInflight >= 1 && this.#maxInflight <= 65535)) {
      throw new RangeError('BrokerModel: maxQueuedPerSession must be >= 0 and maxInflightPerSession 1..65535');
    }
    if (this.#maxQoS !== 0 && this.#maxQoS !== 1 && this.#maxQoS !== 2) throw new RangeError('BrokerModel: maxQoS must be 0, 1 or 2');
  }

  /** Sessions by client id (live objects: read, do not keep across restart()). */
  get sessions(): ReadonlyMap<string, SessionInfo> {
    return this.#sessions;
  }

  /** Open connections (accepted and not closed). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Decoders created so far (pooled: a connection holds one only while it has an incomplete packet). */
  get decoderCount(): number {
    return this.#decoders;
  }

  /** Retained messages held. */
  get retainedCount(): number {
    return this.#retained.size;
  }

  /** A new connection from a client; nothing is sent until its CONNECT arrives. */
  accept(transport: ClientTransport): BrokerConnection {
    const conn = new BrokerConnection(this, transport);
    this.#connections.add(conn);
    return conn;
  }

  /**
   * Answers the next CONNECT with `code` and closes the connection. A 3.1.1
   * return code (1..5) or a 5.0 reason code (>= 0x80); it is translated to the
   * connecting client's version.
   */
  refuseNext(code: number): void {
    if (!(code >= 1 && code <= 5) && !(code >= 0x80 && code <= 0xff)) {
      throw new RangeError('BrokerModel.refuseNext: give a 3.1.1 return code 1..5 or a 5.0 reason code >= 0x80');
    }
    this.#refuse = code;
  }

  /**
   * Publishes as if from another client: routed to matching subscriptions and
   * retained if asked (an empty retained payload clears the topic). Returns
   * the number of sessions it was routed to.
   */
  publish(topic: string, payload: Uint8Array, qos: QoS, options: PublishOptions = {}): number {
    if (!isValidTopicName(topic)) throw new TypeError('BrokerModel.publish: topic must be a non-empty topic name without wildcards');
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError('BrokerModel.publish: qos must be 0, 1 or 2');
    const now = options.nowMs ?? this.#now;
    this.#now = now;
    const mei = options.messageExpiryInterval ?? options.properties?.messageExpiryInterval;
    const msg = new Message(topic, payload.slice(), qos, options.retain === true, mei === undefined ? NEVER : now + mei * 1000, forwardable(options.properties));
    const wasBusy = this.#busy;
    this.#busy = true;
    try {
      if (msg.retain) this.#storeRetained(msg);
      const n = this.#route(msg, null, now);
      if (!wasBusy) this.#drainDeferred();
      return n;
    } finally {
      if (!wasBusy) this.#endBusy();
    }
  }

  /**
   * The broker restarts: every connection is dropped (close() called on
   * each, no wills). With keepSessions, persistent sessions (3.1.1
   * CleanSession=0, 5.0 Session Expiry > 0) and retained messages survive, with
   * their queues, inflight messages and QoS 2 ids; otherwise all is lost.
   */
  restart(options: { keepSessions: boolean; nowMs?: number }): void {
    const now = options.nowMs ?? this.#now;
    this.#now = now;
    const conns = Array.from(this.#connections);
    this.#connections.clear();
    for (const c of conns) {
      c.state = CLOSED;
      this.#releaseDecoder(c);
      const s = c.session;
      c.session = null;
      if (s !== null) s.conn = null;
    }
    if (options.keepSessions) {
      for (const s of this.#sessions.values()) {
        if (s.conn === null && s.expiresAtMs === NEVER) this.#detach(s, now);
      }
    } else {
      this.#sessions.clear();
      this.#exact.clear();
      this.#wild.clear();
      this.#retained.clear();
      this.stats.queued = 0;
    }
    const wasBusy = this.#busy;
    this.#busy = true;
    try {
      for (const c of conns) c.transport.close();
      if (!wasBusy) this.#drainDeferred();
    } finally {
      if (!wasBusy) this.#endBusy();
    }
  }

  /**
   * Lets virtual time act: closes connections silent for 1.5 keep-alive
   * periods (v5: DISCONNECT 0x8D; wills published), ends offline sessions
   * whose expiry has passed and drops expired queued messages.
   */
  tick(nowMs: number): void {
    this.#now = nowMs;
    const wasBusy = this.#busy;
    this.#busy = true;
    try {
      for (const c of this.#connections) {
        if (c.state === CONNECTED && c.keepaliveMs > 0 && nowMs - c.lastRxMs >= c.keepaliveMs * 1.5) {
          this.#endConnection(c, ReasonCode.KeepAliveTimeout, true, true, nowMs);
        }
      }
      for (const s of this.#sessions.values()) {
        if (s.conn === null && s.expiresAtMs !== NEVER && s.expiresAtMs <= nowMs) this.#endSession(s);
        else if (s.queued > 0) this.#purgeExpired(s, nowMs);
      }
      if (!wasBusy) this.#drainDeferred();
    } finally {
      if (!wasBusy) this.#endBusy();
    }
  }

  /** @internal Entry point of BrokerConnection.receive / clientGone. */
  _event(conn: BrokerConnection, bytes: Uint8Array | null, nowMs: number): void {
    if (conn.state === CLOSED) return;
    if (this.#busy) {
      this.#deferred.push({ conn, bytes: bytes === null ? null : bytes.slice(), nowMs });
      return;
    }
    this.#busy = true;
    try {
      if (bytes === null) this.#gone(conn, nowMs);
      else this.#feed(conn, bytes, nowMs);
      this.#drainDeferred();
    } finally {
      this.#endBusy();
    }
  }

  #drainDeferred(): void {
    const q = this.#deferred;
    for (let i = 0; i < q.length; i++) {
      const d = q[i];
      if (d.bytes === null) this.#gone(d.conn, d.nowMs);
      else this.#feed(d.conn, d.bytes, d.nowMs);
    }
    q.length = 0;
  }

  #endBusy(): void {
    this.#busy = false;
    this.#deferred.length = 0;
  }

  // ------------------------------------------------------------ input

  #gone(conn: BrokerConnection, now: number): void {
    if (conn.state === CLOSED) return;
    this.#now = now;
    this.#endConnection(conn, -1, true, false, now);
  }

  #feed(conn: BrokerConnection, bytes: Uint8Array, now: number): void {
    if (conn.state === CLOSED) return;
    this.#now = now;
    conn.lastRxMs = now;
    let d = conn.decoder;
    if (d === null) {
      d = this.#pool.pop() ?? null;
      if (d === null) {
        d = new PacketDecoder({ version: conn.version, bufferSize: this.#maxPacketSize });
        this.#decoders++;
      }
      conn.decoder = d;
    }
    d.version = conn.version;
    d.feed(bytes);
    for (;;) {
      const r = d.next();
      if (r === DECODE_PACKET) {
        this.#handle(conn, d.packet!, now);
        if (conn.state === CLOSED) return; // nothing after a refused CONNECT or an error is processed
      } else if (r === DECODE_NEED_DATA) {
        break;
      } else {
        this.#protocolError(conn, d.error!.reasonCode, now);
        return;
      }
    }
    if (d.pending === 0) {
      conn.decoder = null;
      this.#pool.push(d);
    }
  }

  #handle(conn: BrokerConnection, p: Packet, now: number): void {
    if (conn.state === AWAIT_CONNECT) {
      if (p.type === PacketType.Connect) this.#connect(conn, p, now);
      else this.#protocolError(conn, ReasonCode.ProtocolError, now); // [MQTT-3.1.0-1]
      return;
    }
    const s = conn.session!;
    switch (p.type) {
      case PacketType.Publish:
        this.#inboundPublish(conn, s, p as DecodedPublish, now);
        return;
      case PacketType.Puback: {
        const o = s.outgoing.get(p.packetId);
        if (o !== undefined && o.qos === 1) {
          s.outgoing.delete(p.packetId);
          this.#pump(s, now);
        }
        return;
      }
      case PacketType.Pubrec: {
        const o = s.outgoing.get(p.packetId);
        if (o === undefined || o.qos !== 2) {
          this.#sendAck(conn, PacketType.Pubrel, p.packetId, conn.version === ProtocolVersion.V5 ? ReasonCode.PacketIdentifierNotFound : 0);
        } else if (p.reasonCode >= 0x80) {
          s.outgoing.delete(p.packetId); // refused by the receiver: acknowledged, never resent [MQTT-4.4.0-2]
          this.#pump(s, now);
        } else {
          o.state = AWAIT_COMP;
          this.#sendAck(conn, PacketType.Pubrel, p.packetId, 0);
        }
        return;
      }
      case PacketType.Pubcomp: {
        const o = s.outgoing.get(p.packetId);
        if (o !== undefined && o.state === AWAIT_COMP) {
          s.outgoing.delete(p.packetId);
          this.#pump(s, now);
        }
        return;
      }
      case PacketType.Pubrel: {
        // Method A: the id is released now; a PUBREL for an id not held is still completed [MQTT-4.3.3-11].
        const held = s.inboundQos2.delete(p.packetId);
        this.#sendAck(conn, PacketType.Pubcomp, p.packetId, held || conn.version !== ProtocolVersion.V5 ? 0 : ReasonCode.PacketIdentifierNotFound);
        return;
      }
      case PacketType.Subscribe:
        this.#subscribe(conn, s, p, now);
        return;
      case PacketType.Unsubscribe:
        this.#unsubscribe(conn, s, p);
        return;
      case PacketType.Pingreq:
        this.#emit(conn, PINGRESP_BYTES, 2);
        return;
      case PacketType.Disconnect: {
        const v5 = conn.version === ProtocolVersion.V5;
        const sei = v5 ? p.properties?.sessionExpiryInterval : undefined;
        if (sei !== undefined) {
          if (s.expiryIntervalS === 0 && sei !== 0) {
            this.#protocolError(conn, ReasonCode.ProtocolError, now); // 0 in CONNECT, non-zero at DISCONNECT (3.14.2.2.2)
            return;
          }
          s.expiryIntervalS = sei;
        }
        // Normal disconnection discards the will; 0x04 asks for it (3.14.2.1).
        this.#endConnection(conn, -1, v5 && p.reasonCode === ReasonCode.DisconnectWithWillMessage, true, now);
        return;
      }
      default:
        // A second CONNECT [MQTT-3.1.0-2], AUTH (not modelled), or a server-to-client packet.
        this.#protocolError(conn, ReasonCode.ProtocolError, now);
    }
  }

  #connect(conn: BrokerConnection, p: ConnectPacket, now: number): void {
    this.stats.connects++;
    const v5 = p.protocolVersion === ProtocolVersion.V5;
    conn.version = p.protocolVersion;
    conn.decoder!.version = p.protocolVersion;
    if (this.#refuse >= 0) {
      const code = this.#refuse;
      this.#refuse = -1;
      this.#refuseConnect(conn, v5 ? (code <= 5 ? V311_TO_V5[code] : code) : code <= 5 ? code : toV311Code(code), now);
      return;
    }
    let clientId = p.clientId;
    let assigned: string | undefined;
    if (clientId.length === 0) {
      if (!v5 && !p.clean) {
        this.#refuseConnect(conn, 2, now); // Identifier rejected (3.1.1 [MQTT-3.1.3-8])
        return;
      }
      do clientId = 'broker-model-' + ++this.#assigned;
      while (this.#sessions.has(clientId));
      if (v5) assigned = clientId; // [MQTT-3.2.2-16]
    }
    const props = p.properties;
    const cp = v5 ? this.connackProperties : null;
    let expiry = v5 ? (cp?.sessionExpiryInterval ?? props?.sessionExpiryInterval ?? 0) : p.clean ? 0 : Infinity;
    if (expiry === EXPIRY_NEVER) expiry = Infinity;

    let s = this.#sessions.get(clientId);
    if (s !== undefined && s.conn !== null) {
      // Takeover [MQTT-3.1.4-3]: the old connection's will goes out unless the
      // session continues and the will was to be delayed (5.0 3.1.3.2.2).
      this.stats.takeovers++;
      const old = s.conn;
      const delayed = (old.will?.properties?.willDelayInterval ?? 0) > 0 && !p.clean;
      this.#endConnection(old, ReasonCode.SessionTakenOver, !delayed, true, now);
      s = this.#sessions.get(clientId); // it ended if its expiry was 0
    }
    if (s !== undefined && (p.clean || (s.expiresAtMs !== NEVER && s.expiresAtMs <= now))) {
      this.#endSession(s);
      s = undefined;
    }
    const present = s !== undefined;
    if (s === undefined) {
      s = new Session(clientId);
      this.#sessions.set(clientId, s);
    }
    s.conn = conn;
    s.version = p.protocolVersion;
    s.expiryIntervalS = expiry;
    s.expiresAtMs = NEVER;
    const receiveMaximum = v5 ? (props?.receiveMaximum ?? 65535) : 65535;
    s.window = receiveMaximum < this.#maxInflight ? receiveMaximum : this.#maxInflight;
    conn.session = s;
    conn.id = clientId;
    conn.state = CONNECTED;
    conn.will = p.will;
    conn.maxOutgoing = v5 ? (props?.maximumPacketSize ?? Infinity) : Infinity;
    conn.keepaliveMs = (cp?.serverKeepAlive ?? p.keepalive) * 1000;

    let ackProps: Properties | undefined;
    if (v5 && (cp !== null || assigned !== undefined)) {
      ackProps = { ...cp };
      if (assigned !== undefined) ackProps.assignedClientIdentifier = assigned;
    }
    this.#sendPacket(conn, { type: PacketType.Connack, sessionPresent: present, reasonCode: 0, properties: ackProps });
    this.#countConnack(0);
    if (present) this.#resume(s, now);
  }

  #refuseConnect(conn: BrokerConnection, code: number, now: number): void {
    this.#sendPacket(conn, { type: PacketType.Connack, sessionPresent: false, reasonCode: code });
    this.#countConnack(code);
    this.#endConnection(conn, -1, false, true, now); // nothing after it is processed [MQTT-3.1.4-6]
  }

  #countConnack(code: number): void {
    const c = this.stats.connacks;
    c[code] = (c[code] ?? 0) + 1;
  }

  #inboundPublish(conn: BrokerConnection, s: Session, pub: DecodedPublish, now: number): void {
    this.stats.publishesIn++;
    const qos = pub.qos;
    const props = pub.properties;
    let topic: string;
    if (conn.version === ProtocolVersion.V5) {
      // Enforce what the CONNACK announced, so tests see a client break it.
      const cp = this.connackProperties;
      if (cp !== null) {
        if (cp.maximumPacketSize !== undefined && pub.payloadEnd - pub.packetStart > cp.maximumPacketSize) {
          return this.#protocolError(conn, ReasonCode.PacketTooLarge, now); // [MQTT-3.2.2-15]
        }
        if (cp.maximumQoS !== undefined && qos > cp.maximumQoS) return this.#protocolError(conn, ReasonCode.QoSNotSupported, now); // [MQTT-3.2.2-11]
        if (cp.retainAvailable === 0 && pub.retain) return this.#protocolError(conn, ReasonCode.RetainNotSupported, now); // [MQTT-3.2.2-14]
      }
      const alias = props?.topicAlias;
      if (alias !== undefined) {
        if (alias > (cp?.topicAliasMaximum ?? 0)) return this.#protocolError(conn, ReasonCode.TopicAliasInvalid, now); // [MQTT-3.3.2-9]
        const aliases = (conn.aliases ??= new Map());
        if (pub.topicEnd === pub.topicStart) {
          const t = aliases.get(alias);
          if (t === undefined) return this.#protocolError(conn, ReasonCode.ProtocolError, now); // 3.3.4: unknown alias
          topic = t;
        } else {
          topic = pub.topic;
          aliases.set(alias, topic);
        }
      } else {
        topic = pub.topic;
      }
      if (qos === 2 && !s.inboundQos2.has(pub.packetId) && s.inboundQos2.size >= (cp?.receiveMaximum ?? 65535)) {
        return this.#protocolError(conn, ReasonCode.ReceiveMaximumExceeded, now); // [MQTT-3.3.4-7]
      }
    } else {
      topic = pub.topic;
    }
    if (qos === 2) {
      if (s.inboundQos2.has(pub.packetId)) {
        // Already accepted (method A): acknowledge again, deliver nothing [MQTT-4.3.3-10].
        this.#sendAck(conn, PacketType.Pubrec, pub.packetId, 0);
        return;
      }
      s.inboundQos2.add(pub.packetId);
    }
    const mei = props?.messageExpiryInterval;
    const msg = new Message(topic, pub.payload.slice(), qos, pub.retain, mei === undefined ? NEVER : now + mei * 1000, forwardable(props));
    const dup = pub.dup;
    const packetId = pub.packetId;
    if (msg.retain) this.#storeRetained(msg);
    const onMessage = this.onMessage;
    if (onMessage !== null) onMessage({ clientId: s.clientId, topic, payload: msg.payload, qos, dup, retain: msg.retain });
    if (conn.state !== CONNECTED) return; // the callback restarted the broker
    this.#route(msg, s, now);
    if (qos === 1) this.#sendAck(conn, PacketType.Puback, packetId, 0);
    else if (qos === 2) this.#sendAck(conn, PacketType.Pubrec, packetId, 0);
  }

  #subscribe(conn: BrokerConnection, s: Session, p: SubscribePacket, now: number): void {
    const v5 = conn.version === ProtocolVersion.V5;
    const subs = p.subscriptions;
    const codes: number[] = [];
    const isNew: boolean[] = [];
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i];
      const filter = sub.topic;
      if (!isValidTopicFilter(filter)) {
        codes.push(v5 ? ReasonCode.TopicFilterInvalid : 0x80);
      } else if (filter.startsWith('$share/')) {
        codes.push(v5 ? ReasonCode.SharedSubscriptionsNotSupported : 0x80);
      } else {
        const granted = (sub.qos < this.#maxQoS ? sub.qos : this.#maxQoS) as QoS;
        isNew[i] = !s.subscriptions.has(filter);
        this.#addSubscription(s, filter, new SessionSubscription(granted, sub.noLocal === true, sub.retainAsPublished === true, sub.retainHandling ?? 0, hasWildcard(filter)));
        codes.push(granted);
      }
    }
    this.#sendPacket(conn, { type: PacketType.Suback, packetId: p.packetId, reasonCodes: codes });
    // Retained messages after the SUBACK, as Retain Handling says [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11].
    if (this.#retained.size === 0) return;
    for (let i = 0; i < subs.length; i++) {
      if (codes[i] >= 0x80) continue;
      const sub = s.subscriptions.get(subs[i].topic)!;
      if (sub.retainHandling === 2 || (sub.retainHandling === 1 && !isNew[i])) continue;
      for (const m of this.#retained.values()) {
        if (m.expiresAtMs !== NEVER && m.expiresAtMs <= now) continue;
        if (!topicMatches(subs[i].topic, m.topic)) continue;
        this.#deliver(s, m, (m.qos < sub.qos ? m.qos : sub.qos) as QoS, true, now);
        if (conn.state !== CONNECTED) return;
      }
    }
  }

  #unsubscribe(conn: BrokerConnection, s: Session, p: UnsubscribePacket): void {
    const codes: number[] = [];
    for (let i = 0; i < p.topics.length; i++) {
      codes.push(this.#removeSubscription(s, p.topics[i]) ? 0 : ReasonCode.NoSubscriptionExisted);
    }
    this.#sendPacket(conn, { type: PacketType.Unsuback, packetId: p.packetId, reasonCodes: codes });
  }

  // ------------------------------------------------------------ sessions

  #addSubscription(s: Session, filter: string, sub: SessionSubscription): void {
    const old = s.subscriptions.get(filter);
    if (old === undefined) {
      if (sub.wildcard) {
        s.wildcards++;
        this.#wild.add(s);
      } else {
        let set = this.#exact.get(filter);
        if (set === undefined) this.#exact.set(filter, (set = new Set()));
        set.add(s);
      }
    }
    s.subscriptions.set(filter, sub); // a repeat replaces the old one [MQTT-3.8.4-3]
  }

  #removeSubscription(s: Session, filter: string): boolean {
    const sub = s.subscriptions.get(filter);
    if (sub === undefined) return false;
    s.subscriptions.delete(filter);
    if (sub.wildcard) {
      if (--s.wildcards === 0) this.#wild.delete(s);
    } else {
      const set = this.#exact.get(filter)!;
      set.delete(s);
      if (set.size === 0) this.#exact.delete(filter);
    }
    return true;
  }

  #endSession(s: Session): void {
    if (this.#sessions.get(s.clientId) === s) this.#sessions.delete(s.clientId);
    for (const filter of Array.from(s.subscriptions.keys())) this.#removeSubscription(s, filter);
    this.stats.queued -= s.queued;
    s.queue = [];
    s.head = 0;
    s.outgoing.clear();
    s.inboundQos2.clear();
  }

  /** The session lost its connection: it ends, or waits for its expiry. */
  #detach(s: Session, now: number): void {
    if (s.expiryIntervalS === 0) this.#endSession(s);
    else s.expiresAtMs = s.expiryIntervalS === Infinity ? NEVER : now + s.expiryIntervalS * 1000;
  }

  /**
   * Closes `conn`: a v5 DISCONNECT with `reason` first if >= 0 and CONNACK was
   * sent, then close() if `closeTransport`, the session detached and the will
   * published if `withWill`.
   */
  #endConnection(conn: BrokerConnection, reason: number, withWill: boolean, closeTransport: boolean, now: number): void {
    if (conn.state === CLOSED) return;
    if (reason >= 0 && conn.state === CONNECTED && conn.version === ProtocolVersion.V5) {
      const b = this.#buffer(3);
      b[0] = 0xe0;
      b[1] = 1;
      b[2] = reason;
      this.#emit(conn, b, 3);
    }
    conn.state = CLOSED;
    this.#connections.delete(conn);
    this.#releaseDecoder(conn);
    const will = conn.will;
    conn.will = undefined;
    const s = conn.session;
    conn.session = null;
    if (s !== null) {
      s.conn = null;
      this.#detach(s, now);
    }
    if (closeTransport) conn.transport.close();
    if (withWill && will !== undefined) {
      this.stats.wills++;
      const mei = will.properties?.messageExpiryInterval;
      const msg = new Message(will.topic, will.payload, will.qos, will.retain, mei === undefined ? NEVER : now + mei * 1000, forwardable(will.properties));
      if (msg.retain) this.#storeRetained(msg);
      this.#route(msg, null, now);
    }
  }

  #protocolError(conn: BrokerConnection, reason: number, now: number): void {
    this.stats.protocolErrors++;
    if (conn.state === AWAIT_CONNECT) {
      // No DISCONNECT before CONNACK [MQTT-3.14.0-1]; an unknown protocol level gets return code 1 (3.1.1 [MQTT-3.1.2-2]).
      if (reason === ReasonCode.UnsupportedProtocolVersion) {
        const b = this.#buffer(4);
        b[0] = 0x20;
        b[1] = 2;
        b[2] = 0;
        b[3] = 1;
        this.#emit(conn, b, 4);
        this.#countConnack(1);
      }
      this.#endConnection(conn, -1, false, true, now);
      return;
    }
    this.#endConnection(conn, reason, true, true, now); // not a normal disconnection: the will goes out (3.1.2.5)
  }

  #releaseDecoder(conn: BrokerConnection): void {
    const d = conn.decoder;
    if (d === null) return;
    conn.decoder = null;
    d.reset();
    this.#pool.push(d);
  }

  // ------------------------------------------------------------ routing

  #storeRetained(msg: Message): void {
    if (msg.payload.length === 0) this.#retained.delete(msg.topic); // [MQTT-3.3.1-6] [MQTT-3.3.1-7]
    else this.#retained.set(msg.topic, msg);
  }

  /**
   * Delivers `msg` once to every session with a matching subscription, at the
   * highest QoS of its matches [MQTT-3.3.4-2] capped by the message's.
   */
  #route(msg: Message, publisher: Session | null, now: number): number {
    const stamp = ++this.#stamp;
    const hits = this.#hits;
    const start = hits.length; // #route may nest (a will published during a delivery)
    const exact = this.#exact.get(msg.topic);
    if (exact !== undefined) {
      for (const s of exact) this.#match(s, s.subscriptions.get(msg.topic)!, publisher, stamp, hits);
    }
    for (const s of this.#wild) {
      for (const [filter, sub] of s.subscriptions) {
        if (sub.wildcard && topicMatches(filter, msg.topic)) this.#match(s, sub, publisher, stamp, hits);
      }
    }
    const end = hits.length;
    for (let i = start; i < end; i++) {
      const s = hits[i];
      const qos = (msg.qos < s.routeQos ? msg.qos : s.routeQos) as QoS;
      // RETAIN is cleared on live delivery (3.1.1 [MQTT-3.3.1-9]) unless Retain As Published [MQTT-3.3.1-12] [MQTT-3.3.1-13].
      this.#deliver(s, msg, qos, s.routeRetain && msg.retain, now);
    }
    hits.length = start;
    return end - start;
  }

  #match(s: Session, sub: SessionSubscription, publisher: Session | null, stamp: number, hits: Session[]): void {
    if (sub.noLocal && s === publisher) return; // [MQTT-3.8.3-3]
    if (s.stamp !== stamp) {
      s.stamp = stamp;
      s.routeQos = sub.qos;
      s.routeRetain = sub.retainAsPublished;
      hits.push(s);
    } else {
      if (sub.qos > s.routeQos) s.routeQos = sub.qos;
      if (sub.retainAsPublished) s.routeRetain = true;
    }
  }

  #deliver(s: Session, msg: Message, qos: QoS, retain: boolean, now: number): void {
    const o = new Outgoing(msg, qos, retain);
    if (s.conn !== null && (qos === 0 || (s.queued === 0 && s.outgoing.size < s.window))) {
      this.#transmit(s, o, now);
      return;
    }
    if (qos === 0 && s.conn === null && !this.#queueQoS0) return;
    if (s.queued >= this.#maxQueued) {
      this.stats.dropped++;
      s.dropped++;
      if (this.#dropNewest || s.queued === 0) return;
      s.head++;
      this.stats.queued--;
    }
    s.queue.push(o);
    this.stats.queued++;
  }

  /** Sends queued messages while the session is online and its window has room, in order. */
  #pump(s: Session, now: number): void {
    while (s.conn !== null && s.head < s.queue.length) {
      const o = s.queue[s.head];
      if (o.qos !== 0 && s.outgoing.size >= s.window) break;
      s.head++;
      this.stats.queued--;
      if (o.msg.expiresAtMs !== NEVER && o.msg.expiresAtMs <= now) {
        this.stats.expired++; // not yet on its way: it is deleted [MQTT-3.3.2-5]; once sent it is not [MQTT-4.3.3-7]
        continue;
      }
      this.#transmit(s, o, now);
    }
    this.#compact(s);
  }

  #compact(s: Session): void {
    if (s.head === s.queue.length) {
      s.queue.length = 0;
      s.head = 0;
    } else if (s.head > 32 && s.head * 2 > s.queue.length) {
      s.queue.splice(0, s.head);
      s.head = 0;
    }
  }

  #purgeExpired(s: Session, now: number): void {
    const q = s.queue;
    let w = s.head;
    for (let r = s.head; r < q.length; r++) {
      const o = q[r];
      if (o.msg.expiresAtMs !== NEVER && o.msg.expiresAtMs <= now) {
        this.stats.expired++;
        this.stats.queued--;
      } else {
        q[w++] = o;
      }
    }
    q.length = w;
    this.#compact(s);
  }

  /** On a resumed session: unacknowledged PUBLISH again with DUP, PUBREL for those past PUBREC [MQTT-4.4.0-1], then the queue. */
  #resume(s: Session, now: number): void {
    const conn = s.conn!;
    for (const o of Array.from(s.outgoing.values())) {
      if (s.conn !== conn) return;
      if (o.state === AWAIT_COMP) this.#sendAck(conn, PacketType.Pubrel, o.packetId, 0);
      else this.#sendPublish(conn, o, true, now);
    }
    this.#pump(s, now);
  }

  #transmit(s: Session, o: Outgoing, now: number): void {
    const conn = s.conn!;
    if (o.qos !== 0) {
      let id = s.nextPacketId;
      while (s.outgoing.has(id)) id = id === 65535 ? 1 : id + 1;
      s.nextPacketId = id === 65535 ? 1 : id + 1;
      o.packetId = id;
      o.state = AWAIT_ACK;
      s.outgoing.set(id, o);
    }
    if (!this.#sendPublish(conn, o, false, now) && o.qos !== 0) {
      s.outgoing.delete(o.packetId); // too large for this client: discarded as if acknowledged (3.1.2.11.4)
    }
  }

  // ------------------------------------------------------------ output

  #sendPublish(conn: BrokerConnection, o: Outgoing, dup: boolean, now: number): boolean {
    const m = o.msg;
    let props = m.properties ?? null;
    if (conn.version === ProtocolVersion.V5 && m.expiresAtMs !== NEVER) {
      // The interval forwarded is what is left of it [MQTT-3.3.2-6].
      const left = Math.ceil((m.expiresAtMs - now) / 1000);
      props = { ...props, messageExpiryInterval: left > 1 ? left : 1 };
    }
    const n = publishLength(conn.version, m.topic, m.payload.length, o.qos, props);
    if (n < 0 || n > conn.maxOutgoing) {
      this.stats.tooLarge++;
      return false;
    }
    const buf = this.#buffer(n);
    encodePublish(buf, 0, conn.version, m.topic, m.payload, o.qos, o.retain, dup, o.packetId, props);
    this.stats.publishesOut++;
    this.#emit(conn, buf, n);
    return true;
  }

  #sendAck(conn: BrokerConnection, type: number, packetId: number, reason: number): void {
    const buf = this.#buffer(5);
    const n = encodeAck(buf, 0, conn.version, type, packetId, reason);
    this.#emit(conn, buf, n);
  }

  #sendPacket(conn: BrokerConnection, p: Packet): void {
    const n = encodedLength(p, conn.version);
    if (n < 0) throw new Error('BrokerModel: cannot encode a ' + p.type + ' packet; check connackProperties');
    const buf = this.#buffer(n);
    encode(p, conn.version, buf, 0);
    this.#emit(conn, buf, n);
  }

  /** A buffer for `n` bytes: the shared scratch, or a fresh one if a send() is in progress. */
  #buffer(n: number): Uint8Array {
    if (this.#sending > 0) return new Uint8Array(n);
    if (n > this.#scratch.length) this.#scratch = new Uint8Array(Math.max(n, this.#scratch.length * 2));
    return this.#scratch;
  }

  #emit(conn: BrokerConnection, buf: Uint8Array, n: number): void {
    if (conn.state === CLOSED) return;
    this.#sending++;
    try {
      conn.transport.send(buf.subarray(0, n));
    } finally {
      this.#sending--;
    }
  }
}

/** The MQTT 5 PUBLISH properties a broker forwards unchanged (3.3.2.3); undefined if none. */
function forwardable(p: Properties | undefined): Properties | undefined {
  if (p === undefined) return undefined;
  let out: Properties | undefined;
  if (p.payloadFormatIndicator !== undefined) (out ??= {}).payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.contentType !== undefined) (out ??= {}).contentType = p.contentType;
  if (p.responseTopic !== undefined) (out ??= {}).responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) (out ??= {}).correlationData = p.correlationData;
  if (p.userProperties !== undefined) (out ??= {}).userProperties = p.userProperties;
  return out;
}
