// A QoS 2 stream from mosquitto to a Dormouse subscriber at default
// capacities (issue 12 item 8): N messages live (the subscriber is connected
// while they are published) and from a backlog (queued while it was offline),
// MQTT 3.1.1 and 5.0. Counts what the subscriber got: lost, duplicated,
// reconnects, messages held back, and the rate; MQTT.js receives the same
// stream in the same run as the peer.
//
//   node --import tsx bench/qos2-stream.ts [--n 100000] [--only live|backlog] [--version 4|5] [--peer]
//
// QOS2_INCOMING=N sets the subscriber's capacities.incomingQos2 (default: the
// client's default) to see how far ahead the broker sends: `peak ids` is the
// most incoming QoS 2 ids held at once.
//
// The publisher is a Dormouse client at QoS 2 (window 16), payload "#<seq>".
// Against Debian mosquitto on 127.0.0.1, started here with a temp config
// (max_queued_messages raised so a 100,000-message backlog is kept).

import mqtt from 'mqtt';
import { connect, type NodeClient } from '../hosts/node/client.js';
import { findMosquitto, startMosquitto, type MosquittoHandle } from '../sim/brokers.js';

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const N = Number(arg('--n') ?? 100_000);
const only = arg('--only');
const versions: Array<4 | 5> = arg('--version') ? [Number(arg('--version')) as 4 | 5] : [4, 5];
const withPeer = argv.includes('--peer');
/**
 * No message delivered for this long: the stream has ended (or stalled). Long,
 * because after a reconnect mosquitto sends a queued backlog whole before its
 * PUBRELs, and reading it delivers nothing until they come.
 */
const IDLE_MS = 60_000;
/** Most incoming QoS 2 ids the Dormouse subscriber held at once in the current run. */
let peak = 0;

interface Outcome {
  received: number;
  lost: number;
  duplicated: number;
  reconnects: number;
  heldBack: number;
  peak: number;
  errors: string[];
  ms: number;
}

function counter(n: number) {
  const seen = new Uint8Array(n);
  let received = 0;
  let duplicated = 0;
  let last = Date.now();
  return {
    add(payload: Uint8Array): void {
      const k = Number(Buffer.from(payload).toString('latin1').slice(1));
      received++;
      last = Date.now();
      if (seen[k]) duplicated++;
      seen[k] = 1;
    },
    get received() { return received; },
    get duplicated() { return duplicated; },
    get last() { return last; },
    /** The stream starts now: idle time counts from here. */
    start(): void { last = Date.now(); },
    lost(): number {
      let l = 0;
      for (let i = 0; i < n; i++) if (!seen[i]) l++;
      return l;
    },
  };
}

async function publishAll(url: string, version: 4 | 5, topic: string): Promise<void> {
  const pub = connect(url, { clientId: `qos2-pub-${version}`, protocolVersion: version, capacities: { inflight: 16, outbox: 64 } });
  await new Promise<void>((r) => pub.once('connect', () => r()));
  const acks: Array<Promise<void>> = [];
  for (let i = 0; i < N; i++) {
    for (;;) {
      try {
        const { acknowledged } = await pub.publish(topic, `#${i}`, { qos: 2 });
        acks.push(acknowledged);
        break;
      } catch {
        // Outbox full: wait for the oldest acknowledgement.
        await acks.shift();
      }
    }
    if (acks.length >= 48) await acks.shift();
  }
  await Promise.all(acks);
  await pub.end();
}

async function waitDone(c: ReturnType<typeof counter>, t0: number): Promise<number> {
  c.start();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    if (c.received >= N && c.lost() === 0) return Date.now() - t0;
    if (Date.now() - c.last > IDLE_MS) return c.last - t0;
  }
}

function subscriber(url: string, version: 4 | 5, id: string, c: ReturnType<typeof counter>, errors: string[]): NodeClient {
  const sub = connect(url, {
    clientId: id,
    clean: false,
    protocolVersion: version,
    properties: version === 5 ? { sessionExpiryInterval: 3600 } : undefined,
    reconnectPeriod: 100,
    capacities: process.env.QOS2_INCOMING ? { incomingQos2: Number(process.env.QOS2_INCOMING) } : undefined,
  });
  sub.on('message', (_t, payload) => { c.add(payload); peak = Math.max(peak, sub.core.session.incomingHeld); });
  sub.on('error', (e) => errors.push(e.message));
  return sub;
}

async function runDormouse(broker: MosquittoHandle, version: 4 | 5, mode: 'live' | 'backlog'): Promise<Outcome> {
  const topic = `s/${version}/${mode}`;
  const id = `qos2-sub-${version}-${mode}`;
  const c = counter(N);
  const errors: string[] = [];
  let sub = subscriber(broker.url, version, id, c, errors);
  await sub.subscribe(topic, { qos: 2 });
  let t0 = Date.now();
  if (mode === 'backlog') {
    await sub.end();
    await publishAll(broker.url, version, topic);
    t0 = Date.now();
    sub = subscriber(broker.url, version, id, c, errors);
  } else {
    await publishAll(broker.url, version, topic);
  }
  const ms = await waitDone(c, t0);
  const m = sub.metrics();
  await sub.end();
  const most = peak;
  peak = 0;
  return { received: c.received, lost: c.lost(), duplicated: c.duplicated, reconnects: m.reconnects, heldBack: m.heldBack, peak: most, errors, ms };
}

async function runPeer(broker: MosquittoHandle, version: 4 | 5, mode: 'live' | 'backlog'): Promise<Outcome> {
  const topic = `p/${version}/${mode}`;
  const id = `qos2-peer-${version}-${mode}`;
  const c = counter(N);
  const errors: string[] = [];
  let reconnects = 0;
  const open = () => {
    const s = mqtt.connect(broker.url, { clientId: id, clean: false, protocolVersion: version, properties: version === 5 ? { sessionExpiryInterval: 3600 } : undefined, reconnectPeriod: 100 });
    s.on('message', (_t, payload) => c.add(payload));
    s.on('reconnect', () => reconnects++);
    s.on('error', (e) => errors.push(e.message));
    return s;
  };
  let s = open();
  await s.subscribeAsync(topic, { qos: 2 });
  let t0 = Date.now();
  if (mode === 'backlog') {
    await s.endAsync();
    await publishAll(broker.url, version, topic);
    t0 = Date.now();
    s = open();
  } else {
    await publishAll(broker.url, version, topic);
  }
  const ms = await waitDone(c, t0);
  await s.endAsync();
  return { received: c.received, lost: c.lost(), duplicated: c.duplicated, reconnects, heldBack: 0, peak: 0, errors, ms };
}

function line(who: string, version: number, mode: string, o: Outcome, peer?: Outcome): void {
  const rate = Math.round((o.received / o.ms) * 1000);
  const ratio = peer ? `  ratio ${(rate / Math.round((peer.received / peer.ms) * 1000)).toFixed(2)}` : '';
  console.log(
    `${who.padEnd(9)} MQTT ${version === 5 ? '5.0  ' : '3.1.1'} ${mode.padEnd(7)} received ${o.received}/${N}  lost ${o.lost}  duplicated ${o.duplicated}` +
      `  reconnects ${o.reconnects}  heldBack ${o.heldBack}  peak ids ${o.peak}  ${rate} msg/s${ratio}` + (o.errors.length ? `  errors: ${[...new Set(o.errors)].join(' | ')}` : ''),
  );
}

async function main(): Promise<void> {
  if (!findMosquitto()) {
    console.error('qos2-stream: mosquitto is not installed');
    process.exit(2);
  }
  const broker = await startMosquitto({ persistence: false, extraConfig: ['max_queued_messages 200000'] });
  try {
    for (const version of versions) {
      for (const mode of ['live', 'backlog'] as const) {
        if (only && only !== mode) continue;
        const peer = withPeer ? await runPeer(broker, version, mode) : undefined;
        if (peer) line('MQTT.js', version, mode, peer);
        line('Dormouse', version, mode, await runDormouse(broker, version, mode), peer);
      }
    }
  } finally {
    await broker.dispose();
  }
}

await main();
