// The sans-I/O client: bytes, time and commands in; bytes, deliveries, events,
// deadlines and snapshot writes out. No sockets, timers, clocks or randomness
// of its own: the host passes `now` (ms, any clock that keeps running across
// sleep if expiry should) and a random source.
//
// Connection states (numeric; transitions only in the `#to*` methods):
//   Idle ─start→ Waiting ─deadline→ Opening ─transportOpened→ Connecting ─CONNACK 0→ Connected
//   any live state ─close/error/timeout→ Waiting (after the backoff delay); end() → Idle

import { PacketType, ProtocolVersion, type AuthPacket, type ConnackPacket, type Packet, type Properties, type PublishPacket, type QoS, type Subscription, type Will } from '../mqtt/types.js';
import { encode, encodeAck, encodedLength, encodePublish, publishLayout, publishLength, varintSize, PUBLISH_DUP_FLAG } from '../mqtt/encode.js';
import { isValidTopicFilter } from '../mqtt/topic-match.js';
import { PacketDecoder, DECODE_PACKET, DECODE_ERROR, DECODE_PUBLISH_HEAD, DECODE_PIECE } from '../mqtt/decode.js';
import { utf8Length, utf8Write, utf8Read } from '../mqtt/utf8.js';
import { SessionState, RecordEvent, RecordState, Release, SubState, DEFAULT_CAPACITIES, type Capacities } from './session-state.js';
import { crc32 } from './crc32.js';
import type { DecodedPublish } from '../mqtt/decode.js';
import { SessionSnapshot, RestoreStatus, type SessionMeta } from './snapshot.js';
import { ReconnectPolicy, LossKind, type ReconnectOptions } from './reconnect.js';
import { ClientEvent, DropReason, OutboxPolicy, type AuthenticationOptions, type ClientHooks, type PublishOptions, type RandomSource, type SnapshotStore, type SubscribeRequest } from './ports.js';

export const enum ConnState {
  Idle = 0,
  Waiting = 1,
  Opening = 2,
  Connecting = 3,
  Connected = 4,
}

/** What `publish` returns when it does not return a token (>= 0). */
export const enum PublishError {
  InvalidArgument = -1,
  QosNotSupported = -2,
  RetainNotSupported = -3,
  PacketTooLarge = -4,
  OutboxFull = -5,
  DroppedNewest = -6,
}

const PUBLISH_ERROR_TEXT: readonly string[] = Object.freeze([
  '',
  'invalid publish: QoS must be 0, 1 or 2 and the topic a non-empty name without wildcards',
  'the server does not accept this QoS (Maximum QoS in its CONNACK); publish at a lower QoS',
  'the server does not accept retained messages (Retain Available 0 in its CONNACK)',
  'the message is larger than the server accepts (Maximum Packet Size) or than the packet store (capacities.storeBytes)',
  'the outbox is full (policy: reject); wait for acknowledgements or raise capacities.outbox/storeBytes',
  'the outbox is full (policy: drop newest); this message was dropped',
]);

export function publishErrorMessage(code: number): string {
  return PUBLISH_ERROR_TEXT[-code] ?? `unknown publish result ${code}`;
}

export const enum SessionLostPolicy {
  /** Accepted QoS 1/2 messages go out again as new messages; subscriptions are restored. */
  Republish = 0,
  /** Unacknowledged messages are dropped (and reported); subscriptions are restored. */
  Discard = 1,
}

export interface ClientOptions {
  clientId: string;
  /** 4 (MQTT 3.1.1, the default) or 5. */
  protocolVersion?: 4 | 5;
  /** Clean session (3.1.1) / clean start (5.0). Default: false when a store is given, else true. */
  clean?: boolean;
  /** Seconds; 0 turns keepalive off. Default 60. */
  keepalive?: number;
  /** MQTT 5 session expiry (s). Default 86400 for a persistent session, 0 for a clean one. */
  sessionExpiryInterval?: number;
  username?: string;
  password?: string | Uint8Array;
  will?: { topic: string; payload: Uint8Array | string; qos?: QoS; retain?: boolean; properties?: Properties };
  /**
   * Extra MQTT 5 CONNECT properties (user properties, say). A Maximum Packet
   * Size given here is sent and enforced; without one, CONNECT carries none
   * when the host takes large messages in pieces (hooks.piece), else the
   * receive buffer size.
   */
  properties?: Properties;
  capacities?: Partial<Capacities>;
  /**
   * Bytes of incomplete input kept, and so the largest packet accepted, but
   * for a PUBLISH when the host takes pieces (hooks.piece). Default 2048.
   */
  receiveBufferSize?: number;
  /** Bytes of output batched into one write. Default 2048. */
  sendBufferSize?: number;
  outboxPolicy?: OutboxPolicy;
  sessionLostPolicy?: SessionLostPolicy;
  /** Send resends and queued publishes right behind CONNECT on a resumed session. Default true. */
  earlyPublish?: boolean;
  /**
   * Do not deliver again a QoS 2 message that a broker sends once more after
   * its PUBREL: the same id, released since, and the same topic and payload,
   * with DUP set, or with DUP clear on a later connection than the release.
   * mosquitto 2.0.x sends such a replay with DUP set when a connection dies
   * right after its CONNECT while a PUBREL was owed
   * (bench/soak-mosquitto-pubrel.ts); aedes 1.2.0 sends a completed message
   * again with DUP clear on reconnect. MQTT 4.3.3 forbids both. Off by
   * default: a broker that gave a released id to an identical new message
   * (with DUP set after losing its first copy, or as the first message of the
   * next connection) would have that message suppressed. Keeps
   * capacities.releasedQos2 ids (default: as many as capacities.incomingQos2).
   */
  guardReplayAfterPubrel?: boolean;
  /**
   * Bytes for incoming QoS 2 PUBLISH packets that arrive while the id table
   * (capacities.incomingQos2) is full: they wait here, unacknowledged, and are
   * delivered and answered as PUBRELs free ids, in order. mosquitto 2.0 sends
   * that far ahead of its PUBRELs (README, "Brokers have bugs too"). Only when
   * this is full too does the client hold messages back at the broker and
   * reconnect to get them again. Allocated the first time it is needed.
   * Default: receiveBufferSize; 0: none.
   */
  incomingHoldBytes?: number;
  reconnect?: ReconnectOptions;
  /** Reconnect after a loss. Default true. */
  autoReconnect?: boolean;
  /** Transport open + CONNACK must finish within this. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** PINGRESP (or any packet) must arrive within this after PINGREQ. Default 10000 ms, at most the keepalive. */
  pingTimeoutMs?: number;
  /**
   * MQTT 5 enhanced authentication: the method (and first data) for CONNECT;
   * the server's challenges arrive as Auth events, answered with
   * continueAuthentication. `properties.authenticationMethod`/`authenticationData`
   * (MQTT.js's way) mean the same.
   */
  authentication?: AuthenticationOptions;
}

/** What a CONNECT carries beyond the client's own fields (see DormouseClient's #connectExtra). */
interface ConnectExtra {
  username: string | undefined;
  password: Uint8Array | undefined;
  will: Will | undefined;
  properties: Properties | undefined;
}

/** Bits of DormouseClient's #flags. */
const enum Flag {
  /** Early publishing happened on this connection attempt. */
  SentEarly = 1,
  SleepReadyReported = 2,
  EverConnected = 4,
  /** A QoS 2 message was held back for want of room in the incoming id table. */
  HeldBack = 8,
  ReconnectForHeldBack = 16,
  /** Options. */
  EarlyPublish = 32,
  AutoReconnect = 64,
  /** ClosedBeforeConnack was reported since the last successful CONNACK. */
  ClosedBeforeConnack = 128,
  /** An AUTH 0x18 from the server waits for continueAuthentication. */
  AuthAwaitingReply = 256,
  /** A re-authentication (AUTH 0x19) is under way. */
  ReAuthenticating = 512,
  /** The large message under way is not delivered (a duplicate, a replay, held back). */
  PieceSkip = 1024,
  /** The large message under way is a QoS 2 one whose id was stored at its head: forget it if the connection ends first. */
  PieceOpen = 2048,
  /** The host's send hook returned false: hold new packets in the outbox until writable(). */
  Backed = 4096,
}

/** What to do with an incoming QoS 2 PUBLISH (#acceptQos2). */
const enum Qos2 {
  /** New: its id is stored (and persisted); deliver, then PUBREC. */
  Deliver = 0,
  /** Seen before (or a replay the guard caught): PUBREC only. */
  Duplicate = 1,
  /** No room for its id: it waits in the hold region or at the broker (#holdBack). */
  Full = 2,
}

/** Indexes into `metrics`. */
export const enum Metric {
  Sent = 0,
  Acked = 1,
  Resent = 2,
  DuplicatesSuppressed = 3,
  DroppedOutboxOldest = 4,
  DroppedOutboxNewest = 5,
  DroppedExpired = 6,
  DroppedRefused = 7,
  DroppedSessionLost = 8,
  Reconnects = 9,
  StrayAcks = 10,
  Received = 11,
  AckTimeTotalMs = 12,
  AckTimeMaxMs = 13,
  Refused = 14,
  ProtocolErrors = 15,
  KeepaliveTimeouts = 16,
  SnapshotWrites = 17,
  /** Incoming QoS 2 messages held back (not acknowledged) while the id table was full. */
  HeldBack = 18,
  /** QoS 2 messages a broker sent again after their PUBREL, not delivered again (guardReplayAfterPubrel). */
  BrokerReplays = 19,
  /** QoS 2 messages the broker acknowledged with PUBACK, so took at QoS 1 (RabbitMQ 3.10). */
  PublishDowngraded = 20,
  /** Queued messages replaced by a newer one on the same topic (OutboxPolicy.Conflate). */
  DroppedSuperseded = 21,
  /** Session takeovers seen (DISCONNECT 0x8E, or repeated kicks right after CONNACK). */
  Takeovers = 22,
}
const METRICS = 23;

const UNLIMITED_PACKET = 268435460;
/** Scratch for publishLayout, shared by every client: read right after it is written. */
const LAYOUT = new Int32Array(2);

export class DormouseClient {
  readonly version: ProtocolVersion;
  readonly clientId: string;
  readonly clean: boolean;
  readonly session: SessionState;
  readonly metrics: Uint32Array;
  readonly reconnectPolicy: ReconnectPolicy;
  /** Session metadata kept in the snapshot (server limits, clock). */
  readonly meta: SessionMeta;
  state: ConnState = ConnState.Idle;
  /** The identifier the server assigned (MQTT 5), if any. */
  assignedClientId = '';
  /** Why the last connection ended or was refused (reason code), for hosts and tests. */
  lastReasonCode = 0;

  #hooks: ClientHooks;
  #random: RandomSource;
  #snapshot: SessionSnapshot | null = null;
  #decoder: PacketDecoder;
  /**
   * The session's byte view (session.arena): its last sendBufferSize bytes,
   * from #outAt, are the send buffer, and the receive buffer is just before
   * them. One view for the packet store, both buffers and the topic filters:
   * each view costs about 96 bytes of heap.
   */
  #out: Uint8Array;
  #outAt: number;
  /** End of the batched output in #out (#outAt when empty). */
  #outLen: number;
  /**
   * The last two views of #out handed to hooks.send, reused when a batch has
   * the same length: a steady stream of equal packets (a publish per call, or
   * QoS 2's PUBLISH and PUBREL taking turns) then makes no view per send. The
   * bytes behind a view are valid only during the call anyway.
   */
  #sendView: Uint8Array | null = null;
  #sendViewOlder: Uint8Array | null = null;
  /** Lengths of the last two sends that found no view to reuse: a view is kept only for a length seen again. */
  #missA = -1;
  #missB = -1;
  /**
   * What CONNECT carries beyond the client's own fields (user name, password,
   * will, MQTT 5 properties); null for a plain 3.1.1 CONNECT. The packet itself
   * is made at each connect: an idle client keeps no CONNECT object.
   */
  #connectExtra: ConnectExtra | null;
  #keepaliveMs: number;
  /** The keepalive asked for in CONNECT; a CONNACK's Server Keep Alive overrides it for that connection. */
  #requestedKeepaliveMs: number;
  // Options kept as fields of their own (an options object costs its header).
  #outboxPolicy: OutboxPolicy;
  #sessionLostPolicy: SessionLostPolicy;
  #connectTimeoutMs: number;
  #pingTimeoutMs: number;
  #clockOffset = 0;
  #dirty = false;
  /**
   * Waiting: when the next attempt may start. Opening and Connecting: when
   * this attempt started (the connect timeout runs from it). One field, as the
   * states are apart.
   */
  #attemptAt = 0;
  #lastSentAt = 0;
  /** `now` of the call in progress. */
  #callNow = 0;
  #pingDeadline = -1;
  /** Yes/no state and options, as bits of one number (see Flag): a field each would cost 8 bytes. */
  #flags = 0;
  /** MQTT 5 enhanced authentication, or null (the usual case). */
  #auth: AuthenticationOptions | null = null;
  /** The ack owed at the last piece of the large message under way: (type << 16) | packet id, or 0. */
  #pieceAck = 0;
  /**
   * Whole QoS 2 PUBLISH packets waiting for room in the id table, back to
   * back from byte 0 (see incomingHoldBytes); made on first need.
   */
  #hold: Uint8Array | null = null;
  #holdSize: number;
  #heldLen = 0;
  #heldCount = 0;
  /** QoS 2 ids accepted (PUBREC sent) on this connection whose PUBREL has not come yet. */
  #recsOpen = 0;
  /** Decodes the held packets again when they get room (made with #hold). */
  #holdDecoder: PacketDecoder | null = null;

  constructor(options: ClientOptions, hooks: ClientHooks, store: SnapshotStore | null = null, random: RandomSource = () => 0.5) {
    if (typeof options?.clientId !== 'string') throw new TypeError('options.clientId must be a string');
    const version = options.protocolVersion ?? 4;
    if (version !== 4 && version !== 5) throw new RangeError('options.protocolVersion must be 4 (MQTT 3.1.1) or 5');
    this.version = version;
    this.clientId = options.clientId;
    this.clean = options.clean ?? store === null;
    if (!this.clean && options.clientId === '') {
      throw new Error(
        'a persistent session needs a fixed client id: with an empty (server-assigned) or random id every ' +
          'reconnect opens a new session and the broker keeps the old one and its queued messages until it expires; ' +
          'derive the id from something stable, such as the device MAC address',
      );
    }
    const keepalive = options.keepalive ?? 60;
    if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65535) throw new RangeError('options.keepalive must be 0..65535 seconds');
    this.#keepaliveMs = keepalive * 1000;
    this.#requestedKeepaliveMs = this.#keepaliveMs;
    this.#hooks = hooks;
    this.#random = random;
    const caps = { ...options.capacities };
    if (options.guardReplayAfterPubrel && !caps.releasedQos2) caps.releasedQos2 = caps.incomingQos2 ?? DEFAULT_CAPACITIES.incomingQos2;
    if (!options.guardReplayAfterPubrel) caps.releasedQos2 = 0;
    const receive = options.receiveBufferSize ?? 2048;
    const send = options.sendBufferSize ?? 2048;
    if (!Number.isInteger(receive) || receive < 8 || !Number.isInteger(send) || send < 8) {
      throw new RangeError('options.receiveBufferSize and sendBufferSize must be whole numbers >= 8');
    }
    // The session's tables, the metrics, the receive and the send buffer: one
    // ArrayBuffer, and the buffers are regions of the session's byte view. The
    // send buffer comes last, so the encoders' bound (the view's end) is its end.
    const s = (this.session = new SessionState(caps, METRICS, receive + send));
    this.metrics = new Uint32Array(s.buffer, s.extraWordsAt, METRICS);
    this.#out = s.arena;
    this.#outAt = this.#outLen = s.extraBytesIndex + receive;
    // Without a store there is nothing to persist: no snapshot object, no client id bytes.
    if (store) {
      const idBytes = new Uint8Array(utf8Length(options.clientId));
      utf8Write(options.clientId, idBytes, 0);
      this.#snapshot = new SessionSnapshot(this.session, version, idBytes, store);
    }
    const pieces = typeof hooks.piece === 'function';
    const maxPacket = options.properties?.maximumPacketSize;
    if (maxPacket !== undefined) {
      if (!Number.isInteger(maxPacket) || maxPacket < 1 || maxPacket > UNLIMITED_PACKET - 5) {
        throw new RangeError('options.properties.maximumPacketSize must be 1..268435455');
      }
      if (maxPacket > receive && !pieces) {
        throw new RangeError('options.properties.maximumPacketSize is larger than receiveBufferSize: take large messages in pieces (hooks.piece) or lower it');
      }
    }
    this.#decoder = new PacketDecoder({
      version,
      buffer: s.arena,
      bufferOffset: s.extraBytesIndex,
      bufferSize: receive,
      maxPacketSize: maxPacket ?? (pieces ? UNLIMITED_PACKET : receive),
      pieces,
    });
    this.reconnectPolicy = new ReconnectPolicy(options.reconnect);
    this.#outboxPolicy = options.outboxPolicy ?? OutboxPolicy.Reject;
    this.#sessionLostPolicy = options.sessionLostPolicy ?? SessionLostPolicy.Republish;
    if (options.earlyPublish ?? true) this.#flags |= Flag.EarlyPublish;
    if (options.autoReconnect ?? true) this.#flags |= Flag.AutoReconnect;
    this.#holdSize = options.incomingHoldBytes ?? receive;
    if (!Number.isInteger(this.#holdSize) || this.#holdSize < 0) throw new RangeError('options.incomingHoldBytes must be a whole number >= 0');
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10000;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 10000;
    this.meta = {
      clockMs: 0,
      hasSession: false,
      serverReceiveMaximum: 65535,
      serverMaximumQoS: 2,
      serverRetainAvailable: true,
      serverMaximumPacketSize: UNLIMITED_PACKET,
      serverKeepAlive: keepalive,
    };
    let auth = options.authentication ?? null;
    if (auth === null && options.properties?.authenticationMethod !== undefined) {
      auth = { method: options.properties.authenticationMethod, initialData: options.properties.authenticationData };
    }
    if (auth !== null) {
      if (version !== ProtocolVersion.V5) throw new RangeError('enhanced authentication (options.authentication) needs MQTT 5 (protocolVersion 5)');
      if (typeof auth.method !== 'string' || auth.method === '') throw new TypeError('options.authentication.method must be a non-empty string');
      this.#auth = auth;
    }
    this.#connectExtra = this.#connectOptions(options, pieces ? 0 : receive);
    const n = encode(this.#connectPacket(), this.version, new Uint8Array(4096), 0);
    if (n < 0) throw new RangeError('the CONNECT options do not make a valid packet (check the will topic, user name and properties)');
    if (n > send) throw new RangeError('the CONNECT packet is larger than sendBufferSize');
  }

  /** `largest`: the Maximum Packet Size to ask for unless the options give one (0: none, the spec's default of no limit). */
  #connectOptions(o: ClientOptions, largest: number): ConnectExtra | null {
    let properties: Properties | undefined;
    if (this.version === ProtocolVersion.V5) {
      // Only what differs from the spec's defaults [MQTT-3.1.2.11]: each property costs bytes on every connect.
      properties = { ...o.properties };
      const expiry = o.sessionExpiryInterval ?? (this.clean ? 0 : 86400);
      if (expiry > 0) properties.sessionExpiryInterval = expiry;
      // We hold at most this many incoming QoS 2 ids, so ask for no more in
      // flight (set again at each connect; the default is 65535).
      if (this.session.caps.incomingQos2 < 65535) properties.receiveMaximum = this.session.caps.incomingQos2;
      if (properties.maximumPacketSize === undefined && largest > 0) properties.maximumPacketSize = largest;
      if (this.#auth !== null) {
        properties.authenticationMethod = this.#auth.method;
        delete properties.authenticationData; // set at each connect (transportOpened)
      }
    }
    let will: Will | undefined;
    if (o.will) {
      const payload = typeof o.will.payload === 'string' ? stringBytes(o.will.payload) : o.will.payload;
      will = { topic: o.will.topic, payload, qos: o.will.qos ?? 0, retain: o.will.retain ?? false, properties: o.will.properties };
    }
    const password = typeof o.password === 'string' ? stringBytes(o.password) : o.password;
    if (o.username === undefined && password === undefined && will === undefined && properties === undefined) return null;
    return { username: o.username, password, will, properties };
  }

  #connectPacket(): Packet {
    const x = this.#connectExtra;
    return {
      type: PacketType.Connect,
      protocolVersion: this.version,
      clientId: this.clientId,
      clean: this.clean,
      keepalive: this.#requestedKeepaliveMs / 1000,
      username: x?.username,
      password: x?.password,
      will: x?.will,
      properties: x?.properties,
    };
  }

  // ---- time ----------------------------------------------------------------
  /** Session time: the host's clock, kept from running backwards across a restore. */
  #now(now: number): number {
    return now + this.#clockOffset;
  }

  // ---- life cycle ----------------------------------------------------------
  /**
   * Load the session from the store. Call once, before `start`. A valid image
   * from another client id or configuration throws SnapshotMismatchError.
   */
  restore(now: number): RestoreStatus {
    if (this.clean || this.#snapshot === null) return RestoreStatus.Empty;
    const status = this.#snapshot.restore(this.meta);
    if (status === RestoreStatus.Restored && now + this.#clockOffset < this.meta.clockMs) {
      this.#clockOffset = this.meta.clockMs - now;
    }
    return status;
  }

  /** Begin connecting now; reconnects follow the policy until `end`. */
  start(now: number): void {
    if (this.state !== ConnState.Idle) return;
    this.#attemptAt = now;
    this.state = ConnState.Waiting;
    this.tick(now);
  }

  /** Close gracefully: DISCONNECT, persist, close. Unacknowledged work stays in the session. */
  end(now: number): void {
    this.#callNow = now;
    if (this.state === ConnState.Connected) {
      this.#reserve(2);
      this.#out[this.#outLen++] = PacketType.Disconnect << 4;
      this.#out[this.#outLen++] = 0;
    }
    const wasLive = this.state >= ConnState.Opening;
    this.#resetInput();
    this.meta.clockMs = this.#now(now);
    this.#dirty = true;
    this.#flush();
    this.state = ConnState.Idle;
    this.#flags &= ~Flag.Backed;
    this.#pingDeadline = -1;
    if (wasLive) {
      this.#hooks.close();
      this.#hooks.event(ClientEvent.Disconnected, 0, 0);
    }
  }

  /** The host's transport is up: send CONNECT (and, resuming a session, the resends behind it). */
  transportOpened(now: number): void {
    this.#callNow = now;
    if (this.state !== ConnState.Opening) return;
    this.state = ConnState.Connecting;
    this.#decoder.reset();
    this.#flags &= ~(Flag.SentEarly | Flag.HeldBack | Flag.ReconnectForHeldBack | Flag.Backed);
    this.#recsOpen = 0;
    const s = this.session;
    const properties = this.#connectExtra?.properties;
    if (properties) {
      // Ids still held from an earlier connection take room: ask for no more
      // new QoS 1/2 messages in flight than the table can still take.
      const room = Math.max(1, s.caps.incomingQos2 - s.incomingCount);
      if (room < 65535) properties.receiveMaximum = room;
      const a = this.#auth;
      if (a !== null) {
        const data = typeof a.initialData === 'function' ? a.initialData() : a.initialData;
        if (data !== undefined) properties.authenticationData = data;
        else delete properties.authenticationData;
      }
    }
    const n = encode(this.#connectPacket(), this.version, this.#out, this.#outLen);
    this.#outLen += n;
    if ((this.#flags & Flag.EarlyPublish) !== 0 && !this.clean && this.meta.hasSession && this.#sessionLostPolicy === SessionLostPolicy.Republish) {
      this.#flags |= Flag.SentEarly;
      this.#resendAll(now);
      this.#pump(now);
      this.#resendSubscriptions();
    }
    this.#flush();
  }

  /**
   * The transport closed or failed to open. `failed`: it ended in an error (a
   * reset, a timeout) rather than the peer's orderly close.
   */
  transportClosed(now: number, failed = false): void {
    this.#callNow = now;
    if (this.state < ConnState.Opening) return;
    if (this.state === ConnState.Connecting && this.version === ProtocolVersion.V5 && (this.#flags & Flag.ClosedBeforeConnack) === 0) {
      // CONNECT went out and the broker closed without a word: a 3.1.1-only
      // broker does this (RabbitMQ 3.10). Say so once, not at every attempt
      // of the reconnect loop; a successful CONNACK re-arms it.
      this.#flags |= Flag.ClosedBeforeConnack;
      this.#hooks.event(ClientEvent.ClosedBeforeConnack, this.version, 0);
    }
    // An orderly close while connected is the server's doing; right after
    // CONNACK, repeatedly, it is how a 3.1.1 broker shows a takeover (mosquitto
    // closes the older connection cleanly). Resets are the network's: not kicks.
    this.#lost(now, false, this.state === ConnState.Connected && !failed ? LossKind.ServerClosed : LossKind.Failed);
  }

  /**
   * The transport has drained after its send hook returned false: send what
   * waits in the outbox (QoS 0 included) while the window and the link allow.
   */
  writable(now: number): void {
    this.#callNow = now;
    if ((this.#flags & Flag.Backed) === 0) return;
    this.#flags &= ~Flag.Backed;
    if (this.state !== ConnState.Connected || this.session.queued === 0) return;
    this.#pump(now);
    this.#checkSleepReady();
    this.#flush(true);
  }

  /** The host's send hook said the link is backed up and writable() has not come yet. */
  get backedUp(): boolean {
    return (this.#flags & Flag.Backed) !== 0;
  }

  /** Bytes from the transport: chunk[0 .. length), by default the whole chunk; read in place during this call. */
  receive(chunk: Uint8Array, now: number, length: number = chunk.length): void {
    this.#callNow = now;
    if (this.state < ConnState.Connecting) return;
    const d = this.#decoder;
    d.feed(chunk, length);
    for (;;) {
      const r = d.next();
      if (r === DECODE_PACKET) {
        this.#pingDeadline = -1;
        this.#handle(d.packet as Packet, now);
        if (this.state < ConnState.Connecting) break; // the packet closed the connection
      } else if (r === DECODE_PIECE) {
        this.#publishPiece(d.packet as DecodedPublish, now);
        if (this.state < ConnState.Connecting) break; // the application refused it
      } else if (r === DECODE_PUBLISH_HEAD) {
        this.#pingDeadline = -1;
        if (this.state !== ConnState.Connected) {
          this.#protocolError(now, 0x82, 'PUBLISH before CONNACK');
          break;
        }
        this.#publishHead(d.packet as DecodedPublish);
      } else {
        if (r === DECODE_ERROR) this.#protocolError(now, d.error?.reasonCode ?? 0x81, d.error?.message ?? "malformed packet");
        break;
      }
    }
    if ((this.#flags & Flag.ReconnectForHeldBack) !== 0 && this.state === ConnState.Connected) this.#reconnectAtOnce(now);
    this.#checkSleepReady();
    this.#flush(true);
    // The PUBCOMPs of this call are out: from now on the broker may reuse their ids.
    if (this.session.replayGuard) this.session.releasedAnswered();
  }

  /**
   * Messages were held back and PUBRELs have since made room: end this
   * connection cleanly and open the next at once, so the broker sends them again.
   */
  #reconnectAtOnce(now: number): void {
    const held = this.metrics[Metric.HeldBack];
    this.#reserve(2);
    this.#out[this.#outLen++] = PacketType.Disconnect << 4;
    this.#out[this.#outLen++] = 0;
    this.#flush();
    this.#lost(now, true, LossKind.Failed, 0);
    this.#attemptAt = now;
    this.#hooks.event(ClientEvent.HeldBack, held, (this.#flags & Flag.AutoReconnect) !== 0 ? 1 : 0);
  }

  /** Run timers: reconnect, connect timeout, keepalive, outbox expiry. */
  tick(now: number): void {
    this.#callNow = now;
    switch (this.state) {
      case ConnState.Waiting:
        if (now >= this.#attemptAt) {
          this.state = ConnState.Opening;
          this.#attemptAt = now;
          if ((this.#flags & Flag.EverConnected) !== 0) this.metrics[Metric.Reconnects]++;
          this.#hooks.event(ClientEvent.Connecting, this.reconnectPolicy.attempt, 0);
          this.#hooks.open();
        }
        break;
      case ConnState.Opening:
      case ConnState.Connecting:
        if (now - this.#attemptAt >= this.#connectTimeoutMs) this.#lost(now, true, LossKind.Failed);
        break;
      case ConnState.Connected:
        if (this.#pingDeadline >= 0) {
          if (now >= this.#pingDeadline) {
            this.metrics[Metric.KeepaliveTimeouts]++;
            this.#hooks.event(ClientEvent.KeepaliveTimeout, 0, 0);
            this.#lost(now, true, LossKind.Failed);
          }
        } else if (this.#keepaliveMs > 0 && now - this.#lastSentAt >= this.#keepaliveMs) {
          this.#reserve(2);
          this.#out[this.#outLen++] = PacketType.Pingreq << 4;
          this.#out[this.#outLen++] = 0;
          this.#pingDeadline = now + Math.min(this.#pingTimeoutMs, this.#keepaliveMs);
        }
        break;
    }
    if (this.session.queued > 0) this.#expire(now);
    this.#flush();
  }

  /** The next time `tick` has work to do (absolute ms), or Infinity. */
  nextDeadline(): number {
    let t = Infinity;
    switch (this.state) {
      case ConnState.Waiting:
        t = this.#attemptAt;
        break;
      case ConnState.Opening:
      case ConnState.Connecting:
        t = this.#attemptAt + this.#connectTimeoutMs;
        break;
      case ConnState.Connected:
        if (this.#pingDeadline >= 0) t = this.#pingDeadline;
        else if (this.#keepaliveMs > 0) t = this.#lastSentAt + this.#keepaliveMs;
        break;
    }
    const s = this.session;
    if (s.queued > 0) {
      const end = s.first + s.span;
      for (let i = s.first; i < end; i++) {
        if (s.state(i) !== RecordState.Queued) continue;
        const e = s.expiresAt(i);
        if (e !== 0) t = Math.min(t, e * 1000 - this.#clockOffset);
      }
    }
    return t;
  }

  // ---- application commands ------------------------------------------------
  /**
   * Accept a message. Returns its token (> 0) once it is in the session (and,
   * with a store, persisted), 0 for a QoS 0 message written at once, or a
   * PublishError (< 0; see publishErrorMessage).
   * Nothing is allocated on this path unless `opts` carries MQTT 5 properties.
   */
  publish(topic: string, payload: Uint8Array, opts: PublishOptions | undefined, now: number): number {
    this.#callNow = now;
    const qos = opts?.qos ?? 0;
    const retain = opts?.retain ?? false;
    if ((qos !== 0 && qos !== 1 && qos !== 2) || !(payload instanceof Uint8Array)) return PublishError.InvalidArgument;
    const meta = this.meta;
    if (qos > meta.serverMaximumQoS) return PublishError.QosNotSupported;
    if (retain && !meta.serverRetainAvailable) return PublishError.RetainNotSupported;
    const expiry = opts?.messageExpiryInterval ?? 0;
    let props: Properties | null = null;
    if (this.version === ProtocolVersion.V5 && (expiry > 0 || opts?.properties)) {
      props = expiry > 0 ? { ...opts?.properties, messageExpiryInterval: expiry } : opts!.properties!;
    }
    const length = publishLength(this.version, topic, payload.length, qos, props);
    if (length < 0) return PublishError.InvalidArgument;
    if (length > meta.serverMaximumPacketSize || length > this.#out.length - this.#outAt) return PublishError.PacketTooLarge;
    const s = this.session;
    const t = this.#now(now);
    const connected = this.state === ConnState.Connected;
    const backed = (this.#flags & Flag.Backed) !== 0;
    // QoS 0 with nothing waiting ahead of it, on a link that takes more, goes straight out: no record needed.
    if (qos === 0 && connected && s.queued === 0 && !backed) {
      this.#reserve(length);
      this.#outLen += encodePublish(this.#out, this.#outLen, this.version, topic, payload, 0, retain, false, 0, props);
      this.metrics[Metric.Sent]++;
      this.#flush(true);
      return 0;
    }
    if (length > s.caps.storeBytes) return PublishError.PacketTooLarge;
    const willQueue = !connected || backed || s.queued > 0 || s.inflight >= this.#window();
    if (this.#outboxPolicy === OutboxPolicy.Conflate && s.queued > 0 && !this.#conflate(topic, length, willQueue)) {
      return PublishError.OutboxFull;
    }
    let offset = willQueue && s.queued >= s.caps.outbox ? -1 : s.reserve(length);
    if (offset < 0) {
      const policy = this.#outboxPolicy;
      if (policy === OutboxPolicy.DropOldest) {
        while (offset < 0) {
          const i = s.firstQueued();
          if (i < 0) break;
          this.#drop(i, DropReason.OutboxFullOldest, Metric.DroppedOutboxOldest);
          offset = willQueue && s.queued >= s.caps.outbox ? -1 : s.reserve(length);
        }
      }
      if (offset < 0) {
        if (policy === OutboxPolicy.DropNewest) {
          this.metrics[Metric.DroppedOutboxNewest]++;
          this.#hooks.event(ClientEvent.Dropped, 0, DropReason.OutboxFullNewest);
          return PublishError.DroppedNewest;
        }
        return PublishError.OutboxFull;
      }
    }
    encodePublish(s.arena, offset, this.version, topic, payload, qos, retain, false, qos === 0 ? 0 : 1, props);
    let pidOff = 0;
    let expOff = 0;
    if (props === null) {
      // No properties: the packet id follows the fixed header and the topic.
      if (qos !== 0) pidOff = length - payload.length - 2 - (this.version === ProtocolVersion.V5 ? 1 : 0);
    } else {
      publishLayout(s.arena, offset, this.version, LAYOUT);
      pidOff = LAYOUT[0] < 0 ? 0 : LAYOUT[0] - offset;
      expOff = LAYOUT[1] < 0 ? 0 : LAYOUT[1] - offset;
    }
    const expiresAt = expiry > 0 ? Math.floor(t / 1000) + expiry : 0;
    const i = s.commitAccept(qos, length, expiresAt, pidOff, expOff);
    const token = s.token(i);
    this.#dirty = true;
    this.#flags &= ~Flag.SleepReadyReported;
    if (connected) this.#pump(now);
    this.#flush(true);
    return token;
  }

  /** Subscribe to one topic filter; kept in the session and restored if the broker loses it. */
  subscribe(topic: string, qos: QoS, now: number, options?: { noLocal?: boolean; retainAsPublished?: boolean; retainHandling?: 0 | 1 | 2 }): number {
    return this.subscribeMany([{ topic, qos, noLocal: options?.noLocal, retainAsPublished: options?.retainAsPublished, retainHandling: options?.retainHandling }], now);
  }

  /**
   * Subscribe to several topic filters with one SUBSCRIBE; each is kept in the
   * session and restored if the broker loses it. A filter the session already
   * holds with the same options costs no packet (Subscribed with packet id 0).
   * Returns the SUBSCRIBE's packet id, or 0 when nothing was sent now (all
   * held, or not connected: it goes out after CONNACK). Throws, changing and
   * sending nothing, on a bad filter, a full subscription table, or a packet
   * larger than the server accepts (Maximum Packet Size, MQTT-3.1.2-24) or
   * than sendBufferSize.
   */
  subscribeMany(requests: readonly SubscribeRequest[], now: number): number {
    this.#callNow = now;
    const s = this.session;
    const list = this.#filterBytes(requests?.map?.((r) => r?.topic), 'subscribe');
    const opts: number[] = [];
    const wire: Subscription[] = [];
    let added = 0;
    let addedBytes = 0;
    for (let k = 0; k < requests.length; k++) {
      const r = requests[k];
      const qos = r.qos;
      if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`subscribe: the QoS of ${JSON.stringify(r.topic)} must be 0, 1 or 2`);
      const rh = r.retainHandling ?? 0;
      if (rh !== 0 && rh !== 1 && rh !== 2) throw new TypeError('subscribe: retainHandling must be 0, 1 or 2');
      const opt = qos | (r.noLocal ? 4 : 0) | (r.retainAsPublished ? 8 : 0) | (rh << 4);
      const have = s.findSub(list[k]);
      if (have >= 0 && s.subState(have) === SubState.Active && s.subOptions(have) === opt) {
        opts.push(-1); // already held: no packet
        continue;
      }
      opts.push(opt);
      if (have < 0) {
        added++;
        addedBytes += list[k].length;
      }
      wire.push({ topic: r.topic, qos, noLocal: r.noLocal, retainAsPublished: r.retainAsPublished, retainHandling: rh });
    }
    if (s.subCount + added > s.caps.subscriptions || s.subBytesUsed + addedBytes > s.caps.subscriptionBytes) {
      throw new RangeError('subscribe: the subscription table is full (capacities.subscriptions / subscriptionBytes)');
    }
    if (wire.length > 0) this.#checkSubPacket({ type: PacketType.Subscribe, packetId: 1, subscriptions: wire }, 'subscribe');
    for (let k = 0; k < requests.length; k++) {
      if (opts[k] < 0) {
        // Already held by the session: device code that subscribes at every
        // boot costs no packet, so a resumed wake stays at the minimum.
        this.#hooks.event(ClientEvent.Subscribed, 0, s.subGranted(s.findSub(list[k])), requests[k].topic);
      } else {
        s.putSub(list[k], opts[k]);
      }
    }
    if (wire.length === 0) return 0;
    this.#dirty = true;
    this.#flags &= ~Flag.SleepReadyReported;
    const id = this.state === ConnState.Connected ? this.#sendPending(SubState.PendingSubscribe) : 0;
    this.#flush();
    return id;
  }

  /** Unsubscribe from one topic filter; see unsubscribeMany. */
  unsubscribe(topic: string, now: number): number {
    return this.unsubscribeMany([topic], now);
  }

  /**
   * Unsubscribe from several topic filters with one UNSUBSCRIBE, whether or
   * not this session subscribed them: the broker may hold one from an earlier
   * session. Each filter's UNSUBACK reason code (MQTT 5) is reported as an
   * Unsubscribed event. Returns the packet id, or 0 when not connected (it goes
   * out after CONNACK; if the broker then has no session, there is nothing to
   * unsubscribe and Unsubscribed reports 0x11, or 0 in 3.1.1, at once).
   * Throws, changing and sending nothing, as subscribeMany does.
   */
  unsubscribeMany(topics: readonly string[], now: number): number {
    this.#callNow = now;
    const s = this.session;
    const list = this.#filterBytes(topics, 'unsubscribe');
    let added = 0;
    let addedBytes = 0;
    for (let k = 0; k < list.length; k++) {
      if (s.findSub(list[k]) < 0) {
        added++;
        addedBytes += list[k].length;
      }
    }
    if (s.subCount + added > s.caps.subscriptions || s.subBytesUsed + addedBytes > s.caps.subscriptionBytes) {
      // The filter is kept until its UNSUBACK, so the request survives a reconnect.
      throw new RangeError('unsubscribe: the subscription table has no room to track this UNSUBSCRIBE (capacities.subscriptions / subscriptionBytes)');
    }
    this.#checkSubPacket({ type: PacketType.Unsubscribe, packetId: 1, topics: topics.slice() }, 'unsubscribe');
    for (let k = 0; k < list.length; k++) {
      let i = s.findSub(list[k]);
      if (i < 0) i = s.putSub(list[k], 0);
      s.setSubState(i, SubState.PendingUnsubscribe, 0);
      s.setSubPacketId(i, 0);
    }
    this.#dirty = true;
    this.#flags &= ~Flag.SleepReadyReported;
    const id = this.state === ConnState.Connected ? this.#sendPending(SubState.PendingUnsubscribe) : 0;
    this.#flush();
    return id;
  }

  /** Each topic filter's UTF-8 bytes, checked: a legal filter, none twice, at most 256 (a position fits a byte). */
  #filterBytes(topics: readonly string[] | undefined, what: string): Uint8Array[] {
    if (!Array.isArray(topics) || topics.length === 0) throw new TypeError(`${what}: at least one topic filter is needed`);
    if (topics.length > 256) throw new RangeError(`${what}: at most 256 topic filters in one packet`);
    const out: Uint8Array[] = [];
    for (const t of topics) {
      if (typeof t !== 'string' || !isValidTopicFilter(t)) {
        throw new TypeError(`${what}: ${JSON.stringify(t)} is not a topic filter (non-empty, "+" alone in its level, "#" alone at the end)`);
      }
      const b = stringBytes(t);
      if (b.length > 65535) throw new RangeError(`${what}: topic filter longer than 65535 bytes`);
      for (const o of out) if (sameBytes(o, b)) throw new TypeError(`${what}: ${JSON.stringify(t)} appears twice`);
      out.push(b);
    }
    return out;
  }

  /** The largest packet we may send now: the server's Maximum Packet Size and the send buffer. */
  #packetLimit(): number {
    return Math.min(this.meta.serverMaximumPacketSize, this.#out.length - this.#outAt);
  }

  #checkSubPacket(p: Packet, what: string): void {
    const n = encodedLength(p, this.version);
    if (n < 0) throw new TypeError(`${what}: the topic filters do not make a valid packet`);
    const max = this.meta.serverMaximumPacketSize;
    if (n > max) {
      throw new RangeError(
        `${what}: the ${what.toUpperCase()} would be ${n} bytes and the server accepts at most ${max} ` +
          '(Maximum Packet Size in its CONNACK) [MQTT-3.1.2-24]; nothing was sent: use fewer or shorter topic filters',
      );
    }
    const room = this.#out.length - this.#outAt;
    if (n > room) throw new RangeError(`${what}: the ${what.toUpperCase()} would be ${n} bytes, more than sendBufferSize (${room}); nothing was sent`);
  }

  // ---- enhanced authentication (MQTT 5.0 4.12) -------------------------------
  /** Answer the server's AUTH 0x18 (an Auth event) with the next Authentication Data. */
  continueAuthentication(data: Uint8Array | undefined, now: number): void {
    this.#callNow = now;
    if ((this.#flags & Flag.AuthAwaitingReply) === 0 || this.state < ConnState.Connecting) {
      throw new Error('continueAuthentication: no AUTH from the server is waiting for an answer');
    }
    this.#flags &= ~Flag.AuthAwaitingReply;
    this.#sendAuth(0x18, data);
    this.#flush();
  }

  /** Start a re-authentication (AUTH 0x19) on the open connection [MQTT-4.12.1-1]. */
  reauthenticate(data: Uint8Array | undefined, now: number): void {
    this.#callNow = now;
    if (this.#auth === null) throw new Error('reauthenticate: the client connected without an Authentication Method (options.authentication)');
    if (this.state !== ConnState.Connected) throw new Error('reauthenticate: not connected');
    if ((this.#flags & Flag.ReAuthenticating) !== 0) throw new Error('reauthenticate: a re-authentication is already under way');
    this.#flags |= Flag.ReAuthenticating;
    this.#sendAuth(0x19, data);
    this.#flush();
  }

  /**
   * The application will not go on with the exchange (it could not answer a
   * challenge, or the server's final data did not check out): close the
   * connection (DISCONNECT 0x80 once connected) and wait about the backoff
   * cap before the next attempt, as for a refused CONNECT.
   */
  abortAuthentication(now: number): void {
    this.#callNow = now;
    if (this.state < ConnState.Connecting) return;
    this.#flags &= ~(Flag.AuthAwaitingReply | Flag.ReAuthenticating);
    if (this.state === ConnState.Connected) {
      this.#reserve(4);
      this.#out[this.#outLen++] = PacketType.Disconnect << 4;
      this.#out[this.#outLen++] = 2;
      this.#out[this.#outLen++] = 0x80;
      this.#out[this.#outLen++] = 0;
    }
    this.#flush();
    this.lastReasonCode = 0x80;
    this.#lost(now, true, LossKind.Permanent, 0x80);
  }

  #sendAuth(reasonCode: number, data: Uint8Array | undefined): void {
    const properties: Properties = { authenticationMethod: this.#auth!.method };
    if (data !== undefined) properties.authenticationData = data;
    this.#writePacket({ type: PacketType.Auth, reasonCode, properties });
  }

  /** An AUTH from the server: a challenge to answer, or the end of a re-authentication. */
  #authPacket(p: AuthPacket, now: number): void {
    const a = this.#auth;
    if (a === null) return this.#protocolError(now, 0x82, 'AUTH, but CONNECT carried no Authentication Method [MQTT-4.12.0-6]');
    if (p.properties?.authenticationMethod !== a.method) {
      return this.#protocolError(now, 0x82, 'AUTH without the Authentication Method of CONNECT [MQTT-4.12.0-5]');
    }
    const reauth = (this.#flags & Flag.ReAuthenticating) !== 0;
    const data = p.properties.authenticationData;
    if (p.reasonCode === 0x18 && (this.state === ConnState.Connecting || reauth)) {
      this.#flags |= Flag.AuthAwaitingReply;
      this.#hooks.event(ClientEvent.Auth, 0x18, reauth ? 1 : 0, data);
      return;
    }
    if (p.reasonCode === 0x00 && reauth && this.state === ConnState.Connected) {
      this.#flags &= ~(Flag.ReAuthenticating | Flag.AuthAwaitingReply);
      this.#hooks.event(ClientEvent.Auth, 0x00, 1, data);
      return;
    }
    return this.#protocolError(now, 0x82, `AUTH with reason 0x${p.reasonCode.toString(16)} outside an exchange that allows it (MQTT 5.0 4.12)`);
  }

  /** Nothing in flight, nothing queued, no subscription change pending. */
  isSleepReady(): boolean {
    const s = this.session;
    if (s.live !== 0) return false;
    for (let k = 0; k < s.subCount; k++) if (s.subState(k) !== SubState.Active) return false;
    return true;
  }

  /** Write the snapshot now if anything changed since the last one. */
  persist(now: number): void {
    this.meta.clockMs = this.#now(now);
    this.#dirty = true;
    this.#persistIfDirty();
  }

  // ---- incoming packets ----------------------------------------------------
  #handle(p: Packet, now: number): void {
    const s = this.session;
    switch (p.type) {
      case PacketType.Connack:
        if (this.state !== ConnState.Connecting) return this.#protocolError(now, 0x82, 'CONNACK on an open connection [MQTT-3.2.0-1]');
        return this.#connack(p, now);
      case PacketType.Publish:
        if (this.state !== ConnState.Connected) return this.#protocolError(now, 0x82, 'PUBLISH before CONNACK');
        return this.#incomingPublish(p);
      case PacketType.Puback: {
        const i = s.findSent(p.packetId, RecordState.SentPublish);
        if (i < 0) return this.#stray();
        if (p.reasonCode >= 0x80) return this.#refused(i, p.reasonCode, now);
        if (s.qos(i) === 2) {
          // A broker without QoS 2 (RabbitMQ 3.10) answers a QoS 2 PUBLISH with
          // PUBACK: it took the message at QoS 1. Waiting for a PUBREC that
          // never comes would fill the window, and resending it at each
          // reconnect would deliver it once per resend: complete it, and say so.
          this.metrics[Metric.PublishDowngraded]++;
          this.#hooks.event(ClientEvent.PublishDowngraded, s.token(i), 1);
        }
        return this.#complete(i, RecordEvent.Puback, p.reasonCode, now);
      }
      case PacketType.Pubrec: {
        let i = s.findSent(p.packetId, RecordState.SentPublish);
        if (i >= 0 && s.qos(i) === 2) {
          if (p.reasonCode >= 0x80) return this.#refused(i, p.reasonCode, now);
          s.transition(i, RecordEvent.Pubrec);
          this.#dirty = true;
        } else {
          i = s.findSent(p.packetId, RecordState.SentPubrel);
          if (i < 0) this.#stray();
        }
        // Unknown ids get a PUBREL too, so the server can finish its side [MQTT-4.3.3].
        this.#ack(PacketType.Pubrel, p.packetId, i < 0 && this.version === ProtocolVersion.V5 ? 0x92 : 0);
        return;
      }
      case PacketType.Pubcomp: {
        const i = s.findSent(p.packetId, RecordState.SentPubrel);
        if (i < 0) return this.#stray();
        return this.#complete(i, RecordEvent.Pubcomp, p.reasonCode, now);
      }
      case PacketType.Pubrel: {
        const released = s.removeIncoming(p.packetId);
        if (released === Release.NoRunFree) {
          // Inside a run of held ids, with no run free to split it into: only a
          // broker releasing out of order gets here. Keep the id (no PUBCOMP):
          // the next connection brings the PUBRELs again, oldest first.
          return this.#protocolError(now, 0x82, `PUBREL ${p.packetId} out of order [MQTT-4.6.0-3] with every incoming id run in use`);
        }
        const known = released === Release.Removed;
        this.#ack(PacketType.Pubcomp, p.packetId, !known && this.version === ProtocolVersion.V5 ? 0x92 : 0);
        if (known) {
          this.#dirty = true;
          if (this.#recsOpen > 0) this.#recsOpen--;
          if (this.#heldCount > 0) this.#drainHeld();
          // Reconnect for what the broker still holds once the PUBRELs it owes
          // on this connection are in: reconnecting at the first free id would
          // bring one message per connection from a broker that sends its
          // backlog whole before its PUBRELs.
          if ((this.#flags & Flag.HeldBack) !== 0 && this.#heldCount === 0 && this.#recsOpen === 0 && s.incomingRoom) {
            this.#flags |= Flag.ReconnectForHeldBack;
          }
        }
        return;
      }
      case PacketType.Suback: {
        // One reason code per filter, in the order the SUBSCRIBE carried them [MQTT-3.9.3-1].
        if (s.findSubByPacketId(p.packetId) < 0) return this.#stray();
        const codes = p.reasonCodes;
        for (let k = 0; k < s.subCount; ) {
          if (s.subPacketId(k) !== p.packetId || s.subState(k) !== SubState.PendingSubscribe) {
            k++;
            continue;
          }
          const code = codes[s.subPosition(k)] ?? 0x80;
          const requested = s.subOptions(k) & 3;
          const topic = this.#subTopic(k);
          s.setSubPacketId(k, 0);
          if (code >= 0x80) s.removeSub(k);
          else s.setSubState(k++, SubState.Active, code);
          this.#dirty = true;
          if (code >= 0x80 || code < requested) this.#hooks.event(ClientEvent.SubscriptionDowngraded, requested, code, topic);
          this.#hooks.event(ClientEvent.Subscribed, p.packetId, code, topic);
        }
        return;
      }
      case PacketType.Unsuback: {
        if (s.findSubByPacketId(p.packetId) < 0) return this.#stray();
        const v5 = this.version === ProtocolVersion.V5;
        for (let k = 0; k < s.subCount; ) {
          if (s.subPacketId(k) !== p.packetId || s.subState(k) !== SubState.PendingUnsubscribe) {
            k++;
            continue;
          }
          // MQTT 5 says per filter what happened: 0x11, no subscription existed; 0x87, not authorized.
          const code = v5 ? (p.reasonCodes[s.subPosition(k)] ?? 0x80) : 0;
          const topic = this.#subTopic(k);
          s.removeSub(k);
          this.#dirty = true;
          this.#hooks.event(ClientEvent.Unsubscribed, p.packetId, code, topic);
        }
        return;
      }
      case PacketType.Pingresp:
        return;
      case PacketType.Auth:
        return this.#authPacket(p, now);
      case PacketType.Disconnect:
        // The server ends the connection [MQTT-3.14]: close our side too, and back off.
        // 0x8E: another connection with our client id took the session over.
        this.lastReasonCode = p.reasonCode;
        return this.#lost(now, true, p.reasonCode === 0x8e ? LossKind.TakenOver : LossKind.ServerClosed, p.reasonCode);
      default:
        return this.#protocolError(now, 0x82, `a client does not accept packet type ${p.type}`);
    }
  }

  #connack(p: ConnackPacket, now: number): void {
    const rc = p.reasonCode;
    const meta = this.meta;
    if (rc !== 0) {
      if (this.version === ProtocolVersion.V5 && rc < 0x80) {
        // A 3.1.1 return code in answer to an MQTT 5 CONNECT (the decoder lets
        // only that through): the broker does not speak MQTT 5. Report its
        // MQTT 5 equivalent (1 is 0x84, unsupported protocol version).
        const code = LEGACY_CONNACK[rc];
        this.lastReasonCode = code;
        this.metrics[Metric.Refused]++;
        this.#hooks.event(ClientEvent.Refused, code, rc, `the broker answered the MQTT 5 CONNECT with an MQTT 3.1.1 CONNACK (return code ${rc})` +
          (rc === 1 ? ': it does not support MQTT 5, try 3.1.1 (protocolVersion 4)' : ''));
        return this.#lost(now, true, LossKind.Permanent, code);
      }
      this.lastReasonCode = rc;
      this.metrics[Metric.Refused]++;
      this.#hooks.event(ClientEvent.Refused, rc, 0);
      // The server processes nothing sent after a refused CONNECT [MQTT-3.1.4-5]:
      // early-sent messages stay inflight and go out again on the next attempt.
      return this.#lost(now, true, permanentRefusal(rc, this.version) ? LossKind.Permanent : LossKind.Failed, rc);
    }
    const pr = p.properties;
    const auth = this.#auth;
    if (auth !== null && pr?.authenticationMethod !== undefined && pr.authenticationMethod !== auth.method) {
      return this.#protocolError(now, 0x82, 'CONNACK with another Authentication Method than CONNECT [MQTT-4.12.0-5]');
    }
    if (auth === null && pr?.authenticationMethod !== undefined) {
      return this.#protocolError(now, 0x82, 'CONNACK with an Authentication Method, but CONNECT carried none [MQTT-4.12.0-6]');
    }
    meta.serverReceiveMaximum = pr?.receiveMaximum ?? 65535;
    meta.serverMaximumQoS = pr?.maximumQoS ?? 2;
    meta.serverRetainAvailable = (pr?.retainAvailable ?? 1) === 1;
    meta.serverMaximumPacketSize = pr?.maximumPacketSize ?? UNLIMITED_PACKET;
    this.#keepaliveMs = this.#requestedKeepaliveMs;
    if (pr?.serverKeepAlive !== undefined) {
      // The server's keepalive replaces ours for this connection [MQTT-3.2.2-21].
      meta.serverKeepAlive = pr.serverKeepAlive;
      this.#keepaliveMs = pr.serverKeepAlive * 1000;
    }
    if (pr?.assignedClientIdentifier) this.assignedClientId = pr.assignedClientIdentifier;
    this.state = ConnState.Connected;
    this.#flags = (this.#flags | Flag.EverConnected) & ~(Flag.ClosedBeforeConnack | Flag.AuthAwaitingReply | Flag.ReAuthenticating);
    if (this.session.replayGuard) this.session.releasedNowEnded();
    this.reconnectPolicy.connected(now);
    const s = this.session;
    const held = s.live > 0 || s.subCount > 0 || s.incomingHeld > 0;
    if (!p.sessionPresent && (this.clean || held || meta.hasSession)) {
      // The broker has no session for us (first contact, a clean start, or it
      // lost it). Incoming QoS 2 ids refer to the old session: forget them.
      s.clearIncoming();
      let republished = 0;
      if ((this.#flags & Flag.SentEarly) === 0) republished = this.#sessionLost();
      this.#restoreSubscriptions();
      if (meta.hasSession && held) this.#hooks.event(ClientEvent.SessionLost, republished, 0);
    }
    meta.hasSession = !this.clean;
    this.#dirty = true;
    if ((this.#flags & Flag.SentEarly) === 0) this.#resendAll(now);
    this.#resendSubscriptions();
    this.#pump(now);
    // The exchange succeeded; the server's last data (SCRAM's server signature, say) is the application's to check.
    if (auth !== null) this.#hooks.event(ClientEvent.Auth, 0x00, 0, pr?.authenticationData);
    this.#hooks.event(ClientEvent.Connected, p.sessionPresent ? 1 : 0, 0);
    this.#flags &= ~Flag.SleepReadyReported;
  }

  /** The broker lost the session: apply the declared policy to what we still hold. */
  #sessionLost(): number {
    const s = this.session;
    const end = s.first + s.span;
    let republished = 0;
    for (let i = s.first; i < end; i++) {
      const st = s.state(i);
      if (st === RecordState.SentPubrel) {
        // Past PUBREC the broker had taken ownership of the message: done.
        const token = s.token(i);
        s.transition(i, RecordEvent.SessionLost);
        this.metrics[Metric.Acked]++;
        this.#hooks.event(ClientEvent.Acked, token, 0x92);
      } else if (st === RecordState.SentPublish) {
        s.transition(i, RecordEvent.SessionLost);
        if (this.#sessionLostPolicy === SessionLostPolicy.Discard) {
          this.#drop(i, DropReason.SessionLostDiscarded, Metric.DroppedSessionLost);
        } else {
          republished++;
        }
      }
    }
    return republished;
  }

  #incomingPublish(p: PublishPacket): void {
    const s = this.session;
    this.metrics[Metric.Received]++;
    if (p.qos === 0) return this.#hooks.message(p);
    if (p.qos === 1) {
      this.#hooks.message(p);
      return this.#ack(PacketType.Puback, p.packetId, 0);
    }
    // Older messages wait: this one queues behind them, unless it is a resend of a held id.
    if ((this.#heldCount > 0 || (this.#flags & Flag.HeldBack) !== 0) && !s.hasIncoming(p.packetId)) return this.#holdBack(p as DecodedPublish);
    const what = this.#acceptQos2(p.packetId, p.dup, s.replayGuard ? messageHash(p as DecodedPublish) : 0);
    if (what === Qos2.Full) return this.#holdBack(p as DecodedPublish);
    if (what === Qos2.Deliver) this.#hooks.message(p);
    this.#ack(PacketType.Pubrec, p.packetId, 0);
  }

  /**
   * No room for this QoS 2 message's id (the broker sends ahead of the
   * PUBRELs it owes; 3.1.1 has no Receive Maximum to stop it, and mosquitto
   * 2.0 exceeds ours). Keep its bytes in the hold region, unacknowledged,
   * until a PUBREL makes room (#drainHeld). When that is full too, hold it
   * back at the broker: no delivery, no PUBREC, so the broker keeps it and
   * sends it again on the next connection, which we open as soon as PUBRELs
   * have made room; later ones are held back too, to keep their order.
   * Nothing here is persisted: unacknowledged, they are the broker's still.
   */
  #holdBack(p: DecodedPublish): void {
    this.metrics[Metric.HeldBack]++;
    const len = p.payloadEnd - p.packetStart;
    if ((this.#flags & Flag.HeldBack) === 0 && this.#heldLen + len <= this.#holdSize) {
      const hold = (this.#hold ??= new Uint8Array(this.#holdSize));
      hold.set(p.bytes.subarray(p.packetStart, p.payloadEnd), this.#heldLen);
      this.#heldLen += len;
      this.#heldCount++;
      return;
    }
    this.#flags |= Flag.HeldBack;
  }

  /** PUBRELs made room: deliver and answer held messages, oldest first, while there is room. */
  #drainHeld(): void {
    const s = this.session;
    const hold = this.#hold!;
    const d = (this.#holdDecoder ??= new PacketDecoder({ version: this.version, buffer: hold, bufferSize: hold.length }));
    d.reset();
    d.feed(hold.subarray(0, this.#heldLen));
    let used = 0;
    while (this.#heldCount > 0 && d.next() === DECODE_PACKET) {
      const p = d.packet as DecodedPublish;
      const what = this.#acceptQos2(p.packetId, p.dup, s.replayGuard ? messageHash(p) : 0);
      if (what === Qos2.Full) break;
      used = p.payloadEnd;
      this.#heldCount--;
      if (what === Qos2.Deliver) this.#hooks.message(p);
      this.#ack(PacketType.Pubrec, p.packetId, 0);
    }
    d.reset();
    hold.copyWithin(0, used, this.#heldLen);
    this.#heldLen -= used;
  }

  /**
   * The QoS 2 decision for a PUBLISH with this id (`hash`: its message hash
   * for the replay guard). On Deliver the id is stored and persisted.
   */
  #acceptQos2(id: number, dup: boolean, hash: number): Qos2 {
    const s = this.session;
    if (s.hasIncoming(id)) {
      // Seen before and not yet released: the sender is resending [MQTT-4.3.3-9].
      this.metrics[Metric.DuplicatesSuppressed]++;
      return Qos2.Duplicate;
    }
    if (s.replayGuard) {
      // A replay: the same message (id and hash) released before, sent again
      // with DUP 1; or with DUP 0 (aedes 1.2.0 does that) when the broker
      // cannot be reusing the id: on a later connection than the release, or
      // before our PUBCOMP for it has left. Otherwise a DUP 0 PUBLISH with a
      // released id is a new message: the id is free once PUBCOMP is processed.
      if (dup ? s.isReleased(id, hash) : s.isReleasedNotReusable(id, hash)) {
        // The broker replays a message it already released (see guardReplayAfterPubrel):
        // acknowledge as if new, deliver nothing; its PUBREL follows.
        this.metrics[Metric.BrokerReplays]++;
        this.metrics[Metric.DuplicatesSuppressed]++;
        s.forgetReleased(id);
        if (s.addIncoming(id, hash)) this.#dirty = true;
        return Qos2.Duplicate;
      }
      s.forgetReleased(id);
    }
    // The table is full of ids still waiting for their PUBREL: the caller holds it back.
    if (!s.addIncomingAny(id, hash)) return Qos2.Full;
    // Persist the id before the application sees the message: after a crash the
    // resent PUBLISH is then recognised, so a QoS 2 message is never delivered twice.
    this.#dirty = true;
    this.#persistIfDirty();
    this.#recsOpen++;
    return Qos2.Deliver;
  }

  /**
   * A PUBLISH larger than the receive buffer begins (the decoder parsed its
   * head): decide once what its pieces are for. QoS 2 is decided here, before
   * the first byte reaches the application, exactly as for a whole message;
   * the ack waits for the last piece.
   */
  #publishHead(p: DecodedPublish): void {
    this.metrics[Metric.Received]++;
    this.#flags &= ~(Flag.PieceSkip | Flag.PieceOpen);
    const id = p.packetId;
    this.#pieceAck = p.qos === 0 ? 0 : ((p.qos === 1 ? PacketType.Puback : PacketType.Pubrec) << 16) | id;
    if (p.qos !== 2) return;
    const s = this.session;
    // The guard cannot hash a payload it has not seen: a large message's hash is its topic and length.
    let what = Qos2.Full;
    if ((this.#heldCount === 0 && (this.#flags & Flag.HeldBack) === 0) || s.hasIncoming(id)) {
      what = this.#acceptQos2(id, p.dup, s.replayGuard ? crc32(p.bytes, p.topicStart, p.topicEnd, p.payloadLength) : 0);
    }
    if (what === Qos2.Deliver) {
      this.#flags |= Flag.PieceOpen;
    } else {
      this.#flags |= Flag.PieceSkip;
      if (what === Qos2.Full) {
        // Too large for the hold region: held back at the broker.
        this.metrics[Metric.HeldBack]++;
        this.#flags |= Flag.HeldBack;
        this.#pieceAck = 0;
      }
    }
  }

  #publishPiece(p: DecodedPublish, now: number): void {
    if ((this.#flags & Flag.PieceSkip) === 0 && this.#hooks.piece!(p, p.pieceOffset, p.payloadLength) === false) {
      // The application cannot take it: close without acknowledging (the host reported why).
      this.lastReasonCode = 0x95;
      if (this.version === ProtocolVersion.V5) {
        this.#reserve(4);
        this.#out[this.#outLen++] = PacketType.Disconnect << 4;
        this.#out[this.#outLen++] = 2;
        this.#out[this.#outLen++] = 0x95;
        this.#out[this.#outLen++] = 0;
        this.#flush();
      }
      return this.#lost(now, true, LossKind.Failed, 0x95);
    }
    if (p.pieceOffset + (p.payloadEnd - p.payloadStart) !== p.payloadLength) return;
    this.#flags &= ~(Flag.PieceSkip | Flag.PieceOpen);
    const ack = this.#pieceAck;
    this.#pieceAck = 0;
    if (ack !== 0) this.#ack(ack >>> 16, ack & 0xffff, 0);
  }

  // ---- outgoing work -------------------------------------------------------
  #window(): number {
    return Math.min(this.session.caps.inflight, this.meta.serverReceiveMaximum);
  }

  /** Send queued records in acceptance order while the window allows. */
  #pump(now: number): void {
    const s = this.session;
    const sec = Math.floor(this.#now(now) / 1000);
    let i = s.first;
    while (s.queued > 0 && (this.#flags & Flag.Backed) === 0) {
      const end = s.first + s.span;
      while (i < end && s.state(i) !== RecordState.Queued) i++;
      if (i >= end) break;
      const exp = s.expiresAt(i);
      if (exp !== 0 && sec >= exp) {
        this.#drop(i, DropReason.Expired, Metric.DroppedExpired);
        i = Math.max(i, s.first);
        continue;
      }
      const qos = s.qos(i);
      if (qos > this.meta.serverMaximumQoS || s.length(i) > this.meta.serverMaximumPacketSize) {
        this.#drop(i, DropReason.RefusedByServer, Metric.DroppedRefused);
        i = Math.max(i, s.first);
        continue;
      }
      if (qos === 0) {
        this.#sendRecord(i, sec);
        s.transition(i, RecordEvent.SentAtMostOnce);
        this.#dirty = true;
        i = Math.max(i, s.first);
        continue;
      }
      if (s.inflight >= this.#window()) break;
      const id = s.allocatePacketId();
      s.transition(i, RecordEvent.Send, id, this.#now(now));
      this.#sendRecord(i, sec);
      s.markSentOnce(i);
      this.#dirty = true;
      i++;
    }
  }

  /** Resend every sent record in order: PUBLISH with DUP, or PUBREL [MQTT-4.4.0-1]. */
  #resendAll(now: number): void {
    const s = this.session;
    const end = s.first + s.span;
    const sec = Math.floor(this.#now(now) / 1000);
    for (let i = s.first; i < end; i++) {
      const st = s.state(i);
      if (st === RecordState.SentPublish) {
        this.#sendRecord(i, sec);
        this.metrics[Metric.Resent]++;
      } else if (st === RecordState.SentPubrel) {
        this.#ack(PacketType.Pubrel, s.packetId(i), 0);
        this.metrics[Metric.Resent]++;
      }
    }
  }

  /** Patch the stored PUBLISH (packet id, DUP, remaining expiry) and copy it out. */
  #sendRecord(i: number, sec: number): void {
    const s = this.session;
    const a = s.arena;
    const off = s.offset(i);
    const len = s.length(i);
    if (s.qos(i) !== 0) {
      const pid = s.packetId(i);
      const po = off + s.packetIdOffset(i);
      a[po] = pid >> 8;
      a[po + 1] = pid & 0xff;
      if (s.wasSent(i)) a[off] |= PUBLISH_DUP_FLAG;
      else a[off] &= ~PUBLISH_DUP_FLAG;
    }
    const eo = s.expiryOffset(i);
    if (eo !== 0) {
      // MQTT 5 carries the time the message has left [MQTT-3.3.2-6].
      const left = Math.max(1, s.expiresAt(i) - sec);
      a[off + eo] = left >>> 24;
      a[off + eo + 1] = (left >>> 16) & 0xff;
      a[off + eo + 2] = (left >>> 8) & 0xff;
      a[off + eo + 3] = left & 0xff;
    }
    this.#reserve(len);
    // The packet store and the send buffer are regions of one view: copyWithin
    // moves the packet natively and makes nothing per send (set(subarray())
    // makes a view each time; a byte loop costs XS about ten compute units a byte).
    a.copyWithin(this.#outLen, off, off + len);
    this.#outLen += len;
    this.metrics[Metric.Sent]++;
  }

  #ack(type: number, packetId: number, reason: number): void {
    this.#reserve(5);
    this.#outLen += encodeAck(this.#out, this.#outLen, this.version, type, packetId, reason);
  }

  #complete(i: number, event: RecordEvent, reason: number, now: number): void {
    const s = this.session;
    const token = s.token(i);
    const took = ((this.#now(now) >>> 0) - s.sentAt(i)) >>> 0;
    s.transition(i, event);
    this.#dirty = true;
    const m = this.metrics;
    m[Metric.Acked]++;
    m[Metric.AckTimeTotalMs] += took;
    if (took > m[Metric.AckTimeMaxMs]) m[Metric.AckTimeMaxMs] = took;
    this.#hooks.event(ClientEvent.Acked, token, reason);
    if (s.queued > 0) this.#pump(now);
  }

  /**
   * The server refused the message (reason >= 0x80 in PUBACK or PUBREC): that
   * flow ends, the application learns which message and why, and the freed
   * window slot goes to the next queued message at once.
   */
  #refused(i: number, reason: number, now: number): void {
    const s = this.session;
    const token = s.token(i);
    s.transition(i, RecordEvent.PubrecError);
    this.#dirty = true;
    this.metrics[Metric.DroppedRefused]++;
    this.#hooks.event(ClientEvent.Dropped, token, DropReason.RefusedByServer, reason);
    if (s.queued > 0) this.#pump(now);
  }

  #drop(i: number, reason: DropReason, metric: Metric): void {
    const token = this.session.token(i);
    this.session.transition(i, RecordEvent.Drop);
    this.#dirty = true;
    this.metrics[metric]++;
    this.#hooks.event(ClientEvent.Dropped, token, reason);
  }

  /**
   * OutboxPolicy.Conflate: drop the queued messages on `topic`, which the one
   * being accepted supersedes. Topics are compared in the packet store, so
   * nothing is kept per topic. Returns false, dropping nothing, when the new
   * message would not fit even then (the caller refuses it: the older reading
   * is not given up for a message that is not taken).
   */
  #conflate(topic: string, length: number, willQueue: boolean): boolean {
    const s = this.session;
    const end = s.first + s.span;
    let n = 0;
    let bytes = 0;
    for (let i = s.first; i < end; i++) {
      if (s.state(i) === RecordState.Queued && storedTopicIs(s.arena, s.offset(i), topic)) {
        n++;
        bytes += s.length(i);
      }
    }
    if (n === 0) return true;
    const fits = s.live - n < s.recordSlots && s.liveBytes - bytes + length <= s.caps.storeBytes && !(willQueue && s.queued - n >= s.caps.outbox);
    if (!fits) return false;
    // Slots keep their index when one is freed (only first/span move), so `end` still bounds the scan.
    for (let i = s.first; i < end && n > 0; i++) {
      if (s.state(i) === RecordState.Queued && storedTopicIs(s.arena, s.offset(i), topic)) {
        this.#drop(i, DropReason.Superseded, Metric.DroppedSuperseded);
        n--;
      }
    }
    return true;
  }

  #expire(now: number): void {
    const s = this.session;
    const sec = Math.floor(this.#now(now) / 1000);
    for (let i = s.first; i < s.first + s.span; i++) {
      if (s.state(i) !== RecordState.Queued) continue;
      const e = s.expiresAt(i);
      if (e !== 0 && sec >= e) this.#drop(i, DropReason.Expired, Metric.DroppedExpired);
    }
    this.#persistIfDirty();
  }

  #stray(): void {
    this.metrics[Metric.StrayAcks]++;
  }

  // ---- subscriptions -------------------------------------------------------
  /** The broker has none of our subscriptions: every kept one is to be sent again. */
  #restoreSubscriptions(): void {
    const s = this.session;
    for (let k = s.subCount - 1; k >= 0; k--) {
      const st = s.subState(k);
      if (st === SubState.PendingUnsubscribe && s.subPacketId(k) === 0) {
        // Nothing to unsubscribe from: the broker holds no session for us.
        const topic = this.#subTopic(k);
        s.removeSub(k);
        this.#hooks.event(ClientEvent.Unsubscribed, 0, this.version === ProtocolVersion.V5 ? 0x11 : 0, topic);
      } else if (st === SubState.Active) s.setSubState(k, SubState.PendingSubscribe);
    }
  }

  /** Send the subscription changes not yet sent on this connection. */
  #resendSubscriptions(): void {
    this.#sendPending(SubState.PendingSubscribe);
    this.#sendPending(SubState.PendingUnsubscribe);
  }

  /**
   * Send every subscription entry in `state` not yet sent on this connection,
   * in as few SUBSCRIBEs (or UNSUBSCRIBEs) as the server's Maximum Packet Size
   * and the send buffer allow. An entry too large on its own is not sent: it
   * is dropped and reported with 0x95. Returns the first packet's id, or 0.
   */
  #sendPending(state: SubState): number {
    const s = this.session;
    const sub = state === SubState.PendingSubscribe;
    const limit = this.#packetLimit();
    const fixed = 2 + (this.version === ProtocolVersion.V5 ? 1 : 0); // packet id, empty properties
    let first = 0;
    let from = 0;
    while (from < s.subCount) {
      // One packet: the pending entries from `from` on that fit.
      let body = fixed;
      let count = 0;
      let k = from;
      for (; k < s.subCount; k++) {
        if (s.subState(k) !== state || s.subPacketId(k) !== 0) continue;
        const e = 2 + s.subTopicBytes(k).length + (sub ? 1 : 0);
        const b = body + e;
        if (1 + varintSize(b) + b > limit || count === 256) {
          if (count > 0) break;
          // Too large even alone: tell the application instead of sending it.
          const topic = this.#subTopic(k);
          const requested = s.subOptions(k) & 3;
          s.removeSub(k);
          k--;
          this.#dirty = true;
          if (sub) {
            this.#hooks.event(ClientEvent.SubscriptionDowngraded, requested, 0x95, topic);
            this.#hooks.event(ClientEvent.Subscribed, 0, 0x95, topic);
          } else {
            this.#hooks.event(ClientEvent.Unsubscribed, 0, 0x95, topic);
          }
          continue;
        }
        body = b;
        count++;
      }
      if (count === 0) break;
      const id = s.allocatePacketId();
      if (first === 0) first = id;
      const subscriptions: Subscription[] = [];
      const topics: string[] = [];
      let n = 0;
      for (let j = from; j < k && n < count; j++) {
        if (s.subState(j) !== state || s.subPacketId(j) !== 0) continue;
        s.setSubPacket(j, id, n++);
        const topic = this.#subTopic(j);
        if (sub) {
          const o = s.subOptions(j);
          subscriptions.push({
            topic,
            qos: (o & 3) as QoS,
            noLocal: (o & 4) !== 0,
            retainAsPublished: (o & 8) !== 0,
            retainHandling: ((o >> 4) & 3) as 0 | 1 | 2,
          });
        } else {
          topics.push(topic);
        }
      }
      this.#writePacket(sub ? { type: PacketType.Subscribe, packetId: id, subscriptions } : { type: PacketType.Unsubscribe, packetId: id, topics });
      from = k;
    }
    return first;
  }

  #subTopic(k: number): string {
    const b = this.session.subTopicBytes(k);
    return utf8Read(b, 0, b.length);
  }

  #writePacket(p: Packet): void {
    let n = encode(p, this.version, this.#out, this.#outLen);
    if (n === -1) {
      this.#flush();
      n = encode(p, this.version, this.#out, this.#outLen);
    }
    if (n < 0) throw new RangeError('packet does not fit sendBufferSize');
    this.#outLen += n;
  }

  // ---- output and persistence ---------------------------------------------
  /** Make room for n bytes of output, flushing what is there if needed. */
  #reserve(n: number): void {
    if (this.#outLen + n > this.#out.length) this.#flush();
  }

  /**
   * Persist first, then hand the batched bytes to the host: an ack never leaves
   * before the state it commits. `reuseView` (the publish and receive paths,
   * which repeat) keeps the view for the next batch of the same length; the
   * one-off packets (CONNECT, SUBSCRIBE, PINGREQ) leave none behind on an idle client.
   */
  #flush(reuseView = false): void {
    this.#persistIfDirty();
    const at = this.#outAt;
    if (this.#outLen === at) return;
    const n = this.#outLen - at;
    this.#outLen = at;
    if (this.state >= ConnState.Connecting) {
      this.#lastSentAt = this.#callNow;
      if (!reuseView) {
        if (this.#hooks.send(this.#out.subarray(at, at + n)) === false) this.#flags |= Flag.Backed;
        return;
      }
      let view = this.#sendView;
      if (view === null || view.length !== n) {
        const older = this.#sendViewOlder;
        if (older !== null && older.length === n) {
          view = older;
        } else if (n === this.#missA || n === this.#missB) {
          view = this.#out.subarray(at, at + n);
        } else {
          // A length not seen lately (a SUBSCRIBE sent on CONNACK, a one-off
          // batch of acks): its view is not kept, so an idle client holds none.
          this.#missB = this.#missA;
          this.#missA = n;
          if (this.#hooks.send(this.#out.subarray(at, at + n)) === false) this.#flags |= Flag.Backed;
          return;
        }
        this.#sendViewOlder = this.#sendView;
        this.#sendView = view;
      }
      if (this.#hooks.send(view) === false) this.#flags |= Flag.Backed;
    }
  }

  #persistIfDirty(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    if (this.#snapshot !== null && this.#snapshot.persist(this.meta) > 0) this.metrics[Metric.SnapshotWrites]++;
  }

  #checkSleepReady(): void {
    if ((this.#flags & Flag.SleepReadyReported) !== 0 || this.state !== ConnState.Connected || !this.isSleepReady()) return;
    this.#flags |= Flag.SleepReadyReported;
    this.#persistIfDirty();
    this.#hooks.event(ClientEvent.SleepReady, 0, 0);
  }

  // ---- failures ------------------------------------------------------------
  #protocolError(now: number, reason: number, message: string): void {
    this.metrics[Metric.ProtocolErrors]++;
    this.lastReasonCode = reason;
    if (this.version === ProtocolVersion.V5 && this.state >= ConnState.Connecting) {
      this.#reserve(4);
      this.#out[this.#outLen++] = PacketType.Disconnect << 4;
      this.#out[this.#outLen++] = 2;
      this.#out[this.#outLen++] = reason;
      this.#out[this.#outLen++] = 0;
      this.#flush();
    }
    this.#hooks.event(ClientEvent.ProtocolError, reason, 0, message);
    this.#lost(now, true, LossKind.Failed, reason);
  }

  /** Forget partial input at the end of a connection. */
  #resetInput(): void {
    this.#decoder.reset();
    if ((this.#flags & Flag.PieceOpen) !== 0) {
      // A large QoS 2 message cut short: we never sent its PUBREC, so the broker
      // sends it again whole; forget its id so that copy is delivered (from offset 0).
      const id = this.#pieceAck & 0xffff;
      if (this.session.removeIncoming(id) === Release.Removed) this.#dirty = true;
      this.session.forgetReleased(id);
    }
    this.#flags &= ~(Flag.PieceSkip | Flag.PieceOpen);
    this.#pieceAck = 0;
    // Held messages were never acknowledged: the broker sends them again.
    this.#heldLen = 0;
    this.#heldCount = 0;
  }

  /** The connection is gone (or must go): close it if asked, and schedule the next attempt. */
  #lost(now: number, close: boolean, kind: LossKind, reason = 0): void {
    this.#outLen = this.#outAt;
    this.#flags &= ~(Flag.AuthAwaitingReply | Flag.ReAuthenticating | Flag.Backed);
    this.#resetInput();
    this.#pingDeadline = -1;
    const s = this.session;
    for (let k = 0; k < s.subCount; k++) s.setSubPacketId(k, 0);
    this.meta.clockMs = this.#now(now);
    this.#dirty = true;
    this.#persistIfDirty();
    let delay = 0;
    let takenOver = kind === LossKind.TakenOver;
    if ((this.#flags & Flag.AutoReconnect) !== 0) {
      this.state = ConnState.Waiting;
      delay = this.reconnectPolicy.nextDelay(now, this.#random, kind);
      takenOver = this.reconnectPolicy.takenOver;
      this.#attemptAt = now + delay;
    } else {
      this.state = ConnState.Idle;
    }
    if (close) this.#hooks.close();
    this.#hooks.event(ClientEvent.Disconnected, reason, 0);
    if (takenOver) {
      this.metrics[Metric.Takeovers]++;
      this.#hooks.event(ClientEvent.TakenOver, reason, delay);
    }
  }
}

/** 3.1.1 CONNACK return codes 1..5 as MQTT 5 reason codes (MQTT 5.0 3.2.2.2). */
const LEGACY_CONNACK: readonly number[] = Object.freeze([0, 0x84, 0x85, 0x88, 0x86, 0x87]);

/** Refusals that retrying soon will not fix: bad credentials, not authorized, banned, bad id. */
function permanentRefusal(rc: number, version: ProtocolVersion): boolean {
  if (version === ProtocolVersion.V311) return rc === 1 || rc === 2 || rc === 4 || rc === 5;
  return rc === 0x84 || rc === 0x85 || rc === 0x86 || rc === 0x87 || rc === 0x8a || rc === 0x8c;
}

/**
 * Is the topic of the PUBLISH stored at `off` equal to `topic`? Compares the
 * string's UTF-8 encoding with the stored bytes in place: nothing is made.
 */
function storedTopicIs(a: Uint8Array, off: number, topic: string): boolean {
  let p = off + 1;
  while ((a[p++] & 0x80) !== 0); // remaining length, 1 to 4 bytes
  const end = p + 2 + ((a[p] << 8) | a[p + 1]);
  p += 2;
  for (let k = 0; k < topic.length; k++) {
    let c = topic.charCodeAt(k);
    if (c >= 0xd800 && c <= 0xdbff && k + 1 < topic.length) {
      const d = topic.charCodeAt(k + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        k++;
      }
    }
    if (c < 0x80) {
      if (p >= end || a[p++] !== c) return false;
    } else if (c < 0x800) {
      if (p + 2 > end || a[p++] !== (0xc0 | (c >> 6)) || a[p++] !== (0x80 | (c & 0x3f))) return false;
    } else if (c < 0x10000) {
      if (p + 3 > end || a[p++] !== (0xe0 | (c >> 12)) || a[p++] !== (0x80 | ((c >> 6) & 0x3f)) || a[p++] !== (0x80 | (c & 0x3f))) return false;
    } else if (
      p + 4 > end || a[p++] !== (0xf0 | (c >> 18)) || a[p++] !== (0x80 | ((c >> 12) & 0x3f)) ||
      a[p++] !== (0x80 | ((c >> 6) & 0x3f)) || a[p++] !== (0x80 | (c & 0x3f))
    ) {
      return false;
    }
  }
  return p === end;
}

/** CRC-32 of a decoded PUBLISH's topic and payload bytes, read in place. */
function messageHash(p: DecodedPublish): number {
  return crc32(p.bytes, p.payloadStart, p.payloadEnd, crc32(p.bytes, p.topicStart, p.topicEnd));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

function stringBytes(s: string): Uint8Array {
  const b = new Uint8Array(utf8Length(s));
  utf8Write(s, b, 0);
  return b;
}
