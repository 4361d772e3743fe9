// The flash log (hosts/moddable/flash-store.ts) on a partition with NOR
// flash's rules (FakeFlash: erase to 0xFF, writes only clear bits, a write
// that would set one throws): deltas replay to the newest image, a cut at any
// step of any write or erase leaves the previous image or the new one, never
// garbage, and after such a cut the log goes on without writing over
// programmed bytes.
import { describe, expect, it } from 'vitest';
import { FlashLog, FlashSnapshotStore, flashRecordBound } from '../../../hosts/moddable/flash-store.js';
import { RestoredFrom } from '../../../hosts/moddable/stores.js';
import { RtcSnapshotStore } from '../../../hosts/moddable/stores.js';
import { FakeFlash, FakeRtc, PowerCut, prng } from './fakes.js';

/** A session-like image: a header that changes a little each time, and a body that grows and shrinks. */
function images(count: number, seed: number): Uint8Array[] {
  const r = prng(seed);
  const out: Uint8Array[] = [];
  let body = new Uint8Array(40).map(() => (r() * 256) | 0);
  for (let k = 0; k < count; k++) {
    if (r() < 0.3 && body.length < 400) body = new Uint8Array([...body, ...new Uint8Array(20 + ((r() * 40) | 0)).map(() => (r() * 256) | 0)]);
    else if (r() < 0.3 && body.length > 60) body = body.slice(0, body.length - 30);
    else body[(r() * body.length) | 0] = (r() * 256) | 0;
    const image = new Uint8Array(16 + body.length);
    new DataView(image.buffer).setUint32(4, k + 1, true);
    image.set(body, 16);
    out.push(image);
  }
  return out;
}

describe('FlashLog', () => {
  it('replays deltas to the newest image and its slot, across compactions', () => {
    const flash = new FakeFlash(2 * 1024, 1024);
    const log = new FlashLog(flash);
    const all = images(200, 5);
    all.forEach((image, k) => {
      log.append((k & 1) as 0 | 1, image);
      if (k % 37 === 0) {
        const again = new FlashLog(flash).newest()!;
        expect(again.slot).toBe(k & 1);
        expect(again.image).toEqual(image);
      }
    });
    expect(log.compactions).toBeGreaterThan(3);
    expect(flash.erased).toBe(log.compactions);
    expect(log.bytesWritten).toBe(flash.written);
    expect(log.blocksErased).toBe(flash.erased);
    const last = new FlashLog(flash).newest()!;
    expect(last.image).toEqual(all.at(-1));
    // Deltas are much smaller than the images they stand for.
    const whole = all.reduce((n, i) => n + i.length, 0);
    expect(flash.written).toBeLessThan(whole / 2);
  });

  it('writes only into erased bytes (FakeFlash throws otherwise)', () => {
    const flash = new FakeFlash(2 * 1024, 1024);
    const log = new FlashLog(flash);
    for (const image of images(300, 9)) log.append(0, image);
    expect(log.compactions).toBeGreaterThan(5);
  });

  it('a write that would set a bit is refused by the partition', () => {
    const flash = new FakeFlash(2048, 1024);
    flash.write(new Uint8Array([0x0f]), 0);
    expect(() => flash.write(new Uint8Array([0xf0]), 0)).toThrow(/set a bit/);
    flash.write(new Uint8Array([0x05]), 0); // clearing more bits is allowed
    expect(flash.bytes[0]).toBe(0x05);
    flash.eraseBlock(0);
    expect(flash.bytes[0]).toBe(0xff);
  });

  it('a cut at every step of every write and erase leaves the previous or the new image', () => {
    const all = images(60, 13);
    const run = (cutAt: number) => {
      const flash = new FakeFlash(2 * 768, 768);
      let steps = 0;
      flash.beforeStep = () => {
        if (steps++ === cutAt) throw new PowerCut();
      };
      const log = new FlashLog(flash);
      let done = 0;
      try {
        for (const image of all) {
          log.append(0, image);
          done++;
        }
      } catch (e) {
        if (!(e instanceof PowerCut)) throw e;
      }
      return { flash, done, steps };
    };
    const total = run(-1).steps;
    expect(total).toBeGreaterThan(120);
    let sawDirty = 0;
    for (let k = 0; k < total; k++) {
      const { flash, done } = run(k);
      flash.beforeStep = null;
      const log = new FlashLog(flash);
      const newest = log.newest();
      // The image being written when the power went, or the one before it.
      const allowed = [all[done], all[done - 1]].filter(Boolean).map((i) => Array.from(i!).join());
      if (done === 0 && newest === null) continue;
      expect(allowed, `cut at step ${k}`).toContain(Array.from(newest!.image).join());
      if (log.room === 0) sawDirty++;
      // The log goes on from there: every later image lands, over no programmed byte.
      for (const image of all.slice(done, done + 20)) log.append(1, image);
      expect(new FlashLog(flash).newest()!.image).toEqual(all[Math.min(done + 19, all.length - 1)]);
    }
    expect(sawDirty).toBeGreaterThan(0); // torn records were met and compacted away
  });

  it('bounds its records: an image never costs more than flashRecordBound', () => {
    const flash = new FakeFlash(8 * 1024, 4096);
    const log = new FlashLog(flash);
    const r = prng(3);
    for (let k = 0; k < 50; k++) {
      const image = new Uint8Array(100 + ((r() * 900) | 0)).map(() => (r() * 256) | 0);
      const before = log.bytesWritten;
      log.append(0, image);
      expect(log.bytesWritten - before).toBeLessThanOrEqual(flashRecordBound(image.length) + 12);
    }
  });
});

describe('FlashSnapshotStore', () => {
  it('serves RTC while it holds an image, the flash log after power loss, and clears both', () => {
    const flash = new FakeFlash(8 * 1024, 4096);
    const rtcMem = new FakeRtc(3072, 1);
    const a = new FlashSnapshotStore(new RtcSnapshotStore(rtcMem), flash, 1000);
    const [i1, i2] = images(2, 4);
    a.write(0, i1!);
    a.write(1, i2!);
    const warm = new FlashSnapshotStore(new RtcSnapshotStore(rtcMem), flash, 1000);
    expect(warm.read(0)).toEqual(i1);
    expect(warm.read(1)).toEqual(i2);
    expect(warm.restoredFrom).toBe(RestoredFrom.Rtc);
    rtcMem.powerOn(99);
    const cold = new FlashSnapshotStore(new RtcSnapshotStore(rtcMem), flash, 1000);
    expect(cold.read(0)).toBeNull();
    expect(cold.read(1)).toEqual(i2);
    expect(cold.restoredFrom).toBe(RestoredFrom.Flash);
    cold.clear();
    rtcMem.powerOn(100);
    const empty = new FlashSnapshotStore(new RtcSnapshotStore(rtcMem), flash, 1000);
    expect(empty.read(0)).toBeNull();
    expect(empty.read(1)).toBeNull();
    expect(empty.restoredFrom).toBe(RestoredFrom.Nothing);
  });

  it('refuses a partition too small for the largest session', () => {
    expect(() => new FlashSnapshotStore(new RtcSnapshotStore(new FakeRtc(3072, 1)), new FakeFlash(2048, 1024), 1292)).toThrow(/too small/);
  });
});
