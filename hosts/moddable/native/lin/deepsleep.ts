// dormouse/deepsleep for the lin simulator (mcsim): the same functions as the
// ESP32 module, in plain script.
//
// - The RTC region is a Uint8Array in this VM, filled with noise at start-up
//   as RTC memory is after power-on. It lives as long as the mcsim process:
//   quitting and relaunching mcsim is a power loss (RTC gone, the preference
//   file, i.e. "NVS", kept).
// - sleep(ms) cannot stop the process, so it records a timer wake and
//   returns; dormouse/wake (everyWake) treats a return from sleep() as "the device slept" and
//   runs the next wake after ms in the same VM, with a fresh client.

const RTC_BYTES = 4096;
const region = new Uint8Array(RTC_BYTES);
for (let i = 0; i < RTC_BYTES; i++) region[i] = (Math.random() * 256) | 0;

let cause = 0; // WakeCause.Reset until the first sleep

export function sleep(ms: number): void {
  if (!(ms >= 1) || ms > 1e12) throw new RangeError('sleep: ms must be from 1 to 1e12');
  cause = 1; // WakeCause.Timer
}

export function wakeCause(): number {
  return cause;
}

export function rtcLength(): number {
  return RTC_BYTES;
}

function check(offset: number, length: number): void {
  if (!(offset >= 0) || length > RTC_BYTES || offset > RTC_BYTES - length)
    throw new RangeError(`rtc: outside the ${RTC_BYTES}-byte RTC region`);
}

export function rtcRead(offset: number, into: Uint8Array): void {
  check(offset, into.length);
  into.set(region.subarray(offset, offset + into.length));
}

export function rtcWrite(offset: number, bytes: Uint8Array): void {
  check(offset, bytes.length);
  region.set(bytes, offset);
}
