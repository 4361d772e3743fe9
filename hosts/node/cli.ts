// The `dormouse` command: `dormouse pub` and `dormouse sub`, which behave
// like mosquitto_pub and mosquitto_sub (options, output, exit codes: see the
// table in cli-args.ts) over the Node client. Parsing lives in cli-args.ts;
// this file wires the options to `connect`, streams stdin and stdout, prints
// -d packet traces, and owns the one thing mosquitto's tools do not have:
// `--session-file`, where the session (and, for `pub -l`, the position in the
// input) survives the process.
//
// Like mosquitto's tools, a failed connection ends a `pub` run (exit 1 before
// the connection is made, the refusal code on a refused CONNACK, 7 when the
// connection drops, 8 when the TLS handshake fails, 2 on a protocol error),
// while `sub` reconnects after a lost connection (with the client's jittered
// backoff) and goes on. With --session-file, whatever was accepted and not yet
// acknowledged stays in the file and goes out again, with DUP, on the next run.
//
// `pub -l --session-file PATH`: the stream position.
//   A line is accepted once publish() resolved: it is then in the session
//   snapshot, so a later run resends it if no acknowledgement arrived. Lines
//   read but not yet accepted when the process dies are simply not in the
//   session. To let a restarted run continue the stream, the same (full)
//   input is fed again and the run skips the lines already accepted.
//   The count of accepted lines must change in the same write as the session
//   itself, or a kill between the two would resend or skip a line. The core
//   numbers accepted messages with tokens 1, 2, 3 ... and keeps the next token
//   in every snapshot, so it already is that atomic counter. A sidecar file
//   PATH.lines, written once when the stream starts (atomically: temp file,
//   fsync, rename), anchors it: "L lines were accepted when the next token
//   was T". Then accepted = L + (nextToken - T), read from the restored
//   snapshot. QoS 0 lines sent at once take no token: for them the anchor is
//   moved forward before each send (at most once: a kill there loses that
//   line, which QoS 0 allows). The position never resets by itself: one
//   session file follows one input stream (a log that only grows works: each
//   run publishes the new lines). For a new stream, use a new PATH or delete
//   PATH.0, PATH.1 and PATH.lines.

import { readFileSync, readdirSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync } from 'node:fs';
import path from 'node:path';
import { connect, refusalText, type ConnectOptions, type NodeClient, type PublishOptions } from './client.js';
import { FileSnapshotStore, SessionFileError } from './file-store.js';
import {
  ExitCode, VERSION, parseCliArgs, usageHint,
  type CliOptions, type CliProperty, type CommonOptions, type PubOptions, type SubOptions,
} from './cli-args.js';
import { PacketDecoder, DECODE_PACKET } from '../../modules/mqtt/decode.js';
import { PacketType, type Packet, type Properties, type QoS } from '../../modules/mqtt/types.js';
import { publishErrorMessage, PublishError } from '../../modules/session/client.js';
import type { Capacities } from '../../modules/session/session-state.js';
import { DropReason, type SnapshotStore } from '../../modules/session/ports.js';
import { topicMatches } from '../../modules/mqtt/topic-match.js';

/**
 * Fixed for every CLI run: the snapshot's configuration hash covers them, so
 * one session file works for any later run (pub or sub) with the same -i and -V.
 */
export const CLI_CAPACITIES: Readonly<Capacities> = Object.freeze({
  // libmosquitto's default. MQTT 3.1.1 has no Receive Maximum, and mosquitto
  // 2.0 answers QoS 2 PUBLISHes beyond its max_inflight_messages (20) from a
  // 3.1.1 client with a plain PUBREC and drops them: a larger window loses
  // messages silently there. (MQTT 5 brokers announce their limit.)
  inflight: 20,
  outbox: 64,
  storeBytes: 65535,
  // MQTT 3.1.1 cannot tell the broker how many QoS 2 messages to have in
  // flight to us, and mosquitto 2.0 was seen sending ~170 at once to a resumed
  // session; past this table the core holds messages back and reconnects
  // when PUBRELs make room (correct, but slow). Ids are 2 bytes each and only
  // the ones in use are written to the snapshot.
  incomingQos2: 4096,
  subscriptions: 64,
  subscriptionBytes: 8192,
  releasedQos2: 0,
  // Past the table, ids that continue a run (brokers number messages in
  // sequence) cost nothing more; not in the configuration hash.
  incomingRuns: 4,
});
/** The largest packet `sub` accepts (MQTT 5 Maximum Packet Size); mosquitto_sub takes up to 256 MB. */
const SUB_RECEIVE_BYTES = 4 * 1024 * 1024;
const PUB_RECEIVE_BYTES = 64 * 1024;
/** A QoS 0 -l line may be up to this long; QoS 1/2 messages are bounded by storeBytes. */
const LINE_SEND_BYTES = 256 * 1024;
/** Seconds to wait for TCP/TLS and CONNACK; mosquitto relies on the OS, which can take minutes. */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * sub's reconnects: full jitter, random(0, min(cap, base × 2^attempt)).
 * mosquitto_sub waits a fixed second; a fleet of subscribers restarting with
 * their broker is better spread, and the first retry still comes within 1 s.
 */
const RECONNECT = Object.freeze({ baseMs: 1000, capMs: 30_000 });

/** getaddrinfo failures: the host name, not TLS, is the problem. */
function isLookupError(code: unknown): boolean {
  return code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL';
}

/** Ends the run: printed (unless --quiet) and returned as the exit code. */
class CliExit {
  constructor(readonly code: number, readonly message?: string) {}
}

const GENERAL_USAGE = `dormouse ${VERSION}: MQTT 3.1.1/5.0 command line tools with sessions that survive the process.
Usage: dormouse pub [options]         publish (as mosquitto_pub)
       dormouse sub [options]         subscribe and print (as mosquitto_sub)
       dormouse sim SCENARIO [opts]   run a fleet simulation (trucks, battery, storm, or a file)
       dormouse plan [options]        broker queue depth and memory for a fleet
Use 'dormouse pub --help', 'dormouse sub --help', 'dormouse sim --help' for the options.
`;

/** Runs one command; resolves with the exit code. Never calls process.exit (see `run`). */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'sim' || command === 'plan') {
    // The simulator is loaded only when asked for: pub and sub stay light.
    const sim = await import('../../sim/cli.js');
    return command === 'sim' ? sim.simMain(rest) : sim.planMain(rest);
  }
  if (command !== 'pub' && command !== 'sub') {
    if (command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(GENERAL_USAGE);
      return 0;
    }
    if (command === '--version') {
      process.stdout.write(`dormouse version ${VERSION}\n`);
      return 0;
    }
    process.stderr.write(command === undefined ? GENERAL_USAGE : `Error: Unknown command '${command}': use 'dormouse pub', 'sub', 'sim' or 'plan'.\n`);
    return ExitCode.Usage;
  }
  const malformed = malformedUtf8Option(rest);
  if (malformed) {
    // As mosquitto's tools: Node would have replaced the bad bytes with U+FFFD and published that.
    process.stderr.write(`Error: Malformed UTF-8 in ${malformed} argument. ${usageHint(command)}\n`);
    return ExitCode.Usage;
  }
  const parsed = parseCliArgs(command, rest);
  if (parsed.kind === 'info') {
    process.stdout.write(parsed.text.endsWith('\n') ? parsed.text : parsed.text + '\n');
    return parsed.exitCode;
  }
  if (parsed.kind === 'error') {
    // One line: the error and where to look.
    process.stderr.write(`${parsed.message}${/[.!?]$/.test(parsed.message) ? '' : '.'} ${parsed.hint}\n`);
    return parsed.exitCode;
  }
  const o = parsed.options;
  try {
    checkSupported(o);
    return o.command === 'pub' ? await runPub(o) : await runSub(o);
  } catch (e) {
    if (e instanceof CliExit) {
      if (e.message && !o.quiet) process.stderr.write(e.message + '\n');
      return e.code;
    }
    throw e;
  }
}

/** For the bin: run, let stdout drain, exit with the code. */
export async function run(argv: readonly string[]): Promise<never> {
  // A session write that fails later (the disk filled, a permission changed)
  // throws out of the socket's data handler: one line and exit 1, as above.
  process.on('uncaughtException', (e) => {
    process.stderr.write(errorLine(e));
    process.exit(ExitCode.Usage);
  });
  let code: number;
  try {
    code = await main(argv);
  } catch (e) {
    process.stderr.write(errorLine(e));
    code = ExitCode.Usage;
  }
  if (process.stdout.writableLength > 0) await new Promise((r) => process.stdout.once('drain', r));
  process.exit(code);
}

/**
 * An error with a code (the system's, such as EACCES, or one of ours) is
 * about the user's input or machine: one line. Anything else is a bug in
 * dormouse: its stack, to report.
 */
function errorLine(e: unknown): string {
  const err = e as (Error & { code?: unknown }) | undefined;
  if (err instanceof Error && typeof err.code === 'string') return `Error: ${err.message.replace(/\.?$/, '.')}\n`;
  return `Error: ${err?.stack ?? String(e)}\n`;
}

/** Options whose value is a topic (or filter): MQTT strings must be well-formed UTF-8 [MQTT-1.5.3-1]. */
const TOPIC_OPTIONS = new Set(['-t', '--topic', '-T', '--filter-out', '-U', '--unsubscribe', '--will-topic']);

/**
 * The option whose topic argument was not valid UTF-8 on the command line,
 * or null. Node decodes argv with replacement characters, so where one shows
 * up the raw bytes are read back (Linux: /proc/self/cmdline) to tell a bad
 * byte from a real U+FFFD.
 */
function malformedUtf8Option(argv: readonly string[]): string | null {
  if (!argv.some((a) => a.includes('\uFFFD'))) return null;
  let raw: Buffer[];
  try {
    const all = readFileSync('/proc/self/cmdline');
    raw = [];
    let from = 0;
    for (let k = 0; k < all.length; k++) if (all[k] === 0) { raw.push(all.subarray(from, k)); from = k + 1; }
  } catch {
    return null; // no /proc: the replacement characters cannot be told from real ones
  }
  const mine = raw.slice(raw.length - argv.length);
  const strict = new TextDecoder('utf-8', { fatal: true });
  for (let k = 1; k < argv.length; k++) {
    if (!TOPIC_OPTIONS.has(argv[k - 1]!) || !argv[k]!.includes('\uFFFD')) continue;
    try {
      strict.decode(mine[k]);
    } catch {
      return argv[k - 1]!;
    }
  }
  return null;
}

// ---------------------------------------------------------------- options

function checkSupported(o: CliOptions): void {
  for (const p of o.properties) {
    if (p.command === 'subscribe' || p.command === 'unsubscribe' || p.command === 'disconnect') {
      throw new CliExit(ExitCode.Usage, `Error: ${p.command} properties (-D ${p.command} ${p.name}) are not supported by dormouse yet. ${usageHint(o.command)}`);
    }
  }
  if (o.sessionFile !== undefined) {
    if (o.clientId === undefined || o.clientId === '') {
      throw new CliExit(ExitCode.Usage, `Error: --session-file needs a fixed client id (-i): the broker finds the session by it. ${usageHint(o.command)}`);
    }
  }
}

const camel = (name: string): string => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** -D values for one packet type, as the client's Properties (MQTT.js names). */
function propertiesFor(list: readonly CliProperty[], command: CliProperty['command']): Properties | undefined {
  let out: Properties | undefined;
  for (const p of list) {
    if (p.command !== command) continue;
    out ??= {};
    const rec = out as Record<string, unknown>;
    if (p.name === 'user-property') {
      (out.userProperties ??= []).push([...(p.value as readonly [string, string])]);
    } else if (p.name === 'correlation-data' || p.name === 'authentication-data') {
      rec[camel(p.name)] = new Uint8Array(Buffer.from(p.value as string));
    } else {
      rec[camel(p.name)] = p.value;
    }
  }
  return out;
}

function readOrExit(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new CliExit(ExitCode.Usage, `Error: Unable to read ${what} "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`);
  }
}

function tlsOptions(o: CommonOptions): Pick<ConnectOptions, 'ca' | 'cert' | 'key' | 'insecure'> {
  const t = o.tls;
  const out: Pick<ConnectOptions, 'ca' | 'cert' | 'key' | 'insecure'> = {};
  const cas: Uint8Array[] = [];
  if (t.cafile !== undefined) cas.push(readOrExit(t.cafile, 'CA file'));
  if (t.capath !== undefined) {
    let names: string[];
    try {
      names = readdirSync(t.capath);
    } catch {
      throw new CliExit(ExitCode.Usage, `Error: Unable to read CA path "${t.capath}".`);
    }
    for (const n of names) if (/\.(pem|crt|cer)$/i.test(n)) cas.push(readOrExit(path.join(t.capath, n), 'CA file'));
  }
  if (cas.length) out.ca = cas;
  if (t.certfile !== undefined) out.cert = readOrExit(t.certfile, 'certificate file');
  if (t.keyfile !== undefined) out.key = readOrExit(t.keyfile, 'key file');
  if (t.insecure) out.insecure = true;
  return out;
}

function clientIdOf(o: CommonOptions): string {
  if (o.clientId !== undefined) return o.clientId;
  if (o.clientIdPrefix !== undefined) return `${o.clientIdPrefix}${process.pid}`; // as mosquitto's -I
  return ''; // the broker assigns one (clean sessions only)
}

interface Opened {
  client: NodeClient;
  store: FileSnapshotStore | SyncBeforeSendStore | null;
  /** Rejects with a CliExit when the connection fails or drops (never resolves). */
  failed: Promise<never>;
  /** Resolves at CONNACK. */
  connected: Promise<{ sessionPresent: boolean }>;
  /** Call before a deliberate end, so the close is not reported as a loss. */
  ending(): void;
  /** Name for -d lines, as mosquitto's "Client <id>". */
  name(): string;
}

/**
 * For `sub`: the session file is written at once (the OS keeps it through a
 * SIGKILL) but fsynced only just before the next bytes leave for the broker.
 * The core writes an incoming QoS 2 id before it hands the message over; with
 * the fsync inside that write, a kill during the fsync (most of the time per
 * message) lost the message: id kept, never printed. Now the gap between the
 * id's write and the print is microseconds, and no PUBREC leaves before the
 * id is on disk, so a power cut can at worst print a message twice.
 */
class SyncBeforeSendStore implements SnapshotStore {
  readonly #inner: FileSnapshotStore;
  readonly #dirty = new Set<0 | 1>();
  #dirSynced = false;

  constructor(location: string) {
    this.#inner = new FileSnapshotStore(location, { sync: false });
  }

  get paths(): readonly [string, string] {
    return this.#inner.paths;
  }

  read(slot: 0 | 1): Uint8Array | null {
    return this.#inner.read(slot);
  }

  setAside(): string[] {
    return this.#inner.setAside();
  }

  write(slot: 0 | 1, image: Uint8Array): void {
    this.#inner.write(slot, image);
    this.#dirty.add(slot);
  }

  sync(): void {
    if (this.#dirty.size === 0) return;
    for (const slot of this.#dirty) fsyncPath(this.#inner.paths[slot]);
    this.#dirty.clear();
    if (!this.#dirSynced) {
      this.#dirSynced = true;
      try { fsyncPath(path.dirname(this.#inner.paths[0])); } catch { /* no directory fsync on this platform */ }
    }
  }
}

function fsyncPath(file: string): void {
  const fd = openSync(file, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

/**
 * `onLoss`, for sub: a connection lost after CONNACK (or closed by the server
 * before it) is reconnected with the backoff, and onLoss hears why; without
 * it (pub), a loss ends the run as mosquitto_pub's does.
 */
function open(o: CommonOptions, sizes: { receive: number; send: number }, out: Debug | null, syncBeforeSend = false, onLoss?: (why: string) => void): Opened {
  let deferred: SyncBeforeSendStore | null = null;
  let store: FileSnapshotStore | SyncBeforeSendStore | null = null;
  try {
    deferred = o.sessionFile !== undefined && syncBeforeSend ? new SyncBeforeSendStore(o.sessionFile) : null;
    store = deferred ?? (o.sessionFile !== undefined ? new FileSnapshotStore(o.sessionFile) : null);
  } catch (e) {
    if (!(e instanceof SessionFileError)) throw e;
    throw new CliExit(ExitCode.Usage, `Error: ${e.message}.`);
  }
  const persistent = !o.cleanSession || store !== null;
  let sessionExpiry = o.sessionExpiryInterval;
  // --session-file implies -c; without -c the parser chose "expire at disconnect".
  if (store && o.protocolVersion === 5 && sessionExpiry === 0) sessionExpiry = 0xffffffff;
  const connectProps = propertiesFor(o.properties, 'connect');
  const willProps = propertiesFor(o.properties, 'will');
  const clientId = clientIdOf(o);
  const options: ConnectOptions = {
    clientId,
    clean: !persistent,
    keepalive: o.keepalive,
    protocolVersion: o.protocolVersion,
    username: o.username,
    password: o.password,
    will: o.will ? { ...o.will, properties: willProps } : undefined,
    properties: o.protocolVersion === 5 ? { ...connectProps, sessionExpiryInterval: sessionExpiry } : undefined,
    reconnectPeriod: onLoss ? RECONNECT.baseMs : 0,
    reconnect: onLoss ? RECONNECT : undefined,
    connectTimeout: CONNECT_TIMEOUT_MS,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    store: store ?? undefined,
    capacities: CLI_CAPACITIES,
    receiveBufferSize: sizes.receive,
    sendBufferSize: sizes.send,
    guardReplayAfterPubrel: (o as Partial<SubOptions>).guardReplays,
    ...tlsOptions(o),
  };
  let client: NodeClient;
  try {
    // The trace hook runs before bytes are written to the transport: the place to make the session durable first.
    if (deferred) options.trace = out ? (dir, bytes) => { if (dir === 'send') deferred.sync(); out.trace(dir, bytes); } : (dir) => { if (dir === 'send') deferred.sync(); };
    else if (out) options.trace = (dir, bytes) => out.trace(dir, bytes);
    client = connect(o.url, options);
  } catch (e) {
    // A session file from another client id, protocol version or capacities, or bad CONNECT options.
    throw new CliExit(ExitCode.Usage, `Error: ${(e as Error).message}${store ? ` (session file ${o.sessionFile})` : ''}.`);
  }
  const name = (): string => clientId || client.core.assignedClientId || '(null)';
  out?.setName(name);
  let wasConnected = false;
  /** This connection got its CONNACK. */
  let up = false;
  /** sub is in its reconnect loop: every loss from now on is retried. */
  let retrying = false;
  let deliberate = false;
  let lastError: (Error & { code?: unknown }) | null = null;
  let fail: (e: CliExit) => void = () => {};
  const failed = new Promise<never>((_, reject) => { fail = reject; });
  failed.catch(() => {});
  const connected = new Promise<{ sessionPresent: boolean }>((resolve) => {
    client.once('connect', (ack: { sessionPresent: boolean }) => { wasConnected = true; resolve(ack); });
    client.on('connect', () => { up = true; });
  });
  client.on('error', (err: Error & { code?: unknown }) => { lastError = err; });
  client.on('sessionDamaged', ({ keptAs }: { keptAs: string[] }) => {
    if (!o.quiet) process.stderr.write(`Warning: the session in ${o.sessionFile} was damaged (no readable copy in either slot): its bytes are kept in ${keptAs.join(' and ')}; starting a new session.\n`);
  });
  const tls = /^(mqtts|wss):/.test(o.url);
  client.on('close', () => {
    out?.reset();
    if (deliberate) return;
    const m = client.metrics();
    const rc = client.core.lastReasonCode;
    const e = lastError;
    lastError = null;
    const wasUp = up;
    up = false;
    const code = e?.code;
    // The server let us in at the TCP level and then closed (or reset) the connection.
    // (ECLOSEDBEFORECONNACK: the same over MQTT 5, reported once with a hint that the broker may speak only 3.1.1.)
    const dropped = code === 'ECONNCLOSED' || code === 'ECLOSEDBEFORECONNACK' || code === 'ECONNRESET' || code === 'EPIPE';
    const v5hint = code === 'ECLOSEDBEFORECONNACK' ? ' (it may not speak MQTT 5: try -V mqttv311)' : '';
    if (m.refused > 0) {
      fail(new CliExit(rc, `Connection error: Connection Refused: ${refusalText(rc, o.protocolVersion)}.`));
    } else if (m.protocolErrors > 0) {
      fail(new CliExit(ExitCode.Protocol, `Error: A network protocol error occurred when communicating with the broker${e ? ` (${e.message})` : ''}.`));
    } else if (e instanceof SessionFileError || (e !== null && client.startError === e)) {
      fail(new CliExit(ExitCode.Usage, `Error: ${e.message.replace(/\.?$/, '.')}`));
    } else if (tls && !wasConnected && e !== null && code !== 'ECONNREFUSED' && !isLookupError(code)) {
      // As mosquitto's tools: a failed TLS handshake exits 8 (MOSQ_ERR_TLS).
      const why = dropped ? `the TLS handshake failed: the server closed the connection (is ${o.host}:${o.port} a TLS port?)` : e.message;
      fail(new CliExit(ExitCode.Tls, `Error: A TLS error occurred: ${why.replace(/\.?$/, '.')}`));
    } else if (onLoss && (wasConnected || dropped || retrying)) {
      // sub, as mosquitto_sub: a lost connection is retried with the client's jittered backoff;
      // a persistent session (-c -i, or --session-file) gets what was queued meanwhile.
      // (The client reports a close before CONNACK once, not at every attempt: later ones come without an error.)
      retrying = true;
      onLoss(code === 'ECONNREFUSED' ? 'Connection refused'
        : wasUp && rc ? `The connection was lost: the broker sent DISCONNECT (${refusalText(rc, o.protocolVersion)})`
        : e ? `The connection was lost (${e.message})`
        : wasUp ? 'The connection was lost' : 'The connection was closed before CONNACK');
    } else if (wasConnected || dropped) {
      const why = rc ? `: the broker sent DISCONNECT (${refusalText(rc, o.protocolVersion)})` : e && !dropped ? ` (${e.message})` : !wasConnected ? `: the server closed it before CONNACK${v5hint}` : '';
      fail(new CliExit(ExitCode.ConnectionLost, `Error: The connection was lost${why}.`));
    } else {
      const text = e === null ? `no CONNACK from ${o.host}:${o.port} within ${CONNECT_TIMEOUT_MS / 1000} s`
        : code === 'ECONNREFUSED' ? 'Connection refused'
        : e.message.replace(/\.?$/, '.');
      fail(new CliExit(ExitCode.Usage, `Error: ${text}`));
    }
  });
  process.once('exit', () => deferred?.sync());
  return { client, store, failed, connected, ending: () => { deliberate = true; }, name };
}

/** Waits for `p`, or fails with the connection. */
function guard<T>(c: Opened, p: Promise<T>): Promise<T> {
  return Promise.race([p, c.failed]);
}

/** Resolves once nothing is queued or in flight (restored messages included). */
function allAcknowledged(c: Opened): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (c.client.core.session.live !== 0) return;
      c.client.off('acked', check);
      c.client.off('drop', check);
      resolve();
    };
    c.client.on('acked', check);
    c.client.on('drop', check);
    check();
  });
}

/** Resolves at the next acknowledgement or drop: room may have appeared in the session. */
function progress(c: Opened): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      c.client.off('acked', done);
      c.client.off('drop', done);
      resolve();
    };
    c.client.on('acked', done);
    c.client.on('drop', done);
  });
}

/** DISCONNECT and close. Bounded: a broker that never closes its side must not keep the command alive. */
async function finish(c: Opened): Promise<void> {
  c.ending();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([c.client.end(), new Promise((r) => { timer = setTimeout(r, 2000); })]);
  clearTimeout(timer);
}

// ---------------------------------------------------------------- pub

async function runPub(o: PubOptions): Promise<number> {
  let payload: Uint8Array | null = null;
  switch (o.message.kind) {
    case 'message': payload = Buffer.from(o.message.text); break;
    case 'null': payload = new Uint8Array(0); break;
    case 'file': payload = readOrExit(o.message.path, 'file'); break;
    case 'stdin-file': payload = await readAllStdin(); break;
    case 'stdin-line': break;
  }
  const send = Math.max(LINE_SEND_BYTES, (payload?.length ?? 0) + Buffer.byteLength(o.topic) + 1024);
  const debug = o.debug ? new Debug(o.protocolVersion, Math.max(send, PUB_RECEIVE_BYTES)) : null;
  const c = open(o, { receive: PUB_RECEIVE_BYTES, send }, debug);
  let warnedDowngrade = false;
  c.client.on('publishDowngrade', () => {
    // RabbitMQ 3.10 has no QoS 2: it answers PUBLISH QoS 2 with PUBACK. Once per run is enough.
    if (warnedDowngrade || o.quiet) return;
    warnedDowngrade = true;
    process.stderr.write('Warning: the broker acknowledged a QoS 2 message with PUBACK: it has no QoS 2 and took it at QoS 1 (at least once, not exactly once).\n');
  });
  c.client.on('drop', (d: { token: number; reason: number; text: string }) => {
    // A refusal for a full outbox is retried by publishOne: not a lost message.
    if (d.reason === DropReason.OutboxFullRefused) return;
    if (!o.quiet) process.stderr.write(`Warning: Publish ${d.token} failed: ${d.text}.\n`);
  });
  // The line position must be anchored to the restored session before anything is published.
  const position = o.message.kind === 'stdin-line' && c.store && !c.client.startError ? LinePosition.open(c.store, c.client, o) : null;
  await guard(c, c.connected);
  const pubOpts: PublishOptions = { qos: o.qos, retain: o.retain, properties: propertiesFor(o.properties, 'publish') };

  if (o.message.kind === 'stdin-line') {
    let skip = position ? position.accepted() : 0;
    if (skip > 0 && !o.quiet) {
      process.stderr.write(`dormouse pub: skipping the first ${skip} line${skip === 1 ? '' : 's'} of stdin: already accepted into ${o.sessionFile}\n`);
    }
    for await (const line of stdinLines()) {
      if (skip > 0) { skip--; continue; }
      if (position && o.qos === 0) position.acceptUntokened();
      const accepted = await publishOne(c, o.topic, line, pubOpts);
      if (position && o.qos === 0 && accepted.token !== 0) position.tokenTaken();
    }
  } else {
    for (let k = 0; k < o.repeat; k++) {
      if (k > 0 && o.repeatDelayMs > 0) await guard(c, new Promise((r) => setTimeout(r, o.repeatDelayMs)));
      await publishOne(c, o.topic, payload!, pubOpts);
    }
  }
  await guard(c, allAcknowledged(c));
  await finish(c);
  return ExitCode.Success;
}

/** Publishes one message, waiting for room in the session when it is full. */
async function publishOne(c: Opened, topic: string, payload: Uint8Array, opts: PublishOptions): Promise<{ token: number }> {
  for (;;) {
    try {
      return await guard(c, c.client.publish(topic, payload, opts));
    } catch (e) {
      if (e instanceof CliExit) throw e;
      const full = (e as Error).message === publishErrorMessage(PublishError.OutboxFull);
      if (full && c.client.core.session.live > 0) {
        await guard(c, progress(c));
        continue;
      }
      throw new CliExit(ExitCode.Usage, `Error: ${(e as Error).message}.`);
    }
  }
}

async function readAllStdin(): Promise<Buffer> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  } catch (e) {
    throw new CliExit(ExitCode.Usage, `Error: Unable to read stdin: ${(e as Error).message}.`);
  }
  return Buffer.concat(parts);
}

/**
 * stdin split at '\n' (bytes, not text; a trailing '\r' is kept, as
 * mosquitto_pub -l does). Empty lines are messages too; a last line
 * without '\n' is one if it is not empty.
 */
async function* stdinLines(): AsyncGenerator<Uint8Array> {
  let carry: Buffer | null = null;
  try {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      let buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = null;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(0x0a, start);
        if (nl < 0) break;
        yield buf.subarray(start, nl);
        start = nl + 1;
      }
      if (start < buf.length) carry = Buffer.from(buf.subarray(start));
      buf = Buffer.alloc(0);
    }
  } catch (e) {
    throw new CliExit(ExitCode.Usage, `Error: Unable to read stdin: ${(e as Error).message}.`);
  }
  if (carry && carry.length > 0) yield carry;
}

/** How many stdin lines of this session file's stream were accepted; see the header. */
class LinePosition {
  readonly #file: string;
  readonly #client: NodeClient;
  readonly #durable: boolean;
  #lines = 0;
  #token = 1;

  private constructor(file: string, client: NodeClient, durable: boolean) {
    this.#file = file;
    this.#client = client;
    this.#durable = durable;
  }

  static open(store: { readonly paths: readonly [string, string] }, client: NodeClient, o: PubOptions): LinePosition {
    const file = store.paths[0].replace(/\.0$/, '.lines');
    const p = new LinePosition(file, client, o.qos !== 0);
    const next = client.core.session.nextToken;
    let text: string | null = null;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliExit(ExitCode.Usage, `Error: Unable to read "${file}": ${(e as Error).message}.`);
    }
    const m = text === null ? null : /^dormouse-lines 1 (\d+) (\d+)\n$/.exec(text);
    if (text !== null && !m) throw new CliExit(ExitCode.Usage, `Error: "${file}" is not a dormouse line position file; delete it to start the stream again.`);
    // A position only means something beside the session it counts in: a
    // session restored from the file has seen a CONNACK (the CLI publishes
    // nothing before one), and its tokens cannot run backwards.
    if (m && client.core.meta.hasSession && Number(m[2]) <= next) {
      p.#lines = Number(m[1]);
      p.#token = Number(m[2]);
    } else {
      const counted = m !== null && (m[1] !== '0' || Number(m[2]) !== next);
      if (counted && !o.quiet) process.stderr.write(`dormouse pub: "${file}" does not belong to the session in ${o.sessionFile} (was the session deleted?): starting the stream from its first line\n`);
      p.#write(0, next, true);
    }
    return p;
  }

  accepted(): number {
    return this.#lines + ((this.#client.core.session.nextToken - this.#token) >>> 0);
  }

  /** Before a QoS 0 line is sent: count it (at most once). */
  acceptUntokened(): void {
    this.#write(this.accepted() + 1, this.#client.core.session.nextToken, false);
  }

  /** That QoS 0 line was queued and took a token after all: move the anchor over it. */
  tokenTaken(): void {
    this.#write(this.#lines, this.#client.core.session.nextToken, false);
  }

  #write(lines: number, token: number, durable: boolean): void {
    const tmp = `${this.#file}.tmp`;
    writeFileSync(tmp, `dormouse-lines 1 ${lines} ${token}\n`, { mode: 0o600 });
    if (durable || this.#durable) {
      const fd = openSync(tmp, 'r');
      try { fsyncSync(fd); } finally { closeSync(fd); }
    }
    renameSync(tmp, this.#file);
    if (durable || this.#durable) {
      try {
        const fd = openSync(path.dirname(this.#file), 'r');
        try { fsyncSync(fd); } finally { closeSync(fd); }
      } catch { /* no directory fsync on this platform */ }
    }
    this.#lines = lines;
    this.#token = token;
  }
}

// ---------------------------------------------------------------- sub

const NEWLINE = Buffer.from('\n');
const SPACE = Buffer.from(' ');

async function runSub(o: SubOptions): Promise<number> {
  const debug = o.debug ? new Debug(o.protocolVersion, SUB_RECEIVE_BYTES) : null;
  const c = open(o, { receive: SUB_RECEIVE_BYTES, send: 64 * 1024 }, debug, true, (what) => {
    if (!o.quiet) process.stderr.write(`Warning: ${what}; reconnecting.\n`);
  });
  let printed = 0;
  let stopping = false;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((r) => { resolveDone = r; });
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    resolveDone(code);
  };

  // Listening before CONNACK: a resumed session delivers what was queued at once.
  c.client.on('message', (topic: string, payload: Buffer, packet: { qos: QoS; retain: boolean }) => {
    if (stopping) {
      // A message after the last one wanted, in the same read. Ending the
      // connection here, inside the delivery, means its acknowledgement is
      // never sent: the broker delivers a QoS 1 message again next time.
      // A QoS 2 message has already been recorded as delivered, so it is
      // printed rather than lost.
      if (packet.qos !== 2) {
        c.ending();
        void c.client.end();
        return;
      }
    }
    if (o.retainedOnly && !packet.retain) return stop(ExitCode.Success);
    if (o.removeRetained && packet.retain && payload.length > 0) {
      c.client.publish(topic, new Uint8Array(0), { qos: 1, retain: true }).catch(() => {});
    }
    if (o.noRetained && packet.retain) return;
    for (const f of o.filterOut) if (topicMatches(f, topic)) return;
    // As mosquitto_sub 2.x: an empty payload prints "topic (null)" with -v, and nothing without.
    if (payload.length > 0 || o.verbose) {
      const parts: Uint8Array[] = !o.verbose ? [payload] : payload.length > 0 ? [Buffer.from(topic), SPACE, payload] : [Buffer.from(`${topic} (null)`)];
      if (!o.noEol) parts.push(NEWLINE);
      process.stdout.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    }
    printed++;
    if (o.count !== undefined && printed >= o.count) stop(ExitCode.Success);
  });
  process.stdout.on('error', () => stop(ExitCode.Success)); // a closed pipe (| head): nothing more to print
  const onSignal = (): void => stop(ExitCode.Success);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let timer: NodeJS.Timeout | undefined;
  if (o.timeoutSec !== undefined) {
    timer = setTimeout(() => {
      if (!o.quiet) process.stderr.write('Timed out\n');
      stop(ExitCode.Timeout);
    }, o.timeoutSec * 1000);
  }

  const work = (async () => {
    await guard(c, c.connected);
    if (o.topics.length) {
      const wanted: Record<string, { qos: QoS }> = {};
      for (const t of o.topics) wanted[t] = { qos: o.qos };
      const granted = await guard(c, c.client.subscribe(wanted));
      for (const g of granted) {
        if (o.quiet) continue;
        if (g.qos >= 0x80) process.stderr.write(`Error: Subscription to '${g.topic}' refused (${refusalText(g.qos, o.protocolVersion)}).\n`);
        // mosquitto_sub shows the granted QoS only with -d; a lower one changes what delivery means, so say it always.
        else if (g.qos < o.qos) process.stderr.write(`Warning: Subscription to '${g.topic}' granted QoS ${g.qos}, lower than the QoS ${o.qos} asked for.\n`);
      }
    }
    if (o.unsubscribe.length) await guard(c, c.client.unsubscribe(o.unsubscribe));
    if (o.exitAfterSubscribe) stop(ExitCode.Success);
  })();
  work.catch((e) => {
    if (e instanceof CliExit) {
      if (!stopping && e.message && !o.quiet) process.stderr.write(e.message + '\n');
      stop(e.code);
    } else {
      stop(ExitCode.Usage);
      if (!o.quiet) process.stderr.write(`Error: ${(e as Error).message}\n`);
    }
  });
  c.failed.catch((e: CliExit) => {
    if (stopping) return;
    if (e.message && !o.quiet) process.stderr.write(e.message + '\n');
    stop(e.code);
  });

  const code = await done;
  if (timer) clearTimeout(timer);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Let the acknowledgement of the last message leave with this turn's flush before DISCONNECT.
  await new Promise((r) => setImmediate(r));
  if (c.client.connected) await finish(c);
  else {
    // Between reconnects (or never connected): stop trying.
    c.ending();
    void c.client.end(true);
  }
  return code;
}

// ---------------------------------------------------------------- -d

/**
 * mosquitto-style packet lines ("Client X sending PUBLISH (d0, q1, r0, m1,
 * 'topic', ... (N bytes))") decoded from the bytes the client writes and
 * reads. Built only with -d: nothing is decoded twice otherwise.
 */
class Debug {
  readonly #decoders: { send: PacketDecoder; receive: PacketDecoder };
  #name: () => string = () => '(null)';

  constructor(version: 4 | 5, maxPacket: number) {
    const make = () => new PacketDecoder({ version, bufferSize: maxPacket + 16, maxPacketSize: maxPacket + 16 });
    this.#decoders = { send: make(), receive: make() };
  }

  setName(name: () => string): void {
    this.#name = name;
  }

  reset(): void {
    this.#decoders.send.reset();
    this.#decoders.receive.reset();
  }

  trace(dir: 'send' | 'receive', bytes: Uint8Array): void {
    const d = this.#decoders[dir];
    if (d.error) return;
    d.feed(bytes);
    while (d.next() === DECODE_PACKET) {
      const line = describe(d.packet!, dir === 'send');
      if (!line) continue;
      process.stdout.write(`Client ${this.#name()} ${dir === 'send' ? 'sending' : 'received'} ${line}\n`);
      const p = d.packet!;
      if (p.type === PacketType.Suback) process.stdout.write(`Subscribed (mid: ${p.packetId}): ${p.reasonCodes.join(', ')}\n`);
    }
  }
}

function describe(p: Packet, sending: boolean): string {
  switch (p.type) {
    case PacketType.Connect: return 'CONNECT';
    case PacketType.Connack: return `CONNACK (${p.reasonCode})`;
    case PacketType.Publish:
      return `PUBLISH (d${p.dup ? 1 : 0}, q${p.qos}, r${p.retain ? 1 : 0}, m${p.packetId}, '${p.topic}', ... (${p.payload.length} bytes))`;
    case PacketType.Puback: return sending ? `PUBACK (m${p.packetId}, rc${p.reasonCode})` : `PUBACK (Mid: ${p.packetId}, RC:${p.reasonCode})`;
    case PacketType.Pubrec: return sending ? `PUBREC (m${p.packetId}, rc${p.reasonCode})` : `PUBREC (Mid: ${p.packetId})`;
    case PacketType.Pubrel: return sending ? `PUBREL (m${p.packetId})` : `PUBREL (Mid: ${p.packetId})`;
    case PacketType.Pubcomp: return sending ? `PUBCOMP (m${p.packetId})` : `PUBCOMP (Mid: ${p.packetId}, RC:${p.reasonCode})`;
    case PacketType.Subscribe:
      return p.subscriptions.map((s) => {
        const opts = s.qos | (s.noLocal ? 4 : 0) | (s.retainAsPublished ? 8 : 0) | ((s.retainHandling ?? 0) << 4);
        return `SUBSCRIBE (Mid: ${p.packetId}, Topic: ${s.topic}, QoS: ${s.qos}, Options: 0x${opts.toString(16).padStart(2, '0')})`;
      }).join('; ');
    case PacketType.Suback: return 'SUBACK';
    case PacketType.Unsubscribe: return `UNSUBSCRIBE (Mid: ${p.packetId}, Topic: ${p.topics.join(', ')})`;
    case PacketType.Unsuback: return 'UNSUBACK';
    case PacketType.Pingreq: return 'PINGREQ';
    case PacketType.Pingresp: return 'PINGRESP';
    case PacketType.Disconnect: return p.reasonCode ? `DISCONNECT (${p.reasonCode})` : 'DISCONNECT';
    case PacketType.Auth: return 'AUTH';
    default: return '';
  }
}

