// Snapshot stores for the ESP32: RTC slow memory (kept through deep sleep,
// lost with power), NVS through `preference` (kept through power loss, costs
// flash wear), and PreferredStore, which reads RTC first and falls back to
// NVS. The core writes its two slots in turn and checks its own CRC on
// restore; these stores only keep each slot's bytes and say "nothing here".

import type { SnapshotStore } from '../../modules/session/ports.js';
import { crc32 } from '../../modules/session/crc32.js';
import type { PreferenceStore, RtcMemory } from './platform.js';

type Slot = 0 | 1;

/** Where a store that reads RTC first found the newest session (DurableStore, FlashSnapshotStore). */
export const enum RestoredFrom {
  Nothing = 0,
  Rtc = 1,
  /** RTC was lost (power cut): read from flash (the NVS journal, or the flash partition's log). */
  Flash = 2,
}

// RTC layout. The RTC region (4 KiB from the native module, half of the
// ESP32's 8 KiB RTC slow memory; ESP-IDF and a ULP program may need the rest):
//   [0, 8)                     control block: magic u32, checkpoint count u16, its complement u16
//   [8, 8 + slotBytes)         slot 0: magic u16, length u16, CRC-32 u32, image
//   [8 + slotBytes, ...)       slot 1: same
// Little-endian. After power-on RTC memory holds whatever the cells settled
// to, so every field is checked before it is believed. The slot CRC repeats
// the one inside the core's image on purpose: the store must tell a good RTC
// slot from garbage to decide whether to fall back to NVS, without knowing
// the core's format.
const CONTROL_MAGIC = 0x31434d44; // "DMC1"
const CONTROL_BYTES = 8;
const SLOT_MAGIC = 0x5344; // "DS"
const SLOT_HEADER_BYTES = 8;

/** The largest image that fits one RTC slot of a region of `regionBytes`. */
export function rtcSlotCapacity(regionBytes: number): number {
  return ((regionBytes - CONTROL_BYTES) >> 1) - SLOT_HEADER_BYTES;
}

/**
 * Two snapshot slots in RTC memory. A slot whose header or CRC does not
 * check out reads as null, which is how power loss (and a write torn by a
 * reset) shows up. The image is written before its header, so a write torn
 * anywhere leaves a header that does not match the bytes behind it.
 */
export class RtcSnapshotStore implements SnapshotStore {
  readonly #rtc: RtcMemory;
  readonly #slotBytes: number; // header + image capacity
  readonly #header = new Uint8Array(SLOT_HEADER_BYTES); // reused: no allocation per write
  readonly #headerView = new DataView(this.#header.buffer);

  constructor(rtc: RtcMemory) {
    if (rtc.byteLength < CONTROL_BYTES + 2 * (SLOT_HEADER_BYTES + 16))
      throw new RangeError(`RTC region of ${rtc.byteLength} bytes is too small for two snapshot slots`);
    this.#rtc = rtc;
    this.#slotBytes = (rtc.byteLength - CONTROL_BYTES) >> 1;
  }

  /** Largest image a slot takes. */
  get capacity(): number {
    return this.#slotBytes - SLOT_HEADER_BYTES;
  }

  read(slot: Slot): Uint8Array | null {
    const base = this.#slotBase(slot);
    const header = this.#header;
    const view = this.#headerView;
    this.#rtc.read(base, header);
    const length = view.getUint16(2, true);
    if (view.getUint16(0, true) !== SLOT_MAGIC || length === 0 || length > this.capacity) return null;
    const image = new Uint8Array(length);
    this.#rtc.read(base + SLOT_HEADER_BYTES, image);
    return crc32(image, 0, length) === view.getUint32(4, true) ? image : null;
  }

  write(slot: Slot, image: Uint8Array): void {
    if (image.length === 0 || image.length > this.capacity)
      throw new RangeError(`snapshot of ${image.length} bytes does not fit an RTC slot of ${this.capacity}`);
    const base = this.#slotBase(slot);
    const view = this.#headerView;
    this.#rtc.write(base + SLOT_HEADER_BYTES, image);
    view.setUint16(0, SLOT_MAGIC, true);
    view.setUint16(2, image.length, true);
    view.setUint32(4, crc32(image, 0, image.length), true);
    this.#rtc.write(base, this.#header);
  }

  /** Checkpoints counted since NVS was last brought up to date; 0 when the RTC region is not ours (power-on). */
  readCheckpoints(): number {
    const header = this.#header;
    const view = this.#headerView;
    this.#rtc.read(0, header);
    if (view.getUint32(0, true) !== CONTROL_MAGIC) return 0;
    const count = view.getUint16(4, true);
    return (count ^ 0xffff) === view.getUint16(6, true) ? count : 0;
  }

  writeCheckpoints(count: number): void {
    const view = this.#headerView;
    view.setUint32(0, CONTROL_MAGIC, true);
    view.setUint16(4, count & 0xffff, true);
    view.setUint16(6, (count & 0xffff) ^ 0xffff, true);
    this.#rtc.write(0, this.#header);
  }

  /** Invalidate both slots and the control block. */
  clear(): void {
    this.#header.fill(0);
    this.#rtc.write(0, this.#header);
    this.#rtc.write(this.#slotBase(0), this.#header);
    this.#rtc.write(this.#slotBase(1), this.#header);
  }

  #slotBase(slot: Slot): number {
    return CONTROL_BYTES + slot * this.#slotBytes;
  }
}

/** The NVS keys of the two slots: NVS keys and domains are at most 15 characters. */
const NVS_KEYS: readonly string[] = Object.freeze(['s0', 's1']);
export const NVS_DOMAIN = 'dormouse';
/** ESP-IDF NVS limit for one value, per Moddable's preference documentation. */
export const NVS_VALUE_LIMIT = 4000;

/**
 * Two snapshot slots as NVS blobs (`preference`, domain "dormouse", keys
 * "s0"/"s1"). Moddable's ESP32 Preference.set erases the key and then writes
 * it, so power lost in between leaves the slot empty: the other slot, written
 * on another occasion, is what survives. Every write erases and programs flash.
 */
export class NvsSnapshotStore implements SnapshotStore {
  readonly #preference: PreferenceStore;
  readonly #domain: string;

  constructor(preference: PreferenceStore, domain: string = NVS_DOMAIN) {
    if (domain.length > 15) throw new RangeError(`NVS domain "${domain}" is longer than 15 characters`);
    this.#preference = preference;
    this.#domain = domain;
  }

  read(slot: Slot): Uint8Array | null {
    const value = this.#preference.get(this.#domain, NVS_KEYS[slot]!);
    return value instanceof ArrayBuffer && value.byteLength > 0 ? new Uint8Array(value) : null;
  }

  write(slot: Slot, image: Uint8Array): void {
    if (image.length === 0 || image.length > NVS_VALUE_LIMIT)
      throw new RangeError(`snapshot of ${image.length} bytes does not fit an NVS value (at most ${NVS_VALUE_LIMIT})`);
    // preference accepts ArrayBuffer instances only; copy unless the view is the whole buffer.
    const whole = image.byteOffset === 0 && image.byteLength === image.buffer.byteLength && image.buffer instanceof ArrayBuffer;
    this.#preference.set(this.#domain, NVS_KEYS[slot]!, whole ? (image.buffer as ArrayBuffer) : image.slice().buffer);
  }

  /** Forget both slots (factory reset of the session). */
  clear(): void {
    this.#preference.delete(this.#domain, NVS_KEYS[0]!);
    this.#preference.delete(this.#domain, NVS_KEYS[1]!);
  }
}

/** A store that can forget both slots, as NvsSnapshotStore can. */
export type ClearableStore = SnapshotStore & { clear(): void };

export interface PreferredStoreOptions {
  /**
   * How often NVS is brought up to date.
   * 0: write-through, every snapshot also goes to NVS (most durable, most flash wear).
   * n >= 1: at every n-th checkpoint (the app calls checkpoint() once per wake,
   * at sleep-ready), the RTC slots that differ from NVS are copied there.
   */
  nvsEvery: number;
}

/**
 * RTC first, NVS after power loss. Writes always go to RTC (free, no wear);
 * NVS follows on the configured cadence. Reading falls back per slot, so a
 * slot lost in RTC (power loss, or a torn write) is served from NVS; the core
 * picks the newest valid image of the two by its own sequence number, and an
 * NVS image can never be newer than the RTC image that was written first.
 */
export class PreferredStore implements SnapshotStore {
  readonly #rtc: RtcSnapshotStore;
  readonly #nvs: ClearableStore;
  readonly #nvsEvery: number;

  constructor(rtc: RtcSnapshotStore, nvs: ClearableStore, options: PreferredStoreOptions) {
    if (!(options.nvsEvery >= 0 && options.nvsEvery <= 0xffff && Math.floor(options.nvsEvery) === options.nvsEvery))
      throw new RangeError(`nvsEvery must be an integer from 0 to 65535, not ${options.nvsEvery}`);
    this.#rtc = rtc;
    this.#nvs = nvs;
    this.#nvsEvery = options.nvsEvery;
  }

  read(slot: Slot): Uint8Array | null {
    return this.#rtc.read(slot) ?? this.#nvs.read(slot);
  }

  write(slot: Slot, image: Uint8Array): void {
    this.#rtc.write(slot, image);
    if (this.#nvsEvery === 0) this.#nvs.write(slot, image);
  }

  /**
   * Call once per wake when the core reports SleepReady, before deep sleep.
   * Returns the number of NVS values written (0, 1 or 2).
   */
  checkpoint(): number {
    if (this.#nvsEvery === 0) return 0;
    const count = this.#rtc.readCheckpoints() + 1;
    if (count < this.#nvsEvery) {
      this.#rtc.writeCheckpoints(count);
      return 0;
    }
    const written = this.#mirror(0) + this.#mirror(1);
    this.#rtc.writeCheckpoints(0);
    return written;
  }

  /** Forget the session everywhere (an image the core refuses, or a factory reset). */
  clear(): void {
    this.#rtc.clear();
    this.#nvs.clear();
  }

  #mirror(slot: Slot): number {
    const image = this.#rtc.read(slot);
    if (image === null) return 0;
    const stored = this.#nvs.read(slot);
    if (stored !== null && sameBytes(stored, image)) return 0; // reading NVS costs no wear
    this.#nvs.write(slot, image);
    return 1;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
