// A crash-consistent image of the whole session: written in turn to two slots
// of a SnapshotStore, each image carrying a sequence number and a CRC-32, so a
// write cut at any byte leaves the other slot's image intact and restorable.
//
// Layout (little-endian):
//   0  u32  magic "DMS" + format version
//   4  u32  sequence number (the newer valid image wins)
//   8  u32  image length in bytes, CRC included
//  12  u32  configuration hash (protocol version and capacities)
//  16  u8   client id length, then the client id bytes
//      f64  session clock (ms), u32 next token, u16 next packet id, u16 flags
//      u16  server receive maximum, u8 maximum QoS, u8 retain available,
//      u32  server maximum packet size, u16 server keep alive, u16 incoming id runs
//      u16  records, u16 incoming ids, u16 subscriptions, u16 subscription bytes, u16 arena bytes
//      the records (6 × u32 each), the arena bytes, incoming ids (u16 each),
//      incoming id runs (u32 each: first id << 16 | count; none in images
//      before they existed, where this count was a reserved 0), subscriptions (2 × u32 + u16 packet id each), subscription bytes
//  end-4 u32 CRC-32 of everything before it

import { crc32 } from './crc32.js';
import { SessionState, WORDS, SUB_WORDS, type Capacities } from './session-state.js';
import type { SnapshotStore } from './ports.js';

const MAGIC = 0x01534d44; // "DMS" + format 1
const HEADER = 16;
const META = 8 + 4 + 2 + 2 + 2 + 1 + 1 + 4 + 2 + 2 + 10;

/** What the client keeps beside the SessionState; mutated in place. */
export interface SessionMeta {
  clockMs: number;
  /** The broker holds a session for this client (a persistent CONNACK was seen). */
  hasSession: boolean;
  serverReceiveMaximum: number;
  serverMaximumQoS: number;
  serverRetainAvailable: boolean;
  serverMaximumPacketSize: number;
  serverKeepAlive: number;
}

export const enum RestoreStatus {
  Restored = 0,
  /** No image of ours in either slot: a first boot (or both were lost without a trace). */
  Empty = 1,
  /**
   * No valid image, but a slot holds bytes that start as ours (torn,
   * truncated or corrupted in both slots): a session was there and is lost.
   * The core starts fresh like Empty; a host should keep the bytes (see
   * SnapshotStore.setAside) and say so before anything overwrites them.
   */
  Damaged = 2,
  /**
   * No valid image, and what the slots hold does not start as ours. RTC
   * memory holds random bytes after power-on: there it means Empty. A host
   * that owns its storage (a file) should refuse to overwrite it.
   */
  Foreign = 3,
}

/**
 * True when `bytes` start as a session image of this library, any format
 * version ("DMS"; fewer bytes are compared as far as they go).
 */
export function looksLikeSessionImage(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  const n = bytes.length < 3 ? bytes.length : 3;
  for (let k = 0; k < n; k++) if (bytes[k] !== ((MAGIC >>> (k * 8)) & 0xff)) return false;
  return true;
}

export class SnapshotMismatchError extends Error {}

/** FNV-1a over what makes two images compatible. */
export function configHash(protocolVersion: number, caps: Readonly<Capacities>): number {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    for (let k = 0; k < 4; k++) {
      h ^= (v >>> (k * 8)) & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  };
  mix(protocolVersion);
  mix(caps.inflight);
  mix(caps.outbox);
  mix(caps.storeBytes);
  mix(caps.incomingQos2);
  mix(caps.subscriptions);
  mix(caps.subscriptionBytes);
  if (caps.releasedQos2 > 0) mix(0x80000000 | caps.releasedQos2);
  return h;
}

export function snapshotCapacity(caps: Readonly<Capacities>, clientIdBytes: number): number {
  return (
    HEADER + 1 + clientIdBytes + META +
    (caps.inflight + caps.outbox) * WORDS * 4 + caps.storeBytes +
    caps.incomingQos2 * 2 + (caps.releasedQos2 > 0 ? 0 : caps.incomingRuns * 4) + caps.subscriptions * (SUB_WORDS * 4 + 2) + caps.subscriptionBytes + 4 +
    (caps.releasedQos2 > 0 ? caps.incomingQos2 * 4 + 4 + caps.releasedQos2 * 8 : 0)
  );
}

export class SessionSnapshot {
  #image: Uint8Array | null = null;
  #view: DataView | null = null;
  #state: SessionState;
  #clientId: Uint8Array;
  #hash: number;
  #store: SnapshotStore | null;
  #seq = 0;
  /** Slot the newest valid image is in, or -1. */
  #slot = -1;
  /** Images written since construction. */
  writes = 0;

  constructor(state: SessionState, protocolVersion: number, clientId: Uint8Array, store: SnapshotStore | null) {
    if (clientId.length > 255) throw new RangeError('client id longer than 255 bytes cannot be kept in a snapshot');
    this.#state = state;
    this.#clientId = clientId;
    this.#hash = configHash(protocolVersion, state.caps);
    this.#store = store;
    // The image buffer is made on first use: a client without a store never needs it.
  }

  /** The encoding buffer, sized for the largest session the capacities allow. */
  get image(): Uint8Array {
    if (this.#image === null) {
      this.#image = new Uint8Array(snapshotCapacity(this.#state.caps, this.#clientId.length));
      this.#view = new DataView(this.#image.buffer);
    }
    return this.#image;
  }

  /** Write the current session to the store, in the slot not holding the newest image. */
  persist(meta: SessionMeta): number {
    if (!this.#store) return 0;
    const len = this.encode(meta, this.#seq + 1);
    const slot: 0 | 1 = this.#slot === 0 ? 1 : 0;
    this.#store.write(slot, this.image.subarray(0, len));
    this.#seq++;
    this.#slot = slot;
    this.writes++;
    return len;
  }

  /**
   * Encode into `image`; returns the length. Live records are written in order
   * with the holes closed, without touching the live state (a persist can
   * happen in the middle of a send loop that holds record indexes).
   */
  encode(meta: SessionMeta, seq: number): number {
    const s = this.#state;
    const b = this.image;
    const v = this.#view!;
    let p = HEADER;
    b[p++] = this.#clientId.length;
    b.set(this.#clientId, p);
    p += this.#clientId.length;
    v.setFloat64(p, meta.clockMs, true); p += 8;
    v.setUint32(p, s.nextToken, true); p += 4;
    v.setUint16(p, s.nextPacketId, true); p += 2;
    v.setUint16(p, meta.hasSession ? 1 : 0, true); p += 2;
    v.setUint16(p, meta.serverReceiveMaximum, true); p += 2;
    b[p++] = meta.serverMaximumQoS;
    b[p++] = meta.serverRetainAvailable ? 1 : 0;
    v.setUint32(p, meta.serverMaximumPacketSize, true); p += 4;
    v.setUint16(p, meta.serverKeepAlive, true); p += 2;
    const runsCount = p;
    p += 2;
    const counts = p;
    p += 10;
    const r = s.records;
    const end = s.first + s.span;
    let live = 0;
    let bytes = 0;
    for (let i = s.first; i < end; i++) {
      const o = i * WORDS;
      if ((r[o] & 0xf) === 0) continue;
      for (let w = 0; w < WORDS; w++, p += 4) v.setUint32(p, w === 2 ? (bytes | (s.length(i) << 16)) >>> 0 : r[o + w], true);
      bytes += s.length(i);
      live++;
    }
    for (let i = s.first; i < end; i++) {
      if ((r[i * WORDS] & 0xf) === 0) continue;
      const off = s.offset(i);
      b.set(s.arena.subarray(off, off + s.length(i)), p);
      p += s.length(i);
    }
    v.setUint16(counts, live, true);
    v.setUint16(counts + 2, s.incomingCount, true);
    v.setUint16(counts + 4, s.subCount, true);
    v.setUint16(counts + 6, s.subBytesUsed, true);
    v.setUint16(counts + 8, bytes, true);
    const at = s.incomingAt;
    const slots = s.incomingSlots;
    for (let k = 0; k < slots; k++) if (r[at + k] !== 0) { v.setUint16(p, r[at + k], true); p += 2; }
    let runs = 0;
    if (s.incomingRunIds > 0) {
      const end = s.incomingRunsAt + s.incomingRunSlots;
      for (let k = s.incomingRunsAt; k < end; k++) if ((r[k] & 0xffff) !== 0) { v.setUint32(p, r[k], true); p += 4; runs++; }
    }
    v.setUint16(runsCount, runs, true);
    if (s.replayGuard) {
      // The replay guard: the held ids' message hashes (same order), then the released ring.
      for (let k = 0; k < slots; k++) if (r[at + k] !== 0) { v.setUint32(p, r[s.incomingHashAt + k], true); p += 4; }
      v.setUint16(p, s.releasedCount, true); p += 2;
      v.setUint16(p, s.releasedNext, true); p += 2;
      const end = s.releasedAt + s.caps.releasedQos2 * 2;
      for (let k = s.releasedAt; k < end; k++, p += 4) v.setUint32(p, r[k], true);
    }
    for (let k = 0; k < s.subCount * SUB_WORDS; k++, p += 4) v.setUint32(p, r[s.subsAt + k], true);
    for (let k = 0; k < s.subCount; k++, p += 2) v.setUint16(p, s.subPacketId(k), true);
    b.set(s.arena.subarray(s.subBytesAt, s.subBytesAt + s.subBytesUsed), p); p += s.subBytesUsed;
    const len = p + 4;
    v.setUint32(0, MAGIC, true);
    v.setUint32(4, seq >>> 0, true);
    v.setUint32(8, len, true);
    v.setUint32(12, this.#hash, true);
    v.setUint32(p, crc32(b, 0, p), true);
    return len;
  }

  /**
   * Load the newest valid image from the store into the state and `meta`.
   * Throws SnapshotMismatchError when a valid image belongs to another client
   * id or configuration: restoring it would lose or misroute its messages.
   */
  restore(meta: SessionMeta): RestoreStatus {
    if (!this.#store) return RestoreStatus.Empty;
    let best: Uint8Array | null = null;
    let bestSeq = -1;
    let bestSlot = -1;
    let seen = 0; // bit 1: bytes that are not ours; bit 2: bytes that start as ours
    for (const slot of [0, 1] as const) {
      const img = this.#store.read(slot);
      if (img && img.length > 0) seen |= looksLikeSessionImage(img) ? 2 : 1;
      if (!img || !validImage(img)) continue;
      const seq = new DataView(img.buffer, img.byteOffset, img.byteLength).getUint32(4, true);
      if (best === null || seqNewer(seq, bestSeq)) {
        best = img;
        bestSeq = seq;
        bestSlot = slot;
      }
    }
    if (!best) return seen & 2 ? RestoreStatus.Damaged : seen & 1 ? RestoreStatus.Foreign : RestoreStatus.Empty;
    this.decode(best, meta);
    this.#seq = bestSeq;
    this.#slot = bestSlot;
    return RestoreStatus.Restored;
  }

  decode(img: Uint8Array, meta: SessionMeta): void {
    const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
    let p = HEADER;
    const idLen = img[p++];
    const id = img.subarray(p, p + idLen);
    p += idLen;
    if (!sameBytes(id, this.#clientId)) {
      throw new SnapshotMismatchError(
        `the stored session belongs to client id "${latin(id)}", not "${latin(this.#clientId)}": ` +
          'use the same client id, or delete the session store to start a new session',
      );
    }
    if (v.getUint32(12, true) !== this.#hash) {
      throw new SnapshotMismatchError(
        'the stored session was written with another protocol version or other capacities: ' +
          'keep the configuration it was written with, or delete the session store to start a new session',
      );
    }
    const s = this.#state;
    s.clear();
    meta.clockMs = v.getFloat64(p, true); p += 8;
    s.nextToken = v.getUint32(p, true); p += 4;
    s.nextPacketId = v.getUint16(p, true) || 1; p += 2;
    meta.hasSession = (v.getUint16(p, true) & 1) === 1; p += 2;
    meta.serverReceiveMaximum = v.getUint16(p, true); p += 2;
    meta.serverMaximumQoS = img[p++];
    meta.serverRetainAvailable = img[p++] === 1;
    meta.serverMaximumPacketSize = v.getUint32(p, true); p += 4;
    meta.serverKeepAlive = v.getUint16(p, true); p += 2;
    const runs = v.getUint16(p, true); p += 2;
    const span = v.getUint16(p, true); p += 2;
    const incoming = v.getUint16(p, true); p += 2;
    const subCount = v.getUint16(p, true); p += 2;
    const subBytes = v.getUint16(p, true); p += 2;
    const arenaBytes = v.getUint16(p, true); p += 2;
    if (span > s.recordSlots || incoming > s.caps.incomingQos2 || subCount > s.caps.subscriptions ||
        subBytes > s.caps.subscriptionBytes || arenaBytes > s.caps.storeBytes ||
        runs > s.incomingRunSlots) {
      throw new SnapshotMismatchError('the stored session does not fit the configured capacities');
    }
    for (let k = 0; k < span * WORDS; k++, p += 4) s.records[k] = v.getUint32(p, true);
    s.arena.set(img.subarray(p, p + arenaBytes), 0); p += arenaBytes;
    const ids = p;
    p += incoming * 2;
    for (let k = 0; k < runs; k++, p += 4) {
      const w = v.getUint32(p, true);
      s.records[s.incomingRunsAt + k] = w;
      s.incomingRunIds += w & 0xffff;
    }
    if (s.replayGuard) {
      for (let k = 0; k < incoming; k++, p += 4) s.addIncoming(v.getUint16(ids + k * 2, true), v.getUint32(p, true));
      s.releasedCount = v.getUint16(p, true); p += 2;
      s.releasedNext = v.getUint16(p, true); p += 2;
      const end = s.releasedAt + s.caps.releasedQos2 * 2;
      for (let k = s.releasedAt; k < end; k++, p += 4) s.records[k] = v.getUint32(p, true);
    } else {
      for (let k = 0; k < incoming; k++) s.addIncoming(v.getUint16(ids + k * 2, true));
    }
    for (let k = 0; k < subCount * SUB_WORDS; k++, p += 4) s.records[s.subsAt + k] = v.getUint32(p, true);
    // Packet ids of subscription packets belong to the connection that sent them.
    for (let k = 0; k < subCount; k++, p += 2) s.setSubPacketId(k, 0);
    s.arena.set(img.subarray(p, p + subBytes), s.subBytesAt);
    s.first = 0;
    s.span = span;
    s.byteEnd = arenaBytes;
    s.subCount = subCount;
    s.subBytesUsed = subBytes;
    let live = 0;
    s.queued = s.inflight = 0;
    for (let i = 0; i < span; i++) {
      const st = s.state(i);
      if (st === 1) s.queued++;
      else if (st === 2 || st === 3) s.inflight++;
      if (st !== 0) live += s.length(i);
    }
    s.liveBytes = live;
  }
}

function validImage(img: Uint8Array): boolean {
  if (img.length < HEADER + 4) return false;
  const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (v.getUint32(0, true) !== MAGIC) return false;
  const len = v.getUint32(8, true);
  if (len < HEADER + 4 || len > img.length) return false;
  return v.getUint32(len - 4, true) === crc32(img, 0, len - 4);
}

/** Sequence comparison that survives wrap-around. */
function seqNewer(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

function latin(b: Uint8Array): string {
  let s = '';
  for (let k = 0; k < b.length; k++) s += String.fromCharCode(b[k]);
  return s;
}
