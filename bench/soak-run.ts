// The fault soak against a real broker, as a function: bench/soak.ts (the CLI)
// and test/soak/soak.test.ts (a short run in the suite) both call runSoak().
//
// Layout, all on 127.0.0.1:
//
//   K publisher processes ──> FaultProxy "pub" ──┐
//   (bench/soak-client.ts)                       ├──> mosquitto (persistence on)
//   subscriber process ─────> FaultProxy "sub" ──┘
//   (bench/soak-subscriber.ts)
//
// While the fault phase runs, seeded from one seed:
// - both proxies cut (before or after the packet) and stall connections at
//   random handshake steps: CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP;
// - one-shot cuts are armed at a named step now and then (the nth CONNECT,
//   CONNACK, PUBREL, ... in a given direction), so every step is hit even where
//   the per-packet chance rarely lands (CONNECT and CONNACK are few);
// - partitions (refuse or blackhole) on one proxy or both, for up to a few seconds;
// - publisher processes are SIGKILLed at random moments and started again
//   with the same session file;
// - mosquitto is restarted with SIGTERM (it saves its database on SIGTERM;
//   with the default autosave_interval it saves nothing in between, so a
//   SIGKILL would roll it back to its last save: that is a broker losing
//   state, not a restart, and is not what this measures).
// Then: heal, let every publisher drain (exit 0 once all it accepted is
// acknowledged; killed ones are started again), wait until the subscriber has
// everything, and compare what was accepted with what was delivered.
//
// SOAK_DEBUG=1 also logs the subscriber's connects and errors as they happen.
//
// The accounting: a message is ACCEPTED when its publisher printed `A` (after
// publish() resolved and the counter sidecar was written). LOST: accepted,
// never delivered. DUPLICATED: a QoS 2 message delivered more than once (a
// failure) or a QoS 1 message delivered more than once (allowed, counted).
// EXTRA: delivered but never claimed as accepted (a publisher killed between
// publish() resolving and its record of it: harmless, see soak-client.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startMosquitto, type MosquittoHandle } from '../sim/brokers.js';
import { FaultProxy, PacketType, mulberry32, type Direction } from '../sim/proxy.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CLIENT = path.join(HERE, 'soak-client.ts');
const SUBSCRIBER = path.join(HERE, 'soak-subscriber.ts');

export interface SoakOptions {
  seed: number;
  /** Publisher processes (soak-pub-0 .. K-1; even ones MQTT 5, odd ones 3.1.1). */
  publishers: number;
  /** Messages each publisher must get accepted. */
  messagesPerPublisher: number;
  /** Messages per second per publisher; 0 for as fast as the session takes them. */
  ratePerPublisher: number;
  /** Upper bound of the fault phase, s; publishers are told to stop accepting when it ends. */
  faultSeconds: number;
  /** Upper bound of the drain (publishers finishing and the subscriber catching up), s. */
  drainSeconds: number;
  /** Mean time between publisher kills, ms (exponential); 0: no kills. */
  killMeanMs: number;
  /** Broker restarts, spread evenly over the publishing progress. */
  brokerRestarts: number;
  /** Mean time between partitions, ms; 0: none. */
  partitionMeanMs: number;
  /** Mean time between armed one-shot cuts at a named step, ms; 0: none. */
  namedCutMeanMs: number;
  /** Per-packet chances on the publishers' proxy and on the subscriber's. */
  pubCutProbability: number;
  pubStallProbability: number;
  subCutProbability: number;
  subStallProbability: number;
  /** MQTT version of the subscriber (default 5). */
  subscriberVersion?: 4 | 5;
  /** The subscriber's client: Dormouse (default) or MQTT.js. */
  subscriberClient?: 'dormouse' | 'mqttjs';
  /** Progress lines go here (default: nowhere). */
  log?: (line: string) => void;
  /** Progress line every this many ms (default 10000). */
  progressMs?: number;
  /** Keep the temp directory (sessions, counters, mosquitto log and database). */
  keepDir?: boolean;
  /** Publishers' MQTT version: 'mixed' (default: even 5, odd 3.1.1), or all 4, or all 5. */
  publisherVersion?: 'mixed' | 4 | 5;
  /** mosquitto's max_inflight_messages (default 32). */
  maxInflight?: number;
  /** Turn the proxies' random per-packet cuts and stalls off (partitions and named cuts have their own means). */
  noProxyFaults?: boolean;
  /**
   * Tracing: mosquitto with `log_type all` (every packet, with its message id, in DIR/mosquitto.log)
   * and every child writing DIR/trace-pub-I.log / trace-sub.log (bench/soak-trace.ts). Logs are
   * large: bound the run. Implies keepDir.
   */
  trace?: boolean;
}

export interface SoakResult {
  ok: boolean;
  /** Why ok is false, one line each. */
  failures: string[];
  seed: number;
  dir: string;
  subscriberClient: string;
  elapsedMs: number;
  faultPhaseMs: number;
  accepted: number;
  acceptedQos1: number;
  acceptedQos2: number;
  /** Accepted messages delivered at least once. */
  delivered: number;
  deliveries: number;
  lost: number;
  lostQos1: number;
  lostQos2: number;
  /** QoS 2 messages delivered more than once (accepted or extra). */
  duplicatedQos2: number;
  /** Extra deliveries of QoS 1 messages (allowed). */
  duplicateDeliveriesQos1: number;
  /** Delivered, never claimed as accepted (the kill window). */
  extras: number;
  /** First deliveries, per publisher and QoS, whose sequence number is below one already delivered. */
  outOfOrder: number;
  /** Deliveries whose QoS is not the one published. */
  qosMismatches: number;
  messagesPerSecond: number;
  kills: number;
  publisherStarts: number;
  publisherCrashes: number;
  brokerRestarts: number;
  partitions: number;
  namedCutsArmed: number;
  proxy: {
    cuts: number;
    stalls: number;
    refused: number;
    cutsByStep: Record<string, number>;
    stallsByStep: Record<string, number>;
  };
  publisherMetrics: Record<string, number>;
  subscriberMetrics: Record<string, number>;
  /** 'error' events of the clients, by message (digits replaced by N). */
  publisherErrors: Record<string, number>;
  subscriberErrors: Record<string, number>;
  /** A few lost / duplicated keys (publisher incarnation seq), for a failure message. */
  examples: { lost: string[]; duplicatedQos2: string[] };
  /** For the first QoS 2 duplicates: when each copy came and the faults around it. */
  duplicateTimelines: string[];
  /**
   * With `trace`: what mosquitto's log shows about the subscriber's QoS 2 flows. A PUBLISH
   * re-sent after its PUBREL breaks exactly-once at the broker (MQTT 4.3.3 sender rules): mosquitto
   * 2.0.11 does it when a connection dies between the CONNECT and the PUBREL it owes
   * (see bench/soak-mosquitto-pubrel.ts). Undefined without `trace`.
   */
  brokerLog?: { publishAfterPubrel: number; examples: string[] };
}

/** Scan mosquitto's `log_type all` log for QoS 2 PUBLISHes to `clientId` re-sent after their PUBREL. */
export function scanBrokerLog(text: string, clientId: string): { publishAfterPubrel: number; examples: string[] } {
  const owed = new Set<number>(); // ids whose PUBREL mosquitto has sent and whose PUBCOMP it has not received
  const examples: string[] = [];
  let n = 0;
  const pubrel = `Sending PUBREL to ${clientId} (m`;
  const pubcomp = `Received PUBCOMP from ${clientId} (Mid: `;
  const publish = `Sending PUBLISH to ${clientId} (d`;
  for (const line of text.split('\n')) {
    let k = line.indexOf(pubrel);
    if (k >= 0) { owed.add(parseInt(line.slice(k + pubrel.length), 10)); continue; }
    k = line.indexOf(pubcomp);
    if (k >= 0) { owed.delete(parseInt(line.slice(k + pubcomp.length), 10)); continue; }
    k = line.indexOf(publish);
    if (k >= 0) {
      const m = /\(d(\d), q2, r\d, m(\d+),/.exec(line.slice(k));
      if (m && owed.delete(Number(m[2]))) {
        n++;
        if (examples.length < 5) examples.push(line.trim());
      }
    }
  }
  return { publishAfterPubrel: n, examples };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Publisher {
  index: number;
  version: 4 | 5;
  child: ChildProcess | null;
  /** Printed D and exited 0. */
  done: boolean;
  /** Accepted count (A lines) over all incarnations. */
  accepted: number;
  killedByUs: boolean;
  /** This incarnation printed its S line: its SIGUSR2 handler is installed (before that, SIGUSR2 would kill it). */
  ready: boolean;
  restartTimer: NodeJS.Timeout | null;
  stderr: string;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? (() => {});
  const rand = mulberry32(o.seed ^ 0x50a4);
  const exp = (mean: number): number => -Math.log(1 - rand()) * mean;
  const dir = mkdtempSync(path.join(tmpdir(), 'dormouse-soak-'));
  const childEnv = o.trace ? { ...process.env, SOAK_TRACE_DIR: dir } : process.env;
  const failures: string[] = [];
  const t0 = Date.now();

  // ---- accounting
  const accepted = new Map<string, number>(); // "i inc seq" -> qos
  const deliveries = new Map<string, number>(); // "i inc seq" -> times delivered
  const deliveredQos = new Map<string, number>(); // "i inc seq" -> qos in the payload
  // MQTT orders messages per topic and QoS [MQTT-4.6.0-6]: a QoS 1 message may overtake a QoS 2 one.
  const maxSeq: number[] = new Array<number>(o.publishers * 3).fill(0);
  let deliveredAccepted = 0;
  let deliveryCount = 0;
  let outOfOrder = 0;
  let qosMismatches = 0;
  let lastDeliveryAt = Date.now();
  const publisherMetrics: Record<string, number> = {};
  let subscriberMetrics: Record<string, number> = {};
  const publisherErrors: Record<string, number> = {};
  const subscriberErrors: Record<string, number> = {};
  const countError = (into: Record<string, number>, text: string): void => {
    const k = text.replace(/\d+/g, 'N');
    into[k] = (into[k] ?? 0) + 1;
  };
  let kills = 0;
  let starts = 0;
  let crashes = 0;
  let brokerRestarts = 0;
  let partitions = 0;
  let namedCuts = 0;

  const onAccepted = (i: number, inc: number, seq: number, qos: number): void => {
    const key = `${i} ${inc} ${seq}`;
    if (accepted.has(key)) failures.push(`publisher ${i} claimed ${key} twice`);
    accepted.set(key, qos);
    if (deliveries.has(key)) deliveredAccepted++;
  };
  // For explaining a duplicate: when each message was first delivered, and a timeline of the faults.
  const firstAt = new Map<string, number>();
  const timeline: Array<[number, string]> = [];
  const mark = (what: string): void => { timeline.push([Date.now() - t0, what]); };
  const dupDetails: string[] = [];
  const onDelivered = (qos: number, dupFlag: number, payload: string): void => {
    // payload: soak-pub-I INC SEQ QOS
    const parts = payload.split(' ');
    const i = Number(parts[0]!.slice('soak-pub-'.length));
    const key = `${i} ${parts[1]} ${parts[2]}`;
    const seq = Number(parts[2]);
    const pubQos = Number(parts[3]);
    deliveryCount++;
    lastDeliveryAt = Date.now();
    if (qos !== pubQos) qosMismatches++;
    const n = deliveries.get(key) ?? 0;
    deliveries.set(key, n + 1);
    if (n === 1 && pubQos === 2 && dupDetails.length < 20) {
      const t1 = firstAt.get(key)!;
      const t2 = Date.now() - t0;
      const near = timeline.filter(([t]) => t >= t1 - 3000 && t <= t2 + 1000).map(([t, w]) => `${(t / 1000).toFixed(2)} ${w}`);
      dupDetails.push(`${key}: first at ${(t1 / 1000).toFixed(2)} s, again at ${(t2 / 1000).toFixed(2)} s (DUP flag ${dupFlag}); around: ${near.join('; ') || 'nothing'}`);
    }
    if (n === 0) {
      firstAt.set(key, Date.now() - t0);
      deliveredQos.set(key, pubQos);
      if (accepted.has(key)) deliveredAccepted++;
      const k = i * 3 + pubQos;
      if (seq < maxSeq[k]!) outOfOrder++;
      else maxSeq[k] = seq;
    }
  };

  // ---- broker and proxies
  let mosq: MosquittoHandle | null = null;
  let pubProxy: FaultProxy | null = null;
  let subProxy: FaultProxy | null = null;
  let subscriber: ChildProcess | null = null;
  const pubs: Publisher[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let faulting = false;
  let stopping = false;
  /** The run is over: a publisher that exits now (killAll) is not started again. */
  let shutDown = false;
  let brokerBusy: Promise<void> = Promise.resolve();

  const killAll = (): void => {
    for (const p of pubs) {
      if (p.restartTimer) clearTimeout(p.restartTimer);
      p.child?.kill('SIGKILL');
    }
    subscriber?.kill('SIGKILL');
  };
  process.once('exit', killAll);

  try {
    mosq = await startMosquitto({
      dir,
      extraConfig: [
        // The subscriber may fall behind, and it is offline during cuts: keep
        // every QoS 1/2 message for it (the default 1000 would drop the rest).
        'max_queued_messages 1000000',
        `max_inflight_messages ${o.maxInflight ?? 32}`,
        ...(o.trace ? ['log_type all'] : []),
      ],
    });
    pubProxy = await FaultProxy.start({ targetPort: mosq.port, seed: o.seed });
    subProxy = await FaultProxy.start({ targetPort: mosq.port, seed: o.seed + 1 });
    log(`soak: t0 ${t0} (wall ms), seed ${o.seed}, ${o.publishers} publishers x ${o.messagesPerPublisher} messages, mosquitto on ${mosq.port}, dir ${dir}`);

    // ---- subscriber first: its subscription must exist before anything is published
    let subReady!: () => void;
    const ready = new Promise<void>((r) => (subReady = r));
    let subExit!: () => void;
    const subExited = new Promise<void>((r) => (subExit = r));
    let subStderr = '';
    subscriber = spawn(process.execPath, ['--import', 'tsx', SUBSCRIBER, '--url', subProxy.url, '--dir', dir, '--version', String(o.subscriberVersion ?? 5), '--client', o.subscriberClient ?? 'dormouse'], {
      cwd: ROOT,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    subscriber.stderr!.setEncoding('utf8').on('data', (d: string) => { subStderr += d; });
    subscriber.once('exit', (code) => {
      if (code !== 0) failures.push(`subscriber exited with ${code}: ${subStderr.slice(-2000)}`);
      subExit();
      subReady();
    });
    createInterface({ input: subscriber.stdout! }).on('line', (line) => {
      const c = line.charCodeAt(0);
      if (c === 77 /* M */) {
        // M QOS DUP PAYLOAD
        onDelivered(line.charCodeAt(2) - 48, line.charCodeAt(4) - 48, line.slice(6));
      } else if (c === 83 /* S */) {
        if (line !== 'S 2') failures.push(`subscriber granted ${line.slice(2)}, not QoS 2`);
        subReady();
      } else if (c === 69 /* E */) {
        countError(subscriberErrors, line.slice(2));
        if (process.env.SOAK_DEBUG) log(`    sub ${line} (t ${Date.now() - t0} ms, broker restarts ${brokerRestarts})`);
      } else if (c === 67 /* C */) {
        mark(`subscriber connected (session present ${line[2]})`);
        if (process.env.SOAK_DEBUG) log(`    sub ${line} (t ${Date.now() - t0} ms, broker restarts ${brokerRestarts})`);
      } else if (c === 90 /* Z */) {
        subscriberMetrics = JSON.parse(line.slice(2)) as Record<string, number>;
      }
    });
    await ready;
    if (failures.length) throw new Error(failures.join('\n'));

    // ---- publishers
    const startPublisher = (p: Publisher): void => {
      p.restartTimer = null;
      if (p.done || shutDown) return;
      p.killedByUs = false;
      p.ready = false;
      starts++;
      const args = [
        '--import', 'tsx', CLIENT,
        '--url', pubProxy!.url, '--index', String(p.index), '--version', String(p.version), '--dir', dir,
        '--target', String(o.messagesPerPublisher), '--seed', String(o.seed), '--rate', String(o.ratePerPublisher),
      ];
      if (stopping) args.push('--stop');
      const child = spawn(process.execPath, args, { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      p.child = child;
      child.stderr!.setEncoding('utf8').on('data', (d: string) => { p.stderr = (p.stderr + d).slice(-4000); });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.startsWith('S ')) {
          p.ready = true;
          // Told to stop while it was still loading: tell it now.
          if (stopping) child.kill('SIGUSR2');
        } else if (line.startsWith('R ')) {
          mark(`publisher ${p.index} restored (incarnation inflight queued: ${line.slice(2)})`);
        } else if (line.charCodeAt(0) === 65 /* A */) {
          const [, inc, seq, qos] = line.split(' ');
          p.accepted++;
          onAccepted(p.index, Number(inc), Number(seq), Number(qos));
        } else if (line.startsWith('D ')) {
          const m = JSON.parse(line.slice(line.indexOf('{'))) as Record<string, number>;
          for (const [k, v] of Object.entries(m)) publisherMetrics[k] = (publisherMetrics[k] ?? 0) + v;
        } else if (line.startsWith('E ')) {
          countError(publisherErrors, line.slice(2));
        } else if (line.startsWith('X ') || line.startsWith('L ')) {
          // A drop or a lost session: never expected here.
          failures.push(`publisher ${p.index}: ${line}`);
        }
      });
      child.once('exit', (code, signal) => {
        if (p.child === child) p.child = null;
        if (code === 0) {
          p.done = true;
          return;
        }
        if (!(p.killedByUs && signal === 'SIGKILL')) {
          crashes++;
          failures.push(`publisher ${p.index} exited with ${code ?? signal}: ${p.stderr.slice(-1500)}`);
        }
        // Killed (or crashed): start it again, soon.
        if (!p.restartTimer) p.restartTimer = setTimeout(() => startPublisher(p), faulting ? 50 + rand() * 1000 : 50);
      });
    };
    for (let i = 0; i < o.publishers; i++) {
      const p: Publisher = { index: i, version: o.publisherVersion === 4 || o.publisherVersion === 5 ? o.publisherVersion : i % 2 === 0 ? 5 : 4, child: null, done: false, accepted: 0, killedByUs: false, ready: false, restartTimer: null, stderr: '' };
      pubs.push(p);
      startPublisher(p);
    }

    // ---- faults
    faulting = true;
    const faultStart = Date.now();
    const HANDSHAKE = [PacketType.CONNACK, PacketType.PUBLISH, PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP];
    if (!o.noProxyFaults) {
      pubProxy.randomFaults({ seed: o.seed, cutProbability: o.pubCutProbability, stallProbability: o.pubStallProbability, types: HANDSHAKE });
      subProxy.randomFaults({ seed: o.seed + 1, cutProbability: o.subCutProbability, stallProbability: o.subStallProbability, types: HANDSHAKE });
    }

    const every = (meanMs: number, fn: () => void): void => {
      if (!(meanMs > 0)) return;
      const arm = (): void => {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!faulting) return;
          fn();
          arm();
        }, exp(meanMs));
        timers.add(t);
      };
      arm();
    };
    every(o.killMeanMs, () => {
      const alive = pubs.filter((p) => p.child && !p.done && !p.killedByUs);
      if (alive.length === 0) return;
      const p = alive[Math.floor(rand() * alive.length)]!;
      p.killedByUs = true;
      kills++;
      mark(`kill publisher ${p.index}`);
      p.child!.kill('SIGKILL');
    });
    every(o.partitionMeanMs, () => {
      const ms = 200 + rand() * 2300;
      const mode = rand() < 0.5 ? 'refuse' : 'blackhole';
      const which = rand();
      if (which < 0.7 || which >= 0.9) pubProxy!.partition(ms, mode);
      if (which >= 0.7) subProxy!.partition(ms, mode);
      partitions++;
    });
    const NAMED: ReadonlyArray<[Direction, number]> = [
      ['c2s', PacketType.CONNECT], ['s2c', PacketType.CONNACK], ['c2s', PacketType.PUBLISH], ['s2c', PacketType.PUBLISH],
      ['s2c', PacketType.PUBACK], ['c2s', PacketType.PUBACK], ['s2c', PacketType.PUBREC], ['c2s', PacketType.PUBREC],
      ['c2s', PacketType.PUBREL], ['s2c', PacketType.PUBREL], ['s2c', PacketType.PUBCOMP], ['c2s', PacketType.PUBCOMP],
    ];
    every(o.namedCutMeanMs, () => {
      const [dir, type] = NAMED[Math.floor(rand() * NAMED.length)]!;
      // PUBLISH and PUBREL go from a message's sender, the other acks back to it:
      // on the publishers' proxy senders are clients (c2s), on the subscriber's the broker (s2c).
      const fromSender = type === PacketType.PUBLISH || type === PacketType.PUBREL;
      const onPubProxy = type === PacketType.CONNECT || type === PacketType.CONNACK ? rand() < 0.8 : fromSender === (dir === 'c2s');
      const proxy = onPubProxy ? pubProxy! : subProxy!;
      proxy.cutAfter(dir, type, 1 + Math.floor(rand() * 3), { before: rand() < 0.5, reset: rand() < 0.3 });
      namedCuts++;
    });

    const totalTarget = o.publishers * o.messagesPerPublisher;
    const totalAccepted = (): number => pubs.reduce((s, p) => s + p.accepted, 0);
    let nextRestart = 1;
    const restartBroker = async (): Promise<void> => {
      mark('broker SIGTERM');
      await mosq!.stop(); // SIGTERM: mosquitto writes its database and exits
      await sleep(100 + rand() * 1400); // down for a while: clients back off and retry
      await mosq!.restart();
      mark('broker up again');
      brokerRestarts++;
    };

    // ---- the fault phase: until every publisher has its target accepted, or the time bound
    const faultDeadline = faultStart + o.faultSeconds * 1000;
    const progressMs = o.progressMs ?? 10_000;
    let nextProgress = Date.now() + progressMs;
    const progress = (phase: string): void => {
      const pc = pubProxy!.counters;
      const sc = subProxy!.counters;
      log(
        `  ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s ${phase}: accepted ${accepted.size}, delivered ${deliveredAccepted}, ` +
          `kills ${kills}, broker restarts ${brokerRestarts}, cuts ${pc.cut + sc.cut}, stalls ${pc.stalled + sc.stalled}, partitions ${partitions}`,
      );
    };
    while (Date.now() < faultDeadline && pubs.some((p) => p.accepted < o.messagesPerPublisher && !p.done)) {
      if (nextRestart <= o.brokerRestarts && totalAccepted() >= (nextRestart * totalTarget) / (o.brokerRestarts + 1)) {
        nextRestart++;
        brokerBusy = brokerBusy.then(restartBroker);
      }
      if (Date.now() >= nextProgress) {
        nextProgress += progressMs;
        progress('faults');
      }
      await sleep(50);
    }
    const faultPhaseMs = Date.now() - faultStart;
    if (Date.now() >= faultDeadline) {
      // Out of time: accept nothing more, drain what was accepted.
      stopping = true;
      // Only to those whose handler is installed; the others get it with their S line.
      for (const p of pubs) if (p.ready) p.child?.kill('SIGUSR2');
      log(`  fault phase reached its bound (${o.faultSeconds} s): publishers stop accepting`);
    }

    // ---- heal
    faulting = false;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await brokerBusy;
    pubProxy.heal();
    subProxy.heal();
    progress('healed');

    // ---- drain: publishers exit 0 once everything they accepted is acknowledged
    const drainDeadline = Date.now() + o.drainSeconds * 1000;
    while (pubs.some((p) => !p.done) && Date.now() < drainDeadline) {
      if (Date.now() >= nextProgress) {
        nextProgress += progressMs;
        progress('publishers draining');
      }
      await sleep(50);
    }
    const unfinished = pubs.filter((p) => !p.done);
    if (unfinished.length) failures.push(`publishers not finished within ${o.drainSeconds} s of draining: ${unfinished.map((p) => p.index).join(', ')}`);

    // ---- and the subscriber catches up: everything accepted delivered, or quiet for a while
    const QUIET_MS = 15_000;
    while (deliveredAccepted < accepted.size && Date.now() < drainDeadline && Date.now() - lastDeliveryAt < QUIET_MS) {
      if (Date.now() >= nextProgress) {
        nextProgress += progressMs;
        progress('subscriber draining');
      }
      await sleep(50);
    }
    // Late duplicates would arrive now, if any.
    await sleep(1500);
    subscriber.kill('SIGUSR2');
    await Promise.race([subExited, sleep(5000)]);

    // ---- the verdict
    let lostQos1 = 0;
    let lostQos2 = 0;
    let acceptedQos1 = 0;
    const lostExamples: string[] = [];
    for (const [key, qos] of accepted) {
      if (qos === 1) acceptedQos1++;
      if (deliveries.has(key)) continue;
      if (qos === 1) lostQos1++;
      else lostQos2++;
      if (lostExamples.length < 20) lostExamples.push(`${key} (QoS ${qos})`);
    }
    let duplicatedQos2 = 0;
    let dupQos1 = 0;
    let extras = 0;
    const dupExamples: string[] = [];
    for (const [key, n] of deliveries) {
      if (!accepted.has(key)) extras++;
      if (n < 2) continue;
      if (deliveredQos.get(key) === 2) {
        duplicatedQos2++;
        if (dupExamples.length < 20) dupExamples.push(`${key} x${n}`);
      } else dupQos1 += n - 1;
    }
    const lost = lostQos1 + lostQos2;
    if (lost > 0) failures.push(`${lost} accepted messages lost (QoS 1: ${lostQos1}, QoS 2: ${lostQos2}), e.g. ${lostExamples.slice(0, 5).join('; ')}`);
    if (duplicatedQos2 > 0) failures.push(`${duplicatedQos2} QoS 2 messages delivered more than once, e.g. ${dupExamples.slice(0, 5).join('; ')}`);
    if (qosMismatches > 0) failures.push(`${qosMismatches} deliveries at another QoS than published`);

    const byStep = (proxies: FaultProxy[], action: (a: string) => boolean): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const px of proxies) {
        for (const e of px.log) {
          if (!action(e.action) || e.type === undefined) continue;
          const k = `${e.dir} ${e.type}`;
          out[k] = (out[k] ?? 0) + 1;
        }
      }
      return out;
    };
    const elapsedMs = Date.now() - t0;
    return {
      ok: failures.length === 0,
      failures,
      seed: o.seed,
      dir,
      subscriberClient: o.subscriberClient ?? 'dormouse',
      elapsedMs,
      faultPhaseMs,
      accepted: accepted.size,
      acceptedQos1,
      acceptedQos2: accepted.size - acceptedQos1,
      delivered: deliveredAccepted,
      deliveries: deliveryCount,
      lost,
      lostQos1,
      lostQos2,
      duplicatedQos2,
      duplicateDeliveriesQos1: dupQos1,
      extras,
      outOfOrder,
      qosMismatches,
      messagesPerSecond: Math.round(accepted.size / (elapsedMs / 1000)),
      kills,
      publisherStarts: starts,
      publisherCrashes: crashes,
      brokerRestarts,
      partitions,
      namedCutsArmed: namedCuts,
      proxy: {
        cuts: pubProxy.counters.cut + subProxy.counters.cut,
        stalls: pubProxy.counters.stalled + subProxy.counters.stalled,
        refused: pubProxy.counters.refused + subProxy.counters.refused,
        cutsByStep: byStep([pubProxy, subProxy], (a) => a === 'cut-before' || a === 'cut-after'),
        stallsByStep: byStep([pubProxy, subProxy], (a) => a === 'stall'),
      },
      publisherMetrics,
      subscriberMetrics,
      publisherErrors,
      subscriberErrors,
      examples: { lost: lostExamples, duplicatedQos2: dupExamples },
      duplicateTimelines: dupDetails,
      brokerLog: o.trace ? scanBrokerLog(mosq.log(), 'soak-sub') : undefined,
    };
  } finally {
    faulting = false;
    shutDown = true;
    for (const t of timers) clearTimeout(t);
    killAll();
    process.removeListener('exit', killAll);
    await pubProxy?.close();
    await subProxy?.close();
    await mosq?.stop();
    if (!o.keepDir && !o.trace && failures.length === 0) rmSync(dir, { recursive: true, force: true });
  }
}

/** The report as text, one fact a line. */
export function formatSoak(r: SoakResult): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const steps = (m: Record<string, number>): string =>
    Object.entries(m)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  const lines = [
    `soak ${r.ok ? 'PASSED' : 'FAILED'} (seed ${r.seed}) in ${(r.elapsedMs / 1000).toFixed(1)} s (fault phase ${(r.faultPhaseMs / 1000).toFixed(1)} s)`,
    `  accepted     ${n(r.accepted)} (QoS 1 ${n(r.acceptedQos1)}, QoS 2 ${n(r.acceptedQos2)}), ${n(r.messagesPerSecond)} msg/s over the whole run`,
    `  delivered    ${n(r.delivered)} of them (${n(r.deliveries)} deliveries in all)`,
    `  lost         ${n(r.lost)} (QoS 1 ${n(r.lostQos1)}, QoS 2 ${n(r.lostQos2)})`,
    `  duplicated   QoS 2: ${n(r.duplicatedQos2)} messages; QoS 1 (allowed): ${n(r.duplicateDeliveriesQos1)} extra deliveries`,
    `  extras       ${n(r.extras)} delivered but never claimed accepted (publisher killed between publish() and its record)`,
    `  out of order ${n(r.outOfOrder)} first deliveries below a sequence number already delivered (same publisher and QoS)`,
    `  faults       ${n(r.kills)} publisher kills (SIGKILL; ${n(r.publisherStarts)} starts), ${n(r.brokerRestarts)} broker restarts (SIGTERM, saved), ` +
      `${n(r.proxy.cuts)} proxy cuts, ${n(r.proxy.stalls)} stalls, ${n(r.partitions)} partitions (${n(r.proxy.refused)} connections refused), ${n(r.namedCutsArmed)} named cuts armed`,
    `  cuts at      ${steps(r.proxy.cutsByStep)}`,
    `  stalls at    ${steps(r.proxy.stallsByStep)}`,
    `  publishers   ${JSON.stringify(r.publisherMetrics)} (summed over final runs)`,
    `  subscriber   ${r.subscriberClient}: ${JSON.stringify(r.subscriberMetrics)}`,
    `  errors       publishers: ${steps(r.publisherErrors)}`,
    `               subscriber: ${steps(r.subscriberErrors)}`,
  ];
  if (r.publisherCrashes) lines.push(`  crashes      ${r.publisherCrashes} publisher exits that were not our SIGKILL`);
  for (const f of r.failures) lines.push(`  FAILURE: ${f}`);
  for (const d of r.duplicateTimelines.slice(0, 5)) lines.push(`  duplicate ${d}`);
  if (r.brokerLog) {
    lines.push(`  broker log   ${r.brokerLog.publishAfterPubrel} QoS 2 PUBLISHes to the subscriber re-sent after their PUBREL (mosquitto's exactly-once break; a duplicate when the subscriber had received that PUBREL)`);
    for (const e of r.brokerLog.examples) lines.push(`               ${e}`);
  }
  if (!r.ok) lines.push(`  kept for inspection: ${r.dir}`);
  return lines.join('\n');
}
