// The real-time mode with a handful of devices: Dormouse Node clients through
// the fault proxy to an embedded aedes, an observer checking the guarantees.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { loadScenario } from '../../sim/scenario.js';
import { runRealtime } from '../../sim/realtime.js';

const dir = path.join(import.meta.dirname, '../../sim/scenarios');

describe('realtime', () => {
  it('runs sleepy devices at QoS 1 and 2 over real sockets with no loss or QoS 2 duplicate', async () => {
    const sc = loadScenario(path.join(dir, 'battery.yaml'));
    const r = await runRealtime(sc, { devices: 4, durationS: 2, drainS: 2, variants: ['qos1-persistent', 'qos2-persistent'] });
    expect(r.violations).toEqual([]);
    for (const v of r.variants) {
      expect(v.guarantees.accepted, v.name).toBe(4);
      expect(v.guarantees.delivered, v.name).toBe(4);
      expect(v.guarantees.lost).toBe(0);
      expect(v.broker.connects).toBeGreaterThanOrEqual(4);
    }
  });

  it('rides a tunnel outage with always-on devices', async () => {
    const sc = loadScenario(path.join(dir, 'trucks.yaml'));
    sc.fleet.everyS = 0.5;
    sc.fleet.keepaliveS = 2;
    sc.fleet.reconnect = { backoff: 'exponential', jitter: 'full', baseMs: 200, capMs: 1000 };
    sc.downlink = null;
    const r = await runRealtime(sc, { devices: 6, durationS: 6, drainS: 8 });
    expect(r.violations).toEqual([]);
    const g = r.variants[0].guarantees;
    expect(g.accepted).toBeGreaterThan(40);
    expect(g.lost).toBe(0);
    expect(g.delivered + g.pending + Object.values(g.dropped).reduce((a, b) => a + b, 0)).toBe(g.accepted);
  });
});
