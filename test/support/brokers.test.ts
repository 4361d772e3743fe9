import { afterAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import mqtt from 'mqtt';
import { describeMosquitto, freePort, startAedes, startMosquitto, waitForPort, type MosquittoHandle } from './brokers.js';

async function retainedOn(url: string, topic: string): Promise<string | null> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000 });
  try {
    const got = new Promise<string | null>((resolve) => {
      const t = setTimeout(() => resolve(null), 500);
      c.once('message', (_t, p) => { clearTimeout(t); resolve(p.toString()); });
    });
    await c.subscribeAsync(topic, { qos: 1 });
    return await got;
  } finally {
    await c.endAsync();
  }
}

describe('startAedes', () => {
  it('serves MQTT on 127.0.0.1 and frees the port on close', async () => {
    const a = await startAedes({ ws: true });
    expect(a.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(a.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const c = await mqtt.connectAsync(a.url, { reconnectPeriod: 0 });
    const w = await mqtt.connectAsync(a.wsUrl!, { reconnectPeriod: 0 });
    expect(c.connected && w.connected).toBe(true);
    await a.close();
    await new Promise<void>((r) => c.once('close', () => r()));
    await expect(waitForPort(a.port, 100)).rejects.toThrow(/nothing accepted/);
    c.end(true);
    w.end(true);
  });

  it('freePort returns a port nobody listens on', async () => {
    const port = await freePort();
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    expect(ok).toBe(false);
  });
});

describeMosquitto('startMosquitto', () => {
  const started: MosquittoHandle[] = [];
  afterAll(async () => { for (const m of started) await m.dispose(); });

  it('keeps retained messages across stop() + restart() on the same port, loses them on kill()', async () => {
    const m = await startMosquitto();
    started.push(m);
    const port = m.port;
    await mqtt.connectAsync(m.url, { reconnectPeriod: 0 }).then(async (c) => {
      await c.publishAsync('keep/me', 'v1', { qos: 1, retain: true });
      await c.endAsync();
    });
    await m.stop();
    expect(m.running).toBe(false);
    await m.restart();
    expect(m.port).toBe(port);
    expect(await retainedOn(m.url, 'keep/me')).toBe('v1');

    // SIGKILL: nothing saved since the last save, so v2 is lost and v1 (saved at stop) remains.
    await mqtt.connectAsync(m.url, { reconnectPeriod: 0 }).then(async (c) => {
      await c.publishAsync('keep/me', 'v2', { qos: 1, retain: true });
      await c.endAsync();
    });
    await m.kill();
    await m.restart();
    expect(await retainedOn(m.url, 'keep/me')).toBe('v1');
  });

  it('runs without persistence when asked', async () => {
    const m = await startMosquitto({ persistence: false });
    started.push(m);
    await mqtt.connectAsync(m.url, { reconnectPeriod: 0 }).then(async (c) => {
      await c.publishAsync('gone', 'x', { qos: 1, retain: true });
      await c.endAsync();
    });
    await m.restart();
    expect(await retainedOn(m.url, 'gone')).toBeNull();
  });

  it('fails fast with the broker log when the config is bad', async () => {
    await expect(startMosquitto({ extraConfig: ['no_such_option 1'] })).rejects.toThrow(/exited|no_such_option|Unknown/i);
  });
});
