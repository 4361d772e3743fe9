// Argument parsing for `dormouse pub` and `dormouse sub`, following
// mosquitto_pub / mosquitto_sub (2.x) option names, defaults, error wording
// and exit codes, so scripts written for them keep working. Only the parsing
// lives here; the CLI main wires the result to the client.
//
// Exit codes (as mosquitto's client tools return them):
//
// | code    | when                                                                         |
// |---------|------------------------------------------------------------------------------|
// | 0       | success                                                                      |
// | 1       | bad arguments (error line + "Use 'dormouse pub --help' to see usage."),      |
// |         | --help and --version (sic: mosquitto 2.x exits 1 after printing usage),      |
// |         | unreadable -f file or stdin, failure to connect at all (refused, DNS)        |
// | 1..5    | MQTT 3.1.1 CONNACK refusal: the CONNACK return code [MQTT-3.2.2.3]           |
// | 128..159| MQTT 5 CONNACK refusal: the reason code (e.g. 135 not authorized)            |
// | 7       | MOSQ_ERR_CONN_LOST: the connection dropped (pub; sub reconnects instead)     |
// | 8       | MOSQ_ERR_TLS: the TLS handshake failed (not a TLS port, certificate refused) |
// | 2       | MOSQ_ERR_PROTOCOL: the broker broke the protocol                             |
// | 27      | MOSQ_ERR_TIMEOUT: `sub -W` timed out before -C messages arrived               |
//
// Deliberate differences: MQTT 3.1 (-V mqttv31) is not supported; -A, -S,
// --unix, --proxy, --psk*, --tls-engine*, -F, --pretty, -o and -M are
// rejected with a message naming the option; `--session-file PATH` is ours.

import type { BrokerAddress, Scheme } from './transport.js';

export const ExitCode = Object.freeze({
  Success: 0,
  /** Bad arguments, --help, --version, unreadable input, cannot connect. */
  Usage: 1,
  Protocol: 2,
  ConnectionLost: 7,
  Tls: 8,
  Timeout: 27,
} as const);

export type CliCommand = 'pub' | 'sub';
export type QoS = 0 | 1 | 2;

/** `-D command identifier value`: an MQTT 5 property for one packet type. */
export interface CliProperty {
  command: PropertyCommand;
  /** The mosquitto property name, e.g. 'message-expiry-interval', 'user-property'. */
  name: string;
  /** Numbers for integer properties; [name, value] for user-property; text otherwise. */
  value: number | string | readonly [string, string];
}

export interface WillOptions {
  topic: string;
  /** Empty when --will-payload is not given (a zero-length will). */
  payload: string;
  qos: QoS;
  retain: boolean;
}

export interface TlsFileOptions {
  cafile?: string;
  capath?: string;
  certfile?: string;
  keyfile?: string;
  insecure: boolean;
  /** --tls-use-os-certs, or implied by an mqtts:// / wss:// -L URL. */
  useOsCerts: boolean;
}

export interface CommonOptions {
  /** The URL for openTransport(), e.g. mqtts://broker:8883 or ws://h:8080/mqtt. */
  url: string;
  scheme: Scheme;
  host: string;
  port: number;
  /** -i; undefined means "let the broker assign" (or -I prefix + pid, done by the CLI). */
  clientId?: string;
  clientIdPrefix?: string;
  keepalive: number;
  /** false with -c (persistent session). */
  cleanSession: boolean;
  protocolVersion: 4 | 5;
  /** MQTT 5 only: -x, else 0xFFFFFFFF with -c, else 0. undefined for 3.1.1. */
  sessionExpiryInterval?: number;
  username?: string;
  password?: string;
  will?: WillOptions;
  tls: TlsFileOptions;
  properties: CliProperty[];
  /** --session-file PATH: keep the session (inflight, packet ids) across runs. */
  sessionFile?: string;
  debug: boolean;
  quiet: boolean;
}

export type PubMessageSource =
  | { kind: 'message'; text: string }
  | { kind: 'file'; path: string }
  | { kind: 'stdin-file' }
  | { kind: 'stdin-line' }
  | { kind: 'null' };

export interface PubOptions extends CommonOptions {
  command: 'pub';
  topic: string;
  message: PubMessageSource;
  qos: QoS;
  retain: boolean;
  /** --repeat: publish the message this many times (default 1). */
  repeat: number;
  /** --repeat-delay in milliseconds (given in seconds on the command line). */
  repeatDelayMs: number;
}

export interface SubOptions extends CommonOptions {
  command: 'sub';
  topics: string[];
  /** -T: do not print messages matching these filters. */
  filterOut: string[];
  /** -U: unsubscribe from these filters (after subscribing to -t ones). */
  unsubscribe: string[];
  qos: QoS;
  /** -C: exit after this many messages. */
  count?: number;
  /** -W: exit with code 27 after this many seconds without reaching -C. */
  timeoutSec?: number;
  verbose: boolean;
  /** -N: no newline after each payload. */
  noEol: boolean;
  /** -R: do not print stale (retained) messages. */
  noRetained: boolean;
  /** -E: exit once the subscriptions are acknowledged. */
  exitAfterSubscribe: boolean;
  retainedOnly: boolean;
  removeRetained: boolean;
  /** --guard-replays: the core's guardReplayAfterPubrel (mosquitto 2.0 and aedes replay finished QoS 2 messages). */
  guardReplays: boolean;
}

export type CliOptions = PubOptions | SubOptions;

export type ParseOutcome =
  | { kind: 'run'; options: CliOptions }
  /** --help / --version: print `text` to stdout, exit with `exitCode`. */
  | { kind: 'info'; text: string; exitCode: number }
  /** Print `message` and `hint` to stderr, exit with `exitCode`. */
  | { kind: 'error'; message: string; hint: string; exitCode: number };

export const VERSION = '0.1.0';

// ---------------------------------------------------------------- properties

export type PropertyCommand = 'connect' | 'publish' | 'subscribe' | 'unsubscribe' | 'disconnect' | 'will';
type PropertyKind = 'byte' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair';

/** MQTT 5 properties by mosquitto name: value kind and the packets allowed (MQTT 5 table 2-4). */
const PROPERTIES: Readonly<Record<string, readonly [PropertyKind, readonly PropertyCommand[]]>> = Object.freeze({
  'payload-format-indicator': ['byte', ['publish', 'will']],
  'message-expiry-interval': ['u32', ['publish', 'will']],
  'content-type': ['string', ['publish', 'will']],
  'response-topic': ['string', ['publish', 'will']],
  'correlation-data': ['binary', ['publish', 'will']],
  'subscription-identifier': ['varint', ['subscribe']],
  'session-expiry-interval': ['u32', ['connect', 'disconnect']],
  'authentication-method': ['string', ['connect']],
  'authentication-data': ['binary', ['connect']],
  'request-problem-information': ['byte', ['connect']],
  'will-delay-interval': ['u32', ['will']],
  'request-response-information': ['byte', ['connect']],
  'reason-string': ['string', ['disconnect']],
  'receive-maximum': ['u16', ['connect']],
  'topic-alias-maximum': ['u16', ['connect']],
  'topic-alias': ['u16', ['publish']],
  'maximum-packet-size': ['u32', ['connect']],
  'user-property': ['pair', ['connect', 'publish', 'subscribe', 'unsubscribe', 'disconnect', 'will']],
});
const COMMANDS: readonly string[] = Object.freeze(['connect', 'publish', 'subscribe', 'unsubscribe', 'disconnect', 'will']);
const INT_MAX: Readonly<Record<string, number>> = Object.freeze({ byte: 0xff, u16: 0xffff, u32: 0xffffffff, varint: 268_435_455 });

// ---------------------------------------------------------------- topics

/** [MQTT-4.7.3-1] non-empty; [MQTT-3.3.2-2] no wildcards in a topic name; no NUL [MQTT-1.5.3-2]. */
function validPublishTopic(t: string): boolean {
  return t.length > 0 && !/[+#\u0000]/.test(t) && Buffer.byteLength(t) <= 65535;
}

/** [MQTT-4.7.1-2] '#' last and alone in its level; [MQTT-4.7.1-3] '+' alone in its level. */
function validFilter(f: string): boolean {
  if (f.length === 0 || f.includes('\u0000') || Buffer.byteLength(f) > 65535) return false;
  const levels = f.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return false;
    if (l.includes('+') && l !== '+') return false;
  }
  return true;
}

// ---------------------------------------------------------------- parser

class ArgError extends Error {}

/** Strict decimal integer (mosquitto uses atoi; we refuse "12abc" instead of reading 12). */
function int(s: string): number {
  return /^-?\d+$/.test(s) ? Number(s) : NaN;
}

/**
 * What the parser collects. Fields named as in the parsed options take their
 * types (and meanings) from there; the rest are the raw pieces the parser turns
 * into url, will and protocolVersion at the end.
 */
interface State
  extends Pick<CommonOptions, 'clientId' | 'clientIdPrefix' | 'keepalive' | 'cleanSession' | 'username' | 'password' | 'tls' | 'properties' | 'sessionFile' | 'debug' | 'quiet'>,
    Pick<SubOptions, 'topics' | 'qos' | 'filterOut' | 'unsubscribe' | 'count' | 'timeoutSec' | 'verbose' | 'noEol' | 'noRetained' | 'exitAfterSubscribe' | 'retainedOnly' | 'removeRetained' | 'guardReplays'>,
    Pick<PubOptions, 'retain'>,
    Partial<Pick<PubOptions, 'message' | 'repeat' | 'repeatDelayMs'>> {
  command: CliCommand;
  host?: string;
  port?: number;
  urlScheme?: Scheme;
  ws: boolean;
  version?: 4 | 5;
  sessionExpiry?: number;
  willTopic?: string;
  willPayload?: string;
  willQos?: QoS;
  willRetain: boolean;
}

type Handler = (s: State, args: readonly string[], flag: string) => void;
interface OptionSpec {
  names: readonly string[];
  /** Values taken after the flag; their names make the "no X specified" error. */
  values: readonly string[];
  for: CliCommand | 'both';
  run: Handler;
}

function addTopic(s: State, t: string): void {
  if (s.command === 'pub') {
    if (s.topics.length) throw new ArgError('Error: Duplicate topic argument given.');
    if (!validPublishTopic(t)) throw new ArgError(`Error: Invalid publish topic '${t}', does it contain '+' or '#'?`);
  } else if (!validFilter(t)) {
    throw new ArgError(`Error: Invalid subscription topic '${t}', are all '+' and '#' wildcards correct?`);
  }
  s.topics.push(t);
}

function setMessage(s: State, m: PubMessageSource): void {
  if (s.message) throw new ArgError('Error: Only one type of message can be sent at once.');
  s.message = m;
}

function qosOf(v: string, what: string): QoS {
  const q = int(v);
  if (!(q >= 0 && q <= 2)) throw new ArgError(`Error: Invalid ${what} given: ${v}`);
  return q as QoS;
}

// As mosquitto's -L: WebSocket URLs default to the MQTT ports too (unlike openTransport's 80/443).
const URL_DEFAULT_PORT: Readonly<Record<Scheme, number>> = Object.freeze({ mqtt: 1883, mqtts: 8883, ws: 1883, wss: 8883 });

/** -L mqtt(s)|ws(s)://[user[:password]@]host[:port]/topic, parsed by hand as mosquitto does ('#' is a wildcard, not a fragment). */
function applyUrl(s: State, url: string): void {
  const m = /^(mqtts?|wss?):\/\/(.*)$/i.exec(url);
  if (!m) throw new ArgError('Error: Unsupported URL scheme.');
  const scheme = m[1]!.toLowerCase() as Scheme;
  let rest = m[2]!;
  const slash = rest.indexOf('/');
  if (slash < 0) throw new ArgError('Error: Invalid URL for -L argument specified - topic missing.');
  const topic = rest.slice(slash + 1);
  rest = rest.slice(0, slash);
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const cred = rest.slice(0, at);
    const colon = cred.indexOf(':');
    s.username = colon >= 0 ? cred.slice(0, colon) : cred;
    if (colon >= 0) s.password = cred.slice(colon + 1);
    rest = rest.slice(at + 1);
  }
  let port = URL_DEFAULT_PORT[scheme];
  const hp = /^(\[[^\]]+\]|[^:]*)(?::(.*))?$/.exec(rest)!;
  const host = hp[1]!.replace(/^\[(.*)\]$/, '$1');
  if (hp[2] !== undefined) {
    port = int(hp[2]);
    if (!(port >= 1 && port <= 65535)) throw new ArgError(`Error: Invalid port given: ${hp[2]}`);
  }
  if (!host) throw new ArgError('Error: Invalid URL for -L argument specified - host missing.');
  s.host = host;
  s.port = port;
  s.urlScheme = scheme;
  if (scheme === 'mqtts' || scheme === 'wss') s.tls.useOsCerts = true;
  addTopic(s, topic);
}

function parseProperty(s: State, args: readonly string[], i: number): number {
  const [cmd, name, v1, v2] = [args[i], args[i + 1], args[i + 2], args[i + 3]];
  if (cmd === undefined || name === undefined || v1 === undefined) {
    throw new ArgError('Error: -D argument given but not enough values: use -D command identifier value.');
  }
  if (!COMMANDS.includes(cmd)) throw new ArgError(`Error: Invalid command '${cmd}' given in --property argument.`);
  const spec = PROPERTIES[name];
  if (!spec) throw new ArgError(`Error: Invalid property name '${name}' given in --property argument.`);
  const [kind, allowed] = spec;
  if (!allowed.includes(cmd as PropertyCommand)) throw new ArgError(`Error: ${name} property not allowed for ${cmd} in --property argument.`);
  const command = cmd as PropertyCommand;
  if (kind === 'pair') {
    if (v2 === undefined) throw new ArgError('Error: user-property needs a name and a value in --property argument.');
    s.properties.push({ command, name, value: [v1, v2] as const });
    return 4;
  }
  if (kind === 'string' || kind === 'binary') {
    s.properties.push({ command, name, value: v1 });
    return 3;
  }
  const n = int(v1);
  const max = INT_MAX[kind]!;
  if (!(n >= (kind === 'varint' ? 1 : 0) && n <= max)) throw new ArgError(`Error: Invalid value '${v1}' for ${name} in --property argument.`);
  s.properties.push({ command, name, value: n });
  return 3;
}

const OPTIONS: readonly OptionSpec[] = Object.freeze([
  { names: ['-h', '--host'], values: ['host'], for: 'both', run: (s, [v]) => { s.host = v; } },
  {
    names: ['-p', '--port'], values: ['port'], for: 'both', run: (s, [v]) => {
      const p = int(v!);
      if (!(p >= 1 && p <= 65535)) throw new ArgError(`Error: Invalid port given: ${v}`);
      s.port = p;
    },
  },
  { names: ['-L', '--url'], values: ['URL'], for: 'both', run: (s, [v]) => applyUrl(s, v!) },
  { names: ['-t', '--topic'], values: ['topic'], for: 'both', run: (s, [v]) => addTopic(s, v!) },
  { names: ['-m', '--message'], values: ['message'], for: 'pub', run: (s, [v]) => setMessage(s, { kind: 'message', text: v! }) },
  { names: ['-f', '--file'], values: ['file'], for: 'pub', run: (s, [v]) => setMessage(s, { kind: 'file', path: v! }) },
  { names: ['-s', '--stdin-file'], values: [], for: 'pub', run: (s) => setMessage(s, { kind: 'stdin-file' }) },
  { names: ['-l', '--stdin-line'], values: [], for: 'pub', run: (s) => setMessage(s, { kind: 'stdin-line' }) },
  { names: ['-n', '--null-message'], values: [], for: 'pub', run: (s) => setMessage(s, { kind: 'null' }) },
  { names: ['-q', '--qos'], values: ['QoS'], for: 'both', run: (s, [v]) => { s.qos = qosOf(v!, 'QoS'); } },
  { names: ['-r', '--retain'], values: [], for: 'pub', run: (s) => { s.retain = true; } },
  {
    names: ['-i', '--id'], values: ['id'], for: 'both', run: (s, [v]) => {
      if (s.clientIdPrefix !== undefined) throw new ArgError('Error: -i and -I argument cannot be used together.');
      if (Buffer.byteLength(v!) > 65535) throw new ArgError('Error: Client id is longer than 65535 bytes.');
      s.clientId = v;
    },
  },
  {
    names: ['-I', '--id-prefix'], values: ['id prefix'], for: 'both', run: (s, [v]) => {
      if (s.clientId !== undefined) throw new ArgError('Error: -i and -I argument cannot be used together.');
      s.clientIdPrefix = v;
    },
  },
  {
    names: ['-k', '--keepalive'], values: ['keepalive'], for: 'both', run: (s, [v]) => {
      const k = int(v!);
      if (!(k >= 5 && k <= 65535)) throw new ArgError('Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.');
      s.keepalive = k;
    },
  },
  { names: ['-c', '--disable-clean-session'], values: [], for: 'both', run: (s) => { s.cleanSession = false; } },
  { names: ['-u', '--username'], values: ['username'], for: 'both', run: (s, [v]) => { s.username = v; } },
  { names: ['-P', '--pw'], values: ['password'], for: 'both', run: (s, [v]) => { s.password = v; } },
  {
    names: ['-V', '--protocol-version'], values: ['version'], for: 'both', run: (s, [v]) => {
      if (v === 'mqttv311' || v === '311') s.version = 4;
      else if (v === 'mqttv5' || v === '5') s.version = 5;
      else if (v === 'mqttv31' || v === '31') throw new ArgError('Error: MQTT v3.1 is not supported by dormouse; use mqttv311 or mqttv5.');
      else throw new ArgError('Error: Invalid protocol version argument given.');
    },
  },
  {
    names: ['-x', '--session-expiry-interval'], values: ['session expiry interval'], for: 'both', run: (s, [v]) => {
      if (v === '∞') { s.sessionExpiry = 0xffffffff; return; }
      if (!/^-?(0x[0-9a-f]+|\d+)$/i.test(v!)) throw new ArgError('Error: session-expiry-interval not a number.');
      const n = Number(v!.replace(/^-/, '')) * (v!.startsWith('-') ? -1 : 1);
      if (n < -1 || n > 0xffffffff) throw new ArgError('Error: session-expiry-interval out of range.');
      s.sessionExpiry = n === -1 ? 0xffffffff : n;
    },
  },
  { names: ['-d', '--debug'], values: [], for: 'both', run: (s) => { s.debug = true; } },
  { names: ['--quiet'], values: [], for: 'both', run: (s) => { s.quiet = true; } },
  { names: ['--nodelay'], values: [], for: 'both', run: () => { /* always on in dormouse */ } },
  { names: ['--ws'], values: [], for: 'both', run: (s) => { s.ws = true; } },
  {
    names: ['--will-topic'], values: ['will topic'], for: 'both', run: (s, [v]) => {
      if (!validPublishTopic(v!)) throw new ArgError(`Error: Invalid will topic '${v}', does it contain '+' or '#'?`);
      s.willTopic = v;
    },
  },
  { names: ['--will-payload'], values: ['will payload'], for: 'both', run: (s, [v]) => { s.willPayload = v; } },
  {
    names: ['--will-qos'], values: ['will QoS'], for: 'both', run: (s, [v]) => {
      const q = int(v!);
      if (!(q >= 0 && q <= 2)) throw new ArgError(`Error: Invalid will QoS ${v}.`);
      s.willQos = q as QoS;
    },
  },
  { names: ['--will-retain'], values: [], for: 'both', run: (s) => { s.willRetain = true; } },
  { names: ['--cafile'], values: ['file'], for: 'both', run: (s, [v]) => { s.tls.cafile = v; } },
  { names: ['--capath'], values: ['directory'], for: 'both', run: (s, [v]) => { s.tls.capath = v; } },
  { names: ['--cert'], values: ['file'], for: 'both', run: (s, [v]) => { s.tls.certfile = v; } },
  { names: ['--key'], values: ['file'], for: 'both', run: (s, [v]) => { s.tls.keyfile = v; } },
  { names: ['--insecure'], values: [], for: 'both', run: (s) => { s.tls.insecure = true; } },
  { names: ['--tls-use-os-certs'], values: [], for: 'both', run: (s) => { s.tls.useOsCerts = true; } },
  { names: ['--session-file'], values: ['path'], for: 'both', run: (s, [v]) => { s.sessionFile = v; } },
  {
    names: ['--repeat'], values: ['count'], for: 'pub', run: (s, [v]) => {
      const n = int(v!);
      if (!(n >= 1)) throw new ArgError('Error: --repeat argument must be >0.');
      s.repeat = n;
    },
  },
  {
    names: ['--repeat-delay'], values: ['time'], for: 'pub', run: (s, [v]) => {
      const f = /^\d+(\.\d*)?$|^\.\d+$/.test(v!) ? Number(v) : NaN;
      if (!(f >= 0)) throw new ArgError('Error: --repeat-delay argument must be >=0.0.');
      s.repeatDelayMs = Math.round(f * 1000);
    },
  },
  {
    names: ['-T', '--filter-out'], values: ['topic filter'], for: 'sub', run: (s, [v]) => {
      if (!validFilter(v!)) throw new ArgError(`Error: Invalid filter topic '${v}', are all '+' and '#' wildcards correct?`);
      s.filterOut.push(v!);
    },
  },
  {
    names: ['-U', '--unsubscribe'], values: ['unsubscribe topic'], for: 'sub', run: (s, [v]) => {
      if (!validFilter(v!)) throw new ArgError(`Error: Invalid unsubscribe topic '${v}', are all '+' and '#' wildcards correct?`);
      s.unsubscribe.push(v!);
    },
  },
  {
    names: ['-C'], values: ['count'], for: 'sub', run: (s, [v]) => {
      const n = int(v!);
      if (!(n >= 1)) throw new ArgError(`Error: Invalid message count "${v}".`);
      s.count = n;
    },
  },
  {
    names: ['-W'], values: ['timeout'], for: 'sub', run: (s, [v]) => {
      const n = int(v!);
      if (!(n >= 1)) throw new ArgError(`Error: Invalid timeout "${v}".`);
      s.timeoutSec = n;
    },
  },
  { names: ['-v', '--verbose'], values: [], for: 'sub', run: (s) => { s.verbose = true; } },
  { names: ['-N'], values: [], for: 'sub', run: (s) => { s.noEol = true; } },
  { names: ['-R'], values: [], for: 'sub', run: (s) => { s.noRetained = true; } },
  { names: ['-E'], values: [], for: 'sub', run: (s) => { s.exitAfterSubscribe = true; } },
  { names: ['--retained-only'], values: [], for: 'sub', run: (s) => { s.retainedOnly = true; } },
  { names: ['--remove-retained'], values: [], for: 'sub', run: (s) => { s.removeRetained = true; } },
  { names: ['--guard-replays'], values: [], for: 'sub', run: (s) => { s.guardReplays = true; } },
] satisfies OptionSpec[]);

const BY_NAME: ReadonlyMap<string, OptionSpec> = new Map(OPTIONS.flatMap((o) => o.names.map((n) => [n, o] as const)));

/** mosquitto options dormouse knows of but does not implement: a clearer message than "Unknown option". */
const NOT_SUPPORTED: ReadonlySet<string> = new Set([
  '-A', '-S', '-o', '-M', '-F', '--unix', '--proxy', '--psk', '--psk-identity', '--tls-engine', '--tls-engine-kpass-sha1',
  '--keyform', '--ciphers', '--tls-version', '--tls-alpn', '--pretty', '--random-filter', '--retain-as-published', '-w', '--watch', '--no-tls',
]);

export function usageHint(command: CliCommand): string {
  return `Use 'dormouse ${command} --help' to see usage.`;
}

/** Parses argv (without node, script and the pub/sub word). Never throws, never touches files or stdin. */
export function parseCliArgs(command: CliCommand, argv: readonly string[]): ParseOutcome {
  try {
    return parseOrThrow(command, argv);
  } catch (e) {
    if (e instanceof ArgError) return { kind: 'error', message: e.message, hint: usageHint(command), exitCode: ExitCode.Usage };
    throw e;
  }
}

function parseOrThrow(command: CliCommand, argv: readonly string[]): ParseOutcome {
  const s: State = {
    command, ws: false, keepalive: 60, cleanSession: true, willRetain: false,
    tls: { insecure: false, useOsCerts: false }, properties: [], debug: false, quiet: false,
    topics: [], qos: 0, retain: false, filterOut: [], unsubscribe: [], verbose: false, noEol: false,
    noRetained: false, exitAfterSubscribe: false, retainedOnly: false, removeRetained: false, guardReplays: false,
  };
  let sawProperty = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help') return { kind: 'info', text: usage(command), exitCode: ExitCode.Usage };
    if (a === '--version') return { kind: 'info', text: `dormouse ${command} version ${VERSION}`, exitCode: ExitCode.Usage };
    if (a === '-D' || a === '--property') {
      i += parseProperty(s, argv, i + 1);
      sawProperty = true;
      continue;
    }
    const spec = BY_NAME.get(a);
    if (!spec || (spec.for !== 'both' && spec.for !== command)) {
      if (NOT_SUPPORTED.has(a)) throw new ArgError(`Error: Option '${a}' is not supported by dormouse ${command}.`);
      throw new ArgError(`Error: Unknown option '${a}'.`);
    }
    const vals = argv.slice(i + 1, i + 1 + spec.values.length);
    if (vals.length < spec.values.length) {
      throw new ArgError(`Error: ${a} argument given but no ${spec.values[vals.length]} specified.`);
    }
    spec.run(s, vals, a);
    i += spec.values.length;
  }
  return { kind: 'run', options: finish(s, sawProperty) };
}

function finish(s: State, sawProperty: boolean): CliOptions {
  // -D implies MQTT 5 (as mosquitto 2.x does), unless v3.1.1 was asked for explicitly.
  if (sawProperty && s.version === 4) throw new ArgError('Error: -D argument given, but MQTT version is not v5.0.');
  const version: 4 | 5 = s.version ?? (sawProperty ? 5 : 4);
  if (s.sessionExpiry !== undefined && version !== 5) {
    throw new ArgError('Error: -x argument given, but MQTT version is not v5.0.');
  }
  if ((s.willPayload !== undefined || s.willQos !== undefined || s.willRetain) && s.willTopic === undefined) {
    throw new ArgError('Error: Will payload, QoS or retain given, but no will topic given.');
  }
  if (s.properties.some((p) => p.command === 'will') && s.willTopic === undefined) {
    throw new ArgError('Error: will properties given, but no will topic given.');
  }
  if ((s.tls.certfile === undefined) !== (s.tls.keyfile === undefined)) {
    throw new ArgError('Error: Both certfile and keyfile must be provided if one of them is set.');
  }
  // [MQTT-3.1.2-22] a password needs a user name in 3.1.1 (MQTT 5 allows it alone).
  if (s.password !== undefined && s.username === undefined && version === 4) {
    throw new ArgError('Error: -P given without -u; MQTT v3.1.1 needs a username with a password.');
  }
  // [MQTT-3.1.3-7] an empty client id needs a clean session (3.1.1); a v5 broker would assign one we could not reuse.
  if (!s.cleanSession && s.clientId === undefined && s.clientIdPrefix === undefined) {
    throw new ArgError('Error: You must provide a client id if you are using the -c option.');
  }
  if (s.clientId === '' && !s.cleanSession) {
    throw new ArgError('Error: You must provide a client id if you are using the -c option.');
  }

  const tlsWanted = s.tls.cafile !== undefined || s.tls.capath !== undefined || s.tls.useOsCerts;
  let scheme: Scheme;
  if (s.urlScheme) scheme = s.ws && !s.urlScheme.startsWith('ws') ? (s.urlScheme === 'mqtts' ? 'wss' : 'ws') : s.urlScheme;
  else scheme = s.ws ? (tlsWanted ? 'wss' : 'ws') : (tlsWanted ? 'mqtts' : 'mqtt');
  const host = s.host ?? 'localhost';
  const secure = scheme === 'mqtts' || scheme === 'wss';
  // mosquitto: 1883, or 8883 when a CA is given; WebSockets use the same MQTT ports unless told.
  const port = s.port ?? (secure ? 8883 : 1883);
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const url = `${scheme}://${hostInUrl}:${port}${scheme === 'ws' || scheme === 'wss' ? '/mqtt' : ''}`;

  const common: CommonOptions = {
    url, scheme, host, port,
    clientId: s.clientId,
    clientIdPrefix: s.clientIdPrefix,
    keepalive: s.keepalive,
    cleanSession: s.cleanSession,
    protocolVersion: version,
    sessionExpiryInterval: version === 5 ? (s.sessionExpiry ?? (s.cleanSession ? 0 : 0xffffffff)) : undefined,
    username: s.username,
    password: s.password,
    will: s.willTopic === undefined ? undefined
      : { topic: s.willTopic, payload: s.willPayload ?? '', qos: s.willQos ?? 0, retain: s.willRetain },
    tls: s.tls,
    properties: s.properties,
    sessionFile: s.sessionFile,
    debug: s.debug,
    quiet: s.quiet,
  };

  if (s.command === 'pub') {
    if (s.topics.length === 0 || !s.message) throw new ArgError('Error: Both topic and message must be supplied.');
    if (s.message.kind === 'stdin-line' && (s.repeat !== undefined || s.repeatDelayMs !== undefined)) {
      throw new ArgError('Error: --repeat can only be used with -m, -f, -n or -s.');
    }
    for (const p of s.properties) {
      if (p.command === 'subscribe' || p.command === 'unsubscribe') throw new ArgError(`Error: ${p.command} properties are not used by dormouse pub.`);
    }
    return { ...common, command: 'pub', topic: s.topics[0]!, message: s.message, qos: s.qos, retain: s.retain, repeat: s.repeat ?? 1, repeatDelayMs: s.repeatDelayMs ?? 0 };
  }
  if (s.topics.length === 0 && s.unsubscribe.length === 0) throw new ArgError('Error: You must specify a topic to subscribe to.');
  if (s.retainedOnly && s.noRetained) throw new ArgError('Error: --retained-only and -R cannot be used together.');
  if (s.properties.some((p) => p.command === 'publish')) throw new ArgError('Error: publish properties are not used by dormouse sub.');
  return {
    ...common, command: 'sub', topics: s.topics, filterOut: s.filterOut, unsubscribe: s.unsubscribe, qos: s.qos,
    count: s.count, timeoutSec: s.timeoutSec, verbose: s.verbose, noEol: s.noEol, noRetained: s.noRetained,
    exitAfterSubscribe: s.exitAfterSubscribe, retainedOnly: s.retainedOnly, removeRetained: s.removeRetained,
    guardReplays: s.guardReplays,
  };
}

/** Also handy for the CLI main: the address part of the parsed options. */
export function brokerAddressOf(o: CommonOptions): BrokerAddress {
  const websocket = o.scheme === 'ws' || o.scheme === 'wss';
  return { scheme: o.scheme, host: o.host, port: o.port, path: websocket ? '/mqtt' : '', secure: o.scheme === 'mqtts' || o.scheme === 'wss', websocket };
}

const COMMON_USAGE = `
 -c : disable clean session/enable persistent session (needs -i; MQTT 5: session expiry defaults to never).
 -d : enable debug messages.
 -D : MQTT v5 property: -D command identifier value (e.g. -D publish message-expiry-interval 60).
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client.
 -I : prefix for a client id made of it and the process id.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : URL mqtt(s)://[username[:password]@]host[:port]/topic, or ws(s)://.
 -p : network port to connect to. Defaults to 1883, or 8883 with TLS.
 -P : provide a password.
 -q : quality of service level. Defaults to 0.
 -t : mqtt topic%TOPIC%.
 -u : provide a username.
 -V : MQTT protocol version: mqttv5 (5) or mqttv311 (311). Defaults to mqttv311.
 -x : session expiry interval (MQTT 5), seconds; -1 or ∞ for never.
 --cafile, --capath : trusted CA certificates; enables TLS.
 --cert, --key : client certificate and key.
 --insecure : do not verify the server certificate (testing only).
 --tls-use-os-certs : trust the system CA store; enables TLS.
 --quiet : don't print error messages.
 --session-file : keep the client session (inflight messages, packet ids) in PATH.0/PATH.1 across runs.
 --will-payload, --will-qos, --will-retain, --will-topic : the client Will.
 --ws : connect using WebSockets (path /mqtt).
 --help : display this message.  --version : print the version.`;

export function usage(command: CliCommand): string {
  if (command === 'pub') {
    return `dormouse pub is a simple MQTT client that publishes one message (or a stream of lines) and exits.
Usage: dormouse pub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}
                    {-f file | -l | -n | -m message | -s}
                    [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                    [-i id] [-I id_prefix] [-d] [--quiet] [-V protocol-version] [-D command identifier value]
                    [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                    [--cafile file] [--capath dir] [--cert file --key file] [--insecure] [--session-file path]
 -f : send the contents of a file as the message.
 -l : read messages from stdin, sending a separate message for each line.
 -m : message payload to send.
 -n : send a null (zero length) message.
 -r : message should be retained.
 -s : read message from stdin, sending the entire input as a message.
 --repeat : publish the message N times.  --repeat-delay : seconds between repeats.${COMMON_USAGE.replace('%TOPIC%', ' to publish to')}
`;
  }
  return `dormouse sub is a simple MQTT client that subscribes to topics and prints the messages it receives.
Usage: dormouse sub {[-h host] [-p port] [-u username] [-P password] -t topic ... | -L URL [-t topic ...]}
                    [-c] [-k keepalive] [-q qos] [-x session-expiry] [-C msg_count] [-E] [-N] [-R]
                    [--retained-only] [--remove-retained] [--guard-replays] [-T filter_out ...] [-U topic ...] [-v] [-W timeout]
                    [-i id] [-I id_prefix] [-d] [--quiet] [-V protocol-version] [-D command identifier value]
                    [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                    [--cafile file] [--capath dir] [--cert file --key file] [--insecure] [--session-file path]
 -C : disconnect and exit after receiving this many messages.
 -E : exit once all subscriptions are acknowledged.
 -N : do not add an end of line character when printing the payload.
 -R : do not print stale (retained) messages.
 -T : topic filter to hide from the output; may be repeated.
 -U : unsubscribe from a topic; may be repeated.
 -v : print published messages verbosely (topic and payload).
 -W : exit with code 27 after this many seconds if -C messages have not arrived.
 --guard-replays : do not print again a QoS 2 message the broker sends once more after
                   releasing it (mosquitto 2.0, aedes 1.2 do; see README "Brokers have bugs too").
 --remove-retained : clear retained messages that arrive.
 --retained-only : print only retained messages; exit at the first that is not.${COMMON_USAGE.replace('%TOPIC%', ' to subscribe to; may be repeated')}
`;
}
