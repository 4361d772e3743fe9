// The Node host against real brokers: aedes in-process (MQTT 3.1.1) and
// Debian's mosquitto over loopback (3.1.1 and 5.0), with MQTT.js as the peer
// in both directions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NodeClient } from '../../../hosts/node/client.js';
import { FaultProxy } from '../../../sim/proxy.js';
import { startAedes, startMosquitto, describeMosquitto, type AedesHandle, type MosquittoHandle } from '../../support/brokers.js';

const once = <T extends unknown[]>(em: { once(e: string, f: (...a: T) => void): unknown }, ev: string) =>
  new Promise<T>((resolve) => em.once(ev, (...a: T) => resolve(a)));

function collect(c: NodeClient | mqtt.MqttClient, n: number, timeoutMs = 5000): Promise<Array<{ topic: string; payload: string; qos: number }>> {
  return new Promise((resolve, reject) => {
    const got: Array<{ topic: string; payload: string; qos: number }> = [];
    const t = setTimeout(() => reject(new Error(`got ${got.length} of ${n} messages`)), timeoutMs);
    (c as NodeClient).on('message', (topic: string, payload: Buffer, packet: { qos: number }) => {
      got.push({ topic, payload: payload.toString(), qos: packet.qos });
      if (got.length === n) {
        clearTimeout(t);
        resolve(got);
      }
    });
  });
}

async function interop(url: string, protocolVersion: 4 | 5) {
  for (const qos of [0, 1, 2] as const) {
    // Dormouse publishes, MQTT.js receives.
    const peer = await mqtt.connectAsync(url, { protocolVersion, clientId: `peer-${qos}-${protocolVersion}` });
    await peer.subscribeAsync(`interop/${qos}/to-peer`, { qos });
    const ours = connect(url, { protocolVersion, clientId: `ours-${qos}-${protocolVersion}` });
    await once(ours, 'connect');
    const toPeer = collect(peer, 3);
    for (let k = 0; k < 3; k++) await (await ours.publish(`interop/${qos}/to-peer`, `m${k}`, { qos })).acknowledged;
    expect(await toPeer).toEqual([0, 1, 2].map((k) => ({ topic: `interop/${qos}/to-peer`, payload: `m${k}`, qos })));
    // MQTT.js publishes, Dormouse receives.
    const granted = await ours.subscribe(`interop/${qos}/to-ours`, { qos });
    expect(granted).toEqual([{ topic: `interop/${qos}/to-ours`, qos }]);
    const toOurs = collect(ours, 3);
    for (let k = 0; k < 3; k++) await peer.publishAsync(`interop/${qos}/to-ours`, `n${k}`, { qos });
    expect(await toOurs).toEqual([0, 1, 2].map((k) => ({ topic: `interop/${qos}/to-ours`, payload: `n${k}`, qos })));
    expect(ours.metrics().strayAcks).toBe(0);
    await ours.end();
    await peer.endAsync();
  }
}

describe('Node host on aedes (in-process, MQTT 3.1.1)', () => {
  let aedes: AedesHandle;
  beforeAll(async () => {
    aedes = await startAedes();
  });
  afterAll(async () => {
    await aedes.close();
  });

  it('interoperates with MQTT.js both ways at QoS 0, 1 and 2', async () => {
    await interop(aedes.url, 4);
  });

  it('publish resolves on acceptance; acknowledged resolves on PUBACK', async () => {
    const c = connect(aedes.url, { clientId: 'acc-1' });
    const { token, acknowledged } = await c.publish('a/b', 'x', { qos: 1 });
    expect(token).toBeGreaterThan(0);
    await acknowledged;
    expect(c.metrics().acknowledged).toBe(1);
    await c.end();
  });

  it('a persistent session kept in a file survives the process object: queued while offline, delivered after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dormouse-'));
    try {
      const sessionFile = join(dir, 'sub');
      const sub = connect(aedes.url, { clientId: 'sleepy-sub', sessionFile });
      await once(sub, 'connect');
      await sub.subscribe('cmd/sleepy', { qos: 1 });
      await sub.end();
      const pub = await mqtt.connectAsync(aedes.url, { clientId: 'cmd-sender' });
      await pub.publishAsync('cmd/sleepy', 'wake up', { qos: 1 });
      await pub.endAsync();
      const woke = connect(aedes.url, { clientId: 'sleepy-sub', sessionFile });
      const got = collect(woke, 1);
      const [connack] = await once<[{ sessionPresent: boolean }]>(woke, 'connect');
      expect(connack.sessionPresent).toBe(true);
      expect(await got).toEqual([{ topic: 'cmd/sleepy', payload: 'wake up', qos: 1 }]);
      await woke.end();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('end() settles a subscribe or unsubscribe still waiting for its answer (offline, no reconnect)', async () => {
    const proxy = await FaultProxy.start({ targetPort: aedes.port });
    const c = connect(proxy.url, { clientId: 'offline-sub', reconnectPeriod: 0 });
    c.on('error', () => {});
    await once(c, 'connect');
    await c.subscribe('c/d', { qos: 1 });
    proxy.partition(60_000); // the connection is reset, and with reconnectPeriod 0 it stays down
    await once(c, 'close');
    await proxy.close();
    const sub = c.subscribe('a/b', { qos: 1 });
    const unsub = c.unsubscribe('c/d');
    const outcomes = Promise.allSettled([sub, unsub]);
    await c.end();
    const [s, u] = await outcomes;
    expect(s.status).toBe('rejected');
    expect(String((s as PromiseRejectedResult).reason.message)).toBe('the client ended before the SUBACK for "a/b"');
    expect(u.status).toBe('rejected');
    expect(String((u as PromiseRejectedResult).reason.message)).toBe('the client ended before the UNSUBACK for "c/d"');
  });

  it('an unreachable broker is reported and retried, not thrown', async () => {
    const c = connect('mqtt://127.0.0.1:1', { clientId: 'nobody', reconnectPeriod: 50 });
    const [err] = await once<[Error]>(c, 'error');
    expect(String(err.message)).toMatch(/ECONNREFUSED/);
    await once(c, 'reconnect');
    await c.end();
  });
});

describeMosquitto('Node host on mosquitto (MQTT 3.1.1 and 5.0)', () => {
  let m: MosquittoHandle;
  beforeAll(async () => {
    m = await startMosquitto();
  });
  afterAll(async () => {
    await m?.dispose();
  });

  it('interoperates with MQTT.js both ways at QoS 0, 1 and 2 over MQTT 3.1.1', async () => {
    await interop(m.url, 4);
  });

  it('interoperates with MQTT.js both ways at QoS 0, 1 and 2 over MQTT 5.0', async () => {
    await interop(m.url, 5);
  });

  it('MQTT 5 persistent session: messages queued while asleep arrive on wake, no SUBSCRIBE needed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dormouse-'));
    try {
      const sessionFile = join(dir, 's');
      const opts = { clientId: 'v5-sleepy', protocolVersion: 5 as const, sessionFile, properties: { sessionExpiryInterval: 300 } };
      const a = connect(m.url, opts);
      await once(a, 'connect');
      await a.subscribe('v5/cmd', { qos: 2 });
      await a.end();
      const peer = await mqtt.connectAsync(m.url, { protocolVersion: 5 });
      await peer.publishAsync('v5/cmd', 'exactly once', { qos: 2 });
      await peer.endAsync();
      const b = connect(m.url, opts);
      const got = collect(b, 1);
      const [connack] = await once<[{ sessionPresent: boolean }]>(b, 'connect');
      expect(connack.sessionPresent).toBe(true);
      expect(await got).toEqual([{ topic: 'v5/cmd', payload: 'exactly once', qos: 2 }]);
      await b.end();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
