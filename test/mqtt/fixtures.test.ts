// Every packet type in both versions: encode gives exactly the fixture bytes,
// decode gives back the packet. The sizes FACTS.md relies on are checked by name.
import { describe, expect, it } from 'vitest';
import { DECODE_NEED_DATA, DECODE_PACKET, DecodedPublish, PacketDecoder, encode, encodedLength } from '../../modules/mqtt/index.js';
import type { Packet } from '../../modules/mqtt/index.js';
import { canonical } from '../support/random-packets.js';
import { FIXTURES, fromHex, toHex } from './fixtures.js';

function decodeOne(bytes: Uint8Array, version: 4 | 5): Packet {
  const d = new PacketDecoder({ version, bufferSize: 1024 });
  d.feed(bytes);
  const r = d.next();
  if (r !== DECODE_PACKET) throw new Error(`decode: ${r} ${d.error?.message}`);
  const p = d.packet!;
  const out = p instanceof DecodedPublish ? p.toPacket() : p;
  expect(d.next()).toBe(DECODE_NEED_DATA);
  return out;
}

describe('fixtures', () => {
  it('cover every packet type in both versions', () => {
    for (const version of [4, 5] as const) {
      const types = new Set(FIXTURES.filter((f) => f.version === version).map((f) => f.packet.type));
      const expected = version === 5 ? 15 : 14; // AUTH is MQTT 5 only
      expect(types.size, `version ${version}`).toBe(expected);
    }
  });

  for (const f of FIXTURES) {
    describe(`${f.name} (${f.spec})`, () => {
      it('encodes to the fixture bytes', () => {
        const buf = new Uint8Array(256);
        const n = encode(f.packet, f.version, buf, 0);
        expect(toHex(buf.subarray(0, Math.max(n, 0)))).toBe(f.hex);
        expect(encodedLength(f.packet, f.version)).toBe(f.hex.length / 2);
      });
      it('decodes back to the packet', () => {
        const got = decodeOne(fromHex(f.hex), f.version);
        expect(canonical(got, f.version)).toEqual(canonical(f.decoded ?? f.packet, f.version));
      });
    });
  }
});

describe('sizes FACTS.md relies on', () => {
  const size = (name: string) => {
    const f = FIXTURES.find((x) => x.name.startsWith(name));
    if (f === undefined) throw new Error('no fixture ' + name);
    return f.hex.length / 2;
  };
  it('PUBLISH sensors/t1 "21.5": QoS 0 18 B, QoS 1 20 B; MQTT 5: 19 / 21 B', () => {
    expect(size('v3.1.1 PUBLISH QoS 0 sensors/t1')).toBe(18);
    expect(size('v3.1.1 PUBLISH QoS 1 sensors/t1')).toBe(20);
    expect(size('v5 PUBLISH QoS 0 sensors/t1')).toBe(19);
    expect(size('v5 PUBLISH QoS 1 sensors/t1')).toBe(21);
  });
  it('acks are 4 B in both versions; a QoS 1 exchange is 24 B and QoS 2 is 32 B (3.1.1)', () => {
    expect(size('v5 PUBACK success')).toBe(4);
    expect(size('v3.1.1 PUBACK')).toBe(4);
    expect(size('v3.1.1 PUBLISH QoS 1') + size('v3.1.1 PUBACK')).toBe(24);
    expect(size('v3.1.1 PUBLISH QoS 1') + size('v3.1.1 PUBREC') + size('v3.1.1 PUBREL') + size('v3.1.1 PUBCOMP')).toBe(32);
  });
  it('CONNECT with an empty client id is 14 B (3.1.1); CONNACK 4 B, PINGREQ 2 B, DISCONNECT 2 B, MQTT 5 DISCONNECT E0 00', () => {
    expect(size('v3.1.1 CONNECT, empty client id')).toBe(14);
    expect(size('v3.1.1 CONNACK accepted')).toBe(4);
    expect(size('v3.1.1 PINGREQ')).toBe(2);
    expect(size('v3.1.1 DISCONNECT')).toBe(2);
    expect(FIXTURES.find((f) => f.name.startsWith('v5 DISCONNECT normal, short'))!.hex).toBe('e000');
  });
});
