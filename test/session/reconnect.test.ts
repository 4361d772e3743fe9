import { describe, expect, it } from 'vitest';
import { ReconnectPolicy } from '../../modules/session/reconnect.js';
import { Prng } from '../support/prng.js';

describe('ReconnectPolicy', () => {
  it('full jitter: each delay lies in [0, min(cap, base × 2^attempt)) and uses the whole window', () => {
    const prng = new Prng(11);
    const p = new ReconnectPolicy({ baseMs: 100, capMs: 3200 });
    const maxSeen: number[] = [];
    for (let attempt = 0; attempt < 8; attempt++) {
      const window = Math.min(3200, 100 * 2 ** attempt);
      let max = 0;
      // Re-run the same attempt many times to see the spread.
      for (let k = 0; k < 400; k++) {
        p.attempt = attempt;
        const d = p.nextDelay(0, () => prng.float());
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(window);
        max = Math.max(max, d);
      }
      expect(max).toBeGreaterThan(window * 0.9);
      maxSeen.push(max);
    }
    expect(maxSeen.at(-1)).toBeLessThan(3200);
  });

  it('grows with failures and resets only after a connection stayed up long enough', () => {
    const p = new ReconnectPolicy({ baseMs: 100, capMs: 10_000, resetAfterMs: 5000, jitter: 'none' });
    expect([p.nextDelay(0, Math.random), p.nextDelay(0, Math.random), p.nextDelay(0, Math.random)]).toEqual([100, 200, 400]);
    p.connected(1000);
    expect(p.nextDelay(2000, Math.random)).toBe(800); // dropped after 1 s: the broker accepts and drops, keep backing off
    p.connected(3000);
    expect(p.nextDelay(9000, Math.random)).toBe(100); // stayed up 6 s: reset
  });

  it('a refusal that will not heal waits about the cap', () => {
    const p = new ReconnectPolicy({ baseMs: 100, capMs: 60_000 });
    for (const r of [0, 0.5, 0.999]) expect(p.nextDelay(0, () => r, true)).toBeGreaterThanOrEqual(30_000);
  });

  it('fixed and immediate modes exist for the storm comparison', () => {
    expect(new ReconnectPolicy({ backoff: 'fixed', baseMs: 500, jitter: 'none' }).nextDelay(0, Math.random)).toBe(500);
    expect(new ReconnectPolicy({ backoff: 'immediate' }).nextDelay(0, Math.random)).toBe(0);
  });

  it('rejects a cap below the base', () => {
    expect(() => new ReconnectPolicy({ baseMs: 10, capMs: 5 })).toThrow(/baseMs <= capMs/);
  });
});
