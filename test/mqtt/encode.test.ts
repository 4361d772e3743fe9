import { describe, expect, it, vi } from 'vitest';
import {
  DECODE_PACKET, ENCODE_INVALID, ENCODE_NO_SPACE, PUBLISH_DUP_FLAG, PacketDecoder, DecodedPublish,
  encode, encodeAck, encodePublish, encodedLength, markDuplicate, publishLayout, publishLength, topicLength,
} from '../../modules/mqtt/index.js';
import type { Packet } from '../../modules/mqtt/index.js';
import { PacketType, ProtocolVersion } from '../../modules/mqtt/types.js';
import { FIXTURES, bytes, toHex } from './fixtures.js';

const V4 = ProtocolVersion.V311;
const V5 = ProtocolVersion.V5;

describe('encode bounds', () => {
  it('ENCODE_NO_SPACE for every too-small buffer, and writes nothing', () => {
    for (const f of FIXTURES) {
      const need = f.hex.length / 2;
      for (let size = 0; size < need; size++) {
        const buf = new Uint8Array(size).fill(0xaa);
        expect(encode(f.packet, f.version, buf, 0), f.name).toBe(ENCODE_NO_SPACE);
        expect(buf.every((b) => b === 0xaa), f.name).toBe(true);
      }
      // At an offset: bytes before and after are untouched.
      const buf = new Uint8Array(need + 20).fill(0xaa);
      expect(encode(f.packet, f.version, buf, 7)).toBe(need);
      expect(toHex(buf.subarray(7, 7 + need))).toBe(f.hex);
      expect(buf.subarray(0, 7).every((b) => b === 0xaa) && buf.subarray(7 + need).every((b) => b === 0xaa)).toBe(true);
      expect(encode(f.packet, f.version, buf, buf.length - need + 1)).toBe(ENCODE_NO_SPACE);
    }
  });

  const pub = (over: Partial<Packet & { type: PacketType.Publish }>): Packet =>
    ({ type: PacketType.Publish, topic: 't', payload: bytes('x'), qos: 1, retain: false, dup: false, packetId: 1, ...over }) as Packet;
  const invalid: Array<[string, Packet, ProtocolVersion]> = [
    ['[MQTT-2.2.1-3] packet id 0 with QoS 1', pub({ packetId: 0 }), V4],
    ['packet id > 65535', pub({ packetId: 65536 }), V5],
    ['[MQTT-3.3.1-2] DUP on QoS 0', pub({ qos: 0, dup: true, packetId: 0 }), V4],
    ['[MQTT-3.3.2-2] wildcard in topic', pub({ topic: 'a/+' }), V4],
    ['[MQTT-3.3.2-2] # in topic', pub({ topic: 'a/#' }), V5],
    ['[MQTT-1.5.4-2] U+0000 in topic', pub({ topic: 'a\u0000' }), V4],
    ['[MQTT-1.5.4-1] lone surrogate in topic', pub({ topic: 'a\ud800' }), V4],
    ['topic > 65535 bytes', pub({ topic: 'é'.repeat(32768) }), V4],
    ['[MQTT-4.7.3-1] empty topic in 3.1.1', pub({ topic: '' }), V4],
    ['empty topic without alias in 5', pub({ topic: '' }), V5],
    ['property not allowed on PUBLISH', pub({ properties: { sessionExpiryInterval: 5 } }), V5],
    ['topic alias 0', pub({ properties: { topicAlias: 0 } }), V5],
    ['payload format indicator 2', pub({ properties: { payloadFormatIndicator: 2 } }), V5],
    ['message expiry > u32', pub({ properties: { messageExpiryInterval: 2 ** 32 } }), V5],
    ['subscription identifier 0', pub({ properties: { subscriptionIdentifier: 0 } }), V5],
    ['QoS 3', pub({ qos: 3 as 1 }), V4],
    ['string > 65535 bytes', { type: PacketType.Connect, protocolVersion: 4, clientId: 'x'.repeat(65536), clean: true, keepalive: 0 }, V4],
    ['keepalive > 65535', { type: PacketType.Connect, protocolVersion: 4, clientId: 'x', clean: true, keepalive: 65536 }, V4],
    ['[MQTT-3.1.2-22] password without user name in 3.1.1', { type: PacketType.Connect, protocolVersion: 4, clientId: 'x', clean: true, keepalive: 0, password: bytes('p') }, V4],
    ['CONNECT level differs from version', { type: PacketType.Connect, protocolVersion: 5, clientId: 'x', clean: true, keepalive: 0 }, V4],
    ['topic alias on CONNECT', { type: PacketType.Connect, protocolVersion: 5, clientId: 'x', clean: true, keepalive: 0, properties: { topicAlias: 1 } }, V5],
    ['session expiry twice (array)', { type: PacketType.Connect, protocolVersion: 5, clientId: 'x', clean: true, keepalive: 0, properties: { sessionExpiryInterval: [1, 2] as unknown as number } }, V5],
    ['[MQTT-3.2.2-4] session present with a failure code', { type: PacketType.Connack, sessionPresent: true, reasonCode: 5 }, V4],
    ['3.1.1 CONNACK code 6', { type: PacketType.Connack, sessionPresent: false, reasonCode: 6 }, V4],
    ['3.1.1 PUBACK with a reason code', { type: PacketType.Puback, packetId: 1, reasonCode: 0x80 }, V4],
    ['PUBREL with a PUBACK-only reason', { type: PacketType.Pubrel, packetId: 1, reasonCode: 0x10 }, V5],
    ['[MQTT-3.8.3-3] SUBSCRIBE without filters', { type: PacketType.Subscribe, packetId: 1, subscriptions: [] }, V4],
    ['SUBSCRIBE with empty filter', { type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topic: '', qos: 0 }] }, V4],
    ['subscription identifier twice on SUBSCRIBE', { type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topic: 'a', qos: 0 }], properties: { subscriptionIdentifier: [1, 2] } }, V5],
    ['[MQTT-3.10.3-2] UNSUBSCRIBE without filters', { type: PacketType.Unsubscribe, packetId: 1, topics: [] }, V5],
    ['3.1.1 SUBACK code 3', { type: PacketType.Suback, packetId: 1, reasonCodes: [3] }, V4],
    ['AUTH in 3.1.1', { type: PacketType.Auth, reasonCode: 0 }, V4],
    ['DISCONNECT reason 0x10', { type: PacketType.Disconnect, reasonCode: 0x10 }, V5],
  ];
  for (const [name, p, v] of invalid) {
    it(`ENCODE_INVALID: ${name}`, () => {
      const buf = new Uint8Array(200_000);
      expect(encode(p, v, buf, 0)).toBe(ENCODE_INVALID);
      expect(encodedLength(p, v)).toBe(ENCODE_INVALID);
    });
  }
  it('ENCODE_INVALID: remaining length > 268435455', () => {
    expect(publishLength(V4, 't', 268435455, 0, null)).toBe(ENCODE_INVALID);
    expect(publishLength(V4, 't', 268435455 - 3, 0, null)).toBe(268435455 + 5);
  });
  it('remaining length field grows 1..4 bytes at 128, 16384, 2097152', () => {
    for (const [payload, header] of [[124, 2], [125, 3], [16380, 3], [16381, 4], [2097148, 4], [2097149, 5]]) {
      expect(publishLength(V4, 't', payload, 0, null) - payload - 3).toBe(header);
    }
  });
});

describe('hot paths', () => {
  it('encodeAck: 4 B for success, 5 B with a reason, PUBREL flags 0010', () => {
    const buf = new Uint8Array(8);
    expect(encodeAck(buf, 0, V5, PacketType.Puback, 1, 0)).toBe(4);
    expect(toHex(buf.subarray(0, 4))).toBe('40020001');
    expect(encodeAck(buf, 0, V5, PacketType.Puback, 0x1234, 0x10)).toBe(5);
    expect(toHex(buf.subarray(0, 5))).toBe('4003123410');
    expect(encodeAck(buf, 0, V4, PacketType.Pubrel, 7, 0)).toBe(4);
    expect(toHex(buf.subarray(0, 4))).toBe('62020007');
    expect(encodeAck(buf, 0, V4, PacketType.Pubrel, 7, 0x92)).toBe(ENCODE_INVALID);
    expect(encodeAck(buf, 0, V5, PacketType.Puback, 0, 0)).toBe(ENCODE_INVALID);
    expect(encodeAck(buf, 0, V5, PacketType.Publish, 1, 0)).toBe(ENCODE_INVALID);
    expect(encodeAck(buf, 5, V5, PacketType.Puback, 1, 0)).toBe(ENCODE_NO_SPACE);
  });
  it('encodePublish matches encode() and publishLength()', () => {
    const a = new Uint8Array(64);
    const b = new Uint8Array(64);
    const props = { messageExpiryInterval: 60, userProperties: [['a', 'b']] as Array<[string, string]> };
    const n = encodePublish(a, 0, V5, 'sensors/t1', bytes('21.5'), 1, true, false, 9, props);
    const m = encode({ type: PacketType.Publish, topic: 'sensors/t1', payload: bytes('21.5'), qos: 1, retain: true, dup: false, packetId: 9, properties: props }, V5, b, 0);
    expect(n).toBe(m);
    expect(n).toBe(publishLength(V5, 'sensors/t1', 4, 1, props));
    expect(toHex(a.subarray(0, n))).toBe(toHex(b.subarray(0, m)));
  });
  it('publishLayout finds the packet id and the 4-byte message expiry; patches decode as expected', () => {
    const buf = new Uint8Array(128);
    const props = { payloadFormatIndicator: 1, messageExpiryInterval: 3600, correlationData: bytes('c'), subscriptionIdentifier: [5, 300] };
    const n = encodePublish(buf, 10, V5, 'a/é', bytes('hello'), 2, false, false, 0x0102, props);
    const out = new Int32Array(2);
    expect(publishLayout(buf, 10, V5, out)).toBe(n);
    expect((buf[out[0]] << 8) | buf[out[0] + 1]).toBe(0x0102);
    expect(out[1]).toBeGreaterThan(out[0]);
    // Patch: expiry 3600 -> 42, packet id -> 0x0a0b, set DUP.
    buf.set([0, 0, 0, 42], out[1]);
    buf.set([0x0a, 0x0b], out[0]);
    markDuplicate(buf, 10);
    expect(buf[10] & PUBLISH_DUP_FLAG).toBe(PUBLISH_DUP_FLAG);
    const d = new PacketDecoder({ version: V5 });
    d.feed(buf.subarray(10, 10 + n));
    expect(d.next()).toBe(DECODE_PACKET);
    const p = d.packet as DecodedPublish;
    expect([p.packetId, p.dup, p.properties?.messageExpiryInterval, p.topic]).toEqual([0x0a0b, true, 42, 'a/é']);
    // QoS 0 and 3.1.1: no packet id, no expiry.
    const m = encodePublish(buf, 0, V4, 't', bytes('x'), 0, false, false, 0, null);
    expect(publishLayout(buf, 0, V4, out)).toBe(m);
    expect([out[0], out[1]]).toEqual([-1, -1]);
    expect(publishLayout(new Uint8Array([0x40, 0x02, 0, 1]), 0, V5, out)).toBe(ENCODE_INVALID);
  });
  it('3.1.1 leaves properties out', () => {
    const buf = new Uint8Array(64);
    const n = encode({ type: PacketType.Publish, topic: 'sensors/t1', payload: bytes('21.5'), qos: 0, retain: false, dup: false, packetId: 0, properties: { messageExpiryInterval: 5 } }, V4, buf, 0);
    expect(n).toBe(18);
  });
});

describe('topic length cache', () => {
  it('an empty topic is legal with a topic alias, also as the first topic a process encodes [MQTT-3.3.2-8]', async () => {
    vi.resetModules();
    const fresh = await import('../../modules/mqtt/encode.js');
    expect(fresh.publishLength(ProtocolVersion.V5, '', 4, 1, { topicAlias: 3 })).toBeGreaterThan(0);
    expect(topicLength('sensors/t1')).toBe(10);
    expect(topicLength('')).toBe(0);
    expect(publishLength(ProtocolVersion.V5, '', 4, 1, { topicAlias: 3 })).toBeGreaterThan(0);
    expect(publishLength(ProtocolVersion.V5, '', 4, 1, null)).toBeLessThan(0);
    expect(topicLength('a/#')).toBe(-1);
    expect(topicLength('a/\u0000')).toBe(-1);
    expect(topicLength('t\u00e9')).toBe(3);
  });
});
