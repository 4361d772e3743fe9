// Seeded, bounded fuzzing of the decoder: mutated, truncated and random input
// never throws, never hangs, and every error names a reason code and a rule.
// And any chunking of a valid stream yields the same packets.
import { describe, expect, it } from 'vitest';
import { DECODE_ERROR, DECODE_NEED_DATA, DECODE_PACKET, DecodedPublish, PacketDecoder, encode } from '../../modules/mqtt/index.js';
import type { Packet } from '../../modules/mqtt/index.js';
import { PacketType, ProtocolVersion } from '../../modules/mqtt/types.js';
import { Prng, seedFromEnv } from '../support/prng.js';
import { ALL_TYPES, canonicalJson, mutate, randomPacket } from '../support/random-packets.js';
import { FIXTURES, fromHex } from './fixtures.js';

const REASONS = new Set([0x81, 0x82, 0x84, 0x95]);

function corpus(rng: Prng, version: ProtocolVersion, n: number): Uint8Array[] {
  const out = FIXTURES.filter((f) => f.version === version).map((f) => fromHex(f.hex));
  const buf = new Uint8Array(100_000);
  const types = version === ProtocolVersion.V5 ? ALL_TYPES : ALL_TYPES.filter((t) => t !== PacketType.Auth);
  for (let i = 0; i < n; i++) {
    const len = encode(randomPacket(rng, version, types[i % types.length]), version, buf, 0);
    if (len > 0 && len < 2000) out.push(buf.slice(0, len));
  }
  return out;
}


/** Feeds `input` in random chunks; checks the contract on every next(). Returns the number of next() calls. */
function drive(rng: Prng, d: PacketDecoder, input: Uint8Array): number {
  let calls = 0;
  let pos = 0;
  while (pos < input.length) {
    const n = rng.bool(0.3) ? 1 : rng.int(1, input.length - pos);
    d.feed(input.subarray(pos, pos + n));
    pos += n;
    // Each DECODE_PACKET consumes at least 2 bytes, so n + 2 calls must finish the chunk.
    for (let i = 0; ; i++) {
      if (i > n + 2) throw new Error('decoder does not finish a chunk: possible hang');
      calls++;
      const r = d.next();
      if (r === DECODE_PACKET) {
        const p = d.packet!;
        if (p instanceof DecodedPublish) void p.topic, void p.payload; // exercise the lazy getters
        continue;
      }
      if (r === DECODE_ERROR) {
        const e = d.error!;
        if (!REASONS.has(e.reasonCode)) throw new Error(`unexpected reason code 0x${e.reasonCode.toString(16)}: ${e.message}`);
        if (!/^\[MQTT-|^Remaining Length/.test(e.message)) throw new Error('error message names no rule: ' + e.message);
        if (d.next() !== DECODE_ERROR) throw new Error('decoder left the failed state without reset()');
        return calls;
      }
      if (r !== DECODE_NEED_DATA) throw new Error('unknown result ' + r);
      break;
    }
  }
  return calls;
}

describe('decoder fuzz', () => {
  it('mutations, truncations and random bytes: no throw, no hang, every error has a reason code and a rule', () => {
    const seed = seedFromEnv();
    const rng = new Prng(seed);
    let inputs = 0;
    let errors = 0;
    try {
      for (const version of [ProtocolVersion.V311, ProtocolVersion.V5]) {
        const base = corpus(rng, version, 600);
        const d = new PacketDecoder({ version, bufferSize: 2048, maxPacketSize: rng.bool() ? 2048 : 512 });
        for (let i = 0; i < 15_000; i++) {
          let input: Uint8Array;
          const r = rng.float();
          if (r < 0.7) input = mutate(rng, rng.pick(base));
          else if (r < 0.85) input = rng.pick(base).slice(0, rng.int(0, rng.pick(base).length));
          else input = rng.bytes(rng.int(1, 64));
          d.reset();
          if (rng.bool(0.1)) d.version = version === ProtocolVersion.V5 ? ProtocolVersion.V311 : ProtocolVersion.V5;
          else d.version = version;
          drive(rng, d, input);
          if (d.error !== null) errors++;
          inputs++;
        }
      }
    } catch (e) {
      throw new Error(`fuzz failed with seed ${seed} (replay: SEED=${seed}): ${(e as Error).message}`);
    }
    expect(inputs).toBe(30_000);
    expect(errors).toBeGreaterThan(5_000);
  });

  it('any split of a valid multi-packet stream yields the same packets', () => {
    const seed = seedFromEnv();
    const rng = new Prng(seed);
    for (const version of [ProtocolVersion.V311, ProtocolVersion.V5]) {
      const types = version === ProtocolVersion.V5 ? ALL_TYPES : ALL_TYPES.filter((t) => t !== PacketType.Auth);
      const packets: Packet[] = [];
      const parts: Uint8Array[] = [];
      const buf = new Uint8Array(100_000);
      for (let i = 0; i < 300; i++) {
        // Many PUBLISH on few topics, to exercise the topic cache across chunk boundaries.
        const p = i % 3 === 0 ? randomPacket(rng, version, types[rng.int(0, types.length - 1)]) : randomPacket(rng, version, PacketType.Publish);
        if (p.type === PacketType.Publish && i % 2 === 0 && p.topic !== '') p.topic = 'sensors/t' + (i % 4);
        const n = encode(p, version, buf, 0);
        expect(n, `seed ${seed}`).toBeGreaterThan(0);
        if (n > 3000) continue; // keep 1-byte feeding quick
        packets.push(p);
        parts.push(buf.slice(0, n));
      }
      const stream = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of parts) {
        stream.set(p, o);
        o += p.length;
      }
      const want = packets.map((p) => canonicalJson(p, version));
      const run = (split: (remaining: number) => number): string[] => {
        const d = new PacketDecoder({ version, bufferSize: 100_000 });
        const got: string[] = [];
        let pos = 0;
        while (pos < stream.length) {
          const n = Math.min(split(stream.length - pos), stream.length - pos);
          d.feed(stream.subarray(pos, pos + n));
          pos += n;
          let r;
          while ((r = d.next()) === DECODE_PACKET) {
            const p = d.packet!;
            got.push(canonicalJson(p instanceof DecodedPublish ? p.toPacket() : p, version));
          }
          expect(r, `seed ${seed}: ${d.error?.message}`).toBe(DECODE_NEED_DATA);
        }
        return got;
      };
      expect(run((n) => n), `seed ${seed}`).toEqual(want);
      expect(run(() => 1), `seed ${seed}`).toEqual(want);
      for (let k = 0; k < 5; k++) expect(run(() => rng.int(1, 300)), `seed ${seed}`).toEqual(want);
    }
  });
});
