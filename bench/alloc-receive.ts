// Heap allocated per received message by the whole client process, Dormouse
// against MQTT.js in the same run (issue 14: "zero steady-state allocation on
// the receive path beyond the delivered payload"):
//   node --import tsx bench/alloc-receive.ts [--json] [--n N] [--sites]
// Each case drains a backlog queued at Debian's mosquitto for a persistent
// session, in a fresh process whose young generation (64 MiB semi-spaces) holds
// a measured stretch: after message 1,000, three windows of 5,000 messages, each
// begun with a forced collection; the V8 heap in use at a window's end minus at its
// start, with no other collection between (a row with one is marked), divided by
// 5,000; the least of the three windows is reported (one-off work such as a
// function compiled lands in one window only). That is every byte the process
// allocated for those messages: the socket read,
// decode, delivery, acks, the listener's arguments. The delivered payload is one
// Buffer object per message (its bytes come from Node's 8 KiB pool, counted in
// arrayBuffers, shown apart). Cases: QoS 0 and 1; one topic, or 16 topics in
// turn; the listener declared with (topic, payload) or (topic, payload, packet),
// or (Dormouse) a 'messageView' listener that reads the payload in place.
// --sites: Dormouse's cases only, each with V8's sampling heap profiler over the
// same stretch (collected objects kept), printing where the bytes are allocated.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { connect } from '../hosts/node/client.js';
import { startMosquitto } from '../sim/brokers.js';
import { fillBacklog } from './backlog-fill.js';
import { bundle } from './bundle.js';

type Lib = 'ours' | 'peer' | 'payload';
interface Case {
  lib: Lib;
  qos: 0 | 1;
  topics: number;
  /** Arguments the 'message' listener declares, or 'view': a 'messageView' listener instead (no payload copy). */
  args: 2 | 3 | 'view';
}
interface Child extends Case {
  /** --sites: instead of the heap figures, a sampling heap profile of the same stretch (where the bytes go). */
  sites?: boolean;
  url: string;
  clientId: string;
  n: number;
}
interface Result {
  /** --sites: the sampled bytes per message by allocating function (the innermost frame of ours, or Node's/V8's). */
  sites?: Array<[string, number]>;
  heapPerMsg: number;
  arrayBuffersPerMsg: number;
  gcs: number;
}

const SKIP = 1000;
/** Messages measured: small enough that MQTT.js's allocations (about 3 KB a message) fit the young generation. */
const WINDOW = 5000;
/** Windows measured one after another, each after a forced collection; the least is reported. */
const WINDOWS = 3;
const argv = process.argv.slice(2);
const json = argv.includes('--json');
const sitesMode = argv.includes('--sites');

/** The delivered payload alone: a 16-byte Buffer as the host makes it (Buffer.allocUnsafe, Node's pool), per message. */
function payloadOnly(): Result {
  const keep: Buffer[] = new Array(WINDOW);
  const fill = (): void => { for (let i = 0; i < WINDOW; i++) keep[i] = Buffer.allocUnsafe(16); };
  fill(); // warm: the loop optimized, as the host's copy is after 1,000 messages
  fill();
  // The least of several fills: a fill can land on the engine's own work (its feedback, a pool's ArrayBuffer object).
  let heap = Infinity;
  let buffers = Infinity;
  for (let k = 0; k < 7; k++) {
    (globalThis as { gc?: () => void }).gc?.();
    const m0 = process.memoryUsage();
    fill();
    const m1 = process.memoryUsage();
    heap = Math.min(heap, (m1.heapUsed - m0.heapUsed) / WINDOW);
    buffers = Math.min(buffers, (m1.arrayBuffers - m0.arrayBuffers) / WINDOW);
  }
  return { heapPerMsg: heap, arrayBuffersPerMsg: buffers, gcs: 0 };
}

interface ProfileNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: ProfileNode[];
}

/** Sampled bytes per message by allocating site: the function and its file, with its caller. */
function sitesOf(head: ProfileNode, messages: number): Result {
  const bySite = new Map<string, number>();
  const name = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} (${n.callFrame.url.split('/').slice(-2).join('/') || 'native'})`;
  const walk = (n: ProfileNode, caller: string) => {
    // The profiler's own work (its start and stop calls) is not the receive path's.
    if (n.callFrame.url === 'node:inspector') return;
    const site = `${name(n)} < ${caller}`;
    if (n.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize / messages);
    for (const k of n.children) walk(k, name(n));
  };
  walk(head, '');
  const sites = [...bySite].sort((a, b) => b[1] - a[1]);
  return { sites, heapPerMsg: sites.reduce((a, [, b]) => a + b, 0), arrayBuffersPerMsg: NaN, gcs: 0 };
}

async function child(c: Child): Promise<Result> {
  if (c.lib === 'payload') return payloadOnly();
  // Collections in a window other than the forced one at its start make it invalid: the
  // forced ones are told apart by their start time, between the marks taken around gc().
  const forced: Array<[number, number]> = [];
  const gcAt: number[] = [];
  const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcAt.push(e.startTime); });
  obs.observe({ entryTypes: ['gc'] });
  const windows: Array<{ heap: number; buffers: number; from: number; to: number }> = [];
  let h0 = 0;
  let a0 = 0;
  let from = 0;
  let got = 0;
  let done!: (r: Result) => void;
  const finished = new Promise<Result>((r) => { done = r; });
  const profiler = c.sites ? new Session() : null;
  profiler?.connect();
  const mark = (): void => {
    ++got;
    if (profiler) {
      // V8's sampling heap profiler, keeping samples of objects already collected: every allocation site, by bytes.
      if (got === SKIP) void profiler.post('HeapProfiler.startSampling', { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
      else if (got === SKIP + WINDOWS * WINDOW) void profiler.post('HeapProfiler.stopSampling').then(({ profile }) => done(sitesOf(profile.head as ProfileNode, WINDOWS * WINDOW)));
      return;
    }
    if (got < SKIP || (got - SKIP) % WINDOW !== 0) return;
    const m = process.memoryUsage();
    if (got > SKIP) windows.push({ heap: (m.heapUsed - h0) / WINDOW, buffers: (m.arrayBuffers - a0) / WINDOW, from, to: performance.now() });
    if (windows.length === WINDOWS) {
      // gc entries arrive asynchronously: look a moment later.
      setTimeout(() => {
        obs.disconnect();
        const unforced = (w: { from: number; to: number }) => gcAt.filter((t) => t >= w.from && t <= w.to && !forced.some(([a, b]) => t >= a && t <= b)).length;
        const clean = windows.filter((w) => unforced(w) === 0);
        // The least clean window: one-off work (a function compiled, a pool's first chunk) lands in some windows only.
        const best = (clean.length > 0 ? clean : windows).reduce((a, b) => (b.heap < a.heap ? b : a));
        done({ heapPerMsg: best.heap, arrayBuffersPerMsg: best.buffers, gcs: clean.length > 0 ? 0 : unforced(best) });
      }, 20);
      return;
    }
    const t0 = performance.now();
    (globalThis as { gc?: () => void }).gc?.();
    forced.push([t0, performance.now()]);
    const m1 = process.memoryUsage();
    h0 = m1.heapUsed;
    a0 = m1.arrayBuffers;
    from = performance.now();
  };
  const rest = new Promise<void>((r) => { const t = setInterval(() => { if (got >= c.n) { clearInterval(t); r(); } }, 5); });
  let end: () => Promise<unknown>;
  if (c.lib === 'ours') {
    const mod = (await import(process.env.DORMOUSE_ALLOC_BUNDLE ?? '../hosts/node/client.js')) as typeof import('../hosts/node/client.js');
    const cl = mod.connect(c.url, { clientId: c.clientId, clean: false, reconnectPeriod: 0 });
    if (c.args === 'view') {
      // Reads the payload's first byte in place, as a listener that parses without keeping would.
      let sum = 0;
      cl.on('messageView', (v: { bytes: Uint8Array; payloadStart: number }) => { sum += v.bytes[v.payloadStart]!; mark(); });
      end = () => { if (sum === 0) throw new Error('the view listener read no payload'); return cl.end(); };
    } else {
      if (c.args === 2) cl.on('message', (_t: string, _p: Buffer) => mark());
      else cl.on('message', (_t: string, _p: Buffer, _packet: unknown) => mark());
      end = () => cl.end();
    }
  } else {
    const mqtt = ((await import('mqtt')) as unknown as { default: typeof import('mqtt') }).default;
    const cl = mqtt.connect(c.url, { clientId: c.clientId, clean: false, reconnectPeriod: 0 });
    if (c.args === 2) cl.on('message', (_t: string, _p: Buffer) => mark());
    else cl.on('message', (_t: string, _p: Buffer, _packet: unknown) => mark());
    end = () => cl.endAsync();
  }
  const r = await finished;
  await rest;
  await end();
  return r;
}

function runChild(c: Child, bundleUrl: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify(c)], {
      execArgv: ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', '--import', 'tsx'],
      env: { ...process.env, DORMOUSE_ALLOC_BUNDLE: bundleUrl },
    });
    p.on('message', (m: Result) => resolve(m));
    p.on('exit', (code) => { if (code !== 0) reject(new Error(`child exited ${code}`)); });
  });
}

async function main(): Promise<void> {
  const n = Number(argv[argv.indexOf('--n') + 1] ?? 0) || SKIP + WINDOWS * WINDOW + 1000;
  const mosq = await startMosquitto({ persistence: false, extraConfig: ['max_queued_messages 100000', 'queue_qos0_messages true'] });
  const host = await bundle('hosts/node/client.ts');
  try {
    const cases: Case[] = [];
    for (const qos of [0, 1] as const) {
      for (const topics of [1, 16]) {
        for (const args of [2, 3] as const) for (const lib of ['ours', 'peer'] as const) cases.push({ lib, qos, topics, args });
        cases.push({ lib: 'ours', qos, topics, args: 'view' });
      }
    }
    const results = new Map<string, Result>();
    for (const c of sitesMode ? cases.filter((k) => k.lib === 'ours') : cases) {
      const key = `${c.lib}-q${c.qos}-t${c.topics}-a${c.args}`;
      const clientId = `alloc-${key}`;
      const prefix = `alloc/${key}`;
      const s = connect(mosq.url, { clientId, clean: false, reconnectPeriod: 0 });
      await s.subscribe(`${prefix}/#`, { qos: c.qos });
      await s.end();
      await fillBacklog(mosq.url, Array.from({ length: c.topics }, (_, i) => `${prefix}/sensor-${i}`), c.qos, n, `${prefix}-sentinel`);
      const r = await runChild({ ...c, url: mosq.url, clientId, n, sites: sitesMode }, host.url);
      results.set(key, r);
      if (r.sites) {
        console.log(`${`alloc.sites.qos${c.qos}.topics${c.topics}.${c.args === 'view' ? 'view' : `args${c.args}`}`.padEnd(36)} ${r.heapPerMsg.toFixed(1)} sampled bytes/msg; the largest sites (bytes/msg, site < its caller):`);
        for (const [site, b] of r.sites.slice(0, 6)) console.log(`  ${b.toFixed(2).padStart(7)}  ${site}`);
      }
    }
    if (sitesMode) return;
    const base = await runChild({ lib: 'payload', qos: 0, topics: 1, args: 2, url: mosq.url, clientId: '', n: 0 }, host.url);
    if (json) console.log(JSON.stringify({ bench: 'alloc.receive.payload-buffer', ours: base.heapPerMsg, peer: null, ratio: null, unit: 'bytes of V8 heap per 16-byte payload Buffer' }));
    else console.log(`${'alloc.receive.payload-buffer'.padEnd(36)} ${base.heapPerMsg.toFixed(1)} bytes of V8 heap per 16-byte payload Buffer (what each message must cost)`);
    for (const qos of [0, 1]) {
      for (const topics of [1, 16]) {
        for (const args of [2, 3]) {
          const o = results.get(`ours-q${qos}-t${topics}-a${args}`)!;
          const p = results.get(`peer-q${qos}-t${topics}-a${args}`)!;
          const bench = `alloc.receive.qos${qos}.topics${topics}.args${args}`;
          const unit = 'bytes of V8 heap allocated per received message (whole process)';
          const note = `beyond the payload Buffer: ours ${(o.heapPerMsg - base.heapPerMsg).toFixed(1)} B; ArrayBuffer bytes/msg ours ${o.arrayBuffersPerMsg.toFixed(1)}, MQTT.js ${p.arrayBuffersPerMsg.toFixed(1)}` +
            (o.gcs + p.gcs > 0 ? `; NOT VALID: a collection ran in the window (ours ${o.gcs}, MQTT.js ${p.gcs})` : '');
          if (json) console.log(JSON.stringify({ bench, ours: o.heapPerMsg, peer: p.heapPerMsg, ratio: o.heapPerMsg / p.heapPerMsg, unit, note }));
          else console.log(`${bench.padEnd(36)} ours ${o.heapPerMsg.toFixed(1).padStart(8)}  MQTT.js ${p.heapPerMsg.toFixed(1).padStart(8)}  ratio ${(o.heapPerMsg / p.heapPerMsg).toFixed(3)}  ${unit}; ${note}`);
        }
        // 'messageView' (no copy): against MQTT.js's (topic, payload) listener, its only way to receive.
        const v = results.get(`ours-q${qos}-t${topics}-aview`)!;
        const p = results.get(`peer-q${qos}-t${topics}-a2`)!;
        const bench = `alloc.receive.qos${qos}.topics${topics}.view`;
        const unit = "bytes of V8 heap allocated per received message (whole process), a 'messageView' listener";
        const note = `no payload delivered: all of it is beyond the payload; ArrayBuffer bytes/msg ours ${v.arrayBuffersPerMsg.toFixed(1)}` +
          (v.gcs > 0 ? `; NOT VALID: a collection ran in the window (${v.gcs})` : '');
        if (json) console.log(JSON.stringify({ bench, ours: v.heapPerMsg, peer: p.heapPerMsg, ratio: v.heapPerMsg / p.heapPerMsg, unit, note }));
        else console.log(`${bench.padEnd(36)} ours ${v.heapPerMsg.toFixed(1).padStart(8)}  MQTT.js ${p.heapPerMsg.toFixed(1).padStart(8)}  ratio ${(v.heapPerMsg / p.heapPerMsg).toFixed(3)}  ${unit}; ${note}`);
      }
    }
  } finally {
    host.dispose();
    await mosq.dispose();
  }
}

if (argv[0] === '--child') {
  const r = await child(JSON.parse(argv[1]!) as Child);
  process.send!(r);
  process.disconnect();
} else {
  await main();
  process.exit(0);
}
