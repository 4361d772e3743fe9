#!/usr/bin/env node
// The sensor example built with a Moddable SDK for lin and run headless in
// mcsim against a private mosquitto, through a proxy that SIGKILLs mcsim at
// one step of a wake (power cut): at TCP accept, after CONNECT reached the
// broker, after PUBLISH reached the broker (its PUBACK held back), after the
// PUBACK was handed over. mcsim is started again after each kill (RTC memory
// is gone; the preference file, lin's NVS, stays), and a mosquitto_sub counts
// the readings: every reading the app traced as accepted must arrive.
//
//   MODDABLE=<sdk> PATH=$MODDABLE/build/bin/lin/release:node_modules/.bin:$PATH \
//     node scripts/moddable-mcsim.mjs [--rounds N]
//
// Needs: an SDK with its lin tools built (mcconfig, mcsim; this script builds
// only the app), Xvfb, mosquitto and mosquitto_sub. Plain MQTT only: the proxy
// names packets by their fixed headers, which TLS hides (see the README for the
// TLS run of examples/sensor-tls).
// Prints one table row per step and the flash bytes per wake from the traces.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const moddable = process.env.MODDABLE;
if (!moddable || !existsSync(join(moddable, 'build/bin/lin/release/mcsim'))) {
  console.error('MODDABLE must name a Moddable SDK whose lin tools (mcconfig, mcsim) are built.');
  process.exit(1);
}
const roundsAt = process.argv.indexOf('--rounds');
const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 1;
const work = mkdtempSync(join(tmpdir(), 'dormouse-mcsim-'));
const app = join(root, 'hosts/moddable/examples/sensor');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const brokerPort = await freePort();
const proxyPort = await freePort();

// mosquitto, persistence on, 127.0.0.1 only.
writeFileSync(join(work, 'mosquitto.conf'), [
  `listener ${brokerPort} 127.0.0.1`, 'allow_anonymous true', 'persistence true', `persistence_location ${work}/`,
  ...(process.getuid?.() === 0 ? ['user root'] : []),
].join('\n') + '\n');
const broker = spawn('mosquitto', ['-c', join(work, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
await sleep(500);

const received = [];
const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(brokerPort), '-V', 'mqttv5', '-q', '1', '-t', 'sensors/#'], { stdio: ['ignore', 'pipe', 'inherit'] });
sub.stdout.setEncoding('utf8');
let subBuf = '';
sub.stdout.on('data', (d) => {
  subBuf += d;
  const lines = subBuf.split('\n');
  subBuf = lines.pop();
  received.push(...lines.filter(Boolean));
});

// Build the app for lin (the SDK itself must already be built).
const build = spawnSync('mcconfig', ['-d', '-p', 'lin', 'broker=127.0.0.1', `port=${proxyPort}`, 'clientId=mcsim-1', 'topic=sensors/mcsim-1', 'sleepSeconds=2', 'awakeSeconds=5'], { cwd: app, stdio: 'inherit' });
if (build.status !== 0) process.exit(1);
const make = spawnSync('make', ['-f', join(moddable, 'build/tmp/lin/mc/debug/sensor/makefile'), 'build'], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
if (make.status !== 0) process.exit(1);
const so = join(moddable, 'build/bin/lin/mc/debug/sensor/mc.so');
rmSync('/tmp/modpreferences.json', { force: true }); // lin's NVS: start from a blank device

// A display for mcsim.
const display = `:${90 + (process.pid % 50)}`;
const xvfb = spawn('Xvfb', [display, '-screen', '0', '640x480x24'], { stdio: 'ignore' });
await sleep(500);

const accepted = [];
const wakes = [];
let mcsim = null;
function startMcsim() {
  const p = spawn('stdbuf', ['-oL', join(moddable, 'build/bin/lin/release/mcsim'), so], { env: { ...process.env, DISPLAY: display }, stdio: ['ignore', 'pipe', 'ignore'] });
  p.stdout.setEncoding('utf8');
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop();
    for (const line of lines) {
      const a = /dormouse: accepted (.*)$/.exec(line);
      if (a) accepted.push(a[1]);
      if (/dormouse: (sleep-ready|window|wifi);/.test(line)) wakes.push(line);
    }
  });
  mcsim = p;
}
function kill() {
  if (mcsim) {
    mcsim.kill('SIGKILL');
    mcsim = null;
  }
}

// The proxy: forwards both ways, names each packet by its fixed header, and cuts where asked.
let armed = null; // 'accept' | 'connect' | 'publish' | 'puback'
let cutDone = null;
const types = ['', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];
function packets(onPacket) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      let len = 0, mul = 1, i = 1;
      for (; i < 5 && i < buf.length; i++) {
        len += (buf[i] & 127) * mul;
        mul *= 128;
        if ((buf[i] & 128) === 0) break;
      }
      if (i >= buf.length || (buf[i] & 128) !== 0) return;
      const total = i + 1 + len;
      if (buf.length < total) return;
      const p = buf.subarray(0, total);
      buf = buf.subarray(total);
      onPacket(types[p[0] >> 4], p);
    }
  };
}
function cut(step) {
  armed = null;
  kill();
  cutDone?.(step);
}
const proxy = createServer((device) => {
  if (armed === 'accept') {
    device.destroy();
    return cut('accept');
  }
  const up = connect(brokerPort, '127.0.0.1');
  device.on('data', packets((type, p) => {
    up.write(p);
    if ((armed === 'connect' && type === 'CONNECT') || (armed === 'publish' && type === 'PUBLISH')) {
      if (armed === 'connect') setTimeout(() => cut('connect'), 30); // CONNECT reached the broker
      else armed = 'publish-sent';
    }
  }));
  up.on('data', packets((type, p) => {
    if (armed === 'publish-sent' && type === 'PUBACK') {
      setTimeout(() => cut('publish'), 30); // PUBLISH at the broker, PUBACK never handed over
      return;
    }
    device.write(p);
    if (armed === 'puback' && type === 'PUBACK') setTimeout(() => cut('puback'), 5);
  }));
  const end = () => {
    device.destroy();
    up.destroy();
  };
  device.on('error', end).on('close', end);
  up.on('error', end).on('close', end);
});
await new Promise((r) => proxy.listen(proxyPort, '127.0.0.1', r));

const rows = [];
try {
  startMcsim();
  await sleep(6000); // a couple of undisturbed wakes
  for (let round = 0; round < rounds; round++) {
    for (const step of ['accept', 'connect', 'publish', 'puback']) {
      const before = { accepted: accepted.length };
      const done = new Promise((r) => (cutDone = r));
      armed = step;
      const hit = await Promise.race([done, sleep(20_000).then(() => null)]);
      if (!hit) throw new Error(`the ${step} step was never reached`);
      await sleep(300);
      startMcsim(); // power back
      await sleep(8000); // a few wakes to finish what the cut interrupted
      rows.push({ step, acceptedSoFar: accepted.length, newSinceCut: accepted.length - before.accepted });
    }
  }
  await sleep(3000);
} finally {
  kill();
  proxy.close();
  await sleep(1500);
  sub.kill('SIGTERM');
  const brokerGone = new Promise((r) => broker.on('exit', r));
  broker.kill('SIGTERM');
  xvfb.kill('SIGTERM');
  await brokerGone;
}

const payloads = received.map((l) => l.trim());
const lost = accepted.filter((r) => !payloads.includes(r));
const flash = wakes.map((w) => /flash (\d+) B in (\d+) NVS writes/.exec(w)).filter(Boolean);
const bytes = flash.reduce((n, m) => n + Number(m[1]), 0);
console.log(`\nmcsim (lin), plain listener, mosquitto ${brokerPort} via proxy ${proxyPort}`);
console.log('kill at                        readings accepted so far   lost so far');
for (const r of rows) console.log(`${r.step.padEnd(30)} ${String(r.acceptedSoFar).padStart(10)} ${String(accepted.slice(0, r.acceptedSoFar).filter((x) => !payloads.includes(x)).length).padStart(14)}`);
console.log(`\naccepted ${accepted.length}, received ${payloads.length} (duplicates allowed at QoS 1: ${payloads.length - new Set(payloads).size}), lost ${lost.length}${lost.length ? ': ' + lost.join(' ') : ''}`);
console.log(`wakes traced ${wakes.length}, flash ${bytes} B in ${flash.reduce((n, m) => n + Number(m[2]), 0)} NVS writes, ${(bytes / Math.max(1, flash.length)).toFixed(1)} B per wake`);
rmSync(work, { recursive: true, force: true });
process.exit(lost.length === 0 ? 0 : 1);
