import { describe, expect, it } from 'vitest';
import { SessionState, DEFAULT_CAPACITIES, RecordEvent } from '../../modules/session/session-state.js';
import { SessionSnapshot, snapshotCapacity, SnapshotMismatchError, RestoreStatus, type SessionMeta } from '../../modules/session/snapshot.js';
import { crc32 } from '../../modules/session/crc32.js';
import { MemorySnapshotStore, PowerLossError } from '../../sim/memory-store.js';
import { Prng } from '../support/prng.js';

const id = (s: string) => new TextEncoder().encode(s);
const meta = (): SessionMeta => ({
  clockMs: 0,
  hasSession: true,
  serverReceiveMaximum: 20,
  serverMaximumQoS: 2,
  serverRetainAvailable: true,
  serverMaximumPacketSize: 1000,
  serverKeepAlive: 60,
});

function accept(s: SessionState, fill: number, len = 30): number {
  const off = s.reserve(len);
  s.arena.fill(fill, off, off + len);
  return s.commitAccept(1, len, 0, 16, 0);
}

describe('SessionSnapshot', () => {
  it('CRC-32 is the standard one (check value of "123456789" is cbf43926)', () => {
    expect(crc32(id('123456789'), 0, 9).toString(16)).toBe('cbf43926');
  });

  it('with the default capacities the largest possible snapshot fits in 4 KiB (ESP32 RTC slow memory is 8 KB)', () => {
    // A 23-character client id is the longest every broker must accept [MQTT-3.1.3-5].
    expect(snapshotCapacity(DEFAULT_CAPACITIES, 23)).toBeLessThanOrEqual(4096);
  });

  it('round-trips records, stored packets, ids, subscriptions and server limits, holes closed', () => {
    const s = new SessionState();
    const store = new MemorySnapshotStore();
    const snap = new SessionSnapshot(s, 4, id('dev1'), store);
    const a = accept(s, 0xaa);
    const b = accept(s, 0xbb);
    accept(s, 0xcc);
    s.transition(a, RecordEvent.Send, 7, 100);
    s.transition(b, RecordEvent.Send, 8, 100);
    s.transition(b, RecordEvent.Puback); // a hole in the middle
    s.addIncoming(99);
    s.putSub(id('cmd/#'), 1);
    const m = meta();
    m.clockMs = 123456;
    snap.persist(m);

    const s2 = new SessionState();
    const m2 = meta();
    m2.serverReceiveMaximum = 0;
    expect(new SessionSnapshot(s2, 4, id('dev1'), store).restore(m2)).toBe(RestoreStatus.Restored);
    expect(m2).toEqual(m);
    expect(s2.live).toBe(2);
    expect(s2.inflight).toBe(1);
    expect(s2.queued).toBe(1);
    expect(s2.packetId(0)).toBe(7);
    expect(Array.from(s2.arena.subarray(s2.offset(1), s2.offset(1) + 30))).toEqual(new Array(30).fill(0xcc));
    expect(s2.hasIncoming(99)).toBe(true);
    expect(s2.findSub(id('cmd/#'))).toBe(0);
    expect(s2.nextToken).toBe(4);
  });

  it('round-trips incoming id runs; an image with more runs than configured is refused, an image without runs restores anywhere', () => {
    const s = new SessionState({ incomingQos2: 2, incomingRuns: 3 });
    const store = new MemorySnapshotStore();
    const snap = new SessionSnapshot(s, 4, id('dev1'), store);
    for (const k of [1, 2, 500, 501, 502, 900, 65535, 1]) s.addIncomingAny(k);
    snap.persist(meta());
    const s2 = new SessionState({ incomingQos2: 2, incomingRuns: 3 });
    new SessionSnapshot(s2, 4, id('dev1'), store).restore(meta());
    const ids = (x: SessionState) => { const o: number[] = []; x.incomingIds(o); return o.sort((a, b) => a - b); };
    expect(ids(s2)).toEqual([1, 2, 500, 501, 502, 900, 65535]);
    expect(s2.incomingHeld).toBe(7);
    // Runs are not in the configuration hash (images from before them restore), so the count is checked.
    expect(() => new SessionSnapshot(new SessionState({ incomingQos2: 2, incomingRuns: 1 }), 4, id('dev1'), store).restore(meta())).toThrow(SnapshotMismatchError);
    const plain = new SessionState({ incomingQos2: 2, incomingRuns: 3 });
    plain.addIncoming(9);
    const store2 = new MemorySnapshotStore();
    new SessionSnapshot(plain, 4, id('dev1'), store2).persist(meta());
    const s3 = new SessionState({ incomingQos2: 2, incomingRuns: 0 });
    new SessionSnapshot(s3, 4, id('dev1'), store2).restore(meta());
    expect(ids(s3)).toEqual([9]);
  });

  it('a write torn at any byte restores either the previous or the new image, never a corrupt one', () => {
    const store = new MemorySnapshotStore();
    const s = new SessionState();
    const snap = new SessionSnapshot(s, 4, id('dev1'), store);
    const m = meta();
    accept(s, 1);
    snap.persist(m); // image A (slot 0)
    accept(s, 2);
    snap.persist(m); // image B (slot 1)
    accept(s, 3);
    const len = snap.encode(m, 3);
    let sawOld = 0;
    for (let cut = 0; cut < len; cut++) {
      const st = store.clone();
      const w = new SessionSnapshot(new SessionState(), 4, id('dev1'), st);
      w.restore(meta()); // learn which slot is newest, as a woken device would
      // Replay the third write through a fresh state that holds three records, torn at `cut`.
      const s3 = new SessionState();
      const sn3 = new SessionSnapshot(s3, 4, id('dev1'), st);
      sn3.restore(meta());
      accept(s3, 3);
      st.tearNextWriteAt = cut;
      try {
        sn3.persist(m);
      } catch (e) {
        expect(e).toBeInstanceOf(PowerLossError);
      }
      const r = new SessionState();
      expect(new SessionSnapshot(r, 4, id('dev1'), st).restore(meta())).toBe(RestoreStatus.Restored);
      expect(r.live).toBe(2);
      sawOld++;
    }
    expect(sawOld).toBe(len); // cuts past len - 4 are kept at len - 4 by the store: still torn
    // The same write completed: the new image wins.
    const done = store.clone();
    const s4 = new SessionState();
    const sn4 = new SessionSnapshot(s4, 4, id('dev1'), done);
    sn4.restore(meta());
    accept(s4, 3);
    sn4.persist(m);
    const r4 = new SessionState();
    new SessionSnapshot(r4, 4, id('dev1'), done).restore(meta());
    expect(r4.live).toBe(3);
  });

  it('refuses a snapshot from another client id or configuration with a clear error', () => {
    const store = new MemorySnapshotStore();
    new SessionSnapshot(new SessionState(), 4, id('dev1'), store).persist(meta());
    expect(() => new SessionSnapshot(new SessionState(), 4, id('dev2'), store).restore(meta())).toThrow(SnapshotMismatchError);
    expect(() => new SessionSnapshot(new SessionState(), 4, id('dev2'), store).restore(meta())).toThrow(/belongs to client id "dev1"/);
    expect(() => new SessionSnapshot(new SessionState(), 5, id('dev1'), store).restore(meta())).toThrow(/protocol version or other capacities/);
    expect(() => new SessionSnapshot(new SessionState({ inflight: 4 }), 4, id('dev1'), store).restore(meta())).toThrow(SnapshotMismatchError);
  });

  it('random bytes in both slots are not a session: Foreign, or Damaged when they start as ours (seeded)', () => {
    const prng = new Prng(7);
    const rnd = () => prng.float();
    for (let k = 0; k < 200; k++) {
      const st = new MemorySnapshotStore();
      for (const slot of [0, 1] as const) {
        const b = new Uint8Array(Math.floor(rnd() * 600));
        for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
        st.slots[slot] = b;
      }
      const any = st.slots[0]!.length + st.slots[1]!.length > 0;
      expect(new SessionSnapshot(new SessionState(), 4, id('dev1'), st).restore(meta())).toBe(any ? RestoreStatus.Foreign : RestoreStatus.Empty);
    }
  });

  it('tells a damaged session of its own (both slots torn, cut short or flipped) from an empty store', () => {
    const store = new MemorySnapshotStore();
    expect(new SessionSnapshot(new SessionState(), 4, id('dev1'), store).restore(meta())).toBe(RestoreStatus.Empty);
    const s = new SessionState();
    const sn = new SessionSnapshot(s, 4, id('dev1'), store);
    accept(s, 2);
    sn.persist(meta());
    sn.persist(meta());
    const good = [store.slots[0]!.slice(), store.slots[1]!.slice()];
    const restore = () => new SessionSnapshot(new SessionState(), 4, id('dev1'), store).restore(meta());
    expect(restore()).toBe(RestoreStatus.Restored);
    // One byte flipped in each slot.
    for (const slot of [0, 1] as const) { store.slots[slot] = good[slot]!.slice(); store.slots[slot]![40] ^= 0x10; }
    expect(restore()).toBe(RestoreStatus.Damaged);
    // Both cut short, even to two bytes.
    store.slots[0] = good[0]!.slice(0, 30);
    store.slots[1] = good[1]!.slice(0, 2);
    expect(restore()).toBe(RestoreStatus.Damaged);
    // One slot damaged, the other intact: the intact one is restored, nothing was lost.
    store.slots[1] = good[1]!.slice();
    expect(restore()).toBe(RestoreStatus.Restored);
    // Not ours at all.
    store.slots[0] = new TextEncoder().encode('#!/bin/sh\necho hello\n');
    store.slots[1] = null;
    expect(restore()).toBe(RestoreStatus.Foreign);
  });
});
