// A cache manager for Moddable's TLS that keeps the session in RTC memory, so
// the first handshake after a deep sleep is an abbreviated one.
//
// Moddable's TLS (modules/crypt/ssl/session_419.js in SDK 8.2) imports its cache
// manager as the module "ssl/cache" (ssl_cache.js: one entry, in RAM, lost in
// deep sleep) and calls, on the client side:
//   getByHost(serverName) -> { id, secret } | undefined   before ClientHello
//   saveSession(serverName, id, secret)                   after Finished (full or resumed)
//   deleteSessionID(id)                                   after a refused resumption,
//                                                         right after saving the new one
// with ArrayBuffers for id and secret; only when the socket has a server name
// and `cache` is not false. It resumes by session id only (TLS 1.2, no tickets).
// An app maps "ssl/cache" to this module in its manifest; the wake helper
// calls configure() with the RTC range (RtcLayout.tls) before the first TLS
// socket, and forget() on any TLS error.
//
// This file shares no code with Moddable's: it implements the same four calls
// over TlsSessionRecord (modules/wake/tls-session-record.ts).

import { TlsSessionRecord, TlsSessionStatus, TLS_SESSION_RECORD_BYTES } from '../../modules/wake/tls-session-record.js';
import type { RtcMemory } from './platform.js';

export interface TlsSessionCacheOptions {
  /** The RTC range the record lives in (rtcRegion(rtc, RtcLayout.tls)); without one the cache is RAM only. */
  rtc?: RtcMemory;
  /** Seconds a session is offered after it was made. Default 7200 (OpenSSL's default server cache time for TLS). */
  lifetimeS?: number;
  /** Seconds on a clock that runs through deep sleep (ESP32's RTC keeps time()). Default Date.now() / 1000. */
  now?: () => number;
}

/** What the last handshake did, for the wake trace and tests. */
export const enum TlsHandshake {
  None = 0,
  Full = 1,
  Resumed = 2,
}

export class TlsSessionCache {
  // Made on first use, not at construction: Moddable's TLS manifest preloads
  // "ssl/*", and what a preloaded module makes at load time is frozen in flash
  // (a preloaded buffer cannot be written).
  #bytes: Uint8Array | null = null;
  #record: TlsSessionRecord | null = null;
  #rtc: RtcMemory | null = null;
  #lifetimeS = 7200;
  #now: (() => number) | null = null;
  /** The session id offered by getByHost in this handshake, or null. */
  #offered: Uint8Array | null = null;
  last: TlsHandshake = TlsHandshake.None;

  /** Read the record from RTC memory (after a wake). Call before the first TLS socket. */
  configure(options: TlsSessionCacheOptions): void {
    this.#rtc = options.rtc ?? null;
    if (options.lifetimeS !== undefined) this.#lifetimeS = options.lifetimeS;
    if (options.now) this.#now = options.now;
    const record = this.#state();
    if (this.#rtc) {
      if (this.#rtc.byteLength < TLS_SESSION_RECORD_BYTES) throw new RangeError(`the TLS session record needs ${TLS_SESSION_RECORD_BYTES} bytes of RTC memory`);
      this.#rtc.read(0, record.region);
    } else {
      record.region.fill(0);
    }
    this.#offered = null;
    this.last = TlsHandshake.None;
  }

  #state(): TlsSessionRecord {
    if (this.#record === null) {
      this.#bytes = new Uint8Array(TLS_SESSION_RECORD_BYTES);
      this.#record = new TlsSessionRecord(this.#bytes);
    }
    return this.#record;
  }

  #time(): number {
    return this.#now !== null ? this.#now() : Math.floor(Date.now() / 1000);
  }

  /** The session to offer to `host`, or undefined for a full handshake. */
  getByHost(host: string | undefined): { id: ArrayBuffer; secret: ArrayBuffer } | undefined {
    this.#offered = null;
    const record = this.#state();
    if (!host || record.check(host, this.#time()) !== TlsSessionStatus.Usable) return undefined;
    const id = record.sessionId.slice();
    this.#offered = id;
    return { id: id.buffer as ArrayBuffer, secret: record.masterSecret.slice().buffer as ArrayBuffer };
  }

  /** A server-side lookup: this cache serves clients only. */
  getByID(_id: ArrayBuffer): undefined {
    return undefined;
  }

  /** The handshake finished with this session (a new one, or the offered one resumed). */
  saveSession(host: string | undefined, id: ArrayBuffer, secret: ArrayBuffer): void {
    if (!host) return;
    const sessionId = new Uint8Array(id);
    const resumed = this.#offered !== null && sameBytes(this.#offered, sessionId);
    this.last = resumed ? TlsHandshake.Resumed : TlsHandshake.Full;
    this.#offered = null;
    if (sessionId.length === 0 || sessionId.length > 32 || secret.byteLength !== 48) {
      // A server that gives no id cannot resume it: keep nothing.
      this.forget();
      return;
    }
    // A resumed session keeps its first time: the server's cache counts from then.
    const record = this.#state();
    const created = resumed ? record.createdS : this.#time();
    record.save(host, { sessionId, masterSecret: new Uint8Array(secret) }, created, this.#lifetimeS);
    this.#store();
  }

  /** The server refused to resume `id` (called after the new session was saved): forget it only if still held. */
  deleteSessionID(id: ArrayBuffer): void {
    if (this.#state().holds(new Uint8Array(id))) this.forget();
  }

  /** Wipe the session, secret included (after any TLS error). */
  forget(): void {
    this.#state().forget();
    this.#offered = null;
    this.#store();
  }

  #store(): void {
    if (this.#rtc !== null && this.#bytes !== null) this.#rtc.write(0, this.#bytes);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

// What Moddable's TLS imports as "ssl/cache". Its manifest preloads "ssl/*", and
// every object a preloaded module makes at load time (this one and its private
// fields included) is frozen in flash: an instance made here would throw on
// configure() (seen in mcsim). So the instance is made at run time, on first
// use, and kept on globalThis (writable at run time) under a registered symbol.
const KEY = Symbol.for('dormouse.tlsSessionCache');
type Holder = { [KEY]?: TlsSessionCache };
function instance(): TlsSessionCache {
  const g = globalThis as Holder;
  return (g[KEY] ??= new TlsSessionCache());
}

const cache = {
  configure: (options: TlsSessionCacheOptions): void => instance().configure(options),
  getByHost: (host: string | undefined) => instance().getByHost(host),
  getByID: (id: ArrayBuffer) => instance().getByID(id),
  saveSession: (host: string | undefined, id: ArrayBuffer, secret: ArrayBuffer): void => instance().saveSession(host, id, secret),
  deleteSessionID: (id: ArrayBuffer): void => instance().deleteSessionID(id),
  forget: (): void => instance().forget(),
  /** What the last handshake did. */
  get last(): TlsHandshake {
    return instance().last;
  },
};
export default cache;
