import { describe, expect, it } from 'vitest';
import { NvsSnapshotStore, PreferredStore, RtcSnapshotStore, rtcSlotCapacity } from '../../../hosts/moddable/stores.js';
import { DormouseClient } from '../../../modules/session/client.js';
import type { ClientHooks } from '../../../modules/session/ports.js';
import { FakePreference, FakeRtc, PowerCut, prng } from './fakes.js';

function image(length: number, seed: number): Uint8Array {
  const r = prng(seed);
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (r() * 256) | 0;
  return b;
}

function stores(options = { nvsEvery: 1 }, rtc = new FakeRtc(), preference = new FakePreference()) {
  const rtcStore = new RtcSnapshotStore(rtc);
  const nvs = new NvsSnapshotStore(preference);
  return { rtc, preference, rtcStore, nvs, store: new PreferredStore(rtcStore, nvs, options) };
}

describe('RtcSnapshotStore', () => {
  it('keeps two slots of up to (4096 - 8) / 2 - 8 = 2036 bytes', () => {
    const { rtcStore } = stores();
    expect(rtcStore.capacity).toBe(2036);
    expect(rtcSlotCapacity(4096)).toBe(2036);
    const a = image(2036, 1);
    const b = image(17, 2);
    rtcStore.write(0, a);
    rtcStore.write(1, b);
    expect(rtcStore.read(0)).toEqual(a);
    expect(rtcStore.read(1)).toEqual(b);
    expect(() => rtcStore.write(0, image(2037, 3))).toThrow(RangeError);
    expect(() => rtcStore.write(0, new Uint8Array(0))).toThrow(RangeError);
  });

  it('reads power-on noise as empty (100 seeds)', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const rtcStore = new RtcSnapshotStore(new FakeRtc(4096, seed));
      expect(rtcStore.read(0)).toBeNull();
      expect(rtcStore.read(1)).toBeNull();
      expect(rtcStore.readCheckpoints()).toBe(0);
    }
  });

  it('a write torn at any byte leaves the other slot and never returns a mixed image', () => {
    const previous = image(300, 10); // in slot 0 since an earlier write
    const other = image(200, 11); // in slot 1, the newest complete image
    const next = image(300, 12);
    for (let cut = 0; cut < next.length + 8; cut++) {
      const rtc = new FakeRtc(4096, cut + 1);
      const rtcStore = new RtcSnapshotStore(rtc);
      rtcStore.write(0, previous);
      rtcStore.write(1, other);
      rtc.tearAfter(cut);
      expect(() => rtcStore.write(0, next)).toThrow(PowerCut);
      const after = new RtcSnapshotStore(rtc); // reboot
      expect(after.read(1)).toEqual(other);
      const torn = after.read(0);
      if (torn !== null) expect(torn).toEqual(previous); // only when nothing of it was written
    }
  });

  it('keeps a checkpoint count guarded by its complement', () => {
    const rtc = new FakeRtc();
    const rtcStore = new RtcSnapshotStore(rtc);
    rtcStore.writeCheckpoints(7);
    expect(new RtcSnapshotStore(rtc).readCheckpoints()).toBe(7);
    rtc.bytes[4] ^= 1;
    expect(rtcStore.readCheckpoints()).toBe(0);
  });

  it('refuses a region too small for two slots', () => {
    expect(() => new RtcSnapshotStore(new FakeRtc(32))).toThrow(/too small/);
  });
});

describe('NvsSnapshotStore', () => {
  it('stores ArrayBuffer blobs under dormouse/s0 and dormouse/s1', () => {
    const preference = new FakePreference();
    const nvs = new NvsSnapshotStore(preference);
    const a = image(100, 1);
    nvs.write(0, a);
    nvs.write(1, a.subarray(10, 60)); // a view into a larger buffer: copied to its own ArrayBuffer
    expect(nvs.read(0)).toEqual(a);
    expect(nvs.read(1)).toEqual(a.subarray(10, 60));
    expect(new Uint8Array(preference.get('dormouse', 's0') as ArrayBuffer)).toEqual(a);
    nvs.clear();
    expect(nvs.read(0)).toBeNull();
    expect(nvs.read(1)).toBeNull();
  });

  it('enforces the NVS limits', () => {
    expect(() => new NvsSnapshotStore(new FakePreference(), 'a-domain-too-long')).toThrow(RangeError);
    expect(() => new NvsSnapshotStore(new FakePreference()).write(0, new Uint8Array(4001))).toThrow(RangeError);
  });

  it('a set cut between erase and write loses that slot only', () => {
    const preference = new FakePreference();
    const nvs = new NvsSnapshotStore(preference);
    nvs.write(0, image(50, 1));
    nvs.write(1, image(50, 2));
    preference.cutNextSet();
    expect(() => nvs.write(0, image(50, 3))).toThrow(PowerCut);
    expect(nvs.read(0)).toBeNull();
    expect(nvs.read(1)).toEqual(image(50, 2));
  });
});

describe('PreferredStore', () => {
  it('prefers RTC while it holds the slot', () => {
    const { store, nvs, preference } = stores({ nvsEvery: 1 });
    nvs.write(0, image(40, 1)); // older image in NVS
    store.write(0, image(40, 2));
    expect(store.read(0)).toEqual(image(40, 2));
    expect(preference.sets).toBe(1); // the write did not touch NVS
  });

  it('falls back to NVS after power loss wipes RTC', () => {
    const { store, rtc, preference } = stores({ nvsEvery: 1 });
    store.write(0, image(64, 1));
    store.write(1, image(64, 2));
    expect(store.checkpoint()).toBe(2);
    rtc.powerOn(99);
    const after = new PreferredStore(new RtcSnapshotStore(rtc), new NvsSnapshotStore(preference), { nvsEvery: 1 });
    expect(after.read(0)).toEqual(image(64, 1));
    expect(after.read(1)).toEqual(image(64, 2));
  });

  it('falls back per slot when one RTC slot is torn', () => {
    const { store, rtc } = stores({ nvsEvery: 1 });
    store.write(0, image(64, 1));
    store.write(1, image(64, 2));
    store.checkpoint();
    rtc.tearAfter(10);
    expect(() => store.write(1, image(64, 3))).toThrow(PowerCut);
    expect(store.read(0)).toEqual(image(64, 1)); // RTC
    expect(store.read(1)).toEqual(image(64, 2)); // NVS, the image before the torn one
  });

  it('mirrors to NVS every n-th checkpoint, counting across reboots in RTC', () => {
    const { rtc, preference } = stores();
    const boot = () => new PreferredStore(new RtcSnapshotStore(rtc), new NvsSnapshotStore(preference), { nvsEvery: 3 });
    for (let wake = 1; wake <= 6; wake++) {
      const store = boot();
      store.write((wake & 1) as 0 | 1, image(80, wake));
      const written = store.checkpoint();
      expect(written).toBe(wake % 3 === 0 ? 2 : 0);
    }
    expect(preference.sets).toBe(4);
  });

  it('skips NVS writes when NVS already holds the same bytes', () => {
    const { store, preference } = stores({ nvsEvery: 1 });
    store.write(0, image(80, 1));
    expect(store.checkpoint()).toBe(1);
    expect(store.checkpoint()).toBe(0);
    store.write(1, image(80, 2));
    expect(store.checkpoint()).toBe(1);
    expect(preference.sets).toBe(2);
  });

  it('writes through to NVS with nvsEvery 0', () => {
    const { store, preference } = stores({ nvsEvery: 0 });
    store.write(0, image(80, 1));
    store.write(1, image(80, 2));
    expect(preference.sets).toBe(2);
    expect(store.checkpoint()).toBe(0);
  });

  it('clear() forgets both slots in RTC and NVS', () => {
    const { store } = stores({ nvsEvery: 0 });
    store.write(0, image(80, 1));
    store.write(1, image(80, 2));
    store.clear();
    expect(store.read(0)).toBeNull();
    expect(store.read(1)).toBeNull();
  });

  it('rejects a bad cadence', () => {
    expect(() => stores({ nvsEvery: -1 })).toThrow(RangeError);
    expect(() => stores({ nvsEvery: 1.5 })).toThrow(RangeError);
  });

  it('carries a real client session through deep sleep and through power loss', () => {
    const hooks: ClientHooks = { send() {}, open() {}, close() {}, message() {}, event() {} };
    const caps = { inflight: 4, outbox: 8, storeBytes: 768, incomingQos2: 2, subscriptions: 1, subscriptionBytes: 32 };
    const options = { clientId: 'dormouse-1', protocolVersion: 5 as const, clean: false, capacities: caps };
    const { store, rtc, preference } = stores({ nvsEvery: 1 });

    const first = new DormouseClient(options, hooks, store, () => 0.5);
    first.restore(1000);
    const payload = new TextEncoder().encode('21.5');
    expect(first.publish('sensors/t1', payload, { qos: 1 }, 1000)).toBeGreaterThan(0);
    first.persist(1001);
    store.checkpoint();

    const woken = new DormouseClient(options, hooks, new PreferredStore(new RtcSnapshotStore(rtc), new NvsSnapshotStore(preference), { nvsEvery: 1 }), () => 0.5);
    woken.restore(5000);
    expect(woken.session.queued + woken.session.inflight).toBe(1);

    rtc.powerOn(1234);
    const repowered = new DormouseClient(options, hooks, new PreferredStore(new RtcSnapshotStore(rtc), new NvsSnapshotStore(preference), { nvsEvery: 1 }), () => 0.5);
    repowered.restore(0);
    expect(repowered.session.queued + repowered.session.inflight).toBe(1);
  });
});
