// Session takeover and the conflating outbox through the Node host, against
// Debian's mosquitto on 127.0.0.1.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, type NodeClient } from '../../../hosts/node/client.js';
import { describeMosquitto, startMosquitto, type MosquittoHandle } from '../../support/brokers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function until(c: NodeClient, event: string, ms = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    c.once(event, (v: unknown) => { clearTimeout(t); resolve(v); });
  });
}

describeMosquitto('takeover and conflation against mosquitto', () => {
  let broker: MosquittoHandle;
  beforeAll(async () => { broker = await startMosquitto({ persistence: false }); });
  afterAll(async () => { await broker?.dispose(); });

  // mosquitto 2.0.11 closes the older connection without a DISCONNECT 0x8E,
  // in MQTT 5 as in 3.1.1 (seen in a byte trace): the repeated kicks right
  // after CONNACK are what tells the clients. The 0x8E path is checked byte for
  // byte in test/session/takeover.test.ts.
  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 5 ? '5' : '3.1.1'}: two clients with one id kick each other a few times, then one backs off hard and the other keeps the session`, async () => {
      const reconnect = { baseMs: 20, capMs: 60, takeoverBaseMs: 60_000, takeoverCapMs: 120_000 };
      const id = `twin-${version}`;
      const a = connect(broker.url, { clientId: id, protocolVersion: version, reconnect });
      const b = connect(broker.url, { clientId: id, protocolVersion: version, reconnect });
      const errors: Array<{ code?: string }> = [];
      for (const c of [a, b]) c.on('error', (e) => errors.push(e as { code?: string }));
      const taken = await Promise.race([until(a, 'takeover', 10_000).then((t) => ({ c: a, t })), until(b, 'takeover', 10_000).then((t) => ({ c: b, t }))]);
      const other = taken.c === a ? b : a;
      expect(taken.t).toMatchObject({ reasonCode: 0 });
      expect((taken.t as { retryInMs: number }).retryInMs).toBeGreaterThanOrEqual(30_000);
      expect(errors.map((e) => e.code)).toContain('SESSION_TAKEN_OVER');
      expect(taken.c.metrics().takeovers).toBe(1);
      const before = a.metrics().reconnects + b.metrics().reconnects;
      await sleep(800); // the ordinary backoff (20-60 ms) would have gone round many times
      expect(a.metrics().reconnects + b.metrics().reconnects).toBeLessThanOrEqual(before + 1);
      expect(other.connected).toBe(true);
      expect(taken.c.connected).toBe(false);
      await Promise.all([a.end(true), b.end(true)]);
    });
  }

  it("outboxPolicy 'conflate': readings queued before the connection is up arrive newest-per-topic only, the others reported as drops", async () => {
    const sub = connect(broker.url, { clientId: 'conflate-sub' });
    const got: string[] = [];
    sub.on('message', (t: string, p: Buffer) => got.push(`${t}=${p}`));
    await until(sub, 'connect');
    await sub.subscribe('conf/#', { qos: 1 });
    const c = connect(broker.url, { clientId: 'conflate-pub', outboxPolicy: 'conflate' });
    const drops: string[] = [];
    c.on('drop', (d: { token: number; text: string }) => drops.push(`${d.token}: ${d.text}`));
    // Accepted synchronously while the socket is still opening: all four wait in the outbox.
    const accepted = [['conf/t', '1'], ['conf/h', '50'], ['conf/t', '2'], ['conf/t', '3']].map(([t, v]) => c.publish(t!, v!, { qos: 1 }));
    const done = await Promise.all(accepted);
    expect(drops).toEqual([
      '1: message 1 dropped: superseded by a newer message on the same topic (conflate policy)',
      '3: message 3 dropped: superseded by a newer message on the same topic (conflate policy)',
    ]);
    await expect(done[0]!.acknowledged).rejects.toThrow(/superseded/);
    await Promise.all([done[1]!.acknowledged, done[3]!.acknowledged]);
    for (let k = 0; k < 50 && got.length < 2; k++) await sleep(20);
    expect(got).toEqual(['conf/h=50', 'conf/t=3']);
    expect(c.metrics().droppedSuperseded).toBe(2);
    await Promise.all([c.end(), sub.end()]);
  });
});
