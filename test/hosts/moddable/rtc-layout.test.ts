import { describe, expect, it } from 'vitest';
import { RTC_BYTES, RtcLayout, rtcRegion } from '../../../hosts/moddable/rtc-layout.js';
import { RtcSnapshotStore } from '../../../hosts/moddable/stores.js';
import { FakeRtc } from './fakes.js';

describe('RTC layout', () => {
  it('carves the 4 KiB region into ranges that do not overlap and fit it', () => {
    const regions = Object.values(RtcLayout).sort((a, b) => a.offset - b.offset);
    let end = 0;
    for (const r of regions) {
      expect(r.offset).toBeGreaterThanOrEqual(end);
      end = r.offset + r.length;
    }
    expect(end).toBeLessThanOrEqual(RTC_BYTES);
  });

  it('a region window shifts offsets and refuses bytes outside its range', () => {
    const rtc = new FakeRtc(RTC_BYTES, 7);
    const tls = rtcRegion(rtc, RtcLayout.tls);
    expect(tls.byteLength).toBe(512);
    tls.write(0, Uint8Array.of(1, 2, 3));
    expect([...rtc.bytes.subarray(3072, 3075)]).toEqual([1, 2, 3]);
    const into = new Uint8Array(3);
    tls.read(0, into);
    expect([...into]).toEqual([1, 2, 3]);
    expect(() => tls.write(510, new Uint8Array(3))).toThrow(RangeError);
    expect(() => tls.read(-1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => rtcRegion(new FakeRtc(1024, 1), RtcLayout.wake)).toThrow(RangeError);
  });

  it('the session snapshot store stays inside its range: the other records are untouched', () => {
    const rtc = new FakeRtc(RTC_BYTES, 9);
    const before = rtc.bytes.slice(RtcLayout.session.length);
    const store = new RtcSnapshotStore(rtcRegion(rtc, RtcLayout.session));
    store.write(1, new Uint8Array(store.capacity).fill(0xaa));
    store.writeCheckpoints(3);
    store.clear();
    expect(rtc.bytes.slice(RtcLayout.session.length)).toEqual(before);
    expect(store.capacity).toBe(1524);
  });
});
