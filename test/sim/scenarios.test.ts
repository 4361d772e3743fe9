// Each shipped scenario, shortened (fewer devices, a shorter run with its
// faults scaled into it), with its guarantees and its own claims checked.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { loadScenario } from '../../sim/scenario.js';
import { runVirtual, type SimResult } from '../../sim/virtual.js';
import { planFor } from '../../sim/plan.js';

const dir = path.join(import.meta.dirname, '../../sim/scenarios');
const load = (name: string) => loadScenario(path.join(dir, `${name}.yaml`));

function expectGuarantees(r: SimResult): void {
  expect(r.violations).toEqual([]);
  for (const v of r.variants) {
    const g = v.guarantees;
    expect(g.lost, v.name).toBe(0);
    expect(g.duplicatesQos2, v.name).toBe(0);
    expect(g.outOfOrder, v.name).toBe(0);
    if (v.qos > 0) expect(g.delivered + Object.values(g.dropped).reduce((a, b) => a + b, 0) + g.pending, v.name).toBe(g.accepted);
  }
  expect(r.ok).toBe(true);
}

describe('trucks', () => {
  it('keeps every GPS fix through the tunnels and queues commands at the broker close to the plan', async () => {
    const sc = load('trucks');
    const r = await runVirtual(sc, { devices: 200, durationS: 600 });
    expectGuarantees(r);
    const v = r.variants[0];
    expect(v.guarantees.accepted).toBeGreaterThan(11_000);
    // The plan for the same (shortened) scenario: N = 20 % of 200, r = 0.1/s, T = 360 s.
    const p = planFor({ ...sc, fleet: { ...sc.fleet, devices: 200 }, faults: sc.faults.map((f) => ({ ...f, durationS: 360 })) as typeof sc.faults });
    expect(p.queueDepth).toBeCloseTo(Math.round(200 * 0.2) * 36, 0);
    // Staggered outages keep the simultaneous peak below N × r × T; keepalive detection adds to it. Same order of magnitude.
    expect(v.broker.queuedPeak).toBeGreaterThan(p.queueDepth * 0.4);
    expect(v.broker.queuedPeak).toBeLessThan(p.queueDepth * 1.5);
    expect(v.broker.queuedEnd).toBe(0);
    expect(v.series.length).toBeGreaterThan(5);
  });
});

describe('battery', () => {
  it('compares QoS 0/1/2 with clean and persistent sessions, keeping every guarantee', async () => {
    const r = await runVirtual(load('battery'), { devices: 40, durationS: 3600 });
    expectGuarantees(r);
    const by = Object.fromEntries(r.variants.map((v) => [v.name, v]));
    expect(Object.keys(by)).toEqual([
      'qos0-clean', 'qos0-persistent', 'qos1-clean', 'qos1-persistent', 'qos2-clean', 'qos2-persistent',
      'qos1-persistent-wifi', 'qos1-persistent-tls-full', 'qos1-persistent-tls-resumed', 'qos1-persistent-tls-cold',
    ]);
    const packets = (n: string) => by[n].energy!.perMessage.packets;
    const awake = (n: string) => by[n].energy!.perMessage.awakeMs;
    // More handshake, more packets and more time awake per delivered message.
    expect(packets('qos0-clean')).toBeLessThan(packets('qos1-clean'));
    expect(packets('qos1-clean')).toBeLessThan(packets('qos2-clean'));
    // A resumed session sends its reading right behind CONNECT: one round trip less per wake.
    expect(awake('qos1-persistent')).toBeLessThan(awake('qos1-clean'));
    for (const v of r.variants) {
      expect(v.energy!.batteryLifeDays).toBeGreaterThan(v.name === 'qos1-persistent-tls-cold' ? 20 : 30); // cold: 4.8 s of join every wake
      expect(v.energy!.perMessage.energyMj).toBeGreaterThan(0);
    }
    expect(r.assumptions.some((a) => a.includes('40 B of IPv4 + TCP'))).toBe(true);
    // The Wi-Fi join and TLS from the shared wake model (issue 15): a TLS session
    // resumed from RTC memory costs far less than a full handshake at every wake.
    const life = (n: string) => by[n].energy!.batteryLifeDays;
    const bytes = (n: string) => by[n].energy!.perMessage.bytes;
    // At least one 1.2 s join (known BSSID, static address) per delivered reading: a wake is a join.
    expect(awake('qos1-persistent-wifi') - awake('qos1-persistent')).toBeGreaterThanOrEqual(1200);
    expect(life('qos1-persistent-tls-full')).toBeLessThan(life('qos1-persistent-tls-resumed'));
    expect(life('qos1-persistent-tls-resumed')).toBeLessThan(life('qos1-persistent-wifi'));
    expect(life('qos1-persistent-tls-resumed') / life('qos1-persistent-tls-full')).toBeGreaterThan(1.5);
    expect(bytes('qos1-persistent-tls-resumed')).toBeLessThan(0.6 * bytes('qos1-persistent-tls-full'));
    // A cold wake (no hints: scan, DHCP, DNS, full handshake) against the same wake with the hints kept:
    // at least the 2.7 s of join and address the hints save, and the lookup's 88 B.
    expect(awake('qos1-persistent-tls-cold') - awake('qos1-persistent-tls-full')).toBeGreaterThanOrEqual(2700 + 60);
    expect(bytes('qos1-persistent-tls-cold') - bytes('qos1-persistent-tls-full')).toBeGreaterThanOrEqual(88);
    expect(life('qos1-persistent-tls-cold')).toBeLessThan(life('qos1-persistent-tls-full'));
    expect(r.assumptions.some((a) => a.includes('modules/wake/energy.ts'))).toBe(true);
  });
});

describe('storm', () => {
  it('full jitter cuts the peak connection rate to a small fraction of no backoff, and the whole fleet comes back', async () => {
    const r = await runVirtual(load('storm'), { devices: 500 });
    expectGuarantees(r);
    const by = Object.fromEntries(r.variants.map((v) => [v.name, v]));
    const peak = (n: string) => by[n].broker.peakAttemptsPerSecond;
    expect(peak('full-jitter')).toBeLessThan(peak('no-backoff') * 0.2);
    expect(by['full-jitter'].storm!.attemptsTotal).toBeLessThan(by['no-backoff'].storm!.attemptsTotal * 0.2);
    for (const v of r.variants) expect(v.storm!.devicesBack, v.name).toBe(500);
  });
});

describe('engine', () => {
  it('replays exactly from its seed', async () => {
    const sc = load('storm');
    const a = await runVirtual(sc, { devices: 100, durationS: 300, variants: ['full-jitter'] });
    const b = await runVirtual(sc, { devices: 100, durationS: 300, variants: ['full-jitter'] });
    expect(b.variants[0].events).toBe(a.variants[0].events);
    expect(b.variants[0].broker).toEqual(a.variants[0].broker);
  });

  it('feeds the dashboard frames and device details', async () => {
    const frames: unknown[] = [];
    let provider: ((id: string) => unknown) | null = null;
    const feed = { frame: (f: unknown) => frames.push(f), setDetailProvider: (p: (id: string) => unknown) => (provider = p) };
    await runVirtual(load('battery'), { devices: 30, durationS: 1200, variants: ['qos2-persistent'], feed: feed as never, frameEveryMs: 0 });
    expect(frames.length).toBeGreaterThan(0);
    const last = frames.at(-1) as { totals: { devices: number }; devices: unknown[]; counters: { accepted: number } };
    expect(last.totals.devices).toBe(30);
    expect(last.devices.length).toBe(30);
    const d = provider!('battery-00') as { handshakes: Array<{ packet: string }> };
    expect(d.handshakes.some((h) => h.packet.startsWith('PUBCOMP'))).toBe(true);
  });
});
