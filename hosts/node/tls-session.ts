// Node's TLS sessions (OpenSSL's SSL_SESSION in DER, from the 'session' event
// and for tls.connect({ session })) to and from the portable record a device
// keeps in RTC memory (modules/wake/tls-session-record.ts). Only what a
// TLS 1.2 resumption by session id needs crosses: the id, the master secret,
// the cipher suite, the protocol version and the extended-master-secret flag.
// Tickets, peer certificates and the rest of OpenSSL's fields are left out,
// as a device that has only the record would have to.
//
// OpenSSL's SSL_SESSION_ASN1 (ssl/ssl_asn1.c): SEQUENCE { version INTEGER (1),
// sslVersion INTEGER, cipher OCTET STRING (2 bytes), sessionID OCTET STRING,
// masterKey OCTET STRING, [0] keyArg, [1] time, [2] timeout, [3] peer, ...,
// [13] flags } with the tagged fields explicit and optional.

import { TlsSessionFlag, TlsSessionRecord, TlsSessionStatus, type TlsSessionInput } from '../../modules/wake/tls-session-record.js';

/** OpenSSL's SSL_SESS_FLAG_EXTMS. */
const OPENSSL_FLAG_EXTMS = 1;

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(b: Uint8Array, at: number): Tlv & { next: number } {
  const tag = b[at];
  let p = at + 1;
  let len = b[p++];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3) throw new TypeError('not a TLS session: DER length');
    len = 0;
    for (let k = 0; k < n; k++) len = (len << 8) | b[p++];
  }
  if (tag === undefined || p + len > b.length) throw new TypeError('not a TLS session: truncated DER');
  return { tag, start: p, end: p + len, next: p + len };
}

function uint(b: Uint8Array, t: Tlv): number {
  let v = 0;
  for (let k = t.start; k < t.end; k++) v = v * 256 + b[k];
  return v;
}

/** The fields of a Node (OpenSSL) TLS 1.2 session, for TlsSessionRecord.save. Throws on anything else. */
export function fromNodeSession(der: Uint8Array): TlsSessionInput & { timeoutS: number } {
  const seq = readTlv(der, 0);
  if (seq.tag !== 0x30) throw new TypeError('not a TLS session: expected a DER SEQUENCE');
  const fields: Tlv[] = [];
  for (let p = seq.start; p < seq.end;) {
    const t = readTlv(der, p);
    fields.push(t);
    p = t.next;
  }
  const [version, sslVersion, cipher, id, key] = fields;
  if (!version || version.tag !== 0x02 || uint(der, version) !== 1 || !sslVersion || !cipher || !id || !key) {
    throw new TypeError('not an OpenSSL session (SSL_SESSION_ASN1 version 1)');
  }
  const protocolVersion = uint(der, sslVersion);
  if (protocolVersion !== 0x0303) throw new TypeError(`only TLS 1.2 sessions are kept (this one is 0x${protocolVersion.toString(16)})`);
  let timeoutS = 0;
  let flags = 0;
  for (const f of fields.slice(5)) {
    const inner = readTlv(der, f.start);
    if (f.tag === 0xa2) timeoutS = uint(der, inner);
    if (f.tag === 0xad && (uint(der, inner) & OPENSSL_FLAG_EXTMS) !== 0) flags |= TlsSessionFlag.ExtendedMasterSecret;
  }
  return {
    sessionId: der.slice(id.start, id.end),
    masterSecret: der.slice(key.start, key.end),
    cipherSuite: uint(der, cipher) & 0xffff,
    protocolVersion,
    flags,
    timeoutS,
  };
}

function tlv(tag: number, body: number[]): number[] {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return [tag, ...len, ...body];
}

function integer(v: number): number[] {
  const out: number[] = [];
  do {
    out.unshift(v % 256);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (out[0]! & 0x80) out.unshift(0);
  return tlv(0x02, out);
}

/**
 * A session Node accepts in tls.connect({ session }) from the record, or null
 * when the record cannot be offered to `server` at `nowS` (the record's
 * clock). `epochS` is the wall clock OpenSSL checks the session time against.
 */
export function toNodeSession(record: TlsSessionRecord, server: string, nowS: number, epochS = Math.floor(Date.now() / 1000)): Buffer | null {
  if (record.check(server, nowS) !== TlsSessionStatus.Usable) return null;
  const suite = record.cipherSuite;
  if (suite === 0) return null; // OpenSSL needs the suite; a record without it came from a host that does not keep it
  const left = record.createdS + record.lifetimeS - nowS;
  const body = [
    ...integer(1),
    ...integer(record.protocolVersion),
    ...tlv(0x04, [suite >> 8, suite & 0xff]),
    ...tlv(0x04, Array.from(record.sessionId)),
    ...tlv(0x04, Array.from(record.masterSecret)),
    // OpenSSL does not offer a session whose time + timeout has passed on the wall clock.
    ...tlv(0xa1, integer(epochS)),
    ...tlv(0xa2, integer(Math.max(1, left))),
  ];
  if ((record.flags & TlsSessionFlag.ExtendedMasterSecret) !== 0) body.push(...tlv(0xad, integer(OPENSSL_FLAG_EXTMS)));
  return Buffer.from(tlv(0x30, body));
}
