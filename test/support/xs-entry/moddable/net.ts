// Moddable's `net` on the world's clock: `broker.local` is the broker model, answered 40 ms later
// (asynchronously, as lwIP's lookup is); the access point's BSSID and channel.
import { timers, lookups } from './world.js';

export default {
  resolve(name: string, done: (name: string, address?: string) => void): void {
    lookups.push(name);
    timers.set(() => done(name, name === 'broker.local' ? '127.0.0.1' : undefined), 40);
  },
  get(property: string): string | number | undefined {
    return property === 'BSSID' ? '24:0a:c4:12:34:56' : property === 'CHANNEL' ? 6 : undefined;
  },
};
