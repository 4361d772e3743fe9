// Fakes with the shapes and the documented failure behaviour of the Moddable
// APIs the ESP32 host uses: `timer`, `preference` (NVS), the ECMA-419 TCP
// socket, and the RTC region of dormouse/deepsleep.

import type { PreferenceStore, RtcMemory, TcpSocket, TcpSocketOptions, TimerApi } from '../../../hosts/moddable/platform.js';

/** Thrown by a fake when it simulates the power going at that instant. */
export class PowerCut extends Error {
  constructor() {
    super('power cut');
  }
}

/** Seeded xorshift32, so a failing case can be replayed from its seed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** RTC region: noise at power-on, writes that can be torn at any byte. */
export class FakeRtc implements RtcMemory {
  readonly bytes: Uint8Array;
  writes = 0;
  #tearAfter = -1; // bytes still allowed before the cut, or -1

  constructor(byteLength = 4096, seed = 1) {
    this.bytes = new Uint8Array(byteLength);
    this.powerOn(seed);
  }

  get byteLength(): number {
    return this.bytes.length;
  }

  /** Power lost and back: the cells hold noise. */
  powerOn(seed: number): void {
    const r = prng(seed);
    for (let i = 0; i < this.bytes.length; i++) this.bytes[i] = (r() * 256) | 0;
    this.#tearAfter = -1;
  }

  /** The power goes after `n` more bytes are written (across calls). */
  tearAfter(n: number): void {
    this.#tearAfter = n;
  }

  read(offset: number, into: Uint8Array): void {
    this.#check(offset, into.length);
    into.set(this.bytes.subarray(offset, offset + into.length));
  }

  write(offset: number, bytes: Uint8Array): void {
    this.#check(offset, bytes.length);
    this.writes++;
    if (this.#tearAfter >= 0 && bytes.length > this.#tearAfter) {
      this.bytes.set(bytes.subarray(0, this.#tearAfter), offset);
      this.#tearAfter = -1;
      throw new PowerCut();
    }
    if (this.#tearAfter >= 0) this.#tearAfter -= bytes.length;
    this.bytes.set(bytes, offset);
  }

  #check(offset: number, length: number): void {
    if (!(offset >= 0) || offset + length > this.bytes.length) throw new RangeError('rtc: outside the RTC region');
  }
}

/**
 * `preference` on ESP32: NVS limits (15-character names, 4000-byte values),
 * ArrayBuffer instances only, a copy on get, and Moddable's erase-then-set.
 */
export class FakePreference implements PreferenceStore {
  readonly #values = new Map<string, ArrayBuffer | string | number | boolean>();
  sets = 0;
  #cutNextSet = false;

  /** The next set erases the key and then loses power, as Moddable's ESP32 set can. */
  cutNextSet(): void {
    this.#cutNextSet = true;
  }

  get(domain: string, key: string): unknown {
    const v = this.#values.get(`${domain}\0${key}`);
    return v instanceof ArrayBuffer ? v.slice(0) : v;
  }

  set(domain: string, key: string, value: ArrayBuffer): void {
    if (domain.length > 15 || key.length > 15) throw new Error('nvs_open fail');
    if (!(value instanceof ArrayBuffer)) throw new Error('unsupported type');
    if (value.byteLength > 4000) throw new Error('nvs set fail');
    const name = `${domain}\0${key}`;
    this.#values.delete(name); // ERASE_KEY
    if (this.#cutNextSet) {
      this.#cutNextSet = false;
      throw new PowerCut();
    }
    this.#values.set(name, value.slice(0));
    this.sets++;
  }

  delete(domain: string, key: string): void {
    this.#values.delete(`${domain}\0${key}`);
  }
}

/** A Moddable timer handle. */
export interface FakeTimerHandle {
  callback: (t: FakeTimerHandle) => void;
  due: number; // Infinity when unscheduled
  repeat: number;
  cleared: boolean;
}

/** `timer` on a virtual clock, with the documented lifetime rules. */
export class FakeTimers implements TimerApi<FakeTimerHandle> {
  now = 0;
  readonly live = new Set<FakeTimerHandle>();
  created = 0;

  readonly clock = (): number => this.now;

  repeat(callback: (t: FakeTimerHandle) => void, interval: number): FakeTimerHandle {
    const t: FakeTimerHandle = { callback, due: this.now + interval, repeat: interval, cleared: false };
    this.live.add(t);
    this.created++;
    return t;
  }

  set(callback: (t: FakeTimerHandle) => void, initial?: number, repeat?: number): FakeTimerHandle {
    const t: FakeTimerHandle = { callback, due: this.now + (initial ?? 0), repeat: repeat ?? 0, cleared: false };
    this.live.add(t);
    this.created++;
    return t;
  }

  schedule(t: FakeTimerHandle, initial?: number, repeat?: number): void {
    if (t.cleared) throw new Error('timer used after it was freed');
    if (initial === undefined) {
      t.due = Infinity;
      t.repeat = Infinity;
    } else {
      t.due = this.now + initial;
      t.repeat = repeat ?? 0;
    }
  }

  clear(t: FakeTimerHandle | undefined): void {
    if (!t) return;
    t.cleared = true;
    this.live.delete(t);
  }

  /** Run every timer due up to now + ms, in time order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: FakeTimerHandle | undefined;
      for (const t of this.live) if (t.due <= end && (!next || t.due < next.due)) next = t;
      if (!next) break;
      this.now = next.due;
      next.due = next.repeat > 0 ? this.now + next.repeat : Infinity;
      next.callback(next);
      // "If the repeat interval is zero when the timer's callback returns, the timer is automatically cleared."
      if (next.repeat === 0 && !next.cleared) this.clear(next);
    }
    this.now = end;
  }
}

/**
 * ECMA-419 TCP as Moddable's lwIP socket behaves: not writable before the
 * first onWritable, "would block" beyond the announced room, reads that must
 * not ask for more than is available.
 */
export class FakeTcp implements TcpSocket {
  static instances: FakeTcp[] = [];
  static throwOnConstruct = false;

  readonly options: TcpSocketOptions;
  readonly written: number[] = [];
  inbox: number[] = [];
  room = 0;
  connected = false;
  closed = false;
  writeCalls = 0;

  constructor(options: TcpSocketOptions) {
    if (FakeTcp.throwOnConstruct) throw new Error('invalid address');
    this.options = options;
    FakeTcp.instances.push(this);
  }

  static reset(): void {
    FakeTcp.instances = [];
    FakeTcp.throwOnConstruct = false;
  }

  /** The connection is established with `room` bytes of send buffer. */
  connect(room: number): void {
    this.connected = true;
    this.room = room;
    this.options.onWritable?.(room);
  }

  deliver(bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) this.inbox.push(bytes[i]!);
    this.options.onReadable?.(this.inbox.length);
  }

  /** The peer acknowledged `n` bytes: room frees up. */
  drain(n: number): void {
    this.room += n;
    this.options.onWritable?.(this.room);
  }

  fail(): void {
    this.options.onError?.();
  }

  read(into: Uint8Array): number {
    if (into.length === 0 || into.length > this.inbox.length) throw new Error('invalid');
    for (let i = 0; i < into.length; i++) into[i] = this.inbox[i]!;
    this.inbox = this.inbox.slice(into.length);
    return into.length;
  }

  write(bytes: Uint8Array): number {
    if (!this.connected) throw new Error('not ready');
    if (this.closed) throw new Error('closed');
    if (bytes.length > this.room) throw new Error('would block');
    this.writeCalls++;
    for (let i = 0; i < bytes.length; i++) this.written.push(bytes[i]!);
    this.room -= bytes.length;
    return this.room;
  }

  close(): void {
    this.closed = true;
  }
}

/**
 * NVS behind `preference`, as flash sees it: every set is two steps, the
 * erase of the key's old value and the write of the new one (Moddable's
 * ESP32 Preference.set), a delete one step; `beforeStep` runs before each
 * step and may throw PowerCut, so a test can lose power between any two.
 * Counts the bytes programmed by ESP-IDF's NVS format: 32-byte entries, an
 * integer one entry, a blob a header entry + its data entries + a blob index
 * entry; an erase flips its entries' state bits (one 32-bit bitmap word).
 */
export class FakeNvs implements PreferenceStore {
  readonly values = new Map<string, ArrayBuffer | number>();
  bytes = 0;
  sets = 0;
  deletes = 0;
  steps = 0;
  beforeStep: (() => void) | null = null;

  get(domain: string, key: string): unknown {
    const v = this.values.get(`${domain}\0${key}`);
    return v instanceof ArrayBuffer ? v.slice(0) : v;
  }

  set(domain: string, key: string, value: ArrayBuffer | number): void {
    if (domain.length > 15 || key.length > 15) throw new Error('nvs_open fail');
    if (!(value instanceof ArrayBuffer) && !(typeof value === 'number' && Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff))
      throw new Error('unsupported type');
    if (value instanceof ArrayBuffer && value.byteLength > 4000) throw new Error('nvs set fail');
    const name = `${domain}\0${key}`;
    this.#step();
    if (this.values.delete(name)) this.bytes += 4;
    this.#step();
    this.values.set(name, value instanceof ArrayBuffer ? value.slice(0) : value);
    this.bytes += typeof value === 'number' ? 32 : 32 * (2 + Math.ceil(value.byteLength / 32));
    this.sets++;
  }

  delete(domain: string, key: string): void {
    this.#step();
    if (this.values.delete(`${domain}\0${key}`)) this.bytes += 4;
    this.deletes++;
  }

  #step(): void {
    this.steps++;
    this.beforeStep?.();
  }
}

/** Options of the fake `wifi`. */
export interface FakeWiFiBehaviour {
  /** ms from the join to "gotIP"; Infinity: never. */
  joinMs: number;
  /** ms when the dictionary carries the BSSID the network has; default joinMs. */
  hintedJoinMs?: number;
  /** The BSSID the access point has ("aa:bb:…"). */
  bssid: string;
  /** Its channel. */
  channel?: number;
  /** ms until a join asking for a BSSID the network does not have says "disconnect" (ESP32: no such AP). Default 1500. */
  missMs?: number;
}

/** Moddable's legacy `wifi` on a FakeTimers clock: one join per instance, messages by callback. */
export function fakeWiFi(timers: FakeTimers, behaviour: FakeWiFiBehaviour, log: { joins: { bssid?: string; channel?: number }[]; disconnects: number }) {
  return class FakeWiFi {
    #timer: FakeTimerHandle | undefined;
    constructor(dictionary: { ssid: string; password?: string; bssid?: ArrayBuffer; channel?: number }, onNotify: (message: string) => void) {
      const hint = dictionary.bssid ? [...new Uint8Array(dictionary.bssid)].map((b) => b.toString(16).padStart(2, '0')).join(':') : undefined;
      if (dictionary.bssid && dictionary.bssid.byteLength !== 6) throw new Error('bssid must be 6 bytes');
      if (dictionary.channel !== undefined && !(dictionary.channel >= 1 && dictionary.channel <= 13)) throw new Error('invalid channel');
      log.joins.push(dictionary.channel === undefined ? { bssid: hint } : { bssid: hint, channel: dictionary.channel });
      if (hint !== undefined && hint !== behaviour.bssid) {
        // Asked for an access point that is not there: the join fails, with no address.
        this.#timer = timers.set(() => onNotify('disconnect'), behaviour.missMs ?? 1500);
        return;
      }
      const ms = hint !== undefined ? behaviour.hintedJoinMs ?? behaviour.joinMs : behaviour.joinMs;
      if (ms !== Infinity)
        this.#timer = timers.set(() => {
          onNotify('connect');
          onNotify('gotIP');
        }, ms);
    }
    close(): void {
      timers.clear(this.#timer);
    }
    static disconnect(): void {
      log.disconnects++;
    }
  };
}

/**
 * A raw flash partition (`embedded:storage/flash`) with NOR flash's rules:
 * erase sets a block to 0xFF; a write can only clear bits (one that would set
 * a bit throws, as the lin stand-in does); it counts bytes written, write
 * calls and blocks erased. Each write and erase is two steps for
 * `beforeStep` (a power cut): before it (nothing changed) and half way (the
 * first half of the bytes programmed, or of the blocks erased).
 */
export class FakeFlash {
  readonly bytes: Uint8Array;
  readonly blockLength: number;
  written = 0;
  writes = 0;
  erased = 0;
  beforeStep: (() => void) | null = null;

  constructor(size = 16 * 1024, blockLength = 4096) {
    this.bytes = new Uint8Array(size).fill(0xff);
    this.blockLength = blockLength;
  }

  status(): { size: number; blockLength: number; blocks: number } {
    return { size: this.bytes.length, blockLength: this.blockLength, blocks: this.bytes.length / this.blockLength };
  }

  read(into: Uint8Array, offset: number): number {
    if (!(offset >= 0) || offset + into.length > this.bytes.length) throw new RangeError('flash: read outside the partition');
    into.set(this.bytes.subarray(offset, offset + into.length));
    return into.length;
  }

  write(bytes: Uint8Array, offset: number): void {
    if (!(offset >= 0) || offset + bytes.length > this.bytes.length) throw new RangeError('flash: write outside the partition');
    for (let i = 0; i < bytes.length; i++)
      if (bytes[i]! & ~this.bytes[offset + i]! & 0xff) throw new Error(`flash: write would set a bit at ${offset + i}`);
    this.beforeStep?.();
    const half = bytes.length >> 1;
    this.#torn(() => this.#program(bytes.subarray(0, half), offset));
    this.#program(bytes, offset);
    this.written += bytes.length;
    this.writes++;
  }

  eraseBlock(start: number, end = start + 1): void {
    if (!(start >= 0 && end > start && end * this.blockLength <= this.bytes.length)) throw new RangeError('flash: no such blocks');
    this.beforeStep?.();
    const from = start * this.blockLength;
    const to = end * this.blockLength;
    this.#torn(() => this.bytes.fill(0xff, from, from + ((to - from) >> 1)));
    this.bytes.fill(0xff, from, to);
    this.erased += end - start;
  }

  #program(bytes: Uint8Array, offset: number): void {
    for (let i = 0; i < bytes.length; i++) this.bytes[offset + i]! &= bytes[i]!;
  }

  /** The half-way step: a cut there leaves `partial` done. */
  #torn(partial: () => void): void {
    try {
      this.beforeStep?.();
    } catch (e) {
      partial();
      throw e;
    }
  }
}
