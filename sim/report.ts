// The text summary of a simulation run: what ran and how fast, the
// guarantees, and the scenario's own figures (plan vs measured queue, storm
// peaks, energy per delivered message), with the assumptions behind them.

import { bytesText, fmt, planTable, table } from './plan.js';
import type { RunShape, SimResult, VariantResult } from './virtual.js';
import type { RealtimeResult } from './realtime.js';

const n0 = (x: number) => fmt(Math.round(x));
const n1 = (x: number) => x.toFixed(1);
const n2 = (x: number) => x.toFixed(2);

export function summaryText(r: SimResult | RealtimeResult): string {
  const out: string[] = [];
  const modeText = r.mode === 'virtual' ? 'virtual time' : `real time, broker ${(r as RealtimeResult).broker}`;
  out.push(`dormouse sim: ${r.scenario} (${modeText}, seed ${r.seed})`);
  out.push(runLine(r));
  if (r.description) out.push(r.run.devices === r.run.scenarioDevices ? `scenario: ${r.description}` : `scenario as written, for ${fmt(r.run.scenarioDevices)} devices: ${r.description}`);
  out.push('');

  const vs = r.variants;
  out.push(
    table(
      ['run', 'devices', 'sim s', 'wall s', 'device-s/wall-s', 'accepted', 'acked', 'at broker', 'lost', 'QoS2 dup', 'order', 'dropped', 'pending'],
      vs.map((v) => {
        const g = v.guarantees;
        const dropped = Object.values(g.dropped).reduce((a, b) => a + b, 0);
        return [
          v.name,
          n0(v.devices),
          n0(v.simSeconds),
          n1(v.wallMs / 1000),
          n0(v.deviceSecondsPerWallSecond),
          n0(v.qos === 0 ? g.qos0Sent : g.accepted),
          n0(g.acked),
          n0(v.qos === 0 ? g.qos0Delivered : g.delivered),
          n0(g.lost),
          n0(g.duplicatesQos2),
          n0(g.outOfOrder),
          n0(dropped),
          n0(g.pending),
        ];
      }),
    ),
  );
  const dropNotes = vs.flatMap((v) => {
    const parts = Object.entries(v.guarantees.dropped).filter(([, x]) => x > 0).map(([k, x]) => `${k} ${fmt(x)}`);
    const extra: string[] = [];
    if (v.guarantees.rejected > 0) extra.push(`rejected by publish() ${fmt(v.guarantees.rejected)}`);
    if (v.guarantees.duplicatesQos1 > 0) extra.push(`QoS 1 duplicates ${fmt(v.guarantees.duplicatesQos1)} (allowed)`);
    if (v.guarantees.duplicatesQos2CleanSession > 0) extra.push(`QoS 2 again after a clean session was lost ${fmt(v.guarantees.duplicatesQos2CleanSession)} (clean sessions allow it)`);
    return parts.length + extra.length > 0 ? [`  ${v.name}: ${[...parts.map((p) => 'dropped ' + p), ...extra].join(', ')}`] : [];
  });
  if (dropNotes.length > 0) out.push('', 'declared drops and allowed duplicates:', ...dropNotes);
  if (vs[0]?.qos === 0 || vs.some((v) => v.qos === 0)) {
    for (const v of vs.filter((x) => x.qos === 0)) {
      const g = v.guarantees;
      out.push(`  ${v.name}: QoS 0 lost ${fmt(g.qos0Sent - g.qos0Delivered)} of ${fmt(g.qos0Sent)} (${n2((100 * (g.qos0Sent - g.qos0Delivered)) / Math.max(1, g.qos0Sent))} %, no guarantee at QoS 0)`);
    }
  }

  out.push('');
  out.push(
    table(
      ['broker', 'connects', 'peak CONNECT/s', 'peak attempts/s', 'refused busy', 'queue peak', 'at s', 'memory est.', 'queue-full drops', 'expired'],
      vs.map((v) => [
        v.name,
        n0(v.broker.connects),
        n0(v.broker.peakConnectsPerSecond),
        n0(v.broker.peakAttemptsPerSecond),
        n0(v.broker.refusedBusy),
        n0(v.broker.queuedPeak),
        n0(v.broker.queuedPeakAtS),
        bytesText(v.broker.memoryPeakBytes),
        n0(v.broker.droppedQueueFull),
        n0(v.broker.expired),
      ]),
    ),
  );

  if (r.mode === 'virtual') {
    const sr = r as SimResult;
    if (sr.plan) {
      const v = vs[0];
      out.push('', 'plan (Q = N × r × T, M = Q × (S + O)) beside the simulated broker queue:');
      out.push(planTable(sr.plan, { queued: v.broker.queuedPeak, memoryBytes: v.broker.memoryPeakBytes, label: `simulated peak at ${n0(v.broker.queuedPeakAtS)} s` }));
      out.push(
        '  The plan counts T from the moment the link goes; the broker keeps queueing until its keepalive (1.5 × keepalive) notices the dead link,',
        '  and the device needs its own keepalive and reconnect backoff after the outage: the simulated queue shows those too. Staggered outages lower the peak.',
      );
      out.push('', queueSeries(v));
    }
    const storms = vs.filter((v) => v.storm !== null);
    if (storms.length > 0) {
      const base = storms[0].broker.peakAttemptsPerSecond;
      out.push('', 'reconnection storm (from the moment power returns):');
      out.push(
        table(
          ['policy', 'peak attempts/s', 'vs first', 'peak CONNECT/s', 'attempts', 'refused busy', 'whole fleet back after'],
          storms.map((v) => [
            v.name,
            n0(v.broker.peakAttemptsPerSecond),
            `${n1((100 * v.broker.peakAttemptsPerSecond) / Math.max(1, base))} %`,
            n0(v.broker.peakConnectsPerSecond),
            n0(v.storm!.attemptsTotal),
            n0(v.broker.refusedBusy),
            v.storm!.fleetBackAfterS === null ? `not all (${fmt(v.storm!.devicesBack)} of ${fmt(v.devices)})` : `${n1(v.storm!.fleetBackAfterS)} s`,
          ]),
        ),
      );
    }
    const energy = vs.filter((v) => v.energy !== null);
    if (energy.length > 0) {
      out.push('', 'per delivered message (radio model; assumptions below):');
      out.push(
        table(
          ['run', 'delivered', 'packets', 'bytes on air', 'airtime ms', 'awake ms', 'charge µAh', 'energy mJ', 'avg current µA', 'battery life'],
          energy.map((v) => {
            const e = v.energy!;
            return [
              v.name,
              n0(e.deliveredMessages),
              n1(e.perMessage.packets),
              n0(e.perMessage.bytes),
              n2(e.perMessage.airtimeMs),
              n0(e.perMessage.awakeMs),
              n2(e.perMessage.chargeUaH),
              n1(e.perMessage.energyMj),
              n1(e.averageCurrentUa),
              Number.isFinite(e.batteryLifeDays) ? `${n0(e.batteryLifeDays)} days` : '-',
            ];
          }),
        ),
      );
    }
  }

  if (r.assumptions.length > 0) out.push('', 'assumptions:', ...r.assumptions.map((a) => `  - ${a}`));
  out.push('');
  if (r.violations.length > 0) out.push(`GUARANTEES BROKEN:\n  ${r.violations.join('\n  ')}`);
  if (r.failures.length > 0) out.push(`RUN FAILED: it could not do its work\n  ${r.failures.join('\n  ')}`);
  if (r.ok) out.push(`guarantees: every accepted QoS 1/2 message (${fmt(vs.reduce((a, v) => a + v.guarantees.accepted, 0))}) reached the broker, in order, QoS 2 exactly once.`);
  return out.join('\n');
}

/** What ran, in one line: devices, time, and against what (overrides and caps named). */
export function runLine(r: { mode: 'virtual' | 'realtime'; run: RunShape }): string {
  const x = r.run;
  const time = r.mode === 'virtual' ? 'of virtual time' : 'of wall time';
  const changed: string[] = [];
  if (x.devices !== x.scenarioDevices) changed.push(`the scenario has ${fmt(x.scenarioDevices)} devices`);
  if (x.durationS !== x.scenarioDurationS) changed.push(`the scenario runs ${fmt(x.scenarioDurationS)} s; its faults are scaled into this run`);
  return `runs ${fmt(x.devices)} devices for ${fmt(x.durationS)} s + ${fmt(x.drainS)} s drain ${time}: ${x.against}${changed.length > 0 ? ` (${changed.join('; ')})` : ''}`;
}

/** The broker queue over time, as a small table with a bar. */
export function queueSeries(v: VariantResult, rows = 14): string {
  const s = v.series;
  if (s.length === 0) return '';
  const step = Math.max(1, Math.ceil(s.length / rows));
  const picked = s.filter((_, i) => i % step === 0 || i === s.length - 1);
  const max = Math.max(1, ...s.map((p) => p.brokerQueued));
  return table(
    ['t (s)', 'broker queue', 'memory est.', 'devices offline', 'held by devices', ''],
    picked.map((p) => [n0(p.tS), n0(p.brokerQueued), bytesText(p.brokerMemoryBytes), n0(p.devicesOffline), n0(p.outboxHeld), '█'.repeat(Math.round((24 * p.brokerQueued) / max))]),
  );
}
