// The Node client's receive path (issue 14): the 'message' event keeps MQTT.js's
// shape (topic, payload, packet) for every way a listener can be attached,
// while a listener declared (topic, payload) costs no packet object and no
// argument array; topics come from a process-wide cache keyed by their bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { connect, type NodeClient } from '../../../hosts/node/client.js';
import { topicOf } from '../../../hosts/node/topic-cache.js';
import { PacketDecoder, DECODE_PACKET, type DecodedPublish } from '../../../modules/mqtt/decode.js';
import { encodePublish } from '../../../modules/mqtt/encode.js';
import { startAedes, type AedesHandle } from '../../support/brokers.js';

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

  it('returns each topic as decoded, over more topics than slots and with colliding slots, and the same string object when cached', () => {
    const topics: string[] = [];
    for (let i = 0; i < 300; i++) topics.push(i % 3 === 0 ? `a/${i}` : i % 3 === 1 ? `ünï/çødé/${i}` : `x`.repeat(1 + (i % 250)));
    const backwards = [...topics].reverse();
    expect(decodeAll([...topics, ...backwards])).toEqual([...topics, ...backwards]);
    const [s1, s2] = decodeAll(['same/topic', 'same/topic']);
    expect(s1).toBe('same/topic');
    expect(Object.is(s1, s2)).toBe(true);
  });
});
