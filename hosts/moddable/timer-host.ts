// One Moddable Timer, armed at the core's next deadline.
//
// While deadlines move, the same timer object is rescheduled (Timer.schedule)
// rather than cleared and re-created: Moddable's docs recommend unscheduling
// over clearing when the next time is unknown. A timer whose repeat interval
// is 0 when its callback returns is freed by the runtime, so it is always
// scheduled with a long repeat interval.
//
// When the timer fires it is cleared inside its callback and the next
// deadline gets a new timer: a timer is never rescheduled from its own
// callback. Moddable's lin timer (the mcsim simulator, SDK 8.2) mishandles
// that: modTimerReschedule adds a GLib source, then modTimerExecuteOne adds
// another on return and keeps only the second, so the first fires later on a
// freed timer record (a segfault seen in mcsim once reconnect timers ran).
// Clearing a timer in its own callback is safe on every Moddable port.

import type { TimerApi } from './platform.js';

/** The part of the core the timer drives. DormouseClient has exactly these. */
export interface DeadlineSource {
  tick(now: number): void;
  /** Absolute ms on the same clock, or Infinity for "nothing to do". */
  nextDeadline(): number;
}

/** Repeat interval that keeps the timer alive; it never fires at this pace because sync() reschedules first. */
const KEEP_ALIVE_MS = 0x3fffffff;

export class DeadlineTimer<T> {
  readonly #timers: TimerApi<T>;
  readonly #core: DeadlineSource;
  readonly #clock: () => number;
  #timer: T | undefined;
  #armedAt = Infinity; // deadline the timer is scheduled for

  constructor(timers: TimerApi<T>, core: DeadlineSource, clock: () => number) {
    this.#timers = timers;
    this.#core = core;
    this.#clock = clock;
  }

  /** The deadline currently armed, or Infinity. */
  get armedAt(): number {
    return this.#armedAt;
  }

  /** Re-read the core's next deadline and (re)arm. Call after every call into the core. */
  sync(): void {
    const deadline = this.#core.nextDeadline();
    if (deadline === this.#armedAt) return;
    let timer = this.#timer;
    if (timer === undefined) {
      if (deadline === Infinity) return;
      timer = this.#timer = this.#timers.repeat((fired) => this.#fire(fired), KEEP_ALIVE_MS);
    }
    this.#armedAt = deadline;
    if (deadline === Infinity) {
      this.#timers.schedule(timer); // unscheduled: infinite intervals, kept for reuse
      return;
    }
    const delay = deadline - this.#clock();
    this.#timers.schedule(timer, delay <= 0 ? 0 : delay < KEEP_ALIVE_MS ? delay : KEEP_ALIVE_MS, KEEP_ALIVE_MS);
  }

  /** Free the timer (before deep sleep, or when the client is discarded). */
  dispose(): void {
    this.#timers.clear(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  #fire(fired: T): void {
    if (fired !== this.#timer) return;
    // Free the fired timer here instead of rescheduling it (see the top of this file);
    // the sync() below arms a new one if the core has another deadline.
    this.#timers.clear(fired);
    this.#timer = undefined;
    this.#armedAt = Infinity;
    this.#core.tick(this.#clock());
    this.sync();
  }
}
