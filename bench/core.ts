// The client core's own numbers (issue: client core):
//   node --import tsx bench/core.ts [--json] [--quick]
// - heap over a million QoS 1 publish+ack cycles (flat = no steady-state allocation)
// - RAM per inflight record, snapshot bytes for the default capacities
// - packets, bytes and round trips from wake to sleep-ready for one QoS 1
//   reading on a resumed session, ours vs MQTT.js, through a counting proxy to aedes
// - XS compute count per connect and per QoS 1 / QoS 2 publish to completion
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { setup, cycles1, cycles2 } from '../test/support/xs-entry/core-bench.js';
import { WORDS, DEFAULT_CAPACITIES, SessionState } from '../modules/session/session-state.js';
import { DormouseClient } from '../modules/session/client.js';
import { encodePublish, encodeAck } from '../modules/mqtt/encode.js';
import { snapshotCapacity, SessionSnapshot } from '../modules/session/snapshot.js';
import { bundleForXs, runInXs } from '../test/support/xs.js';
import { startAedes } from '../sim/brokers.js';
import { FaultProxy } from '../sim/proxy.js';
import { connect } from '../hosts/node/client.js';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  // Re-run with --expose-gc so heap figures are taken after a full collection.
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

function line(bench: string, ours: number, peer: number | null, unit: string, note = ''): void {
  const ratio = peer ? ours / peer : null;
  if (json) console.log(JSON.stringify({ bench, ours, peer, ratio, unit }));
  else console.log(`${bench.padEnd(44)} ours ${fmt(ours).padStart(12)}${peer !== null ? `  peer ${fmt(peer).padStart(10)}  ratio ${ratio!.toFixed(2)}` : ''}  ${unit}${note ? '  ' + note : ''}`);
}
const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

// ---- heap over a million cycles -------------------------------------------------
{
  const n = quick ? 100_000 : 1_000_000;
  setup();
  cycles1(10_000); // warm up: JIT, inline caches
  gc!();
  const before = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  cycles1(n);
  const cpu = process.cpuUsage(cpu0);
  const ns = Number(process.hrtime.bigint() - t0);
  gc!();
  const after = process.memoryUsage().heapUsed;
  line('core.qos1-cycle.heap-growth', after - before, null, `bytes after ${n} publish+ack cycles`);
  line('core.qos1-cycle.rate', Math.round(n / (ns / 1e9)), null, 'cycles/s (core alone, no I/O)');
  line('core.qos1-cycle.cpu', (cpu.user + cpu.system) / n, null, 'µs CPU per cycle');
  cycles2(10_000);
  gc!();
  const b2 = process.memoryUsage().heapUsed;
  const t2 = process.hrtime.bigint();
  cycles2(n / 2);
  const ns2 = Number(process.hrtime.bigint() - t2);
  gc!();
  line('core.qos2-cycle.heap-growth', process.memoryUsage().heapUsed - b2, null, `bytes after ${n / 2} QoS 2 cycles`);
  line('core.qos2-cycle.rate', Math.round(n / 2 / (ns2 / 1e9)), null, 'cycles/s (core alone, no I/O)');
}

// ---- memory of one core (no socket, no host) ------------------------------------------
{
  const hooks = { send() {}, open() {}, close() {}, message() {}, event() {} };
  const small = { inflight: 1, outbox: 1, storeBytes: 64, incomingQos2: 2, subscriptions: 1, subscriptionBytes: 32 };
  for (const [name, make] of [
    ['default', () => new DormouseClient({ clientId: 'c' }, hooks, null, Math.random)],
    ['small', () => new DormouseClient({ clientId: 'c', capacities: small, receiveBufferSize: 256, sendBufferSize: 128 }, hooks, null, Math.random)],
  ] as const) {
    const keep: unknown[] = [];
    const n = 2000;
    gc!();
    gc!();
    const m0 = process.memoryUsage();
    for (let i = 0; i < n; i++) keep.push(make());
    gc!();
    gc!();
    const m1 = process.memoryUsage();
    line(`core.memory.${name}.heap`, Math.round((m1.heapUsed - m0.heapUsed) / n), null, `bytes of V8 heap per core (${name} capacities; ${n} cores)`);
    line(`core.memory.${name}.buffers`, Math.round((m1.arrayBuffers - m0.arrayBuffers) / n), null, `bytes of ArrayBuffers per core (${name} capacities)`);
    if (keep.length !== n) throw new Error('unreachable');
  }
}

// ---- incoming QoS 2, core alone ----------------------------------------------------
{
  // Batches of 100 QoS 2 PUBLISHes then their PUBRELs, as a broker sends a
  // backlog; the core decodes, keeps the ids, and answers PUBREC and PUBCOMP.
  const c = new DormouseClient({ clientId: 'in', keepalive: 0, capacities: { incomingQos2: 256 } }, { send() {}, open() {}, close() {}, message() {}, event() {} }, null, () => 0.5);
  c.start(0);
  c.transportOpened(0);
  c.receive(new Uint8Array([0x20, 2, 0, 0]), 0);
  const N = 100;
  const rounds = quick ? 500 : 5000;
  const payload = new Uint8Array(16);
  const batches: Array<[Uint8Array, Uint8Array]> = [];
  for (let b = 0; b < 600; b++) {
    const pubs = new Uint8Array(N * 40);
    const rels = new Uint8Array(N * 4);
    let o = 0;
    let r = 0;
    for (let i = 0; i < N; i++) {
      o += encodePublish(pubs, o, 4, 'soak/topic', payload, 2, false, false, 1 + b * N + i, null);
      r += encodeAck(rels, r, 4, 6, 1 + b * N + i, 0);
    }
    batches.push([pubs.subarray(0, o), rels.subarray(0, r)]);
  }
  const cpu0 = process.cpuUsage();
  for (let k = 0; k < rounds; k++) {
    const [pubs, rels] = batches[k % batches.length];
    c.receive(pubs, 0);
    c.receive(rels, 0);
  }
  const cpu = process.cpuUsage(cpu0);
  line('core.qos2-incoming.cpu', (cpu.user + cpu.system) / (rounds * N), null, 'µs CPU per incoming QoS 2 message, core alone (PUBLISH, PUBREC, PUBREL, PUBCOMP)');
}

// ---- sizes ------------------------------------------------------------------------
{
  line('core.record.bytes', WORDS * 4, null, 'bytes of RAM per inflight record (plus its stored PUBLISH)');
  const s = new SessionState();
  const ram = s.buffer.byteLength;
  line('core.session.ram', ram, null, 'bytes of typed arrays for the default capacities');
  line('core.snapshot.max-bytes', snapshotCapacity(DEFAULT_CAPACITIES, 23), null, 'bytes, default capacities, 23-byte client id (ESP32 RTC slow memory: 8192)');
  const snap = new SessionSnapshot(s, 4, new TextEncoder().encode('dormouse-1'), null);
  const off = s.reserve(20);
  s.commitAccept(1, 20, 0, 16, 0);
  void off;
  line('core.snapshot.one-reading-bytes', snap.encode({ clockMs: 0, hasSession: true, serverReceiveMaximum: 20, serverMaximumQoS: 2, serverRetainAvailable: true, serverMaximumPacketSize: 1000, serverKeepAlive: 60 }, 1), null, 'bytes with one 20-byte QoS 1 reading held');
}

// ---- wake to sleep-ready, on the wire -------------------------------------------
{
  const aedes = await startAedes();
  const dir = mkdtempSync(join(tmpdir(), 'dormouse-bench-'));
  try {
    async function measure(wake: (url: string) => Promise<void>): Promise<{ packets: number; bytes: number; flights: number }> {
      const proxy = await FaultProxy.start({ targetPort: aedes.port });
      const flights: string[] = [];
      proxy.onPacket = (dir) => {
        if (flights.at(-1) !== dir) flights.push(dir);
      };
      await wake(proxy.url);
      await new Promise((r) => setTimeout(r, 50));
      const c = proxy.counters;
      const packets = c.packets.c2s.reduce((a, b) => a + b, 0) + c.packets.s2c.reduce((a, b) => a + b, 0);
      await proxy.close();
      // A round trip is a client flight answered by a server flight.
      const roundTrips = flights.filter((d, i) => d === 'c2s' && flights[i + 1] === 's2c').length;
      return { packets, bytes: c.bytes.c2s + c.bytes.s2c, flights: roundTrips };
    }
    const sessionFile = join(dir, 'wake');
    // First contact creates the session on both sides (not measured).
    {
      const first = connect(aedes.url, { clientId: 'wake-ours', sessionFile });
      await new Promise((r) => first.once('connect', r));
      await first.end();
      const m = await mqtt.connectAsync(aedes.url, { clientId: 'wake-peer', clean: false });
      await m.endAsync();
    }
    const ours = await measure(async (url) => {
      const c = connect(url, { clientId: 'wake-ours', sessionFile });
      const { acknowledged } = await c.publish('sensors/t1', '21.5', { qos: 1 });
      await acknowledged;
      await c.end();
    });
    const peer = await measure(async (url) => {
      const c = await mqtt.connectAsync(url, { clientId: 'wake-peer', clean: false });
      await c.publishAsync('sensors/t1', '21.5', { qos: 1 });
      await c.endAsync();
    });
    line('wake.qos1.packets', ours.packets, peer.packets, 'packets, resumed session, one QoS 1 reading (min 5)');
    line('wake.qos1.bytes', ours.bytes, peer.bytes, 'bytes of MQTT, same');
    line('wake.qos1.round-trips', ours.flights, peer.flights, 'round trips before sleep-ready');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await aedes.close();
  }
}

// ---- XS -----------------------------------------------------------------------------
{
  const entry = fileURLToPath(new URL('../test/support/xs-entry/core-bench.ts', import.meta.url));
  const n = 1000;
  const steps = await runInXs(await bundleForXs(entry), [
    'gc()',
    'setup(); gc()',
    'connectOnce()',
    `cycles1(${n})`,
    `cycles2(${n})`,
    'cycles1(10000); gc()',
    'cycles1(10000); gc()',
  ]);
  line('xs.connect.compute', steps[2].compute, null, 'XS compute units for construct + CONNECT + CONNACK');
  line('xs.qos1-publish.compute', steps[3].compute / n, null, 'XS compute units per QoS 1 publish to completion');
  line('xs.qos2-publish.compute', steps[4].compute / n, null, 'XS compute units per QoS 2 publish to completion');
  line('xs.heap.one-client', steps[1].currentHeapCount - steps[0].currentHeapCount, null, 'XS heap slots held by one connected client, default capacities (16 B a slot on 32-bit XS, plus its ArrayBuffer chunks)');
  line('xs.heap.after-10k', steps[5].currentHeapCount, null, 'XS heap count after 10,000 QoS 1 publishes and a gc()');
  line('xs.heap.growth-10k', steps[6].currentHeapCount - steps[5].currentHeapCount, null, 'XS heap count change over 10,000 more QoS 1 publishes (after gc())');
}
