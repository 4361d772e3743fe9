import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { FaultProxy, PacketType } from '../../sim/proxy.js';
import { startAedes, type AedesHandle } from '../support/brokers.js';

let aedes: AedesHandle;
const proxies: FaultProxy[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => { aedes = await startAedes(); });
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  for (const p of proxies.splice(0)) await p.close();
});
afterAll(async () => { await aedes?.close(); });

async function proxy(seed = 1): Promise<FaultProxy> {
  const p = await FaultProxy.start({ targetPort: aedes.port, seed });
  proxies.push(p);
  return p;
}

function client(url: string, opts: IClientOptions = {}): MqttClient {
  const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000, ...opts });
  c.on('error', () => { /* asserted through events below */ });
  clients.push(c);
  return c;
}

const once = <T = unknown>(c: MqttClient, ev: string): Promise<T> => new Promise((r) => c.once(ev as 'connect', r as () => void));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Raw CONNECT (3.1.1, clean, keepalive 60, client id "r") and helpers for byte-exact checks. */
const CONNECT = Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x72]);

describe('FaultProxy', () => {
  it('forwards MQTT.js traffic and counts packets and bytes per direction', async () => {
    const p = await proxy();
    const c = client(p.url, { clientId: 'counter' });
    await once(c, 'connect');
    await c.subscribeAsync('t/x', { qos: 1 });
    const got = once<string>(c, 'message');
    await c.publishAsync('t/x', 'hello', { qos: 1 });
    await got;
    await c.endAsync();
    await until(() => p.liveConnections === 0);

    const c2s = p.counters.packets.c2s;
    const s2c = p.counters.packets.s2c;
    expect(p.counters.accepted).toBe(1);
    expect(c2s[PacketType.CONNECT]).toBe(1);
    expect(c2s[PacketType.SUBSCRIBE]).toBe(1);
    expect(c2s[PacketType.PUBLISH]).toBe(1);
    expect(c2s[PacketType.PUBACK]).toBe(1); // for the echoed QoS 1 delivery
    expect(c2s[PacketType.DISCONNECT]).toBe(1);
    expect(s2c[PacketType.CONNACK]).toBe(1);
    expect(s2c[PacketType.SUBACK]).toBe(1);
    expect(s2c[PacketType.PUBLISH]).toBe(1);
    expect(s2c[PacketType.PUBACK]).toBe(1);
    expect(p.packets('c2s', 'PINGREQ')).toBe(0);
    // Sizes from the 3.1.1 encoding: CONNECT with id "counter" 21 B, SUBSCRIBE "t/x" q1 10 B,
    // PUBLISH q1 "t/x"+"hello" 14 B, PUBACK 4 B, DISCONNECT 2 B; CONNACK 4, SUBACK 5, PUBLISH 14, PUBACK 4.
    expect(p.counters.bytes.c2s).toBe(21 + 10 + 14 + 4 + 2);
    expect(p.counters.bytes.s2c).toBe(4 + 5 + 14 + 4);
  });

  it('reassembles packets split across TCP segments and several per segment', async () => {
    const p = await proxy();
    const s = net.connect(p.port, '127.0.0.1');
    await once(s as unknown as MqttClient, 'connect');
    const reply: number[] = [];
    s.on('data', (d) => reply.push(...d));
    // CONNECT one byte at a time, then two PINGREQs in one write.
    for (const b of CONNECT) { s.write(Buffer.from([b])); await sleep(1); }
    await until(() => reply.length >= 4);
    s.write(Buffer.from([0xc0, 0x00, 0xc0, 0x00]));
    await until(() => reply.length >= 8);
    expect(reply).toEqual([0x20, 0x02, 0x00, 0x00, 0xd0, 0x00, 0xd0, 0x00]);
    expect(p.packets('c2s', 'CONNECT')).toBe(1);
    expect(p.packets('c2s', 'PINGREQ')).toBe(2);
    expect(p.packets('s2c', 'PINGRESP')).toBe(2);
    s.destroy();
  });

  it('cut after the first client->server PUBLISH: the broker gets it, MQTT.js sees a close', async () => {
    const p = await proxy();
    const seen: string[] = [];
    const onPub = (packet: { topic: string }, cl: unknown) => { if (cl) seen.push(packet.topic); };
    aedes.broker.on('publish', onPub);
    try {
      p.cutAfter('c2s', 'PUBLISH', 1);
      const c = client(p.url);
      await once(c, 'connect');
      const closed = once(c, 'close');
      c.publish('cut/after', 'x', { qos: 1 });
      await closed;
      await until(() => seen.includes('cut/after'));
      expect(p.counters.cut).toBe(1);
      expect(p.log).toEqual([{ conn: 1, dir: 'c2s', type: 'PUBLISH', index: 2, action: 'cut-after' }]);
      expect(p.packets('s2c', 'PUBACK')).toBe(0);
    } finally {
      aedes.broker.removeListener('publish', onPub);
    }
  });

  it('cut before the PUBLISH: the broker never gets it; the rule fires once', async () => {
    const p = await proxy();
    const seen: string[] = [];
    const onPub = (packet: { topic: string }, cl: unknown) => { if (cl) seen.push(packet.topic); };
    aedes.broker.on('publish', onPub);
    try {
      p.cutAfter('c2s', 'PUBLISH', 1, { before: true });
      const c = client(p.url);
      await once(c, 'connect');
      const closed = once(c, 'close');
      c.publish('cut/before', 'x', { qos: 1 });
      await closed;
      await sleep(50);
      expect(seen).not.toContain('cut/before');
      expect(p.packets('c2s', 'PUBLISH')).toBe(0);
      // Once fired, the rule is gone: a second connection passes.
      const c2 = client(p.url);
      await once(c2, 'connect');
      await c2.publishAsync('cut/before', 'y', { qos: 1 });
      expect(seen).toContain('cut/before');
    } finally {
      aedes.broker.removeListener('publish', onPub);
    }
  });

  it('perConnection cuts fire on every connection: a CONNACK cut keeps MQTT.js from connecting', async () => {
    const p = await proxy();
    p.cutAfter('s2c', 'CONNACK', 1, { before: true, perConnection: true });
    for (let i = 0; i < 2; i++) {
      const c = client(p.url);
      let connected = false;
      c.once('connect', () => { connected = true; });
      await once(c, 'close');
      expect(connected).toBe(false);
    }
    expect(p.counters.cut).toBe(2);
    expect(p.packets('s2c', 'CONNACK')).toBe(0);
  });

  it('a stall is caught by MQTT.js keepalive, not by a close from the proxy', async () => {
    const p = await proxy();
    const c = client(p.url, { keepalive: 1 });
    await once(c, 'connect');
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    const started = Date.now();
    p.stall();
    await once(c, 'close');
    const took = Date.now() - started;
    expect(errors.join()).toMatch(/keepalive timeout/i);
    expect(took).toBeGreaterThan(900);
    expect(took).toBeLessThan(4000);
    expect(p.counters.stalled).toBe(1);
    expect(p.packets('s2c', 'PINGRESP')).toBe(0);
    expect(p.counters.discardedBytes).toBeGreaterThanOrEqual(2); // the PINGREQ
  });

  it('delay holds every packet the given time, in order', async () => {
    const p = await proxy();
    p.delay(150);
    const c = client(p.url);
    const t0 = Date.now();
    await once(c, 'connect');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290); // CONNECT + CONNACK
    const t1 = Date.now();
    await Promise.all([1, 2, 3].map((i) => c.publishAsync('d', String(i), { qos: 1 })));
    const rt = Date.now() - t1;
    expect(rt).toBeGreaterThanOrEqual(290);
    expect(rt).toBeLessThan(1500);
  });

  it('drop(1) closes every new connection at connect; drop(0.5) is reproducible from the seed', async () => {
    const p = await proxy();
    p.drop(1);
    const c = client(p.url);
    await once(c, 'close');
    expect(p.counters.refused).toBe(1);

    const pattern = async (seed: number) => {
      const q = await proxy(seed);
      q.drop(0.5);
      const out: boolean[] = [];
      for (let i = 0; i < 12; i++) {
        const s = net.connect(q.port, '127.0.0.1');
        s.on('error', () => {});
        s.write(CONNECT);
        out.push(await new Promise<boolean>((r) => {
          s.once('data', () => { s.destroy(); r(true); });
          s.once('close', () => r(false));
        }));
      }
      return out;
    };
    const a = await pattern(7);
    const b = await pattern(7);
    expect(a).toEqual(b);
    expect(a.filter(Boolean).length).toBeGreaterThan(0);
    expect(a.filter((x) => !x).length).toBeGreaterThan(0);
  });

  it('partition refuse: existing connections are reset, new ones refused, then it heals', async () => {
    const p = await proxy();
    const c = client(p.url);
    await once(c, 'connect');
    const closed = once(c, 'close');
    p.partition(400, 'refuse');
    await closed;
    const c2 = client(p.url);
    await once(c2, 'close');
    expect(p.counters.refused).toBe(1); // counted at accept only
    expect(p.log).toEqual([{ conn: 1, action: 'refuse' }, { conn: 2, action: 'refuse' }]);
    await sleep(450);
    const c3 = client(p.url);
    await once(c3, 'connect');
  });

  it('partition blackhole: held traffic flows after the window if nobody gave up', async () => {
    const p = await proxy();
    const c = client(p.url, { keepalive: 30 });
    await once(c, 'connect');
    p.partition(300, 'blackhole');
    const t0 = Date.now();
    await c.publishAsync('bh', 'x', { qos: 1 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    // A client that connects during the window is held, then connected.
    p.partition(300, 'blackhole');
    const t1 = Date.now();
    const c2 = client(p.url);
    await once(c2, 'connect');
    expect(Date.now() - t1).toBeGreaterThanOrEqual(250);
  });

  it('randomFaults cuts or stalls at handshake steps, the same way for the same seed', async () => {
    const run = async (seed: number) => {
      const p = await proxy();
      p.randomFaults({ seed, cutProbability: 0.3, stallProbability: 0.1 });
      // Raw, strictly sequential exchanges so the packet order is the same every run.
      for (let i = 0; i < 8; i++) {
        const s = net.connect(p.port, '127.0.0.1');
        s.on('error', () => {});
        await new Promise<void>((resolve) => {
          let step = 0;
          const timer = setTimeout(() => { s.destroy(); resolve(); }, 300); // a stall ends here
          s.on('data', () => {
            step++;
            if (step === 1) s.write(Buffer.from([0xc0, 0x00]));
            else if (step === 2) s.write(Buffer.from([0xe0, 0x00]));
          });
          s.once('close', () => { clearTimeout(timer); resolve(); });
          s.write(CONNECT);
        });
      }
      return p.log.map((e) => `${e.action}:${e.dir}:${e.type}:${e.index}`);
    };
    const a = await run(42);
    const b = await run(42);
    expect(a).toEqual(b);
    expect(a.some((x) => x.startsWith('cut'))).toBe(true);
    const c = await run(43);
    expect(c).not.toEqual(a);
  });
});
