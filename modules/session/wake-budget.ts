// One energy budget per wake of a battery device: a single deadline for the
// whole wake (Wi-Fi join, TCP, TLS, MQTT, acks), per-step timings for the
// trace, and the length of the next deep sleep. A wake whose broker (or
// Wi-Fi) could not be reached counts as a failure, and the count is kept
// across deep sleep in a 16-byte record in a caller-given region (RTC
// memory), so a device whose broker is down sleeps longer each time instead
// of waking at its normal rate to fail again: the reconnect backoff continues
// across sleeps. A good wake resets it.
//
// The sleep after n failures in a row is drawn from [w/2, w] with
// w = min(maxSleepMs, sleepMs × 2^n) ("equal jitter"): a fleet that lost its
// broker together spreads out, yet no device wakes sooner than half its
// window, since each early wake is a Wi-Fi join paid for nothing. It is never
// shorter than sleepMs. A session takeover (two devices with one client id)
// sleeps from a window of its own, takeoverSleepMs × 2^(takeovers-1).
//
// Record (little-endian): u16 magic 0xB0D6, u8 format 1, u8 reserved,
// u16 failures, u16 takeovers, u32 wakes, u32 CRC-32 of bytes 0..11.

import { crc32 } from './crc32.js';
import type { RandomSource } from './ports.js';
import { backoffWindow, equalJitter } from './reconnect.js';

export const WAKE_BUDGET_RECORD_BYTES = 16;
const MAGIC = 0xb0d6;
const FORMAT = 1;

export interface WakeBudgetOptions {
  /** The sleep after a good wake, ms. */
  sleepMs: number;
  /** The whole wake, Wi-Fi to last ack, ms. Default 10000. */
  windowMs?: number;
  /** Longest sleep after failed wakes, ms. Default 6 h (and at least sleepMs). */
  maxSleepMs?: number;
  /** First sleep window after a session takeover, ms. Default 1 h. */
  takeoverSleepMs?: number;
}

/** How a wake ended. */
export const enum WakeOutcome {
  /** The broker was reached and the wake's work is done (sleep-ready). */
  Delivered = 0,
  /** Wi-Fi, the broker or its acknowledgements were not reached within the window. */
  Unreachable = 1,
  /** Another device with this client id holds the session (ClientEvent.TakenOver). */
  TakenOver = 2,
}

/** Steps timed in a wake, for the per-wake trace. */
export const enum WakeStep {
  WifiJoined = 0,
  TcpOpen = 1,
  TlsDone = 2,
  Connack = 3,
  LastAck = 4,
}
const STEPS = 5;

export class WakeBudget {
  readonly sleepMs: number;
  readonly windowMs: number;
  readonly maxSleepMs: number;
  readonly takeoverSleepMs: number;
  /** Failed wakes in a row (kept across deep sleep). */
  failures = 0;
  /** Takeover wakes in a row (kept across deep sleep). */
  takeovers = 0;
  /** Wakes recorded (kept across deep sleep, wraps at 2^32). */
  wakes = 0;
  /** When this wake began, or -1. */
  startedAt = -1;
  /** ms from the start of the wake to each WakeStep; -1 if not reached. */
  readonly steps: Int32Array;
  #random: RandomSource;

  constructor(options: WakeBudgetOptions, random: RandomSource = Math.random) {
    const sleep = options.sleepMs;
    if (!(sleep >= 0)) throw new RangeError('WakeBudget: sleepMs must be >= 0');
    this.sleepMs = sleep;
    this.windowMs = options.windowMs ?? 10000;
    this.maxSleepMs = Math.max(sleep, options.maxSleepMs ?? 6 * 3600_000);
    this.takeoverSleepMs = options.takeoverSleepMs ?? 3600_000;
    if (!(this.windowMs > 0) || !(this.takeoverSleepMs >= 0)) throw new RangeError('WakeBudget: windowMs must be > 0 and takeoverSleepMs >= 0');
    this.steps = new Int32Array(STEPS).fill(-1);
    this.#random = random;
  }

  /** Load the counters kept across deep sleep. A missing or corrupt record (power-on noise) starts from zero: false. */
  restore(region: Uint8Array): boolean {
    this.failures = this.takeovers = this.wakes = 0;
    if (region.length < WAKE_BUDGET_RECORD_BYTES) throw new RangeError(`WakeBudget needs a region of at least ${WAKE_BUDGET_RECORD_BYTES} bytes`);
    const v = new DataView(region.buffer, region.byteOffset, WAKE_BUDGET_RECORD_BYTES);
    if (v.getUint16(0, true) !== MAGIC || region[2] !== FORMAT || v.getUint32(12, true) !== crc32(region, 0, 12)) return false;
    this.failures = v.getUint16(4, true);
    this.takeovers = v.getUint16(6, true);
    this.wakes = v.getUint32(8, true);
    return true;
  }

  /** Write the counters into the region (before deep sleep). */
  save(region: Uint8Array): void {
    if (region.length < WAKE_BUDGET_RECORD_BYTES) throw new RangeError(`WakeBudget needs a region of at least ${WAKE_BUDGET_RECORD_BYTES} bytes`);
    const v = new DataView(region.buffer, region.byteOffset, WAKE_BUDGET_RECORD_BYTES);
    v.setUint16(0, MAGIC, true);
    region[2] = FORMAT;
    region[3] = 0;
    v.setUint16(4, Math.min(this.failures, 0xffff), true);
    v.setUint16(6, Math.min(this.takeovers, 0xffff), true);
    v.setUint32(8, this.wakes >>> 0, true);
    v.setUint32(12, crc32(region, 0, 12), true);
  }

  /** The wake starts now: the one deadline is now + windowMs. */
  begin(now: number): number {
    this.startedAt = now;
    this.steps.fill(-1);
    return now + this.windowMs;
  }

  get deadline(): number {
    return this.startedAt < 0 ? Infinity : this.startedAt + this.windowMs;
  }

  /** ms left of the window (0 once spent). */
  left(now: number): number {
    return Math.max(0, this.deadline - now);
  }

  expired(now: number): boolean {
    return now >= this.deadline;
  }

  /** A step's timeout: its own bound, but never past the wake's deadline. */
  timeout(now: number, stepMaxMs: number): number {
    return Math.min(stepMaxMs, this.left(now));
  }

  /** Record that a step was reached (for the trace). */
  mark(step: WakeStep, now: number): void {
    if (this.startedAt >= 0 && this.steps[step] < 0) this.steps[step] = now - this.startedAt;
  }

  /** The wake is over: update the counters and return how long to sleep, ms. Save the record after. */
  finish(outcome: WakeOutcome): number {
    this.wakes = (this.wakes + 1) >>> 0;
    this.startedAt = -1;
    if (outcome === WakeOutcome.Delivered) {
      this.failures = 0;
      this.takeovers = 0;
      return this.sleepMs;
    }
    let window: number;
    if (outcome === WakeOutcome.TakenOver) {
      this.takeovers++;
      window = backoffWindow(this.takeoverSleepMs, this.maxSleepMs, this.takeovers - 1);
    } else {
      this.failures++;
      window = backoffWindow(this.sleepMs, this.maxSleepMs, this.failures);
    }
    return Math.max(this.sleepMs, equalJitter(window, this.#random));
  }
}
