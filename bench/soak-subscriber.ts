// The soak subscriber process: a Dormouse client (or MQTT.js, --client mqttjs) with its own persistent
// session (clientId soak-sub, clean: false), a QoS 2 subscription to soak/#,
// reporting every message on stdout as `M QOS DUP PAYLOAD` (batched; this
// process is never killed, so nothing batched is lost).
//
//   node --import tsx bench/soak-subscriber.ts --url URL --dir DIR [--version 4|5] [--client dormouse|mqttjs]
//
// It is not SIGKILLed on purpose: a QoS 2 receiver that crashes after it
// recorded the packet id but before the application handled the message loses
// that message by design of exactly-once (the resend is recognised and not
// delivered again); only an application that commits its own work together
// with the session could tell. The publishers are where crashes are tested.
//
// SIGUSR2: flush, print `Z METRICS_JSON`, end the session cleanly, exit 0.
// Other lines: `S GRANTED` once subscribed, `C SESSION_PRESENT IDS_HELD` per
// connect, `E MESSAGE` per 'error' event. SOAK_TRACE=FILE (Dormouse client
// only) logs every packet the broker sends and the incoming QoS 2 ids held.

import path from 'node:path';
import mqtt from 'mqtt';
import { connect } from '../hosts/node/client.js';
import { packetTracer } from './soak-trace.js';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) {
    console.error(`soak-subscriber: --${name} is required`);
    process.exit(2);
  }
  return v;
}

const url = arg('url');
const dir = arg('dir');
const version = Number(arg('version', '5')) === 4 ? 4 : 5;

const useMqttJs = arg('client', 'dormouse') === 'mqttjs';

let pending: string[] = [];
let flushQueued = false;
const flush = (): void => {
  flushQueued = false;
  if (pending.length === 0) return;
  const text = pending.join('\n') + '\n';
  pending = [];
  process.stdout.write(text);
};
const onMessage = (payload: Uint8Array, qos: number, dup: boolean): void => {
  pending.push(`M ${qos} ${dup ? 1 : 0} ${Buffer.from(payload).toString('utf8')}`);
  if (!flushQueued) {
    flushQueued = true;
    setTimeout(flush, 20);
  }
};
let connects = 0;
const onConnect = (sessionPresent: boolean, held: number): void => {
  connects++;
  pending.push(`C ${sessionPresent ? 1 : 0} ${held}`);
};
const onError = (e: Error): void => { pending.push(`E ${e.message}`); };

const client = useMqttJs ? null : connect(url, {
  clientId: 'soak-sub',
  sessionFile: path.join(dir, 'sub.session'),
  protocolVersion: version,
  properties: version === 5 ? { sessionExpiryInterval: 86400 } : undefined,
  keepalive: 2,
  connectTimeout: 3000,
  // Time runs fast here: every backoff is scaled from seconds to tens of ms,
  // the takeover one too. The proxy closes connections right after CONNACK
  // on purpose, which is just what a 3.1.1 takeover looks like: the kick
  // count is off, as the soak counts losses, not takeovers
  // (test/session/takeover.test.ts covers those).
  reconnect: { baseMs: 50, capMs: 1000, resetAfterMs: 2000, takeoverBaseMs: 1000, takeoverCapMs: 2000, kicksForTakeover: 0 },
  // Room for far more incoming QoS 2 ids than mosquitto keeps in flight
  // (max_inflight_messages 32). A small table makes the core hold messages
  // back and reconnect: see test/soak/incoming-qos2-full.test.ts.
  capacities: { incomingQos2: 1024 },
  // mosquitto 2.0 re-sends a PUBLISH after its PUBREL when a connection dies
  // right behind CONNECT (bench/soak-mosquitto-pubrel.ts): the guard keeps
  // such a replay from being delivered twice. SOAK_NO_GUARD=1 turns it off.
  guardReplayAfterPubrel: process.env.SOAK_NO_GUARD !== '1',
  // SOAK_TRACE_DIR: every packet in and out, with payloads (bench/soak-trace.ts).
  trace: process.env.SOAK_TRACE_DIR ? packetTracer(path.join(process.env.SOAK_TRACE_DIR, 'trace-sub.log'), 'sub', version) : undefined,
});
// MQTT.js as the alternative subscriber (--client mqttjs): its incoming QoS 2
// store is in memory, which is enough for a process that is never killed.
const peer = useMqttJs
  ? mqtt.connect(url, {
      clientId: 'soak-sub',
      clean: false,
      protocolVersion: version,
      properties: version === 5 ? { sessionExpiryInterval: 86400 } : undefined,
      keepalive: 2,
      connectTimeout: 3000,
      reconnectPeriod: 100,
    })
  : null;

let sessionLost = 0;
if (client) {
  client.on('connect', (c: { sessionPresent: boolean }) => onConnect(c.sessionPresent, client.core.session.incomingCount));
  client.on('sessionLost', () => { sessionLost++; });
  client.on('error', onError);
  client.on('message', (_topic: string, payload: Buffer, packet: { qos: number; dup: boolean }) => onMessage(payload, packet.qos, packet.dup));
}
if (peer) {
  peer.on('connect', (c) => onConnect(c.sessionPresent, 0));
  peer.on('error', onError);
  peer.on('message', (_topic, payload, packet) => onMessage(payload, packet.qos, packet.dup));
}

process.on('SIGUSR2', () => {
  flush();
  const m = client ? client.metrics() : {};
  const held = client ? client.core.session.incomingCount : 0;
  process.stdout.write(`Z ${JSON.stringify({ connects, sessionLost, received: m.received, duplicatesSuppressed: m.duplicatesSuppressed, reconnects: m.reconnects, keepaliveTimeouts: m.keepaliveTimeouts, protocolErrors: m.protocolErrors, incomingQos2Held: held })}\n`);
  const ended = client ? client.end() : new Promise<void>((r) => peer!.end(false, {}, () => r()));
  void Promise.race([ended, new Promise((r) => setTimeout(r, 3000))]).then(() => process.exit(0));
});

const subscribed: Promise<Array<{ topic: string; qos: number }>> = client
  ? client.subscribe('soak/#', { qos: 2 })
  : peer!.subscribeAsync('soak/#', { qos: 2 }).then((g) => g.map((x) => ({ topic: x.topic, qos: x.qos })));
subscribed
  .then((granted) => {
    flush();
    process.stdout.write(`S ${granted.map((g) => g.qos).join(',')}\n`);
  })
  .catch((e: unknown) => {
    console.error(`soak-subscriber: subscribe failed: ${String(e)}`);
    process.exit(1);
  });

// ---- debug: SOAK_TRACE=FILE logs every packet the broker sends and the ids held after it
if (process.env.SOAK_TRACE && client) {
  const { appendFileSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const mp = createRequire(import.meta.url)('mqtt-packet');
  let parser = mp.parser({ protocolVersion: version });
  let conn = 0;
  const file = process.env.SOAK_TRACE;
  const core = client.core;
  const receive = core.receive.bind(core);
  const held = (): string => {
    const ids: number[] = [];
    core.session.incomingIds(ids);
    return ids.join(',');
  };
  client.on('connect', () => appendFileSync(file, `--- connect, held [${held()}]\n`));
  client.on('close', () => { conn++; parser = mp.parser({ protocolVersion: version }); appendFileSync(file, `--- close\n`); });
  core.receive = (chunk: Uint8Array, now: number) => {
    const lines: string[] = [];
    parser.removeAllListeners('packet');
    parser.on('packet', (p: { cmd: string; messageId?: number; dup?: boolean; qos?: number }) => lines.push(`${conn} <- ${p.cmd} ${p.messageId ?? ''}${p.dup ? ' dup' : ''} q${p.qos ?? ''}`));
    parser.parse(Buffer.from(chunk));
    const r = receive(chunk, now);
    appendFileSync(file, lines.join('\n') + `\n   held ${core.session.incomingCount}\n`);
    return r;
  };
}
