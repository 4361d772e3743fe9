#!/usr/bin/env node
// The sensor example built with a Moddable SDK for lin and run headless in
// mcsim against a private mosquitto, through a proxy that SIGKILLs mcsim at
// one step of a wake (power cut): at TCP accept, after CONNECT reached the
// broker, after PUBLISH reached the broker (its PUBACK held back), after the
// PUBACK was handed over. mcsim is started again after each kill (RTC memory
// is gone; the flash partition, a file on lin, stays), and a mosquitto_sub
// counts the readings: every reading the app traced as accepted must arrive.
//
//   MODDABLE=<sdk> PATH=$MODDABLE/build/bin/lin/release:node_modules/.bin:$PATH \
//     node scripts/moddable-mcsim.mjs [--tls | --qos 2] [--rounds N]
//
// --qos 2 builds examples/sensor with QoS 2 readings (config qos=2), adds a kill
// after PUBREL reached the broker (its PUBCOMP held back), kills after the
// PUBCOMP instead of the PUBACK, and fails on any reading received twice.
// --tls runs examples/sensor-tls instead: the proxy terminates TLS (Node's
// tls.createServer, with a throwaway CA and a server certificate for
// "localhost" made by openssl into a temporary directory at each run) and
// forwards plain MQTT to mosquitto, so it still sees every packet; the CA goes
// into the app's build as broker-ca.der (the app checks the proxy's
// certificate and name against it) and is removed from the app folder after the build.
//
// Needs: an SDK with its lin tools built (mcconfig, mcsim; this script builds
// only the app), Xvfb, mosquitto, mosquitto_sub, and openssl for --tls.
// The session is kept in the lin flash stand-in (hosts/moddable/native/lin/flash.ts):
// /tmp/dormouse-flash-dormouse-<FNV-1a of the client id>.bin, started blank. Prints one table row per
// step, the flash bytes per wake from the wake traces and, from the stand-in's
// own counters, what the partition was really asked to write.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync, copyFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
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
const useTls = process.argv.includes('--tls');
const qosAt = process.argv.indexOf('--qos');
const qos = qosAt > 0 && process.argv[qosAt + 1] === '2' ? 2 : 1;
if (useTls && qos === 2) {
  console.error('--qos 2 runs examples/sensor (plain); examples/sensor-tls publishes at QoS 1');
  process.exit(2);
}
const ackType = qos === 2 ? 'PUBREC' : 'PUBACK'; // what answers the PUBLISH
const lastType = qos === 2 ? 'PUBCOMP' : 'PUBACK'; // what ends the exchange
const steps = qos === 2 ? ['accept', 'connect', 'publish', 'pubrel', 'puback'] : ['accept', 'connect', 'publish', 'puback'];
const work = mkdtempSync(join(tmpdir(), 'dormouse-mcsim-'));
// The broker's database and, with --tls, the throwaway keys: gone however the run ends.
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const appName = useTls ? 'sensor-tls' : 'sensor';
const app = join(root, 'hosts/moddable/examples', appName);
const clientId = useTls ? 'mcsim-tls-1' : qos === 2 ? 'mcsim-q2-1' : 'mcsim-1';
// The lin stand-in's partition for this client id (hosts/moddable/dormouse.ts flashPartitionName).
let fnv = 0x811c9dc5;
for (const c of clientId) fnv = Math.imul(fnv ^ c.charCodeAt(0), 0x01000193) >>> 0;
const flashFile = `/tmp/dormouse-flash-dormouse-${fnv.toString(16).padStart(8, '0')}.bin`;
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
};
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
const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(brokerPort), '-V', 'mqttv5', '-q', String(qos), '-t', 'sensors/#'], { stdio: ['ignore', 'pipe', 'inherit'] });
sub.stdout.setEncoding('utf8');
let subBuf = '';
sub.stdout.on('data', (d) => {
  subBuf += d;
  const lines = subBuf.split('\n');
  subBuf = lines.pop();
  received.push(...lines.filter(Boolean));
});

// --tls: a throwaway CA and a server certificate for localhost, made here, never kept.
let tlsOptions = null;
if (useTls) {
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=dormouse mcsim test CA']);
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(work, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext']);
  run('openssl', ['x509', '-in', 'ca.pem', '-outform', 'der', '-out', 'broker-ca.der']);
  // The chain with its CA: Moddable's TLS (modules/crypt/ssl/ssl_cert.js) checks the server name
  // only while walking a chain of two or more certificates; with the leaf alone it refuses the name.
  const chain = Buffer.concat([readFileSync(join(work, 'server.pem')), readFileSync(join(work, 'ca.pem'))]);
  tlsOptions = { key: readFileSync(join(work, 'server.key')), cert: chain, minVersion: 'TLSv1.2' };
  copyFileSync(join(work, 'broker-ca.der'), join(app, 'broker-ca.der')); // the manifest's data (git-ignored), removed after the build
}

// Build the app for lin (the SDK itself must already be built).
try {
  const build = spawnSync('mcconfig', ['-d', '-p', 'lin', 'broker=127.0.0.1', `port=${proxyPort}`, `clientId=${clientId}`, `topic=sensors/${clientId}`, `qos=${qos}`, 'sleepSeconds=2', `awakeSeconds=${useTls ? 8 : 5}`], { cwd: app, stdio: 'inherit' });
  if (build.status !== 0) process.exit(1);
  const make = spawnSync('make', ['-f', join(moddable, `build/tmp/lin/mc/debug/${appName}/makefile`), 'build'], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  if (make.status !== 0) process.exit(1);
} finally {
  if (useTls) rmSync(join(app, 'broker-ca.der'), { force: true });
}
const so = join(moddable, `build/bin/lin/mc/debug/${appName}/mc.so`);
// A blank device: lin's NVS (the preference file) and the flash partition's file.
for (const f of ['/tmp/modpreferences.json', flashFile, `${flashFile}.count`]) rmSync(f, { force: true });

// A display for mcsim.
const display = `:${90 + (process.pid % 50)}`;
const xvfb = spawn('Xvfb', [display, '-screen', '0', '640x480x24'], { stdio: 'ignore' });
await sleep(500);

const accepted = [];
const wakes = [];
let inWake = false; // a reading accepted and its wake not yet traced
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
      if (process.env.MCSIM_TRACE) process.stderr.write(`mcsim: ${line}\n`);
      const a = /dormouse: accepted (.*)$/.exec(line);
      if (a) {
        accepted.push(a[1]);
        inWake = true;
      }
      if (/dormouse: (sleep-ready|window|wifi);/.test(line)) {
        wakes.push(line);
        inWake = false;
      }
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
function relay(device) {
  const up = connect(brokerPort, '127.0.0.1');
  device.on('data', packets((type, p) => {
    up.write(p);
    if (armed === 'connect' && type === 'CONNECT') setTimeout(() => cut('connect'), 30); // CONNECT reached the broker
    else if (armed === 'publish' && type === 'PUBLISH') armed = 'publish-sent';
    else if (armed === 'pubrel' && type === 'PUBREL') armed = 'pubrel-sent';
  }));
  up.on('data', packets((type, p) => {
    if (armed === 'publish-sent' && type === ackType) {
      setTimeout(() => cut('publish'), 30); // PUBLISH at the broker, its PUBACK or PUBREC never handed over
      return;
    }
    if (armed === 'pubrel-sent' && type === 'PUBCOMP') {
      setTimeout(() => cut('pubrel'), 30); // PUBREL at the broker (the message delivered), PUBCOMP never handed over
      return;
    }
    device.write(p);
    if (armed === 'puback' && type === lastType) setTimeout(() => cut('puback'), 5);
  }));
  const end = () => {
    device.destroy();
    up.destroy();
  };
  device.on('error', end).on('close', end);
  up.on('error', end).on('close', end);
}
// Kill at TCP accept: before any byte (for TLS, before the handshake).
const atAccept = (socket) => {
  if (armed !== 'accept') return false;
  socket.destroy();
  cut('accept');
  return true;
};
let proxy;
if (useTls) {
  proxy = createTlsServer(tlsOptions, relay);
  proxy.on('connection', atAccept);
  // A session cache, so the device's RTC-kept TLS session can be resumed as with mosquitto.
  const sessions = new Map();
  proxy.on('newSession', (id, data, done) => (sessions.set(id.toString('hex'), data), done()));
  proxy.on('resumeSession', (id, done) => done(null, sessions.get(id.toString('hex')) ?? null));
  proxy.on('tlsClientError', () => {}); // a handshake cut by a kill
} else {
  proxy = createServer((device) => atAccept(device) || relay(device));
}
await new Promise((r) => proxy.listen(proxyPort, '127.0.0.1', r));

const rows = [];
try {
  startMcsim();
  await sleep(6000); // a couple of undisturbed wakes
  for (let round = 0; round < rounds; round++) {
    for (const step of steps) {
      const before = { accepted: accepted.length };
      const done = new Promise((r) => (cutDone = r));
      armed = step;
      const hit = await Promise.race([done, sleep(20_000).then(() => null)]);
      if (!hit) throw new Error(`the ${step} step was never reached`);
      await sleep(300);
      startMcsim(); // power back
      await sleep(8000); // a few wakes to finish what the cut interrupted
      rows.push({ step, from: before.accepted, to: accepted.length });
    }
  }
  await sleep(3000);
  // Stop between wakes: a kill inside the last wake would be one more power cut with no restart after it.
  for (let i = 0; i < 200 && inWake; i++) await sleep(50);
  if (inWake) throw new Error('the last wake did not finish within 10 s');
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
const count = (list, x) => list.filter((y) => y === x).length;
const flash = wakes.map((w) => /flash (\d+) B in (\d+) (NVS|flash) writes(?:, (\d+) blocks erased)?/.exec(w)).filter(Boolean);
const bytes = flash.reduce((n, m) => n + Number(m[1]), 0);
console.log(`\nmcsim (lin), ${useTls ? 'TLS (terminated by the proxy)' : 'plain'} listener, ${appName}, mosquitto ${brokerPort} via proxy ${proxyPort}`);
// Each cut's row: the readings accepted from its arming until the next one (the cut wake's and the wakes that finished its work).
console.log(`QoS ${qos}`);
console.log('kill at          runs   readings accepted   lost   duplicated');
for (const step of steps) {
  const mine = rows.filter((r) => r.step === step);
  const window = mine.flatMap((r) => accepted.slice(r.from, r.to));
  const label = step === 'puback' ? lastType.toLowerCase() : step;
  console.log(`${label.padEnd(16)} ${String(mine.length).padStart(4)} ${String(window.length).padStart(19)} ${String(window.filter((x) => !payloads.includes(x)).length).padStart(6)} ${String(window.filter((x) => count(payloads, x) > 1).length).padStart(12)}`);
}
const twice = new Set(payloads.filter((x) => count(payloads, x) > 1)).size;
console.log(`\naccepted ${accepted.length}, received ${payloads.length} (readings received more than once${qos === 1 ? ', allowed at QoS 1' : ''}: ${twice}), lost ${lost.length}${lost.length ? ': ' + lost.join(' ') : ''}`);
console.log(`wakes traced ${wakes.length}: flash ${bytes} B in ${flash.reduce((n, m) => n + Number(m[2]), 0)} ${flash[0]?.[3] ?? ''} writes, ${flash.reduce((n, m) => n + Number(m[4] ?? 0), 0)} blocks erased, ${(bytes / Math.max(1, flash.length)).toFixed(1)} B per traced wake (the store's count)`);
// The stand-in's own counters, in the file of this client id's partition: its absence means the
// app kept the session elsewhere (no flash log, or another partition name than dormouse.ts's).
const counted = existsSync(`${flashFile}.count`) && /written (\d+) (\d+) erased (\d+)/.exec(readFileSync(`${flashFile}.count`, 'utf8'));
if (counted) console.log(`flash stand-in's counters (${flashFile}): ${counted[1]} B in ${counted[2]} writes, ${counted[3]} blocks erased over ${accepted.length} readings (cut wakes and restores included): ${(Number(counted[1]) / Math.max(1, accepted.length)).toFixed(1)} B per reading`);
else console.log(`no counters in ${flashFile}.count: the session did not go to the flash stand-in`);
process.exit(lost.length === 0 && counted && (qos === 1 || twice === 0) ? 0 : 1);
