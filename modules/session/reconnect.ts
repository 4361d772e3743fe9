// Exponential backoff with full jitter: delay = random(0, min(cap, base * 2^attempt)).
// Full jitter spreads a fleet that lost its broker at the same instant over the
// whole window, so the broker sees a trickle instead of a storm. The attempt
// counter resets only after a connection has stayed up for `resetAfterMs`, so a
// broker that accepts and then drops connections is backed off as well.
//
// Session takeover: two devices sharing a client id kick each other off the
// broker forever, each reconnect ending the other's session [MQTT-3.1.4-3].
// The broker says so in MQTT 5 (DISCONNECT 0x8E, session taken over); in 3.1.1
// the only sign is the broker closing the connection right after CONNACK, time
// after time. Either stops the ordinary loop: the next attempt waits a long,
// capped window with equal jitter (at least half of it), growing per takeover.

export interface ReconnectOptions {
  /** First window, ms. Default 1000. */
  baseMs?: number;
  /** Largest window, ms. Default 60000. */
  capMs?: number;
  /** A connection that stays up this long resets the backoff, ms. Default 30000. */
  resetAfterMs?: number;
  /** Jitter mode; 'full' is the default and the one to use. The others exist for the storm comparison. */
  jitter?: 'full' | 'none';
  /** 'exponential' (default) or 'fixed' (always baseMs) or 'immediate' (always 0). */
  backoff?: 'exponential' | 'fixed' | 'immediate';
  /** First window after a session takeover, ms. Default 300000 (5 min). */
  takeoverBaseMs?: number;
  /** Largest window after takeovers, ms. Default 3600000 (1 h). */
  takeoverCapMs?: number;
  /** The broker closing the connection this soon after CONNACK counts as a kick, ms. Default 2000. */
  kickWithinMs?: number;
  /** This many kicks in a row are taken as a takeover (3.1.1 has no reason code for it). Default 3; 0 turns it off. */
  kicksForTakeover?: number;
}

/** Why a connection ended or an attempt failed, as far as the backoff cares. */
export const enum LossKind {
  /** An attempt failed, or this side closed the connection (timeout, protocol error). */
  Failed = 0,
  /** A refusal that will not heal by retrying fast (bad credentials, banned). */
  Permanent = 1,
  /** The server closed a connection (TCP close or DISCONNECT). */
  ServerClosed = 2,
  /** The server said the session was taken over (MQTT 5 DISCONNECT 0x8E). */
  TakenOver = 3,
}

const MODE_EXPONENTIAL = 0;
const MODE_FIXED = 1;
const MODE_IMMEDIATE = 2;

export class ReconnectPolicy {
  readonly baseMs: number;
  readonly capMs: number;
  readonly resetAfterMs: number;
  readonly takeoverBaseMs: number;
  readonly takeoverCapMs: number;
  readonly kickWithinMs: number;
  readonly kicksForTakeover: number;
  #jitter: boolean;
  #mode: number;
  /** Failed attempts since the last connection that stayed up. */
  attempt = 0;
  /** Server closes within kickWithinMs of CONNACK, in a row. */
  kicks = 0;
  /** Takeover backoffs since the last connection that stayed up. */
  takeovers = 0;
  /** The last delay nextDelay gave was a takeover backoff. */
  takenOver = false;
  /** When the current connection came up, or -1. */
  #upSince = -1;

  constructor(options: ReconnectOptions = {}) {
    this.baseMs = options.baseMs ?? 1000;
    this.capMs = options.capMs ?? 60000;
    this.resetAfterMs = options.resetAfterMs ?? 30000;
    this.takeoverBaseMs = options.takeoverBaseMs ?? 300000;
    this.takeoverCapMs = options.takeoverCapMs ?? 3600000;
    this.kickWithinMs = options.kickWithinMs ?? 2000;
    this.kicksForTakeover = options.kicksForTakeover ?? 3;
    if (!(this.baseMs >= 0) || !(this.capMs >= this.baseMs)) {
      throw new RangeError('ReconnectPolicy: need 0 <= baseMs <= capMs');
    }
    if (!(this.takeoverBaseMs >= 0) || !(this.takeoverCapMs >= this.takeoverBaseMs)) {
      throw new RangeError('ReconnectPolicy: need 0 <= takeoverBaseMs <= takeoverCapMs');
    }
    if (!Number.isInteger(this.kicksForTakeover) || this.kicksForTakeover < 0) {
      throw new RangeError('ReconnectPolicy: kicksForTakeover must be a whole number >= 0');
    }
    this.#jitter = (options.jitter ?? 'full') === 'full';
    const backoff = options.backoff ?? 'exponential';
    this.#mode = backoff === 'fixed' ? MODE_FIXED : backoff === 'immediate' ? MODE_IMMEDIATE : MODE_EXPONENTIAL;
  }

  /** The connection is up (CONNACK accepted). */
  connected(now: number): void {
    this.#upSince = now;
  }

  /**
   * The connection went down or an attempt failed; returns the delay before the
   * next attempt. `permanent` refusals (bad credentials, not authorized, banned)
   * will not heal by retrying fast, so they wait about the cap. After it,
   * `takenOver` says whether this was a takeover backoff.
   */
  nextDelay(now: number, random: () => number, kind: LossKind | boolean = LossKind.Failed): number {
    const k = kind === true ? LossKind.Permanent : kind === false ? LossKind.Failed : kind;
    const up = this.#upSince >= 0 ? now - this.#upSince : -1;
    this.#upSince = -1;
    if (up >= this.resetAfterMs) {
      this.attempt = 0;
      this.takeovers = 0;
    }
    if (up >= 0 && k === LossKind.ServerClosed && up < this.kickWithinMs) this.kicks++;
    else if (up >= 0) this.kicks = 0;
    this.takenOver = k === LossKind.TakenOver || (this.kicksForTakeover > 0 && this.kicks >= this.kicksForTakeover);
    if (this.takenOver) {
      this.kicks = 0;
      const window = backoffWindow(this.takeoverBaseMs, this.takeoverCapMs, this.takeovers);
      this.takeovers++;
      return equalJitter(window, random);
    }
    if (k === LossKind.Permanent) {
      this.attempt++;
      return equalJitter(this.capMs, random);
    }
    let window: number;
    if (this.#mode === MODE_IMMEDIATE) window = 0;
    else if (this.#mode === MODE_FIXED) window = this.baseMs;
    else window = backoffWindow(this.baseMs, this.capMs, this.attempt);
    this.attempt++;
    return this.#jitter ? Math.floor(random() * window) : window;
  }

  reset(): void {
    this.attempt = 0;
    this.kicks = 0;
    this.takeovers = 0;
    this.takenOver = false;
    this.#upSince = -1;
  }
}

/** The backoff window after `n` steps: base × 2^n, at most cap. */
export function backoffWindow(baseMs: number, capMs: number, n: number): number {
  return Math.min(capMs, baseMs * Math.pow(2, Math.min(n, 30)));
}

/** A delay drawn from [window/2, window] ("equal jitter"): spread out, yet never much shorter than the window. */
export function equalJitter(windowMs: number, random: () => number): number {
  return Math.floor(windowMs * (0.5 + 0.5 * random()));
}
