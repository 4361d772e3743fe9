// The Node host at the protocol edges of issue 12, against real brokers on
// 127.0.0.1: mosquitto (Maximum Packet Size, an ACL that refuses a publish,
// subscription lists and UNSUBACK codes) and aedes in-process (a 3.1.1-only
// broker answering an MQTT 5 CONNECT). RabbitMQ has its own file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, DropError, type NodeClient } from '../../../hosts/node/client.js';
import { startAedes, startMosquitto, describeMosquitto, type AedesHandle, type MosquittoHandle } from '../../support/brokers.js';

const once = <T extends unknown[]>(em: { once(e: string, f: (...a: T) => void): unknown }, ev: string) =>
  new Promise<T>((resolve) => em.once(ev, (...a: T) => resolve(a)));

/** Every packet written, by name, read from the trace's chunks (fixed header: type nibble, varint length). */
function packetLog() {
  const names = ['', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];
  const sent: string[] = [];
  const trace = (dir: 'send' | 'receive', b: Uint8Array) => {
    if (dir !== 'send') return;
    for (let p = 0; p < b.length; ) {
      const type = b[p] >> 4;
      let len = 0;
      let mul = 1;
      let q = p + 1;
      for (;;) {
        const x = b[q++];
        len += (x & 0x7f) * mul;
        mul *= 128;
        if ((x & 0x80) === 0) break;
      }
      sent.push(names[type]);
      p = q + len;
    }
  };
  return { sent, trace };
}

describeMosquitto('Node host at the edges, on mosquitto', () => {
  let m: MosquittoHandle;
  let small: MosquittoHandle;
  let dir = '';
  beforeAll(async () => {
    // An ACL that refuses publishing to denied/#: mosquitto 2.0 answers an MQTT 5
    // QoS 1 PUBLISH there with PUBACK 0x87 and a QoS 2 one with PUBREC 0x87.
    dir = mkdtempSync(join(tmpdir(), 'dormouse-acl-'));
    writeFileSync(join(dir, 'acl'), 'topic readwrite edges/#\ntopic read denied/#\n');
    m = await startMosquitto({ persistence: false, extraConfig: [`acl_file ${join(dir, 'acl')}`], dir });
    small = await startMosquitto({ persistence: false, extraConfig: ['max_packet_size 40'] });
  });
  afterAll(async () => {
    await m?.dispose();
    await small?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('item 1: a SUBSCRIBE or UNSUBSCRIBE above the broker Maximum Packet Size (40) is refused and not sent; the connection stays', async () => {
    const log = packetLog();
    const c = connect(small.url, { protocolVersion: 5, clientId: 'edges-mps', trace: log.trace });
    await once(c, 'connect');
    const long = 'edges/' + 'x'.repeat(40);
    await expect(c.subscribe(long, { qos: 1 })).rejects.toThrow(/SUBSCRIBE would be 54 bytes and the server accepts at most 40 \(Maximum Packet Size/);
    await expect(c.unsubscribe(long)).rejects.toThrow(/UNSUBSCRIBE would be 53 bytes and the server accepts at most 40/);
    expect(await c.subscribe('edges/ok', { qos: 1 })).toEqual([{ topic: 'edges/ok', qos: 1 }]);
    expect(log.sent).toEqual(['CONNECT', 'SUBSCRIBE']);
    expect(c.connected).toBe(true);
    await c.end();
  });

  it('items 3 and 4: one SUBSCRIBE for a list, one UNSUBSCRIBE for a list; UNSUBACK codes per filter, 0x11 for one never subscribed', async () => {
    const log = packetLog();
    const c = connect(m.url, { protocolVersion: 5, clientId: 'edges-lists', trace: log.trace });
    await once(c, 'connect');
    expect(await c.subscribe(['edges/a', 'edges/b', 'edges/c'], { qos: 1 })).toEqual([
      { topic: 'edges/a', qos: 1 },
      { topic: 'edges/b', qos: 1 },
      { topic: 'edges/c', qos: 1 },
    ]);
    expect(await c.subscribe({ 'edges/d': { qos: 2 }, 'edges/e': { qos: 0, nl: true } })).toEqual([
      { topic: 'edges/d', qos: 2 },
      { topic: 'edges/e', qos: 0 },
    ]);
    expect(await c.unsubscribe(['edges/a', 'edges/b', 'edges/never'])).toEqual([
      { topic: 'edges/a', reasonCode: 0 },
      { topic: 'edges/b', reasonCode: 0 },
      { topic: 'edges/never', reasonCode: 0x11 },
    ]);
    expect(log.sent).toEqual(['CONNECT', 'SUBSCRIBE', 'SUBSCRIBE', 'UNSUBSCRIBE']);
    await c.end();
  });

  it('item 3: a subscription the broker kept from an earlier session is removed by a client that never subscribed it', async () => {
    const id = 'edges-earlier';
    const opts = { protocolVersion: 5 as const, clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } };
    const before = connect(m.url, opts);
    await once(before, 'connect');
    await before.subscribe('edges/kept', { qos: 1 });
    await before.end();
    // A new process (no session file): it knows nothing of edges/kept.
    const after = connect(m.url, opts);
    const [connack] = await once<[{ sessionPresent: boolean }]>(after, 'connect');
    expect(connack.sessionPresent).toBe(true);
    expect(await after.unsubscribe('edges/kept')).toEqual([{ topic: 'edges/kept', reasonCode: 0 }]);
    expect(await after.unsubscribe('edges/kept')).toEqual([{ topic: 'edges/kept', reasonCode: 0x11 }]);
    await after.end();
  });

  it('3.1.1: the lists go in one packet each as well', async () => {
    const log = packetLog();
    const c = connect(m.url, { clientId: 'edges-lists-311', trace: log.trace });
    await once(c, 'connect');
    expect(await c.subscribe(['edges/a', 'edges/b'], { qos: 2 })).toEqual([{ topic: 'edges/a', qos: 2 }, { topic: 'edges/b', qos: 2 }]);
    expect(await c.unsubscribe(['edges/a', 'edges/b'])).toEqual([{ topic: 'edges/a', reasonCode: 0 }, { topic: 'edges/b', reasonCode: 0 }]);
    expect(log.sent).toEqual(['CONNECT', 'SUBSCRIBE', 'UNSUBSCRIBE']);
    await c.end();
  });

  for (const qos of [1, 2] as const) {
    it(`item 2: a QoS ${qos} publish the ACL refuses (${qos === 1 ? 'PUBACK' : 'PUBREC'} 0x87) frees its slot at once and says which and why`, async () => {
      const log = packetLog();
      const c = connect(m.url, { protocolVersion: 5, clientId: `edges-refused-${qos}`, capacities: { inflight: 1 }, trace: log.trace });
      await once(c, 'connect');
      const drops: Array<{ token: number; reasonCode?: number }> = [];
      c.on('drop', (d) => drops.push(d));
      const refused = await c.publish('denied/x', 'no', { qos });
      const next = await c.publish('edges/next', 'yes', { qos }); // waits behind it: the window is 1
      const err = await refused.acknowledged.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(DropError);
      expect((err as DropError).reasonCode).toBe(0x87);
      expect((err as DropError).token).toBe(refused.token);
      expect(String((err as Error).message)).toMatch(/refused by the server \(reason code 0x87\)/);
      // No other publish() and no reconnect: the refusal itself sends the next one.
      await next.acknowledged;
      expect(drops).toEqual([{ token: refused.token, reason: 4, reasonCode: 0x87, text: (err as Error).message }]);
      expect(log.sent.filter((n) => n === 'CONNECT')).toHaveLength(1);
      await c.end();
    });
  }

  for (const version of [4, 5] as const) {
    it(`item 8: a QoS 2 backlog of 900 (under mosquitto's max_queued_messages) sent ahead of its PUBRELs (MQTT ${version === 5 ? '5.0' : '3.1.1'}, default capacities): each message once, no reconnect, none held back`, async () => {
      const id = `edges-backlog-${version}`;
      const topic = `edges/backlog/${version}`;
      const opts = { protocolVersion: version, clientId: id, clean: false, properties: version === 5 ? { sessionExpiryInterval: 600 } : undefined };
      let sub = connect(m.url, opts);
      await once(sub, 'connect');
      await sub.subscribe(topic, { qos: 2 });
      await sub.end();
      const pub = connect(m.url, { protocolVersion: version, clientId: `${id}-pub`, capacities: { outbox: 64 } });
      await once(pub, 'connect');
      for (let k = 0; k < 900; k += 16) {
        const batch: Promise<unknown>[] = [];
        for (let j = k; j < k + 16 && j < 900; j++) batch.push(pub.publishAsync(topic, `#${j}`, { qos: 2 }));
        await Promise.all(batch);
      }
      await pub.end();
      const seen = new Map<number, number>();
      sub = connect(m.url, opts);
      let peak = 0;
      sub.on('message', (_t, p: Buffer) => {
        const n = Number(p.toString().slice(1));
        seen.set(n, (seen.get(n) ?? 0) + 1);
        peak = Math.max(peak, sub.core.session.incomingHeld);
      });
      for (let t = 0; t < 300 && seen.size < 900; t++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 200));
      expect(seen.size).toBe(900);
      expect([...seen.values()].every((c) => c === 1)).toBe(true);
      const metrics = sub.metrics();
      expect(metrics.reconnects).toBe(0);
      expect(metrics.heldBack).toBe(0);
      // More than the table of 16 was held at once: the runs took the rest.
      expect(peak).toBeGreaterThan(16);
      await sub.end();
    }, 30_000);
  }

});

describe('an MQTT 5 CONNECT to aedes (3.1.1 only)', () => {
  let aedes: AedesHandle;
  beforeAll(async () => {
    aedes = await startAedes();
  });
  afterAll(async () => {
    await aedes.close();
  });

  it('item 10: its CONNACK 20 02 00 01 is reported as an unsupported protocol version, try 3.1.1, not a protocol error', async () => {
    const received: string[] = [];
    const c: NodeClient = connect(aedes.url, {
      protocolVersion: 5,
      clientId: 'v5-to-aedes',
      trace: (dir, b) => { if (dir === 'receive') received.push(Buffer.from(b).toString('hex')); },
    });
    const [err] = await once<[Error & { code: number }]>(c, 'error');
    expect(received).toEqual(['20020001']);
    expect(err.message).toBe('connection refused: the broker answered the MQTT 5 CONNECT with an MQTT 3.1.1 CONNACK (return code 1): it does not support MQTT 5, try 3.1.1 (protocolVersion 4)');
    expect(err.code).toBe(0x84);
    expect(c.metrics().protocolErrors).toBe(0);
    await c.end();
  });

  it('a subscribe overtaken by an unsubscribe of the same filter (and back) settles instead of waiting forever', async () => {
    const c = connect(aedes.url, { clientId: 'overtaken' });
    await once(c, 'connect');
    const sub = c.subscribe('o/1', { qos: 1 });
    const unsub = c.unsubscribe('o/1');
    await expect(sub).rejects.toThrow('unsubscribed from "o/1" before the SUBACK arrived');
    expect(await unsub).toEqual([{ topic: 'o/1', reasonCode: 0 }]);
    const unsub2 = c.unsubscribe('o/2');
    const sub2 = c.subscribe('o/2', { qos: 1 });
    await expect(unsub2).rejects.toThrow('subscribed to "o/2" again before the UNSUBACK arrived');
    expect(await sub2).toEqual([{ topic: 'o/2', qos: 1 }]);
    await c.end();
  });
});
