// Longer differential run against mqtt-packet:
//   node --import tsx bench/differential.ts [COUNT=100000] [SEED=random]
import { seedFromEnv } from '../test/support/prng.js';
import { runDifferential } from '../test/support/random-packets.js';

const count = Number(process.argv[2] ?? 100_000);
const seed = process.argv[3] !== undefined ? Number(process.argv[3]) >>> 0 : seedFromEnv();
const t0 = performance.now();
const r = runDifferential(count, seed, 50);
const ms = performance.now() - t0;
console.log(`seed ${seed}: ${r.packets} packets, ${r.checks} checks, ${r.mismatches.length} mismatches, ${ms.toFixed(0)} ms`);
if (Object.keys(r.peerLimits).length > 0) console.log('known mqtt-packet limits met (not mismatches):', r.peerLimits);
for (const m of r.mismatches) console.log(JSON.stringify(m));
process.exitCode = r.mismatches.length === 0 ? 0 : 1;
