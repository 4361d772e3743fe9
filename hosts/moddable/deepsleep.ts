// dormouse/deepsleep on ESP32: each function is the C host function of the
// same role in native/dormouse_deepsleep.c. `native(name)` is XS's
// standard-syntax form of the `@ "name"` host-function extension: xsc compiles
// a body that only forwards its parameters into the same bytes as `@`, and
// unlike `@` it is valid TypeScript. The `this` parameter is erased by tsc.
// The lin build maps dormouse/deepsleep to native/lin/deepsleep.ts instead.

/** Timer wake-up after `ms`, Wi-Fi stopped, deep sleep. Never returns: the next wake is a reboot into main. */
export function sleep(this: unknown, ms: number): void {
  return native('xs_dormouse_sleep').call(this, ms);
}

/** A WakeCause number (platform.ts). */
export function wakeCause(this: unknown): number {
  return native('xs_dormouse_wake_cause').call(this);
}

/** Bytes in the RTC region. */
export function rtcLength(this: unknown): number {
  return native('xs_dormouse_rtc_length').call(this);
}

/** Fill `into` from the RTC region at `offset`; RangeError past the end. */
export function rtcRead(this: unknown, offset: number, into: Uint8Array): void {
  return native('xs_dormouse_rtc_read').call(this, offset, into);
}

/** Copy `bytes` into the RTC region at `offset`; RangeError past the end. */
export function rtcWrite(this: unknown, offset: number, bytes: Uint8Array): void {
  return native('xs_dormouse_rtc_write').call(this, offset, bytes);
}
