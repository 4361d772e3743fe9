// Scenario files (YAML or JSON) for `dormouse sim`: their types, and their
// validation against sim/scenario.schema.json (JSON Schema 2020-12, which
// also gives editors completion and checks) with ajv. ajv's errors are put in
// words that name the path and the value, e.g.
//   fleet.devices: must be a whole number >= 1 (got "lots")
//   fleet.devcies: unknown key (did you mean "devices"?)
// A scenario describes one fleet, its network, the broker and the faults;
// `variants` run the same scenario again with some fields changed (QoS,
// session kind, reconnect policy) so their results can be compared.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';

export interface ReconnectSpec {
  backoff: 'immediate' | 'fixed' | 'exponential';
  jitter: 'full' | 'none';
  baseMs: number;
  capMs: number;
}

export interface FleetSpec {
  devices: number;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5.0. */
  protocol: 4 | 5;
  qos: 0 | 1 | 2;
  session: 'clean' | 'persistent';
  /** sleepy: wake, publish, wait for the ack (bounded), deep sleep. always-on: stay connected, publish on a timer. */
  mode: 'sleepy' | 'always-on';
  /** Seconds between readings (and wakes, for sleepy devices). */
  everyS: number;
  payloadBytes: number;
  /** Topic; {id} is replaced by the device id. */
  topic: string;
  /** Message Expiry Interval, s (also bounds the wait in the device outbox); null for none. */
  expiryS: number | null;
  keepaliveS: number;
  /** Longest a sleepy device stays awake waiting for acks, s. */
  awakeWindowS: number;
  /** Devices start at a random time in [0, startSpreadS). */
  startSpreadS: number;
  connectTimeoutS: number;
  /** MQTT 5 Session Expiry Interval for persistent sessions, s. */
  sessionExpiryS: number;
  capacities: { inflight: number; outbox: number; storeBytes: number };
  outboxPolicy: 'reject' | 'drop-oldest' | 'drop-newest';
  sessionLost: 'republish' | 'discard';
  reconnect: ReconnectSpec;
}

export interface BrokerSpec {
  /** Messages a session may hold waiting (the per-client queue cap, mosquitto's max_queued_messages). */
  maxQueuedPerClient: number;
  maxInflightPerClient: number;
  /** CONNECTs the broker can take per second; the rest are refused (server unavailable). null: no limit. */
  maxConnectsPerSecond: number | null;
  /** Broker memory per queued message beside its payload and topic, bytes (the plan's O). */
  overheadBytes: number;
  /** How often the broker model runs its timers (keepalive, expiry), s. */
  tickEveryS: number;
}

export interface NetworkSpec {
  latencyMs: number;
  jitterMs: number;
  /** Link bitrate for serialization delay and the radio model, bits/s. */
  bitrateBps: number;
  /** Chance that a connection is cut (reset) at a random moment of its first `cutWithinMs`. */
  cutProbability: number;
  cutWithinMs: number;
}

export interface RadioSpec {
  /** Bytes of IPv4 + TCP headers per segment (FACTS: at least 40). */
  headerBytes: number;
  txMa: number;
  rxMa: number;
  /** Average current while awake and not transmitting or receiving. */
  awakeMa: number;
  sleepUa: number;
  volts: number;
  batteryMah: number;
  /** Boot per wake, not simulated; added to awake time. */
  wakeOverheadMs: number;
  /**
   * The Wi-Fi join per wake from the wake model (modules/wake/energy.ts): 'none' leaves it out;
   * 'scan+dhcp' is a wake without fast-connect hints (scan, DHCP and a DNS lookup of the broker);
   * 'bssid+static' one with them (known BSSID, static address, the broker's address kept).
   */
  wifi: 'none' | 'scan+dhcp' | 'bssid+static';
  /** TLS 1.2 per connection from the wake model: a full handshake, a resumed one (session kept across sleep), or none. */
  tls: 'none' | 'full' | 'resumed';
}

export interface DownlinkSpec {
  /** A backend publishes to each device's topic every everyS seconds. */
  everyS: number;
  qos: 0 | 1 | 2;
  payloadBytes: number;
  topic: string;
  expiryS: number | null;
}

export type FaultSpec =
  | { kind: 'outage'; atS: number; durationS: number; share: number; staggerS: number; mode: 'partition' | 'cut' | 'stall' }
  | { kind: 'broker-restart'; atS: number; downForS: number; keepSessions: boolean }
  | { kind: 'power-outage'; atS: number; durationS: number; brokerBootS: number; bootSpreadS: number };

export interface Scenario {
  name: string;
  description: string;
  durationS: number;
  /** After durationS: faults healed, no new readings, time for backlogs to drain, s. */
  drainS: number;
  seed: number;
  /** Seconds of virtual time between samples of the time series. */
  sampleEveryS: number;
  fleet: FleetSpec;
  broker: BrokerSpec;
  network: NetworkSpec;
  radio: RadioSpec;
  downlink: DownlinkSpec | null;
  faults: FaultSpec[];
  /** What to report beside the guarantees. */
  report: { plan: boolean; energy: boolean; storm: boolean };
  variants: Array<{ name: string; overrides: Record<string, unknown> }>;
}

export class ScenarioError extends Error {
  constructor(readonly problems: string[], source?: string) {
    super((source ? `${source}: ` : '') + (problems.length === 1 ? problems[0] : 'invalid scenario:\n  ' + problems.join('\n  ')));
  }
}

// ---- validation against sim/scenario.schema.json ------------------------------

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : typeof v === 'number' || v === undefined ? String(v ?? 'nothing') : JSON.stringify(v) ?? String(v));

/** The JSON Schema the files are checked against (also what editors read, through `$schema`). */
export const SCENARIO_SCHEMA_FILE = schemaFile();

function schemaFile(): string {
  const here = fileURLToPath(new URL('scenario.schema.json', import.meta.url));
  if (existsSync(here)) return here;
  // Compiled to dist/sim/ (tsc copies no assets): the sim/ folder the package ships beside dist/.
  return fileURLToPath(new URL('../../sim/scenario.schema.json', import.meta.url));
}

interface SchemaNode {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  properties?: Record<string, unknown>;
}

let validator: ValidateFunction | null = null;

/** Compiled once, on first use (a few hundred ms): every problem reported, defaults written in. */
function compiled(): ValidateFunction {
  validator ??= new Ajv2020({ strict: true, strictRequired: false, allErrors: true, verbose: true, useDefaults: true }).compile(
    JSON.parse(readFileSync(SCENARIO_SCHEMA_FILE, 'utf8')) as object,
  );
  return validator;
}

/** `/fleet/capacities/0` -> `fleet.capacities[0]`. */
function dotted(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

function wanted(s: SchemaNode): string {
  const types = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
  const nullable = types.includes('null') ? ' or null' : '';
  if (s.enum !== undefined) return `one of ${s.enum.map((x) => JSON.stringify(x)).join(', ')}`;
  if (types.includes('integer') || types.includes('number')) {
    let want = types.includes('integer') ? 'a whole number' : 'a number';
    if (s.minimum !== undefined && s.maximum !== undefined) want += ` from ${s.minimum} to ${s.maximum}`;
    else if (s.minimum !== undefined) want += ` >= ${s.minimum}`;
    else if (s.maximum !== undefined) want += ` <= ${s.maximum}`;
    return want + nullable;
  }
  if (types.includes('string')) return s.minLength ? 'a non-empty string' : 'a string';
  if (types.includes('boolean')) return 'true or false';
  if (types.includes('array')) return 'a list';
  if (types.includes('object')) return 'a mapping of keys to values' + nullable;
  return 'something else';
}

/** ajv's errors in the words of the old checker: one line per path, naming the path and the value. */
function messages(errors: readonly ErrorObject[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (path: string, text: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    out.push(`${path || 'scenario'}: ${text}`);
  };
  for (const e of errors) {
    const at = dotted(e.instancePath);
    const parent = (e.parentSchema ?? {}) as SchemaNode;
    switch (e.keyword) {
      case 'if':
        break; // the branch's own errors say it
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        add(at ? `${at}.${missing}` : missing, 'required');
        break;
      }
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const known = Object.keys(parent.properties ?? {}).filter((k) => k !== '$schema');
        const path = at ? `${at}.${key}` : key;
        if (/^variants\[\d+\]$/.test(at)) {
          add(path, `a variant may change ${known.filter((k) => k !== 'name').join(', ')}`);
          break;
        }
        const near = known.find((s) => editDistance(s.toLowerCase(), key.toLowerCase()) <= 2 || s.startsWith(key) || key.startsWith(s));
        add(path, `unknown key${near ? ` (did you mean "${near}"?)` : `; expected one of ${known.join(', ')}`}`);
        break;
      }
      default:
        if (/^variants\[\d+\]$/.test(at) && e.keyword === 'type') add(at, `must be a mapping with a name and the fields it changes (got ${show(e.data)})`);
        else add(at, `must be ${wanted(parent)} (got ${show(e.data)})`);
    }
  }
  return out;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** Check a parsed document and fill in the defaults; throws ScenarioError listing every problem. */
export function validateScenario(doc: unknown, source?: string): Scenario {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ScenarioError([`the file must hold a mapping (name, fleet, ...), got ${show(doc)}`], source);
  const validate = compiled();
  // ajv writes the defaults into a copy; the variants are taken from the document as written: a variant holds only what it changes.
  const filled = structuredClone(doc) as Record<string, unknown>;
  if (!validate(filled)) throw new ScenarioError(messages(validate.errors ?? []), source);
  const { $schema: _schema, ...out } = { ...filled, variants: [] } as unknown as Scenario & { $schema?: string };
  const variants = ((doc as { variants?: Array<Record<string, unknown>> }).variants ?? []).map(({ name, ...overrides }) => ({ name: name as string, overrides: structuredClone(overrides) }));
  out.variants = variants;
  const errs: string[] = [];
  const f = out.fleet;
  if (f.reconnect.capMs < f.reconnect.baseMs) errs.push(`fleet.reconnect.capMs: must be >= baseMs (${f.reconnect.baseMs}) (got ${f.reconnect.capMs})`);
  if (f.mode === 'sleepy' && f.awakeWindowS > f.everyS) errs.push(`fleet.awakeWindowS: must not exceed fleet.everyS (${f.everyS}) for a sleepy device (got ${f.awakeWindowS})`);
  if (errs.length > 0) throw new ScenarioError(errs, source);
  return out;
}

/** Parse YAML or JSON text (JSON is YAML) and validate it. */
export function parseScenario(text: string, source?: string): Scenario {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ScenarioError([`not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`], source);
  }
  return validateScenario(doc, source);
}

export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError([`cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`], path);
  }
  return parseScenario(text, path);
}

/** The scenario with one variant's changes merged in (mappings merged key by key, lists replaced). */
export function applyVariant(base: Scenario, overrides: Record<string, unknown>): Scenario {
  const merged = merge(structuredClone(base) as unknown as Record<string, unknown>, overrides);
  // Re-validate the merged whole so defaults and cross-field rules hold.
  return validateScenario({ ...stripDefaults(merged), variants: [] });
}

function merge(into: Record<string, unknown>, from: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && cur !== null && typeof cur === 'object' && !Array.isArray(cur)) {
      into[k] = merge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      into[k] = structuredClone(v);
    }
  }
  return into;
}

function stripDefaults(s: Record<string, unknown>): Record<string, unknown> {
  const { variants: _v, ...rest } = s;
  return rest;
}
