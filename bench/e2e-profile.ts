// One bench:e2e scenario, one library, in a worker process that runs under
// strace -c -f and/or with V8's --cpu-prof / --heap-prof, to see where a
// client's time and system calls go (issue 14):
//   node --import tsx bench/e2e-profile.ts publish|drain QOS ours|peer [--n N] [--strace] [--cpu-prof] [--heap-prof] [--out DIR]
// With --cpu-prof it also prints where the busy time went (self time by category and function).
// Prints the worker's Timing (as bench:e2e measures it) and, with --strace,
// the strace summary of the worker process (all its threads).
// The same worker, broker settings, bundle and driver as bench/e2e.ts.

import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../hosts/node/client.js';
import { startMosquitto } from '../sim/brokers.js';
import { bundle } from './bundle.js';
import { mosquittoPid as pidOf } from './proc-cpu.js';
import { fillBacklog } from './backlog-fill.js';
import type { Command, Lib, Timing } from './e2e-worker.js';

const argv = process.argv.slice(2);
const [what, qosArg, libArg] = argv;
const flag = (f: string) => argv.includes(f);
const opt = (f: string) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };
if ((what !== 'publish' && what !== 'drain') || !['0', '1', '2'].includes(qosArg ?? '') || (libArg !== 'ours' && libArg !== 'peer')) {
  console.error('usage: bench/e2e-profile.ts publish|drain 0|1|2 ours|peer [--n N] [--strace] [--cpu-prof] [--heap-prof] [--out DIR]');
  process.exit(2);
}
const qos = Number(qosArg) as 0 | 1 | 2;
const lib = libArg as Lib;
const n = Number(opt('--n') ?? (what === 'publish' ? [150_000, 40_000, 25_000][qos] : [50_000, 30_000, 10_000][qos]));
const out = path.resolve(opt('--out') ?? '.tmp/profile');
mkdirSync(out, { recursive: true });

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time by category and by function over the window in which the library
 * ran (its first to its last sample: the connection, the run and the end).
 */
function summarize(file: string, marker: string): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inLib = (id: number) => {
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) if (byId.get(x)!.callFrame.url.includes(marker)) return true;
    return false;
  };
  let first = -1;
  let last = -1;
  for (let i = 0; i < p.samples.length; i++) if (inLib(p.samples[i]!)) { if (first < 0) first = i; last = i; }
  const self = new Map<string, number>();
  const cat = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = first; i <= last; i++) {
    const cf = byId.get(p.samples[i]!)!.callFrame;
    const t = p.timeDeltas[i + 1] ?? 0;
    total += t;
    if (cf.functionName === '(idle)') { idle += t; continue; }
    const k = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').pop()}:${cf.lineNumber}`;
    self.set(k, (self.get(k) ?? 0) + t);
    const c = cf.url.includes(marker) ? 'the library\'s JavaScript (with its dependencies)'
      : cf.url.startsWith('node:') ? 'Node\'s JavaScript (streams, events, buffers)'
      : cf.functionName.startsWith('(') ? cf.functionName
      : cf.url === '' ? 'native (V8 builtins, bindings)' : 'other JavaScript (the bench driver)';
    cat.set(c, (cat.get(c) ?? 0) + t);
  }
  const busy = total - idle;
  console.log(`CPU profile ${path.basename(file)}: ${(total / 1000).toFixed(0)} ms from the library's first to last sample, ${(busy / 1000).toFixed(0)} ms busy`);
  for (const [k, t] of [...cat.entries()].sort((a, b) => b[1] - a[1])) console.log(`  ${(100 * t / busy).toFixed(1).padStart(5)} %  ${k}`);
  console.log('  busy time by function (self):');
  for (const [k, t] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`  ${(100 * t / busy).toFixed(1).padStart(5)} %  ${(t / 1000).toFixed(1).padStart(7)} ms  ${k}`);
  }
}

async function main(): Promise<void> {
  const mosq = await startMosquitto({ persistence: false, extraConfig: ['max_queued_messages 100000', 'queue_qos0_messages true'] });
  const host = await bundle('hosts/node/client.ts');
  try {
    const brokerPid = pidOf(mosq);
    let command: Command;
    if (what === 'drain') {
      const clientId = `profile-${lib}-q${qos}`;
      const topic = `profile/${lib}/q${qos}`;
      const c = connect(mosq.url, { clientId, clean: false, reconnectPeriod: 0 });
      await c.subscribe(topic, { qos });
      await c.end();
      await fillBacklog(mosq.url, [topic], qos, n, `${topic}/sentinel`);
      command = { cmd: 'drain', lib, url: mosq.url, version: 4, clientId, n, incomingQos2: Math.min(65535, n + 64), brokerPid };
    } else {
      command = { cmd: 'publish', lib, url: mosq.url, version: 4, qos, n, warm: 5000, window: 20, payloadBytes: 16, brokerPid };
    }
    const node = [
      '--expose-gc',
      ...(flag('--cpu-prof') ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${out}`] : []),
      ...(flag('--heap-prof') ? ['--heap-prof', `--heap-prof-dir=${out}`] : []),
      '--import', 'tsx', fileURLToPath(new URL('./e2e-worker.ts', import.meta.url)),
    ];
    const straceOut = path.join(out, `strace-${what}-q${qos}-${lib}.txt`);
    const [cmd, args] = flag('--strace') ? ['strace', ['-f', '-c', '-o', straceOut, process.execPath, ...node]] : [process.execPath, node];
    const child = spawn(cmd as string, args as string[], {
      env: { ...process.env, DORMOUSE_E2E_PRELOAD: lib, DORMOUSE_E2E_BUNDLE: host.url },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const timing = await new Promise<Timing>((resolve, reject) => {
      child.on('message', (m: { ready?: boolean; ok?: boolean; result?: Timing; error?: string }) => {
        if (m.ready) child.send({ id: 1, command });
        else if (m.ok) resolve(m.result!);
        else reject(new Error(m.error));
      });
      child.on('exit', (code) => reject(new Error(`worker exited (${code})`)));
    });
    // Without its IPC channel the worker has nothing left to do and exits
    // normally, which is when V8 writes the profiles (a signal would lose them).
    const exited = new Promise((r) => child.once('exit', r));
    child.disconnect();
    const timer = setTimeout(() => child.kill(), 10_000);
    await exited;
    clearTimeout(timer);
    console.log(JSON.stringify({ what, qos, lib, n, rate: n / (timing.ms / 1000), cpuUsPerMsg: timing.cpuUs / n, readsPerMsg: timing.readCalls / n, writesPerMsg: timing.writeCalls / n, brokerBusy: timing.brokerCpuMs / timing.ms }));
    if (flag('--strace')) console.log(readFileSync(straceOut, 'utf8'));
    if (flag('--cpu-prof')) {
      // The main thread's profile is the first one written (the second is tsx's loader thread).
      const file = readdirSync(out).filter((f) => f.endsWith('.cpuprofile')).sort()[0];
      // Ours is the bundle (client.mjs); MQTT.js is its package and its dependencies (mqtt-packet, bl, debug, ...).
      if (file) summarize(path.join(out, file), lib === 'ours' ? 'client.mjs' : '/node_modules/');
    }
  } finally {
    host.dispose();
    await mosq.dispose();
  }
}

await main();
process.exit(0);
