// Codec speed and allocation, ours vs mqtt-packet 9 (MQTT 3.1.1 unless named).
//   node --import tsx bench/codec.ts [--json] [--quick]
// Every operation is a plain function of an iteration count (BENCHES), so
// other harnesses (an XS compute count) can run the same work.

import { createRequire } from 'node:module';
import { GCProfiler } from 'node:v8';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  DECODE_PACKET,
  DecodedPublish,
  PacketDecoder,
  encodeAck,
  encodePublish,
} from '../modules/mqtt/index.js';
import { PacketType, ProtocolVersion } from '../modules/mqtt/types.js';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const mqtt: any = require('mqtt-packet');

const TOPIC = 'sensors/t1';
const SMALL = new Uint8Array([0x32, 0x31, 0x2e, 0x35]); // "21.5"
const KIB = new Uint8Array(1024).map((_, i) => i & 0xff);
const V4 = ProtocolVersion.V311;

export type Op = (n: number) => void;
export interface Bench {
  name: string;
  ours: Op;
  peer: Op;
}

// Keeps results observable so nothing is optimised away. Loops accumulate in a
// local small integer and store once: a module-level double would allocate a
// HeapNumber per store and show up as our allocation.
let sink = 0;

// -------------------------------------------------------------- ours

const out = new Uint8Array(2048);

export function oursEncodePublish(payload: Uint8Array, qos: 0 | 1): Op {
  return (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s = (s + encodePublish(out, 0, V4, TOPIC, payload, qos, false, false, qos === 0 ? 0 : (i & 0xffff) | 1, null)) & 0xffff;
    sink ^= s;
  };
}

export function oursEncodePuback(): Op {
  return (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s = (s + encodeAck(out, 0, V4, PacketType.Puback, (i & 0xffff) | 1, 0)) & 0xffff;
    sink ^= s;
  };
}

/** Decodes `bytes` n times reading the fields a user reads (topic, payload view, id). */
export function oursDecode(bytes: Uint8Array, readPayload = true): Op {
  const d = new PacketDecoder({ version: V4, bufferSize: 4096 });
  return (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      d.feed(bytes);
      if (d.next() !== DECODE_PACKET) throw new Error('decode failed');
      const p = d.packet!;
      if (p.type === PacketType.Publish) {
        const pub = p as DecodedPublish;
        s = (s + pub.topic.length + pub.packetId + (readPayload ? pub.payload.length : pub.payloadEnd - pub.payloadStart)) & 0xffff;
      } else if (p.type === PacketType.Puback) {
        s = (s + p.packetId) & 0xffff;
      }
      d.next(); // DECODE_NEED_DATA: chunk consumed
    }
    sink ^= s;
  };
}

// -------------------------------------------------------------- mqtt-packet, as a user calls it

export function peerEncodePublish(payload: Uint8Array, qos: 0 | 1): Op {
  const buf = Buffer.from(payload);
  return (n) => {
    for (let i = 0; i < n; i++) {
      sink ^= mqtt.generate({ cmd: 'publish', topic: TOPIC, payload: buf, qos, retain: false, dup: false, messageId: qos === 0 ? undefined : (i & 0xffff) | 1 }).length;
    }
  };
}

export function peerEncodePuback(): Op {
  return (n) => {
    for (let i = 0; i < n; i++) sink ^= mqtt.generate({ cmd: 'puback', messageId: (i & 0xffff) | 1 }).length;
  };
}

export function peerDecode(bytes: Uint8Array): Op {
  const parser = mqtt.parser({ protocolVersion: 4 });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  parser.on('packet', (p: any) => {
    sink ^= (p.topic ? p.topic.length : 0) + (p.messageId ?? 0) + (p.payload ? p.payload.length : 0);
  });
  parser.on('error', (e: Error) => {
    throw e;
  });
  const buf = Buffer.from(bytes);
  return (n) => {
    for (let i = 0; i < n; i++) parser.parse(buf);
  };
}

function encoded(payload: Uint8Array, qos: 0 | 1): Uint8Array {
  const b = new Uint8Array(2048);
  return b.slice(0, encodePublish(b, 0, V4, TOPIC, payload, qos, false, false, qos === 0 ? 0 : 7, null));
}

export const BENCHES: Bench[] = [
  { name: 'publish-qos0-encode', ours: oursEncodePublish(SMALL, 0), peer: peerEncodePublish(SMALL, 0) },
  { name: 'publish-qos0-decode', ours: oursDecode(encoded(SMALL, 0)), peer: peerDecode(encoded(SMALL, 0)) },
  { name: 'publish-qos1-encode', ours: oursEncodePublish(SMALL, 1), peer: peerEncodePublish(SMALL, 1) },
  { name: 'publish-qos1-decode', ours: oursDecode(encoded(SMALL, 1)), peer: peerDecode(encoded(SMALL, 1)) },
  { name: 'publish-1k-qos0-encode', ours: oursEncodePublish(KIB, 0), peer: peerEncodePublish(KIB, 0) },
  { name: 'publish-1k-qos0-decode', ours: oursDecode(encoded(KIB, 0)), peer: peerDecode(encoded(KIB, 0)) },
  { name: 'publish-1k-qos1-encode', ours: oursEncodePublish(KIB, 1), peer: peerEncodePublish(KIB, 1) },
  { name: 'publish-1k-qos1-decode', ours: oursDecode(encoded(KIB, 1)), peer: peerDecode(encoded(KIB, 1)) },
  { name: 'puback-encode', ours: oursEncodePuback(), peer: peerEncodePuback() },
  { name: 'puback-decode', ours: oursDecode(new Uint8Array([0x40, 0x02, 0x00, 0x07])), peer: peerDecode(new Uint8Array([0x40, 0x02, 0x00, 0x07])) },
];

// -------------------------------------------------------------- measurement

/** Ops per second of one timed run of about `ms` milliseconds. */
function measure(op: Op, ms: number): number {
  let n = 1000;
  for (;;) {
    const t0 = performance.now();
    op(n);
    const dt = performance.now() - t0;
    if (dt >= ms) return (n * 1000) / dt;
    n = dt < 1 ? n * 10 : Math.ceil((n * ms * 1.1) / dt);
  }
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface BenchResult {
  bench: string;
  ours: number;
  peer: number;
  ratio: number;
  unit: 'ops/s';
}

/** Alternating rounds (ours, peer, ours, ...), medians. */
export function runBench(b: Bench, rounds: number, ms: number): BenchResult {
  measure(b.ours, ms / 2); // warm up
  measure(b.peer, ms / 2);
  const ours: number[] = [];
  const peer: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      ours.push(measure(b.ours, ms));
      peer.push(measure(b.peer, ms));
    } else {
      peer.push(measure(b.peer, ms));
      ours.push(measure(b.ours, ms));
    }
  }
  const o = median(ours);
  const p = median(peer);
  return { bench: b.name, ours: Math.round(o), peer: Math.round(p), ratio: Math.round((o / p) * 100) / 100, unit: 'ops/s' };
}

// -------------------------------------------------------------- allocation

interface AllocResult {
  what: string;
  heapBefore: number;
  heapAfter: number;
  gcs: number;
}

function allocation(what: string, op: Op, n: number): AllocResult {
  const gc = (globalThis as { gc?: () => void }).gc!;
  op(1000); // warm up (optimised code, caches)
  gc();
  gc();
  const profiler = new GCProfiler();
  profiler.start();
  const heapBefore = process.memoryUsage().heapUsed;
  op(n);
  const heapAfter = process.memoryUsage().heapUsed;
  const gcs = profiler.stop()?.statistics.length ?? -1;
  return { what, heapBefore, heapAfter, gcs };
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const quick = process.argv.includes('--quick');
  const hasGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
  if (!hasGc && !process.env.DORMOUSE_BENCH_CHILD) {
    // Re-exec with --expose-gc so the allocation section can force collections.
    const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, DORMOUSE_BENCH_CHILD: '1' },
    });
    process.exit(r.status ?? 1);
  }
  const rounds = quick ? 3 : 7;
  const ms = quick ? 60 : 150;
  if (!json) console.log(`codec bench: ${rounds} alternating rounds of ~${ms} ms, medians (MQTT 3.1.1, topic "${TOPIC}")\n`);
  for (const b of BENCHES) {
    const r = runBench(b, rounds, ms);
    if (json) console.log(JSON.stringify(r));
    else console.log(`${r.bench.padEnd(24)} ours ${fmt(r.ours).padStart(10)} ops/s   mqtt-packet ${fmt(r.peer).padStart(10)} ops/s   ratio ${r.ratio.toFixed(2)}x`);
  }
  if (!hasGc) return;
  const N = 1_000_000;
  const rows = [
    allocation('ours encodePublish QoS 1', oursEncodePublish(SMALL, 1), N),
    allocation('ours decode PUBLISH QoS 1 (topic, id, payload length)', oursDecode(encoded(SMALL, 1), false), N),
    allocation('ours decode PUBLISH QoS 1 + payload view', oursDecode(encoded(SMALL, 1), true), N),
    allocation('ours encodeAck', oursEncodePuback(), N),
    allocation('mqtt-packet generate PUBLISH QoS 1', peerEncodePublish(SMALL, 1), N),
    allocation('mqtt-packet parse PUBLISH QoS 1', peerDecode(encoded(SMALL, 1)), N),
  ];
  if (json) {
    for (const r of rows) console.log(JSON.stringify({ bench: 'alloc: ' + r.what, ops: N, heapBefore: r.heapBefore, heapAfter: r.heapAfter, gcs: r.gcs, unit: 'bytes' }));
  } else {
    console.log(`\nallocation: ${fmt(N)} operations each, gc() first; heap used before -> after (no gc in between), garbage collections during the run`);
    for (const r of rows) {
      console.log(`${r.what.padEnd(56)} ${kib(r.heapBefore).padStart(10)} -> ${kib(r.heapAfter).padStart(10)}   ${String(r.gcs).padStart(4)} GCs`);
    }
  }
  await xsCompute(json);
  if (sink === 42) console.log('');
}

/** The XS engine's compute count per operation (deterministic, unlike time). */
async function xsCompute(json: boolean): Promise<void> {
  const { bundleForXs, runInXs } = await import('../test/support/xs.js');
  const entry = fileURLToPath(new URL('../test/support/xs-entry/codec-bench.ts', import.meta.url));
  const names = ['publish-qos0-encode', 'publish-qos1-encode', 'publish-qos0-decode', 'publish-qos1-decode', 'puback-encode', 'puback-decode'];
  const n = 1000;
  const steps = await runInXs(await bundleForXs(entry), names.flatMap((name) => [`codecOps['${name}'](10)`, `codecOps['${name}'](${n})`]));
  if (!json) console.log(`\nXS engine (@agoric/xsnap), compute units per operation (${n} operations each):`);
  names.forEach((name, i) => {
    const perOp = steps[i * 2 + 1].compute / n;
    if (json) console.log(JSON.stringify({ bench: 'xs: ' + name, ours: perOp, peer: null, ratio: null, unit: 'compute/op' }));
    else console.log(`${name.padEnd(24)} ${perOp.toFixed(1).padStart(8)} compute/op`);
  });
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}
function kib(n: number): string {
  return (n / 1024).toFixed(0) + ' KiB';
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
