// No accepted message lost at a power cut, at a flash cost a battery device can
// afford: RTC memory holds the whole session (free, lost with power); flash
// (NVS through `preference`) holds an older snapshot, the *base*, plus an
// append-only journal of what changed since: one small entry per accepted
// message and one per message completed. The base is rewritten rarely
// (compaction), not on every change.
//
// Why a journal and not the snapshot: the core writes a ~100-byte-plus image
// about four times per wake (accept, send, ack, sleep). In NVS each blob
// write costs a header entry, its data entries and a blob index (32 bytes
// each), so four snapshots cost ~700 bytes of flash per wake; the journal
// costs one blob for the reading and one 32-byte integer for its ack.
//
// NVS keys (domain "dormouse", names at most 15 characters):
//   s0, s1   the base: two snapshot images used in turn (the core's format;
//            its header's u32 at offset 4 is the sequence number)
//   j0, j1…  journal entries, appended in order, deleted at compaction
//            (highest first, so a cut leaves a prefix)
// An accept entry (blob): u8 1, u8 qos | retain << 2, u32 token,
//   u32 message expiry interval (s, 0 none), u32 accepted at (session s),
//   u8 topic length, topic (UTF-8), payload.
// A completion entry: the integer token (acked, or dropped and reported).
//
// After a power loss the base is restored and the journal replayed against
// it: an accept whose token is at or past the base's next token and that has
// no completion is accepted again. Tokens below the base's next token are in
// the base already (or were completed before it was written), so a journal
// left behind by a cut compaction is harmless. Replayed messages get new
// packet ids: at QoS 1 the broker may see a message twice (allowed), never
// lose one.
//
// QoS 2 cannot be journaled this way: a message the broker already has must
// not be sent again under a new packet id. While a QoS 2 message or a
// subscription change is live the store writes every snapshot through to
// NVS (`writeThrough`), before the core sends the packet that follows; the
// core persists before it sends, so the broker never knows more than NVS.
// QoS 2 costs flash; QoS 0 and 1 cost the journal.

import type { SnapshotStore } from '../../modules/session/ports.js';
import { utf8Length, utf8Read, utf8Write } from '../../modules/mqtt/utf8.js';
import type { PreferenceStore } from './platform.js';
import { RestoredFrom, type RtcSnapshotStore } from './stores.js';

export const JOURNAL_DOMAIN = 'dormouse';
const SLOT_KEYS: readonly string[] = Object.freeze(['s0', 's1']);
const ENTRY_ACCEPT = 1;
const ACCEPT_HEADER = 15;
/** ESP-IDF NVS: an entry is 32 bytes; a page of 4096 holds 126 of them behind a header and a state bitmap. */
export const NVS_ENTRY_BYTES = 32;
/** What erasing an item writes: its entries' 2-bit states in the page bitmap, one 32-bit word. */
export const NVS_ERASE_BYTES = 4;

/**
 * Bytes NVS programs for one `set` (ESP-IDF NVS format, version 2): an
 * integer is one 32-byte entry; a blob is a data item (one header entry plus
 * its bytes rounded up to entries) and a blob index entry; a string is a
 * header entry plus its bytes (with the NUL) rounded up. Erasing the key's old
 * value first adds NVS_ERASE_BYTES when it had one.
 */
export function nvsSetBytes(value: ArrayBuffer | number | string, hadValue: boolean): number {
  const erase = hadValue ? NVS_ERASE_BYTES : 0;
  if (typeof value === 'number') return erase + NVS_ENTRY_BYTES;
  if (typeof value === 'string') return erase + NVS_ENTRY_BYTES * (1 + Math.ceil((value.length + 1) / NVS_ENTRY_BYTES));
  return erase + NVS_ENTRY_BYTES * (2 + Math.ceil(value.byteLength / NVS_ENTRY_BYTES));
}

/** A message the journal says was accepted and not completed after the base was written. */
export interface JournaledMessage {
  token: number;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** Message expiry interval in seconds, 0 for none. */
  expiry: number;
  /** Session clock (s) when it was accepted. */
  acceptedAt: number;
  topic: string;
  payload: Uint8Array;
}

export interface DurableStoreOptions {
  /** Compact (rewrite the base, empty the journal) once this many entries are journaled. Default 24. */
  compactAfter?: number;
  domain?: string;
}

/** Where the last restore found the session. */
/**
 * The SnapshotStore the Moddable client uses by default: every snapshot to
 * RTC, NVS through the journal (see the top of this file). Counts the bytes
 * it has NVS program, by the model of nvsSetBytes.
 */
export class DurableStore implements SnapshotStore {
  readonly #rtc: RtcSnapshotStore;
  readonly #prefs: PreferenceStore;
  readonly #domain: string;
  readonly #compactAfter: number;
  readonly #scratch = new Uint8Array(ACCEPT_HEADER);
  readonly #scratchView = new DataView(this.#scratch.buffer);
  #rtcValid: boolean | undefined; // decided on the first read after construction
  #journal = -1; // entries in NVS (next key index), -1 until counted
  #nvsSlot = -1; // NVS slot holding the newest base, -1 if none
  #nvsSeq = 0;
  /** While true, every snapshot also goes to NVS (QoS 2 or subscription changes live). */
  writeThrough = false;
  /** Bytes NVS programmed through this store, by the nvsSetBytes model. */
  flashBytes = 0;
  /** NVS set and delete calls made. */
  flashWrites = 0;
  restoredFrom: RestoredFrom = RestoredFrom.Nothing;

  constructor(rtc: RtcSnapshotStore, preference: PreferenceStore, options: DurableStoreOptions = {}) {
    const compactAfter = options.compactAfter ?? 24;
    if (!(Number.isInteger(compactAfter) && compactAfter >= 1 && compactAfter <= 200))
      throw new RangeError(`compactAfter must be an integer from 1 to 200, not ${compactAfter}`);
    const domain = options.domain ?? JOURNAL_DOMAIN;
    if (domain.length > 15) throw new RangeError(`NVS domain "${domain}" is longer than 15 characters`);
    this.#rtc = rtc;
    this.#prefs = preference;
    this.#domain = domain;
    this.#compactAfter = compactAfter;
  }

  /** Entries in the NVS journal. */
  get journalLength(): number {
    if (this.#journal < 0) {
      let n = 0;
      while (this.#prefs.get(this.#domain, `j${n}`) !== undefined) n++;
      this.#journal = n;
    }
    return this.#journal;
  }

  read(slot: 0 | 1): Uint8Array | null {
    if (this.#rtcValid === undefined) {
      this.#rtcValid = this.#rtc.read(0) !== null || this.#rtc.read(1) !== null;
      this.#findBase();
      this.restoredFrom = this.#rtcValid ? RestoredFrom.Rtc : this.#nvsSlot >= 0 ? RestoredFrom.Flash : RestoredFrom.Nothing;
    }
    // A valid RTC image is always the newest truth: the core writes it before every send.
    if (this.#rtcValid) return this.#rtc.read(slot);
    return this.#nvsRead(slot);
  }

  write(slot: 0 | 1, image: Uint8Array): void {
    this.#rtc.write(slot, image);
    this.#rtcValid = true;
    if (this.writeThrough) this.#writeBase(image);
  }

  /** Journal an accepted message. Call right after the core accepted it (its token > 0). */
  accepted(token: number, qos: number, retain: boolean, expiry: number, acceptedAt: number, topic: string, payload: Uint8Array): void {
    const topicLength = utf8Length(topic);
    if (topicLength > 255) throw new RangeError('topics longer than 255 bytes are not journaled');
    const entry = new Uint8Array(ACCEPT_HEADER + topicLength + payload.length);
    const v = this.#scratchView;
    v.setUint8(0, ENTRY_ACCEPT);
    v.setUint8(1, qos | (retain ? 4 : 0));
    v.setUint32(2, token, true);
    v.setUint32(6, expiry, true);
    v.setUint32(10, acceptedAt >>> 0, true);
    v.setUint8(14, topicLength);
    entry.set(this.#scratch, 0);
    utf8Write(topic, entry, ACCEPT_HEADER);
    entry.set(payload, ACCEPT_HEADER + topicLength);
    if (entry.length > 4000) throw new RangeError(`a message of ${entry.length} bytes does not fit one NVS value (4000)`);
    this.#append(entry.buffer);
  }

  /** Journal that a message left the session (acknowledged, or dropped and reported). */
  completed(token: number): void {
    this.#append(token | 0);
  }

  /**
   * After a restore from flash: the journaled messages the base does not hold
   * and no completion followed, oldest first. `baseNextToken` is the restored
   * session's next token.
   */
  pending(baseNextToken: number): JournaledMessage[] {
    const n = this.journalLength;
    const done = new Set<number>();
    const found: JournaledMessage[] = [];
    for (let k = 0; k < n; k++) {
      const value = this.#prefs.get(this.#domain, `j${k}`);
      if (typeof value === 'number') {
        done.add(value >>> 0);
        continue;
      }
      if (!(value instanceof ArrayBuffer) || value.byteLength < ACCEPT_HEADER) continue;
      const b = new Uint8Array(value);
      const v = new DataView(value);
      if (b[0] !== ENTRY_ACCEPT) continue;
      const token = v.getUint32(2, true);
      if (!tokenAtOrAfter(token, baseNextToken)) continue;
      const topicLength = b[14]!;
      found.push({
        token,
        qos: (b[1]! & 3) as 0 | 1 | 2,
        retain: (b[1]! & 4) !== 0,
        expiry: v.getUint32(6, true),
        acceptedAt: v.getUint32(10, true),
        topic: utf8Read(b, ACCEPT_HEADER, ACCEPT_HEADER + topicLength),
        payload: b.subarray(ACCEPT_HEADER + topicLength),
      });
    }
    return found.filter((m) => !done.has(m.token));
  }

  /** Compact when the journal is long enough. Call once per wake, before sleep. Returns the NVS bytes it cost. */
  checkpoint(): number {
    return this.journalLength >= this.#compactAfter ? this.compact() : 0;
  }

  /**
   * Write the newest RTC image as the base and delete the journal. A cut
   * while the base is written leaves the older base and the whole journal;
   * a cut among the deletions leaves a prefix of entries the new base holds.
   */
  compact(): number {
    const before = this.flashBytes;
    const image = this.#newestRtc();
    if (image === null) return 0;
    this.#writeBase(image);
    for (let k = this.journalLength - 1; k >= 0; k--) {
      this.#prefs.delete(this.#domain, `j${k}`);
      this.flashBytes += NVS_ERASE_BYTES;
      this.flashWrites++;
      this.#journal = k;
    }
    return this.flashBytes - before;
  }

  /** Forget the session everywhere. */
  clear(): void {
    this.#rtc.clear();
    for (let k = this.journalLength - 1; k >= 0; k--) this.#prefs.delete(this.#domain, `j${k}`);
    this.#journal = 0;
    for (const key of SLOT_KEYS) this.#prefs.delete(this.#domain, key);
    this.#nvsSlot = -1;
    this.#rtcValid = false;
  }

  #append(value: ArrayBuffer | number): void {
    const k = this.journalLength;
    const key = `j${k}`;
    const had = this.#prefs.get(this.#domain, key) !== undefined;
    this.#prefs.set(this.#domain, key, value);
    this.flashBytes += nvsSetBytes(value, had);
    this.flashWrites++;
    this.#journal = k + 1;
  }

  #writeBase(image: Uint8Array): void {
    if (image.length > 4000) throw new RangeError(`a snapshot of ${image.length} bytes does not fit one NVS value (4000)`);
    const slot = this.#nvsSlot === 0 ? 1 : 0; // never the slot holding the newest base
    const key = SLOT_KEYS[slot]!;
    const had = this.#prefs.get(this.#domain, key) !== undefined;
    const copy = image.slice().buffer;
    this.#prefs.set(this.#domain, key, copy);
    this.flashBytes += nvsSetBytes(copy, had);
    this.flashWrites++;
    this.#nvsSlot = slot;
    this.#nvsSeq = sequence(image);
  }

  #nvsRead(slot: 0 | 1): Uint8Array | null {
    const value = this.#prefs.get(this.#domain, SLOT_KEYS[slot]!);
    return value instanceof ArrayBuffer && value.byteLength > 0 ? new Uint8Array(value) : null;
  }

  /** Which NVS slot holds the newer base (the core's CRC decides validity on restore; here only the sequence). */
  #findBase(): void {
    this.#nvsSlot = -1;
    for (const slot of [0, 1] as const) {
      const image = this.#nvsRead(slot);
      if (image === null || image.length < 8) continue;
      const seq = sequence(image);
      if (this.#nvsSlot < 0 || ((seq - this.#nvsSeq) | 0) > 0) {
        this.#nvsSlot = slot;
        this.#nvsSeq = seq;
      }
    }
  }

  #newestRtc(): Uint8Array | null {
    const a = this.#rtc.read(0);
    const b = this.#rtc.read(1);
    if (a === null || b === null) return a ?? b;
    return ((sequence(a) - sequence(b)) | 0) > 0 ? a : b;
  }
}

/** The snapshot header's sequence number (modules/session/snapshot.ts: u32 at offset 4). */
function sequence(image: Uint8Array): number {
  return (image[4]! | (image[5]! << 8) | (image[6]! << 16) | (image[7]! << 24)) >>> 0;
}

/** Token order that survives the 32-bit wrap (tokens skip 0). */
function tokenAtOrAfter(token: number, base: number): boolean {
  return ((token - base) | 0) >= 0;
}
