// A TLS 1.2 session kept across deep sleep: what a client needs to offer an
// abbreviated handshake (RFC 5246 7.3: ClientHello with the session id; both
// sides derive new keys from the cached master secret, so no certificate and
// no key exchange cross the air). It lives in a region of bytes the caller
// gives (RTC memory on an ESP32: kept through deep sleep, lost on power-off),
// fixed in layout and size so it can sit at a fixed offset next to others.
//
// Layout (little-endian), TLS_SESSION_RECORD_BYTES in all:
//    0 u32  magic "DTS" + format 1
//    4 u32  FNV-1a hash of the server name (the name itself is not kept)
//    8 u32  created, seconds on the caller's clock
//   12 u32  lifetime, seconds (the record is not offered after created + lifetime)
//   16 u16  cipher suite (IANA number; 0 = not known, the host re-derives it)
//   18 u16  protocol version (0x0303 = TLS 1.2)
//   20 u8   session id length (1..32)
//   21 u8   flags (bit 0: extended master secret, RFC 7627)
//   22 u16  reserved (0)
//   24      session id, 32 bytes (zero padded)
//   56      master secret, 48 bytes
//  104 u32  CRC-32 of bytes 0..103
//
// A record that fails its CRC, belongs to another server, has expired or
// whose clock ran backwards is not offered: the caller does a full handshake.

import { crc32 } from '../session/crc32.js';

export const TLS_SESSION_RECORD_BYTES = 108;
const MAGIC = 0x01535444; // "DTS" + format 1
const O_SERVER = 4;
const O_CREATED = 8;
const O_LIFETIME = 12;
const O_SUITE = 16;
const O_VERSION = 18;
const O_ID_LEN = 20;
const O_FLAGS = 21;
const O_ID = 24;
const O_SECRET = 56;
const O_CRC = 104;
export const TLS_SESSION_ID_MAX = 32;
export const TLS_MASTER_SECRET_BYTES = 48;

/** Bits of the flags byte. */
export const enum TlsSessionFlag {
  /** The session was made with the extended master secret (RFC 7627); a resumption must use it too. */
  ExtendedMasterSecret = 1,
}

/** Why `check` will not offer the record. */
export const enum TlsSessionStatus {
  Usable = 0,
  Empty = 1,
  Corrupt = 2,
  OtherServer = 3,
  Expired = 4,
}

/** FNV-1a over the name's UTF-16 code units, ASCII lower-cased (host names compare without case). */
export function serverNameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < name.length; k++) {
    let c = name.charCodeAt(k);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    h = Math.imul(h ^ (c & 0xff), 0x01000193) >>> 0;
    h = Math.imul(h ^ (c >>> 8), 0x01000193) >>> 0;
  }
  return h;
}

export interface TlsSessionInput {
  sessionId: Uint8Array;
  masterSecret: Uint8Array;
  cipherSuite?: number;
  protocolVersion?: number;
  flags?: number;
}

/** One TLS session in a caller-given region of at least TLS_SESSION_RECORD_BYTES. */
export class TlsSessionRecord {
  readonly region: Uint8Array;
  #view: DataView;

  constructor(region: Uint8Array) {
    if (!(region instanceof Uint8Array) || region.length < TLS_SESSION_RECORD_BYTES) {
      throw new RangeError(`TlsSessionRecord needs a region of at least ${TLS_SESSION_RECORD_BYTES} bytes`);
    }
    this.region = region;
    this.#view = new DataView(region.buffer, region.byteOffset, TLS_SESSION_RECORD_BYTES);
  }

  /** Keep a session for `server`, made at `nowS`, offered for `lifetimeS` seconds. */
  save(server: string, s: TlsSessionInput, nowS: number, lifetimeS: number): void {
    const idLen = s.sessionId.length;
    if (idLen < 1 || idLen > TLS_SESSION_ID_MAX) throw new RangeError('a TLS session id is 1 to 32 bytes (an empty one cannot be resumed)');
    if (s.masterSecret.length !== TLS_MASTER_SECRET_BYTES) throw new RangeError('a TLS 1.2 master secret is 48 bytes');
    const v = this.#view;
    const r = this.region;
    r.fill(0, 0, TLS_SESSION_RECORD_BYTES);
    v.setUint32(0, MAGIC, true);
    v.setUint32(O_SERVER, serverNameHash(server), true);
    v.setUint32(O_CREATED, nowS >>> 0, true);
    v.setUint32(O_LIFETIME, lifetimeS >>> 0, true);
    v.setUint16(O_SUITE, s.cipherSuite ?? 0, true);
    v.setUint16(O_VERSION, s.protocolVersion ?? 0x0303, true);
    r[O_ID_LEN] = idLen;
    r[O_FLAGS] = s.flags ?? 0;
    r.set(s.sessionId, O_ID);
    r.set(s.masterSecret, O_SECRET);
    v.setUint32(O_CRC, crc32(r, 0, O_CRC), true);
  }

  /** Can the record be offered to `server` at `nowS`? */
  check(server: string, nowS: number): TlsSessionStatus {
    const v = this.#view;
    if (v.getUint32(0, true) !== MAGIC) return TlsSessionStatus.Empty;
    if (v.getUint32(O_CRC, true) !== crc32(this.region, 0, O_CRC)) return TlsSessionStatus.Corrupt;
    const idLen = this.region[O_ID_LEN];
    if (idLen < 1 || idLen > TLS_SESSION_ID_MAX) return TlsSessionStatus.Corrupt;
    if (v.getUint32(O_SERVER, true) !== serverNameHash(server)) return TlsSessionStatus.OtherServer;
    const created = v.getUint32(O_CREATED, true);
    if (nowS < created || nowS - created >= v.getUint32(O_LIFETIME, true)) return TlsSessionStatus.Expired;
    return TlsSessionStatus.Usable;
  }

  /** Wipe it (secret included): after a TLS error, a refused resumption or on request. */
  forget(): void {
    this.region.fill(0, 0, TLS_SESSION_RECORD_BYTES);
  }

  get cipherSuite(): number {
    return this.#view.getUint16(O_SUITE, true);
  }
  get protocolVersion(): number {
    return this.#view.getUint16(O_VERSION, true);
  }
  get flags(): number {
    return this.region[O_FLAGS];
  }
  get createdS(): number {
    return this.#view.getUint32(O_CREATED, true);
  }
  get lifetimeS(): number {
    return this.#view.getUint32(O_LIFETIME, true);
  }
  /** The session id, as a view of the region (valid until the record changes). */
  get sessionId(): Uint8Array {
    return this.region.subarray(O_ID, O_ID + this.region[O_ID_LEN]);
  }
  /** The master secret, as a view of the region. */
  get masterSecret(): Uint8Array {
    return this.region.subarray(O_SECRET, O_SECRET + TLS_MASTER_SECRET_BYTES);
  }
  /** Is `id` the session id held (whatever its validity)? */
  holds(id: Uint8Array): boolean {
    const r = this.region;
    if (id.length !== r[O_ID_LEN]) return false;
    for (let k = 0; k < id.length; k++) if (r[O_ID + k] !== id[k]) return false;
    return true;
  }
}
