// Long, seeded decoder fuzz: a million (by default) mutated, truncated, spliced
// and random inputs, both protocol versions, fed in random chunk sizes.
//
//   npm run fuzz [-- --count N --seed N --max-seconds S --json]
//
// What must hold for every input, or the run stops and prints the input to
// replay it (the seed and the input index replay it too):
// - next() never throws;
// - no hang: every fed chunk is finished within chunk length + 2 calls of
//   next() (each DECODE_PACKET consumes at least 2 bytes), so the whole input
//   within input length + 2 × chunks calls;
// - every rejection carries a reason code of the decoder's set (0x81 malformed,
//   0x82 protocol error, 0x84 unsupported protocol version, 0x95 packet too
//   large) and a message naming the rule, and the decoder stays failed until
//   reset();
// - a packet it accepts survives a round trip: encoded again and decoded, it
//   means the same (when the encoder takes it at all; that count is printed).
//   The round trip runs our encoder and a fresh decoder per packet, so it
//   dominates the time per input; it is worth it.
// Memory must stay flat: heapUsed after a full gc() before and after the run.
// gc() needs --expose-gc: without it this script runs itself again with it.

import { spawnSync } from 'node:child_process';
import { DECODE_ERROR, DECODE_NEED_DATA, DECODE_PACKET, DecodedAck, DecodedPublish, PacketDecoder } from '../modules/mqtt/decode.js';
import { encode } from '../modules/mqtt/encode.js';
import type { Packet } from '../modules/mqtt/types.js';
import { PacketType, ProtocolVersion } from '../modules/mqtt/types.js';
import { Prng, seedFromEnv } from '../test/support/prng.js';
import { ALL_TYPES, canonicalJson, mutate, randomPacket } from '../test/support/random-packets.js';
import { FIXTURES, fromHex, toHex } from '../test/mqtt/fixtures.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== 'function') {
  // Re-exec with --expose-gc, keeping the loader flags (--import tsx) and the arguments.
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

// ---------------------------------------------------------------- arguments

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const COUNT = Number(arg('count') ?? 1_000_000);
const SEED = arg('seed') !== undefined ? Number(arg('seed')) >>> 0 : seedFromEnv();
const MAX_SECONDS = Number(arg('max-seconds') ?? 900);
const JSON_OUT = process.argv.includes('--json');
if (!(COUNT > 0) || !(MAX_SECONDS > 0)) {
  console.error('usage: bench/fuzz.ts [--count N] [--seed N] [--max-seconds S] [--json]');
  process.exit(2);
}

const REASONS = new Set([0x81, 0x82, 0x84, 0x95]);
const RULE = /^\[MQTT-|^Remaining Length/;

// ---------------------------------------------------------------- inputs

const VERSIONS = [ProtocolVersion.V311, ProtocolVersion.V5] as const;
const CORPUS_PER_VERSION = 3000;

/** Valid packets of every type (fixtures + random), as bytes, per version. */
function buildCorpus(rng: Prng, version: ProtocolVersion): Uint8Array[] {
  const out = FIXTURES.filter((f) => f.version === version).map((f) => fromHex(f.hex));
  const types = version === ProtocolVersion.V5 ? ALL_TYPES : ALL_TYPES.filter((t) => t !== PacketType.Auth);
  const buf = new Uint8Array(100_000);
  for (let i = 0; i < CORPUS_PER_VERSION; i++) {
    const n = encode(randomPacket(rng, version, types[i % types.length]), version, buf, 0);
    // Large payloads make up a few per cent of the generator's packets; cut them
    // down so a million inputs stay within minutes (the length paths are still
    // exercised by the truncations and by maxPacketSize).
    if (n > 0 && n <= 4000) out.push(buf.slice(0, n));
  }
  return out;
}


function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const enum Kind { Mutation, Truncation, Random, Stream, StreamMutated, Valid }
const KIND_NAMES = ['mutation', 'truncation', 'random bytes', 'valid stream', 'mutated stream', 'valid'];

function makeInput(rng: Prng, base: Uint8Array[]): [Kind, Uint8Array] {
  const r = rng.float();
  if (r < 0.5) return [Kind.Mutation, mutate(rng, rng.pick(base))];
  if (r < 0.65) {
    const p = rng.pick(base);
    return [Kind.Truncation, p.slice(0, rng.int(0, Math.max(0, p.length - 1)))];
  }
  if (r < 0.8) {
    const n = rng.bool(0.8) ? rng.int(1, 64) : rng.int(65, 2048);
    const b = rng.bytes(n);
    // Random bytes behind a plausible first byte reach past the header checks more often.
    if (rng.bool(0.5)) b[0] = (rng.int(1, 15) << 4) | rng.pick([0, 0, 2, rng.int(0, 15)]);
    return [Kind.Random, b];
  }
  const parts: Uint8Array[] = [];
  const n = rng.int(2, 6);
  for (let i = 0; i < n; i++) parts.push(rng.pick(base));
  if (r < 0.9) return [Kind.Stream, concat(parts)];
  if (r < 0.97) {
    parts[rng.int(0, n - 1)] = mutate(rng, parts[rng.int(0, n - 1)]);
    return [Kind.StreamMutated, concat(parts)];
  }
  return [Kind.Valid, rng.pick(base)];
}

// ---------------------------------------------------------------- checks

class FuzzFailure extends Error {}

const roundTripBuf = new Uint8Array(300_000);
const notReencodableExamples: string[] = [];
const stats = {
  inputs: 0,
  bytes: 0,
  nextCalls: 0,
  maxCallsPerInput: 0,
  packets: 0,
  rejections: new Map<number, number>(),
  messages: new Map<string, number>(),
  accepted: 0,
  roundTrips: 0,
  notReencodable: 0,
  byKind: new Array<number>(6).fill(0),
  rejectedByKind: new Array<number>(6).fill(0),
};

/** The decoded packet as a standalone value (the decoder reuses its PUBLISH and ack objects). */
function standalone(p: Packet): Packet {
  if (p instanceof DecodedPublish) return p.toPacket();
  if (p instanceof DecodedAck) {
    const a: Packet = { type: p.type, packetId: p.packetId, reasonCode: p.reasonCode };
    if (p.properties !== undefined) a.properties = p.properties;
    return a;
  }
  return p;
}

/** A packet the decoder accepted must encode and decode to the same meaning. */
function roundTrip(p: Packet, version: ProtocolVersion): void {
  const v = p.type === PacketType.Connect ? (p.protocolVersion as ProtocolVersion) : version;
  const want = canonicalJson(p, v);
  const n = encode(p, v, roundTripBuf, 0);
  if (n < 0) {
    stats.notReencodable++;
    if (notReencodableExamples.length < 5) notReencodableExamples.push(`encode returned ${n} for ${want.slice(0, 300)}`);
    return;
  }
  stats.roundTrips++;
  const d = new PacketDecoder({ version: v, bufferSize: n + 8 });
  d.feed(roundTripBuf.subarray(0, n));
  const r = d.next();
  if (r !== DECODE_PACKET) throw new FuzzFailure(`round trip: our own encoding of an accepted packet does not decode (${r}, ${d.error?.message}): ${want}`);
  const got = canonicalJson(standalone(d.packet!), v);
  if (got !== want) throw new FuzzFailure(`round trip changed the packet:\n  decoded ${want}\n  again   ${got}`);
}

/** Feeds the input in random chunks and checks the contract at every next(). */
function drive(rng: Prng, d: PacketDecoder, input: Uint8Array, kind: Kind, checkRoundTrip: boolean): void {
  let calls = 0;
  let pos = 0;
  let chunks = 0;
  while (pos < input.length) {
    const left = input.length - pos;
    const c = rng.float();
    const n = c < 0.25 ? 1 : c < 0.5 ? Math.min(left, rng.int(1, 8)) : c < 0.75 ? rng.int(1, left) : left;
    d.feed(input.subarray(pos, pos + n));
    pos += n;
    chunks++;
    for (let i = 0; ; i++) {
      if (i > n + 2) throw new FuzzFailure(`no progress: chunk of ${n} bytes not finished after ${i} calls of next() (hang)`);
      calls++;
      let r: number;
      try {
        r = d.next();
      } catch (e) {
        throw new FuzzFailure(`next() threw: ${(e as Error).stack ?? String(e)}`);
      }
      if (r === DECODE_PACKET) {
        stats.packets++;
        const p = d.packet;
        if (p === null) throw new FuzzFailure('DECODE_PACKET with packet === null');
        if (p instanceof DecodedPublish) {
          void p.topic;
          void p.payload;
        }
        if (checkRoundTrip) roundTrip(standalone(p), d.version);
        continue;
      }
      if (r === DECODE_ERROR) {
        const e = d.error;
        if (e === null) throw new FuzzFailure('DECODE_ERROR with error === null');
        if (!REASONS.has(e.reasonCode)) throw new FuzzFailure(`reason code 0x${e.reasonCode.toString(16)} outside the allowed set: ${e.message}`);
        if (typeof e.message !== 'string' || !RULE.test(e.message)) throw new FuzzFailure(`rejection message names no rule: ${JSON.stringify(e.message)}`);
        if (d.next() !== DECODE_ERROR || d.error !== e) throw new FuzzFailure('decoder left the failed state without reset()');
        stats.rejections.set(e.reasonCode, (stats.rejections.get(e.reasonCode) ?? 0) + 1);
        stats.messages.set(e.message, (stats.messages.get(e.message) ?? 0) + 1);
        stats.rejectedByKind[kind]++;
        stats.nextCalls += calls;
        if (calls > stats.maxCallsPerInput) stats.maxCallsPerInput = calls;
        return;
      }
      if (r !== DECODE_NEED_DATA) throw new FuzzFailure(`unknown next() result ${r}`);
      break;
    }
  }
  if (calls > input.length + 2 * chunks) throw new FuzzFailure(`${calls} calls of next() for ${input.length} bytes in ${chunks} chunks`);
  stats.nextCalls += calls;
  if (calls > stats.maxCallsPerInput) stats.maxCallsPerInput = calls;
  stats.accepted++;
}

// ---------------------------------------------------------------- run

const rng = new Prng(SEED);
const corpora = new Map<ProtocolVersion, Uint8Array[]>();
for (const v of VERSIONS) corpora.set(v, buildCorpus(rng, v));
// Decoders are made once (the caller owns memory): a few limit settings per version.
// Mostly roomy limits (so mutations reach the packet parsers), sometimes tight ones (so the size checks fire).
const LIMITS: ReadonlyArray<[number, number]> = [[4096, 4096], [4096, 4096], [4096, 4096], [300_000, 300_000], [300_000, 300_000], [2048, 512], [64, 64], [8, 8]];
const decoders = new Map<ProtocolVersion, PacketDecoder[]>();
// And one per version as the client uses it: a region of a larger view (the
// client's one byte view), with guard bytes on both sides that no input may touch.
const GUARD = 61;
const shared = new Uint8Array(GUARD + 2048 + GUARD).fill(0xa5);
const inRegion = new Set<PacketDecoder>();
for (const v of VERSIONS) {
  const list = LIMITS.map(([bufferSize, maxPacketSize]) => new PacketDecoder({ version: v, bufferSize, maxPacketSize }));
  const region = new PacketDecoder({ version: v, buffer: shared, bufferOffset: GUARD, bufferSize: 2048 });
  inRegion.add(region);
  decoders.set(v, [...list, region]);
}
function guardsIntact(): boolean {
  for (let k = 0; k < GUARD; k++) if (shared[k] !== 0xa5 || shared[shared.length - 1 - k] !== 0xa5) return false;
  return true;
}

console.log(`fuzz: seed ${SEED}, ${COUNT.toLocaleString('en-US')} inputs (replay: npm run fuzz -- --seed ${SEED} --count ${COUNT})`);

// Warm up (JIT, the decoders' lazily grown topic caches), then measure the heap.
function one(i: number): void {
  const version = i % 2 === 0 ? ProtocolVersion.V311 : ProtocolVersion.V5;
  const [kind, input] = makeInput(rng, corpora.get(version)!);
  const d = rng.pick(decoders.get(version)!);
  d.reset();
  // Now and then the "wrong" version: a server decodes a CONNECT before it knows the level.
  d.version = rng.bool(0.1) ? (version === ProtocolVersion.V5 ? ProtocolVersion.V311 : ProtocolVersion.V5) : version;
  stats.byKind[kind]++;
  stats.bytes += input.length;
  try {
    drive(rng, d, input, kind, true);
    if (inRegion.has(d) && !guardsIntact()) throw new FuzzFailure('a decoder given a region of a view wrote outside it');
  } catch (e) {
    if (!(e instanceof FuzzFailure)) throw e;
    console.error(`\nFAIL at input ${i} (seed ${SEED}, ${KIND_NAMES[kind]}, decoder version ${d.version}, bufferSize/maxPacketSize ${d.maxPacketSize}):`);
    console.error(`  ${e.message}`);
    console.error(`  input (${input.length} B): ${toHex(input.subarray(0, 4096))}${input.length > 4096 ? '…' : ''}`);
    console.error(`  replay: npm run fuzz -- --seed ${SEED} --count ${i + 1}`);
    process.exit(1);
  }
  stats.inputs++;
}

const WARMUP = Math.min(20_000, Math.floor(COUNT / 10));
let i = 0;
for (; i < WARMUP; i++) one(i);
gc!();
gc!();
const heapBefore = process.memoryUsage().heapUsed;
const t0 = performance.now();
const deadline = t0 + MAX_SECONDS * 1000;
let nextReport = t0 + 10_000;
let timedOut = false;
for (; i < COUNT; i++) {
  one(i);
  if ((i & 4095) === 0) {
    const now = performance.now();
    if (now > deadline) {
      timedOut = true;
      break;
    }
    if (now > nextReport && !JSON_OUT) {
      nextReport = now + 10_000;
      console.log(`  ${i.toLocaleString('en-US')} inputs, ${Math.round((i - WARMUP) / ((now - t0) / 1000)).toLocaleString('en-US')}/s`);
    }
  }
}
const seconds = (performance.now() - t0) / 1000;
gc!();
gc!();
const heapAfter = process.memoryUsage().heapUsed;

const rate = Math.round((stats.inputs - WARMUP) / seconds);
const rejections = stats.inputs - stats.accepted;
const hex = (c: number) => `0x${c.toString(16)}`;
const report = {
  seed: SEED,
  inputs: stats.inputs,
  seconds: Number(seconds.toFixed(1)),
  inputsPerSecond: rate,
  megabytes: Number((stats.bytes / 1e6).toFixed(1)),
  nextCalls: stats.nextCalls,
  maxNextCallsPerInput: stats.maxCallsPerInput,
  packetsDecoded: stats.packets,
  inputsAccepted: stats.accepted,
  inputsRejected: rejections,
  rejectionsByReason: Object.fromEntries([...stats.rejections].sort((a, b) => a[0] - b[0]).map(([c, n]) => [hex(c), n])),
  inputsByKind: Object.fromEntries(KIND_NAMES.map((k, j) => [k, { inputs: stats.byKind[j], rejected: stats.rejectedByKind[j] }])),
  roundTrips: stats.roundTrips,
  acceptedButNotReencodable: stats.notReencodable,
  notReencodableExamples,
  distinctRejectionMessages: stats.messages.size,
  heapUsedBefore: heapBefore,
  heapUsedAfter: heapAfter,
  heapGrowthBytes: heapAfter - heapBefore,
  timedOut,
};

if (JSON_OUT) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(`\n${stats.inputs.toLocaleString('en-US')} inputs (${report.megabytes} MB) in ${seconds.toFixed(1)} s: ${rate.toLocaleString('en-US')} inputs/s${timedOut ? ' (stopped by --max-seconds)' : ''}`);
  console.log(`no throw, no hang (at most ${stats.maxCallsPerInput} next() calls for one input; ${stats.nextCalls.toLocaleString('en-US')} in all)`);
  console.log(`accepted ${stats.accepted.toLocaleString('en-US')} inputs (${stats.packets.toLocaleString('en-US')} packets decoded; ${stats.roundTrips.toLocaleString('en-US')} round trips checked, ${stats.notReencodable} accepted packets our encoder refuses)`);
  for (const e of notReencodableExamples) console.log(`  accepted, our encoder refuses it: ${e}`);
  console.log(`rejected ${rejections.toLocaleString('en-US')} inputs, by reason code:`);
  for (const [code, n] of Object.entries(report.rejectionsByReason)) console.log(`  ${code}  ${n.toLocaleString('en-US')}`);
  console.log('by input kind (inputs / rejected):');
  for (const [k, v] of Object.entries(report.inputsByKind)) console.log(`  ${k.padEnd(15)} ${v.inputs.toLocaleString('en-US')} / ${v.rejected.toLocaleString('en-US')}`);
  console.log(`most frequent rejection messages (${stats.messages.size} distinct):`);
  for (const [m, n] of [...stats.messages].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ${n.toString().padStart(8)}  ${m}`);
  console.log(`heap after gc: ${kb(heapBefore)} before, ${kb(heapAfter)} after (${heapAfter - heapBefore >= 0 ? '+' : ''}${kb(heapAfter - heapBefore)})`);
}
// Flat memory: allow noise (a few hundred KiB of JIT and maps), not growth per input.
const HEAP_SLACK = 2 * 1024 * 1024;
if (heapAfter - heapBefore > HEAP_SLACK) {
  console.error(`heap grew by ${heapAfter - heapBefore} bytes over the run: more than ${HEAP_SLACK}`);
  process.exitCode = 1;
}
