// The backoff continues across deep sleep: a sequence of wakes against a
// broker that is down, each wake a fresh client and budget (RAM is lost in
// deep sleep) with only an RTC-like byte region carried from one to the next.
import { describe, expect, it } from 'vitest';
import { rig, payload } from './harness.js';
import { ClientEvent } from '../../modules/session/ports.js';
import { ConnState } from '../../modules/session/client.js';
import { WakeBudget, WakeOutcome, WakeStep, WAKE_BUDGET_RECORD_BYTES } from '../../modules/session/wake-budget.js';
import { MemorySnapshotStore } from '../../sim/memory-store.js';

const SLEEP = 60_000;
const WINDOW = 8_000;
const MAX = 16 * SLEEP;

/**
 * One wake of a device: a fresh core and budget, restored from `rtc`; the core
 * reconnects with its own backoff inside the window while `brokerUp` says no;
 * at the deadline (or when sleep-ready) it finishes and saves the record.
 * Returns the sleep it chose and the attempts made.
 */
function wakeOnce(rtc: Uint8Array, store: MemorySnapshotStore, brokerUp: boolean, random: () => number) {
  const budget = new WakeBudget({ sleepMs: SLEEP, windowMs: WINDOW, maxSleepMs: MAX }, random);
  budget.restore(rtc);
  const r = rig({ reconnect: { baseMs: 500, capMs: 2000 } }, store, random);
  let now = 0;
  budget.begin(now);
  r.client.restore(now);
  r.client.publish('sensors/t1', payload, { qos: 1 }, now);
  r.client.start(now);
  let attempts = 0;
  let outcome = WakeOutcome.Unreachable;
  while (!budget.expired(now)) {
    if (r.client.state === ConnState.Opening) {
      attempts++;
      if (!brokerUp) {
        now += 300; // TCP connect refused after 300 ms
        r.client.transportClosed(now);
      } else {
        now += 40;
        budget.mark(WakeStep.TcpOpen, now);
        r.client.transportOpened(now);
        now += 40;
        r.feed(r.client.meta.hasSession ? '20 02 01 00' : '20 02 00 00', now);
        budget.mark(WakeStep.Connack, now);
        // PUBACK for every reading that waited in the session (one per failed wake), ids 1, 2, ...
        const sent = r.client.session.inflight;
        expect(sent).toBe(r.client.session.live);
        for (let id = 1; id <= sent; id++) r.feed(`40 02 00 ${id.toString(16).padStart(2, '0')}`, now + 40);
        now += 40;
        if (r.client.isSleepReady()) {
          budget.mark(WakeStep.LastAck, now);
          outcome = WakeOutcome.Delivered;
          break;
        }
      }
    }
    const next = Math.min(r.client.nextDeadline(), budget.deadline);
    now = Math.max(now, next);
    r.client.tick(now);
  }
  r.client.end(now);
  const sleepMs = budget.finish(outcome);
  budget.save(rtc);
  return { sleepMs, attempts, outcome, budget, awakeMs: now };
}

describe('WakeBudget: backoff across deep sleep', () => {
  it('sleeps longer after each failed wake (equal jitter, capped), and the normal sleep after a good one', () => {
    const rtc = new Uint8Array(256); // the hints range of the RTC layout holds it
    const store = new MemorySnapshotStore();
    let seed = 1;
    const random = () => ((seed = (seed * 48271) % 0x7fffffff) / 0x7fffffff);
    const sleeps: number[] = [];
    for (let k = 0; k < 7; k++) {
      const w = wakeOnce(rtc, store, false, random);
      expect(w.outcome).toBe(WakeOutcome.Unreachable);
      // The whole wake kept to the window: no attempt after the deadline.
      expect(w.awakeMs).toBe(WINDOW);
      expect(w.attempts).toBeGreaterThan(1);
      const window = Math.min(MAX, SLEEP * 2 ** (k + 1));
      expect(w.sleepMs).toBeGreaterThanOrEqual(window / 2);
      expect(w.sleepMs).toBeLessThanOrEqual(window);
      expect(w.budget.failures).toBe(k + 1);
      sleeps.push(w.sleepMs);
    }
    // The windows double to the cap: 2, 4, 8, 16, 16, 16, 16 minutes.
    // With equal jitter the windows [w/2, w] do not overlap as w doubles: each sleep is at least the last one.
    for (let i = 1; i < 4; i++) expect(sleeps[i]).toBeGreaterThanOrEqual(sleeps[i - 1]!);
    expect(Math.max(...sleeps)).toBeLessThanOrEqual(MAX);
    expect(sleeps.slice(4).every((s) => s >= MAX / 2)).toBe(true);
    // The broker is back: the reading that waited in the session goes out and the count resets.
    const good = wakeOnce(rtc, store, true, random);
    expect(good.outcome).toBe(WakeOutcome.Delivered);
    expect(good.sleepMs).toBe(SLEEP);
    expect(good.budget.failures).toBe(0);
    expect(good.attempts).toBe(1);
    expect(good.budget.steps[WakeStep.Connack]).toBe(80);
    const after = new WakeBudget({ sleepMs: SLEEP });
    expect(after.restore(rtc)).toBe(true);
    expect([after.failures, after.wakes]).toEqual([0, 8]);
  });

  it('takeover wakes sleep from their own window, doubling; power-on noise starts from zero', () => {
    const b = new WakeBudget({ sleepMs: 1000, takeoverSleepMs: 3600_000, maxSleepMs: 4 * 3600_000 }, () => 0.5);
    // Windows 1 h, 2 h, 4 h, 4 h (capped), each drawn at 3/4.
    expect([b.finish(WakeOutcome.TakenOver), b.finish(WakeOutcome.TakenOver), b.finish(WakeOutcome.TakenOver), b.finish(WakeOutcome.TakenOver)])
      .toEqual([2700_000, 5400_000, 10800_000, 10800_000]);
    const noise = Uint8Array.from({ length: WAKE_BUDGET_RECORD_BYTES }, (_, k) => (k * 97 + 13) & 0xff);
    const fresh = new WakeBudget({ sleepMs: 1000 });
    expect(fresh.restore(noise)).toBe(false);
    expect(fresh.failures).toBe(0);
    const region = new Uint8Array(WAKE_BUDGET_RECORD_BYTES);
    b.save(region);
    region[5] ^= 1;
    expect(new WakeBudget({ sleepMs: 1000 }).restore(region)).toBe(false);
  });

  it('one deadline bounds every step: a step timeout never runs past it', () => {
    const b = new WakeBudget({ sleepMs: 1000, windowMs: 5000 });
    b.begin(100);
    expect(b.timeout(100, 3000)).toBe(3000);
    expect(b.timeout(4000, 3000)).toBe(1100);
    expect(b.timeout(6000, 3000)).toBe(0);
    expect(b.expired(5100)).toBe(true);
  });

  it('a core that sees a takeover ends the wake with the takeover outcome', () => {
    const r = rig({ clean: true, protocolVersion: 5 });
    r.client.start(0);
    r.client.transportOpened(0);
    r.feed('20 03 00 00 00 e0 02 8e 00', 10);
    expect(r.kinds(ClientEvent.TakenOver)).toHaveLength(1);
    const b = new WakeBudget({ sleepMs: 60_000 }, () => 0);
    expect(b.finish(WakeOutcome.TakenOver)).toBe(1800_000);
  });
});
