import { describe, expect, it } from 'vitest';
import { DeadlineTimer, type DeadlineSource } from '../../../hosts/moddable/timer-host.js';
import { FakeTimers, type FakeTimerHandle } from './fakes.js';

class Deadlines implements DeadlineSource {
  readonly ticks: number[] = [];
  queue: number[] = [];
  constructor(readonly timers: FakeTimers) {}
  tick(now: number): void {
    this.ticks.push(now);
    while (this.queue.length && this.queue[0]! <= now) this.queue.shift();
  }
  nextDeadline(): number {
    return this.queue.length ? this.queue[0]! : Infinity;
  }
}

describe('DeadlineTimer', () => {
  it('arms a timer at each deadline, frees it when it fires and arms a new one for the next', () => {
    const timers = new FakeTimers();
    const core = new Deadlines(timers);
    const timer = new DeadlineTimer(timers, core, timers.clock);
    timer.sync();
    expect(timers.created).toBe(0); // nothing to wait for: no timer yet
    core.queue = [1000, 2500, 60000];
    timer.sync();
    expect(timer.armedAt).toBe(1000);
    timers.advance(999);
    expect(core.ticks).toEqual([]);
    timers.advance(1);
    expect(core.ticks).toEqual([1000]);
    expect(timer.armedAt).toBe(2500);
    expect(timers.live.size).toBe(1); // the fired timer was freed, one new timer for 2500
    timers.advance(100_000);
    expect(core.ticks).toEqual([1000, 2500, 60000]);
    expect(timer.armedAt).toBe(Infinity);
    expect(timers.created).toBe(3);
    expect(timers.live.size).toBe(0); // nothing left to wait for: no timer
    core.queue = [timers.now + 10];
    timer.sync();
    timers.advance(10);
    expect(core.ticks.length).toBe(4);
    expect(timers.created).toBe(4);
  });

  it('reuses one timer while the deadline moves, and never reschedules a timer from its own callback', () => {
    // Moddable's lin timer (mcsim) leaves a stray GLib source behind when a timer is
    // rescheduled from inside its own callback; the stray fires later on freed memory.
    class StrictTimers extends FakeTimers {
      firing: FakeTimerHandle | undefined;
      override repeat(callback: (t: FakeTimerHandle) => void, interval: number): FakeTimerHandle {
        return super.repeat((t) => {
          this.firing = t;
          try {
            callback(t);
          } finally {
            this.firing = undefined;
          }
        }, interval);
      }
      override schedule(t: FakeTimerHandle, initial?: number, repeat?: number): void {
        if (t === this.firing) throw new Error('timer rescheduled from its own callback');
        super.schedule(t, initial, repeat);
      }
    }
    const timers = new StrictTimers();
    const core = new Deadlines(timers);
    const timer = new DeadlineTimer(timers, core, timers.clock);
    core.queue = [5000];
    timer.sync();
    core.queue = [3000];
    timer.sync();
    core.queue = [4000];
    timer.sync();
    expect(timers.created).toBe(1);
    expect(timer.armedAt).toBe(4000);
    core.queue = [4000, 4100, 4200];
    timers.advance(10_000);
    expect(core.ticks).toEqual([4000, 4100, 4200]);
    expect(timers.live.size).toBe(0);
  });

  it('moves the timer when the deadline moves, and fires at once for a past deadline', () => {
    const timers = new FakeTimers();
    const core = new Deadlines(timers);
    const timer = new DeadlineTimer(timers, core, timers.clock);
    core.queue = [5000];
    timer.sync();
    core.queue = [300, 5000];
    timer.sync();
    timers.advance(300);
    expect(core.ticks).toEqual([300]);
    expect(timer.armedAt).toBe(5000);
    timers.now = 9000; // the clock jumped past the deadline (a long blocking call)
    core.queue = [8000];
    timer.sync();
    timers.advance(0);
    expect(core.ticks).toEqual([300, 9000]);
  });

  it('dispose() frees the timer', () => {
    const timers = new FakeTimers();
    const core = new Deadlines(timers);
    const timer = new DeadlineTimer(timers, core, timers.clock);
    core.queue = [10];
    timer.sync();
    timer.dispose();
    expect(timers.live.size).toBe(0);
    timers.advance(100);
    expect(core.ticks).toEqual([]);
  });
});
