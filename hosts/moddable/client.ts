// The `dormouse` module's Client, in the idiom of Moddable's own `mqtt`
// module: construct with a dictionary (host, port, id, user, password, will,
// keepalive/timeout, clean), set onReady / onMessage(topic, body) / onClose,
// publish(topic, data, options), subscribe, unsubscribe, close. An app written
// for `mqtt` runs on it by changing its include and import.
//
// What it adds: a persistent MQTT session kept through deep sleep and power
// cuts (RTC memory, plus the NVS journal of journal.ts), QoS 1 and 2,
// publishing while offline (the message waits in the session), onSleepReady
// when nothing is left in flight, and refusals that are never silent:
// publish throws on a message it cannot take, and a message that leaves the
// session without an ack is reported to onDrop.
//
// This file takes Moddable's modules as a `ClientPlatform` so that it runs
// under Node with fakes; dormouse.ts binds the real modules.

import { DormouseClient, publishErrorMessage, ConnState } from '../../modules/session/client.js';
import type { ClientOptions as CoreOptions } from '../../modules/session/client.js';
import { ClientEvent, DropReason } from '../../modules/session/ports.js';
import type { ClientHooks, SnapshotStore } from '../../modules/session/ports.js';
import { SnapshotMismatchError, snapshotCapacity } from '../../modules/session/snapshot.js';
import { DEFAULT_CAPACITIES, SubState, type Capacities } from '../../modules/session/session-state.js';
import type { PublishPacket, QoS } from '../../modules/mqtt/types.js';
import { utf8Length, utf8Write, utf8Read } from '../../modules/mqtt/utf8.js';
import type { PreferenceStore, RtcMemory, TcpSocket, TcpSocketConstructor, TcpSocketOptions, TimerApi } from './platform.js';
import { RestoredFrom, RtcSnapshotStore } from './stores.js';
import { DurableStore } from './journal.js';
import { FlashSnapshotStore, type FlashPartition } from './flash-store.js';
import { RtcLayout, rtcRegion } from './rtc-layout.js';
import { TcpTransport } from './transport.js';
import { DeadlineTimer } from './timer-host.js';

/** `timer` as the client uses it. */
export interface ClientTimers<T = unknown> extends TimerApi<T> {
  set(callback: () => void, ms: number): T;
}

/** Options of Moddable's `embedded:io/socket/tcp/tls` beyond the TCP socket's (examples/io/tcp/tlssocket). */
export interface TlsSocketOptions extends TcpSocketOptions {
  /** Server name: SNI and the certificate's subjectAltName check. */
  host: string;
  TCP: { io: TcpSocketConstructor };
  secure: { serverName?: string; certificate?: ArrayBuffer; verify?: boolean; [k: string]: unknown };
}
export type TlsSocketConstructor = new (options: TlsSocketOptions) => TcpSocket;

/** What the client and the wake helper ask of the TLS session cache (tls-session-cache.ts). */
export interface TlsCacheControl {
  configure(options: { rtc?: RtcMemory; now?: () => number }): void;
  forget(): void;
}

/** The Moddable modules the client needs, passed in (dormouse.ts passes the real ones). */
export interface ClientPlatform {
  Timer: ClientTimers<any>;
  TCP: TcpSocketConstructor;
  /** `embedded:io/socket/tcp/tls`, needed only with the `tls` option. */
  TLS?: TlsSocketConstructor;
  /** The TLS session cache (`ssl/cache`, tls-session-cache.ts): forgotten on any TLS socket error. */
  tlsCache?: TlsCacheControl;
  /** `preference`: NVS on ESP32. Without it (and without `flash`) the session lives in RTC memory only. */
  preference?: PreferenceStore;
  /**
   * The flash partition for the session log of client `id`
   * (`embedded:storage/flash`: the partition labelled "dormouse"), or
   * undefined when the device has none.
   */
  flash?: (id: string) => FlashPartition | undefined;
  /** The whole RTC region of dormouse/deepsleep. Without it the session is kept in RAM only. */
  rtc?: RtcMemory;
  /** Host name to dotted IPv4 (Net.resolve). */
  resolve(name: string, done: (address: string | undefined) => void): void;
  clock(): number;
  random(): number;
}

/** Options named as Moddable's `mqtt` module names them, plus Dormouse's own. */
export interface ClientOptions {
  host: string;
  port?: number;
  /** Names the session on the broker; one per device. Without it the session is clean and kept in RAM, as with `mqtt`. */
  id?: string;
  user?: string;
  password?: string | ArrayBuffer;
  /** As in `mqtt`: `quality` is the QoS; `qos` is accepted too. */
  will?: { topic: string; message: string | ArrayBuffer; retain?: boolean | number; quality?: number; qos?: number };
  /** Keepalive in seconds. */
  keepalive?: number;
  /** Moddable `mqtt`'s keepalive, in milliseconds; used when `keepalive` is absent. */
  timeout?: number;
  /** Default false: a persistent session (what a sleeping device needs). */
  clean?: boolean;
  protocolVersion?: 4 | 5;
  capacities?: Partial<Capacities>;
  /**
   * Where the session lives. "durable" (the default when the platform has
   * RTC and flash or preference): RTC, plus the flash log of flash-store.ts
   * when a "dormouse" partition exists, else the NVS journal of journal.ts, so
   * no accepted message is lost at a power cut. "flash" or "nvs" pick one of
   * the two. "rtc": RTC only (lost with power). "none": RAM. Or a SnapshotStore
   * of your own.
   */
  store?: 'durable' | 'flash' | 'nvs' | 'rtc' | 'none' | SnapshotStore;
  /** TLS through `embedded:io/socket/tcp/tls`: true, or the server name to check and a CA certificate (DER). */
  tls?: boolean | { serverName?: string; ca?: ArrayBuffer; verify?: boolean };
  /** MQTT 5 session expiry, seconds. Default 86400 for a persistent session. */
  expiry?: number;
  /** Journal entries before the NVS base is rewritten (durable store). Default 24. */
  compactAfter?: number;
  /** Connect at construction, as `mqtt` does. Default true; false waits for start() (after Wi-Fi, say). */
  start?: boolean;
  /** Reconnect after a loss, with backoff. Default true. */
  reconnect?: boolean;
  /** Bytes of the receive buffer: the largest packet taken whole. Default 2048. */
  receiveBuffer?: number;
  /**
   * A message larger than the receive buffer (a firmware image, say):
   * "refuse" (default: MQTT 5 CONNECT asks the broker for none larger, and one
   * that comes anyway closes the connection), or "pieces": onMessagePiece
   * gets it in order, piece by piece, and the ack goes after the last piece.
   */
  largeMessages?: 'refuse' | 'pieces';
}

export interface PublishFlags {
  qos?: QoS;
  /** Moddable `mqtt`'s name for the QoS. */
  quality?: QoS;
  retain?: boolean;
  /** Message expiry interval, seconds. */
  expiry?: number;
}

const DROP_REASONS: readonly string[] = Object.freeze([
  '',
  'outbox full: oldest dropped',
  'outbox full: newest dropped',
  'expired before it was sent',
  'refused by the broker',
  'the broker lost the session',
]);

/** Capacities sized for a sensor whose largest snapshot fits one RTC slot. */
export const SENSOR_CAPACITIES: Readonly<Capacities> = Object.freeze({
  ...DEFAULT_CAPACITIES,
  inflight: 4,
  outbox: 8,
  storeBytes: 768,
  incomingQos2: 2,
  subscriptions: 4,
  subscriptionBytes: 128,
  releasedQos2: 0,
});

/** Per-connection timings (ms on the platform clock), for a wake's trace. */
export interface ClientTimings {
  startedAt: number;
  /** TCP connected (with TLS: the TCP socket under it). */
  tcpAt: number;
  /** TLS handshake done (the TLS socket first writable); -1 without TLS. */
  tlsAt: number;
  connackAt: number;
  lastAckAt: number;
}

export class Client {
  onReady?: (this: Client) => void;
  onMessage?: (this: Client, topic: string, body: ArrayBuffer) => void;
  /**
   * With largeMessages "pieces": a piece of a message larger than the receive
   * buffer, `body` at `offset` of `total` bytes; offset 0 begins a message (one
   * cut short by a lost connection starts over). Without it, such a message
   * is refused (the connection closes, nothing acknowledged: the broker keeps it).
   */
  onMessagePiece?: (this: Client, topic: string, body: ArrayBuffer, offset: number, total: number) => void;
  onClose?: (this: Client) => void;
  /** Nothing in flight or queued, the session saved: the device may sleep. */
  onSleepReady?: (this: Client) => void;
  /** A message accepted earlier left the session without an ack (see DROP_REASONS). */
  onDrop?: (this: Client, token: number, reason: string) => void;
  /** A QoS 1/2 message was acknowledged; `reason` is the broker's reason code. */
  onAck?: (this: Client, token: number, reason: number) => void;
  /**
   * The broker handed this session to another connection with the same id
   * (MQTT 5 reason 0x8E, or repeated kicks right after CONNACK): two devices
   * share an id. The client backs off `retryMs` before trying again.
   */
  onTakenOver?: (this: Client, retryMs: number) => void;

  readonly core: DormouseClient;
  readonly store: SnapshotStore | null;
  /** The NVS journal store, when that is the store in use. */
  readonly durable: DurableStore | null;
  /** The flash log store, when that is the store in use. */
  readonly flashStore: FlashSnapshotStore | null;
  readonly timings: ClientTimings = { startedAt: 0, tcpAt: -1, tlsAt: -1, connackAt: -1, lastAckAt: -1 };
  /** Messages accepted again from the NVS journal after a power cut. */
  readonly replayed: number = 0;

  readonly #p: ClientPlatform;
  readonly #host: string;
  readonly #port: number;
  readonly #tls: ClientOptions['tls'];
  #transport: TcpTransport | null = null;
  #deadlines: DeadlineTimer<unknown>;
  #started = false;
  #closed = false;
  #retargeting = false;
  #linger: { maxMs: number; done: (drained: boolean) => void } | null = null;
  readonly #qos2 = new Set<number>(); // QoS 2 tokens live: flash write-through until they complete
  readonly #journaled = new Set<number>(); // tokens with an accept entry in the journal

  constructor(options: ClientOptions, platform: ClientPlatform) {
    if (typeof options?.host !== 'string' || options.host === '') throw new Error('parameter host is required');
    if (options.id !== undefined && typeof options.id !== 'string') throw new TypeError('id must be a string');
    this.#p = platform;
    this.#host = options.host;
    this.#tls = options.tls;
    this.#port = options.port ?? (options.tls ? 8883 : 1883);
    if (!(Number.isInteger(this.#port) && this.#port > 0 && this.#port < 65536)) throw new RangeError(`port must be 1..65535, not ${options.port}`);
    const capacities: Capacities = { ...SENSOR_CAPACITIES, ...options.capacities };
    // No id (as Moddable's `mqtt` allows): nothing names a session to resume, so a clean one in RAM.
    const anonymous = !options.id;
    const clean = anonymous || (options.clean ?? false);

    let store: SnapshotStore | null = null;
    let durable: DurableStore | null = null;
    let flashStore: FlashSnapshotStore | null = null;
    let kind = anonymous ? 'none' : options.store ?? (platform.rtc && (platform.preference || platform.flash) ? 'durable' : platform.rtc ? 'rtc' : 'none');
    let partition: FlashPartition | undefined;
    if (!clean && (kind === 'durable' || kind === 'flash')) {
      partition = platform.flash?.(options.id ?? '');
      if (partition === undefined && kind === 'flash') throw new Error('store "flash" needs a flash partition labelled "dormouse" (embedded:storage/flash)');
      kind = partition !== undefined ? 'flash' : 'nvs';
    }
    if (typeof kind === 'object') store = kind;
    else if (kind !== 'none' && !clean) {
      if (!platform.rtc) throw new Error(`store "${kind}" needs the RTC memory of dormouse/deepsleep`);
      const rtc = new RtcSnapshotStore(rtcRegion(platform.rtc, RtcLayout.session));
      const largest = snapshotCapacity(capacities, utf8Length(options.id ?? ''));
      if (largest > rtc.capacity)
        throw new RangeError(`sessions of up to ${largest} bytes do not fit an RTC slot of ${rtc.capacity}: lower the capacities`);
      if (kind === 'nvs') {
        if (!platform.preference) throw new Error('store "nvs" needs `preference` (NVS)');
        store = durable = new DurableStore(rtc, platform.preference, { compactAfter: options.compactAfter });
      } else if (kind === 'flash') store = flashStore = new FlashSnapshotStore(rtc, partition!, largest);
      else store = rtc;
    }
    this.store = store;
    this.durable = durable;
    this.flashStore = flashStore;

    const keepalive = options.keepalive ?? (options.timeout !== undefined ? Math.ceil(options.timeout / 1000) : 60);
    const will = options.will;
    const core: CoreOptions = {
      clientId: options.id ?? '',
      protocolVersion: options.protocolVersion ?? 5,
      clean,
      keepalive,
      sessionExpiryInterval: clean ? 0 : (options.expiry ?? 86400),
      username: options.user,
      password: options.password === undefined ? undefined : typeof options.password === 'string' ? options.password : new Uint8Array(options.password as ArrayBuffer),
      will: will && {
        topic: will.topic,
        payload: typeof will.message === 'string' ? will.message : new Uint8Array(will.message),
        qos: ((will.qos ?? will.quality ?? 0) & 3) as QoS,
        retain: !!will.retain,
      },
      capacities,
      autoReconnect: options.reconnect ?? true,
      receiveBufferSize: options.receiveBuffer,
    };
    const large = options.largeMessages ?? 'refuse';
    if (large !== 'refuse' && large !== 'pieces') throw new TypeError('largeMessages must be "refuse" or "pieces"');
    const hooks = this.#hooks();
    // Without the hook the core refuses large messages and MQTT 5 CONNECT asks for none.
    if (large === 'refuse') delete hooks.piece;
    let client = new DormouseClient(core, hooks, store, platform.random);
    const now = platform.clock();
    try {
      client.restore(now);
    } catch (e) {
      if (!(e instanceof SnapshotMismatchError) || store === null) throw e;
      // Left by firmware with another id or capacities: it would win every restore.
      (store as { clear?: () => void }).clear?.();
      client = new DormouseClient(core, hooks, store, platform.random);
    }
    this.core = client;
    this.#deadlines = new DeadlineTimer(platform.Timer, client, platform.clock);
    this.#updateWriteThrough();
    if (durable !== null && durable.restoredFrom !== RestoredFrom.Rtc) (this as { replayed: number }).replayed = this.#replay(now);
    if (options.start ?? true) this.start();
  }

  /** Messages accepted and not yet acknowledged. */
  get pending(): number {
    return this.core.session.live;
  }

  /** The TLS session cache this client's TLS sockets use, or null (no `tls`, or no cache in the platform). */
  get tlsCache(): TlsCacheControl | null {
    return this.#tls ? this.#p.tlsCache ?? null : null;
  }

  get connected(): boolean {
    return this.core.state === ConnState.Connected;
  }

  /** The broker's host name (or dotted address) as given. */
  get host(): string {
    return this.#host;
  }

  /**
   * Connect (resolving the host name first). Done by the constructor unless
   * `start: false`. With `address` (dotted IPv4), connect there instead of
   * resolving the host name: the wake helper's address kept from an earlier wake.
   */
  start(address?: string): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.timings.startedAt = this.#p.clock();
    const dotted = address !== undefined || isDotted(this.#host);
    const go = (address: string | undefined): void => {
      if (this.#closed) return;
      if (address === undefined) {
        this.onClose?.();
        return;
      }
      this.#transport = new TcpTransport(this.#socketClass(), {
        transportOpened: (now) => {
          if (this.#tls) this.timings.tlsAt = now;
          else this.timings.tcpAt = now;
          this.core.transportOpened(now);
          this.#deadlines.sync();
        },
        receive: (chunk, now) => {
          this.core.receive(chunk, now);
          this.#deadlines.sync();
        },
        transportClosed: (now) => {
          this.core.transportClosed(now);
          this.#deadlines.sync();
        },
      }, this.#p.clock, { address, port: this.#port });
      this.core.start(this.#p.clock());
      this.#deadlines.sync();
    };
    if (dotted) go(address ?? this.#host);
    else this.#p.resolve(this.#host, go);
  }

  /**
   * Connect to `address` from now on. Before the first connection is up (an
   * attempt under way or waiting to be retried) the attempt is given up and
   * the new address tried at once: the wake helper's address hint failed and
   * a lookup found the broker again, within the same wake.
   */
  retarget(address: string): void {
    if (!isDotted(address)) throw new RangeError(`retarget: "${address}" is not a dotted IPv4 address`);
    const transport = this.#transport;
    if (this.#closed || transport === null) return;
    transport.address = address;
    const state = this.core.state;
    if (state !== ConnState.Waiting && state !== ConnState.Opening) return;
    const now = this.#p.clock();
    this.#retargeting = true;
    try {
      this.core.end(now); // an attempt not yet connected: no DISCONNECT, the session saved, the socket closed
    } finally {
      this.#retargeting = false;
    }
    this.core.start(now);
    this.#deadlines.sync();
  }

  /**
   * Accept a message. Returns its token (> 0 for QoS 1/2 and queued QoS 0,
   * 0 for QoS 0 written at once). Throws when the message cannot be taken
   * (outbox full, too large, QoS the broker refuses...): never silent.
   */
  publish(topic: string, data: string | ArrayBuffer | ArrayBufferView | number, flags?: PublishFlags): number {
    if (this.#closed) throw new Error('publish: the client is closed');
    const qos = (flags?.qos ?? flags?.quality ?? 0) as QoS;
    const payload = bytesOf(data);
    const expiry = flags?.expiry ?? 0;
    const durable = this.durable;
    if (durable !== null && qos === 2) durable.writeThrough = true; // before the core persists it
    const now = this.#p.clock();
    const token = this.core.publish(topic, payload, { qos, retain: flags?.retain ?? false, messageExpiryInterval: expiry || undefined }, now);
    this.#deadlines.sync();
    if (token < 0) {
      this.#updateWriteThrough();
      throw new Error(`publish to "${topic}" refused: ${publishErrorMessage(token)}`);
    }
    if (token > 0) {
      if (qos === 2) this.#qos2.add(token);
      else if (durable !== null) {
        durable.accepted(token, qos, flags?.retain ?? false, expiry, Math.floor(now / 1000), topic, payload);
        this.#journaled.add(token);
      }
    }
    return token;
  }

  /** Subscribe to a topic filter (QoS 0 by default, as `mqtt` does); kept in the session. */
  subscribe(topic: string, options?: { qos?: QoS; quality?: QoS } | QoS): number {
    const qos = (typeof options === 'number' ? options : options?.qos ?? options?.quality ?? 0) as QoS;
    if (this.durable !== null) this.durable.writeThrough = true; // a subscription change goes to flash whole
    const id = this.core.subscribe(topic, qos, this.#p.clock());
    this.#deadlines.sync();
    this.#updateWriteThrough();
    return id;
  }

  /** Unsubscribe (the broker may hold the filter from an earlier session); returns the packet id, 0 if not sent now. */
  unsubscribe(topic: string): number {
    if (this.durable !== null) this.durable.writeThrough = true;
    const id = this.core.unsubscribe(topic, this.#p.clock());
    this.#deadlines.sync();
    this.#updateWriteThrough();
    return id;
  }

  /**
   * DISCONNECT (the session stays on the broker), save the session, close.
   * With `drainMs`, the socket stays open until its writes are acknowledged
   * (at most drainMs), so DISCONNECT leaves before the radio stops; `done`
   * then runs (drained or not).
   */
  close(drainMs = 0, done?: (drained: boolean) => void): void {
    if (this.#closed) {
      if (done) this.#p.Timer.set(() => done(false), 0);
      return;
    }
    this.#closed = true;
    if (drainMs > 0 && this.#transport?.isOpen) this.#linger = { maxMs: drainMs, done: done ?? (() => {}) };
    else if (done) this.#p.Timer.set(() => done(false), 0);
    this.core.end(this.#p.clock());
    this.#deadlines.dispose();
    this.#durableCheckpoint();
  }

  /**
   * The session's flash cost so far: with the NVS journal, the bytes NVS
   * programmed (its byte model) and set/delete calls; with the flash log, the
   * bytes handed to the partition's write(), write() calls and blocks erased.
   */
  get flash(): { bytes: number; writes: number; erased: number; medium: 'NVS' | 'flash' } {
    const log = this.flashStore?.log;
    if (log) return { bytes: log.bytesWritten, writes: log.writes, erased: log.blocksErased, medium: 'flash' };
    return { bytes: this.durable?.flashBytes ?? 0, writes: this.durable?.flashWrites ?? 0, erased: 0, medium: 'NVS' };
  }

  #durableCheckpoint(): void {
    this.durable?.checkpoint();
    this.flashStore?.checkpoint();
  }

  #socketClass(): TcpSocketConstructor {
    const tls = this.#tls;
    if (!tls) return this.#p.TCP;
    const TLS = this.#p.TLS;
    if (!TLS) throw new Error('tls: include the dormouse TLS manifest (embedded:io/socket/tcp/tls)');
    const TCP = this.#p.TCP;
    const o = typeof tls === 'object' ? tls : {};
    const serverName = o.serverName ?? this.#host;
    const secure: TlsSocketOptions['secure'] = { serverName };
    if (o.ca) secure.certificate = o.ca;
    if (o.verify === false) secure.verify = false;
    const cache = this.#p.tlsCache;
    const timings = this.timings;
    const clock = this.#p.clock;
    // The TCP socket under TLS, timed: its first onWritable is the TCP connect, before the handshake.
    const TimedTcp = function TimedTcp(options: TcpSocketOptions) {
      const { onWritable } = options;
      let open = false;
      return new TCP({
        ...options,
        onWritable: (count: number) => {
          if (!open) {
            open = true;
            timings.tcpAt = clock();
          }
          onWritable?.(count);
        },
      });
    } as unknown as TcpSocketConstructor;
    // A constructor that returns the TLS socket: the transport constructs sockets with `new`.
    return function SecureSocket(options: TcpSocketOptions) {
      const { onError, onWritable } = options;
      // A TLS error before the handshake finished (a refused resumption, a bad record, a reset
      // mid-handshake) wipes the kept session: the next connect makes a full handshake instead
      // of offering it again. The TLS socket is first writable once its handshake is done; an
      // error after that (the broker's close_notify after DISCONNECT, seen as onError in mcsim)
      // leaves the session as it is.
      let established = false;
      const wrapped: TcpSocketOptions = cache
        ? {
            ...options,
            onWritable: (count: number) => ((established = true), onWritable?.(count)),
            onError: () => (established || cache.forget(), onError?.()),
          }
        : options;
      return new TLS({ ...wrapped, host: serverName, TCP: { io: TimedTcp }, secure });
    } as unknown as TcpSocketConstructor;
  }

  /** After a power cut: accept again what the journal holds beyond the restored base, then compact. */
  #replay(now: number): number {
    const durable = this.durable!;
    if (durable.journalLength === 0) return 0;
    const found = durable.pending(this.core.session.nextToken);
    const nowS = Math.floor(now / 1000); // after a power cut the clock may have restarted: then no time counts as gone
    let n = 0;
    for (const m of found) {
      let expiry = 0;
      if (m.expiry > 0) {
        expiry = m.expiry - Math.max(0, nowS - m.acceptedAt);
        if (expiry <= 0) {
          this.#reportLater(m.token, DROP_REASONS[DropReason.Expired]!);
          continue;
        }
      }
      const token = this.core.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain, messageExpiryInterval: expiry || undefined }, now);
      if (token < 0) this.#reportLater(m.token, `not restored after a power cut: ${publishErrorMessage(token)}`);
      else n++;
    }
    this.core.persist(now); // the replayed messages into RTC
    durable.compact(); // and into a new base; the journal is emptied
    return n;
  }

  /** Drops found while constructing: reported on the next turn, once the app has set onDrop. */
  #reportLater(token: number, reason: string): void {
    this.#p.Timer.set(() => this.onDrop?.(token, reason), 0);
  }

  #updateWriteThrough(): void {
    const durable = this.durable;
    if (durable === null) return;
    const s = this.core.session;
    let needed = this.#qos2.size > 0;
    for (let k = 0; !needed && k < s.subCount; k++) {
      // Pending subscription changes, and QoS 2 subscriptions (their incoming ids must survive a cut).
      if (s.subState(k) !== SubState.Active || (s.subOptions(k) & 3) === 2) needed = true;
    }
    if (!needed && s.incomingHeld > 0) needed = true;
    durable.writeThrough = needed;
  }

  #hooks(): ClientHooks {
    return {
      send: (bytes) => {
        this.#transport?.send(bytes);
      },
      open: () => {
        this.#transport?.open();
      },
      close: () => {
        const linger = this.#linger;
        this.#linger = null;
        if (linger !== null && this.#transport !== null) {
          this.#transport.closeWhenDrained(linger.maxMs, (fn, ms) => {
            const t = this.#p.Timer.set(fn, ms);
            return () => this.#p.Timer.clear(t);
          }, linger.done);
        } else this.#transport?.close();
      },
      message: (p: PublishPacket) => {
        const on = this.onMessage;
        if (!on) return;
        const body = p.payload.slice().buffer as ArrayBuffer;
        on.call(this, p.topic, body);
      },
      piece: (p: PublishPacket, offset: number, total: number) => {
        const on = this.onMessagePiece;
        if (!on) return false;
        on.call(this, p.topic, p.payload.slice().buffer as ArrayBuffer, offset, total);
        return true;
      },
      event: (kind, a, b) => {
        switch (kind) {
          case ClientEvent.Connected:
            this.timings.connackAt = this.#p.clock();
            this.onReady?.();
            break;
          case ClientEvent.Disconnected:
            if (!this.#closed && !this.#retargeting) this.onClose?.();
            break;
          case ClientEvent.TakenOver:
            this.onTakenOver?.(b);
            break;
          case ClientEvent.Acked:
            this.timings.lastAckAt = this.#p.clock();
            this.#completed(a);
            this.onAck?.(a, b);
            break;
          case ClientEvent.Dropped:
            if (a === 0) break; // the message being published: publish() throws for it
            this.#completed(a);
            this.onDrop?.(a, DROP_REASONS[b] ?? `reason ${b}`);
            break;
          case ClientEvent.SleepReady:
            this.#updateWriteThrough();
            this.onSleepReady?.();
            break;
          case ClientEvent.Subscribed:
          case ClientEvent.Unsubscribed:
            this.#updateWriteThrough();
            break;
        }
      },
    };
  }

  #completed(token: number): void {
    if (token <= 0) return;
    if (this.#journaled.delete(token)) this.durable?.completed(token);
    if (this.#qos2.delete(token)) this.#updateWriteThrough();
  }
}

/** A dotted IPv4 address (the form Moddable's sockets take without a lookup). */
export function isDotted(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

function bytesOf(data: string | ArrayBuffer | ArrayBufferView | number): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const s = String(data);
  const b = new Uint8Array(utf8Length(s));
  utf8Write(s, b, 0);
  return b;
}

/** A body (ArrayBuffer) as text, as `String.fromArrayBuffer` does on XS. */
export function text(body: ArrayBuffer): string {
  return utf8Read(new Uint8Array(body), 0, body.byteLength);
}
