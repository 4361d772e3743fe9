// One wake of a sensor on the Moddable client and wake helper, in a ModelWorld.
import { Client, type ClientOptions } from '../../../hosts/moddable/client.js';
import { Wake, type WakeOptions, type WakeTrace } from '../../../hosts/moddable/wake.js';
import { ModelWorld, Slept } from './model-world.js';
import { PowerCut } from './fakes.js';

const ID = 'dev-1';
const TOPIC = 'sensors/dev-1';

/** One wake of the sensor: publish `reading` at `qos`, hand over to the wake helper, run until it sleeps. */
export function sensorWake(world: ModelWorld, reading: string, qos: 1 | 2, accepted: string[], options: WakeOptions = {}, clientOptions: Partial<ClientOptions> = {}): WakeTrace | 'cut' {
  let trace: WakeTrace | undefined;
  try {
    const client = new Client({ host: '127.0.0.1', id: ID, start: false, expiry: 3600, ...clientOptions }, world.platform);
    client.onDrop = (token, reason) => world.traces.push(`drop ${token} ${reason}`);
    client.publish(TOPIC, reading, { qos });
    accepted.push(reading); // publish returned: the reading is accepted
    const wake = new Wake(client, { ssid: 'net', password: 'pw', windowMs: 5000, sleepMs: 60_000, ...options }, world.wakePlatform);
    wake.onSleep = (t) => (trace = t);
    world.run(10_000);
    throw new Error('the wake did not sleep within 10 s');
  } catch (e) {
    if (e instanceof Slept) {
      world.sleepFor(e.ms);
      return trace!;
    }
    if (e instanceof PowerCut) {
      world.powerCut();
      return 'cut';
    }
    throw e;
  }
}

