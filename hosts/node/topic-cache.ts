// Topic strings for received messages without decoding them again: a stream
// on a few topics (sensors/+, a device's own commands) sees the same topic
// bytes over and over, and a string made per message is most of what the
// receive path would allocate besides the payload. The core's decoder keeps
// the last topic's string; this keeps 64, shared by every client of the
// process (strings are immutable), so a subscriber to many interleaved topics
// allocates none once each has been seen. An idle client holds nothing.

import type { DecodedPublish } from '../../modules/mqtt/decode.js';

const SLOTS = 64;
/** Topics longer than this are not kept (a copy each would cost more than it saves). */
const MAX_BYTES = 256;

// Direct-mapped: one slot per hash of the topic's bytes, which are kept to compare with.
const keys: Array<Uint8Array | null> = new Array<Uint8Array | null>(SLOTS).fill(null);
const values: string[] = new Array<string>(SLOTS).fill('');

/** The topic of a decoded PUBLISH, from the cache when its bytes were seen before. */
export function topicOf(p: DecodedPublish): string {
  const b = p.bytes;
  const start = p.topicStart;
  const n = p.topicEnd - start;
  if (n === 0 || n > MAX_BYTES) return p.topic;
  let h = n;
  for (let i = start; i < start + n; i++) h = (Math.imul(h, 31) + b[i]!) | 0;
  h = (h ^ (h >>> 7) ^ (h >>> 15)) & (SLOTS - 1);
  const k = keys[h];
  if (k !== null && k !== undefined && k.length === n) {
    let i = 0;
    while (i < n && k[i] === b[start + i]) i++;
    if (i === n) return values[h]!;
  }
  const s = p.topic;
  keys[h] = b.slice(start, start + n);
  values[h] = s;
  return s;
}
