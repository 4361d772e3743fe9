// dormouse/deepsleep as on ESP32: sleep() does not return (the world's sleep throws Slept; the test reboots).
import { world } from './world.js';
export function sleep(ms: number): void {
  world.wakePlatform.sleep(ms);
}
export function wakeCause(): number {
  return world.cause;
}
export function rtcLength(): number {
  return world.rtc.byteLength;
}
export function rtcRead(offset: number, into: Uint8Array): void {
  world.rtc.read(offset, into);
}
export function rtcWrite(offset: number, bytes: Uint8Array): void {
  world.rtc.write(offset, bytes);
}
