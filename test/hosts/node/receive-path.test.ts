// The Node client's receive path (issue 14): the 'message' event keeps MQTT.js's
// shape (topic, payload, packet) for every way a listener can be attached,
// while a listener declared (topic, payload) costs no packet object and no
// argument array; topics come from a process-wide cache keyed by their bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { connect, MessageView, type NodeClient } from '../../../hosts/node/client.js';
import { topicOf } from '../../../hosts/node/topic-cache.js';
import { PacketDecoder, DECODE_PACKET, type DecodedPublish } from '../../../modules/mqtt/decode.js';
import { encodePublish } from '../../../modules/mqtt/encode.js';
import { describeMosquitto, startAedes, startMosquitto, type AedesHandle, type MosquittoHandle } from '../../support/brokers.js';

let broker: AedesHandle;
beforeAll(async () => { broker = await startAedes(); });
afterAll(async () => { await broker.close(); });

async function subscribed(topic: string): Promise<NodeClient> {
  const c = connect(broker.url, { clientId: `rp-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 0 });
  await c.subscribe(topic, { qos: 1 });
  return c;
}

async function publishAll(messages: Array<[string, string]>, qos: 0 | 1 = 1): Promise<void> {
  const p = await mqtt.connectAsync(broker.url, { clientId: `rp-pub-${Math.random().toString(16).slice(2, 8)}` });
  for (const [t, m] of messages) await p.publishAsync(t, m, { qos });
  await p.endAsync();
}

describe("the 'message' event", () => {
  it('gives (topic, payload, packet) to a listener that declares the packet, and to one with rest parameters', async () => {
    const c = await subscribed('rp/a/#');
    const three: unknown[][] = [];
    const rest: unknown[][] = [];
    c.on('message', (t: string, p: Buffer, packet: { topic: string; payload: Buffer; qos: number; retain: boolean; dup: boolean }) => three.push([t, p.toString(), packet.topic, packet.payload.toString(), packet.qos, packet.retain, packet.dup]));
    await publishAll([['rp/a/1', 'x'], ['rp/a/2', 'y']]);
    await expect.poll(() => three.length).toBe(2);
    expect(three).toEqual([['rp/a/1', 'x', 'rp/a/1', 'x', 1, false, false], ['rp/a/2', 'y', 'rp/a/2', 'y', 1, false, false]]);
    c.removeAllListeners('message');
    c.on('message', (...args: unknown[]) => rest.push(args));
    await publishAll([['rp/a/3', 'z']]);
    await expect.poll(() => rest.length).toBe(1);
    expect(rest[0]!.length).toBe(3);
    expect((rest[0]![2] as { topic: string; qos: number }).topic).toBe('rp/a/3');
    await c.end();
  });

  it('gives a (topic, payload) listener the same topic and payload, with `this` the client', async () => {
    const c = await subscribed('rp/b/#');
    const got: string[] = [];
    let self: unknown = null;
    c.on('message', function (this: unknown, t: string, p: Buffer) {
      self = this;
      got.push(`${t}=${p}`);
    });
    await publishAll([['rp/b/1', 'one'], ['rp/b/2', 'two']]);
    await expect.poll(() => got.length).toBe(2);
    expect(got).toEqual(['rp/b/1=one', 'rp/b/2=two']);
    expect(self).toBe(c);
    await c.end();
  });

  it('once, several listeners, and listeners added and removed between messages all see every message', async () => {
    const c = await subscribed('rp/c/#');
    const a: string[] = [];
    const b: string[] = [];
    const first: string[] = [];
    c.once('message', (t: string) => first.push(t));
    c.on('message', (t: string, p: Buffer) => a.push(`${t}=${p}`));
    c.on('message', (t: string, _p: Buffer, packet: { qos: number }) => b.push(`${t}@${packet.qos}`));
    await publishAll([['rp/c/1', 'p'], ['rp/c/2', 'q']]);
    await expect.poll(() => b.length).toBe(2);
    expect(first).toEqual(['rp/c/1']);
    expect(a).toEqual(['rp/c/1=p', 'rp/c/2=q']);
    expect(b).toEqual(['rp/c/1@1', 'rp/c/2@1']);
    c.removeAllListeners('message');
    const only: string[] = [];
    c.once('message', (t: string, p: Buffer, packet: { topic: string }) => only.push(`${t}=${p}:${packet.topic}`));
    await publishAll([['rp/c/3', 'r'], ['rp/c/4', 's']]);
    await expect.poll(() => c.listenerCount('message')).toBe(0);
    expect(only).toEqual(['rp/c/3=r:rp/c/3']);
    await c.end();
  });

  it('delivers payloads that outlive the callback (each its own copy) on many interleaved topics, non-ASCII ones too', async () => {
    const c = await subscribed('rp/d/#');
    const kept: Array<[string, Buffer]> = [];
    c.on('message', (t: string, p: Buffer) => kept.push([t, p]));
    const topics = Array.from({ length: 100 }, (_, i) => `rp/d/${i % 2 ? 'séance' : 'sensor'}-${i}`);
    const sent: Array<[string, string]> = [];
    for (let round = 0; round < 3; round++) for (const t of topics) sent.push([t, `${t}#${round}`]);
    await publishAll(sent, 0);
    await expect.poll(() => kept.length, { timeout: 10_000 }).toBe(sent.length);
    expect(kept.map(([t, p]) => [t, p.toString()])).toEqual(sent);
    await c.end();
  });
});

describe("the 'messageView' event (no copy)", () => {
  it('fills one view per client with ranges of the receive buffer, and empties it after the call', async () => {
    const c = await subscribed('rp/v/#');
    const seen: Array<[string, number, boolean, string, string, number, boolean]> = [];
    const views = new Set<MessageView>();
    const kept: Buffer[] = [];
    let last: MessageView | null = null;
    c.on('messageView', function (this: unknown, v: MessageView) {
      expect(this).toBe(c);
      views.add(v);
      last = v;
      const view = v.payload;
      // A view over the client's own buffer, not a copy of it.
      expect(view.buffer).toBe(v.bytes.buffer);
      expect(view.byteOffset).toBe(v.bytes.byteOffset + v.payloadStart);
      seen.push([v.topic, v.qos, v.dup, view.toString(), v.text(), v.payloadLength, v.properties === undefined]);
      kept.push(v.copyPayload());
    });
    await publishAll([['rp/v/1', 'one'], ['rp/v/ünï', 'dé€'], ['rp/v/3', '']]);
    await expect.poll(() => seen.length).toBe(3);
    expect(seen).toEqual([
      ['rp/v/1', 1, false, 'one', 'one', 3, true],
      ['rp/v/ünï', 1, false, 'dé€', 'dé€', Buffer.byteLength('dé€'), true],
      ['rp/v/3', 1, false, '', '', 0, true],
    ]);
    expect(views.size).toBe(1);
    // Kept past its call by mistake, the view reads as empty, not as another message's bytes.
    expect([last!.topic, last!.payloadLength, last!.text(), last!.bytes.length]).toEqual(['', 0, '', 0]);
    // copyPayload() is the application's own.
    expect(kept.map((b) => b.toString())).toEqual(['one', 'dé€', '']);
    expect(kept[0]!.buffer).not.toBe(views.values().next().value!.bytes.buffer);
    await c.end();
  });

  it("and 'message' together: each listener sees every message, a once() listener the first; view listeners run first", async () => {
    const c = await subscribed('rp/w/#');
    const order: string[] = [];
    c.on('message', (t: string, p: Buffer) => order.push(`message ${t}=${p}`));
    c.on('messageView', (v: MessageView) => order.push(`view ${v.topic}=${v.text()}`));
    c.on('messageView', (v: MessageView) => order.push(`view2 ${v.topic}`));
    c.once('messageView', (v: MessageView) => order.push(`once ${v.topic}`));
    await publishAll([['rp/w/a', 'x'], ['rp/w/b', 'y']]);
    await expect.poll(() => order.length).toBe(7);
    expect(order).toEqual(['view rp/w/a=x', 'view2 rp/w/a', 'once rp/w/a', 'message rp/w/a=x', 'view rp/w/b=y', 'view2 rp/w/b', 'message rp/w/b=y']);
    expect(c.listenerCount('messageView')).toBe(2);
    await c.end();
  });

  it('a large message (assembled, larger than receiveBufferSize) is viewed whole', async () => {
    const c = connect(broker.url, { clientId: `rp-big-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 0, receiveBufferSize: 256 });
    await c.subscribe('rp/big', { qos: 1 });
    const big = Buffer.alloc(5000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const got: Buffer[] = [];
    c.on('messageView', (v: MessageView) => got.push(v.copyPayload()));
    const p = await mqtt.connectAsync(broker.url, { clientId: `rp-pub-${Math.random().toString(16).slice(2, 8)}` });
    await p.publishAsync('rp/big', big, { qos: 1 });
    await p.endAsync();
    await expect.poll(() => got.length).toBe(1);
    expect(got[0]!.equals(big)).toBe(true);
    await c.end();
  });
});

describeMosquitto("the 'messageView' event, on mosquitto", () => {
  let m: MosquittoHandle;
  beforeAll(async () => { m = await startMosquitto({ persistence: false }); });
  afterAll(async () => { await m.dispose(); });

  it('carries the QoS 2 message, its properties and retain flag', async () => {
    const pub = connect(m.url, { clientId: 'mv-pub', protocolVersion: 5, reconnectPeriod: 0 });
    await (await pub.publish('mv/r', 'kept', { qos: 1, retain: true })).acknowledged;
    const c = connect(m.url, { clientId: 'mv-sub', protocolVersion: 5, reconnectPeriod: 0 });
    const seen: unknown[] = [];
    c.on('messageView', (v: MessageView) => seen.push({ topic: v.topic, qos: v.qos, retain: v.retain, text: v.text(), contentType: v.properties?.contentType ?? null, user: v.properties?.userProperties ?? null }));
    await c.subscribe('mv/#', { qos: 2 });
    await expect.poll(() => seen.length).toBe(1);
    await (await pub.publish('mv/p', '{"t":21.5}', { qos: 2, properties: { contentType: 'application/json', userProperties: [['unit', 'C']] } })).acknowledged;
    await expect.poll(() => seen.length).toBe(2);
    expect(seen).toEqual([
      { topic: 'mv/r', qos: 1, retain: true, text: 'kept', contentType: null, user: null },
      { topic: 'mv/p', qos: 2, retain: false, text: '{"t":21.5}', contentType: 'application/json', user: [['unit', 'C']] },
    ]);
    await pub.end();
    await c.end();
  });

  it('copies no payload when only view listeners are attached (Buffer.allocUnsafe calls while a 200-message backlog drains)', async () => {
    const run = async (id: string, attach: (c: NodeClient, seen: () => void) => void): Promise<number> => {
      const first = connect(m.url, { clientId: id, clean: false, reconnectPeriod: 0 });
      await first.subscribe(`${id}/#`, { qos: 1 });
      await first.end();
      const pub = connect(m.url, { clientId: `${id}-pub`, reconnectPeriod: 0, capacities: { outbox: 256, storeBytes: 16384 } });
      for (let i = 0; i < 199; i++) void pub.publish(`${id}/${i % 4}`, `payload-${i}`, { qos: 1 });
      await (await pub.publish(`${id}/last`, 'last', { qos: 1 })).acknowledged;
      await pub.end();
      // Only the subscriber works in this process while it drains (mosquitto is another).
      const real = Buffer.allocUnsafe;
      let calls = 0;
      let got = 0;
      Buffer.allocUnsafe = ((n: number) => { calls++; return real(n); }) as typeof Buffer.allocUnsafe;
      try {
        const c = connect(m.url, { clientId: id, clean: false, reconnectPeriod: 0 });
        attach(c, () => { got++; });
        await expect.poll(() => got, { timeout: 10_000 }).toBe(200);
        Buffer.allocUnsafe = real;
        await c.end();
      } finally {
        Buffer.allocUnsafe = real;
      }
      return calls;
    };
    const viewOnly = await run('mv-view', (c, seen) => c.on('messageView', () => seen()));
    const withMessage = await run('mv-message', (c, seen) => c.on('message', () => seen()));
    // A copy per message is 200 calls; what is left are the writes (CONNECT, SUBSCRIBE, PUBACKs), a few per drain.
    expect(withMessage).toBeGreaterThanOrEqual(200);
    expect(viewOnly).toBeLessThan(20);
  });
});

describe('topicOf', () => {
  function decodeAll(topics: string[]): string[] {
    const out: string[] = [];
    const d = new PacketDecoder({ version: 4 });
    const buf = new Uint8Array(1024);
    for (const t of topics) {
      const n = encodePublish(buf, 0, 4, t, new Uint8Array(1), 0, false, false, 0, null);
      d.feed(buf.subarray(0, n));
      expect(d.next()).toBe(DECODE_PACKET);
      out.push(topicOf(d.packet as DecodedPublish));
    }
    return out;
  }

  it('returns each topic as decoded, over more topics than entries, non-ASCII, and longer than it keeps', () => {
    const topics: string[] = [];
    for (let i = 0; i < 300; i++) topics.push(i % 3 === 0 ? `a/${i}` : i % 3 === 1 ? `ünï/çødé/${i}` : `x`.repeat(1 + (i % 250)));
    const backwards = [...topics].reverse();
    expect(decodeAll([...topics, ...backwards])).toEqual([...topics, ...backwards]);
  });

  /** topicOf over a packet whose topic getter (the decode it saves) is counted. */
  function counting(topics: string[]) {
    const enc = new TextEncoder();
    const packets = topics.map((t) => {
      const bytes = new Uint8Array([0x30, 0, 0, 0, ...enc.encode(t), 1, 2, 3]);
      return { bytes, topicStart: 4, topicEnd: 4 + enc.encode(t).length, get topic() { decodes++; return t; } };
    });
    let decodes = 0;
    return { run: (rounds: number) => { const out: string[] = []; for (let r = 0; r < rounds; r++) for (const p of packets) out.push(topicOf(p as unknown as DecodedPublish)); return out; }, decodes: () => decodes };
  }

  it('decodes each of 16 topics in turn once, also names that shared a slot of the old direct-mapped table', () => {
    // These 16 names hash to 14 sets: two pairs share one. With one way per set they evicted each other every round.
    for (const key of ['ours-q0-t16-aview', 'ours-q0-t16-a2', 'x']) {
      const names = Array.from({ length: 16 }, (_, i) => `alloc/${key}/sensor-${i}`);
      const c = counting(names);
      const out = c.run(10);
      expect(out).toEqual(Array.from({ length: 10 }, () => names).flat());
      expect(c.decodes()).toBe(16);
    }
  });

  it('a topic longer than it keeps (128 bytes) is decoded every time, and still right', () => {
    const long = `l/${'y'.repeat(200)}`;
    const c = counting([long, 'short/one']);
    expect(c.run(3)).toEqual([long, 'short/one', long, 'short/one', long, 'short/one']);
    expect(c.decodes()).toBe(3 + 1);
  });
});
