// `dormouse plan`: the queue-depth and broker-memory calculator of the fleet
// tracking example (QoS and sessions chapter, "Queue Depth Planning"):
//   Q = N × r × T        messages queued for N clients offline T seconds, r messages/s each
//   M = Q × (S + O)      S bytes per message, O broker overhead per message
// The chapter takes O = 40 B. Measured on mosquitto (FACTS): about 112 B per
// stored message + 56 B per queued copy, so about 170 B when each message goes
// to one client; 40 B is an underestimate. It recommends a per-client queue cap
// (r × T plus a margin, rounded up) and a message expiry of T.

import type { Scenario } from './scenario.js';

export interface PlanInput {
  /** Clients offline at the same time. */
  devices: number;
  /** Messages per second queued for each offline client. */
  ratePerS: number;
  /** Longest outage to ride through, s. */
  outageS: number;
  /** Bytes per message (payload; add the topic if your broker stores it per message). */
  messageBytes: number;
  /** Broker bytes per queued message beside the message itself. */
  overheadBytes: number;
  /** Extra room on the per-client cap. Default 0.1 (10 %). */
  margin?: number;
}

export interface PlanResult {
  input: Required<PlanInput>;
  perClientQueue: number;
  queueDepth: number;
  memoryBytes: number;
  /** The same queue with other overheads: the chapter's 40 B and mosquitto's measured ~170 B. */
  byOverhead: Array<{ overheadBytes: number; label: string; memoryBytes: number }>;
  recommendedQueueCap: number;
  recommendedExpiryS: number;
  /** Memory if every client filled the recommended cap. */
  memoryAtCapBytes: number;
  notes: string[];
}

export const CHAPTER_OVERHEAD = 40;
export const MOSQUITTO_OVERHEAD = 112 + 56; // FACTS: per stored message + per queued copy

export function plan(input: PlanInput): PlanResult {
  const i: Required<PlanInput> = { margin: 0.1, ...input };
  for (const [k, v] of Object.entries(i)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`plan: ${k} must be a number >= 0 (got ${JSON.stringify(v)})`);
  }
  const perClient = i.ratePerS * i.outageS;
  const q = i.devices * perClient;
  const m = q * (i.messageBytes + i.overheadBytes);
  const cap = niceCeil(Math.ceil(perClient * (1 + i.margin)));
  const overheads = [
    { overheadBytes: CHAPTER_OVERHEAD, label: 'chapter (metadata only)' },
    { overheadBytes: MOSQUITTO_OVERHEAD, label: 'mosquitto measured (112 + 56)' },
  ];
  if (!overheads.some((o) => o.overheadBytes === i.overheadBytes)) overheads.push({ overheadBytes: i.overheadBytes, label: 'given' });
  return {
    input: i,
    perClientQueue: perClient,
    queueDepth: q,
    memoryBytes: m,
    byOverhead: overheads.map((o) => ({ ...o, memoryBytes: q * (i.messageBytes + o.overheadBytes) })),
    recommendedQueueCap: cap,
    recommendedExpiryS: Math.ceil(i.outageS),
    memoryAtCapBytes: i.devices * cap * (i.messageBytes + i.overheadBytes),
    notes: [
      `per-client queue cap ${cap}: ${fmt(perClient)} messages in a ${fmt(i.outageS)} s outage + ${Math.round(i.margin * 100)} %, rounded up`,
      `message expiry ${Math.ceil(i.outageS)} s: older messages are stale and the broker deletes them instead of queueing them`,
      'a cap bounds memory even when an outage runs longer than planned: the oldest messages go first (drop policy "oldest")',
    ],
  };
}

/** The plan a scenario implies: its outage, its downlink (or uplink) rate and message size. */
export function planFor(s: Scenario): PlanResult {
  const outage = s.faults.find((f) => f.kind === 'outage');
  const share = outage?.kind === 'outage' ? outage.share : 1;
  const outageS = outage?.kind === 'outage' ? outage.durationS : s.durationS;
  const every = s.downlink?.everyS ?? s.fleet.everyS;
  return plan({
    devices: Math.round(s.fleet.devices * share),
    ratePerS: 1 / every,
    outageS,
    messageBytes: s.downlink?.payloadBytes ?? s.fleet.payloadBytes,
    overheadBytes: s.broker.overheadBytes,
  });
}

/** Round up to 1, 2 or 5 × a power of ten, or a multiple of 50 above 100: queue caps people can remember. */
function niceCeil(n: number): number {
  if (n <= 10) return Math.max(1, n);
  if (n <= 100) return Math.ceil(n / 10) * 10;
  if (n <= 1000) return Math.ceil(n / 50) * 50;
  const p = Math.pow(10, Math.floor(Math.log10(n)) - 1);
  return Math.ceil(n / p) * p;
}

export function fmt(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

export function bytesText(b: number): string {
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB`;
  return `${Math.round(b)} B`;
}

/** The plan as a text table. */
export function planTable(p: PlanResult, measured?: { queued: number; memoryBytes?: number; label: string }): string {
  const i = p.input;
  const rows: Array<[string, string]> = [
    ['clients offline (N)', fmt(i.devices)],
    ['rate per client (r)', `${fmt(i.ratePerS)} msg/s (one every ${fmt(1 / i.ratePerS)} s)`],
    ['outage (T)', `${fmt(i.outageS)} s`],
    ['message size (S)', `${fmt(i.messageBytes)} B`],
    ['per client (r × T)', `${fmt(p.perClientQueue)} messages`],
    ['queue depth Q = N × r × T', `${fmt(p.queueDepth)} messages`],
  ];
  for (const o of p.byOverhead) rows.push([`memory M, O = ${o.overheadBytes} B (${o.label})`, bytesText(o.memoryBytes)]);
  rows.push(['recommended per-client queue cap', `${fmt(p.recommendedQueueCap)} (max_queued_messages)`]);
  rows.push(['recommended message expiry', `${fmt(p.recommendedExpiryS)} s`]);
  rows.push([`memory if every client fills the cap (O = ${i.overheadBytes} B)`, bytesText(p.memoryAtCapBytes)]);
  if (measured) {
    rows.push([`measured queue (${measured.label})`, `${fmt(measured.queued)} messages`]);
    if (measured.memoryBytes !== undefined) rows.push([`measured memory (${measured.label})`, bytesText(measured.memoryBytes)]);
  }
  return table(['', 'value'], rows);
}

export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((x, c) => (c === 0 ? (x ?? '').padEnd(w[c]) : (x ?? '').padStart(w[c]))).join('  ');
  return [line(head), w.map((n) => '─'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}
