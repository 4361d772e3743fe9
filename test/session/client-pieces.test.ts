// Messages larger than the receive buffer (issue 12 item 5), byte for byte
// against a scripted broker: the PUBLISH is cut at awkward places (one byte at
// a time, inside the fixed header, the topic, the properties), its pieces come
// out in order with offset and total, the ack leaves only after the last piece,
// and QoS 2 de-duplication is decided at the head, before any piece is delivered.
import { describe, expect, it } from 'vitest';
import { bytes, hex } from './harness.js';
import { DormouseClient, type ClientOptions } from '../../modules/session/client.js';
import { ClientEvent } from '../../modules/session/ports.js';
import { encodePublish } from '../../modules/mqtt/encode.js';
import { ProtocolVersion, type PublishPacket, type Properties } from '../../modules/mqtt/types.js';
import { MemorySnapshotStore } from '../../sim/memory-store.js';

interface Piece { topic: string; qos: number; dup: boolean; offset: number; total: number; bytes: Uint8Array }

function pieceRig(options: Partial<ClientOptions> = {}, withPieces = true, store: MemorySnapshotStore | null = null) {
  const writes: string[] = [];
  const pieces: Piece[] = [];
  const messages: PublishPacket[] = [];
  const events: Array<{ kind: ClientEvent; a: number; b: number; detail?: unknown }> = [];
  const client = new DormouseClient(
    { clientId: 'dev1', keepalive: 60, receiveBufferSize: 128, ...options },
    {
      send: (b) => { writes.push(hex(b)); },
      open: () => {},
      close: () => {},
      message: (p) => messages.push({ type: p.type, topic: p.topic, qos: p.qos, dup: p.dup, retain: p.retain, packetId: p.packetId, payload: p.payload.slice() }),
      piece: withPieces
        ? (p, offset, total) => void pieces.push({ topic: p.topic, qos: p.qos, dup: p.dup, offset, total, bytes: p.payload.slice() })
        : undefined,
      event: (kind, a, b, detail) => events.push({ kind, a, b, detail }),
    },
    store,
  );
  return {
    client, writes, pieces, messages, events,
    takeAll: () => writes.splice(0).join(' '),
    connect(connack: string, t = 0) {
      client.start(t);
      client.transportOpened(t);
      const connect = writes.splice(0).join(' ');
      client.receive(bytes(connack), t);
      writes.splice(0);
      return connect;
    },
  };
}

const PAYLOAD = new Uint8Array(1000).map((_, i) => (i * 31 + 7) & 0xff);
const PROPS: Properties = { contentType: 'application/octet-stream', userProperties: [['part', '1']] };

function bigPublish(v5: boolean, qos: 0 | 1 | 2, id: number, dup = false, payload = PAYLOAD): Uint8Array {
  const buf = new Uint8Array(payload.length + 256);
  const n = encodePublish(buf, 0, v5 ? ProtocolVersion.V5 : ProtocolVersion.V311, 'fw/img', payload, qos, false, dup, id, v5 ? PROPS : null);
  return buf.slice(0, n);
}

function cut(b: Uint8Array, at: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (const a of [...at, b.length]) {
    if (a > from) out.push(b.slice(from, a));
    from = Math.max(from, a);
  }
  return out;
}

function joined(pieces: Piece[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((s, p) => s + p.bytes.length, 0));
  let o = 0;
  for (const p of pieces) (out.set(p.bytes, o), (o += p.bytes.length));
  return out;
}

const CONNACK4 = '20 02 00 00';
const CONNACK5 = '20 03 00 00 00';

describe('CONNECT asks only for what differs from the defaults (MQTT 5)', () => {
  // 10 LL | 00 04 "MQTT" 05 flags | keepalive 00 3c | properties | client id 00 04 "dev1"
  const HEAD = '00 04 4d 51 54 54 05';
  const ID = '00 04 64 65 76 31';

  it('with pieces: 27 bytes, no Maximum Packet Size; Receive Maximum stays, as the QoS 2 table is its bound', () => {
    const r = pieceRig({ protocolVersion: 5, sessionExpiryInterval: 3600 }, true, new MemorySnapshotStore());
    // properties (8 B): 11 = Session Expiry Interval 3600 (5 B: the spec's default 0 would end the session),
    // 21 = Receive Maximum 16 (3 B: the incoming QoS 2 table holds 16 ids; the default 65535 would let the
    // broker send more than it can take). No 27 Maximum Packet Size: a PUBLISH of any size is taken in pieces.
    const connect = r.connect(CONNACK5);
    expect(connect).toBe(`10 19 ${HEAD} 00 00 3c 08 11 00 00 0e 10 21 00 10 ${ID}`);
    expect(bytes(connect).length).toBe(27);
  });

  it('without pieces the receive buffer bounds what arrives: 32 bytes, Maximum Packet Size 128 (5 B)', () => {
    const r = pieceRig({ protocolVersion: 5, sessionExpiryInterval: 3600 }, false, new MemorySnapshotStore());
    expect(r.connect(CONNACK5)).toBe(`10 1e ${HEAD} 00 00 3c 0d 11 00 00 0e 10 21 00 10 27 00 00 00 80 ${ID}`);
  });

  it('a clean start with a table of 65535 ids asks for nothing: 19 bytes, properties length 0', () => {
    const r = pieceRig({ protocolVersion: 5, clean: true, capacities: { incomingQos2: 65535 } });
    expect(r.connect(CONNACK5)).toBe(`10 11 ${HEAD} 02 00 3c 00 ${ID}`);
  });

  it("the user's Maximum Packet Size is sent as given, even a smaller one, and enforced (0x95)", () => {
    const r = pieceRig({ protocolVersion: 5, clean: true, properties: { maximumPacketSize: 100 } }, false);
    expect(r.connect(CONNACK5)).toBe(`10 19 ${HEAD} 02 00 3c 08 21 00 10 27 00 00 00 64 ${ID}`);
    r.client.receive(bigPublish(true, 0, 0, false, new Uint8Array(90)), 1);
    expect(r.takeAll()).toBe('e0 02 95 00');
    expect(r.events.filter((e) => e.kind === ClientEvent.ProtocolError).map((e) => e.a)).toEqual([0x95]);
    expect(r.pieces).toEqual([]);
  });

  it('a Maximum Packet Size above the receive buffer without pieces is a clear error at construction', () => {
    expect(() => pieceRig({ protocolVersion: 5, properties: { maximumPacketSize: 4096 } }, false)).toThrow(/receiveBufferSize/);
  });
});

describe('a PUBLISH larger than the receive buffer comes in pieces', () => {
  for (const v5 of [false, true]) {
    for (const qos of [0, 1, 2] as const) {
      it(`MQTT ${v5 ? '5' : '3.1.1'} QoS ${qos}: head parsed once, pieces in order, the ack after the last piece only`, () => {
        const packet = bigPublish(v5, qos, 7);
        const headLen = packet.length - PAYLOAD.length;
        const ack = qos === 1 ? '40 02 00 07' : qos === 2 ? '50 02 00 07' : '';
        // One byte at a time, then a cut at every byte of the head (fixed header, topic, id, properties).
        const splits: Uint8Array[][] = [Array.from(packet, (b) => Uint8Array.of(b))];
        for (let c = 1; c <= headLen + 1; c++) splits.push(cut(packet, [c, c + 3, 700]));
        for (const chunks of splits) {
          const r = pieceRig({ protocolVersion: v5 ? 5 : 4, clean: true });
          r.connect(v5 ? CONNACK5 : CONNACK4);
          for (let k = 0; k < chunks.length; k++) {
            r.client.receive(chunks[k], 1);
            // Nothing is acknowledged before the last byte.
            if (k < chunks.length - 1) expect(r.writes).toEqual([]);
          }
          expect(r.takeAll()).toBe(ack);
          expect(r.messages).toEqual([]);
          expect(joined(r.pieces)).toEqual(PAYLOAD);
          let at = 0;
          for (const p of r.pieces) {
            expect(p).toMatchObject({ topic: 'fw/img', qos, offset: at, total: PAYLOAD.length });
            at += p.bytes.length;
          }
          // A message that fits still comes whole, through `message`.
          r.client.receive(bytes(v5 ? '30 06 00 01 61 00 68 69' : '30 05 00 01 61 68 69'), 2);
          expect(r.messages.map((m) => m.topic)).toEqual(['a']);
        }
      });
    }
  }

  it('QoS 2: the id is stored before the first piece; a resent copy is skipped whole and answered PUBREC once at its end', () => {
    const store = new MemorySnapshotStore();
    const r = pieceRig({ clean: false }, true, store);
    r.connect('20 02 00 00');
    // Each snapshot write, with the pieces delivered by then and whether it holds id 9.
    const persisted: Array<[number, boolean]> = [];
    const write = store.write.bind(store);
    store.write = (slot, image) => {
      write(slot, image);
      persisted.push([r.pieces.length, r.client.session.hasIncoming(9)]);
    };
    const first = bigPublish(false, 2, 9);
    r.client.receive(first.slice(0, 20), 1);
    // The head is in: the id is held and was persisted before any piece reached the application.
    expect(r.pieces.length).toBe(1);
    expect(persisted).toEqual([[0, true]]);
    r.client.receive(first.slice(20), 1);
    expect(r.takeAll()).toBe('50 02 00 09');
    const n = r.pieces.length;
    // The broker did not get the PUBREC and sends it again (DUP), before the PUBREL.
    r.client.receive(bigPublish(false, 2, 9, true), 2);
    expect(r.pieces.length).toBe(n);
    expect(r.takeAll()).toBe('50 02 00 09');
    r.client.receive(bytes('62 02 00 09'), 3);
    expect(r.takeAll()).toBe('70 02 00 09');
    expect(r.client.session.hasIncoming(9)).toBe(false);
  });

  it('QoS 2 cut short by a lost connection: no PUBREC went out, so the id is forgotten and the resend delivered from offset 0', () => {
    const r = pieceRig({ clean: false }, true, new MemorySnapshotStore());
    r.connect('20 02 00 00');
    const packet = bigPublish(false, 2, 11);
    r.client.receive(packet.slice(0, 500), 1);
    expect(r.pieces.at(-1)!.offset + r.pieces.at(-1)!.bytes.length).toBeLessThan(PAYLOAD.length);
    r.client.transportClosed(2);
    expect(r.client.session.hasIncoming(11)).toBe(false);
    r.pieces.length = 0;
    r.client.tick(100_000);
    r.client.transportOpened(100_000);
    r.client.receive(bytes('20 02 01 00'), 100_001);
    r.writes.length = 0;
    r.client.receive(bigPublish(false, 2, 11, true), 100_002);
    expect(r.pieces[0].offset).toBe(0);
    expect(joined(r.pieces)).toEqual(PAYLOAD);
    expect(r.takeAll()).toBe('50 02 00 0b');
  });

  it('QoS 2 with the incoming table full: held back (no piece, no PUBREC) as a whole message would be', () => {
    const r = pieceRig({ clean: true, capacities: { incomingQos2: 1, incomingRuns: 0 } });
    r.connect(CONNACK4);
    r.client.receive(bytes('34 07 00 01 61 00 01 68 69'), 1); // a small QoS 2 message holds the only slot
    expect(r.takeAll()).toBe('50 02 00 01');
    r.client.receive(bigPublish(false, 2, 2), 2);
    expect(r.pieces).toEqual([]);
    expect(r.takeAll()).toBe('');
  });

  it('another packet type larger than the buffer is refused: 0x95', () => {
    const r = pieceRig({ protocolVersion: 5, clean: true });
    r.connect(CONNACK5);
    const suback = new Uint8Array(2 + 2 + 1 + 200);
    suback.set([0x90, 0xcd, 0x01, 0x00, 0x01, 0x00]);
    r.client.receive(suback, 1);
    expect(r.takeAll()).toBe('e0 02 95 00');
  });
});

describe('the application may refuse a large message', () => {
  it('piece() returning false closes with DISCONNECT 0x95, unacknowledged, and the QoS 2 id is forgotten', () => {
    const writes: string[] = [];
    let closed = 0;
    const client = new DormouseClient(
      { clientId: 'dev1', protocolVersion: 5, clean: true, receiveBufferSize: 128 },
      { send: (b) => { writes.push(hex(b)); }, open: () => {}, close: () => closed++, message: () => {}, piece: () => false, event: () => {} },
    );
    client.start(0);
    client.transportOpened(0);
    client.receive(bytes(CONNACK5), 0);
    writes.length = 0;
    client.receive(bigPublish(true, 2, 5), 1);
    expect(writes.join(' ')).toBe('e0 02 95 00');
    expect(closed).toBe(1);
    expect(client.lastReasonCode).toBe(0x95);
    expect(client.session.hasIncoming(5)).toBe(false);
  });
});
