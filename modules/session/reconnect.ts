// Exponential backoff with full jitter: delay = random(0, min(cap, base * 2^attempt)).
// Full jitter spreads a fleet that lost its broker at the same instant over the
// whole window, so the broker sees a trickle instead of a storm. The attempt
// counter resets only after a connection has stayed up for `resetAfterMs`, so a
// broker that accepts and then drops connections is backed off as well.

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
}

const MODE_EXPONENTIAL = 0;
const MODE_FIXED = 1;
const MODE_IMMEDIATE = 2;

export class ReconnectPolicy {
  readonly baseMs: number;
  readonly capMs: number;
  readonly resetAfterMs: number;
  #jitter: boolean;
  #mode: number;
  /** Failed attempts since the last connection that stayed up. */
  attempt = 0;
  /** When the current connection came up, or -1. */
  #upSince = -1;

  constructor(options: ReconnectOptions = {}) {
    this.baseMs = options.baseMs ?? 1000;
    this.capMs = options.capMs ?? 60000;
    this.resetAfterMs = options.resetAfterMs ?? 30000;
    if (!(this.baseMs >= 0) || !(this.capMs >= this.baseMs)) {
      throw new RangeError('ReconnectPolicy: need 0 <= baseMs <= capMs');
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
   * will not heal by retrying fast, so they wait about the cap.
   */
  nextDelay(now: number, random: () => number, permanent = false): number {
    if (this.#upSince >= 0 && now - this.#upSince >= this.resetAfterMs) this.attempt = 0;
    this.#upSince = -1;
    if (permanent) {
      this.attempt++;
      return Math.floor(this.capMs * (0.5 + 0.5 * random()));
    }
    let window: number;
    if (this.#mode === MODE_IMMEDIATE) window = 0;
    else if (this.#mode === MODE_FIXED) window = this.baseMs;
    else window = Math.min(this.capMs, this.baseMs * Math.pow(2, Math.min(this.attempt, 30)));
    this.attempt++;
    return this.#jitter ? Math.floor(random() * window) : window;
  }

  reset(): void {
    this.attempt = 0;
    this.#upSince = -1;
  }
}
