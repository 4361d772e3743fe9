// The steady-state publish path allocates nothing: once warm, QoS 1 and QoS 2
// publish-to-completion cycles through the core (encode into the packet store,
// copy into the send buffer, hand the bytes to the host, decode the acks) must
// not cause a single young-generation collection. A view or an object per
// message would: 200,000 cycles at even 50 bytes each is 10 MB, more than
// V8's young generation holds.
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { setup, cycles1, cycles2 } from '../support/xs-entry/core-bench.js';
import { DormouseClient } from '../../modules/session/client.js';
import { encodeAck, encodePublish } from '../../modules/mqtt/encode.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function scavengesDuring(run: () => void): Promise<number> {
  // Start with an empty young generation, so a stray byte made by the engine
  // itself (not by the loop) cannot be the one that fills it.
  gc();
  const entries: PerformanceEntry[] = [];
  const obs = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  run();
  const t1 = performance.now();
  // gc entries are delivered asynchronously.
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return entries.filter((e) => {
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    return kind === constants.NODE_PERFORMANCE_GC_MINOR && e.startTime >= t0 && e.startTime <= t1;
  }).length;
}

describe('steady-state allocation', () => {
  it('200,000 QoS 1 and 100,000 QoS 2 publish-to-completion cycles cause no young-generation collection', async () => {
    setup();
    // Warm: JIT, inline caches, the topic cache, lazily made decoded-packet objects.
    cycles1(20_000);
    cycles2(20_000);
    let live = -1;
    const minor1 = await scavengesDuring(() => { live = cycles1(200_000); });
    expect(live).toBe(0); // every message completed
    expect(minor1).toBe(0);
    const minor2 = await scavengesDuring(() => { live = cycles2(100_000); });
    expect(live).toBe(0);
    expect(minor2).toBe(0);
  });

  it('receiving QoS 1 and QoS 2 messages (decode, deliver, PUBACK / PUBREC, PUBREL, PUBCOMP) causes none', async () => {
    let delivered = 0;
    let bytes = 0;
    const c = new DormouseClient(
      { clientId: 'in', keepalive: 0, capacities: { incomingQos2: 256 } },
      { send: (b) => { bytes += b.length; }, open() {}, close() {}, message: (p) => { delivered += p.qos > 0 ? 1 : 0; }, event() {} },
      null,
      () => 0.5,
    );
    c.start(0);
    c.transportOpened(0);
    c.receive(new Uint8Array([0x20, 2, 0, 0]), 0);
    // Batches of 50 PUBLISHes as a broker sends them, then (QoS 2) their PUBRELs.
    const batch = (qos: 1 | 2, first: number) => {
      const pubs = new Uint8Array(50 * 40);
      const rels = new Uint8Array(50 * 4);
      let o = 0;
      let r = 0;
      for (let i = 0; i < 50; i++) {
        o += encodePublish(pubs, o, 4, 'sensors/t1', new Uint8Array(16), qos, false, false, first + i, null);
        r += encodeAck(rels, r, 4, 6, first + i, 0);
      }
      return [pubs.subarray(0, o), rels.subarray(0, r)] as const;
    };
    const b1 = Array.from({ length: 40 }, (_, k) => batch(1, 1 + k * 50));
    const b2 = Array.from({ length: 40 }, (_, k) => batch(2, 1 + k * 50));
    const run = (rounds: number) => {
      for (let k = 0; k < rounds; k++) {
        c.receive(b1[k % 40]![0], 0);
        const [pubs, rels] = b2[k % 40]!;
        c.receive(pubs, 0);
        c.receive(rels, 0);
      }
    };
    run(400);
    const d0 = delivered;
    const minor = await scavengesDuring(() => run(4_000));
    expect(delivered - d0).toBe(4_000 * 100); // every message delivered once
    expect(bytes).toBeGreaterThan(0);
    expect(minor).toBe(0);
  });

  it('the probe sees allocation when there is some', async () => {
    // The same measurement around a loop that makes a small view per step must count collections,
    // or the test above could pass by measuring nothing.
    const buf = new Uint8Array(64);
    let keep = 0;
    const minor = await scavengesDuring(() => {
      for (let i = 0; i < 300_000; i++) keep += buf.subarray(i & 31, 40).length;
    });
    expect(keep).toBeGreaterThan(0);
    expect(minor).toBeGreaterThan(0);
  });
});
