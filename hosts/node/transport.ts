// One byte-stream shape over mqtt:// (TCP), mqtts:// (TLS), ws:// and wss://.
// The core is sans-I/O: it hands us bytes to send and wants bytes, "opened"
// and "closed" back. Nothing here knows MQTT except the WebSocket rules of
// MQTT 5 section 6 (subprotocol "mqtt", binary frames only).

import net from 'node:net';
import tls from 'node:tls';
import { constants as cryptoConstants } from 'node:crypto';
import WebSocket from 'ws';

const SSL_OP_NO_TICKET = cryptoConstants.SSL_OP_NO_TICKET;

export interface TransportHandlers {
  // Each handler gets the transport it comes from, so one handlers object can
  // serve a client's successive transports and tell a stale one apart.
  /** The connection (and TLS handshake / WebSocket upgrade) is complete. */
  onOpen(t: Transport): void;
  /**
   * Bytes arrived: chunk[0 .. length), or the whole chunk when length is
   * undefined. Valid only during the call (TCP reads into one buffer, reused,
   * and hands it over whole with the length read: no view per read).
   * Not ReadWait.None: this was a burst after which the broker waits for
   * nothing of ours (see nextReadMayWait); the next read may wait a moment so that it finds more.
   */
  onData(chunk: Uint8Array, t: Transport, length?: number): ReadWait | void;
  /**
   * Called exactly once per openTransport() call, including after a local
   * close()/destroy() (err undefined then) and after a failed connect.
   */
  onClose(err: Error | undefined, t: Transport): void;
  /** A write returned false earlier and the buffer has drained. */
  onDrain?(t: Transport): void;
  /** TLS: the server gave a session this client can offer next time (OpenSSL's DER, Node's 'session' event). */
  onTlsSession?(session: Uint8Array, t: Transport): void;
}

export interface TransportOptions {
  /** PEM (or DER in a Buffer) CA certificate(s) to trust instead of the system store. */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  /** Client certificate and key (PEM) for mutual TLS. */
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  passphrase?: string;
  /** Default true. false accepts any server certificate (same as insecure). */
  rejectUnauthorized?: boolean;
  /** Skip server certificate verification (mosquitto_pub --insecure). Off by default. */
  insecure?: boolean;
  /** SNI and the name checked against the certificate; defaults to the URL host unless it is an IP address. */
  servername?: string;
  /** Give up if not open within this many ms (default 30 000; 0 = no limit). */
  connectTimeoutMs?: number;
  /** Bytes buffered before write() returns false (default 16 KiB). */
  highWaterMark?: number;
  /** Extra HTTP headers for the WebSocket upgrade request. */
  headers?: Record<string, string>;
  /** TLS: a session to offer for an abbreviated handshake (Node's DER, from onTlsSession or hosts/node/tls-session.ts). */
  tlsSession?: Uint8Array;
  /**
   * TLS: resume the way a device does (Moddable's TLS): TLS 1.2, by session id
   * only (no tickets, so the server keeps the session in its cache), and a
   * resumed session is accepted without the server's certificate (it was
   * checked in the full handshake that made the session; only that server
   * holds its master secret). For sessions rebuilt from an RTC record.
   */
  tlsSessionIdOnly?: boolean;
}

const TRANSPORT_OPTION_KEYS = [
  'ca', 'cert', 'key', 'passphrase', 'rejectUnauthorized', 'insecure', 'servername', 'connectTimeoutMs', 'highWaterMark', 'headers',
  'tlsSession', 'tlsSessionIdOnly',
] as const satisfies ReadonlyArray<keyof TransportOptions>;
// Fails to compile when TransportOptions gains a key the list above lacks.
const EVERY_KEY_LISTED: Exclude<keyof TransportOptions, (typeof TRANSPORT_OPTION_KEYS)[number]> extends never ? true : never = true;
void EVERY_KEY_LISTED;
const NO_TRANSPORT_OPTIONS: TransportOptions = Object.freeze({});

/**
 * Only the transport's part of a larger options object (one shared empty
 * object when none is set), for a client that keeps it for reconnects: the
 * rest of the caller's options (will payload, properties, ...) need not stay alive.
 */
export function pickTransportOptions(options: TransportOptions): TransportOptions {
  let out: Record<string, unknown> | null = null;
  for (const k of TRANSPORT_OPTION_KEYS) {
    if (options[k] !== undefined) (out ??= {})[k] = options[k];
  }
  return out ?? NO_TRANSPORT_OPTIONS;
}

export interface Transport {
  /** Queue bytes (copied). false: buffer is full, wait for onDrain before writing more. */
  write(bytes: Uint8Array): boolean;
  /** Flush what is queued, then close (FIN / WebSocket close 1000). */
  close(): void;
  /** Close now, dropping anything queued. */
  destroy(): void;
  /** TLS: the handshake resumed an earlier session (known once open). */
  readonly tlsResumed?: boolean;
}

export type Scheme = 'mqtt' | 'mqtts' | 'ws' | 'wss';

export interface BrokerAddress {
  scheme: Scheme;
  host: string;
  port: number;
  /** Path for ws/wss (default /mqtt); '' for TCP. */
  path: string;
  secure: boolean;
  websocket: boolean;
}

const DEFAULT_PORTS: Readonly<Record<Scheme, number>> = Object.freeze({ mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 });
const SCHEME_ALIASES: Readonly<Record<string, Scheme>> = Object.freeze({
  mqtt: 'mqtt', tcp: 'mqtt', mqtts: 'mqtts', ssl: 'mqtts', tls: 'mqtts', ws: 'ws', wss: 'wss',
});

/** Parses mqtt://, mqtts://, ws://, wss:// (and the aliases tcp, ssl, tls). Throws on anything else. */
export function parseBrokerUrl(url: string): BrokerAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`not a broker URL: ${JSON.stringify(url)} (expected mqtt://host[:port], mqtts://, ws:// or wss://)`);
  }
  const scheme = SCHEME_ALIASES[u.protocol.slice(0, -1).toLowerCase()];
  if (!scheme) throw new TypeError(`unsupported scheme ${JSON.stringify(u.protocol)} in ${url} (use mqtt, mqtts, ws or wss)`);
  if (!u.hostname) throw new TypeError(`no host in ${url}`);
  // URL keeps the brackets of IPv6 literals; net.connect wants them gone.
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port === '' ? DEFAULT_PORTS[scheme] : Number(u.port);
  const websocket = scheme === 'ws' || scheme === 'wss';
  let p = '';
  if (websocket) p = (u.pathname === '/' || u.pathname === '' ? '/mqtt' : u.pathname) + u.search;
  return { scheme, host, port, path: p, secure: scheme === 'mqtts' || scheme === 'wss', websocket };
}

function tlsOptions(addr: BrokerAddress, opts: TransportOptions): tls.ConnectionOptions {
  const verify = !(opts.insecure === true || opts.rejectUnauthorized === false);
  const o: tls.ConnectionOptions = { rejectUnauthorized: verify };
  if (opts.ca !== undefined) o.ca = opts.ca as tls.ConnectionOptions['ca'];
  if (opts.cert !== undefined) o.cert = opts.cert as tls.ConnectionOptions['cert'];
  if (opts.key !== undefined) o.key = opts.key as tls.ConnectionOptions['key'];
  if (opts.passphrase !== undefined) o.passphrase = opts.passphrase;
  // RFC 6066 forbids an IP address as SNI; Node warns if we pass one. The
  // certificate check still runs against the host (IP SANs work).
  const sni = opts.servername ?? (net.isIP(addr.host) ? undefined : addr.host);
  if (sni !== undefined) o.servername = sni;
  if (opts.tlsSession !== undefined) o.session = Buffer.from(opts.tlsSession.buffer, opts.tlsSession.byteOffset, opts.tlsSession.byteLength);
  if (opts.tlsSessionIdOnly) {
    o.maxVersion = 'TLSv1.2';
    o.secureOptions = SSL_OP_NO_TICKET;
    // Verified in SocketTransport.#onConnect: a resumed session has no certificate to check.
    o.rejectUnauthorized = false;
  }
  return o;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * Opens a connection; handlers fire asynchronously (never from inside this call).
 * Throws only on a bad URL.
 */
export function openTransport(url: string, opts: TransportOptions, handlers: TransportHandlers): Transport {
  const addr = parseBrokerUrl(url);
  return addr.websocket ? openWebSocket(addr, opts, handlers) : new SocketTransport(addr, opts, handlers);
}

// Node's streams preset their listener table with these events (a literal, so
// V8 keeps them in the object); a 'connect' listener is a ninth property, which
// V8 puts in a separate property array of about 80 bytes for the socket's life.
const STREAM_EVENTS = 'close,data,drain,end,error,finish,prefinish,readable';

/**
 * Give a new socket's listener table a slot for 'connect' as well, before any
 * listener of ours is added. Only when the table holds exactly the events above
 * (as in Node 20, checked); on any other Node it is left as it is.
 */
function withConnectSlot(socket: net.Socket): void {
  const s = socket as unknown as { _events?: Record<string, unknown> };
  const e = s._events;
  if (e === undefined || Object.keys(e).sort().join(',') !== STREAM_EVENTS) return;
  s._events = {
    __proto__: Object.getPrototypeOf(e),
    close: e.close,
    data: e.data,
    drain: e.drain,
    end: e.end,
    error: e.error,
    finish: e.finish,
    prefinish: e.prefinish,
    readable: e.readable,
    connect: undefined,
  } as Record<string, unknown>;
}

/** The socket's transport, for the listeners (EventEmitter calls them with the socket as `this`). */
const OWNER: unique symbol = Symbol('dormouse.transport');

interface OwnedSocket extends net.Socket {
  [OWNER]: SocketTransport;
}

/**
 * TCP or TLS. One object per connection and no closures: the socket's
 * listeners are static methods that reach the transport through the socket,
 * so an idle connection costs the socket and this.
 */
class SocketTransport implements Transport {
  readonly #socket: OwnedSocket;
  readonly #h: TransportHandlers;
  /** onClose has been called: nothing more reaches the handlers. */
  #done = false;
  /** The first error, handed to onClose. */
  #failure: Error | undefined = undefined;
  /** The connect timeout, until the connection opens or closes. */
  #timer: NodeJS.Timeout | undefined = undefined;
  /** The staging buffer lent for this tick (see flushStaged), and the bytes in it. */
  #staged: Uint8Array | null = null;
  #stagedLen = 0;
  /** TLS: the handshake resumed a session. */
  #resumed = false;
  /** The connection opened (handshake done and checked). */
  #opened = false;
  /** TLS: a session given before the connection opened. */
  #pendingSession: Buffer | null = null;
  /** TLS with tlsSessionIdOnly: check a full handshake's certificate here. */
  #verifyFullHandshake = false;
  /** The timer of reading's wait after a burst (see #onRead): made at the first wait, re-armed (refresh) for the next. */
  #coalesceTimer: NodeJS.Timeout | undefined = undefined;
  /** How long the next wait lasts (ms), and whether this read came after one. */
  #waitMs = READ_COALESCE_MS;
  #waitedLast = false;

  constructor(addr: BrokerAddress, opts: TransportOptions, h: TransportHandlers) {
    this.#h = h;
    // Node passes highWaterMark on to the stream (net and tls both); @types/node omits it.
    const stream = { highWaterMark: opts.highWaterMark ?? 16 * 1024, host: addr.host, port: addr.port };
    // Plain TCP reads straight into one buffer shared by every connection
    // (Node's `onread`): no buffer allocated per read and no trip through the
    // Readable stream ('data' events). A read is handed on and used up before
    // the next one can happen, so sharing it is safe. TLS keeps its stream.
    const socket = (
      addr.secure
        ? tls.connect({ ...stream, ...tlsOptions(addr, opts) })
        : net.connect({ ...stream, onread: { buffer: readBuffer(), callback: SocketTransport.#onRead } })
    ) as OwnedSocket;
    this.#socket = socket;
    socket[OWNER] = this;
    socket.setNoDelay(true);
    const ms = opts.connectTimeoutMs ?? 30000;
    // The timer's arguments carry what the message needs, so nothing of the address outlives the connect.
    if (ms > 0) this.#timer = setTimeout(SocketTransport.#onTimeout, ms, this, `${addr.host}:${addr.port}`, ms);
    if (!addr.secure) withConnectSlot(socket);
    // 'on', not 'once': both events come once per socket, and each once-wrapper
    // costs a bound function and a state object for as long as it waits.
    socket.on(addr.secure ? 'secureConnect' : 'connect', SocketTransport.#onConnect);
    if (addr.secure) socket.on('data', SocketTransport.#onData);
    if (addr.secure && h.onTlsSession) socket.on('session', SocketTransport.#onSession);
    // Verification the TLS layer was told to skip (tlsSessionIdOnly) happens in #onConnect.
    if (addr.secure && opts.tlsSessionIdOnly && !(opts.insecure === true || opts.rejectUnauthorized === false)) this.#verifyFullHandshake = true;
    socket.on('drain', SocketTransport.#onDrain);
    socket.on('error', SocketTransport.#onError);
    socket.on('close', SocketTransport.#onClose);
  }

  write(bytes: Uint8Array): boolean {
    const socket = this.#socket;
    if (this.#done || socket.destroyed) return false;
    const n = bytes.byteLength;
    if (n > STAGING_BYTES) {
      this.flush();
      // Buffer.from(view) copies: the caller's view is valid only during this call.
      return socket.write(Buffer.from(bytes));
    }
    if (this.#staged && this.#stagedLen + n > STAGING_BYTES) this.flush();
    let staged = this.#staged;
    if (!staged) {
      staged = this.#staged = takeStaging();
      flushQueue.push(this);
      if (!flushScheduled && !holding) {
        flushScheduled = true;
        process.nextTick(flushStaged);
      }
    }
    staged.set(bytes, this.#stagedLen);
    this.#stagedLen += n;
    return !socket.writableNeedDrain;
  }

  close(): void {
    this.flush();
    this.#socket.end();
  }

  destroy(): void {
    this.#stagedLen = 0;
    this.flush();
    this.#socket.destroy();
  }

  /** Writes what is staged as one socket write and returns the staging buffer. */
  flush(): void {
    const buf = this.#staged;
    if (!buf) return;
    const n = this.#stagedLen;
    this.#staged = null;
    this.#stagedLen = 0;
    const socket = this.#socket;
    if (n > 0 && !this.#done && !socket.destroyed) {
      const out = Buffer.allocUnsafe(n);
      out.set(buf.subarray(0, n));
      socket.write(out);
    }
    releaseStaging(buf);
  }

  static #onTimeout(t: SocketTransport, target: string, ms: number): void {
    t.#timer = undefined;
    t.#failure = new Error(`connect to ${target} timed out after ${ms} ms`);
    t.#socket.destroy();
  }

  static #onConnect(this: OwnedSocket): void {
    const t = this[OWNER];
    t.#stopTimer();
    if (this instanceof tls.TLSSocket) {
      t.#resumed = this.isSessionReused();
      // A full handshake must pass the check Node would have made (chain and
      // host name: authorizationError covers both); a resumed one proved the
      // server holds the secret of a handshake that passed it.
      if (t.#verifyFullHandshake && !t.#resumed && !this.authorized) {
        t.#failure = Object.assign(new Error(`TLS: ${this.authorizationError}`), { code: String(this.authorizationError) });
        this.destroy();
        return;
      }
    }
    t.#opened = true;
    if (!t.#done) t.#h.onOpen(t);
    const session = t.#pendingSession;
    t.#pendingSession = null;
    if (session && !t.#done) t.#h.onTlsSession?.(session, t);
  }

  static #onSession(this: OwnedSocket, session: Buffer): void {
    const t = this[OWNER];
    // TLS 1.2 gives the session during the handshake, before the certificate
    // check: it is held until the connection opens (so a session from a
    // handshake that failed the check is never handed out). TLS 1.3 sends it after.
    if (!t.#opened) t.#pendingSession = session;
    else if (!t.#done) t.#h.onTlsSession?.(session, t);
  }

  get tlsResumed(): boolean {
    return this.#resumed;
  }

  static #onData(this: OwnedSocket, chunk: Buffer): void {
    const t = this[OWNER];
    if (!t.#done) t.#h.onData(chunk, t);
  }

  static #onRead(this: OwnedSocket, n: number, buf: Uint8Array): boolean {
    const t = this[OWNER];
    const waited = t.#waitedLast;
    t.#waitedLast = false;
    // The read buffer and the length read: no view per read.
    const wait = t.#done ? ReadWait.None : t.#h.onData(buf, t, n);
    if (!wait) {
      t.#waitMs = READ_COALESCE_MS;
      return true;
    }
    // Read coalescing. A stream the broker sends without waiting for us (QoS
    // 0, or a queued backlog it sends past its in-flight limit) arrives one
    // small write of the broker's at a time; a reader faster than the broker
    // wakes and reads for every few messages, and each wake-up costs both
    // processes more than the messages. After such a burst (the handler
    // decides: nextReadMayWait), the next read waits (returning false pauses
    // the socket) and finds a socket-full. A lone message, or a read whose
    // answer a broker waits for, is followed by an immediate read as before:
    // no latency added when the link is quiet or a round trip waits on us.
    // While unanswered bursts follow each other the wait adapts to the stream: doubled
    // (up to READ_COALESCE_MAX_MS) while a read after a wait fills less than
    // half the read buffer, halved once one fills three quarters of it; back
    // to READ_COALESCE_MS after any read that is not a burst. So a fast stream
    // is read a socket-full at a time, and a slower one waits no longer than
    // it takes to fill. After an answered burst the wait stays short: the
    // broker may send more as our answers reach it, and a long wait would
    // leave it idle.
    let ms = wait === ReadWait.Adaptive ? t.#waitMs : READ_COALESCE_MS;
    if (waited && wait === ReadWait.Adaptive) {
      const size = buf.byteLength;
      if (n * 2 < size) ms = Math.min(READ_COALESCE_MAX_MS, ms * 2);
      else if (n * 4 >= size * 3) ms = Math.max(READ_COALESCE_MS, ms >> 1);
    }
    t.#waitedLast = true;
    // One Timeout per connection, re-armed (a new one only when the wait changes).
    const timer = t.#coalesceTimer;
    if (timer === undefined || ms !== t.#waitMs) {
      if (timer !== undefined) clearTimeout(timer);
      t.#waitMs = ms;
      t.#coalesceTimer = setTimeout(SocketTransport.#resume, ms, t);
    } else {
      timer.refresh();
    }
    return false;
  }

  static #resume(t: SocketTransport): void {
    if (!t.#done && !t.#socket.destroyed) t.#socket.resume();
  }

  static #onDrain(this: OwnedSocket): void {
    const t = this[OWNER];
    if (!t.#done && t.#h.onDrain) t.#h.onDrain(t);
  }

  static #onError(this: OwnedSocket, e: Error): void {
    const t = this[OWNER];
    t.#failure ??= e;
  }

  static #onClose(this: OwnedSocket): void {
    const t = this[OWNER];
    t.#stopTimer();
    if (t.#coalesceTimer) clearTimeout(t.#coalesceTimer);
    t.#coalesceTimer = undefined;
    if (t.#done) return;
    t.#done = true;
    t.#h.onClose(t.#failure, t);
  }

  #stopTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

// Writes are batched per tick: the core flushes once per call, and a burst
// of publishes (or the acks for one chunk of input) would otherwise cost a
// syscall each with setNoDelay. The bytes are copied into a staging buffer
// lent for the tick (the caller's view is valid only during write()) and go
// out as one socket write from process.nextTick (what a host writes while it
// handles received bytes: from setImmediate, see releaseWrites). The
// transports with staged bytes wait in one queue, flushed by one callback,
// so batching needs no function per connection.
const flushQueue: SocketTransport[] = [];
let flushScheduled = false;
let holding = false;

function flushStaged(): void {
  // A flush may lead to more writes in this same pass; they join the queue and are flushed here too.
  for (let i = 0; i < flushQueue.length; i++) flushQueue[i]!.flush();
  flushQueue.length = 0;
  flushScheduled = false;
}

/**
 * While a host hands received bytes to its core: what the core answers (a
 * PUBREL, PUBACKs) is staged but not yet scheduled. See releaseWrites.
 */
export function holdWrites(): void {
  holding = true;
}

/**
 * Ends holdWrites. The staged answers go out from setImmediate, scheduled from
 * a microtask: after the callbacks the host settles for the acks in that
 * input (its own microtask, queued earlier) and after any setImmediate those
 * callbacks queue, typically the next publishes. So the answer to a PUBREC
 * and the publishes its PUBCOMP made room for leave in one socket write,
 * where flushing at nextTick made two (measured: 0.77 -> 0.45 writes per QoS 2
 * message with the bench driver). They still leave in the same turn of the
 * event loop.
 */
export function releaseWrites(): void {
  holding = false;
  if (flushQueue.length > 0 && !flushScheduled) {
    flushScheduled = true;
    queueMicrotask(flushFromCheckPhase);
  }
}

function flushFromCheckPhase(): void {
  setImmediate(flushStaged);
}

/** How long the next read waits after a burst (see SocketTransport's #onRead and nextReadMayWait). */
const READ_COALESCE_MS = 1;
/** The longest a read waits, while a stream keeps coming faster than the waits fill the read buffer. */
const READ_COALESCE_MAX_MS = 8;

/** Messages in one unanswered read that make it a burst, after which the next read may wait a moment. */
export const BURST_PACKETS = 8;
/**
 * Answered packets in one read that show the broker sends without waiting
 * for our answers, and the answered bursts that may then be followed by a wait.
 */
export const ANSWERED_WAIT_EVIDENCE = 64;
export const ANSWERED_WAITS = 32;

/** What may follow a read (see nextReadMayWait). */
export const enum ReadWait {
  /** Read again as soon as there is data. */
  None = 0,
  /** Wait READ_COALESCE_MS (after an answered burst). */
  Short = 1,
  /** Wait, longer while bursts keep coming (after a burst that needed no answer). */
  Adaptive = 2,
}

/** A connection's read-coalescing state (kept by the host, one number). */
export interface ReadCoalescing {
  /** Answered bursts that may still be followed by a wait. */
  answeredWaits: number;
}

/**
 * Whether the read after this one may wait (the host returns it from onData). `burst`: the messages and PUBRELs this read brought;
 * `answered`: something was written in answer (PUBACKs, PUBRECs, PUBCOMPs);
 * `inflight`: our own messages waiting for acks.
 *
 * - With our messages in flight, never: their acks would wait.
 * - A burst the broker waits for nothing on (QoS 0, no answer written) of
 *   BURST_PACKETS messages or more: always. A lone message: never.
 * - A burst we answered: only while the broker shows that it sends without
 *   waiting for our answers, as mosquitto 2.0 does when it drains a queued
 *   backlog (MQTT.js reads 1,771 messages in one 64 KiB read there, far past
 *   its 20-message in-flight limit). The answers leave in this turn of the
 *   event loop, the broker fills the socket meanwhile, and the next read takes
 *   a socket-full instead of the few messages the broker wrote since the last.
 *   A read of ANSWERED_WAIT_EVIDENCE answered packets is that evidence and
 *   allows the next ANSWERED_WAITS waits, after any answered read (mosquitto,
 *   fed our acks, often writes a packet at a time, and a faster reader then
 *   reads one at a time: the wait is what gathers them). A broker that keeps a window of
 *   unacknowledged messages (mosquitto's live streams: 20) never sends that
 *   many in one go, so its stream never waits: there each wait would stall it
 *   for the whole window.
 */
export function nextReadMayWait(state: ReadCoalescing, burst: number, answered: boolean, inflight: number): ReadWait {
  if (answered && burst >= ANSWERED_WAIT_EVIDENCE) state.answeredWaits = ANSWERED_WAITS;
  if (inflight !== 0) return ReadWait.None;
  if (!answered) return burst >= BURST_PACKETS ? ReadWait.Adaptive : ReadWait.None;
  if (burst === 0 || state.answeredWaits === 0) return ReadWait.None;
  state.answeredWaits--;
  return ReadWait.Short;
}

let sharedReadBuffer: Uint8Array | null = null;

/** The read buffer of every plain TCP connection in the process (64 KiB, as Node's own reads). */
function readBuffer(): Uint8Array {
  return (sharedReadBuffer ??= new Uint8Array(64 * 1024));
}

// Staging buffers for the per-tick write batching, lent for one tick and
// returned: an idle connection holds none, and a process with many
// connections needs only as many as write within the same tick.
const STAGING_BYTES = 16 * 1024;
const stagingPool: Uint8Array[] = [];

function takeStaging(): Uint8Array {
  return stagingPool.pop() ?? new Uint8Array(STAGING_BYTES);
}

function releaseStaging(buf: Uint8Array): void {
  if (stagingPool.length < 8) stagingPool.push(buf);
}

function openWebSocket(addr: BrokerAddress, opts: TransportOptions, h: TransportHandlers): Transport {
  const hwm = opts.highWaterMark ?? 16 * 1024;
  const host = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  const target = `${addr.scheme}://${host}:${addr.port}${addr.path}`;
  const wsOpts: WebSocket.ClientOptions = {
    perMessageDeflate: false,
    headers: opts.headers,
    handshakeTimeout: opts.connectTimeoutMs === 0 ? undefined : (opts.connectTimeoutMs ?? 30000),
  };
  if (addr.secure) Object.assign(wsOpts, tlsOptions(addr, opts));
  const ws = new WebSocket(target, 'mqtt', wsOpts);
  ws.binaryType = 'nodebuffer';
  let done = false;
  let failure: Error | undefined;
  // ws has no write-side back-pressure signal of its own: count bytes handed
  // to send() whose callback (written to the socket) has not fired yet.
  let pending = 0;
  let full = false;

  ws.once('open', () => { if (!done) h.onOpen(t); });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (done) return;
    if (!isBinary) {
      // [MQTT-6.0.0-1] a text frame means the peer is not speaking MQTT: close.
      failure ??= new Error('received a WebSocket text frame; MQTT needs binary frames');
      ws.terminate();
      return;
    }
    h.onData(data, t);
  });
  ws.on('error', (e) => { failure ??= e; });
  ws.once('close', () => {
    if (done) return;
    done = true;
    h.onClose(failure, t);
  });

  const t: Transport = {
    write(bytes) {
      if (done || ws.readyState !== WebSocket.OPEN) return false;
      const n = bytes.byteLength;
      pending += n;
      ws.send(Buffer.from(bytes), { binary: true }, (err) => {
        pending -= n;
        if (err) { failure ??= asError(err); return; }
        if (full && pending < hwm) {
          full = false;
          if (!done && h.onDrain) h.onDrain(t);
        }
      });
      if (pending >= hwm) full = true;
      return !full;
    },
    close() {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
    },
    destroy() { ws.terminate(); },
  };
  return t;
}
