// `dormouse` as apps get it, recording each publish that returned (the app's readings "accepted").
import { Client as Bound } from '../../../../hosts/moddable/dormouse.js';
import type { PublishFlags } from '../../../../hosts/moddable/client.js';
import { world } from './world.js';
export class Client extends Bound {
  override publish(topic: string, data: string | ArrayBuffer | ArrayBufferView | number, flags?: PublishFlags): number {
    const token = super.publish(topic, data, flags);
    world.accepted.push(String(data));
    return token;
  }
}
export default Client;
