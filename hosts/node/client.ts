// The Node host: an MQTT.js-shaped API over the sans-I/O core. It moves bytes
// between a transport and the core, keeps one timer at the core's next
// deadline, and turns the core's numeric events into EventEmitter events.
// Every protocol decision stays in modules/.

import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { DormouseClient, publishErrorMessage, PublishError, type ClientOptions, SessionLostPolicy, Metric } from '../../modules/session/client.js';
import { ClientEvent, DropReason, OutboxPolicy, type AuthenticationOptions, type ClientHooks, type SnapshotStore, type SubscribeRequest, type PublishOptions as CorePublishOptions } from '../../modules/session/ports.js';
import { RestoreStatus } from '../../modules/session/snapshot.js';
import type { Capacities } from '../../modules/session/session-state.js';
import type { ReconnectOptions } from '../../modules/session/reconnect.js';
import type { Properties, PublishPacket, QoS } from '../../modules/mqtt/types.js';
import { DecodedPublish } from '../../modules/mqtt/decode.js';
import { holdWrites, nextReadMayWait, openTransport, pickTransportOptions, ReadWait, releaseWrites, type Transport, type TransportHandlers, type TransportOptions } from './transport.js';
import { FileSnapshotStore, SessionFileError } from './file-store.js';
import { cancelDeadline, scheduleDeadline, type Deadline } from './deadlines.js';
import { TokenTable } from './token-table.js';
import { topicOf } from './topic-cache.js';
import { copyRange, MessageView } from './message-view.js';

export { MessageView } from './message-view.js';

export interface ConnectOptions extends TransportOptions {
  /** As MQTT.js. A persistent session (clean: false) needs a fixed one. */
  clientId?: string;
  /** As MQTT.js: clean session (3.1.1) / clean start (5.0). Default true, or false with a session store. */
  clean?: boolean;
  /** Seconds, as MQTT.js. Default 60. */
  keepalive?: number;
  /** 4 (MQTT 3.1.1, default) or 5, as MQTT.js. */
  protocolVersion?: 4 | 5;
  username?: string;
  password?: string | Uint8Array;
  will?: { topic: string; payload: string | Uint8Array; qos?: QoS; retain?: boolean; properties?: Properties };
  /** MQTT 5 CONNECT properties, as MQTT.js (sessionExpiryInterval, userProperties, ...). */
  properties?: Properties & { sessionExpiryInterval?: number };
  /** As MQTT.js: ms between reconnects; 0 turns reconnecting off. Here it is the base of the jittered backoff. Default 1000. */
  reconnectPeriod?: number;
  /** As MQTT.js: ms to wait for CONNACK. Default 30000. */
  connectTimeout?: number;
  /** Dormouse: keep the session in this file (two slot files PATH.0 and PATH.1). Implies clean: false. */
  sessionFile?: string;
  /** Dormouse: any SnapshotStore instead of a file. */
  store?: SnapshotStore;
  capacities?: Partial<Capacities>;
  /** 'conflate': per topic only the newest unsent message is kept; each one it replaces is a 'drop' (reason Superseded). */
  outboxPolicy?: 'reject' | 'drop-oldest' | 'drop-newest' | 'conflate';
  sessionLostPolicy?: 'republish' | 'discard';
  earlyPublish?: boolean;
  /** See the core's ClientOptions.guardReplayAfterPubrel (a mosquitto 2.0 workaround). */
  guardReplayAfterPubrel?: boolean;
  reconnect?: ReconnectOptions;
  receiveBufferSize?: number;
  sendBufferSize?: number;
  /**
   * Dormouse: MQTT 5 enhanced authentication (MQTT.js: properties.authenticationMethod
   * and authenticationData, which work too). `data` may be a function, called at each
   * connection attempt, so each CONNECT can carry a fresh nonce.
   */
  authentication?: { method: string; data?: Uint8Array | string | (() => Uint8Array | string | undefined) };
  /**
   * The application's side of enhanced authentication (MQTT.js: handleAuth). Called
   * with each AUTH 0x18 the server sends (return the next Authentication Data, or a
   * promise of it) and with the final success, reasonCode 0 (its data is, say, SCRAM's
   * server signature: throw or reject to refuse it). A throw or rejection aborts: the
   * connection closes and the next attempt waits about the backoff cap. 'connect' is
   * emitted at CONNACK, while the handler may still be checking that final data.
   */
  authenticate?: (step: AuthStep) => Uint8Array | string | undefined | void | Promise<Uint8Array | string | undefined | void>;
  /**
   * Dormouse: a message larger than receiveBufferSize.
   * - 'assemble' (default): its pieces are joined into one Buffer and emitted as
   *   'message', as MQTT.js does; MQTT 5 CONNECT asks for no Maximum Packet Size
   *   unless `properties.maximumPacketSize` gives one, which then bounds it.
   * - 'pieces': 'messagePiece' (topic, piece, offset, total, packet) events, in
   *   order, the ack after the last; a piece at offset 0 begins a message (one
   *   cut short by a lost connection starts over). With no 'messagePiece'
   *   listener when one arrives, the client refuses it: an 'error' saying so,
   *   and the connection closed (MQTT 5: DISCONNECT 0x95) without an ack.
   * - 'refuse': as a device without pieces: MQTT 5 CONNECT asks for Maximum
   *   Packet Size receiveBufferSize, and a larger packet closes the connection (0x95).
   */
  largeMessages?: 'assemble' | 'pieces' | 'refuse';
  /**
   * Dormouse, with largeMessages 'assemble': the largest message joined into
   * one Buffer, bytes. A larger one is refused as 'pieces' refuses one nobody
   * listens for: an 'error' (EMSGSIZE) and the connection closed without an
   * ack, before any of it is kept. Default 16 MiB (MQTT allows 256 MiB; every
   * input is bounded). MQTT 5 brokers can be told the limit in
   * `properties.maximumPacketSize`, so that they drop such messages instead.
   */
  maxMessageBytes?: number;
  /** See the core's ClientOptions.incomingHoldBytes. */
  incomingHoldBytes?: number;
  /** Random source for the backoff jitter; Math.random by default. */
  random?: () => number;
  /** Clock (ms); Date.now by default, so message expiry counts across restarts. */
  now?: () => number;
  /**
   * Dormouse: sees every chunk written to ('send', called just before the write, so a host may make
   * its session durable first) and read from ('receive') the transport. The CLI's -d decodes them.
   */
  trace?: (direction: 'send' | 'receive', bytes: Uint8Array) => void;
  /**
   * Dormouse: emit 'tlsSession' (Node's DER session; null when one offered in
   * `tlsSession` is dropped after a failed connect) so it can be kept and offered
   * next time in `tlsSession`. Implied by tlsSession and tlsSessionIdOnly.
   */
  wantTlsSession?: boolean;
}

/** One step of an enhanced authentication exchange, as the `authenticate` handler sees it. */
export interface AuthStep {
  /** 0x18: the server continues the exchange; 0x00: it succeeded. */
  reasonCode: number;
  method: string;
  /** The server's Authentication Data, if any. */
  data: Buffer | undefined;
  /** true during a re-authentication (client.reauthenticate), false while connecting. */
  reauthentication: boolean;
}

/** What `subscribe` resolves to, per filter: the granted QoS, or the failure code (>= 0x80), as MQTT.js's granted list. */
export interface Granted {
  topic: string;
  qos: number;
}

/** What `unsubscribe` resolves to, per filter: the UNSUBACK reason code (MQTT 5; 0 in 3.1.1; 0x11: no subscription existed). */
export interface Unsubscribed {
  topic: string;
  reasonCode: number;
}

/** Per-filter subscription options, as MQTT.js: qos, nl (no local), rap (retain as published), rh (retain handling). */
export interface SubscribeOptions {
  qos?: QoS;
  nl?: boolean;
  rap?: boolean;
  rh?: 0 | 1 | 2;
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** MQTT 5 properties, as MQTT.js; messageExpiryInterval also bounds the wait in the outbox (any version). */
  properties?: Properties;
}

/** What `publish` resolves to: the message is in the session (and persisted, with a store). */
export interface Accepted {
  /** The message's token in the session; 0 for a QoS 0 message written at once. */
  token: number;
  /** Resolves when the broker acknowledged it (at once for QoS 0); rejects if it is dropped. */
  acknowledged: Promise<void>;
}

export class DropError extends Error {
  constructor(readonly token: number, readonly reason: DropReason, readonly reasonCode?: number) {
    super(`message ${token} dropped: ${dropReasonText(reason)}${reasonCode ? ` (reason code 0x${reasonCode.toString(16)})` : ''}`);
  }
}

export function dropReasonText(reason: DropReason): string {
  switch (reason) {
    case DropReason.OutboxFullOldest: return 'outbox full, oldest dropped';
    case DropReason.OutboxFullNewest: return 'outbox full, newest dropped';
    case DropReason.OutboxFullRefused: return 'outbox full, refused';
    case DropReason.Expired: return 'message expired before it could be sent';
    case DropReason.RefusedByServer: return 'refused by the server';
    case DropReason.SessionLostDiscarded: return 'the broker lost the session (discard policy)';
    case DropReason.Superseded: return 'superseded by a newer message on the same topic (conflate policy)';
    default: return `reason ${reason}`;
  }
}

/** A publish waiting for room in the outbox (see NodeClient's #park). */
interface Parked {
  topic: string;
  payload: Uint8Array;
  opts: CorePublishOptions;
  callback: ((err?: Error) => void) | undefined;
  resolve: (a: Accepted) => void;
  reject: (e: Error) => void;
}

interface Waiter {
  resolve: (v: number) => void;
  reject: (e: Error) => void;
}

const noop = (): void => {};
/** Publishes that may wait for room while the socket is backed up (see NodeClient's #park); more are refused. */
const PARK_LIMIT = 64;

/**
 * What a refused publish returns: a promise that rejects with the refusal for
 * whoever waits on it (await, then, catch, finally, Promise.all) and is never
 * an unhandled rejection when nobody does. Promise.reject(err).catch(noop)
 * would do the same, but its reaction job waits in the microtask queue, so a
 * loop that never yields would hold every refusal until it ends; this holds
 * nothing once the caller lets it go.
 */
class Refusal extends Promise<Accepted> {
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }

  readonly #err: Error;

  constructor(err: Error) {
    super(noop);
    this.#err = err;
  }

  override then<A = Accepted, B = never>(
    onFulfilled?: ((v: Accepted) => A | PromiseLike<A>) | null,
    onRejected?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return Promise.reject(this.#err).then(onFulfilled, onRejected);
  }
}
const RESOLVED: Promise<void> = Promise.resolve();
const ACCEPTED_WRITTEN: Promise<Accepted> = Promise.resolve(Object.freeze({ token: 0, acknowledged: RESOLVED }));

/**
 * An accepted QoS 1/2 message whose outcome someone may wait for. The
 * `acknowledged` promise is made only when it is first read, so a caller that
 * passes a callback (or does not wait) costs no promise per message.
 */
class PendingAck implements Accepted {
  readonly token: number;
  callback: ((err?: Error) => void) | undefined;
  /** undefined while pending, null once acknowledged, the error once dropped. */
  outcome: Error | null | undefined = undefined;
  #promise: Promise<void> | null = null;
  #resolve: (() => void) | null = null;
  #reject: ((e: Error) => void) | null = null;

  constructor(token: number, callback: ((err?: Error) => void) | undefined) {
    this.token = token;
    this.callback = callback;
  }

  get acknowledged(): Promise<void> {
    if (this.#promise) return this.#promise;
    if (this.outcome === null) this.#promise = RESOLVED;
    else if (this.outcome) this.#promise = Promise.reject(this.outcome);
    else this.#promise = new Promise<void>((resolve, reject) => { this.#resolve = resolve; this.#reject = reject; });
    // A caller that never waits must not see an unhandled rejection.
    this.#promise.catch(noop);
    return this.#promise;
  }

  settle(err: Error | null): void {
    this.outcome = err;
    if (err) {
      this.#reject?.(err);
      this.callback?.(err);
    } else {
      this.#resolve?.();
      this.callback?.();
    }
  }
}

/**
 * A connected (or connecting) client. Events, as MQTT.js where it has them:
 * 'connect' (connack: {sessionPresent}), 'message' (topic, payload, packet),
 * 'reconnect', 'offline', 'close', 'end', 'error', and Dormouse's own
 * 'drop' ({token, reason, text}), 'sessionLost', 'sleepReady', 'downgrade',
 * 'messagePiece' (topic, piece, offset, total, packet; see largeMessages),
 * 'messageView' (view: a MessageView over the receive buffer, valid only
 * during the call: no copy and nothing allocated per message),
 * 'restored' ({inflight, queued}), 'sessionDamaged' ({keptAs}: where the
 * unreadable session's files were moved; a fresh session starts), 'tlsSession' (see
 * ConnectOptions.wantTlsSession), and 'takeover'
 * ({reasonCode, retryInMs}: another client with this id took the session over;
 * also reported as an 'error' with code 'SESSION_TAKEN_OVER').
 */
export class NodeClient extends EventEmitter {
  readonly core: DormouseClient;
  connected = false;
  #url: string;
  #transportOptions: TransportOptions;
  #trace: ConnectOptions['trace'];
  #transport: Transport | null = null;
  /** The core's hooks, transport handlers and this client's entry in the process's deadline queue. */
  #link: ClientHooks & TransportHandlers & Deadline;
  /** The deadline queued (core clock), Infinity when none. */
  #timerAt = Infinity;
  #now: () => number;
  // The collections below are made when first needed: an idle client holds none.
  /** QoS 1/2 messages someone may wait for, by token. Kept once made: publishing is the hot path. */
  #acks: TokenTable<PendingAck> | null = null;
  /** Outcomes reported by the core during the current call, settled together in one microtask (callbacks never run inside the core). */
  #settling: Array<PendingAck | (() => void)> | null = null;
  /** #settleAll bound to this client, made on the first settle and reused (queueMicrotask takes no argument). */
  #settleTask: (() => void) | null = null;
  /** Subscribe and unsubscribe calls waiting for SUBACK / UNSUBACK, by filter; dropped when empty. */
  #subs: Map<string, Waiter[]> | null = null;
  #unsubs: Map<string, Waiter[]> | null = null;
  #ended = false;
  #ending: Array<() => void> | null = null;
  #authenticate: ConnectOptions['authenticate'];
  #authMethod = '';
  /** Connection attempts so far: an authentication answer for an earlier connection is not sent on a later one. */
  #attempt = 0;
  /** The re-authentication waiting for the server's AUTH 0x00, if any. */
  #reauth: Waiter | null = null;
  /** largeMessages 'pieces' (else 'assemble' or 'refuse'). */
  #pieces = false;
  /** The one view 'messageView' listeners get, made on the first message they are called for. */
  #messageView: MessageView | null = null;
  #maxMessageBytes = 16 * 1024 * 1024;
  /** The large message being assembled ('assemble'), null between them. */
  #assembly: Buffer | null = null;
  /** Why the client could not start (its session file), or null. */
  #fatal: Error | null = null;
  /** A close before CONNACK was reported since the last CONNACK. */
  #closedEarly = false;
  /** The current transport has opened. */
  #opened = false;
  /** TLS: the last connection resumed an earlier session (abbreviated handshake). */
  tlsResumed = false;
  /** Publishes waiting for room while the socket is backed up, in order (see #park); null when none. */
  #parked: Parked[] | null = null;

  constructor(url: string, options: ConnectOptions = {}) {
    super();
    // EventEmitter makes its listener table as a null-prototype literal, which
    // V8 keeps in dictionary mode (about 180 bytes while empty); the same
    // table in fast mode is about 60. Node's own streams preset theirs too.
    (this as unknown as { _events: object })._events = Object.setPrototypeOf({}, null);
    this.#url = url;
    this.#transportOptions = pickTransportOptions(options);
    this.#trace = options.trace;
    this.#now = options.now ?? Date.now;
    // A session file that cannot be used is reported like a failed connection
    // (an 'error' event, then 'close' and 'end'; publish rejects), not thrown.
    let store: SnapshotStore | null = options.store ?? null;
    let failure: Error | null = null;
    if (!store && options.sessionFile) {
      try {
        store = new FileSnapshotStore(options.sessionFile);
      } catch (e) {
        failure = e as Error;
      }
    }
    const reconnect: ReconnectOptions = { baseMs: options.reconnectPeriod || 1000, ...options.reconnect };
    const coreOptions: ClientOptions = {
      clientId: options.clientId ?? (store || failure ? '' : `dormouse_${Math.random().toString(16).slice(2, 10)}`),
      protocolVersion: options.protocolVersion ?? 4,
      clean: options.clean,
      keepalive: options.keepalive ?? 60,
      sessionExpiryInterval: options.properties?.sessionExpiryInterval,
      username: options.username,
      password: options.password,
      will: options.will,
      properties: options.properties ? withoutSessionExpiry(options.properties) : undefined,
      capacities: options.capacities,
      receiveBufferSize: options.receiveBufferSize,
      sendBufferSize: options.sendBufferSize,
      outboxPolicy:
        options.outboxPolicy === 'drop-oldest' ? OutboxPolicy.DropOldest
        : options.outboxPolicy === 'drop-newest' ? OutboxPolicy.DropNewest
        : options.outboxPolicy === 'conflate' ? OutboxPolicy.Conflate
        : OutboxPolicy.Reject,
      sessionLostPolicy: options.sessionLostPolicy === 'discard' ? SessionLostPolicy.Discard : SessionLostPolicy.Republish,
      earlyPublish: options.earlyPublish,
      guardReplayAfterPubrel: options.guardReplayAfterPubrel,
      incomingHoldBytes: options.incomingHoldBytes,
      reconnect,
      autoReconnect: options.reconnectPeriod !== 0,
      connectTimeoutMs: options.connectTimeout ?? 30000,
      authentication: authenticationOptions(options),
    };
    this.#authenticate = options.authenticate;
    this.#authMethod = coreOptions.authentication?.method ?? options.properties?.authenticationMethod ?? '';
    // With a trace, the hooks that wrap send; without, the plain ones: nothing added per send.
    const hooks = (this.#link = this.#trace ? new NodeClient.#TracingLink(this) : new NodeClient.#Link(this));
    const large = options.largeMessages ?? 'assemble';
    if (large !== 'assemble' && large !== 'pieces' && large !== 'refuse') throw new TypeError("options.largeMessages must be 'assemble', 'pieces' or 'refuse'");
    this.#pieces = large === 'pieces';
    if (options.maxMessageBytes !== undefined) {
      const max = options.maxMessageBytes;
      if (!Number.isInteger(max) || max < 1) throw new TypeError('options.maxMessageBytes must be a whole number of bytes >= 1');
      this.#maxMessageBytes = max;
    }
    // Without the hook the core refuses large messages and asks the broker for none.
    if (large === 'refuse') (hooks as { piece?: unknown }).piece = undefined;
    // Sessions are asked of the TLS layer only by a client that offers or wants them.
    if (options.tlsSession !== undefined || options.tlsSessionIdOnly || options.wantTlsSession) {
      (hooks as TransportHandlers).onTlsSession = NodeClient.#onTlsSession;
    }
    this.core = new DormouseClient(coreOptions, hooks, store, options.random ?? Math.random);
    const now = this.#now();
    if (!failure) failure = this.#restore(store, now, options.sessionFile);
    if (failure) {
      this.#fail(failure);
      return;
    }
    this.core.start(now);
    this.#schedule();
  }

  /** Loads the stored session; a damaged one is set aside and reported, one that is not ours refused. */
  #restore(store: SnapshotStore | null, now: number, sessionFile: string | undefined): Error | null {
    let status: RestoreStatus;
    try {
      status = this.core.restore(now);
    } catch (e) {
      // Another client id or configuration, or a slot that cannot be read.
      const err = e as Error & { code?: string };
      return err instanceof SessionFileError || !sessionFile ? err : Object.assign(new Error(`${err.message} (session file ${sessionFile})`), { code: 'ERR_SESSION_MISMATCH' });
    }
    switch (status) {
      case RestoreStatus.Restored:
        queueMicrotask(() => this.emit('restored', { inflight: this.core.session.inflight, queued: this.core.session.queued }));
        break;
      case RestoreStatus.Damaged: {
        // Kept before the fresh session's first write could land on them.
        let kept: string[];
        try {
          kept = store?.setAside?.() ?? [];
        } catch (e) {
          return e as Error;
        }
        queueMicrotask(() => this.emit('sessionDamaged', { keptAs: kept }));
        break;
      }
      case RestoreStatus.Foreign: {
        const where = store instanceof FileSnapshotStore ? store.paths.filter((p) => existsSync(p)).map((p) => `"${p}"`).join(' and ') : 'the session store';
        return new SessionFileError(
          `${where} ${where.includes(' and ') ? 'are not dormouse session files' : 'is not a dormouse session file'}: refusing to overwrite it (move it away, or choose another session file)`,
          'ERR_NOT_A_SESSION_FILE', sessionFile ?? '',
        );
      }
    }
    return null;
  }

  /** The client cannot work (its session cannot be used): it ends, and says why once listeners are attached. */
  #fail(err: Error): void {
    this.#fatal = err;
    this.#ended = true;
    // Listeners attached right after connect() hear it; without one, the calls that follow reject with it.
    queueMicrotask(() => {
      this.#error(err);
      this.emit('close');
      this.#finishEnd(); // 'end'; an end() already waiting resolves, subscribe calls still waiting reject
    });
  }

  /**
   * Accept a message into the session. Resolves once it is accepted (and
   * persisted, with a store); `acknowledged` resolves on PUBACK/PUBCOMP.
   * MQTT.js-style callback: called on acknowledgement (or error).
   */
  publish(topic: string, message: string | Uint8Array, opts: PublishOptions = {}, callback?: (err?: Error) => void): Promise<Accepted> {
    if (this.#fatal) return this.#refuseFailed(callback);
    const payload = typeof message === 'string' ? Buffer.from(message) : message;
    // Without properties the caller's options are already the core's shape: no copy per message.
    const coreOpts = opts.properties
      ? { qos: opts.qos ?? 0, retain: opts.retain, messageExpiryInterval: opts.properties.messageExpiryInterval, properties: withoutExpiry(opts.properties) }
      : opts;
    // While messages wait for room (see #park), a new one goes behind them, so
    // acceptance order stays publish order; past PARK_LIMIT it is refused.
    const parked = this.#parked;
    if (parked !== null) {
      return parked.length < PARK_LIMIT ? this.#park(topic, payload, coreOpts, callback) : this.#refusePublish(PublishError.OutboxFull, callback);
    }
    let token: number;
    try {
      token = this.core.publish(topic, payload, coreOpts, this.#now());
    } catch (e) {
      this.#storeFailed(e);
      return this.#refuseFailed(callback);
    }
    this.#schedule();
    if (token >= 0) return this.#accepted(token, opts.qos ?? 0, callback);
    if (token === PublishError.OutboxFull && this.core.backedUp) return this.#park(topic, payload, coreOpts, callback);
    return this.#refusePublish(token, callback);
  }

  /** The promise and callback of a message the core accepted (token >= 0). */
  #accepted(token: number, qos: number, callback: ((err?: Error) => void) | undefined): Promise<Accepted> {
    if (token === 0 || qos === 0) {
      if (callback) this.#later(callback);
      return token === 0 ? ACCEPTED_WRITTEN : Promise.resolve({ token, acknowledged: RESOLVED });
    }
    const pending = new PendingAck(token, callback);
    (this.#acks ??= new TokenTable(this.core.session.recordSlots)).set(token, pending);
    return Promise.resolve(pending);
  }

  /**
   * A refused publish. The error goes to the callback, if any, at once (as
   * MQTT.js calls back its immediate errors): a loop that never yields then
   * holds nothing per refused message, where a callback deferred to a
   * microtask would keep every refusal (and its error) until the loop ends.
   * It also goes to the returned promise, which rejects only for a caller that
   * waits on it (see Refusal): a caller that does not (a callback user, or a
   * loop that does not await) must not meet an unhandled rejection, which
   * ends a Node 20 process. A refusal for
   * want of room (the outbox full under the reject policy) without a callback
   * is also a 'drop' event (token 0, reason OutboxFullRefused).
   */
  #refusePublish(code: number, callback: ((err?: Error) => void) | undefined): Promise<Accepted> {
    const err = Object.assign(new Error(publishErrorMessage(code)), { code });
    if (callback) callback(err);
    else if (code === PublishError.OutboxFull) {
      // Without a callback, a caller that does not wait on the promise hears of it here.
      // (DroppedNewest is reported by the core itself, as a Dropped event.)
      this.emit('drop', { token: 0, reason: DropReason.OutboxFullRefused, text: err.message });
    }
    return new Refusal(err);
  }

  /**
   * The outbox is full because the socket is backed up: the publish waits for
   * room (its payload copied: the caller may reuse its buffer) and is accepted
   * when the socket drains, so a caller that awaits each publish, or keeps a
   * window of them outstanding (callbacks fire on acceptance), is paced
   * instead of refused. At most PARK_LIMIT wait, so memory stays fixed
   * whatever the caller does: a loop that never yields gets the rest refused.
   */
  #park(topic: string, payload: Uint8Array, opts: PublishOptions | CorePublishOptions, callback: ((err?: Error) => void) | undefined): Promise<Accepted> {
    const p = new Promise<Accepted>((resolve, reject) => {
      (this.#parked ??= []).push({ topic, payload: Uint8Array.prototype.slice.call(payload), opts, callback, resolve, reject });
    });
    // As #refusePublish: should it be refused in the end, a caller that does not wait must not crash.
    p.catch(noop);
    return p;
  }

  /** Try the waiting publishes again, in order (room may have come: a drain, acks, a drop, a lost connection). */
  #retryParked(): void {
    const list = this.#parked;
    if (!list) return;
    let k = 0;
    for (; k < list.length; k++) {
      const w = list[k]!;
      let token: number;
      try {
        token = this.core.publish(w.topic, w.payload, w.opts, this.#now());
      } catch (e) {
        // The session file failed (see #storeFailed): this one and those behind it get why.
        this.#parked = null;
        this.#storeFailed(e);
        for (let j = k; j < list.length; j++) this.#refuseFailed(list[j]!.callback).catch(list[j]!.reject);
        return;
      }
      if (token === PublishError.OutboxFull && this.core.backedUp) break;
      if (token >= 0) this.#accepted(token, w.opts.qos ?? 0, w.callback).then(w.resolve);
      else this.#refusePublish(token, w.callback).catch(w.reject);
    }
    if (k === list.length) this.#parked = null;
    else if (k > 0) list.splice(0, k);
    this.#schedule();
  }

  /** Publish and wait for the acknowledgement (MQTT.js 5's publishAsync). */
  async publishAsync(topic: string, message: string | Uint8Array, opts: PublishOptions = {}): Promise<void> {
    const { acknowledged } = await this.publish(topic, message, opts);
    return acknowledged;
  }

  /**
   * Subscribe, as MQTT.js: a filter, a list of filters (all with `opts`), or an
   * object of filter -> options. One SUBSCRIBE carries them all. Resolves with
   * the granted QoS (or failure code, >= 0x80) per filter, in the order given;
   * rejects, having sent nothing, when the filters are not valid or the packet
   * would be larger than the server accepts (its Maximum Packet Size).
   */
  subscribe(
    topic: string | string[] | Record<string, SubscribeOptions>,
    opts: SubscribeOptions | ((err: Error | null, granted?: Granted[]) => void) = {},
    callback?: (err: Error | null, granted?: Granted[]) => void,
  ): Promise<Granted[]> {
    if (typeof opts === 'function') {
      callback = opts;
      opts = {};
    }
    if (this.#fatal) return this.#refuseFailed(callback);
    const o = opts;
    const req = (t: string, x: SubscribeOptions): SubscribeRequest => ({
      topic: t,
      qos: x.qos ?? o.qos ?? 0,
      noLocal: x.nl ?? o.nl,
      retainAsPublished: x.rap ?? o.rap,
      retainHandling: x.rh ?? o.rh,
    });
    const list: SubscribeRequest[] =
      typeof topic === 'string' ? [req(topic, o)]
      : Array.isArray(topic) ? topic.map((t) => req(t, o))
      : Object.entries(topic ?? {}).map(([t, x]) => req(t, x ?? {}));
    const all = this.#subCall(list.map((r) => r.topic), (this.#subs ??= new Map()), () => this.core.subscribeMany(list, this.#now()))
      .then((codes) => codes.map((qos, k) => ({ topic: list[k].topic, qos })));
    if (callback) {
      const cb = callback;
      all.then((g) => cb(null, g), (e: Error) => cb(e));
    }
    return all;
  }

  /**
   * Unsubscribe, as MQTT.js: a filter or a list, in one UNSUBSCRIBE, whether or
   * not this client subscribed them (the broker may hold one from an earlier
   * session). Resolves with each filter's UNSUBACK reason code (MQTT 5).
   */
  unsubscribe(
    topic: string | string[],
    opts?: { properties?: Properties } | ((err?: Error | null, result?: Unsubscribed[]) => void),
    callback?: (err?: Error | null, result?: Unsubscribed[]) => void,
  ): Promise<Unsubscribed[]> {
    if (typeof opts === 'function') callback = opts;
    if (this.#fatal) return this.#refuseFailed(callback);
    const list = typeof topic === 'string' ? [topic] : topic;
    const all = this.#subCall(list, (this.#unsubs ??= new Map()), () => this.core.unsubscribeMany(list, this.#now()))
      .then((codes) => codes.map((reasonCode, k) => ({ topic: list[k], reasonCode })));
    if (callback) {
      const cb = callback;
      all.then((r) => cb(null, r), (e: Error) => cb(e));
    }
    return all;
  }

  /** Wait for each filter's answer; `send` asks the core (a throw sends nothing and rejects). */
  #subCall(topics: string[], map: Map<string, Waiter[]>, send: () => number): Promise<number[]> {
    // Waiters first: the core answers a filter it already holds within the call.
    const added: Array<[string, Waiter]> = [];
    const waits = (Array.isArray(topics) ? topics : []).map(
      (t) => new Promise<number>((resolve, reject) => {
        const w = { resolve, reject };
        added.push([t, w]);
        push(map, t, w);
      }),
    );
    try {
      send();
    } catch (e) {
      for (const [t, w] of added) remove(map, t, w);
      this.#dropEmptyWaiters();
      return Promise.reject(e as Error);
    } finally {
      this.#schedule();
    }
    return Promise.all(waits);
  }

  #dropEmptyWaiters(): void {
    if (this.#subs?.size === 0) this.#subs = null;
    if (this.#unsubs?.size === 0) this.#unsubs = null;
  }

  /**
   * MQTT 5: authenticate again on the open connection (AUTH 0x19 with `data`);
   * the `authenticate` handler answers the server's challenges. Resolves when the
   * server says it succeeded; rejects if the connection ends first.
   */
  reauthenticate(data?: Uint8Array | string): Promise<void> {
    try {
      this.core.reauthenticate(authBytes(data), this.#now());
    } catch (e) {
      return Promise.reject(e as Error);
    } finally {
      this.#schedule();
    }
    return new Promise<void>((resolve, reject) => { this.#reauth = { resolve: () => resolve(), reject }; });
  }

  /** Why the client could not start (its session file cannot be used), or null; also reported as 'error'. */
  get startError(): Error | null {
    return this.#fatal;
  }

  /** A call on a client that failed to start: its callback and promise get why. */
  #refuseFailed<T>(callback: ((err: Error) => void) | undefined): Promise<T> {
    const err = this.#fatal!;
    if (callback) queueMicrotask(() => callback(err));
    const p = Promise.reject(err);
    if (callback) p.catch(noop);
    return p;
  }

  /** Disconnect cleanly; unacknowledged work stays in the session (and its file). */
  end(force = false, callback?: () => void): Promise<void> {
    if (this.#ended) {
      callback?.();
      return Promise.resolve();
    }
    this.#ended = true;
    const done = new Promise<void>((resolve) => (this.#ending ??= []).push(resolve));
    this.core.end(this.#now());
    // A publish waiting for room goes into the outbox (kept for the next session) or is refused now.
    if (this.#parked) this.#retryParked();
    if (force) this.#transport?.destroy();
    this.#clearTimer();
    if (!this.#transport) this.#finishEnd();
    if (callback) done.then(callback);
    return done;
  }

  /** The delivery metrics of the core, by name. */
  metrics(): Record<string, number> {
    const m = this.core.metrics;
    const out: Record<string, number> = {};
    for (const [name, idx] of Object.entries(METRIC_NAMES)) out[name] = m[idx];
    return out;
  }

  // ---- host duties ---------------------------------------------------------
  /**
   * The core's hooks and, for each transport in turn, its handlers: one small
   * object per client whose methods live on the prototype, instead of a
   * closure per hook and per handler. Declared inside NodeClient to reach its
   * private members. A handler ignores a transport that is no longer the
   * client's (a late event from one it already let go).
   */
  static readonly #Link = class Link implements ClientHooks, TransportHandlers, Deadline {
    dueAt = 0;
    queueIndex = -1;

    constructor(readonly client: NodeClient) {}

    fire(): void {
      this.client.#onDeadline();
    }

    /** Something was sent since onData began (see onData). */
    wrote = false;

    send(bytes: Uint8Array): boolean {
      this.wrote = true;
      const t = this.client.#transport;
      return t === null || t.write(bytes);
    }

    open(): void {
      const c = this.client;
      c.#transport = openTransport(c.#url, c.#transportOptions, this);
    }

    close(): void {
      this.client.#closeTransport();
    }

    message(p: PublishPacket): void {
      this.client.#message(p);
    }

    piece(p: PublishPacket, offset: number, total: number): boolean {
      return this.client.#piece(p as DecodedPublish, offset, total);
    }

    event(kind: ClientEvent, a: number, b: number, detail?: unknown): void {
      this.client.#event(kind, a, b, detail);
    }

    onOpen(t: Transport): void {
      const c = this.client;
      if (c.#transport !== t) return;
      c.tlsResumed = t.tlsResumed === true;
      c.#opened = true;
      c.core.transportOpened(c.#now());
      c.#schedule();
    }

    onData(chunk: Uint8Array, t: Transport, length: number = chunk.length): ReadWait {
      const c = this.client;
      if (c.#transport !== t) return ReadWait.None;
      c.#trace?.('receive', length === chunk.length ? chunk : chunk.subarray(0, length));
      const m = c.core.metrics;
      const s = c.core.session;
      const before = m[Metric.Received];
      const incoming = s.incomingCount;
      this.wrote = false;
      holdWrites();
      try {
        c.core.receive(chunk, c.#now(), length);
      } catch (e) {
        c.#storeFailed(e);
        return ReadWait.None;
      } finally {
        releaseWrites();
      }
      if (c.#parked) c.#retryParked();
      c.#schedule();
      // Messages and PUBRELs in this read (a PUBREL frees an incoming id; new QoS 2 messages take some).
      const burst = m[Metric.Received] - before + Math.max(0, incoming - s.incomingCount);
      return nextReadMayWait(this, burst, this.wrote, s.inflight);
    }

    /** See ReadCoalescing (transport.ts). */
    answeredWaits = 0;

    onDrain(t: Transport): void {
      const c = this.client;
      if (c.#transport !== t) return;
      c.core.writable(c.#now());
      if (c.#parked) c.#retryParked();
      c.#schedule();
    }

    onClose(err: Error | undefined, t: Transport): void {
      const c = this.client;
      if (c.#transport !== t) return;
      c.#transport = null;
      // A connection that failed before it opened, while a TLS session was
      // offered: the session may be the cause, so it is not offered again.
      if (err && !c.#opened && c.#transportOptions.tlsSession !== undefined) c.#forgetTlsSession();
      c.#opened = false;
      if (err && !c.#ended) c.#error(err);
      // Closed by the server without a word before its CONNACK (an overloaded or misconfigured broker, a proxy):
      // say so, once until a CONNACK, as the core does for MQTT 5 (with its hint that the broker may speak only 3.1.1).
      else if (!c.#ended && !c.connected && !c.#closedEarly && c.core.version !== 5) {
        c.#closedEarly = true;
        c.#error(Object.assign(new Error('the server closed the connection before CONNACK'), { code: 'ECONNCLOSED' }));
      }
      c.core.transportClosed(c.#now(), err !== undefined);
      if (c.#parked) c.#retryParked();
      c.#schedule();
      if (c.#ended) c.#finishEnd();
    }
  };

  /** Link.onTlsSession, kept off the prototype of clients that never use TLS sessions (see #Link's users). */
  static #onTlsSession(this: { client: NodeClient }, session: Uint8Array, t: Transport): void {
    const c = this.client;
    if (c.#transport !== t) return;
    // Reconnects offer the newest session.
    c.#transportOptions = { ...c.#transportOptions, tlsSession: session };
    c.emit('tlsSession', session);
  }

  /** #Link for a client with a trace: every chunk written goes past it first. */
  static readonly #TracingLink = class TracingLink extends NodeClient.#Link {
    override send(bytes: Uint8Array): boolean {
      this.wrote = true;
      const c = this.client;
      c.#trace!('send', bytes);
      const t = c.#transport;
      return t === null || t.write(bytes);
    }
  };

  #forgetTlsSession(): void {
    const { tlsSession: _drop, ...rest } = this.#transportOptions;
    this.#transportOptions = rest;
    this.emit('tlsSession', null);
  }

  #closeTransport(): void {
    const t = this.#transport;
    if (!t) return;
    if (!this.#ended) this.#transport = null;
    t.close();
  }

  #finishEnd(): void {
    this.#transport = null;
    this.connected = false;
    const waiters = this.#ending;
    this.#ending = null;
    // A subscribe or unsubscribe still waiting for its answer will not get one
    // from this client now (offline, or the answer did not come before the end).
    rejectAll(this.#subs, 'SUBACK');
    rejectAll(this.#unsubs, 'UNSUBACK');
    this.#subs = this.#unsubs = null;
    this.emit('end');
    if (waiters) for (const w of waiters) w();
  }

  #message(p: PublishPacket): void {
    const events = this.#events();
    const views = events.messageView;
    const listener = events.message;
    if (views === undefined && listener === undefined) return;
    const topic = p instanceof DecodedPublish ? topicOf(p) : p.topic;
    if (views !== undefined) {
      if (p instanceof DecodedPublish) this.#view(views, topic, p, p.bytes, p.payloadStart, p.payloadEnd);
      else this.#view(views, topic, p, p.payload, 0, p.payload.length);
    }
    if (listener === undefined) return;
    // The core's packet is valid only during this call: copy what leaves it.
    const payload = copyPayload(p);
    // EventEmitter's emit() gathers its arguments into an array, and the
    // packet object is made whether a listener reads it or not: with one
    // listener, it is called as emit() would call it, and the packet is made
    // only for a listener that may read it (declared with 3 or more
    // parameters, or none: rest parameters, `arguments`). So a listener
    // written (topic, payload) costs the payload Buffer and nothing else.
    if (typeof listener === 'function') {
      const n = (listener as (...a: unknown[]) => void).length;
      if (n === 1 || n === 2) (listener as (t: string, m: Buffer) => void).call(this, topic, payload);
      else (listener as (t: string, m: Buffer, pk: unknown) => void).call(this, topic, payload, { topic, payload, qos: p.qos, retain: p.retain, dup: p.dup, properties: p.properties });
      return;
    }
    this.emit('message', topic, payload, { topic, payload, qos: p.qos, retain: p.retain, dup: p.dup, properties: p.properties });
  }

  /** EventEmitter's listener table, read directly so that a delivery needs no emit() argument array. */
  #events(): Record<string, unknown> {
    return (this as unknown as { _events: Record<string, unknown> })._events;
  }

  /**
   * 'messageView': the client's one MessageView, filled with the message's
   * ranges for the listeners' calls and emptied after them. Called directly,
   * not through emit() (whose argument array would be an object per message);
   * several listeners are called from a copy of the list, as emit() does.
   */
  #view(listeners: unknown, topic: string, p: PublishPacket, bytes: Uint8Array, start: number, end: number): void {
    const v = (this.#messageView ??= new MessageView());
    v.set(topic, p.qos, p.retain, p.dup, p.properties, bytes, start, end);
    try {
      if (typeof listeners === 'function') (listeners as (v: MessageView) => void).call(this, v);
      else for (const l of [...(listeners as Array<(v: MessageView) => void>)]) l.call(this, v);
    } finally {
      v.clear();
    }
  }

  #piece(p: DecodedPublish, offset: number, total: number): boolean {
    const n = p.payloadEnd - p.payloadStart;
    const topic = p.topic;
    if (this.#pieces) {
      if (this.listenerCount('messagePiece') === 0) {
        this.#error(Object.assign(
          new Error(`refused a ${total}-byte message on ${JSON.stringify(topic)}: it is larger than receiveBufferSize and largeMessages is 'pieces', but nothing listens for 'messagePiece'`),
          { code: 'EMSGSIZE' },
        ));
        return false;
      }
      const piece = copyPayload(p);
      this.emit('messagePiece', topic, piece, offset, total, { topic, qos: p.qos, retain: p.retain, dup: p.dup, properties: p.properties });
      return true;
    }
    if (offset === 0) {
      if (total > this.#maxMessageBytes) {
        this.#error(Object.assign(
          new Error(`refused a ${total}-byte message on ${JSON.stringify(topic)}: it is larger than maxMessageBytes (${this.#maxMessageBytes}); raise it, or take it in pieces (largeMessages: 'pieces')`),
          { code: 'EMSGSIZE' },
        ));
        return false;
      }
      this.#assembly = Buffer.allocUnsafe(total);
    }
    const whole = this.#assembly!;
    whole.set(p.bytes.subarray(p.payloadStart, p.payloadEnd), offset);
    if (offset + n === total) {
      this.#assembly = null;
      const views = this.#events().messageView;
      if (views !== undefined) this.#view(views, topic, p, whole, 0, total);
      this.emit('message', topic, whole, { topic, payload: whole, qos: p.qos, retain: p.retain, dup: p.dup, properties: p.properties });
    }
    return true;
  }

  #event(kind: ClientEvent, a: number, b: number, detail?: unknown): void {
    switch (kind) {
      case ClientEvent.Connecting:
        this.#attempt++;
        if (a > 0 || this.core.metrics[Metric.Reconnects] > 0) this.emit('reconnect');
        break;
      case ClientEvent.Connected:
        this.connected = true;
        this.#closedEarly = false;
        this.emit('connect', { sessionPresent: a === 1, returnCode: 0 });
        break;
      case ClientEvent.Disconnected:
        if (this.#reauth) {
          this.#reauth.reject(new Error('the connection ended before the re-authentication finished'));
          this.#reauth = null;
        }
        if (this.connected) {
          this.connected = false;
          this.emit('offline');
        }
        this.emit('close');
        break;
      case ClientEvent.Refused: {
        const text = typeof detail === 'string' ? detail : refusalText(a, this.core.version);
        const err = Object.assign(new Error(`connection refused: ${text}`), { code: a });
        this.#error(err);
        break;
      }
      case ClientEvent.Acked: {
        const w = this.#acks?.take(a);
        if (w) this.#settle(w, null);
        // emit() gathers its arguments into an array: skip it when nobody listens (the usual case, once per message).
        if (this.listenerCount('acked') > 0) this.emit('acked', a, b);
        break;
      }
      case ClientEvent.Dropped: {
        const code = typeof detail === 'number' ? detail : undefined;
        const err = new DropError(a, b as DropReason, code);
        const w = this.#acks?.take(a);
        if (w) this.#settle(w, err);
        this.emit('drop', { token: a, reason: b, reasonCode: code, text: err.message });
        break;
      }
      case ClientEvent.Subscribed: {
        // Every call waiting on this filter gets its latest answer: a filter
        // subscribed twice before its SUBACK is answered once. The session
        // keeps one request per filter, so an unsubscribe of it still waiting
        // was overtaken by this subscribe and gets no UNSUBACK of its own.
        const topic = detail as string;
        settle(this.#unsubs, topic, null, () => new Error(`subscribed to ${JSON.stringify(topic)} again before the UNSUBACK arrived`));
        settle(this.#subs, topic, b);
        this.#dropEmptyWaiters();
        break;
      }
      case ClientEvent.SubscriptionDowngraded:
        this.emit('downgrade', { topic: detail, requested: a, granted: b });
        break;
      case ClientEvent.Unsubscribed: {
        const topic = detail as string;
        settle(this.#subs, topic, null, () => new Error(`unsubscribed from ${JSON.stringify(topic)} before the SUBACK arrived`));
        settle(this.#unsubs, topic, b);
        this.#dropEmptyWaiters();
        break;
      }
      case ClientEvent.SessionLost:
        this.emit('sessionLost', { republished: a });
        break;
      case ClientEvent.SleepReady:
        this.emit('sleepReady');
        break;
      case ClientEvent.ProtocolError:
        this.#error(Object.assign(new Error(`protocol error from the server: ${String(detail)}`), { code: a }));
        break;
      case ClientEvent.HeldBack:
        // With reconnecting off the client gives up on them: say why.
        if (b === 0) {
          this.#error(Object.assign(
            new Error('closed the connection with QoS 2 messages held back at the broker: it sent more than the incoming id table (capacities.incomingQos2) and hold region (incomingHoldBytes) take before its PUBRELs; with reconnecting off they stay there until the next connect'),
            { code: 'EHELDBACK' },
          ));
        }
        break;
      case ClientEvent.TakenOver: {
        const why = a === 0x8e ? 'the broker says the session was taken over (0x8E)' : 'the broker closed the connection right after CONNACK several times in a row';
        this.emit('takeover', { reasonCode: a, retryInMs: b });
        this.#error(Object.assign(
          new Error(`session taken over: ${why}; another client uses client id ${JSON.stringify(this.core.clientId)}. Next attempt in ${Math.round(b / 1000)} s`),
          { code: 'SESSION_TAKEN_OVER', reasonCode: a },
        ));
        break;
      }
      case ClientEvent.KeepaliveTimeout:
        this.#error(new Error('keepalive timeout: no PINGRESP, the connection was half-open'));
        break;
      case ClientEvent.PublishDowngraded:
        this.emit('publishDowngrade', { token: a, requested: 2, granted: b });
        break;
      case ClientEvent.ClosedBeforeConnack:
        this.#error(Object.assign(
          new Error('the broker closed the connection before CONNACK: it may not speak MQTT 5 (RabbitMQ 3.10 speaks only 3.1.1); try protocolVersion 4'),
          { code: 'ECLOSEDBEFORECONNACK' },
        ));
        break;
      case ClientEvent.Auth:
        this.#onAuth(a, b === 1, detail as Uint8Array | undefined);
        break;
    }
  }

  /** The server's side of an enhanced authentication step: ask the handler, answer the core outside its call. */
  #onAuth(reasonCode: number, reauthentication: boolean, data: Uint8Array | undefined): void {
    const attempt = this.#attempt;
    const handler = this.#authenticate;
    const step: AuthStep = { reasonCode, method: this.#authMethod, data: data ? Buffer.from(data) : undefined, reauthentication };
    Promise.resolve()
      .then(() => {
        if (handler) return handler(step);
        if (reasonCode === 0x18) throw new Error('the server continues the authentication (AUTH 0x18) and no `authenticate` handler was given');
        return undefined;
      })
      .then(
        (reply) => {
          if (attempt !== this.#attempt || this.#ended) return;
          if (reasonCode === 0x18) {
            try {
              this.core.continueAuthentication(authBytes(reply ?? undefined), this.#now());
            } catch { /* the exchange ended meanwhile (connection lost) */ }
            this.#schedule();
          } else if (reauthentication && this.#reauth) {
            this.#reauth.resolve(0);
            this.#reauth = null;
          }
        },
        (e: Error) => {
          if (attempt !== this.#attempt || this.#ended) return;
          this.#reauth?.reject(e);
          this.#reauth = null;
          this.core.abortAuthentication(this.#now());
          this.#schedule();
          this.#error(Object.assign(new Error(`authentication aborted: ${e?.message ?? e}`), { cause: e }));
        },
      );
  }

  #settle(w: PendingAck, err: Error | null): void {
    w.outcome = err;
    this.#later(w);
  }

  #later(w: PendingAck | (() => void)): void {
    const list = this.#settling;
    if (list) {
      list.push(w);
      return;
    }
    // The first outcome of this call: a fresh list (the last one is being or was settled) and one microtask.
    this.#settling = [w];
    queueMicrotask((this.#settleTask ??= this.#settleAll.bind(this)));
  }

  #settleAll(): void {
    const list = this.#settling!;
    this.#settling = null;
    for (let i = 0; i < list.length; i++) {
      const w = list[i]!;
      if (typeof w === 'function') w();
      else w.settle(w.outcome as Error | null);
    }
  }

  /**
   * Connection errors are reported, not thrown: the client keeps reconnecting,
   * so an 'error' without a listener must not take the process down.
   */
  #error(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #schedule(): void {
    if (this.#ended) return;
    const at = this.core.nextDeadline();
    // An armed timer that fires no later than needed is kept: tick() at an
    // early time only re-checks and re-arms. Every send moves the keepalive
    // deadline, and re-arming a Node timer per message costs more than the rest
    // of the host's work on it.
    // Every client's deadline waits in one queue with one Node timer (deadlines.ts).
    if (this.#link.queueIndex >= 0 && this.#timerAt <= at && at !== Infinity) return;
    this.#clearTimer();
    if (at === Infinity) return;
    this.#timerAt = at;
    scheduleDeadline(this.#link, at - this.#now());
  }

  #onDeadline(): void {
    this.#timerAt = Infinity;
    try {
      this.core.tick(this.#now());
    } catch (e) {
      this.#storeFailed(e);
      return;
    }
    if (this.#parked) this.#retryParked();
    this.#schedule();
  }

  /**
   * The session store failed to write (the disk filled, a permission
   * changed): what the session holds can no longer be kept, so the client
   * stops as a power cut would stop it, and says why ('error', 'close',
   * 'end'; later calls reject). Anything else thrown is a bug: rethrown.
   */
  #storeFailed(e: unknown): void {
    if (!(e instanceof SessionFileError)) throw e;
    const t = this.#transport;
    this.#transport = null;
    this.#clearTimer();
    this.connected = false;
    t?.destroy();
    this.#fail(e);
  }

  #clearTimer(): void {
    cancelDeadline(this.#link);
    this.#timerAt = Infinity;
  }
}

/** Connect as MQTT.js's `mqtt.connect(url, options)` does. */
export function connect(url: string, options: ConnectOptions = {}): NodeClient {
  return new NodeClient(url, options);
}

const METRIC_NAMES: Record<string, Metric> = {
  sent: Metric.Sent,
  acknowledged: Metric.Acked,
  resent: Metric.Resent,
  duplicatesSuppressed: Metric.DuplicatesSuppressed,
  droppedOutboxOldest: Metric.DroppedOutboxOldest,
  droppedOutboxNewest: Metric.DroppedOutboxNewest,
  droppedExpired: Metric.DroppedExpired,
  droppedRefused: Metric.DroppedRefused,
  droppedSessionLost: Metric.DroppedSessionLost,
  reconnects: Metric.Reconnects,
  strayAcks: Metric.StrayAcks,
  received: Metric.Received,
  ackTimeTotalMs: Metric.AckTimeTotalMs,
  ackTimeMaxMs: Metric.AckTimeMaxMs,
  refused: Metric.Refused,
  protocolErrors: Metric.ProtocolErrors,
  keepaliveTimeouts: Metric.KeepaliveTimeouts,
  snapshotWrites: Metric.SnapshotWrites,
  heldBack: Metric.HeldBack,
  brokerReplays: Metric.BrokerReplays,
  droppedSuperseded: Metric.DroppedSuperseded,
  takeovers: Metric.Takeovers,
};

const REFUSED_311 = ['accepted', 'unacceptable protocol version', 'identifier rejected', 'server unavailable', 'bad user name or password', 'not authorized'];
const REFUSED_5: Record<number, string> = {
  0x80: 'unspecified error', 0x81: 'malformed packet', 0x82: 'protocol error', 0x83: 'implementation specific error',
  0x84: 'unsupported protocol version', 0x85: 'client identifier not valid', 0x86: 'bad user name or password',
  0x87: 'not authorized', 0x88: 'server unavailable', 0x89: 'server busy', 0x8a: 'banned', 0x8c: 'bad authentication method',
  0x90: 'topic name invalid', 0x95: 'packet too large', 0x97: 'quota exceeded', 0x99: 'payload format invalid',
  0x9a: 'retain not supported', 0x9b: 'QoS not supported', 0x9c: 'use another server', 0x9d: 'server moved',
  0x9f: 'connection rate exceeded',
};

export function refusalText(code: number, version: number): string {
  return (version === 5 ? REFUSED_5[code] : REFUSED_311[code]) ?? `code ${code}`;
}

function withoutSessionExpiry(p: Properties): Properties {
  const { sessionExpiryInterval: _drop, ...rest } = p;
  return rest;
}

function withoutExpiry(p: Properties | undefined): Properties | undefined {
  if (!p) return undefined;
  const { messageExpiryInterval: _drop, ...rest } = p;
  return Object.keys(rest).length ? rest : undefined;
}

function authenticationOptions(o: ConnectOptions): AuthenticationOptions | undefined {
  const a = o.authentication;
  if (!a) return undefined; // properties.authenticationMethod, if given, is read by the core
  const d = a.data;
  return { method: a.method, initialData: typeof d === 'function' ? () => authBytes(d()) : authBytes(d) };
}

function authBytes(d: Uint8Array | string | undefined | void): Uint8Array | undefined {
  return typeof d === 'string' ? Buffer.from(d) : (d ?? undefined);
}

/** Answer every call waiting on `key`: resolve with `value`, or reject with `error()` when value is null. */
function settle(map: Map<string, Waiter[]> | null, key: string, value: number | null, error?: () => Error): void {
  const list = map?.get(key);
  if (!list) return;
  map!.delete(key);
  for (const w of list) {
    if (value !== null) w.resolve(value);
    else w.reject(error!());
  }
}

function remove(map: Map<string, Waiter[]>, key: string, w: Waiter): void {
  const list = map.get(key);
  if (!list) return;
  const k = list.indexOf(w);
  if (k >= 0) list.splice(k, 1);
  if (list.length === 0) map.delete(key);
}

function push(map: Map<string, Waiter[]>, key: string, w: Waiter): void {
  const list = map.get(key);
  if (list) list.push(w);
  else map.set(key, [w]);
}

/**
 * The payload as a Buffer of its own. From the decoder's packet, copied from
 * its range of the input without the view its `payload` getter would make
 * (one object fewer per message); a small payload comes from Node's pool.
 */
function copyPayload(p: PublishPacket): Buffer {
  if (!(p instanceof DecodedPublish)) return Buffer.from(p.payload);
  return copyRange(p.bytes, p.payloadStart, p.payloadEnd);
}

function rejectAll(map: Map<string, Waiter[]> | null, answer: string): void {
  if (!map) return;
  for (const [filter, list] of map) {
    for (const w of list) w.reject(Object.assign(new Error(`the client ended before the ${answer} for ${JSON.stringify(filter)}`), { code: 'ENDED' }));
  }
}
