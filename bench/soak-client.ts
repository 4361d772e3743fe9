// One soak publisher process: a Dormouse client with a persistent session in
// its own session file, publishing numbered QoS 1 and QoS 2 messages to
// soak/INDEX until TARGET are accepted, then waiting until nothing is
// unacknowledged and exiting 0. The soak parent SIGKILLs it at random moments
// and starts it again with the same arguments.
//
//   node --import tsx bench/soak-client.ts --url URL --index I --version 4|5 --dir DIR --target N --seed S [--rate R] [--stop]
//
// Its state between runs is the session file (DIR/pub-I.session.0/.1, the
// core's) and a sidecar DIR/pub-I.counter: `incarnation lastAccepted`, written
// atomically (write a temp file, rename over) AFTER publish() resolves. Every
// start bumps the incarnation and writes it before the first publish.
//
// Each message's payload is `soak-pub-I INCARNATION SEQ QOS`. On stdout, one
// line per accepted message, `A INCARNATION SEQ QOS`, written after the
// sidecar (stdout is a pipe: writes are synchronous on Linux, so a line
// written is a line the parent reads even if a SIGKILL follows).
//
// The window, and why it is harmless: a kill after publish() resolved but
// before the sidecar rename leaves a message in the session that nobody
// claims. The next incarnation numbers from the sidecar, so it reuses that
// sequence number, but with a new incarnation in the payload: the old message
// still arrives (the session resends it) and is counted as an "extra", never
// as a loss or a duplicate.
//
// SIGUSR2 (or --stop): accept nothing more, drain, exit 0.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../hosts/node/client.js';
import { publishErrorMessage } from '../modules/session/client.js';
import { mulberry32 } from '../sim/proxy.js';
import { packetTracer } from './soak-trace.js';

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) {
    console.error(`soak-client: --${name} is required`);
    process.exit(2);
  }
  return v;
}

const url = arg('url');
const index = Number(arg('index'));
const version = Number(arg('version')) === 5 ? 5 : 4;
const dir = arg('dir');
const target = Number(arg('target'));
const seed = Number(arg('seed')) >>> 0;
const rateArg = process.argv.indexOf('--rate');
/** Messages per second, 0 for as fast as the session takes them. */
const rate = rateArg >= 0 ? Number(process.argv[rateArg + 1]) : 0;
let stopping = process.argv.includes('--stop');

const clientId = `soak-pub-${index}`;
const topic = `soak/${index}`;
const counterFile = path.join(dir, `pub-${index}.counter`);
const OUTBOX_FULL = publishErrorMessage(-5); // PublishError.OutboxFull

function readCounter(): [number, number] {
  try {
    const [inc, last] = readFileSync(counterFile, 'utf8').trim().split(' ').map(Number);
    if (Number.isInteger(inc) && Number.isInteger(last)) return [inc!, last!];
  } catch {
    /* first start */
  }
  return [0, 0];
}

function writeCounter(inc: number, last: number): void {
  const tmp = counterFile + '.tmp';
  writeFileSync(tmp, `${inc} ${last}\n`);
  renameSync(tmp, counterFile);
}

let [incarnation, last] = readCounter();
incarnation++;
writeCounter(incarnation, last);
const rand = mulberry32(seed ^ Math.imul(index + 1, 0x9e3779b1) ^ Math.imul(incarnation, 0x85ebca6b));

const client = connect(url, {
  clientId,
  sessionFile: path.join(dir, `pub-${index}.session`),
  protocolVersion: version,
  properties: version === 5 ? { sessionExpiryInterval: 86400 } : undefined,
  // Short keepalive and connect timeout: a stalled (half-open) connection is
  // found in about two keepalives, not minutes.
  keepalive: 2,
  connectTimeout: 3000,
  // Time runs fast here: every backoff is scaled from seconds to tens of ms,
  // the takeover one too. The proxy closes connections right after CONNACK
  // on purpose, which is just what a 3.1.1 takeover looks like: the kick
  // count is off, as the soak counts losses, not takeovers
  // (test/session/takeover.test.ts covers those).
  reconnect: { baseMs: 50, capMs: 1000, resetAfterMs: 2000, takeoverBaseMs: 1000, takeoverCapMs: 2000, kicksForTakeover: 0 },
  random: rand,
  // SOAK_TRACE_DIR: every packet in and out, with payloads (bench/soak-trace.ts).
  trace: process.env.SOAK_TRACE_DIR ? packetTracer(path.join(process.env.SOAK_TRACE_DIR, `trace-pub-${index}.log`), `p${index}.${incarnation}`, version) : undefined,
});
const out = (line: string): void => { process.stdout.write(line + '\n'); };

let connects = 0;
let sessionLost = 0;
client.on('connect', () => { connects++; });
client.on('sessionLost', (e: { republished: number }) => { sessionLost++; out(`L ${e.republished}`); });
// Token 0 is a publish refused for want of room (the catch below waits and
// retries it): nothing accepted was dropped.
client.on('drop', (e: { token: number; reason: number; text: string }) => { if (e.token !== 0) out(`X ${e.token} ${e.text}`); });
client.on('restored', (r: { inflight: number; queued: number }) => out(`R ${incarnation} ${r.inflight} ${r.queued}`));
client.on('error', (e: Error) => out(`E ${e.message}`));
process.on('SIGUSR2', () => { stopping = true; });

/** Resolves on the next acknowledgement or after ms, whichever comes first. */
function ackOrTimeout(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      client.off('acked', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    client.on('acked', done);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  out(`S ${incarnation} ${last}`);
  const started = performance.now();
  let sent = 0;
  while (!stopping && last < target) {
    if (rate > 0) {
      // Paced: message n of this incarnation goes out no earlier than n / rate s after start.
      const due = started + (sent * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (stopping) break;
    }
    const seq = last + 1;
    const qos = rand() < 0.5 ? 1 : 2;
    try {
      await client.publish(topic, `${clientId} ${incarnation} ${seq} ${qos}`, { qos });
    } catch (e) {
      if ((e as Error).message === OUTBOX_FULL) {
        await ackOrTimeout(100);
        continue;
      }
      throw e;
    }
    last = seq;
    sent++;
    writeCounter(incarnation, last);
    out(`A ${incarnation} ${seq} ${qos}`);
  }
  // Drain: everything accepted, in this and earlier incarnations, acknowledged.
  while (client.core.session.live > 0) await ackOrTimeout(200);
  await Promise.race([client.end(), new Promise((r) => setTimeout(r, 3000))]);
  const m = client.metrics();
  out(`D ${incarnation} ${last} ${JSON.stringify({ connects, sessionLost, resent: m.resent, reconnects: m.reconnects, keepaliveTimeouts: m.keepaliveTimeouts, snapshotWrites: m.snapshotWrites })}`);
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(`soak-client ${clientId}: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
