// Writes the results of bench/e2e.ts as a markdown report (bench/REPORT.md style):
// the machine, the settings, one table per part with each target's verdict,
// and, for every missed target, the reason as measured when this was written.

import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';

export interface Result {
  part: string;
  bench: string;
  ours: number;
  peer: number | null;
  ratio: number | null;
  unit: string;
  target?: { text: string; met: boolean };
  note?: string;
}

export interface Machine {
  cpu: string;
  cores: number;
  memory: string;
  os: string;
  node: string;
  mosquitto: string;
  mqttjs: string;
  date: string;
  /** 1-minute load average when the run started and when it ended (other work on the machine skews every row). */
  load: string;
}

export interface Settings {
  quick: boolean;
  seconds: number;
  window: number;
  rounds: number;
  publishN: number[];
  publishWarm: number;
  backlogN: number[];
  backlogRounds: number;
  liveN: number[];
  liveRounds: number;
  /** mosquitto ran with set_tcp_nodelay true (--broker-nodelay). */
  brokerNodelay: boolean;
  /** Protocol versions run: 4 (3.1.1), 5. */
  versions: number[];
  /** Dormouse's capacities.incomingQos2 in the backlog part when --incoming-qos2 set it, else null. */
  incomingQos2: number | null;
  memoryClients: number;
  memoryRuns: number;
}

const TITLES: Record<string, string> = {
  publish: '1. Publish throughput, one client',
  backlog: '2. Receiving a queued backlog',
  live: '3. Receiving a live stream',
  memory: '4. Memory per connected idle client with one subscription',
  wire: '5. Bytes on the wire per message',
};

const versions = (s: Settings) =>
  s.versions.map((v) => (v === 4 ? 'MQTT 3.1.1 (the v3.1.1 rows)' : 'MQTT 5.0 (the v5 rows)')).join(' and ') +
  ' (`protocolVersion` ' + s.versions.join(' or ') + ' for both clients)';
const CALLS =
  'The .writes and .reads rows are the client process\'s write and read system calls per message over the same window ' +
  '(Linux `/proc/self/io`: syscw, syscr), the .calls row the two together (the median of each run\'s sum): issue 14\'s ' +
  '"system calls per message"; its note gives the least and the greatest run of each client.';
const nodelay = (s: Settings) => (s.brokerNodelay ? ' mosquitto ran with `set_tcp_nodelay true` (`--broker-nodelay`).' : '');

const METHOD: Record<string, (s: Settings) => string> = {
  publish: (s) =>
    `Over ${versions(s)}, one client publishes a 16-byte payload to mosquitto over loopback; at most ${s.window} messages are unacknowledged ` +
    `(the same driver loop for both clients; Dormouse also has \`capacities.inflight: ${s.window}\`). Each client runs in its own ` +
    `process, so its \`process.cpuUsage()\` is the client's CPU alone. ${s.publishN.map((n, q) => `QoS ${q}: ${n.toLocaleString('en-US')}`).join(', ')} ` +
    `messages per round after ${s.publishWarm.toLocaleString('en-US')} warm-up messages; QoS 0 ends with one QoS 1 message whose PUBACK ` +
    `shows the broker has read everything before it. ${s.rounds} alternating rounds, medians. ${CALLS} "mosquitto busy" ` +
    `in the notes is the broker's CPU time over the same measured window, as a share of one core (\`/proc/PID/sched\`).${nodelay(s)}`,
  backlog: (s) =>
    `Over ${versions(s)}, a persistent session (clean session off; over 5.0 clean start off and a Session Expiry Interval ` +
    `of 3,600 s, set by both clients) subscribes, disconnects, and ${s.backlogN.map((n, q) => `${n.toLocaleString('en-US')} (QoS ${q})`).join(', ')} messages are published to it ` +
    `(mosquitto \`max_queued_messages 100000\`, \`queue_qos0_messages true\`). The subscriber, in its own process, then connects; ` +
    `the time and CPU from \`connect()\` to the last message are measured (the filler publishes over 3.1.1 for both versions). ` +
    `mosquitto 2.0.11 sends a queued QoS 2 backlog almost whole before its first PUBREL (thousands of unreleased ids), so Dormouse ` +
    `gets a \`capacities.incomingQos2\` that holds the backlog, at every QoS (with its default, 16, the core holds messages back ` +
    `and reconnects each time PUBRELs free room: correct, but slow for a backlog): ` +
    (s.incomingQos2 !== null
      ? `${s.incomingQos2.toLocaleString('en-US')} in this run (\`--incoming-qos2\`), over 5.0 also announced as its Receive Maximum. `
      : `over 3.1.1 the backlog size plus 64, over 5.0 65,535. Over 5.0 a table below 65,535 is also announced as the client's ` +
        `Receive Maximum, and with one announced, even one larger than the backlog, mosquitto 2.0.11 served Dormouse a QoS 2 ` +
        `backlog about a quarter slower and Dormouse spent more CPU per message (\`npm run bench:e2e -- --only backlog --version 5 ` +
        `--incoming-qos2 10064\`: see "Where the time and the system calls go"); 65,535 announces none, as MQTT.js announces none. `) +
    `Dormouse delivers a QoS 2 message on its PUBLISH (after storing its id), MQTT.js on its PUBREL, so ` +
    `Dormouse's window ends only once every PUBREL has been answered: both windows hold the whole exchange. ` +
    `${s.backlogRounds} alternating rounds, medians; the system-call rows and mosquitto's busy share as in part 1.${nodelay(s)}`,
  live: (s) =>
    `Over ${versions(s)}, the measured client, in its own process, connects with a clean session and subscribes to a topic at ` +
    `the QoS of the row; then a publisher in a third process (\`bench/e2e-stream.ts\`: a raw socket writer with its PUBLISH ` +
    `bytes built once, the same for both libraries, so it costs the machine little and the same whichever client is measured) ` +
    `streams ${s.liveN.map((n, q) => `${n.toLocaleString('en-US')} (QoS ${q})`).join(', ')} messages of 16 bytes to that topic at ` +
    `that QoS as fast as mosquitto takes them: QoS 0 in 256-packet writes, QoS 1 and 2 with at most ${s.window} unacknowledged ` +
    `(mosquitto's \`max_inflight_messages\`), every PUBREL of one read in one write. mosquitto in turn keeps at most 20 QoS 1/2 ` +
    `messages in flight to the subscriber, so at QoS 1 and 2 the stream's pace is that window's round trip through the ` +
    `subscriber. The window runs from the subscriber's first message to its last (QoS 2: Dormouse delivers at PUBLISH, so its ` +
    `window ends when the last PUBREL is answered; MQTT.js delivers at PUBREL): rate, the client's CPU and its system calls ` +
    `per message over messages 2 to N. Dormouse gets \`capacities.incomingQos2: ${s.window}\` (mosquitto's window; over 5.0 ` +
    `its Receive Maximum), MQTT.js its defaults. "the publisher's own rate" in the notes is the publisher's messages over its ` +
    `CONNACK to last ack at QoS 1 and 2, the median over all rounds: where it is close to the subscriber's rate, the two move ` +
    `in step (one mosquitto thread serves both sockets, and reads one packet per readiness event of each). Dormouse's system calls ` +
    `per message at QoS 1 have varied between the rounds of one run by up to tenfold (0.043 to 0.48 in one quick run), far ` +
    `more than MQTT.js's: the .calls note gives each run's range. One warm-up round of 2,000 each, then ${s.liveRounds} alternating rounds, medians; the system-call rows and ` +
    `mosquitto's busy share as in part 1.${nodelay(s)}`,
  memory: (s) =>
    `${s.memoryClients.toLocaleString('en-US')} clients in one process, each connected to mosquitto with one QoS 1 subscription, idle. ` +
    `A fresh process per library and profile; \`process.memoryUsage()\` after forced GCs, minus the same figures after the library ` +
    `was loaded and one client had come and gone, divided by the number of clients; each figure is the median of ` +
    `${s.memoryRuns} such processes, taken alternately (one process's figure moves by a few per cent). Dormouse keeps its fixed buffers in typed ` +
    `arrays, whose storage V8 counts under \`arrayBuffers\`, not \`heapUsed\`: the "heap + buffers" row is the fair total. ` +
    `"defaults" is Dormouse's default capacities (2 KiB send and receive buffers, a 2 KiB packet store, 32 records); "small" is what ` +
    `a user would choose for an idle subscriber: \`capacities: { inflight: 1, outbox: 1, storeBytes: 64, incomingQos2: 2, ` +
    `subscriptions: 1, subscriptionBytes: 32 }, receiveBufferSize: 256, sendBufferSize: 128\`.`,
  wire: () =>
    'One message, topic `sensors/t1`, payload `21.5`, through the counting proxy of `sim/proxy.ts` to mosquitto, after CONNACK; the ' +
    'bytes of every packet of the exchange, both directions (PUBLISH; + PUBACK; + PUBREC, PUBREL, PUBCOMP). Another client is ' +
    'subscribed to the topic so MQTT 5 acks carry plain success.',
};

/**
 * Why a target is missed, as measured and profiled when the report was written. Keyed by bench name without
 * its protocol version (e2e.publish.qos1.rate stands for e2e.publish.v3.1.1.qos1.rate and e2e.publish.v5.qos1.rate).
 */
const MOSQUITTO_LOOP =
  'mosquitto 2.0 reads one packet per readiness event of a client socket (its loop calls packet__read once unless TLS ' +
  'has data pending) and answers each packet with its own write, so every packet a client sends costs the broker a ' +
  'trip through its event loop, and both clients send the same packets.';
const LATENCY_BOUND =
  'Latency-bound, not CPU-bound: with 20 messages in flight, msg/s is 20 per round trip, and neither process is saturated ' +
  '(mosquitto\'s busy share is in the notes above, the client\'s is its CPU per message times the rate). ' + MOSQUITTO_LOOP +
  ' The .writes and .reads rows count each client\'s socket system calls per message: Dormouse answers each chunk of ' +
  'acks with one write, so what is left of a round trip is mostly the broker\'s loop and the cross-process wake-ups of ' +
  'this 2-vCPU VM. A larger window raises both clients.';
const SYSCALL_BOUND =
  'Per-message CPU is mostly the kernel and Node\'s native I/O, not the client\'s JavaScript: in the CPU profile of a ' +
  'QoS 1 publish run below, the write system call is the largest single part of the main thread\'s busy time (41 %) and ' +
  'the core and the host a third, on a machine at load 35-40. Dormouse answers sooner than MQTT.js and so puts fewer messages in each system call (the .writes and ' +
  '.reads rows): its lead in CPU is in JavaScript, not in the kernel. The floor in the note is measured in the same ' +
  'rounds: bench/e2e-stream.ts\'s raw-socket publisher, with no MQTT client and its packets encoded once, run as ' +
  'the measured client; it answers each read at once in one write, as Dormouse does. Its CPU per message is ' +
  'within 8 per cent of Dormouse\'s, on either side (two fresh-clone runs: 8.4-21.1 us against 8.2-19.7), ' +
  'with more calls per message: what is left of Dormouse\'s CPU is the cost of the system calls ' +
  'a client that answers at once must make, which is the "measured system-call floor" issue 14 exempts from the ' +
  'third. Below it lies only answering later (see the .writes row).';

const SYSCALLS_PER_MESSAGE =
  'System calls per message follow from how many messages each call carries, and that follows from speed: a client ' +
  'that answers sooner than the broker writes finds fewer messages waiting at each read and has fewer answers to put ' +
  'in each write. Both clients make one read per readiness event (libuv reads until the socket is empty: 64 KiB ' +
  'buffers) and Dormouse one write per turn of the event loop (writes are staged and flushed from setImmediate), so ' +
  'Dormouse makes more, smaller calls because it waits less, not because it splits its I/O. Fewer calls would mean ' +
  'waiting on purpose: that is done where the broker sends without waiting for the client (QoS 0 bursts, and a queued ' +
  'backlog mosquitto sends past its in-flight limit: see e2e.backlog.v3.1.1.qos0.cpu and e2e.backlog.v3.1.1.qos1.cpu). Where a ' +
  'round trip waits on the client (publishing at QoS 1 and 2: mosquitto keeps 20 messages in flight) it is not: ' +
  'holding our publishes until half the window\'s acks were back (Nagle\'s rule one level up, tried for issue 14) took ' +
  'a QoS 1 run from 0.25 to 0.05 writes per message and from about 62,000 to about 440 msg/s. mosquitto 2.0 leaves ' +
  'Nagle on for its clients (set_tcp_nodelay false): each PUBACK after the first waited for our TCP ACK, which Linux ' +
  'delays up to 40 ms when no data goes back. Answering every read at once is what keeps its acks coming. Flushing ' +
  'one, three or eight turns of the event loop later instead of in the next (a temporary patch, not kept; two runs ' +
  'each at QoS 1) gave no fewer calls per message beyond run-to-run noise (0.19-0.36 reads per message, against 0.20-0.25 flushing in the next turn) and no less CPU. Turning ' +
  'mosquitto\'s Nagle off (--broker-nodelay) does not close the gap either: it grows (see "Where the time and the system ' +
  'calls go").';

const LIVE_WINDOW =
  'Not client-bound: mosquitto keeps at most 20 QoS 1/2 messages in flight to the subscriber and serves the publisher ' +
  'and the subscriber from one thread, so the stream moves one window per round trip through all three (the publisher\'s ' +
  'own rate in the note moves with the subscriber\'s); with the faster client mosquitto is the busier process (its share ' +
  'of a core is in the note), while the client uses about half a core or less (its CPU per message times the rate). ' + MOSQUITTO_LOOP + ' Per message the client then pays mostly for its wake-ups: a read, a ' +
  'write of the acks it gathered, epoll and Node\'s I/O dispatch (the .reads and .writes rows say how many messages each ' +
  'carries). Issue 14 asks for a third of MQTT.js\'s CPU where the client is the limit; here the target that applies is ' +
  'at most MQTT.js\'s CPU.';

export const WHY_MISSED: Record<string, string> = {
  'e2e.live.qos0.rate': 'At QoS 0 mosquitto is the limit (its busy share is in the note above); see also e2e.publish.v3.1.1.qos0.rate.',
  'e2e.live.qos1.rate':
    'Both clients receive at the pace of mosquitto\'s window of 20 (see e2e.live.v3.1.1.qos1.cpu), so the ratio sits ' +
    'near 1 and a run\'s noise can put it on either side.',
  'e2e.live.qos2.rate': 'As e2e.live.v3.1.1.qos1.rate, with two round trips per message.',
  'e2e.live.qos1.cpu': LIVE_WINDOW,
  'e2e.live.qos2.cpu': LIVE_WINDOW + ' QoS 2 needs two round trips per message.',
  'e2e.publish.qos0.rate': 'At QoS 0 mosquitto is the limit (its busy share is in the note above).',
  'e2e.publish.qos1.rate': LATENCY_BOUND,
  'e2e.publish.qos2.rate': LATENCY_BOUND + ' QoS 2 needs two round trips per message.',
  'e2e.publish.qos1.cpu': SYSCALL_BOUND,
  'e2e.publish.qos2.cpu': SYSCALL_BOUND,
  'e2e.backlog.qos0.rate':
    'Broker-bound: mosquitto writes the backlog one PUBLISH per write and is busy close to a whole core with the faster ' +
    'reader (the note above).',
  'e2e.backlog.qos0.cpu':
    'What Dormouse spends beyond its JavaScript is the read path. mosquitto writes the backlog one PUBLISH at a time; ' +
    'MQTT.js, at several us of JavaScript per message, finds a socket-full waiting at each read, while Dormouse, faster ' +
    'than the broker, read again as soon as a few messages had arrived. Since issue 14 the Node host pauses reading ' +
    'after a read of 8 or more messages that needed no answer (QoS 0, nothing of ours in flight), 1 ms at first and up ' +
    'to 8 ms while such bursts go on and a wait fills less than half the 64 KiB read buffer, which cut its reads ' +
    'per message tenfold and more (the .reads row); in a CPU profile of a drain the core and the host are a minority ' +
    'of the main thread\'s busy time and the rest is Node\'s read dispatch, timers and GC (see "Where the time and the ' +
    'system calls go").',
  'e2e.backlog.qos1.cpu':
    'The read path of e2e.backlog.v3.1.1.qos0.cpu, plus the PUBACKs: Dormouse acknowledges a chunk of PUBLISHes in one write ' +
    '(the .writes row) where MQTT.js writes each PUBACK alone. Its reads were the faster client\'s many small ones (0.12 ' +
    'per message, 133x MQTT.js\'s, before issue 14): mosquitto sends a queued backlog past its 20-message in-flight ' +
    'limit (MQTT.js reads 1,771 messages per 64 KiB read there), so once a read of 64 or more answered packets shows ' +
    'it, the next 32 answered reads are followed by a 1 ms wait too (a broker that keeps a window of 20 never shows it, ' +
    'so a live stream never waits).',
  'e2e.backlog.qos2.rate':
    'Broker-bound: mosquitto is busy close to a whole core over the drain with either client (the note above), so neither ' +
    'client can drain faster. ' + MOSQUITTO_LOOP + ' A QoS 2 delivery is two packets from the client (PUBREC, PUBCOMP), each a trip ' +
    'through mosquitto\'s loop; a trace of the drain shows PUBRELs arriving one per read, each answered at once (the ' +
    '.writes and .reads rows: Dormouse\'s write calls per message are under half of MQTT.js\'s, which writes each ' +
    'PUBREC and PUBCOMP on its own). ' +
    'Over MQTT 3.1.1 mosquitto 2.0.11 also sends a queued QoS 2 backlog almost whole before its first PUBREL (a raw client ' +
    'counted 4,580 unreleased ids for a 5,000-message backlog) and 3.1.1 has no Receive Maximum to stop it, so Dormouse\'s ' +
    'incoming QoS 2 table is sized to the backlog here (a hash set: constant time per id).',
  'e2e.backlog.qos2.cpu': 'See e2e.backlog.v3.1.1.qos2.rate: Dormouse\'s CPU per message is mostly its read and write calls (one of each per 2 to 4 messages since the reads of the drain coalesce: see e2e.backlog.v3.1.1.qos1.cpu).',
  'e2e.memory.defaults.heap': 'See e2e.memory.small.heap.',
  'e2e.memory.defaults.heap+buffers':
    'The target is on the heap; this row adds the fixed buffers. The default capacities allocate 7.7 KB per client in one ' +
    'ArrayBuffer (2 KiB send, 2 KiB receive, a 2 KiB packet store, 32 records, the id tables, subscription storage, the ' +
    'metrics; bench:core, core.memory.default.buffers); an idle subscriber does not need them: compare the "small" rows.',
  'e2e.memory.small.heap':
    'The largest parts in a heap snapshot of 500 idle clients, per client: Node\'s socket stack about 0.75 KB (Socket, ' +
    'its read and write states, listener table, TCP handle), the host about 0.4 KB (client object, listener table, its ' +
    'hooks object, the transport; all clients\' deadlines share one timer), and the core about 1.5 KB (bench:core, ' +
    'core.memory.small.heap): the client, session and decoder objects and three typed-array views of about 96 bytes each ' +
    'over its one ArrayBuffer. A quarter of MQTT.js is about 3.5 KB: these parts come to about that, so a run can land on ' +
    'either side of the line.',
  'e2e.memory.small.heap+buffers':
    'The target is on the heap; this row adds the client\'s one ArrayBuffer, 636 bytes with these capacities (bench:core, ' +
    'core.memory.small.buffers: 256 receive, 128 send, a 64-byte store, the tables, the metrics), and about 0.12 KB a client ' +
    'of ArrayBuffer memory the client does not allocate itself.',
};

/** Numbers as the report prints them: whole with separators from 100 up, else two decimals. */
export const fmt = (x: number): string =>
  Math.abs(x) >= 100 || Number.isInteger(x) ? Math.round(x).toLocaleString('en-US')
  // System calls per message are often below 0.01: two significant digits, not 0.00.
  : Math.abs(x) < 0.1 ? x.toPrecision(2)
  : x.toFixed(2);

export function writeMarkdown(file: string, results: Result[], m: Machine, s: Settings): void {
  const out: string[] = [];
  out.push('# Dormouse vs MQTT.js, end to end', '');
  const flags = [s.quick ? '--quick' : '', s.brokerNodelay ? '--broker-nodelay' : '', s.versions.length === 1 ? `--version ${s.versions[0]}` : ''].filter(Boolean).join(' ');
  out.push(`Generated by \`npm run bench:e2e -- ${flags ? flags + ' ' : ''}--markdown ${relative(process.cwd(), file) || file}\` on ${m.date.slice(0, 10)} (${Math.round(s.seconds)} s).`, '');
  out.push('| machine | |', '|---|---|');
  out.push(`| CPU | ${m.cpu}, ${m.cores} cores |`, `| memory | ${m.memory} |`, `| OS | ${m.os} |`, `| Node | ${m.node} |`);
  out.push(`| broker | ${m.mosquitto}, on 127.0.0.1, persistence off |`, `| peer | MQTT.js ${m.mqttjs} |`, `| date | ${m.date} |`, `| load average (1 min), start / end | ${m.load} |`, '');
  out.push(
    'Ratio is ours over MQTT.js in the unit of the row. Machines are noisy: each row is a median of alternating rounds, ' +
      'and between full runs of the same code on this 2-vCPU VM the CPU ratios moved by up to about 0.3 (backlog QoS 0: ' +
      '0.52 to 0.80) and the rate ratios by up to about 0.3x (QoS 1 publish: 1.73x to 2.02x). A target within that ' +
      'distance is met in some runs and missed in others.',
    '',
  );
  const missed: Result[] = [];
  for (const part of ['publish', 'backlog', 'live', 'memory', 'wire']) {
    const rows = results.filter((r) => r.part === part);
    if (rows.length === 0) continue;
    out.push(`## ${TITLES[part]}`, '', METHOD[part]!(s), '');
    out.push('| bench | Dormouse | MQTT.js | ratio | unit | target | |', '|---|---:|---:|---:|---|---|---|');
    for (const r of rows) {
      const verdict = r.target ? (r.target.met ? '**met**' : '**missed**') : '';
      out.push(
        `| ${r.bench} | ${fmt(r.ours)} | ${r.peer === null ? '' : fmt(r.peer)} | ${r.ratio === null ? '' : r.ratio.toFixed(2)} | ${r.unit} | ${r.target?.text ?? ''} | ${verdict} |`,
      );
      if (r.target && !r.target.met) missed.push(r);
    }
    const notes = rows.filter((r) => r.note).map((r) => `- ${r.bench}: ${r.note}`);
    if (notes.length) out.push('', ...notes);
    out.push('');
  }
  out.push('## Targets missed', '');
  if (missed.length === 0) out.push('None in this run.');
  for (const r of missed) {
    const why = WHY_MISSED[r.bench.replace(/\.v(3\.1\.1|5)\./, '.')] ?? (/\.(reads|writes|calls)$/.test(r.bench) ? SYSCALLS_PER_MESSAGE : '');
    out.push(`- **${r.bench}** (${r.target!.text}): ${fmt(r.ours)} vs ${fmt(r.peer ?? 0)} ${r.unit}, ratio ${r.ratio?.toFixed(2) ?? '-'}. ${why}`);
  }
  out.push('', PROFILE, '');
  writeFileSync(file, out.join('\n'));
}

/**
 * Issue 14's profile and issue 12 item 6's back-pressure run, written by hand
 * from the commands named in it (not regenerated by bench:e2e): where each
 * client's time and system calls go, beside MQTT.js.
 */
const PROFILE = `## Where the time and the system calls go (issue 14)

Measured on 2026-12-07 on the machine of the run above (2 vCPUs shared with six other jobs: load average 35-40, so
absolute figures are several times those of a quiet machine; compare within a row). Each line names its command.

**CPU profiles** of one client process, main thread, \`node --import tsx bench/e2e-profile.ts drain 0 ours|peer --cpu-prof --n 100000\`
and \`... publish 1 ours|peer --cpu-prof --n 40000\` (V8 sampling every 100 us; the summary is printed by the script):

| run | client CPU/msg (all threads, user+sys) | main thread busy | split of the busy time |
|---|---:|---:|---|
| drain QoS 0, Dormouse | 3.28 us | 374 ms | host + core JavaScript 56 % (payload copy and Buffer pool 26 %, decode 24 %, delivery 9 %), Node's JavaScript 28 % (timers, streams), V8 internals 15 %, GC 1 % |
| drain QoS 0, MQTT.js | 7.89 us | 2,039 ms | Node's JavaScript (streams, process.nextTick, BufferList) 48 %, MQTT.js with mqtt-packet, bl and debug 40 %, GC 5 % |
| publish QoS 1, Dormouse | 15.4 us | 468 ms | the write system call (\`writeBuffer\`) 41 %, host + core 33 %, Node's JavaScript 18 %, GC 2 % |
| publish QoS 1, MQTT.js | 32.4 us | 3,097 ms | Node's JavaScript 36 %, MQTT.js 34 %, \`writev\` 18 %, GC 6 % |

So at QoS 1 the biggest single cost of Dormouse's main thread is the write system call itself (a loopback write
does the receiver's TCP work and wakes mosquitto in the writer's time), and its JavaScript is a third; MQTT.js
spends most of its time in JavaScript (its own and Node's stream machinery). Draining QoS 0, Dormouse's JavaScript
is mostly copying each payload into a Buffer of its own (what the application keeps) and decoding; the main thread
is busy for a third of the drain and waits for mosquitto the rest.

**System calls**: the .writes and .reads rows above (\`/proc/self/io\` of the client process). \`strace -c -f\`
(\`bench/e2e-profile.ts drain 0 ours|peer --strace\`) shows the rest of a worker's calls are its threads' futex waits
(V8's platform and GC threads, libuv) and epoll_pwait, the same for both clients; strace slows the traced client so much
that its reads per message say nothing about an untraced run, so the rows above are the figures to compare.

**Is mosquitto's Nagle why MQTT.js makes fewer calls publishing at QoS 1 and 2?** mosquitto 2.0 leaves Nagle on for its
client sockets (\`set_tcp_nodelay false\`), so a PUBACK it writes while an earlier one is not yet acknowledged at the TCP
level waits for the client's ACK; the guess was that a client that answers sooner than MQTT.js therefore finds fewer acks
at each read. \`npm run bench:e2e -- --only publish --json\`, alternately without and with \`--broker-nodelay\` (mosquitto
with \`set_tcp_nodelay true\`; strace of a mosquitto with that line shows it set TCP_NODELAY on each accepted socket), two runs each of 7 rounds,
2026-12-07, load 4.3 falling to 1.7 (ranges over the two runs; ours / MQTT.js):

| row | Nagle on (mosquitto's default) | Nagle off (\`--broker-nodelay\`) |
|---|---|---|
| v3.1.1 QoS 1 reads/msg (writes the same) | 0.25-0.30 / 0.107-0.109 (2.3-2.8x) | 0.29-0.68 / 0.067-0.150 (4.3-4.6x) |
| v3.1.1 QoS 1 rate ratio; CPU ratio | 1.37-1.62; 0.50-0.60 | 1.15-1.31; 0.67-0.73 |
| v3.1.1 QoS 2 reads/msg; writes/msg | 0.57-0.59 / 0.22-0.24; 0.57-0.59 / 1.17-1.18 | 1.16-1.62 / 0.25-0.30; 1.16-1.62 / 1.19-1.26 |
| v3.1.1 QoS 2 rate ratio; CPU ratio | 1.77-1.94; 0.42-0.43 | 1.16-1.29; 0.77-0.81 |
| v5 QoS 1 reads/msg (writes the same) | 0.22-0.23 / 0.10-0.11 (2.0-2.2x) | 0.71-0.72 / 0.15-0.19 (3.8-4.7x) |
| v5 QoS 1 rate ratio; CPU ratio | 1.47-1.56; 0.44-0.56 | 1.10-1.16; 0.80-0.89 |
| v5 QoS 2 reads/msg; writes/msg | 0.50 / 0.18-0.25; 0.50 / 1.15-1.20 | 1.37-1.50 / 0.32; 1.37-1.50 / 1.23-1.24 |
| v5 QoS 2 rate ratio; CPU ratio | 1.85-2.13; 0.37-0.44 | 1.33-1.35; 0.69-0.72 |

The rows do not bear the guess out. With Nagle off both clients mostly got fewer acks per read (Nagle was grouping them
for both), but the gap grew in every pair: Dormouse's calls per message went from 2.0-2.8x MQTT.js's to 3.8-4.7x at QoS 1,
its total calls at QoS 2 from 0.69-0.82x to 1.6-2.1x (the .calls rows of the same runs), and its lead in rate and CPU
shrank with them. mosquitto's Nagle works for Dormouse, not against it. What the rows are consistent with is the clients'
own pace: MQTT.js spends 0.6-0.9 of a core publishing at QoS 1 (its CPU per message times its rate, Nagle on), Dormouse
0.4-0.75 at a higher rate, so more acks are waiting each time MQTT.js gets back to its socket.

**MQTT 5 QoS 2 backlog and the Receive Maximum.** In the first full run with MQTT 5 rows, Dormouse drained a 10,000-message
QoS 2 backlog over 5.0 at 0.77x MQTT.js with 0.96x its CPU, where over 3.1.1 it ran at 1.03x with 0.62x. Its
\`capacities.incomingQos2\` was then the backlog plus 64, which over 5.0 it announces as its Receive Maximum (10,064);
MQTT.js announces none. \`npm run bench:e2e -- --only backlog --version 5 --json\`, alternately without and with
\`--incoming-qos2 10064\`, two runs each, load 3.0 to 1.9: with 65,535 (nothing announced) 1.04x and 1.04x the rate, 0.70x and
0.56x the CPU, 0.58-0.61 reads per message; with 10,064 announced 0.76x and 0.77x the rate, 0.96x and 0.85x the CPU, 0.63-0.69
reads per message, mosquitto busy 98-99 % of a core either way. So with any Receive Maximum announced, even one above the
backlog, mosquitto 2.0.11 serves the backlog more slowly and the client pays more per message; the bench gives Dormouse
65,535 over 5.0 (the QoS 0 and 1 rows did not move beyond noise). The cause inside mosquitto was not looked into.

Read coalescing (issue 14): after a read of 8 or more messages that needed no answer and with none of ours in
flight, the Node host waits before the next read (a lone message is followed by an immediate read as before).
\`bench/e2e-profile.ts drain 0 ours --n 100000\`, three pairs with and without it at load 30+: 0.044-0.064 -> 0.025-0.028
reads per message; in bench:e2e backlog QoS 0, 0.105 reads per message (57x MQTT.js's) before, 0.018 (20x) after. The
wait then grew from a fixed 1 ms to 1-8 ms (doubled while a read after a wait fills less than half the read buffer):
\`bench/e2e-profile.ts drain 0 ours\`, three alternating pairs at load 8-18, 0.0095-0.019 -> 0.0012-0.013 reads per
message (MQTT.js 0.0041-0.0045). Answered reads (PUBACKs, PUBRECs, PUBCOMPs written) are followed by a 1 ms wait only
while the broker shows it sends past any window (an answered read of 64 or more packets allows the next 32 waits):
\`bench/e2e-profile.ts drain 1 ours\`, three runs each at load 7-10, 0.029-0.038 -> 0.0020-0.0028 reads per message,
4.0-4.8 -> 2.1-4.2 us CPU per message, 114-167k -> 173-181k msg/s; drain 2, 0.40-0.45 -> 0.15-0.27 reads per message.
A window-limited broker never sends 64 packets at once, so a live stream is never made to wait (tested against a
scripted broker with a window of 20 in test/hosts/node/read-coalescing.test.ts).

**Allocation on the receive path**: \`npm run bench:alloc\` (bench/alloc-receive.ts) drains a queued backlog (16-byte
payloads) in a fresh process per case with a 64 MiB young generation: after message 1,000, three windows of 5,000
messages, each begun with a forced collection, the heap in use at a window's end minus at its start (no other
collection between), the least of the three reported (a function compiled or a pool's first chunk lands in one window
only). On 2026-12-07, over four runs (one from a fresh clone): a \`(topic, payload)\` listener costs 99-157 bytes of heap per message on one topic or 16
interleaved topics, QoS 0 or 1, of which the payload Buffer alone is 96.5 bytes; MQTT.js allocates 2.5-3.0 KB per
message at QoS 0 and 5.4-6.3 KB at QoS 1. A \`(topic, payload, packet)\` listener adds the packet object MQTT.js's
shape promises (about 80-100 bytes). A \`'messageView'\` listener (one MessageView per client over the receive buffer,
valid during the call; nothing copied) costs 4-40 bytes a message (it moves from run to run with how many messages each read and write carries): no object per message at all, and what is left is
Node's own per-read and per-write objects (the write request, the setImmediate that flushes, our copy of the staged
bytes per write) spread over the messages each call carries: \`npm run bench:alloc -- --sites\` (V8's sampling heap
profiler over the same stretch, collected objects kept) samples 6-17 bytes a message in the view cases, the largest
sites Node's timers, async hooks and write requests, and under a byte a message in any one function of the client. Before issue 14 the host also made emit()'s argument array and the packet object for
every listener, and a topic string per message on interleaved topics (513-527 bytes a message at 16 topics); topics
now come from a process-wide cache (64 sets of 2, keys in one arena). The direct-mapped cache it replaced let two of
16 topics share a slot in most draws of names: the 16-topic view case measured 171-217 bytes a message, all of it
misses, before the second way.

## QoS 0 back-pressure (issue 12 item 6)

\`npm run bench:pressure\` (bench/qos0-pressure.ts): 1 KiB QoS 0 messages to mosquitto from a loop that never yields
(a callback each) and from a loop that awaits each publish (MQTT.js: until its callback), each library in a fresh
process; Dormouse also with 15 times the messages. Peak RSS is the process's (getrusage), peak heap + buffers is sampled
in the loop. On the machine above, 2026-12-07:

| library | loop | messages | accepted | refused (to the callback) | callbacks fired | peak RSS MB | peak heap + buffers MB | ms until every callback | connection |
|---|---|---:|---:|---:|---:|---:|---:|---:|---|
| Dormouse | never yields | 20,000 | 17,436 | 2,564 | 20,000 | 103.9 | 21.2 | 332 | kept |
| MQTT.js | never yields | 20,000 | 20,000 | 0 | 20,000 | 146.0 | 33.7 | 8,194 | kept |
| Dormouse | never yields | 300,000 | 8,226 | 291,774 | 300,000 | 99.2 | 21.4 | 6,282 | kept |
| Dormouse | awaited | 20,000 | 20,000 | 0 | 20,000 | 98.8 | 19.5 | 841 | kept |
| MQTT.js | awaited | 20,000 | 20,000 | 0 | 20,000 | 121.6 | 32.2 | 1,928 | kept |
| Dormouse | awaited | 300,000 | 300,000 | 0 | 300,000 | 100.9 | 20.8 | 7,034 | kept |

Dormouse's memory does not grow with the number of messages: a loop that never yields gets what the socket, the outbox
and the 64 publishes allowed to wait for room hold accepted and the rest refused at once (each refusal to its callback, or as a 'drop' event
without one); an awaited loop is paced by the socket and never refused. MQTT.js buffers everything a loop hands it
(its memory grows with the loop) and adds a 'drain' listener per write once its socket is full (Node warns past 1,000),
so its callbacks took 8.2 s for 20,000 messages; the side-by-side rows are kept at 20,000 for that reason.`;
