// How the 4 KiB RTC region of dormouse/deepsleep is shared.
//
// One region, several records, each with a fixed (offset, length) carve-up so
// that a record written by one module can never run into another's bytes, and
// a new record takes a free range instead of moving the others (a firmware
// update that moved them would read the old bytes as garbage: every record
// checks its own magic and CRC, so that costs one wake's fast path, nothing more).
//
//   offset  length  record                          owner
//   0       3072    session snapshot: control block  stores.ts RtcSnapshotStore
//                   + two slots of 1524-byte images
//   3072    512     TLS session for resumption       issue 15 (TLS cache manager)
//                   (id, master secret, server name, expiry)
//   3584    256     fast-connect hints: BSSID,       modules/wake/fast-connect.ts
//                   channel, broker address (40 B)   (used by wake.ts)
//   3840    256     wake budget: failed wakes in a   modules/session/wake-budget.ts
//                   row, takeovers, wakes (16 B)     (used by wake.ts)
//
// All records are little-endian, start with their own u32 magic and end with
// (or carry) a CRC-32: after power-on RTC memory holds noise.

import type { RtcMemory } from './platform.js';

export interface RtcRegion {
  readonly offset: number;
  readonly length: number;
}

/** Bytes of RTC memory dormouse/deepsleep reserves (DORMOUSE_RTC_BYTES in native/dormouse_deepsleep.c). */
export const RTC_BYTES = 4096;

export const RtcLayout: Readonly<{ session: RtcRegion; tls: RtcRegion; hints: RtcRegion; wake: RtcRegion }> = Object.freeze({
  session: Object.freeze({ offset: 0, length: 3072 }),
  tls: Object.freeze({ offset: 3072, length: 512 }),
  hints: Object.freeze({ offset: 3584, length: 256 }),
  wake: Object.freeze({ offset: 3840, length: 256 }),
});

/**
 * A window onto one region: offsets are relative to the region's start and
 * checked against its length, so a record cannot write outside its range.
 */
export function rtcRegion(rtc: RtcMemory, region: RtcRegion): RtcMemory {
  const { offset: base, length } = region;
  if (!(base >= 0 && length > 0 && base + length <= rtc.byteLength))
    throw new RangeError(`RTC region [${base}, ${base + length}) is outside the ${rtc.byteLength}-byte RTC memory`);
  const check = (offset: number, n: number): void => {
    if (!(offset >= 0) || n > length || offset > length - n)
      throw new RangeError(`rtc: [${offset}, ${offset + n}) is outside a ${length}-byte region`);
  };
  return {
    byteLength: length,
    read(offset, into) {
      check(offset, into.length);
      rtc.read(base + offset, into);
    },
    write(offset, bytes) {
      check(offset, bytes.length);
      rtc.write(base + offset, bytes);
    },
  };
}
