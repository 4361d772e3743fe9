// What the sans-I/O client core needs from a host, and what it tells the host.
// A host (hosts/node, hosts/moddable, sim/) moves bytes, keeps time, gives
// randomness and stores snapshots; every protocol decision stays in the core.

import type { PublishPacket, QoS, Properties } from '../mqtt/types.js';

/**
 * Two snapshot slots used in turn. `write` may be torn by power loss at any
 * byte; the core checks a CRC-32 on read and falls back to the other slot.
 * Both methods are synchronous: RTC memory and NVS are, and a host file store
 * uses writeSync + fsync.
 */
export interface SnapshotStore {
  read(slot: 0 | 1): Uint8Array | null;
  write(slot: 0 | 1, image: Uint8Array): void;
  /**
   * Optional: keep damaged images (RestoreStatus.Damaged) out of the way of
   * the fresh session's writes, and say where they went (a file store
   * renames its files).
   */
  setAside?(): string[];
}

/** A random number in [0, 1). Injected so the core stays deterministic under test. */
export type RandomSource = () => number;

/** Numeric event kinds the core reports through `ClientHooks.event`. */
export const enum ClientEvent {
  /** Transport should be opened now (after the backoff delay). */
  Connecting = 1,
  /** CONNACK accepted. a = 1 if session present. */
  Connected = 2,
  /** Connection lost or closed. a = reason code (MQTT 5 style) or 0. */
  Disconnected = 3,
  /** CONNACK refused. a = return/reason code. */
  Refused = 4,
  /** An outgoing QoS 1/2 message completed. a = message token. b = reason code. */
  Acked = 5,
  /** A message was dropped. a = token, b = DropReason. */
  Dropped = 6,
  /**
   * One per topic filter of a SUBACK (or of a subscribe the session already
   * held: a = 0). a = packet id, b = granted QoS or failure code, detail = the
   * filter. A downgrade or failure is also reported as SubscriptionDowngraded
   * (a = requested QoS, b = code, detail = the filter); 0x95 there means the
   * SUBSCRIBE was not sent, being larger than the server's Maximum Packet Size.
   */
  Subscribed = 7,
  SubscriptionDowngraded = 8,
  /** One per topic filter of an UNSUBACK. a = packet id, b = its reason code (MQTT 5; 0 in 3.1.1), detail = the filter. */
  Unsubscribed = 9,
  /** The broker had lost the session the client still held; the declared policy ran. a = messages republished. */
  SessionLost = 10,
  /** Nothing in flight, nothing queued, snapshot written: the device may sleep now. */
  SleepReady = 11,
  /** A remote protocol violation; the core closed the connection. a = reason code. */
  ProtocolError = 12,
  /** PINGRESP missing: the link is considered half-open and was closed. */
  KeepaliveTimeout = 13,
  /**
   * The broker answered a QoS 2 PUBLISH with PUBACK (RabbitMQ 3.10 has no
   * QoS 2): it took the message at QoS 1, and the message is complete (an
   * Acked event follows). a = token, b = the QoS it was delivered at (1).
   */
  PublishDowngraded = 14,
  /**
   * The broker closed the connection after an MQTT 5 CONNECT without any
   * CONNACK (RabbitMQ 3.10 does: it speaks only 3.1.1). Reported once until
   * a connection succeeds. a = protocol version.
   */
  ClosedBeforeConnack = 15,
  /**
   * Enhanced authentication (MQTT 5.0 4.12). a = 0x18: the server continues
   * the exchange; answer with continueAuthentication (or abortAuthentication).
   * a = 0x00: it succeeded (in CONNACK, or in AUTH after a re-authentication).
   * b = 1 during a re-authentication. detail = the server's Authentication
   * Data (a copy) or undefined. Answer from outside this call, never inside it.
   */
  Auth = 16,
  /**
   * Incoming QoS 2 messages were held back without an ack (a = how many):
   * the id table and the hold region were full. The core has closed the
   * connection so the broker sends them again; b = 1 when it reconnects at
   * once, 0 when automatic reconnect is off and they stay at the broker.
   */
  HeldBack = 17,
  /**
   * Another client with this client id took the session over (MQTT 5
   * DISCONNECT 0x8E, or the broker closing the connection right after CONNACK
   * several times in a row): two devices share an id. The reconnect loop
   * backs off hard. a = reason code (0x8E, or 0 for repeated kicks), b = ms
   * until the next attempt (0 when not reconnecting).
   */
  TakenOver = 18,
}

export const enum DropReason {
  OutboxFullOldest = 1,
  OutboxFullNewest = 2,
  Expired = 3,
  RefusedByServer = 4, // PUBACK/PUBREC with a failure reason code
  SessionLostDiscarded = 5,
  /** A newer message on the same topic replaced it in the outbox (OutboxPolicy.Conflate). */
  Superseded = 6,
  /** The outbox was full under the reject policy and publish refused the new message (reported by hosts, token 0). */
  OutboxFullRefused = 7,
}

export const enum OutboxPolicy {
  Reject = 0,
  DropOldest = 1,
  DropNewest = 2,
  /**
   * Per topic, only the newest unsent message is kept: accepting a message
   * drops the queued (never the inflight) ones on the same topic, each
   * reported as DropReason.Superseded. For readings whose old values have no
   * worth once a newer one exists. When the outbox is full of other topics the
   * new message is refused, as with Reject.
   */
  Conflate = 3,
}

export interface ClientHooks {
  /**
   * Write these bytes to the transport. The view is valid only during the call.
   * Return false when the transport is backed up (its buffer is past its limit;
   * the bytes are still taken): the core then sends nothing new, QoS 0 messages
   * included, and keeps them in the bounded outbox until `writable(now)`.
   * Only false itself means that: a host without back-pressure returns
   * nothing (any other value is ignored, so `(b) => list.push(b)` will do).
   */
  send(bytes: Uint8Array): unknown;
  /** Open the transport; answer with core.transportOpened(now) or core.transportClosed(now). */
  open(): void;
  /** Close the transport (the core already considers it closed). */
  close(): void;
  /** An application message arrived. Valid only during the call. */
  message(p: PublishPacket): void;
  /**
   * A piece of a message larger than the receive buffer (optional: without
   * it such a message is refused, and MQTT 5 CONNECT asks for none). `p`
   * carries topic, QoS, flags and properties; `p.payload` is this piece, which
   * lies at `offset` of a payload of `total` bytes. Pieces come in order; the
   * last ends at `total`, and only then is the message acknowledged. A piece
   * at offset 0 begins a message: one cut short by a lost connection starts
   * over when the broker sends it again. Valid only during the call.
   * Returning false refuses the message: the core closes the connection
   * (MQTT 5: DISCONNECT 0x95) without acknowledging it; the host says why.
   */
  piece?(p: PublishPacket, offset: number, total: number): boolean | void;
  /** Something happened; see ClientEvent. `detail` is only set off the hot path. */
  event(kind: ClientEvent, a: number, b: number, detail?: unknown): void;
}

/** One topic filter of a SUBSCRIBE. */
export interface SubscribeRequest {
  topic: string;
  qos: QoS;
  /** MQTT 5 subscription options. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

/** MQTT 5 enhanced authentication (4.12). */
export interface AuthenticationOptions {
  /** Authentication Method (0x15): in CONNECT and in every AUTH the client sends. */
  method: string;
  /**
   * Authentication Data (0x16) of CONNECT. A function is called at each
   * connection attempt, so each CONNECT can carry a fresh nonce.
   */
  initialData?: Uint8Array | (() => Uint8Array | undefined);
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** Seconds; dropped from the outbox once expired; MQTT 5 sends the remaining time. */
  messageExpiryInterval?: number;
  properties?: Properties;
}
