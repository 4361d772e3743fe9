// The example app's wake cycle inside the real XS engine:
// hosts/moddable/examples/sensor/main.ts on the `dormouse` module, bundled
// with stand-ins for Moddable's modules (virtual timer, in-memory preference,
// Wi-Fi, a TCP socket whose peer is the broker model, a flash partition with
// NOR flash's rules) and the lin version of the deep-sleep module.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { bundleForXs, runInXs } from '../../support/xs.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const standIns = {
  'mc/config': here('../../support/xs-entry/moddable/config.ts'),
  timer: here('../../support/xs-entry/moddable/timer.ts'),
  preference: here('../../support/xs-entry/moddable/preference.ts'),
  'embedded:io/socket/tcp': here('../../support/xs-entry/moddable/tcp.ts'),
  net: here('../../support/xs-entry/moddable/net.ts'),
  wifi: here('../../support/xs-entry/moddable/wifi.ts'),
  dormouse: here('../../../hosts/moddable/dormouse.ts'),
  'dormouse/wake': here('../../../hosts/moddable/dormouse-wake.ts'),
  'dormouse/deepsleep': here('../../support/xs-entry/moddable/deepsleep.ts'),
  'embedded:storage/flash': here('../../support/xs-entry/moddable/flash.ts'),
};

describe('Moddable example app on XS', () => {
  it('wakes, resumes its session, publishes a QoS 1 reading and sleeps: the minimum five packets a wake', async () => {
    const bundle = await bundleForXs(here('../../support/xs-entry/moddable-app.ts'), standIns);
    const [step] = await runInXs(bundle, ['report(runWakes(3))']);
    const r = step.reports[0] as { sleeps: number; perWake: string[][]; traces: string[]; readings: string[]; connects: number; joins: { bssid?: string; channel?: number }[]; nvsSets: number; lookups: string[]; flashWritten: number; flashErased: number };
    expect(r.sleeps).toBe(3);
    expect(r.readings).toHaveLength(3);
    expect(r.readings[0]).toMatch(/^sensors\/dormouse-1 \{"cause":0,/);
    expect(r.readings[2]).toMatch(/"cause":1/);
    const minimum = ['device → CONNECT', 'device → PUBLISH', 'broker → CONNACK', 'broker → PUBACK', 'device → DISCONNECT'];
    for (const wake of r.perWake) expect([...wake].sort()).toEqual([...minimum].sort());
    // A resumed wake sends its reading right behind CONNECT, before the CONNACK.
    expect(r.perWake[1]).toEqual(['device → CONNECT', 'device → PUBLISH', 'broker → CONNACK', 'broker → PUBACK', 'device → DISCONNECT']);
    const wakes = r.traces.filter((t) => t.startsWith('dormouse: sleep-ready; wifi'));
    expect(wakes).toHaveLength(3);
    // The first wake looks the broker up (joined at 300, answered 40 ms later); the next ones use the address kept in RTC.
    expect(wakes[0]).toMatch(/^dormouse: sleep-ready; wifi 300, dns 340, tcp 342, tls -, connack \d+, last ack \d+, awake \d+ ms; .*; sleeping 300000 ms \(good wake\)$/);
    expect(wakes[1]).toMatch(/^dormouse: sleep-ready; wifi 120 \(bssid\), dns hint, tcp 122, tls -, connack \d+, last ack \d+, awake \d+ ms; 0 pending; DISCONNECT drained; flash \d+ B in \d+ flash writes, 0 blocks erased; sleeping 300000 ms \(good wake\)$/);
    expect(r.lookups).toEqual(['broker.local']);
    // The session log (flash-store.ts, run by XS here) wrote what the trace says, into the partition; NVS is not used.
    const perWake = wakes.map((w) => Number(/flash (\d+) B/.exec(w)![1]));
    expect(perWake.reduce((a, b) => a + b, 0)).toBe(r.flashWritten);
    expect(perWake[1]).toBeGreaterThan(50);
    expect(perWake[1]).toBeLessThan(400);
    expect(r.flashErased).toBe(2); // the first area, once
    expect(r.nvsSets).toBe(0);
    // The BSSID and channel of the first join, kept in RTC memory, are passed to the next ones.
    expect(r.joins).toEqual([{ bssid: undefined }, { bssid: '24:0a:c4:12:34:56', channel: 6 }, { bssid: '24:0a:c4:12:34:56', channel: 6 }]);
  }, 120_000);
});
