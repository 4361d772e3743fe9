// `embedded:storage/flash` in XS: the world's partition under the label "dormouse".
import { flash } from './world.js';
export default {
  open(options: { path: string }) {
    if (options.path !== 'dormouse') throw new Error("can't find partition");
    return flash;
  },
};
