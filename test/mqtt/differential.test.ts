// Differential check against mqtt-packet 9: ours -> its parser and its
// generate -> ours, every packet type, both versions, seeded (SEED=... replays).
import { describe, expect, it } from 'vitest';
import { seedFromEnv } from '../support/prng.js';
import { runDifferential } from '../support/random-packets.js';

const COUNT = 12_000;

describe('differential vs mqtt-packet', () => {
  it(`${COUNT} random packets, both directions, zero mismatches`, () => {
    const seed = seedFromEnv();
    const r = runDifferential(COUNT, seed);
    if (r.mismatches.length > 0) {
      console.error(`differential failed: replay with SEED=${seed} (or node --import tsx bench/differential.ts ${COUNT} ${seed})`);
      for (const m of r.mismatches) console.error(JSON.stringify(m));
    }
    expect(r.mismatches, `seed ${seed}`).toEqual([]);
    expect(r.packets).toBe(COUNT);
    expect(r.checks).toBe(COUNT * 3);
  });
});
