// Topic strings for received messages without decoding them again: a stream
// on a few topics (sensors/+, a device's own commands) sees the same topic
// bytes over and over, and a string made per message is most of what the
// receive path would allocate besides the payload. This keeps 128 topics,
// shared by every client of the process (strings are immutable), so a
// subscriber to many interleaved topics allocates none once each has been
// seen. An idle client holds nothing.
//
// Two ways per set: with one way (a direct-mapped table of 64), two of 16
// topics in turn shared a slot in most draws of names (the birthday bound:
// 16 names in 64 slots collide 85 % of the time) and evicted each other on
// every round, and each miss costs a string and a copy of the key. The keys
// live in one arena allocated once, so a miss allocates the string alone.

import type { DecodedPublish } from '../../modules/mqtt/decode.js';

const SETS = 64;
const WAYS = 2;
/** Topics longer than this are not kept (decoded per message). */
const MAX_BYTES = 128;

const arena = new Uint8Array(SETS * WAYS * MAX_BYTES);
const lengths = new Int16Array(SETS * WAYS).fill(-1);
const hashes = new Int32Array(SETS * WAYS);
const values: string[] = new Array<string>(SETS * WAYS).fill('');
/** Per set: the way used last (the other is replaced on a miss). */
const recent = new Uint8Array(SETS);

function matches(entry: number, b: Uint8Array, start: number, n: number): boolean {
  const at = entry * MAX_BYTES;
  for (let i = 0; i < n; i++) if (arena[at + i] !== b[start + i]) return false;
  return true;
}

/** The topic of a decoded PUBLISH, from the cache when its bytes were seen before. */
export function topicOf(p: DecodedPublish): string {
  const b = p.bytes;
  const start = p.topicStart;
  const n = p.topicEnd - start;
  if (n === 0 || n > MAX_BYTES) return p.topic;
  let h = n;
  for (let i = start; i < start + n; i++) h = (Math.imul(h, 31) + b[i]!) | 0;
  h ^= (h >>> 7) ^ (h >>> 15);
  const set = h & (SETS - 1);
  const e0 = set * WAYS;
  for (let w = 0; w < WAYS; w++) {
    const e = e0 + w;
    if (lengths[e] === n && hashes[e] === h && matches(e, b, start, n)) {
      recent[set] = w;
      return values[e]!;
    }
  }
  const w = recent[set]! ^ 1;
  const e = e0 + w;
  const s = p.topic;
  const at = e * MAX_BYTES;
  for (let i = 0; i < n; i++) arena[at + i] = b[start + i]!;
  lengths[e] = n;
  hashes[e] = h;
  values[e] = s;
  recent[set] = w;
  return s;
}
