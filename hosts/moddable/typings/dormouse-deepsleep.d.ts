// Our native module (hosts/moddable/native/dormouse_deepsleep.c on ESP32,
// hosts/moddable/native/lin/deepsleep.ts in the lin simulator).
declare module 'dormouse/deepsleep' {
  /**
   * ESP32: arm the RTC timer for `ms`, stop Wi-Fi, deep sleep; never returns
   * (the wake is a reboot into main). lin: records a timer wake and returns.
   */
  export function sleep(ms: number): void;
  /** A WakeCause (hosts/moddable/platform.ts): 0 reset, 1 timer, 2 pin, 3 touch, 4 ULP, 5 other. */
  export function wakeCause(): number;
  /** Bytes in the RTC-retained region (4096 by default). */
  export function rtcLength(): number;
  /** Fill `into` from the region at `offset`. RangeError past the end. */
  export function rtcRead(offset: number, into: Uint8Array): void;
  /** Copy `bytes` into the region at `offset`. RangeError past the end. */
  export function rtcWrite(offset: number, bytes: Uint8Array): void;
}
