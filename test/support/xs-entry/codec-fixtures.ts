// The codec fixtures as one function, run both in Node and inside XS: every
// fixture encoded, every fixture decoded (whole and one byte at a time), and
// a set of malformed inputs rejected. The results are plain JSON so the two
// engines can be compared exactly.
import { FIXTURES, fromHex, toHex } from '../../mqtt/fixtures.js';
import { encode, encodedLength } from '../../../modules/mqtt/encode.js';
import { PacketDecoder, DECODE_PACKET, DECODE_ERROR, DecodedPublish } from '../../../modules/mqtt/decode.js';
import type { Packet } from '../../../modules/mqtt/types.js';

function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) if ((v as Record<string, unknown>)[k] !== undefined) o[k] = plain((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

function decodeAll(version: 4 | 5, bytes: Uint8Array, chunk: number): unknown[] {
  const d = new PacketDecoder({ version, bufferSize: 4096 });
  const out: unknown[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    d.feed(bytes.subarray(i, Math.min(bytes.length, i + chunk)));
    for (;;) {
      const r = d.next();
      if (r === DECODE_PACKET) {
        const p = d.packet as Packet;
        out.push(plain(p instanceof DecodedPublish ? p.toPacket() : p));
      } else {
        if (r === DECODE_ERROR) out.push({ error: d.error?.reasonCode, message: d.error?.message });
        break;
      }
    }
  }
  return out;
}

const MALFORMED: Array<[4 | 5, string]> = [
  [4, '36 00'], // QoS 3
  [4, '32 ff ff ff ff 7f'], // remaining length over 4 bytes
  [4, '32 08 00 02 61 62 00 00 78 78'], // packet id 0
  [4, '30 04 00 02 c0 80'], // invalid UTF-8
  [4, '30 04 00 02 61 00'], // U+0000
  [5, '30 09 00 02 61 62 04 01 01 01 01'], // duplicated property
  [4, '41 02 00 01'], // reserved flags on PUBACK
];

export function codecFixtures(): unknown {
  const encoded = FIXTURES.map((f) => {
    const buf = new Uint8Array(encodedLength(f.packet, f.version) + 4);
    const n = encode(f.packet, f.version, buf, 2);
    return { name: f.name, n, hex: toHex(buf.subarray(2, 2 + Math.max(0, n))), ok: toHex(buf.subarray(2, 2 + Math.max(0, n))) === toHex(fromHex(f.hex)) };
  });
  const decoded = FIXTURES.map((f) => ({ name: f.name, whole: decodeAll(f.version, fromHex(f.hex), 1 << 20), bytewise: decodeAll(f.version, fromHex(f.hex), 1) }));
  const rejected = MALFORMED.map(([v, h]) => decodeAll(v, fromHex(h), 3));
  return { encoded, decoded, rejected };
}

(globalThis as { codecFixtures?: typeof codecFixtures }).codecFixtures = codecFixtures;
