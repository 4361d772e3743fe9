// Moved to sim/prng.ts so the simulator and the testing kit share it.
export { Prng, seedFromEnv } from '../../sim/prng.js';
