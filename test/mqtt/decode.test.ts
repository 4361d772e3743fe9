import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  DECODE_ERROR, DECODE_NEED_DATA, DECODE_PACKET, DecodedPublish, PINGREQ, PacketDecoder, encode, encodePublish,
} from '../../modules/mqtt/index.js';
import { PacketType, ProtocolVersion } from '../../modules/mqtt/types.js';
import { bytes, fromHex } from './fixtures.js';

const V4 = ProtocolVersion.V311;
const V5 = ProtocolVersion.V5;

function publishBytes(version: ProtocolVersion, topic: string, payload: string, qos: 0 | 1 = 0, id = 0): Uint8Array {
  const buf = new Uint8Array(1024);
  return buf.slice(0, encodePublish(buf, 0, version, topic, bytes(payload), qos, false, false, id, null));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

describe('PacketDecoder streaming', () => {
  it('decodes several packets from one chunk in place (zero copy)', () => {
    const chunk = concat(publishBytes(V5, 'sensors/t1', '21.5'), fromHex('40020001'), publishBytes(V5, 'sensors/t1', '21.6', 1, 2), fromHex('c000'));
    const d = new PacketDecoder({ version: V5 });
    d.feed(chunk);
    expect(d.next()).toBe(DECODE_PACKET);
    const p1 = d.packet as DecodedPublish;
    expect(p1.bytes).toBe(chunk);
    expect(p1.payload.buffer).toBe(chunk.buffer);
    const topic1 = p1.topic;
    expect(new TextDecoder().decode(p1.payload)).toBe('21.5');
    expect(d.next()).toBe(DECODE_PACKET);
    expect(d.packet).toMatchObject({ type: PacketType.Puback, packetId: 1, reasonCode: 0 });
    expect(d.next()).toBe(DECODE_PACKET);
    const p2 = d.packet as DecodedPublish;
    expect(p2).toBe(p1); // one reused object
    expect(p2.topic).toBe(topic1); // same string: no new allocation for the same topic bytes
    expect([p2.qos, p2.packetId, p2.properties]).toEqual([1, 2, undefined]);
    expect(d.next()).toBe(DECODE_PACKET);
    expect(d.packet).toBe(PINGREQ);
    expect(Object.isFrozen(PINGREQ)).toBe(true);
    expect(d.next()).toBe(DECODE_NEED_DATA);
  });

  it('one byte at a time: tail copied into the internal buffer', () => {
    const stream = concat(publishBytes(V4, 'a/b', 'x'.repeat(300)), publishBytes(V4, 'c', 'y'));
    const d = new PacketDecoder({ version: V4, bufferSize: 512 });
    const got: string[] = [];
    for (let i = 0; i < stream.length; i++) {
      d.feed(stream.subarray(i, i + 1));
      let r;
      while ((r = d.next()) === DECODE_PACKET) {
        const p = d.packet as DecodedPublish;
        expect(p.bytes).not.toBe(stream);
        got.push(p.topic + ':' + p.payload.length);
      }
      expect(r).toBe(DECODE_NEED_DATA);
    }
    expect(got).toEqual(['a/b:300', 'c:1']);
  });

  it('a region of a caller buffer: split packets are held only within bufferOffset..+bufferSize', () => {
    // A client hands the decoder a region of its one byte view; the bytes around it are other tables.
    const stream = concat(publishBytes(V4, 'a/b', 'x'.repeat(100)), fromHex('40020007'), publishBytes(V4, 'c', 'y'.repeat(20)));
    const shared = new Uint8Array(40 + 128 + 40).fill(0xee);
    const d = new PacketDecoder({ version: V4, buffer: shared, bufferOffset: 40, bufferSize: 128 });
    expect(d.maxPacketSize).toBe(128);
    const got: string[] = [];
    for (const step of [1, 3, 7]) {
      for (let i = 0; i < stream.length; i += step) {
        d.feed(stream.subarray(i, i + step));
        while (d.next() === DECODE_PACKET) {
          const p = d.packet!;
          got.push(p.type === PacketType.Publish ? `${(p as DecodedPublish).topic}:${(p as DecodedPublish).payload.length}` : `ack ${(p as { packetId: number }).packetId}`);
        }
      }
    }
    expect(got).toEqual(Array(3).fill(['a/b:100', 'ack 7', 'c:20']).flat());
    expect(shared.subarray(0, 40).every((b) => b === 0xee)).toBe(true);
    expect(shared.subarray(168).every((b) => b === 0xee)).toBe(true);
    // A packet larger than the region is refused, not written past it.
    d.feed(publishBytes(V4, 'big', 'z'.repeat(200)).subarray(0, 10));
    expect(d.next()).toBe(DECODE_ERROR);
    expect(() => new PacketDecoder({ version: V4, buffer: shared, bufferOffset: 100, bufferSize: 128 })).toThrow(RangeError);
  });

  it('topic string is recomputed when the topic changes', () => {
    const d = new PacketDecoder({ version: V4 });
    d.feed(concat(publishBytes(V4, 'a/1', ''), publishBytes(V4, 'a/2', ''), publishBytes(V4, 'a/2', '')));
    const topics: string[] = [];
    while (d.next() === DECODE_PACKET) topics.push((d.packet as DecodedPublish).topic);
    expect(topics).toEqual(['a/1', 'a/2', 'a/2']);
  });

  it('feeding before the previous chunk is consumed is misuse and throws', () => {
    const d = new PacketDecoder({ version: V4 });
    d.feed(concat(fromHex('c000'), fromHex('c000')));
    expect(d.next()).toBe(DECODE_PACKET);
    expect(() => d.feed(fromHex('c000'))).toThrow(/DECODE_NEED_DATA/);
  });

  it('MQTT 5 PUBLISH properties are allocated only when present', () => {
    const buf = new Uint8Array(64);
    const n = encodePublish(buf, 0, V5, 't', bytes('1'), 0, false, false, 0, { contentType: 'x' });
    const d = new PacketDecoder({ version: V5 });
    d.feed(buf.slice(0, n));
    expect(d.next()).toBe(DECODE_PACKET);
    expect((d.packet as DecodedPublish).properties).toEqual({ contentType: 'x' });
  });

  it('a CONNECT is decoded by its own protocol level; the decoder version is the user\'s to set', () => {
    const buf = new Uint8Array(64);
    const n = encode({ type: PacketType.Connect, protocolVersion: 5, clientId: 'c', clean: true, keepalive: 5, properties: { sessionExpiryInterval: 9 } }, V5, buf, 0);
    const d = new PacketDecoder({ version: V4 });
    d.feed(buf.slice(0, n));
    expect(d.next()).toBe(DECODE_PACKET);
    expect(d.packet).toMatchObject({ protocolVersion: 5, properties: { sessionExpiryInterval: 9 } });
    expect(d.version).toBe(V4);
    d.version = V5;
    d.feed(fromHex('e00104'));
    expect(d.next()).toBe(DECODE_PACKET);
    expect(d.packet).toEqual({ type: PacketType.Disconnect, reasonCode: 4 });
  });
});

describe('PacketDecoder errors', () => {
  const cases: Array<[string, ProtocolVersion, string, number, string]> = [
    ['reserved flags on PUBACK', V4, '41020001', 0x81, 'MQTT-2.1.3-1'],
    ['reserved flags on SUBSCRIBE', V4, '800600010001610' + '0', 0x81, 'MQTT-2.1.3-1'],
    ['PUBREL without flags 0010', V5, '60020001', 0x81, 'MQTT-2.1.3-1'],
    ['reserved packet type 0', V4, '0000', 0x81, 'MQTT-2.1.2'],
    ['AUTH in 3.1.1', V4, 'f000', 0x81, 'MQTT-2.1.2'],
    ['PUBLISH QoS 3', V4, '360500017400017878', 0x81, 'MQTT-3.3.1-4'],
    ['DUP on QoS 0', V4, '3803000174', 0x81, 'MQTT-3.3.1-2'],
    ['PUBLISH packet id 0', V4, '32050001740000', 0x82, 'MQTT-2.2.1-3'],
    ['PUBACK packet id 0', V5, '40020000', 0x82, 'MQTT-2.2.1-3'],
    ['SUBSCRIBE packet id 0', V4, '820600000001610' + '0', 0x82, 'MQTT-2.2.1-3'],
    ['wildcard in PUBLISH topic', V4, '300300012b', 0x82, 'MQTT-3.3.2-2'],
    ['empty topic in 3.1.1', V4, '30020000', 0x82, 'MQTT-4.7.3-1'],
    ['empty topic without alias in 5', V5, '3003000000', 0x82, 'MQTT-3.3.2.1'],
    ['overlong UTF-8 in topic', V4, '30040002c0af', 0x81, 'MQTT-1.5.4-1'],
    ['surrogate in topic', V4, '30050003eda080', 0x81, 'MQTT-1.5.4-1'],
    ['U+0000 in topic', V4, '3004000261' + '00', 0x81, 'MQTT-1.5.4-2'],
    ['U+0000 in a CONNECT client id', V4, '100d00044d5154540402003c000100', 0x81, 'MQTT-1.5.4-2'],
    ['message expiry twice', V5, '300f0001740a0200000001020000000278', 0x82, 'more than once'],
    ['user property repeats fine, session expiry on PUBLISH does not', V5, '3009000174051100000001', 0x82, 'not allowed'],
    ['unknown property id', V5, '30060001740205' + '00', 0x81, 'unknown property'],
    ['topic alias 0', V5, '3007000174032300000', 0x82, 'topicAlias of 0'],
    ['property length beyond the packet', V5, '3004000174' + '09', 0x81, 'MQTT-2.2.2'],
    ['3.1.1 PUBACK with 3 bytes', V4, '4003000100', 0x81, 'MQTT-3.4.2'],
    ['PINGREQ with a body', V4, 'c00100', 0x81, 'MQTT-3.12.1'],
    ['3.1.1 DISCONNECT with a body', V4, 'e00100', 0x81, 'MQTT-3.14.1'],
    ['string longer than the packet', V4, '3003000900', 0x81, 'Remaining Length'],
    ['3.1.1 UNSUBACK with trailing bytes', V4, 'b003000100', 0x81, 'Remaining Length'],
    ['CONNACK reserved bits', V4, '20020200', 0x81, 'MQTT-3.2.2-1'],
    ['CONNACK session present with failure', V4, '20020105', 0x82, 'MQTT-3.2.2-4'],
    ['CONNACK unknown 3.1.1 code', V4, '20020006', 0x82, 'MQTT-3.2.2'],
    ['SUBSCRIBE without filters', V4, '82020001', 0x82, 'MQTT-3.8.3-3'],
    ['3.1.1 subscription option reserved bits', V4, '8206000100016104', 0x81, 'MQTT-3.8.3-4'],
    ['5 subscription option reserved bits', V5, '820700010000016140', 0x81, 'MQTT-3.8.3-5'],
    ['subscription QoS 3', V5, '820700010000016103', 0x81, 'MQTT-3.8.3-4'],
    ['retain handling 3', V5, '820700010000016130', 0x82, 'Retain Handling'],
    ['UNSUBSCRIBE without filters', V5, 'a2030001' + '00', 0x82, 'MQTT-3.10.3-2'],
    ['PUBACK reason not allowed', V5, '4003000192', 0x82, 'MQTT-3.4.2.1'],
    ['DISCONNECT unknown reason', V5, 'e00101', 0x82, 'MQTT-3.14.2.1'],
    ['CONNECT protocol level 3', V4, '100c00044d5154540302003c0000', 0x84, 'MQTT-3.1.2-2'],
    ['CONNECT protocol name MQIsdp', V4, '100e00064d5149736470030200000000', 0x84, 'MQTT-3.1.2-1'],
    ['CONNECT reserved flag', V4, '100c00044d5154540403003c0000', 0x81, 'MQTT-3.1.2-3'],
    ['CONNECT will QoS without will', V4, '100c00044d5154540408003c0000', 0x81, 'MQTT-3.1.2-11'],
    ['CONNECT will QoS 3', V4, '100c00044d515454041c003c0000', 0x81, 'MQTT-3.1.2-12'],
    ['CONNECT password without user name (3.1.1)', V4, '100c00044d5154540442003c0000', 0x81, 'MQTT-3.1.2-22'],
    ['remaining length field of 5 bytes', V4, '30ffffffff01', 0x81, 'MQTT-1.5.5'],
  ];
  for (const [name, version, hex, code, rule] of cases) {
    it(`${name}: 0x${code.toString(16)} ${rule}`, () => {
      const d = new PacketDecoder({ version });
      d.feed(fromHex(hex));
      expect(d.next()).toBe(DECODE_ERROR);
      expect(d.error!.reasonCode, d.error!.message).toBe(code);
      expect(d.error!.message).toContain(rule);
      expect(d.packet).toBeNull();
      expect(d.next()).toBe(DECODE_ERROR); // stays failed
      d.reset();
      d.feed(fromHex('c000'));
      expect(d.next()).toBe(DECODE_PACKET);
    });
  }

  it('0x95 as soon as the remaining length announces more than maxPacketSize', () => {
    const d = new PacketDecoder({ version: V5, bufferSize: 4096, maxPacketSize: 100 });
    d.feed(fromHex('30'));
    expect(d.next()).toBe(DECODE_NEED_DATA);
    d.feed(fromHex('62')); // 98 + 2 = 100: fine so far
    expect(d.next()).toBe(DECODE_NEED_DATA);
    d.reset();
    d.feed(fromHex('3063')); // 99 + 2 = 101
    expect(d.next()).toBe(DECODE_ERROR);
    expect(d.error!.reasonCode).toBe(0x95);
    const small = new PacketDecoder({ version: V5, bufferSize: 64, maxPacketSize: 1000 });
    small.feed(fromHex('30ff01'));
    expect(small.next()).toBe(DECODE_ERROR);
    expect(small.error!.reasonCode).toBe(0x95);
  });
});

describe('PacketDecoder lets go of its input', () => {
  it('keeps no reference to a chunk it has used up (an idle client must not hold its last network read)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const d = new PacketDecoder({ version: ProtocolVersion.V311, bufferSize: 64 });
    const refs: WeakRef<Uint8Array>[] = [];
    const feedAll = (chunk: Uint8Array) => {
      refs.push(new WeakRef(chunk));
      d.feed(chunk);
      let kinds = '';
      for (let r = d.next(); r === DECODE_PACKET; r = d.next()) kinds += d.packet!.type === PacketType.Publish ? `P:${(d.packet as { topic: string }).topic} ` : 'A ';
      return kinds;
    };
    // A whole PUBLISH, then a PUBACK split across chunks (the tail is copied into the decoder's own buffer).
    expect(feedAll(fromHex('30 07 00 03 61 2f 62 68 69'))).toBe('P:a/b ');
    expect(feedAll(fromHex('40 02 00'))).toBe('');
    expect(feedAll(fromHex('01'))).toBe('A ');
    await new Promise((r) => setTimeout(r, 0)); // WeakRef targets live to the end of the job that made them
    gc();
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true, true]);
  });
});
