import { describe, expect, it } from 'vitest';
import { SessionState, RecordEvent, RecordState, Release } from '../../modules/session/session-state.js';
import { Prng, seedFromEnv } from '../support/prng.js';

describe('SessionState incoming QoS 2 ids', () => {
  it('the hash set agrees with a reference Set over random adds and removes (seeded)', () => {
    const seed = seedFromEnv();
    const rnd = new Prng(seed);
    for (const cap of [1, 2, 3, 16, 100, 1024]) {
      const s = new SessionState({ incomingQos2: cap });
      const ref = new Set<number>();
      // A narrow id range makes collisions and long probe runs common.
      const range = Math.max(4, cap * 3);
      for (let step = 0; step < 20_000; step++) {
        const id = rnd.int(1, range);
        if (rnd.bool(0.5)) {
          const ok = s.addIncoming(id);
          if (ref.has(id)) expect(ok).toBe(true);
          else if (ref.size >= cap) expect(ok, `seed ${seed}`).toBe(false);
          else {
            expect(ok).toBe(true);
            ref.add(id);
          }
        } else {
          expect(s.removeIncoming(id), `seed ${seed} cap ${cap} step ${step} id ${id}`).toBe(ref.delete(id) ? Release.Removed : Release.NotHeld);
        }
        expect(s.incomingCount).toBe(ref.size);
        const probe = rnd.int(1, range);
        expect(s.hasIncoming(probe), `seed ${seed} cap ${cap} step ${step} probe ${probe}`).toBe(ref.has(probe));
      }
      const ids: number[] = [];
      expect(s.incomingIds(ids)).toBe(ref.size);
      expect(new Set(ids)).toEqual(ref);
    }
  });

  it('ids span the whole range 1..65535', () => {
    const s = new SessionState({ incomingQos2: 4 });
    for (const id of [1, 65535, 32768, 2]) expect(s.addIncoming(id)).toBe(true);
    for (const id of [1, 65535, 32768, 2]) expect(s.hasIncoming(id)).toBe(true);
    expect(s.addIncoming(3)).toBe(false);
  });
});

describe('SessionState incoming id runs', () => {
  it('the table and its runs agree with a reference Set over mostly-sequential adds and mostly-in-order releases (seeded)', () => {
    const seed = seedFromEnv();
    const rnd = new Prng(seed);
    const next = (id: number) => (id === 65535 ? 1 : id + 1);
    for (const [cap, runs] of [[1, 1], [2, 4], [16, 4], [4, 16]] as const) {
      const s = new SessionState({ incomingQos2: cap, incomingRuns: runs });
      const ref: number[] = []; // held ids in arrival order
      let id = rnd.int(1, 65535);
      for (let step = 0; step < 20_000; step++) {
        if (rnd.bool(0.55)) {
          // A broker numbers in sequence, now and then skipping (another subscriber's ids).
          id = rnd.bool(0.9) ? next(id) : rnd.int(1, 65535);
          const had = ref.includes(id);
          const ok = s.addIncomingAny(id);
          if (had) expect(ok).toBe(true);
          else if (ok) ref.push(id);
          // Refused only with the table full and no run free (or able to take it).
          else expect(s.incomingCount, `seed ${seed}`).toBe(cap);
        } else if (ref.length > 0) {
          // PUBRELs come oldest first [MQTT-4.6.0-3]; now and then one out of order.
          const k = rnd.bool(0.9) ? 0 : rnd.int(0, ref.length - 1);
          const r = ref[k]!;
          const released = s.removeIncoming(r);
          if (released === Release.NoRunFree) {
            // Kept: only an out-of-order release can land inside a run with none free (incomingHeld below shows nothing changed).
            expect(k).toBeGreaterThan(0);
          } else {
            expect(released, `seed ${seed} cap ${cap} step ${step}`).toBe(Release.Removed);
            ref.splice(k, 1);
          }
        }
        expect(s.incomingHeld, `seed ${seed} cap ${cap} runs ${runs} step ${step}`).toBe(ref.length);
        const probe = rnd.bool(0.5) && ref.length ? ref[rnd.int(0, ref.length - 1)]! : rnd.int(1, 65535);
        expect(s.hasIncoming(probe), `seed ${seed} step ${step} probe ${probe}`).toBe(ref.includes(probe));
      }
      const ids: number[] = [];
      expect(s.incomingIds(ids)).toBe(ref.length);
      expect(new Set(ids)).toEqual(new Set(ref));
    }
  });

  it('a run holds thousands of ids in 4 bytes, across the wrap from 65535 to 1', () => {
    const s = new SessionState({ incomingQos2: 1, incomingRuns: 1 });
    expect(s.addIncomingAny(30000)).toBe(true); // the table
    for (let k = 0; k < 5000; k++) expect(s.addIncomingAny(((62000 + k - 1) % 65535) + 1)).toBe(true);
    expect(s.incomingHeld).toBe(5001);
    expect(s.addIncomingAny(20000)).toBe(false); // not the run's next id: no room
    expect(s.hasIncoming(65535) && s.hasIncoming(1) && s.hasIncoming(1464) && !s.hasIncoming(1465)).toBe(true);
    expect(s.incomingRoom).toBe(false);
  });

  it('runs take no more once half the id space is held: a broker past that is about to repeat ids', () => {
    const s = new SessionState({ incomingQos2: 1, incomingRuns: 2 });
    for (let id = 1; id <= 32768; id++) expect(s.addIncomingAny(id)).toBe(true);
    expect(s.incomingHeld).toBe(32768);
    expect(s.addIncomingAny(32769)).toBe(false);
    expect(s.addIncomingAny(5)).toBe(true); // held already
    expect(s.incomingRoom).toBe(false);
    expect(s.removeIncoming(1)).toBe(Release.Removed);
    expect(s.incomingRoom).toBe(true);
    expect(s.addIncomingAny(32769)).toBe(true);
  });
});

describe('SessionState records', () => {
  it('a record moves only along the transition table', () => {
    const s = new SessionState();
    const off = s.reserve(10);
    const i = s.commitAccept(2, 10, 0, 4, 0);
    expect(off).toBe(0);
    expect(s.transition(i, RecordEvent.Puback)).toBe(false); // not sent yet
    expect(s.transition(i, RecordEvent.Send, 9, 0)).toBe(true);
    expect(s.state(i)).toBe(RecordState.SentPublish);
    expect(s.transition(i, RecordEvent.Pubcomp)).toBe(false); // PUBCOMP before PUBREC
    expect(s.transition(i, RecordEvent.Pubrec)).toBe(true);
    expect(s.transition(i, RecordEvent.Pubcomp)).toBe(true);
    expect(s.live).toBe(0);
    expect(s.span).toBe(0);
  });

  it('holes left by out-of-order completion are reclaimed when the store runs out at the end', () => {
    const s = new SessionState({ inflight: 4, outbox: 4, storeBytes: 40 });
    const ids: number[] = [];
    for (let k = 0; k < 4; k++) {
      const o = s.reserve(10);
      s.arena.fill(k + 1, o, o + 10);
      ids.push(s.commitAccept(1, 10, 0, 4, 0));
    }
    expect(s.reserve(10)).toBe(-1); // full
    s.transition(ids[1], RecordEvent.Send, 1, 0);
    s.transition(ids[1], RecordEvent.Puback);
    const o = s.reserve(10); // compacts: records 0, 2, 3 move down
    expect(o).toBe(30);
    expect(Array.from(s.arena.subarray(0, 30))).toEqual([...Array(10).fill(1), ...Array(10).fill(3), ...Array(10).fill(4)]);
  });
});
