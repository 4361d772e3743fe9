// The session kept in a raw flash partition (`embedded:storage/flash`), as a
// log of snapshot deltas: every snapshot the core writes goes to RTC memory
// (the fast path, kept through deep sleep) and is appended to flash as the
// bytes that changed since the previous one. After a power cut the log is
// replayed to the last snapshot written whole. Nothing is journaled beside
// the core's own image, so what survives a cut is exactly what the core had
// persisted: it persists before it sends, so the broker never knows more than
// flash, at QoS 2 too (no replay under new packet ids, no duplicates).
//
// Why deltas: between two of the core's snapshots only a few fields change
// (sequence, clock, a record's state, the CRC; an accepted message adds its
// record and bytes), so a record costs tens of bytes where a whole image is a
// few hundred. NOR flash can only clear bits, and erases a block (4 KiB on
// ESP32) at a time: the log is appended into erased bytes and never rewritten.
//
// Partition layout: two areas, each half the partition's blocks, used in turn.
//   area header (12 B): magic "DMF1" u32, generation u32, ~generation u32
//   records, from offset 12:
//     u16 n (bytes that follow, CRC excluded), u8 slot, u16 image length,
//     runs: (u16 offset, u8 length 1..255, bytes)..., u32 CRC-32 of the record before it
//   erased bytes (0xFF): a length of 0xFFFF ends the log
// Little-endian. The area with the higher generation whose header checks out
// is current. Compaction writes the newest image whole as the first record of
// the other area (erased first), then that area's header: the header is the
// commit, so a cut anywhere in a compaction leaves the old area current. A
// cut inside an append leaves a record whose CRC fails: the log ends before
// it, and since the bytes after the end are no longer erased, the next write
// compacts into the other area instead of appending after garbage.
//
// Flash encryption needs 16-byte aligned writes; this log writes at any byte
// offset, so a partition used by it must not be encrypted.

import type { SnapshotStore } from '../../modules/session/ports.js';
import { crc32 } from '../../modules/session/crc32.js';
import { RestoredFrom, type RtcSnapshotStore } from './stores.js';

/** An open partition of `embedded:storage/flash` (Moddable's ESP32 module, or the lin stand-in). */
export interface FlashPartition {
  /** Fills `into` from `byteOffset`. */
  read(into: Uint8Array, byteOffset: number): unknown;
  /** Programs `bytes` at `byteOffset`: bits can only be cleared (erased bytes are 0xFF). */
  write(bytes: Uint8Array, byteOffset: number): unknown;
  /** Erases blocks [start, end) to 0xFF. */
  eraseBlock(start: number, end?: number): unknown;
  status(): { size: number; blockLength: number };
}

const AREA_MAGIC = 0x31464d44; // "DMF1"
const AREA_HEADER = 12;
const RECORD_HEAD = 5; // u16 n, u8 slot, u16 image length
const RUN_HEAD = 3;
const CRC_BYTES = 4;
const MAX_RUN = 255;
/** Equal bytes shorter than this between two changes stay inside one run (a run head costs 3). */
const GAP = 4;

/** Bytes the largest record of an image of `n` bytes can take (every run as short as the gap rule allows). */
export function flashRecordBound(n: number): number {
  return RECORD_HEAD + n + RUN_HEAD * (Math.ceil(n / (GAP + 1)) + 1) + CRC_BYTES;
}

/**
 * The snapshot log in one partition: append(), compact(), and the newest
 * image found when it was opened. Counts what it makes the flash do.
 */
export class FlashLog {
  readonly #flash: FlashPartition;
  readonly #areaBlocks: number;
  readonly areaBytes: number;
  #opened = false;
  #area = -1; // current area, -1 none
  #generation = 0;
  #end = 0; // append offset inside the current area
  #dirty = false; // bytes after #end are not erased: the next write compacts
  #image = new Uint8Array(0); // the newest image in the log (what deltas are taken against)
  #imageLength = 0;
  #slot: 0 | 1 = 0;
  #record = new Uint8Array(0); // scratch for one record, grown when needed
  readonly #head = new Uint8Array(AREA_HEADER);
  /** Bytes passed to the partition's write(). */
  bytesWritten = 0;
  /** write() calls. */
  writes = 0;
  /** Blocks erased. */
  blocksErased = 0;
  compactions = 0;

  constructor(flash: FlashPartition) {
    const { size, blockLength } = flash.status();
    const blocks = Math.floor(size / blockLength);
    if (!(blockLength > 0) || blocks < 2) throw new RangeError(`flash partition of ${size} bytes has fewer than 2 blocks of ${blockLength}`);
    this.#flash = flash;
    this.#areaBlocks = blocks >> 1;
    this.areaBytes = this.#areaBlocks * blockLength;
  }

  /** The newest image in the log, or null; and the slot it was written to. */
  newest(): { slot: 0 | 1; image: Uint8Array } | null {
    this.#open();
    return this.#imageLength > 0 ? { slot: this.#slot, image: this.#image.subarray(0, this.#imageLength) } : null;
  }

  /** Bytes still free in the current area (0 when there is none or its tail is damaged). */
  get room(): number {
    this.#open();
    return this.#area < 0 || this.#dirty ? 0 : this.areaBytes - this.#end;
  }

  /** Append `image` (written to core slot `slot`) as a delta; compacts first when it does not fit. */
  append(slot: 0 | 1, image: Uint8Array): void {
    this.#open();
    if (image.length === 0 || image.length > 0xffff) throw new RangeError(`a snapshot of ${image.length} bytes cannot be logged`);
    if (this.#area >= 0 && !this.#dirty) {
      const n = this.#encode(slot, image, this.#imageLength);
      if (this.#end + n <= this.areaBytes) {
        this.#program(this.#record.subarray(0, n), this.#area * this.areaBytes + this.#end);
        this.#end += n;
        this.#keep(slot, image);
        return;
      }
    }
    this.#compactWith(slot, image);
  }

  /** Rewrite the newest image alone into the other area. */
  compact(): void {
    this.#open();
    if (this.#imageLength === 0) return;
    this.#compactWith(this.#slot, this.#image.slice(0, this.#imageLength));
  }

  /** Forget everything: the area headers are cleared to 0 (clearing bits needs no erase). */
  clear(): void {
    this.#open();
    const zero = new Uint8Array(4);
    for (let a = 0; a < 2; a++) {
      this.#flash.read(this.#head, a * this.areaBytes);
      if (readU32(this.#head, 0) === AREA_MAGIC) this.#program(zero, a * this.areaBytes);
    }
    this.#area = -1;
    this.#imageLength = 0;
    this.#dirty = false;
  }

  #compactWith(slot: 0 | 1, image: Uint8Array): void {
    const target = this.#area === 0 ? 1 : 0;
    const base = target * this.areaBytes;
    const n = this.#encode(slot, image, 0);
    if (AREA_HEADER + n > this.areaBytes)
      throw new RangeError(`a snapshot of ${image.length} bytes does not fit a flash area of ${this.areaBytes}`);
    this.#flash.eraseBlock(target * this.#areaBlocks, (target + 1) * this.#areaBlocks);
    this.blocksErased += this.#areaBlocks;
    this.#program(this.#record.subarray(0, n), base + AREA_HEADER);
    const generation = (this.#generation + 1) >>> 0;
    const head = this.#head;
    writeU32(head, 0, AREA_MAGIC);
    writeU32(head, 4, generation);
    writeU32(head, 8, ~generation >>> 0);
    this.#program(head, base); // the commit
    this.#area = target;
    this.#generation = generation;
    this.#end = AREA_HEADER + n;
    this.#dirty = false;
    this.compactions++;
    this.#keep(slot, image);
  }

  #program(bytes: Uint8Array, offset: number): void {
    this.#flash.write(bytes, offset);
    this.bytesWritten += bytes.length;
    this.writes++;
  }

  #keep(slot: 0 | 1, image: Uint8Array): void {
    if (this.#image.length < image.length) this.#image = new Uint8Array(Math.max(image.length, 256));
    this.#image.set(image, 0);
    this.#imageLength = image.length;
    this.#slot = slot;
  }

  /** Encode `image` as a record against the kept image's first `prevLength` bytes; returns its length. */
  #encode(slot: 0 | 1, image: Uint8Array, prevLength: number): number {
    const bound = flashRecordBound(image.length);
    if (this.#record.length < bound) this.#record = new Uint8Array(Math.max(bound, 512));
    const r = this.#record;
    const prev = this.#image;
    const n = image.length;
    let p = RECORD_HEAD;
    let i = 0;
    while (i < n) {
      while (i < n && i < prevLength && prev[i] === image[i]) i++;
      if (i >= n) break;
      const start = i;
      let last = i;
      for (let j = i; j < n && j - start < MAX_RUN; j++) {
        if (j >= prevLength || prev[j] !== image[j]) last = j;
        else if (j - last >= GAP) break;
      }
      const length = last + 1 - start;
      r[p] = start & 0xff;
      r[p + 1] = start >>> 8;
      r[p + 2] = length;
      for (let k = 0; k < length; k++) r[p + RUN_HEAD + k] = image[start + k]!; // no view allocated per run
      p += RUN_HEAD + length;
      i = start + length;
    }
    const body = p - 2; // the bytes after the length field, CRC excluded
    r[0] = body & 0xff;
    r[1] = body >>> 8;
    r[2] = slot;
    r[3] = n & 0xff;
    r[4] = n >>> 8;
    writeU32(r, p, crc32(r, 0, p));
    return p + CRC_BYTES;
  }

  /** Find the current area and replay its records. */
  #open(): void {
    if (this.#opened) return;
    this.#opened = true;
    const head = this.#head;
    let best = -1;
    let bestGen = 0;
    for (let a = 0; a < 2; a++) {
      this.#flash.read(head, a * this.areaBytes);
      const gen = readU32(head, 4);
      if (readU32(head, 0) !== AREA_MAGIC || (~gen >>> 0) !== readU32(head, 8)) continue;
      if (best < 0 || ((gen - bestGen) | 0) > 0) {
        best = a;
        bestGen = gen;
      }
    }
    this.#generation = bestGen;
    if (best < 0) return;
    this.#area = best;
    // Record by record through the record scratch (no area-sized buffer: RAM is scarce on the device).
    const base = best * this.areaBytes;
    const two = this.#head.subarray(0, 2);
    let p = AREA_HEADER;
    for (;;) {
      if (p + 2 > this.areaBytes) break;
      this.#flash.read(two, base + p);
      const body = two[0]! | (two[1]! << 8);
      if (body === 0xffff) break;
      const total = 2 + body + CRC_BYTES;
      if (body < RECORD_HEAD - 2 || p + total > this.areaBytes) break;
      if (this.#record.length < total) this.#record = new Uint8Array(Math.max(total, 512));
      const r = this.#record;
      this.#flash.read(r.subarray(0, total), base + p);
      if (crc32(r, 0, 2 + body) !== readU32(r, 2 + body) || !this.#apply(r, 0, 2 + body)) break;
      p += total;
    }
    this.#end = p;
    // Bytes past the end that are not erased (a torn record): appending there could not program them.
    const chunk = this.#record.length >= 256 ? this.#record.subarray(0, 256) : (this.#record = new Uint8Array(512)).subarray(0, 256);
    for (let k = p; k < this.areaBytes && !this.#dirty; k += chunk.length) {
      const view = k + chunk.length <= this.areaBytes ? chunk : chunk.subarray(0, this.areaBytes - k);
      this.#flash.read(view, base + k);
      for (let i = 0; i < view.length; i++) {
        if (view[i] !== 0xff) {
          this.#dirty = true;
          break;
        }
      }
    }
  }

  /** Apply one record (CRC already checked; `end` is where its CRC starts) to the kept image. */
  #apply(area: Uint8Array, start: number, end: number): boolean {
    const slot = area[start + 2]!;
    const n = area[start + 3]! | (area[start + 4]! << 8);
    if (slot > 1 || n === 0) return false;
    if (this.#image.length < n) {
      const grown = new Uint8Array(Math.max(n, 256));
      grown.set(this.#image.subarray(0, this.#imageLength));
      this.#image = grown;
    }
    const image = this.#image;
    let covered = this.#imageLength; // bytes past the old length must come in runs
    for (let p = start + RECORD_HEAD; p < end; ) {
      if (p + RUN_HEAD > end) return false;
      const offset = area[p]! | (area[p + 1]! << 8);
      const length = area[p + 2]!;
      if (length === 0 || offset + length > n || p + RUN_HEAD + length > end) return false;
      if (offset > covered) return false;
      image.set(area.subarray(p + RUN_HEAD, p + RUN_HEAD + length), offset);
      if (offset + length > covered) covered = offset + length;
      p += RUN_HEAD + length;
    }
    if (covered < n) return false;
    this.#imageLength = n;
    this.#slot = slot as 0 | 1;
    return true;
  }
}

/**
 * The SnapshotStore for a partition: RTC first (the newest truth while it
 * holds a valid image: it is written first), the flash log after power loss.
 */
export class FlashSnapshotStore implements SnapshotStore {
  readonly #rtc: RtcSnapshotStore;
  readonly log: FlashLog;
  #rtcValid: boolean | undefined;
  restoredFrom: RestoredFrom = RestoredFrom.Nothing;

  /** `largest`: the largest image the core can write (snapshotCapacity); default the RTC slot's capacity. */
  constructor(rtc: RtcSnapshotStore, flash: FlashPartition, largest: number = rtc.capacity) {
    this.#rtc = rtc;
    this.log = new FlashLog(flash);
    // The largest session must fit an area whole.
    if (AREA_HEADER + flashRecordBound(largest) > this.log.areaBytes)
      throw new RangeError(`a flash area of ${this.log.areaBytes} bytes is too small for sessions of up to ${largest} bytes`);
  }

  read(slot: 0 | 1): Uint8Array | null {
    if (this.#rtcValid === undefined) {
      this.#rtcValid = this.#rtc.read(0) !== null || this.#rtc.read(1) !== null;
      this.restoredFrom = this.#rtcValid ? RestoredFrom.Rtc : this.log.newest() !== null ? RestoredFrom.Flash : RestoredFrom.Nothing;
    }
    if (this.#rtcValid) return this.#rtc.read(slot);
    const newest = this.log.newest();
    return newest !== null && newest.slot === slot ? newest.image.slice() : null;
  }

  write(slot: 0 | 1, image: Uint8Array): void {
    this.#rtc.write(slot, image);
    this.#rtcValid = true;
    this.log.append(slot, image);
  }

  /**
   * Once a wake, before sleep: compact when the area is nearly full (less than
   * 1 KiB, or a quarter of a small area, left), while the wake's work is done,
   * rather than inside the next wake's send.
   */
  checkpoint(): void {
    if (this.log.room < Math.min(1024, this.log.areaBytes >> 2)) this.log.compact();
  }

  clear(): void {
    this.#rtc.clear();
    this.log.clear();
    this.#rtcValid = false;
  }
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}
