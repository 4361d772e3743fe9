// `dormouse` as apps get it, recording each publish that returned (the app's readings "accepted").
// While the test drains (world.accepting false) publish takes nothing, so what was accepted can finish.
import { Client as Bound, platform } from '../../../../hosts/moddable/dormouse.js';
import type { PublishFlags } from '../../../../hosts/moddable/client.js';
import { world } from './world.js';
platform.random = world.random; // seeded: a run replays exactly
export class Client extends Bound {
  override publish(topic: string, data: string | ArrayBuffer | ArrayBufferView | number, flags?: PublishFlags): number {
    if (!world.accepting) return 0; // the test is draining: the app's later readings are not taken
    const token = super.publish(topic, data, flags);
    world.accepted.push(String(data));
    return token;
  }
}
export default Client;
