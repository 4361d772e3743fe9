// `embedded:storage/flash`: the world's partition while the test gives one (ModelWorld.withFlash), else none, as on an ESP32 whose partition table has no "dormouse".
import { world } from './world.js';
export default {
  open(options: { path: string }) {
    if (!world.useFlash || options.path !== 'dormouse') throw new Error("can't find partition");
    return world.flash;
  },
};
