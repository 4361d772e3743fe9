// The stand-ins below hand the example apps the parts of the ModelWorld the
// test put on globalThis. The bundle is evaluated once per boot, so each boot
// starts with fresh module state, as a device does; the world (NVS, RTC, the
// broker, the clock) outlives it.
import type { ModelWorld } from '../model-world.js';

export interface BootWorld extends ModelWorld {
  config: Record<string, unknown>;
  accepted: string[];
  accepting: boolean;
}

export const world = (globalThis as unknown as { __dormouseWorld: BootWorld }).__dormouseWorld;
