// The Node host and the CLI against Debian's RabbitMQ 3.10 with its MQTT
// plugin, started privately on 127.0.0.1 (sim/brokers.ts): it has no QoS 2
// (a QoS 2 PUBLISH is answered with PUBACK) and speaks no MQTT 5 (it closes
// the connection on an MQTT 5 CONNECT). Issue 12 items 9 and 10.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NodeClient } from '../../../hosts/node/client.js';
import { describeRabbitMQ, startRabbitMQ, type RabbitMQHandle } from '../../support/brokers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'dormouse.mjs');

const once = <T extends unknown[]>(em: { once(e: string, f: (...a: T) => void): unknown }, ev: string) =>
  new Promise<T>((resolve) => em.once(ev, (...a: T) => resolve(a)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeRabbitMQ('RabbitMQ 3.10 (MQTT plugin): no QoS 2, no MQTT 5', () => {
  let rabbit: RabbitMQHandle;
  let dir = '';
  beforeAll(async () => {
    rabbit = await startRabbitMQ();
    console.log(`[rabbitmq] MQTT listener up ${rabbit.startedInMs} ms after spawn`);
    dir = mkdtempSync(path.join(tmpdir(), 'dormouse-rabbit-test-'));
  }, 150_000);
  afterAll(async () => {
    await rabbit?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  /** A subscriber counting what reaches it (RabbitMQ grants QoS 1 for QoS 2). */
  async function subscriber(topic: string): Promise<{ client: NodeClient; got: string[] }> {
    const client = connect(rabbit.url, { clientId: `sub-${topic.replace(/\W/g, '')}` });
    const got: string[] = [];
    client.on('message', (_t: string, p: Buffer) => got.push(p.toString()));
    await once(client, 'connect');
    expect(await client.subscribe(topic, { qos: 2 })).toEqual([{ topic, qos: 1 }]);
    return { client, got };
  }

  it('item 9: QoS 2 answered with PUBACK completes at QoS 1 and is reported; with a session file, three runs deliver each message once', async () => {
    const topic = 'rabbit/q2';
    const sub = await subscriber(topic);
    const sessionFile = path.join(dir, 'pub');
    const n = 25; // more than the window (16): a hang would show at message 17
    for (let run = 0; run < 3; run++) {
      const pub = connect(rabbit.url, { clientId: 'rabbit-pub', sessionFile });
      const downgrades: Array<{ token: number; requested: number; granted: number }> = [];
      pub.on('publishDowngrade', (d) => downgrades.push(d));
      await once(pub, 'connect');
      if (run === 0) {
        const acks = [];
        for (let k = 0; k < n; k++) acks.push((await pub.publish(topic, `m${k}`, { qos: 2 })).acknowledged);
        await Promise.all(acks);
        expect(downgrades).toHaveLength(n);
        expect(downgrades[0]).toEqual({ token: 1, requested: 2, granted: 1 });
        expect(pub.metrics().strayAcks).toBe(0);
      } else {
        expect(downgrades).toEqual([]); // nothing was left to resend
      }
      expect(pub.core.session.live).toBe(0);
      await pub.end();
    }
    const deadline = Date.now() + 5000;
    while (sub.got.length < n && Date.now() < deadline) await sleep(20);
    await sleep(300); // a resent copy would arrive now
    expect(sub.got).toEqual(Array.from({ length: n }, (_, k) => `m${k}`));
    await sub.client.end();
  });

  it('item 9: dormouse pub -q 2 prints one warning line and exits 0', async () => {
    const topic = 'rabbit/cli';
    const sub = await subscriber(topic);
    const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, 'pub', '-h', '127.0.0.1', '-p', String(rabbit.port), '-t', topic, '-q', '2', '-l'], {
      cwd: ROOT,
      env: { ...process.env, DORMOUSE_FROM_SOURCE: '1' },
      input: 'a\nb\nc\n',
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('Warning: the broker acknowledged a QoS 2 message with PUBACK: it has no QoS 2 and took it at QoS 1 (at least once, not exactly once).\n');
    const deadline = Date.now() + 5000;
    while (sub.got.length < 3 && Date.now() < deadline) await sleep(20);
    expect(sub.got).toEqual(['a', 'b', 'c']);
    await sub.client.end();
  });

  it('item 10: an MQTT 5 CONNECT is closed without CONNACK: one error saying so, however often the client retries', async () => {
    const c = connect(rabbit.url, { protocolVersion: 5, clientId: 'v5-to-rabbit', reconnect: { baseMs: 20, capMs: 100 } });
    const errors: Array<Error & { code?: string }> = [];
    let reconnects = 0;
    c.on('error', (e) => errors.push(e));
    c.on('reconnect', () => reconnects++);
    const deadline = Date.now() + 20_000;
    while (reconnects < 4 && Date.now() < deadline) await sleep(20);
    expect(reconnects).toBeGreaterThanOrEqual(4);
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['ECLOSEDBEFORECONNACK', 'the broker closed the connection before CONNACK: it may not speak MQTT 5 (RabbitMQ 3.10 speaks only 3.1.1); try protocolVersion 4'],
    ]);
    expect(c.connected).toBe(false);
    await c.end();
  });
});
