import { describe, expect, it } from 'vitest';
import {
  DECODE_ERROR,
  DECODE_PACKET,
  DecodedPublish,
  PacketDecoder,
  PacketType,
  ProtocolVersion,
  encode,
  encodedLength,
} from '../../modules/mqtt/index.js';
import type { ConnectPacket, Packet, Properties, PublishPacket, QoS, Subscription } from '../../modules/mqtt/index.js';
import { BrokerModel, type BrokerConnection, type MessageInfo } from '../../sim/broker-model.js';
import { Prng } from '../support/prng.js';

const V4 = ProtocolVersion.V311;
const V5 = ProtocolVersion.V5;
const te = new TextEncoder();
const bytes = (s: string) => te.encode(s);

function pkt(p: Packet, version: ProtocolVersion): Uint8Array {
  const n = encodedLength(p, version);
  if (n < 0) throw new Error('test packet does not encode');
  const b = new Uint8Array(n);
  encode(p, version, b, 0);
  return b;
}

/** A raw client: encodes with the codec, records the broker's bytes and decodes them. */
class RawClient {
  readonly conn: BrokerConnection;
  readonly raw: Uint8Array[] = [];
  readonly packets: Packet[] = [];
  closed = 0;
  onPacket: ((p: Packet) => void) | null = null;
  readonly #decoder: PacketDecoder;

  constructor(
    readonly broker: BrokerModel,
    readonly version: ProtocolVersion,
  ) {
    this.#decoder = new PacketDecoder({ version, bufferSize: 65536 });
    this.conn = broker.accept({
      send: (b) => this.#receive(b.slice()),
      close: () => {
        this.closed++;
      },
    });
  }

  #receive(b: Uint8Array): void {
    this.raw.push(b);
    const d = this.#decoder;
    d.feed(b);
    for (;;) {
      const r = d.next();
      if (r === DECODE_ERROR) throw new Error('broker sent bad bytes: ' + d.error!.message);
      if (r !== DECODE_PACKET) break;
      const p = d.packet!;
      const copy: Packet =
        p instanceof DecodedPublish
          ? p.toPacket()
          : p.type >= PacketType.Puback && p.type <= PacketType.Pubcomp
            ? { ...(p as object) } as Packet
            : p;
      this.packets.push(copy);
      this.onPacket?.(copy);
    }
  }

  send(p: Packet, now = 0): void {
    this.conn.receive(pkt(p, this.version), now);
  }

  connect(opts: Partial<ConnectPacket> = {}, now = 0): Packet {
    this.send({ type: PacketType.Connect, protocolVersion: this.version, clientId: 'c', clean: true, keepalive: 60, ...opts }, now);
    return this.packets[0];
  }

  /** The packets received since the last take() or takeRaw() (both consume both). */
  take(): Packet[] {
    this.raw.length = 0;
    return this.packets.splice(0);
  }

  /** The byte chunks received since the last take() or takeRaw(). */
  takeRaw(): number[][] {
    this.packets.length = 0;
    return this.raw.splice(0).map((b) => Array.from(b));
  }

  publishes(): PublishPacket[] {
    return this.take().filter((p): p is PublishPacket => p.type === PacketType.Publish);
  }

  publish(topic: string, payload: string, qos: QoS, packetId = 0, extra: Partial<PublishPacket> = {}): void {
    this.send({ type: PacketType.Publish, topic, payload: bytes(payload), qos, retain: false, dup: false, packetId, ...extra });
  }

  subscribe(subs: Subscription[], packetId = 1): Packet[] {
    this.send({ type: PacketType.Subscribe, packetId, subscriptions: subs });
    return this.take();
  }

  ack(type: PacketType.Puback | PacketType.Pubrec | PacketType.Pubrel | PacketType.Pubcomp, packetId: number, now = 0): void {
    this.send({ type, packetId, reasonCode: 0 }, now);
  }

  /** Acknowledges every QoS 1/2 PUBLISH it gets, at once, from inside send(). */
  autoAck(): void {
    this.onPacket = (p) => {
      if (p.type === PacketType.Publish && p.qos === 1) this.ack(PacketType.Puback, p.packetId);
      if (p.type === PacketType.Publish && p.qos === 2) this.ack(PacketType.Pubrec, p.packetId);
      if (p.type === PacketType.Pubrel) this.ack(PacketType.Pubcomp, p.packetId);
    };
  }
}

function session(broker: BrokerModel, id: string) {
  const s = broker.sessions.get(id);
  if (s === undefined) throw new Error('no session ' + id);
  return s;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('CONNECT / CONNACK', () => {
  it('accepts a 3.1.1 CONNECT with the 4-byte CONNACK', () => {
    const b = new BrokerModel();
    const c = new RawClient(b, V4);
    c.connect({ clientId: 'dev1' });
    expect(c.takeRaw()).toEqual([[0x20, 0x02, 0x00, 0x00]]);
    expect(c.conn.connected).toBe(true);
    expect(c.conn.clientId).toBe('dev1');
    expect(session(b, 'dev1').connected).toBe(true);
    expect(b.stats.connects).toBe(1);
    expect(b.stats.connacks).toEqual({ 0: 1 });
  });

  it('accepts a 5.0 CONNECT with the 5-byte CONNACK (empty properties)', () => {
    const b = new BrokerModel();
    const c = new RawClient(b, V5);
    c.connect({ clientId: 'dev1' });
    expect(c.takeRaw()).toEqual([[0x20, 0x03, 0x00, 0x00, 0x00]]);
  });

  it('reports session present for a 3.1.1 CleanSession=0 session, and clean=1 discards it', () => {
    const b = new BrokerModel();
    let c = new RawClient(b, V4);
    expect(c.connect({ clientId: 'p', clean: false })).toMatchObject({ sessionPresent: false });
    c.conn.clientGone(10);
    expect(session(b, 'p').connected).toBe(false);
    expect(session(b, 'p').expiryIntervalS).toBe(Infinity);
    c = new RawClient(b, V4);
    expect(c.connect({ clientId: 'p', clean: false })).toMatchObject({ sessionPresent: true });
    c.send({ type: PacketType.Disconnect, reasonCode: 0 });
    expect(c.closed).toBe(1);
    c = new RawClient(b, V4);
    expect(c.connect({ clientId: 'p', clean: true })).toMatchObject({ sessionPresent: false });
    c.conn.clientGone(20);
    expect(b.sessions.has('p')).toBe(false); // clean session ends with its connection
  });

  it('keeps a 5.0 session only with Session Expiry Interval > 0, and expires it', () => {
    const b = new BrokerModel();
    let c = new RawClient(b, V5);
    c.connect({ clientId: 'e', clean: true, properties: { sessionExpiryInterval: 0 } });
    c.conn.clientGone(0);
    expect(b.sessions.has('e')).toBe(false);

    c = new RawClient(b, V5);
    c.connect({ clientId: 'e', clean: true, properties: { sessionExpiryInterval: 30 } }, 1000);
    c.conn.clientGone(2000);
    expect(session(b, 'e').expiresAtMs).toBe(32_000);
    c = new RawClient(b, V5);
    expect(c.connect({ clientId: 'e', clean: false, properties: { sessionExpiryInterval: 30 } }, 31_999)).toMatchObject({ sessionPresent: true });
    c.conn.clientGone(40_000);
    c = new RawClient(b, V5);
    expect(c.connect({ clientId: 'e', clean: false }, 70_000)).toMatchObject({ sessionPresent: false }); // expired at 70 000
    c.conn.clientGone(70_000); // expiry 0 now: it ends
    expect(b.sessions.has('e')).toBe(false);

    c = new RawClient(b, V5);
    c.connect({ clientId: 'e', clean: true, properties: { sessionExpiryInterval: 5 } }, 0);
    c.conn.clientGone(0);
    b.tick(4_999);
    expect(b.sessions.has('e')).toBe(true);
    b.tick(5_000);
    expect(b.sessions.has('e')).toBe(false);
  });

  it('assigns a client id to an empty one (5.0 Assigned Client Identifier; 3.1.1 only with clean=1)', () => {
    const b = new BrokerModel();
    const c5 = new RawClient(b, V5);
    const ack = c5.connect({ clientId: '' });
    expect(ack).toMatchObject({ reasonCode: 0, properties: { assignedClientIdentifier: 'broker-model-1' } });
    expect(c5.conn.clientId).toBe('broker-model-1');
    const c4 = new RawClient(b, V4);
    c4.connect({ clientId: '', clean: true });
    expect(c4.takeRaw()).toEqual([[0x20, 0x02, 0x00, 0x00]]);
    expect(c4.conn.clientId).toBe('broker-model-2');
    const bad = new RawClient(b, V4);
    bad.connect({ clientId: '', clean: false });
    expect(bad.takeRaw()).toEqual([[0x20, 0x02, 0x00, 0x02]]); // identifier rejected (3.1.1 [MQTT-3.1.3-8])
    expect(bad.closed).toBe(1);
  });

  it('puts connackProperties in every 5.0 CONNACK and enforces them', () => {
    const b = new BrokerModel();
    b.connackProperties = { receiveMaximum: 2, maximumQoS: 1, retainAvailable: 0, maximumPacketSize: 200, serverKeepAlive: 10 };
    let c = new RawClient(b, V5);
    expect(c.connect({ clientId: 'k' })).toEqual({
      type: PacketType.Connack,
      sessionPresent: false,
      reasonCode: 0,
      properties: { receiveMaximum: 2, maximumQoS: 1, retainAvailable: 0, maximumPacketSize: 200, serverKeepAlive: 10 },
    });
    c.take();
    c.publish('t', 'x', 2, 1);
    expect(c.takeRaw()).toEqual([[0xe0, 0x01, 0x9b]]); // QoS not supported [MQTT-3.2.2-11]
    expect(c.closed).toBe(1);

    c = new RawClient(b, V5);
    c.connect({ clientId: 'k' });
    c.take();
    c.publish('t', 'x', 0, 0, { retain: true });
    expect(c.takeRaw()).toEqual([[0xe0, 0x01, 0x9a]]);

    c = new RawClient(b, V5);
    c.connect({ clientId: 'k' });
    c.take();
    c.publish('t', 'x'.repeat(300), 0);
    expect(c.takeRaw()).toEqual([[0xe0, 0x01, 0x95]]);

    // Server Keep Alive replaces the client's: 1.5 x 10 s of silence closes with 0x8D.
    c = new RawClient(b, V5);
    c.connect({ clientId: 'k', keepalive: 600 }, 0);
    c.take();
    b.tick(14_999);
    expect(c.closed).toBe(0);
    b.tick(15_000);
    expect(c.takeRaw()).toEqual([[0xe0, 0x01, 0x8d]]);
    expect(c.closed).toBe(1);
  });

  it('enforces the announced Receive Maximum on inbound QoS 2 [MQTT-3.3.4-7]', () => {
    const b = new BrokerModel();
    b.connackProperties = { receiveMaximum: 2 };
    const c = new RawClient(b, V5);
    c.connect({ clientId: 'r' });
    c.take();
    c.publish('t', '1', 2, 1);
    c.publish('t', '2', 2, 2);
    c.publish('t', '2', 2, 2, { dup: true }); // a resend is not a new one
    expect(c.take().map((p) => p.type)).toEqual([PacketType.Pubrec, PacketType.Pubrec, PacketType.Pubrec]);
    c.publish('t', '3', 2, 3);
    expect(c.takeRaw()).toEqual([[0xe0, 0x01, 0x93]]);
  });

  it('takes over a client id: the old connection gets DISCONNECT 0x8E and is closed, its will published', () => {
    const b = new BrokerModel();
    const watcher = new RawClient(b, V4);
    watcher.connect({ clientId: 'w' });
    watcher.subscribe([{ topic: 'will/#', qos: 0 }]);
    const old = new RawClient(b, V5);
    old.connect({ clientId: 'dev', clean: false, properties: { sessionExpiryInterval: 100 }, will: { topic: 'will/dev', payload: bytes('gone'), qos: 0, retain: false } });
    old.take();
    const neu = new RawClient(b, V5);
    expect(neu.connect({ clientId: 'dev', clean: false, properties: { sessionExpiryInterval: 100 } })).toMatchObject({ sessionPresent: true });
    expect(old.takeRaw()).toEqual([[0xe0, 0x01, 0x8e]]);
    expect(old.closed).toBe(1);
    expect(old.conn.open).toBe(false);
    expect(b.stats.takeovers).toBe(1);
    expect(watcher.publishes().map((p) => [p.topic, text(p.payload)])).toEqual([['will/dev', 'gone']]);
    expect(session(b, 'dev').connected).toBe(true);
  });

  it('answers PINGREQ with PINGRESP', () => {
    const b = new BrokerModel();
    const c = new RawClient(b, V4);
    c.connect();
    c.takeRaw();
    c.conn.receive(Uint8Array.of(0xc0, 0x00), 0);
    expect(c.takeRaw()).toEqual([[0xd0, 0x00]]);
  });
});

describe('refuseNext', () => {
  it('answers the next CONNECT with the code, closes, and processes nothing after it [MQTT-3.1.4-6]', () => {
    const b = new BrokerModel();
    const seen: MessageInfo[] = [];
    b.onMessage = (m) => seen.push(m);
    b.refuseNext(5);
    const c = new RawClient(b, V4);
    const connect = pkt({ type: PacketType.Connect, protocolVersion: V4, clientId: 'x', clean: true, keepalive: 0 }, V4);
    const pub = pkt({ type: PacketType.Publish, topic: 't', payload: bytes('no'), qos: 1, retain: false, dup: false, packetId: 1 }, V4);
    const chunk = new Uint8Array(connect.length + pub.length);
    chunk.set(connect);
    chunk.set(pub, connect.length);
    c.conn.receive(chunk, 0);
    expect(c.takeRaw()).toEqual([[0x20, 0x02, 0x00, 0x05]]);
    expect(c.closed).toBe(1);
    expect(seen).toEqual([]);
    expect(b.stats.publishesIn).toBe(0);
    expect(b.sessions.size).toBe(0);
    c.conn.receive(pub, 0); // ignored once closed
    expect(c.take()).toEqual([]);
    // Only the next one.
    const ok = new RawClient(b, V4);
    expect(ok.connect()).toMatchObject({ reasonCode: 0 });
    expect(b.stats.connacks).toEqual({ 0: 1, 5: 1 });
  });

  it('translates codes between versions', () => {
    const b = new BrokerModel();
    b.refuseNext(0x87);
    const c5 = new RawClient(b, V5);
    c5.connect();
    expect(c5.takeRaw()).toEqual([[0x20, 0x03, 0x00, 0x87, 0x00]]);
    b.refuseNext(0x87);
    const c4 = new RawClient(b, V4);
    c4.connect();
    expect(c4.takeRaw()).toEqual([[0x20, 0x02, 0x00, 0x05]]);
    b.refuseNext(3);
    const d5 = new RawClient(b, V5);
    d5.connect();
    expect(d5.takeRaw()).toEqual([[0x20, 0x03, 0x00, 0x88, 0x00]]);
    expect(() => b.refuseNext(0)).toThrow(RangeError);
  });
});

describe('input framing', () => {
  it('processes packets that follow CONNECT in the same chunk', () => {
    const b = new BrokerModel();
    const seen: MessageInfo[] = [];
    b.onMessage = (m) => seen.push(m);
    const c = new RawClient(b, V5);
    const parts = [
      pkt({ type: PacketType.Connect, protocolVersion: V5, clientId: 'fast', clean: true, keepalive: 0 }, V5),
      pkt({ type: PacketType.Subscribe, packetId: 7, subscriptions: [{ topic: 'echo', qos: 1 }] }, V5),
      pkt({ type: PacketType.Publish, topic: 'echo', payload: bytes('hi'), qos: 1, retain: false, dup: false, packetId: 9 }, V5),
    ];
    const chunk = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      chunk.set(p, o);
      o += p.length;
    }
    c.conn.receive(chunk, 0);
    expect(c.take().map((p) => p.type)).toEqual([PacketType.Connack, PacketType.Suback, PacketType.Publish, PacketType.Puback]);
    expect(seen).toEqual([{ clientId: 'fast', topic: 'echo', payload: bytes('hi'), qos: 1, dup: false, retain: false }]);
  });

  it('accepts any chunking, one byte at a time included', () => {
    const b = new BrokerModel();
    const seen: string[] = [];
    b.onMessage = (m) => seen.push(text(m.payload));
    const c = new RawClient(b, V4);
    const stream = [
      pkt({ type: PacketType.Connect, protocolVersion: V4, clientId: 'slow', clean: true, keepalive: 0 }, V4),
      pkt({ type: PacketType.Publish, topic: 'a/b', payload: bytes('x'.repeat(300)), qos: 1, retain: false, dup: false, packetId: 1 }, V4),
      pkt({ type: PacketType.Publish, topic: 'a/b', payload: bytes('y'), qos: 0, retain: false, dup: false, packetId: 0 }, V4),
    ];
    for (const p of stream) for (let i = 0; i < p.length; i++) c.conn.receive(p.subarray(i, i + 1), 0);
    expect(seen).toEqual(['x'.repeat(300), 'y']);
    expect(c.take().map((p) => p.type)).toEqual([PacketType.Connack, PacketType.Puback]);
  });

  it('closes on malformed input: 5.0 with DISCONNECT 0x81 first, 3.1.1 silently; the will goes out', () => {
    const b = new BrokerModel();
    const watcher = new RawClient(b, V4);
    watcher.connect({ clientId: 'w' });
    watcher.subscribe([{ topic: 'lwt', qos: 0 }]);
    const c5 = new RawClient(b, V5);
    c5.connect({ clientId: 'm5', will: { topic: 'lwt', payload: bytes('m5'), qos: 0, retain: false } });
    c5.takeRaw();
    c5.conn.receive(Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0xff, 0x01), 0); // Remaining Length of 5 bytes
    expect(c5.takeRaw()).toEqual([[0xe0, 0x01, 0x81]]);
    expect(c5.closed).toBe(1);
    const c4 = new RawClient(b, V4);
    c4.connect({ clientId: 'm4' });
    c4.takeRaw();
    c4.conn.receive(Uint8Array.of(0x62, 0x03, 0x00, 0x01, 0x00), 0); // a 3.1.1 PUBREL has Remaining Length 2: a reason byte is malformed
    expect(c4.takeRaw()).toEqual([]);
    expect(c4.closed).toBe(1);
    expect(watcher.publishes().map((p) => text(p.payload))).toEqual(['m5']);
    expect(b.stats.protocolErrors).toBe(2);
  });

  it('closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1], and one that sends CONNECT twice', () => {
    const b = new BrokerModel();
    const c = new RawClient(b, V4);
    c.conn.receive(Uint8Array.of(0xc0, 0x00), 0);
    expect(c.takeRaw()).toEqual([]);
    expect(c.closed).toBe(1);
    const d = new RawClient(b, V5);
    d.connect();
    d.takeRaw();
    d.connect();
    expect(d.takeRaw()).toEqual([[0xe0, 0x01, 0x82]]);
  });

  it('answers an unsupported protocol level with return code 1 (3.1.1 [MQTT-3.1.2-2])', () => {
    const b = new BrokerModel();
    const c = new RawClient(b, V4);
    const connect = pkt({ type: PacketType.Connect, protocolVersion: V4, clientId: 'old', clean: true, keepalive: 0 }, V4);
    connect[8] = 3; // MQIsdp level 3 under the MQTT name
    c.conn.receive(connect, 0);
    expect(c.takeRaw()).toEqual([[0x20, 0x02, 0x00, 0x01]]);
    expect(c.closed).toBe(1);
  });
});

describe('PUBLISH from clients', () => {
  it('QoS 0 and 1: onMessage per PUBLISH, a resend again (at least once); 4-byte PUBACK', () => {
    for (const version of [V4, V5]) {
      const b = new BrokerModel();
      const seen: MessageInfo[] = [];
      b.onMessage = (m) => seen.push(m);
      const c = new RawClient(b, version);
      c.connect({ clientId: 'q1' });
      c.takeRaw();
      c.publish('t/0', 'zero', 0);
      expect(c.takeRaw()).toEqual([]);
      c.publish('t/1', 'one', 1, 0x1234);
      expect(c.takeRaw()).toEqual([[0x40, 0x02, 0x12, 0x34]]);
      c.publish('t/1', 'one', 1, 0x1234, { dup: true });
      expect(c.takeRaw()).toEqual([[0x40, 0x02, 0x12, 0x34]]);
      expect(seen.map((m) => [m.topic, text(m.payload), m.qos, m.dup])).toEqual([
        ['t/0', 'zero', 0, false],
        ['t/1', 'one', 1, false],
        ['t/1', 'one', 1, true],
      ]);
      expect(b.stats.publishesIn).toBe(3);
    }
  });

  it('QoS 2: delivered once per id (method A); PUBREC, PUBREL, PUBCOMP; the id held until PUBREL', () => {
    const b = new BrokerModel();
    const seen: MessageInfo[] = [];
    b.onMessage = (m) => seen.push(m);
    const c = new RawClient(b, V5);
    c.connect({ clientId: 'q2', clean: false, properties: { sessionExpiryInterval: 60 } });
    c.takeRaw();
    c.publish('t', 'once', 2, 5);
    expect(c.takeRaw()).toEqual([[0x50, 0x02, 0x00, 0x05]]);
    expect([...session(b, 'q2').inboundQos2]).toEqual([5]);
    c.publish('t', 'once', 2, 5, { dup: true });
    expect(c.takeRaw()).toEqual([[0x50, 0x02, 0x00, 0x05]]);
    expect(seen.length).toBe(1);
    // The id survives a reconnect of a persistent session: a resend after it is still a duplicate.
    c.conn.clientGone(0);
    const c2 = new RawClient(b, V5);
    c2.connect({ clientId: 'q2', clean: false, properties: { sessionExpiryInterval: 60 } });
    c2.takeRaw();
    c2.publish('t', 'once', 2, 5, { dup: true });
    expect(c2.takeRaw()).toEqual([[0x50, 0x02, 0x00, 0x05]]);
    expect(seen.length).toBe(1);
    c2.ack(PacketType.Pubrel, 5);
    expect(c2.takeRaw()).toEqual([[0x70, 0x02, 0x00, 0x05]]);
    expect(session(b, 'q2').inboundQos2.size).toBe(0);
    // Once released, the id is new again.
    c2.publish('t', 'twice', 2, 5);
    expect(seen.map((m) => text(m.payload))).toEqual(['once', 'twice']);
  });

  it('completes a PUBREL for an unknown id: 5.0 with 0x92, 3.1.1 plain [MQTT-4.3.3-11]', () => {
    const b = new BrokerModel();
    const c5 = new RawClient(b, V5);
    c5.connect({ clientId: 'a' });
    c5.takeRaw();
    c5.ack(PacketType.Pubrel, 9);
    expect(c5.takeRaw()).toEqual([[0x70, 0x03, 0x00, 0x09, 0x92]]);
    const c4 = new RawClient(b, V4);
    c4.connect({ clientId: 'b' });
    c4.takeRaw();
    c4.ack(PacketType.Pubrel, 9);
    expect(c4.takeRaw()).toEqual([[0x70, 0x02, 0x00, 0x09]]);
  });

  it('resolves MQTT 5 topic aliases within the announced maximum', () => {
    const b = new BrokerModel();
    const seen: string[] = [];
    b.onMessage = (m) => seen.push(m.topic);
    b.connackProperties = { topicAliasMaximum: 4 };
    const c = new RawClient(b, V5);
    c.connect({ clientId: 'al' });
    c.take();
    c.publish('long/topic/name', 'a', 0, 0, { properties: { topicAlias: 3 } });
    c.publish('', 'b', 0, 0, { properties: { topicAlias: 3 } });
    expect(seen).toEqual(['long/topic/name', 'long/topic/name']);
    c.publish('x', 'c', 0, 0, { properties: { topicAlias: 5 } });
    expect(c.takeRaw()).toEqual([[0xe0, 0x01, 0x94]]);
  });
});

describe('delivery to subscribers', () => {
  function pair(version = V4, sub: QoS = 2, options = {}) {
    const b = new BrokerModel(options);
    const s = new RawClient(b, version);
    s.connect({ clientId: 'sub', clean: false, properties: version === V5 ? { sessionExpiryInterval: 3600 } : undefined });
    s.take();
    const suback = s.subscribe([{ topic: 'data/+', qos: sub }]);
    const p = new RawClient(b, version);
    p.connect({ clientId: 'pub' });
    p.take();
    return { b, s, p, suback };
  }

  it('grants the requested QoS, capped by maxQoS; refuses bad and shared filters', () => {
    const b = new BrokerModel({ maxQoS: 1 });
    const c = new RawClient(b, V5);
    c.connect();
    c.take();
    const acks = c.subscribe([
      { topic: 'a', qos: 0 },
      { topic: 'b/#', qos: 1 },
      { topic: 'c', qos: 2 },
      { topic: 'd/#/e', qos: 1 },
      { topic: '$share/g/x', qos: 1 },
    ]);
    expect(acks).toEqual([{ type: PacketType.Suback, packetId: 1, reasonCodes: [0, 1, 1, 0x8f, 0x9e] }]);
    expect([...session(b, 'c').subscriptions.keys()]).toEqual(['a', 'b/#', 'c']);
    c.send({ type: PacketType.Unsubscribe, packetId: 2, topics: ['a', 'zz'] });
    expect(c.take()).toEqual([{ type: PacketType.Unsuback, packetId: 2, reasonCodes: [0, 0x11] }]);
    const c4 = new RawClient(b, V4);
    c4.connect({ clientId: 'c4' });
    c4.take();
    expect(c4.subscribe([{ topic: 'x/+y', qos: 0 }])).toEqual([{ type: PacketType.Suback, packetId: 1, reasonCodes: [0x80] }]);
  });

  it('delivers at min(publish QoS, granted QoS)', () => {
    for (const subQos of [0, 1, 2] as QoS[]) {
      const { s, p } = pair(V4, subQos);
      for (const q of [0, 1, 2] as QoS[]) p.publish('data/x', 'q' + q, q, q === 0 ? 0 : 10 + q);
      const got = s.publishes();
      expect(got.map((m) => [text(m.payload), m.qos])).toEqual([0, 1, 2].map((q) => ['q' + q, Math.min(q, subQos)]));
      expect(got.every((m) => !m.dup && !m.retain)).toBe(true);
    }
  });

  it('runs the subscriber side of QoS 1 and QoS 2 to completion', () => {
    const { b, s, p } = pair(V5, 2);
    p.publish('data/1', 'one', 1, 1);
    p.publish('data/2', 'two', 2, 2);
    const [m1, m2] = s.publishes();
    expect(m1).toMatchObject({ qos: 1, topic: 'data/1' });
    expect(m2).toMatchObject({ qos: 2, topic: 'data/2' });
    expect(m1.packetId).not.toBe(m2.packetId);
    expect(session(b, 'sub').inflight).toBe(2);
    s.ack(PacketType.Puback, m1.packetId);
    s.ack(PacketType.Pubrec, m2.packetId);
    expect(s.takeRaw()).toEqual([[0x62, 0x02, 0x00, m2.packetId]]);
    expect(session(b, 'sub').inflight).toBe(1);
    s.ack(PacketType.Pubcomp, m2.packetId);
    expect(session(b, 'sub').inflight).toBe(0);
    expect(b.stats.publishesOut).toBe(2);
  });

  it('delivers once per session at the highest QoS of overlapping subscriptions; noLocal; $ topics', () => {
    const b = new BrokerModel();
    const c = new RawClient(b, V5);
    c.connect({ clientId: 'o' });
    c.take();
    c.subscribe([
      { topic: 'a/+', qos: 0 },
      { topic: 'a/#', qos: 2 },
      { topic: 'a/b', qos: 1 },
      { topic: '#', qos: 0 },
    ]);
    expect(b.publish('a/b', bytes('x'), 2)).toBe(1);
    expect(c.publishes().map((m) => m.qos)).toEqual([2]);
    expect(b.publish('$SYS/x', bytes('x'), 0)).toBe(0); // [MQTT-4.7.2-1]
    const n = new RawClient(b, V5);
    n.connect({ clientId: 'self' });
    n.take();
    n.subscribe([{ topic: 'me', qos: 1, noLocal: true }]);
    n.publish('me', 'echo?', 1, 1);
    expect(n.publishes()).toEqual([]);
  });

  it('answers acks synchronously from inside send() (re-entrant client) without losing order', () => {
    const { b, s, p } = pair(V4, 2, { maxInflightPerSession: 1 });
    s.autoAck();
    for (let i = 0; i < 20; i++) p.publish('data/x', String(i), ((i % 2) + 1) as QoS, i + 1);
    const got = s.packets.filter((m): m is PublishPacket => m.type === PacketType.Publish).map((m) => text(m.payload));
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(session(b, 'sub').inflight).toBe(0);
    expect(b.stats.queued).toBe(0);
  });

  it('queues beyond the inflight window (option and 5.0 Receive Maximum) and sends on each ack', () => {
    const { b, s, p } = pair(V4, 1, { maxInflightPerSession: 2 });
    for (let i = 0; i < 5; i++) p.publish('data/x', String(i), 1, i + 1);
    let got = s.publishes();
    expect(got.map((m) => text(m.payload))).toEqual(['0', '1']);
    expect(session(b, 'sub').queued).toBe(3);
    expect(b.stats.queued).toBe(3);
    p.publish('data/x', 'q0', 0); // QoS 0 does not wait for the window
    expect(s.publishes().map((m) => text(m.payload))).toEqual(['q0']);
    s.ack(PacketType.Puback, got[1].packetId);
    got = s.publishes();
    expect(got.map((m) => text(m.payload))).toEqual(['2']);

    const b5 = new BrokerModel();
    const r = new RawClient(b5, V5);
    r.connect({ clientId: 'rm', properties: { receiveMaximum: 1 } });
    r.take();
    r.subscribe([{ topic: 't', qos: 2 }]);
    for (let i = 0; i < 3; i++) b5.publish('t', bytes(String(i)), 2);
    const [first] = r.publishes();
    expect(text(first.payload)).toBe('0');
    r.ack(PacketType.Pubrec, first.packetId);
    expect(r.take().map((x) => x.type)).toEqual([PacketType.Pubrel]); // still inflight until PUBCOMP
    r.ack(PacketType.Pubcomp, first.packetId);
    expect(r.publishes().map((m) => text(m.payload))).toEqual(['1']);
  });

  it('paces broker.publish() through a window of 1 with a client acking from inside send()', () => {
    const b = new BrokerModel({ maxInflightPerSession: 1 });
    const s = new RawClient(b, V5);
    s.connect({ clientId: 'x' });
    s.take();
    s.subscribe([{ topic: 't', qos: 2 }]);
    s.autoAck();
    for (let i = 0; i < 6; i++) b.publish('t', bytes(String(i)), ((i % 2) + 1) as QoS);
    expect(s.publishes().map((m) => text(m.payload))).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(session(b, 'x').inflight).toBe(0);
    expect(b.stats.queued).toBe(0);
  });

  it('does not send what exceeds the client\'s Maximum Packet Size (5.0), and does not leave it inflight', () => {
    const b = new BrokerModel();
    const s = new RawClient(b, V5);
    s.connect({ clientId: 'small', properties: { maximumPacketSize: 32 } });
    s.take();
    s.subscribe([{ topic: 't', qos: 1 }]);
    b.publish('t', bytes('x'.repeat(40)), 1);
    b.publish('t', bytes('ok'), 1);
    expect(s.publishes().map((m) => text(m.payload))).toEqual(['ok']);
    expect(b.stats.tooLarge).toBe(1);
    expect(session(b, 'small').inflight).toBe(1);
  });

  it('sends retained messages after the SUBACK, with RETAIN set, per Retain Handling', () => {
    const b = new BrokerModel();
    b.publish('cfg/a', bytes('A'), 1, { retain: true });
    b.publish('cfg/b', bytes('B'), 0, { retain: true });
    b.publish('cfg/b', new Uint8Array(0), 0, { retain: true }); // clears [MQTT-3.3.1-6]
    b.publish('cfg/c', bytes('C'), 2, { retain: true });
    expect(b.retainedCount).toBe(2);
    const c = new RawClient(b, V5);
    c.connect();
    c.take();
    c.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topic: 'cfg/#', qos: 1 }] });
    const got = c.take();
    expect(got[0].type).toBe(PacketType.Suback);
    expect(got.slice(1).map((m) => m.type === PacketType.Publish && [m.topic, m.qos, m.retain])).toEqual([
      ['cfg/a', 1, true],
      ['cfg/c', 1, true],
    ]);
    c.send({ type: PacketType.Subscribe, packetId: 2, subscriptions: [{ topic: 'cfg/#', qos: 1, retainHandling: 1 }] });
    expect(c.take().map((m) => m.type)).toEqual([PacketType.Suback]); // not a new subscription
    b.publish('cfg/a', bytes('A2'), 0, { retain: true });
    expect(c.publishes().map((m) => m.retain)).toEqual([false]); // live delivery clears RETAIN [MQTT-3.3.1-12]
  });

  it('forwards MQTT 5 properties and the remaining Message Expiry Interval', () => {
    const b = new BrokerModel();
    const c = new RawClient(b, V5);
    c.connect();
    c.take();
    c.subscribe([{ topic: 't', qos: 0 }]);
    const props: Properties = { contentType: 'text/plain', userProperties: [['k', 'v']], messageExpiryInterval: 100 };
    b.publish('t', bytes('x'), 0, { properties: props, nowMs: 5000 });
    expect(c.publishes()[0].properties).toEqual({ messageExpiryInterval: 100, contentType: 'text/plain', userProperties: [['k', 'v']] });
  });
});

describe('persistent sessions: queue while offline, resend on reconnect', () => {
  function offlineSubscriber(version: ProtocolVersion, options = {}) {
    const b = new BrokerModel(options);
    const s = new RawClient(b, version);
    const props = version === V5 ? { sessionExpiryInterval: 3600 } : undefined;
    s.connect({ clientId: 'dev', clean: false, properties: props });
    s.take();
    s.subscribe([{ topic: 'cmd/#', qos: 2 }]);
    return { b, s, props };
  }

  it('resends unacked PUBLISH with DUP=1 and PUBREL past PUBREC, then the queue in order', () => {
    for (const version of [V4, V5]) {
      const { b, s, props } = offlineSubscriber(version);
      b.publish('cmd/1', bytes('a'), 1);
      b.publish('cmd/2', bytes('b'), 2);
      b.publish('cmd/3', bytes('c'), 2);
      const sent = s.publishes();
      expect(sent.map((m) => text(m.payload))).toEqual(['a', 'b', 'c']);
      s.ack(PacketType.Pubrec, sent[1].packetId); // b is past PUBREC
      s.take();
      s.conn.clientGone(0);
      b.publish('cmd/4', bytes('d'), 1);
      b.publish('cmd/5', bytes('e'), 0); // QoS 0 is not kept for an offline session
      b.publish('cmd/6', bytes('f'), 2);
      expect(session(b, 'dev').queued).toBe(2);
      expect(b.stats.queued).toBe(2);

      const s2 = new RawClient(b, version);
      expect(s2.connect({ clientId: 'dev', clean: false, properties: props })).toMatchObject({ sessionPresent: true });
      const after = s2.take().slice(1);
      expect(
        after.map((p) =>
          p.type === PacketType.Publish ? ['PUBLISH', text(p.payload), p.dup, p.packetId] : [p.type === PacketType.Pubrel ? 'PUBREL' : p.type, (p as { packetId: number }).packetId],
        ),
      ).toEqual([
        ['PUBLISH', 'a', true, sent[0].packetId],
        ['PUBREL', sent[1].packetId],
        ['PUBLISH', 'c', true, sent[2].packetId],
        ['PUBLISH', 'd', false, expect.any(Number)],
        ['PUBLISH', 'f', false, expect.any(Number)],
      ]);
      expect(b.stats.queued).toBe(0);
      expect(session(b, 'dev').inflight).toBe(5);
    }
  });

  it('keeps QoS 0 for offline sessions with queueQoS0', () => {
    const { b, s } = offlineSubscriber(V4, { queueQoS0: true });
    s.conn.clientGone(0);
    b.publish('cmd/x', bytes('zero'), 0);
    expect(b.stats.queued).toBe(1);
    const s2 = new RawClient(b, V4);
    s2.connect({ clientId: 'dev', clean: false });
    expect(s2.publishes().map((m) => [text(m.payload), m.qos])).toEqual([['zero', 0]]);
  });

  it('caps the queue and drops the oldest (default) or the newest, counted', () => {
    for (const [policy, kept] of [
      ['oldest', ['2', '3', '4']],
      ['newest', ['0', '1', '2']],
    ] as const) {
      const { b, s, props } = offlineSubscriber(V4, { maxQueuedPerSession: 3, dropPolicy: policy });
      s.conn.clientGone(0);
      for (let i = 0; i < 5; i++) b.publish('cmd/x', bytes(String(i)), 1);
      expect(b.stats.dropped).toBe(2);
      expect(session(b, 'dev').dropped).toBe(2);
      expect(b.stats.queued).toBe(3);
      const s2 = new RawClient(b, V4);
      s2.connect({ clientId: 'dev', clean: false, properties: props });
      expect(s2.publishes().map((m) => text(m.payload))).toEqual(kept);
    }
  });

  it('drops queued messages whose Message Expiry Interval passed; forwards the rest with what is left', () => {
    const { b, s, props } = offlineSubscriber(V5);
    s.conn.clientGone(0);
    b.publish('cmd/short', bytes('s'), 1, { messageExpiryInterval: 10, nowMs: 1000 });
    b.publish('cmd/long', bytes('l'), 1, { messageExpiryInterval: 100, nowMs: 1000 });
    b.publish('cmd/none', bytes('n'), 1, { nowMs: 1000 });
    const s2 = new RawClient(b, V5);
    s2.connect({ clientId: 'dev', clean: false, properties: props }, 31_000);
    const got = s2.publishes();
    expect(got.map((m) => [m.topic, m.properties?.messageExpiryInterval])).toEqual([
      ['cmd/long', 70],
      ['cmd/none', undefined],
    ]);
    expect(b.stats.expired).toBe(1);

    // tick() purges them without a reconnect.
    s2.conn.clientGone(31_000);
    b.publish('cmd/short', bytes('s'), 1, { messageExpiryInterval: 1, nowMs: 31_000 });
    expect(b.stats.queued).toBe(1);
    b.tick(32_000);
    expect(b.stats.queued).toBe(0);
    expect(b.stats.expired).toBe(2);
  });

  it('a will to a persistent subscriber is published on clientGone, not after DISCONNECT (5.0: unless 0x04)', () => {
    const { b, s } = offlineSubscriber(V4);
    s.take();
    const dev = (will: string, version = V4) => {
      const c = new RawClient(b, version);
      c.connect({ clientId: 'w-' + will, will: { topic: 'cmd/will', payload: bytes(will), qos: 1, retain: false } });
      return c;
    };
    dev('lost').conn.clientGone(0);
    dev('clean').send({ type: PacketType.Disconnect, reasonCode: 0 });
    dev('asked', V5).send({ type: PacketType.Disconnect, reasonCode: 0x04 });
    expect(s.publishes().map((m) => text(m.payload))).toEqual(['lost', 'asked']);
    expect(b.stats.wills).toBe(2);
  });
});

describe('restart', () => {
  it('drops every connection; keepSessions keeps persistent sessions with their queue and inflight', () => {
    const b = new BrokerModel();
    const s = new RawClient(b, V5);
    s.connect({ clientId: 'keep', clean: false, properties: { sessionExpiryInterval: 100 } });
    s.take();
    s.subscribe([{ topic: 't', qos: 1 }]);
    const tmp = new RawClient(b, V4);
    tmp.connect({ clientId: 'tmp', clean: true });
    b.publish('t', bytes('inflight'), 1, { retain: true });
    s.take();
    b.restart({ keepSessions: true, nowMs: 0 });
    expect(s.closed).toBe(1);
    expect(tmp.closed).toBe(1);
    expect(s.conn.open).toBe(false);
    expect(b.connectionCount).toBe(0);
    expect([...b.sessions.keys()]).toEqual(['keep']);
    b.publish('t', bytes('queued'), 1);
    const s2 = new RawClient(b, V5);
    expect(s2.connect({ clientId: 'keep', clean: false, properties: { sessionExpiryInterval: 100 } })).toMatchObject({ sessionPresent: true });
    expect(s2.publishes().map((m) => [text(m.payload), m.dup])).toEqual([
      ['inflight', true],
      ['queued', false],
    ]);
    expect(b.retainedCount).toBe(1);

    b.restart({ keepSessions: false });
    expect(s2.closed).toBe(1);
    expect(b.sessions.size).toBe(0);
    expect(b.retainedCount).toBe(0);
    expect(b.stats.queued).toBe(0);
    const s3 = new RawClient(b, V5);
    expect(s3.connect({ clientId: 'keep', clean: false, properties: { sessionExpiryInterval: 100 } })).toMatchObject({ sessionPresent: false });
  });

  it('a client that reconnects from inside close() sees the restarted broker', () => {
    const b = new BrokerModel();
    let again: RawClient | null = null;
    const c = b.accept({
      send() {},
      close() {
        again = new RawClient(b, V4);
        again.connect({ clientId: 'r', clean: false });
      },
    });
    c.receive(pkt({ type: PacketType.Connect, protocolVersion: V4, clientId: 'r', clean: false, keepalive: 0 }, V4), 0);
    b.restart({ keepSessions: true });
    expect(again!.packets).toEqual([{ type: PacketType.Connack, sessionPresent: true, reasonCode: 0 }]);
    expect(session(b, 'r').connected).toBe(true);
  });
});

describe('scale and determinism', () => {
  it('routes to thousands of sessions on exact filters without scanning them all', () => {
    const b = new BrokerModel();
    const n = 5000;
    let received = 0;
    const conns: BrokerConnection[] = [];
    for (let i = 0; i < n; i++) {
      const conn = b.accept({ send: () => received++, close() {} });
      conn.receive(pkt({ type: PacketType.Connect, protocolVersion: V4, clientId: 'd' + i, clean: false, keepalive: 60 }, V4), 0);
      conn.receive(pkt({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topic: `dev/d${i}/cmd`, qos: 1 }] }, V4), 0);
      conns.push(conn);
    }
    received = 0;
    const t0 = performance.now();
    for (let round = 0; round < 10; round++) for (let i = 0; i < n; i++) b.publish(`dev/d${i}/cmd`, bytes('go'), 0);
    expect(received).toBe(10 * n);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(b.decoderCount).toBe(1); // whole packets: one pooled decoder served every connection
    for (const c of conns) c.clientGone(1);
    expect(b.connectionCount).toBe(0);
    expect(b.sessions.size).toBe(n);
  });

  it('a seeded random run keeps the counters consistent and replays identically', () => {
    const run = (seed: number): string => {
      const rng = new Prng(seed);
      const b = new BrokerModel({ maxQueuedPerSession: 5, maxInflightPerSession: 3 });
      const ids = ['a', 'b', 'c'];
      const clients = new Map<string, RawClient>();
      let trace = 0;
      let now = 0;
      for (let step = 0; step < 3000; step++) {
        now += rng.int(0, 500);
        const id = rng.pick(ids);
        let c = clients.get(id);
        const r = rng.int(0, 9);
        if (c === undefined || !c.conn.open) {
          c = new RawClient(b, rng.bool() ? V5 : V4);
          c.connect({ clientId: id, clean: rng.bool(0.2), properties: c.version === V5 ? { sessionExpiryInterval: 60 } : undefined }, now);
          c.subscribe([{ topic: rng.pick(['#', 'x/+', 'x/' + id]), qos: rng.int(0, 2) as QoS }]);
          clients.set(id, c);
        } else if (r < 4) {
          c.publish('x/' + rng.pick(ids), 'm' + step, rng.int(0, 2) as QoS, rng.int(1, 4));
        } else if (r < 7) {
          for (const p of c.take()) {
            if (p.type !== PacketType.Publish && p.type !== PacketType.Pubrec && p.type !== PacketType.Pubrel) continue;
            if (!rng.bool(0.8)) continue;
            if (p.type === PacketType.Publish && p.qos === 1) c.ack(PacketType.Puback, p.packetId, now);
            else if (p.type === PacketType.Publish && p.qos === 2) c.ack(PacketType.Pubrec, p.packetId, now);
            else if (p.type === PacketType.Pubrec) c.ack(PacketType.Pubrel, p.packetId, now);
            else if (p.type === PacketType.Pubrel) c.ack(PacketType.Pubcomp, p.packetId, now);
          }
        } else if (r === 7) {
          c.conn.clientGone(now);
        } else if (r === 8) {
          b.publish('x/' + id, bytes('s' + step), rng.int(0, 2) as QoS, { nowMs: now, messageExpiryInterval: rng.bool() ? 5 : undefined });
        } else if (rng.bool(0.1)) {
          b.restart({ keepSessions: rng.bool(), nowMs: now });
        } else {
          b.tick(now);
        }
        let queued = 0;
        for (const s of b.sessions.values()) {
          queued += s.queued;
          expect(s.queued).toBeLessThanOrEqual(5);
          if (s.connected) expect(s.inflight).toBeLessThanOrEqual(3);
        }
        expect(b.stats.queued).toBe(queued);
        for (const cl of clients.values()) trace = (trace * 31 + cl.raw.length) | 0;
      }
      return JSON.stringify(b.stats) + trace;
    };
    const seed = 0xd0e5;
    const first = run(seed);
    expect(run(seed)).toBe(first);
  });
});
