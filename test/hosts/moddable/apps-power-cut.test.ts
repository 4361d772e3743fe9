// The two example apps as built (examples/sensor, examples/mqtt-compatible),
// bundled with stand-ins for Moddable's modules and booted again after every
// deep sleep and power cut (a fresh evaluation: nothing in RAM survives). Cut
// at every step of a run in turn: every reading whose publish() returned
// reaches the broker model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { bundleForXs } from '../../support/xs.js';
import { ModelWorld, Slept } from './model-world.js';
import { PowerCut } from './fakes.js';
import type { BootWorld } from './boot/world.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const standIns = {
  'mc/config': here('./boot/config.ts'),
  timer: here('./boot/timer.ts'),
  preference: here('./boot/preference.ts'),
  'embedded:io/socket/tcp': here('./boot/tcp.ts'),
  net: here('./boot/net.ts'),
  wifi: here('./boot/wifi.ts'),
  'dormouse/deepsleep': here('./boot/deepsleep.ts'),
  'embedded:storage/flash': here('./boot/flash.ts'),
  dormouse: here('./boot/dormouse.ts'),
  'dormouse/wake': here('../../../hosts/moddable/dormouse-wake.ts'),
};

const g = globalThis as unknown as { __dormouseWorld?: BootWorld; trace?: (s: string) => void; Date: DateConstructor };
const realNow = Date.now;
const stringCtor = String as unknown as { fromArrayBuffer?: (b: ArrayBuffer) => string };
beforeAll(() => {
  stringCtor.fromArrayBuffer = (b) => new TextDecoder().decode(b);
});
afterAll(() => {
  Date.now = realNow;
  delete g.__dormouseWorld;
  delete g.trace;
  delete stringCtor.fromArrayBuffer;
});

function makeWorld(config: Record<string, unknown>, flash = false): BootWorld {
  const world = Object.assign(new ModelWorld(3), { config, accepted: [] as string[], accepting: true });
  if (flash) world.withFlash();
  g.__dormouseWorld = world;
  g.trace = (s: string) => void world.traces.push(s.trim());
  Date.now = () => world.now;
  return world;
}

/** Boot the bundle and run it for `ms`; a sleep reboots it (cause 1), a power cut too (cause 0, RTC noise). */
function run(world: BootWorld, bundle: string, ms: number): { cuts: number; sleeps: number } {
  const end = world.timers.now + ms;
  let cuts = 0;
  let sleeps = 0;
  while (world.timers.now < end) {
    try {
      new Function(bundle)();
      world.run(end - world.timers.now);
    } catch (e) {
      if (e instanceof Slept) {
        sleeps++;
        world.sleepFor(e.ms);
      } else if (e instanceof PowerCut) {
        cuts++;
        world.powerCut();
      } else throw e;
    }
  }
  return { cuts, sleeps };
}

const sensorConfig = { broker: '127.0.0.1', port: 1883, clientId: 'sensor-1', topic: 'sensors/sensor-1', sleepSeconds: 60, awakeSeconds: 5, wifi: 'net', wifiPassword: 'pw' };
const apps = [
  {
    name: 'examples/sensor on the flash log',
    entry: here('./boot/sensor-entry.ts'),
    config: sensorConfig,
    flash: true,
    runMs: 4 * 60_000,
    finishMs: 3 * 60_000,
  },
  {
    name: 'examples/sensor on the NVS journal',
    entry: here('./boot/sensor-entry.ts'),
    config: sensorConfig,
    runMs: 4 * 60_000, // four wakes
    finishMs: 3 * 60_000,
  },
  {
    name: 'examples/mqtt-compatible',
    entry: here('./boot/mqtt-compatible-entry.ts'),
    config: { broker: '127.0.0.1', port: 1883, clientId: 'compat-1', topic: 'moddable/mqtt/example' },
    runMs: 6_000, // six publishes
    finishMs: 5_000,
  },
  {
    name: 'examples/mqtt-compatible on the flash log',
    entry: here('./boot/mqtt-compatible-entry.ts'),
    config: { broker: '127.0.0.1', port: 1883, clientId: 'compat-1', topic: 'moddable/mqtt/example' },
    flash: true,
    runMs: 6_000,
    finishMs: 5_000,
  },
];

describe('Moddable example apps cut at every step', () => {
  for (const app of apps) {
    it(`${app.name}: every accepted reading reaches the broker`, async () => {
      const bundle = await bundleForXs(app.entry, standIns);
      const flash = 'flash' in app && app.flash === true;
      const clean = makeWorld({ ...app.config }, flash);
      run(clean, bundle, app.runMs);
      const steps = clean.steps;
      const readings = (w: BootWorld) => w.delivered.filter((d) => d.topic.startsWith(String(app.config.topic))).map((d) => d.payload);
      expect(clean.accepted.length).toBeGreaterThanOrEqual(4);
      expect(readings(clean)).toEqual(clean.accepted);
      expect(steps).toBeGreaterThan(20);
      if (flash) expect(clean.flash.written, 'the app used the flash log').toBeGreaterThan(0);
      else expect(clean.flash.written).toBe(0);
      for (let k = 0; k < steps; k++) {
        const world = makeWorld({ ...app.config }, flash);
        world.cutAt = k;
        const { cuts } = run(world, bundle, app.runMs);
        expect(cuts, `step ${k} was not reached`).toBe(1);
        run(world, bundle, app.finishMs);
        world.accepting = false; // drain: what was accepted gets its chance to arrive
        run(world, bundle, app.finishMs);
        const got = readings(world);
        for (const r of world.accepted) expect(got, `cut at step ${k}: ${r} lost`).toContain(r);
      }
    }, 120_000);
  }
});
