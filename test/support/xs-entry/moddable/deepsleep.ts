// The lin stand-in of dormouse/deepsleep, counting sleeps for the test.
import { sleep as linSleep } from '../../../../hosts/moddable/native/lin/deepsleep.js';
import { countSleep } from './world.js';
export { wakeCause, rtcLength, rtcRead, rtcWrite } from '../../../../hosts/moddable/native/lin/deepsleep.js';
export function sleep(ms: number): void {
  countSleep();
  linSleep(ms);
}
