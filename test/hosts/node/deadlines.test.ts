// The process-wide deadline queue behind every Node client's timer: deadlines
// fire in order, not before they are due, once each; moving and cancelling
// work; a deadline may schedule itself again from fire().
import { describe, expect, it } from 'vitest';
import { cancelDeadline, queuedDeadlines, scheduleDeadline, type Deadline } from '../../../hosts/node/deadlines.js';
import { Prng } from '../../support/prng.js';

function entry(name: string, log: Array<[string, number]>, onFire?: () => void): Deadline & { name: string; wanted: number } {
  return {
    name,
    wanted: 0,
    dueAt: 0,
    queueIndex: -1,
    fire() {
      log.push([name, performance.now()]);
      onFire?.();
    },
  };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('deadline queue', () => {
  it('fires 200 deadlines once each, in due order, none early; moved ones at their new time, cancelled ones never', async () => {
    const rng = new Prng(7);
    const log: Array<[string, number]> = [];
    const all = Array.from({ length: 200 }, (_, i) => entry(`d${i}`, log));
    const t0 = performance.now();
    // `wanted` is the due time asked for, in ms after t0: a delay counts from
    // the call, and a pause (GC, a busy machine) between two calls moves it.
    for (const d of all) {
      const delay = rng.int(0, 120);
      d.wanted = performance.now() - t0 + delay;
      scheduleDeadline(d, delay);
    }
    // Move 40 (earlier or later) and cancel 30.
    for (const d of all.slice(0, 40)) {
      const elapsed = performance.now() - t0;
      d.wanted = Math.max(rng.int(0, 120), elapsed);
      scheduleDeadline(d, d.wanted - elapsed);
    }
    const cancelled = new Set(all.slice(40, 70).map((d) => d.name));
    for (const d of all.slice(40, 70)) cancelDeadline(d);
    expect(queuedDeadlines()).toBe(170);
    await settle(200);
    expect(queuedDeadlines()).toBe(0);
    const fired = log.map(([n]) => n);
    expect(new Set(fired).size).toBe(fired.length); // once each
    expect(fired.length).toBe(170);
    expect(fired.some((n) => cancelled.has(n))).toBe(false);
    const byName = new Map(all.map((d) => [d.name, d]));
    let lastWanted = -1;
    for (const [n, at] of log) {
      const d = byName.get(n)!;
      // Node's timer clock counts whole milliseconds: up to 1 ms early is allowed (and documented).
      expect(at - t0).toBeGreaterThanOrEqual(d.wanted - 1.5);
      expect(d.wanted).toBeGreaterThanOrEqual(lastWanted - 1); // in order (due times are whole ms, rounded up: ties within 1 ms in any order)
      lastWanted = Math.max(lastWanted, d.wanted);
    }
  });

  it('a deadline can schedule itself again from fire(), and cancelling the last one leaves nothing armed', async () => {
    const log: Array<[string, number]> = [];
    let n = 0;
    const d: Deadline = entry('again', log, () => {
      if (++n < 5) scheduleDeadline(d, 5);
    });
    scheduleDeadline(d, 0);
    await settle(100);
    expect(log.length).toBe(5);
    const other = entry('never', log);
    scheduleDeadline(other, 50);
    expect(queuedDeadlines()).toBe(1);
    cancelDeadline(other);
    cancelDeadline(other); // twice is harmless
    expect(queuedDeadlines()).toBe(0);
    await settle(80);
    expect(log.length).toBe(5);
  });
});
