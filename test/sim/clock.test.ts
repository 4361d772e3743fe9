import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../sim/clock.js';
import { Prng } from '../../sim/prng.js';

describe('VirtualClock', () => {
  it('runs events by time, ties in scheduling order, and never goes back', () => {
    const c = new VirtualClock(0);
    const seen: string[] = [];
    const rnd = new Prng(5);
    const expected: Array<[number, number, string]> = [];
    for (let i = 0; i < 500; i++) {
      const t = rnd.int(0, 50);
      expected.push([t, i, `e${i}`]);
      c.at(t, (name: string) => seen.push(name), `e${i}`);
    }
    c.at(20, () => c.at(10, () => seen.push('past'))); // the past is clamped to now
    c.runUntil(100);
    expected.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const order = seen.filter((s) => s !== 'past');
    expect(order).toEqual(expected.map((e) => e[2]));
    expect(seen.indexOf('past')).toBeGreaterThan(seen.indexOf(expected.filter((e) => e[0] <= 20).at(-1)![2]));
    expect(c.now).toBe(100);
  });
});
