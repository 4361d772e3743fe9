// No accepted reading lost at any power cut: a series of sensor wakes is cut
// at every step in turn (each NVS erase, write and delete, each packet handed
// between device and broker, each TCP accept), the device restarts from what
// survived (NVS or the flash partition; RTC is noise after power-on), and the
// series goes on. Every reading whose publish() returned must reach the broker
// model; at QoS 2 none may reach it twice. Both durable stores: the NVS
// journal, and the flash log on a partition with NOR flash's rules (each write
// and erase cut before it and half way through).
import { describe, expect, it } from 'vitest';
import { ModelWorld } from './model-world.js';
import { sensorWake } from './sensor-wake.js';

type Medium = 'nvs' | 'flash';
/** A flash partition small enough that the series compacts the log (2 areas of 2304 bytes). */
const FLASH_BYTES = 4 * 1152;

const WAKES = { nvs: 6, flash: 11 }; // the flash log fills an area in about 9 one-reading wakes
const COMPACT_AFTER = 4; // a compaction (base rewrite + journal deletes) inside the series

function series(medium: Medium, qos: 1 | 2, cutAt: number): { world: ModelWorld; accepted: string[]; cut: boolean; seriesSteps: number } {
  const world = new ModelWorld(7);
  if (medium === 'flash') world.withFlash(FLASH_BYTES, 1152);
  world.cutAt = cutAt;
  const accepted: string[] = [];
  let cut = false;
  for (let n = 0; n < WAKES[medium]; n++) {
    if (sensorWake(world, `r${n}`, qos, accepted, {}, { compactAfter: COMPACT_AFTER }) === 'cut') cut = true;
  }
  // Finish: two more wakes after whatever happened.
  const seriesSteps = world.steps;
  world.cutAt = -1;
  for (let n = WAKES[medium]; n < WAKES[medium] + 2; n++) sensorWake(world, `r${n}`, qos, accepted, {}, { compactAfter: COMPACT_AFTER });
  return { world, accepted, cut, seriesSteps };
}

describe('Moddable sensor wakes cut at every step', () => {
  for (const [medium, qos] of [['nvs', 1], ['nvs', 2], ['flash', 1], ['flash', 2]] as const) {
    it(`${medium === 'nvs' ? 'NVS journal' : 'flash log'}, QoS ${qos}: every accepted reading reaches the broker${qos === 2 ? ', none twice' : ''}`, () => {
      const clean = series(medium, qos, -1);
      if (medium === 'flash') {
        expect(clean.world.flash.erased, 'the series compacts the log').toBeGreaterThan(2);
        expect(clean.world.nvs.sets, 'the flash log leaves NVS alone').toBe(0);
      }
      const steps = clean.seriesSteps;
      expect(clean.accepted).toHaveLength(WAKES[medium] + 2);
      expect(clean.world.delivered.map((d) => d.payload)).toEqual(clean.accepted);
      let cuts = 0;
      let lostAcceptance = 0;
      for (let k = 0; k < steps; k++) {
        const { world, accepted, cut } = series(medium, qos, k);
        if (!cut) continue; // the series took another path and never reached step k
        cuts++;
        if (accepted.length < WAKES[medium] + 2) lostAcceptance++;
        const got = world.delivered.map((d) => d.payload);
        for (const r of accepted) expect(got, `cut at step ${k}: ${r} lost`).toContain(r);
        if (qos === 2) expect(new Set(got).size, `cut at step ${k}: a QoS 2 reading delivered twice (${got})`).toBe(got.length);
      }
      // The runs are deterministic up to the cut: every step of the clean series is a cut point reached.
      expect(cuts).toBe(steps);
      expect(steps).toBeGreaterThan(WAKES[medium] * 8);
      // Cuts inside publish() cost that reading its acceptance (it was never accepted); the others cost nothing.
      expect(lostAcceptance).toBeLessThan(cuts / 2);
    });
  }
});
