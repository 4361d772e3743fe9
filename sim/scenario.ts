// Scenario files (YAML or JSON) for `dormouse sim`: the schema, its defaults
// and a hand-written validator whose errors name the path and the value, e.g.
//   fleet.devices: must be a whole number >= 1 (got "lots")
// A scenario describes one fleet, its network, the broker and the faults;
// `variants` run the same scenario again with some fields changed (QoS,
// session kind, reconnect policy) so their results can be compared.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

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
  /** Boot and Wi-Fi association per wake, not simulated; added to awake time. */
  wakeOverheadMs: number;
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

// ---- a small schema language --------------------------------------------------

type Check = (v: unknown, path: string, errs: string[]) => unknown;

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v));

function num(opts: { min?: number; max?: number; int?: boolean; nullable?: boolean } = {}): Check {
  return (v, path, errs) => {
    if (v === null && opts.nullable) return null;
    const ok = typeof v === 'number' && Number.isFinite(v) && (!opts.int || Number.isInteger(v)) && (opts.min === undefined || v >= opts.min) && (opts.max === undefined || v <= opts.max);
    if (!ok) {
      let want = opts.int ? 'a whole number' : 'a number';
      if (opts.min !== undefined && opts.max !== undefined) want += ` from ${opts.min} to ${opts.max}`;
      else if (opts.min !== undefined) want += ` >= ${opts.min}`;
      else if (opts.max !== undefined) want += ` <= ${opts.max}`;
      if (opts.nullable) want += ' or null';
      errs.push(`${path}: must be ${want} (got ${show(v)})`);
    }
    return v;
  };
}

function oneOf<T extends string | number>(...values: T[]): Check {
  return (v, path, errs) => {
    if (!values.includes(v as T)) errs.push(`${path}: must be one of ${values.map((x) => JSON.stringify(x)).join(', ')} (got ${show(v)})`);
    return v;
  };
}

const str: Check = (v, path, errs) => {
  if (typeof v !== 'string') errs.push(`${path}: must be a string (got ${show(v)})`);
  return v;
};

const bool: Check = (v, path, errs) => {
  if (typeof v !== 'boolean') errs.push(`${path}: must be true or false (got ${show(v)})`);
  return v;
};

type Shape = Record<string, [Check, unknown]>; // field -> [check, default (undefined: required)]

function obj(shape: Shape, opts: { partial?: boolean; nullable?: boolean } = {}): Check {
  return (v, path, errs) => {
    if (v === null && opts.nullable) return null;
    const at = (k: string) => (path ? `${path}.${k}` : k);
    if (v === undefined) v = {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      errs.push(`${path || 'scenario'}: must be a mapping of keys to values (got ${show(v)})`);
      return v;
    }
    const input = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(input)) {
      if (!(k in shape)) {
        const near = Object.keys(shape).find((s) => editDistance(s.toLowerCase(), k.toLowerCase()) <= 2 || s.startsWith(k) || k.startsWith(s));
        errs.push(`${at(k)}: unknown key${near ? ` (did you mean "${near}"?)` : `; expected one of ${Object.keys(shape).join(', ')}`}`);
      }
    }
    for (const [k, [check, dflt]] of Object.entries(shape)) {
      if (input[k] === undefined) {
        if (opts.partial) continue;
        if (dflt === undefined) {
          errs.push(`${at(k)}: required`);
          continue;
        }
        out[k] = typeof dflt === 'object' && dflt !== null ? structuredClone(dflt) : dflt;
        if (typeof dflt === 'object' && dflt !== null && !Array.isArray(dflt)) out[k] = check(out[k], at(k), errs);
        continue;
      }
      out[k] = check(input[k], at(k), errs);
    }
    return out;
  };
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

function list(item: Check): Check {
  return (v, path, errs) => {
    if (!Array.isArray(v)) {
      errs.push(`${path}: must be a list (got ${show(v)})`);
      return [];
    }
    return v.map((x, i) => item(x, `${path}[${i}]`, errs));
  };
}

// ---- the schema ---------------------------------------------------------------

const reconnectShape: Shape = {
  backoff: [oneOf('immediate', 'fixed', 'exponential'), 'exponential'],
  jitter: [oneOf('full', 'none'), 'full'],
  baseMs: [num({ min: 0 }), 1000],
  capMs: [num({ min: 0 }), 60000],
};

const fleetShape: Shape = {
  devices: [num({ int: true, min: 1 }), undefined],
  protocol: [oneOf(4, 5), 5],
  qos: [oneOf(0, 1, 2), 1],
  session: [oneOf('clean', 'persistent'), 'persistent'],
  mode: [oneOf('sleepy', 'always-on'), 'sleepy'],
  everyS: [num({ min: 0.001 }), 60],
  payloadBytes: [num({ int: true, min: 8, max: 60000 }), 16],
  topic: [str, 'devices/{id}/up'],
  expiryS: [num({ int: true, min: 1, nullable: true }), null],
  keepaliveS: [num({ int: true, min: 0, max: 65535 }), 60],
  awakeWindowS: [num({ min: 0.01 }), 5],
  startSpreadS: [num({ min: 0 }), 0],
  connectTimeoutS: [num({ min: 0.01 }), 10],
  sessionExpiryS: [num({ int: true, min: 1 }), 86400],
  capacities: [obj({ inflight: [num({ int: true, min: 1 }), 4], outbox: [num({ int: true, min: 1 }), 8], storeBytes: [num({ int: true, min: 64, max: 65535 }), 1024] }), {}],
  outboxPolicy: [oneOf('reject', 'drop-oldest', 'drop-newest'), 'drop-oldest'],
  sessionLost: [oneOf('republish', 'discard'), 'republish'],
  reconnect: [obj(reconnectShape), {}],
};

const brokerShape: Shape = {
  maxQueuedPerClient: [num({ int: true, min: 0 }), 1000],
  maxInflightPerClient: [num({ int: true, min: 1, max: 65535 }), 20],
  maxConnectsPerSecond: [num({ min: 1, nullable: true }), null],
  overheadBytes: [num({ min: 0 }), 170],
  tickEveryS: [num({ min: 0.1 }), 5],
};

const networkShape: Shape = {
  latencyMs: [num({ min: 0 }), 20],
  jitterMs: [num({ min: 0 }), 0],
  bitrateBps: [num({ min: 1000 }), 1_000_000],
  cutProbability: [num({ min: 0, max: 1 }), 0],
  cutWithinMs: [num({ min: 0 }), 200],
};

const radioShape: Shape = {
  headerBytes: [num({ int: true, min: 0 }), 40],
  txMa: [num({ min: 0 }), 240],
  rxMa: [num({ min: 0 }), 100],
  awakeMa: [num({ min: 0 }), 150],
  sleepUa: [num({ min: 0 }), 10],
  volts: [num({ min: 0.1 }), 3.3],
  batteryMah: [num({ min: 1 }), 2000],
  wakeOverheadMs: [num({ min: 0 }), 0],
};

const downlinkShape: Shape = {
  everyS: [num({ min: 0.001 }), 60],
  qos: [oneOf(0, 1, 2), 1],
  payloadBytes: [num({ int: true, min: 1, max: 60000 }), 16],
  topic: [str, 'devices/{id}/cmd'],
  expiryS: [num({ int: true, min: 1, nullable: true }), null],
};

const faultShapes: Record<string, Shape> = {
  outage: {
    kind: [str, undefined],
    atS: [num({ min: 0 }), undefined],
    durationS: [num({ min: 0 }), undefined],
    share: [num({ min: 0, max: 1 }), 1],
    staggerS: [num({ min: 0 }), 0],
    mode: [oneOf('partition', 'cut', 'stall'), 'partition'],
  },
  'broker-restart': {
    kind: [str, undefined],
    atS: [num({ min: 0 }), undefined],
    downForS: [num({ min: 0 }), 0],
    keepSessions: [bool, true],
  },
  'power-outage': {
    kind: [str, undefined],
    atS: [num({ min: 0 }), undefined],
    durationS: [num({ min: 0 }), undefined],
    brokerBootS: [num({ min: 0 }), 0],
    bootSpreadS: [num({ min: 0 }), 1],
  },
};

const fault: Check = (v, path, errs) => {
  const kind = (v as { kind?: unknown } | null)?.kind;
  const shape = typeof kind === 'string' ? faultShapes[kind] : undefined;
  if (shape === undefined) {
    errs.push(`${path}.kind: must be one of ${Object.keys(faultShapes).map((k) => JSON.stringify(k)).join(', ')} (got ${show(kind)})`);
    return v;
  }
  return obj(shape)(v, path, errs);
};

const variant: Check = (v, path, errs) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    errs.push(`${path}: must be a mapping with a name and the fields it changes (got ${show(v)})`);
    return v;
  }
  const { name, ...rest } = v as Record<string, unknown>;
  if (typeof name !== 'string' || name === '') errs.push(`${path}.name: must be a non-empty string (got ${show(name)})`);
  // Each override is checked against the same schema, as a partial.
  for (const [k, val] of Object.entries(rest)) {
    const field = topShape[k];
    if (field === undefined || k === 'variants' || k === 'name') {
      errs.push(`${path}.${k}: a variant may change ${Object.keys(topShape).filter((x) => x !== 'variants' && x !== 'name').join(', ')}`);
      continue;
    }
    partialChecks[k]?.(val, `${path}.${k}`, errs);
  }
  return { name, overrides: rest };
};

const topShape: Shape = {
  name: [str, undefined],
  description: [str, ''],
  durationS: [num({ min: 1 }), 600],
  drainS: [num({ min: 0 }), 120],
  seed: [num({ int: true, min: 0 }), 1],
  sampleEveryS: [num({ min: 0.1 }), 60],
  fleet: [obj(fleetShape), undefined],
  broker: [obj(brokerShape), {}],
  network: [obj(networkShape), {}],
  radio: [obj(radioShape), {}],
  downlink: [obj(downlinkShape, { nullable: true }), null],
  faults: [list(fault), []],
  report: [obj({ plan: [bool, false], energy: [bool, false], storm: [bool, false] }), {}],
  variants: [list(variant), []],
};

const partialChecks: Record<string, Check> = {
  fleet: obj(fleetShape, { partial: true }),
  broker: obj(brokerShape, { partial: true }),
  network: obj(networkShape, { partial: true }),
  radio: obj(radioShape, { partial: true }),
  downlink: obj(downlinkShape, { partial: true, nullable: true }),
  faults: list(fault),
  durationS: topShape.durationS[0],
  drainS: topShape.drainS[0],
  description: str,
  seed: topShape.seed[0],
  sampleEveryS: topShape.sampleEveryS[0],
  report: obj({ plan: [bool, false], energy: [bool, false], storm: [bool, false] }, { partial: true }),
};

/** Check a parsed document and fill in the defaults; throws ScenarioError listing every problem. */
export function validateScenario(doc: unknown, source?: string): Scenario {
  const errs: string[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ScenarioError([`the file must hold a mapping (name, fleet, ...), got ${show(doc)}`], source);
  const out = obj(topShape)(doc, '', errs) as Scenario;
  if (errs.length === 0) {
    const f = out.fleet;
    if (f.reconnect.capMs < f.reconnect.baseMs) errs.push(`fleet.reconnect.capMs: must be >= baseMs (${f.reconnect.baseMs}) (got ${f.reconnect.capMs})`);
    if (f.session === 'persistent' && f.protocol === 4 && f.expiryS !== null) {
      // 3.1.1 has no Message Expiry on the wire; Dormouse still drops expired messages from its outbox.
    }
    if (f.mode === 'sleepy' && f.awakeWindowS > f.everyS) errs.push(`fleet.awakeWindowS: must not exceed fleet.everyS (${f.everyS}) for a sleepy device (got ${f.awakeWindowS})`);
  }
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
