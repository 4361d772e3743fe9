import { world } from './world.js';
export default {
  resolve(name: string, done: (name: string, address?: string) => void): void {
    world.timers.set(() => done(name, '127.0.0.1'), 5);
  },
  get(property: string): string | undefined {
    return property === 'BSSID' ? world.wifi.bssid : undefined;
  },
};
