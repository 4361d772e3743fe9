import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  DECODE_ERROR, DECODE_NEED_DATA, DECODE_PACKET, DECODE_PIECE, DECODE_PUBLISH_HEAD, DecodedPublish, PINGREQ, PacketDecoder, encode, encodePublish,
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

  it('feed(chunk, length) reads chunk[0 .. length) only: a reused read buffer with stale bytes after the read', () => {
    const d = new PacketDecoder({ version: V4 });
    const readBuffer = new Uint8Array(256).fill(0x30); // stale bytes that would parse as PUBLISH headers
    const a = publishBytes(V4, 'r/1', 'one');
    const b = publishBytes(V4, 'r/2', 'two');
    // A read of the first packet and half of the second; then the rest of it, read into the same buffer.
    const cut = 5;
    readBuffer.set(a, 0);
    readBuffer.set(b.subarray(0, cut), a.length);
    d.feed(readBuffer, a.length + cut);
    const got: string[] = [];
    let r: number;
    while ((r = d.next()) === DECODE_PACKET) got.push(`${(d.packet as DecodedPublish).topic}=${Buffer.from((d.packet as DecodedPublish).payload)}`);
    expect(r).toBe(DECODE_NEED_DATA);
    expect(d.pending).toBe(cut);
    readBuffer.fill(0x30);
    readBuffer.set(b.subarray(cut), 0);
    d.feed(readBuffer, b.length - cut);
    while ((r = d.next()) === DECODE_PACKET) got.push(`${(d.packet as DecodedPublish).topic}=${Buffer.from((d.packet as DecodedPublish).payload)}`);
    expect(r).toBe(DECODE_NEED_DATA);
    expect(got).toEqual(['r/1=one', 'r/2=two']);
    expect(d.pending).toBe(0);
    expect(() => d.feed(readBuffer, 257)).toThrow(RangeError);
    expect(() => d.feed(readBuffer, -1)).toThrow(RangeError);
    d.feed(readBuffer, 0);
    expect(d.next()).toBe(DECODE_NEED_DATA);
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

describe('PacketDecoder pieces: a PUBLISH larger than the buffer', () => {
  const big = (version: ProtocolVersion, qos: 0 | 1 | 2, n: number, props: Record<string, unknown> | null = null): { packet: Uint8Array; payload: Uint8Array } => {
    const payload = new Uint8Array(n).map((_, i) => (i * 7 + 3) & 0xff);
    const buf = new Uint8Array(n + 512);
    const len = encodePublish(buf, 0, version, 'fw/image/v2', payload, qos, false, qos > 0, qos ? 0x1234 : 0, props);
    return { packet: buf.slice(0, len), payload };
  };

  /** Feeds `chunks`, gathers what comes out: heads, pieces (copied) and whole packets. */
  function run(d: PacketDecoder, chunks: Uint8Array[]) {
    const out: Array<{ kind: string; offset?: number; total?: number; bytes?: Uint8Array; packet?: unknown }> = [];
    for (const c of chunks) {
      d.feed(c);
      for (;;) {
        const r = d.next();
        if (r === DECODE_NEED_DATA) break;
        if (r === DECODE_ERROR) return { out, error: d.error };
        const p = d.packet as DecodedPublish;
        if (r === DECODE_PUBLISH_HEAD) out.push({ kind: 'head', total: p.payloadLength, packet: { topic: p.topic, qos: p.qos, dup: p.dup, packetId: p.packetId, properties: p.properties, piece: p.payloadEnd - p.payloadStart } });
        else if (r === DECODE_PIECE) out.push({ kind: 'piece', offset: p.pieceOffset, total: p.payloadLength, bytes: p.payload.slice() });
        else out.push({ kind: 'packet', packet: p.type === PacketType.Publish ? { topic: p.topic, payload: p.payload.slice() } : { ...d.packet } });
      }
    }
    return { out, error: d.error };
  }

  function cut(b: Uint8Array, at: number[]): Uint8Array[] {
    const parts: Uint8Array[] = [];
    let from = 0;
    for (const a of [...at, b.length]) {
      if (a > from) parts.push(b.slice(from, a));
      from = Math.max(from, a);
    }
    return parts;
  }

  function check(result: ReturnType<typeof run>, payload: Uint8Array, qos: number, trailer: boolean, props?: unknown) {
    expect(result.error).toBeNull();
    const [head, ...rest] = result.out;
    expect(head).toMatchObject({ kind: 'head', total: payload.length, packet: { topic: 'fw/image/v2', qos, dup: qos > 0, packetId: qos ? 0x1234 : 0, piece: 0 } });
    if (props) expect((head.packet as { properties: unknown }).properties).toEqual(props);
    const pieces = trailer ? rest.slice(0, -1) : rest;
    let at = 0;
    for (const p of pieces) {
      expect(p.kind).toBe('piece');
      expect(p.offset).toBe(at);
      expect(p.total).toBe(payload.length);
      at += p.bytes!.length;
    }
    expect(at).toBe(payload.length);
    expect(concat(...pieces.map((p) => p.bytes!))).toEqual(payload);
    if (trailer) expect(rest.at(-1)).toMatchObject({ kind: 'packet', packet: { type: PacketType.Puback, packetId: 9 } });
  }

  for (const version of [V4, V5]) {
    for (const qos of [0, 1, 2] as const) {
      const props = version === V5 ? { userProperties: [['part', '1/1']] as Array<[string, string]>, contentType: 'application/octet-stream' } : null;
      it(`MQTT ${version === V5 ? '5' : '3.1.1'} QoS ${qos}: the head once, then the payload in order, cut anywhere`, () => {
        const { packet, payload } = big(version, qos, 3000, props);
        const ack = fromHex('40020009');
        const whole = concat(packet, ack);
        const headLen = packet.length - payload.length;
        // One chunk; one byte at a time; a cut at every byte of the head (in the fixed header, the topic, the properties) and the first payload bytes.
        const splits: Uint8Array[][] = [[whole], Array.from(whole, (b) => Uint8Array.of(b))];
        for (let c = 1; c <= headLen + 2; c++) splits.push(cut(whole, [c, c + 1, c + 700, whole.length - 3]));
        for (const chunks of splits) {
          const d = new PacketDecoder({ version, bufferSize: 256, maxPacketSize: 1 << 20, pieces: true });
          check(run(d, chunks), payload, qos, true, props ?? undefined);
          expect(d.inPieces).toBe(false);
        }
      });
    }
  }

  it('pieces are views of the fed chunk (no copy of the payload)', () => {
    const { packet } = big(V4, 1, 1000);
    const d = new PacketDecoder({ version: V4, bufferSize: 64, maxPacketSize: 4096, pieces: true });
    d.feed(packet);
    expect(d.next()).toBe(DECODE_PUBLISH_HEAD);
    expect(d.next()).toBe(DECODE_PIECE);
    expect((d.packet as DecodedPublish).bytes).toBe(packet);
    expect((d.packet as DecodedPublish).payload.length).toBe(1000);
    expect(d.next()).toBe(DECODE_NEED_DATA);
  });

  it('a message that fits the buffer is still one packet', () => {
    const d = new PacketDecoder({ version: V4, bufferSize: 64, maxPacketSize: 4096, pieces: true });
    const p = publishBytes(V4, 'a/b', 'x'.repeat(40));
    expect(run(d, [p.slice(0, 5), p.slice(5)]).out).toMatchObject([{ kind: 'packet', packet: { topic: 'a/b' } }]);
  });

  it('another packet type larger than the buffer is refused with 0x95, so is a head that does not fit', () => {
    const d = new PacketDecoder({ version: V5, bufferSize: 64, maxPacketSize: 4096, pieces: true });
    // SUBACK with 100 reason codes: 2 + 2 + 1 + 100 bytes.
    d.feed(concat(fromHex('90 67 00 01 00'), new Uint8Array(100)));
    expect(d.next()).toBe(DECODE_ERROR);
    expect(d.error?.reasonCode).toBe(0x95);
    // A 100-byte topic: the head (2 + 2 + 100 bytes) cannot be parsed in 64.
    const h = new PacketDecoder({ version: V4, bufferSize: 64, maxPacketSize: 4096, pieces: true });
    const p = publishBytes(V4, 't'.repeat(100), 'y'.repeat(10));
    h.feed(p.slice(0, 3));
    expect(h.next()).toBe(DECODE_NEED_DATA);
    h.feed(p.slice(3));
    expect(h.next()).toBe(DECODE_ERROR);
    expect(h.error?.reasonCode).toBe(0x95);
  });

  it('larger than maxPacketSize is refused with 0x95 before any piece', () => {
    const { packet } = big(V4, 0, 5000);
    const d = new PacketDecoder({ version: V4, bufferSize: 64, maxPacketSize: 4096, pieces: true });
    d.feed(packet);
    expect(d.next()).toBe(DECODE_ERROR);
    expect(d.error?.reasonCode).toBe(0x95);
  });

  it('without pieces a PUBLISH larger than the buffer is refused as before', () => {
    const { packet } = big(V4, 0, 100);
    const d = new PacketDecoder({ version: V4, bufferSize: 64 });
    d.feed(packet);
    expect(d.next()).toBe(DECODE_ERROR);
    expect(d.error?.reasonCode).toBe(0x95);
  });

  it('a malformed head is refused as it would be whole (wildcard in the topic, QoS 3)', () => {
    const buf = new Uint8Array(300);
    const n = encodePublish(buf, 0, V4, 'a/b', new Uint8Array(200), 0, false, false, 0, null);
    const wild = buf.slice(0, n);
    wild[7] = 0x2b; // 30 ca 01 00 03 61 2f [62 → 2b]: a/+
    const d = new PacketDecoder({ version: V4, bufferSize: 64, maxPacketSize: 4096, pieces: true });
    d.feed(wild);
    expect(d.next()).toBe(DECODE_ERROR);
    expect(d.error?.reasonCode).toBe(0x82);
    const q3 = buf.slice(0, n);
    q3[0] = 0x36; // QoS 3 [MQTT-3.3.1-4]
    const e = new PacketDecoder({ version: V4, bufferSize: 64, maxPacketSize: 4096, pieces: true });
    e.feed(q3);
    expect(e.next()).toBe(DECODE_ERROR);
    expect(e.error?.reasonCode).toBe(0x81);
  });

  it('reset() in the middle of a large message starts clean', () => {
    const { packet } = big(V4, 1, 1000);
    const d = new PacketDecoder({ version: V4, bufferSize: 64, maxPacketSize: 4096, pieces: true });
    d.feed(packet.slice(0, 500));
    expect(d.next()).toBe(DECODE_PUBLISH_HEAD);
    expect(d.next()).toBe(DECODE_PIECE);
    expect(d.inPieces).toBe(true);
    d.reset();
    expect(d.inPieces).toBe(false);
    d.feed(fromHex('40020009'));
    expect(d.next()).toBe(DECODE_PACKET);
  });
});
