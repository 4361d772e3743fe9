// The host's table of messages in flight by token, against a Map as the model,
// with the shapes a client produces: tokens rising by one, most taken in order,
// some held long (a QoS 2 message behind QoS 1 ones), random takes, misses.
import { describe, expect, it } from 'vitest';
import { TokenTable } from '../../../hosts/node/token-table.js';
import { Prng, seedFromEnv } from '../../support/prng.js';

describe('TokenTable', () => {
  it('matches a Map over 200,000 random operations with up to maxLive entries', () => {
    const rng = new Prng(seedFromEnv());
    for (const maxLive of [1, 2, 3, 20, 33]) {
      const t = new TokenTable<string>(maxLive);
      const model = new Map<number, string>();
      let next = 1;
      for (let step = 0; step < 40_000; step++) {
        const live = [...model.keys()];
        if (model.size < maxLive && rng.bool(0.55)) {
          // Tokens skip now and then (QoS 0 messages take none; some are refused).
          next += rng.bool(0.1) ? rng.int(1, 5000) : 1;
          t.set(next, `v${next}`);
          model.set(next, `v${next}`);
        } else if (live.length > 0) {
          // Mostly the oldest (acks in order), sometimes any, sometimes one that is not there.
          const pick = rng.bool(0.6) ? live[0]! : rng.bool(0.8) ? rng.pick(live) : next + 1 + rng.int(0, 100);
          expect(t.take(pick)).toBe(model.get(pick));
          model.delete(pick);
        }
        expect(t.size).toBe(model.size);
      }
      for (const [k, v] of model) expect(t.take(k)).toBe(v);
      expect(t.size).toBe(0);
    }
  });

  it('keeps every key reachable when tokens collide on their low bits', () => {
    const t = new TokenTable<number>(4); // 8 slots
    const tokens = [8, 16, 24, 9, 32]; // 8, 16, 24 and 32 share slot 0; 9 lands in their run
    for (const k of tokens) t.set(k, k * 10);
    expect(t.take(16)).toBe(160);
    expect(t.take(999)).toBeUndefined();
    for (const k of [8, 24, 9, 32]) expect(t.take(k)).toBe(k * 10);
    expect(t.size).toBe(0);
  });

  it('grows rather than fails if more than maxLive tokens are ever live at once', () => {
    const t = new TokenTable<number>(2); // 4 slots
    for (let k = 1; k <= 50; k++) t.set(k * 4, k); // all on the same low bits
    expect(t.size).toBe(50);
    for (let k = 50; k >= 1; k--) expect(t.take(k * 4)).toBe(k);
    expect(t.size).toBe(0);
  });
});
