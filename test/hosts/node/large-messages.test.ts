// Messages larger than the receive buffer through the Node host, against
// Debian's mosquitto on 127.0.0.1 (issue 12 item 5): a 1 MiB message to a
// client with a 2 KiB receive buffer, taken in pieces (SHA-256 of the pieces
// joined equals the message's) or assembled into one 'message', MQTT 3.1.1
// and 5.0, QoS 0, 1 and 2; and refused clearly when nobody takes the pieces.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { connect, type NodeClient } from '../../../hosts/node/client.js';
import { startMosquitto, describeMosquitto, type MosquittoHandle } from '../../support/brokers.js';

const once = <T extends unknown[]>(em: { once(e: string, f: (...a: T) => void): unknown }, ev: string) =>
  new Promise<T>((resolve) => em.once(ev, (...a: T) => resolve(a)));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const MIB = randomBytes(1 << 20);

describeMosquitto('messages larger than the receive buffer, Node host on mosquitto', () => {
  let m: MosquittoHandle;
  let peer: mqtt.MqttClient;
  beforeAll(async () => {
    m = await startMosquitto({ persistence: false });
    peer = await mqtt.connectAsync(m.url, { clientId: 'big-publisher' });
  });
  afterAll(async () => {
    await peer?.endAsync();
    await m?.dispose();
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 5 ? '5.0' : '3.1.1'}: 1 MiB at QoS 0, 1 and 2 to a 2 KiB receive buffer, in pieces, SHA-256 matches`, async () => {
      const c: NodeClient = connect(m.url, { clientId: `pieces-${protocolVersion}`, protocolVersion, receiveBufferSize: 2048, largeMessages: 'pieces' });
      const errors: Error[] = [];
      c.on('error', (e) => errors.push(e));
      const small: string[] = [];
      c.on('message', (t) => small.push(t));
      await once(c, 'connect');
      await c.subscribe('fw/#', { qos: 2 });
      for (const qos of [0, 1, 2] as const) {
        const parts: Buffer[] = [];
        let next = 0;
        let pieces = 0;
        const done = new Promise<{ total: number; packet: { qos: number } }>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`timeout after ${next} bytes`)), 20_000);
          const on = (topic: string, piece: Buffer, offset: number, total: number, packet: { qos: number }) => {
            expect(topic).toBe(`fw/${qos}`);
            expect(offset).toBe(next);
            parts.push(piece);
            pieces++;
            next += piece.length;
            if (next === total) {
              clearTimeout(t);
              c.off('messagePiece', on);
              resolve({ total, packet });
            }
          };
          c.on('messagePiece', on);
        });
        await peer.publishAsync(`fw/${qos}`, MIB, { qos });
        const { total, packet } = await done;
        expect(total).toBe(MIB.length);
        expect(packet.qos).toBe(qos);
        expect(sha(Buffer.concat(parts))).toBe(sha(MIB));
        expect(pieces).toBeGreaterThan(1);
      }
      // A message that fits still arrives whole, as 'message'.
      await peer.publishAsync('fw/small', 'hi', { qos: 1 });
      await new Promise((r) => setTimeout(r, 100));
      expect(small).toEqual(['fw/small']);
      expect(errors).toEqual([]);
      expect(c.metrics().reconnects).toBe(0);
      await c.end();
    });
  }

  it("by default ('assemble') the 1 MiB message arrives whole as 'message', QoS 2, MQTT 5", async () => {
    const c = connect(m.url, { clientId: 'assemble', protocolVersion: 5, receiveBufferSize: 2048 });
    await once(c, 'connect');
    await c.subscribe('asm/#', { qos: 2 });
    const got = once<[string, Buffer, { qos: number }]>(c, 'message');
    await peer.publishAsync('asm/1', MIB, { qos: 2 });
    const [topic, payload, packet] = await got;
    expect(topic).toBe('asm/1');
    expect(packet.qos).toBe(2);
    expect(sha(payload)).toBe(sha(MIB));
    await c.end();
  });

  it("'assemble' refuses a message larger than maxMessageBytes before keeping any of it: EMSGSIZE, closed (0x95), nothing acknowledged", async () => {
    const c = connect(m.url, { clientId: 'too-big', protocolVersion: 5, receiveBufferSize: 2048, maxMessageBytes: 100_000, reconnectPeriod: 0 });
    await once(c, 'connect');
    await c.subscribe('tb/#', { qos: 1 });
    const messages: string[] = [];
    c.on('message', (t) => messages.push(t));
    const err = once<[Error & { code?: string }]>(c, 'error');
    const closed = once(c, 'close');
    await peer.publishAsync('tb/fits', MIB.subarray(0, 100_000), { qos: 1 });
    await peer.publishAsync('tb/big', MIB.subarray(0, 100_001), { qos: 1 });
    const [e] = await err;
    expect(e.message).toMatch(/refused a 100001-byte message on "tb\/big".*maxMessageBytes \(100000\)/);
    expect(e.code).toBe('EMSGSIZE');
    await closed;
    expect(messages).toEqual(['tb/fits']);
    expect(c.core.lastReasonCode).toBe(0x95);
    await c.end();
  });

  it("'pieces' with no 'messagePiece' listener: an error that says why, the connection closed (0x95), nothing acknowledged", async () => {
    const c = connect(m.url, { clientId: 'nobody-listens', protocolVersion: 5, receiveBufferSize: 2048, largeMessages: 'pieces', reconnectPeriod: 0 });
    await once(c, 'connect');
    await c.subscribe('nl/#', { qos: 1 });
    const err = once<[Error & { code?: string }]>(c, 'error');
    const closed = once(c, 'close');
    await peer.publishAsync('nl/1', MIB.subarray(0, 10_000), { qos: 1 });
    const [e] = await err;
    expect(e.message).toMatch(/refused a 10000-byte message on "nl\/1".*messagePiece/);
    expect(e.code).toBe('EMSGSIZE');
    await closed;
    expect(c.core.lastReasonCode).toBe(0x95);
    await c.end();
  });
});
