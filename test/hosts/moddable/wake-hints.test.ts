// The wake helper's records in RTC memory, across simulated deep sleeps in a
// ModelWorld: fast-connect hints (BSSID and channel for the join, the broker's
// looked-up address instead of DNS) with their fallbacks inside the same wake,
// and the wake budget's sleep that grows while the broker is down and resets
// after a good wake.
import { describe, expect, it } from 'vitest';
import { Client } from '../../../hosts/moddable/client.js';
import { Wake, type WakeTrace } from '../../../hosts/moddable/wake.js';
import { RtcLayout } from '../../../hosts/moddable/rtc-layout.js';
import { FAST_CONNECT_RECORD_BYTES, FastConnectHints } from '../../../modules/wake/fast-connect.js';
import { ModelWorld, Slept } from './model-world.js';
import { sensorWake } from './sensor-wake.js';

const AP = '24:0a:c4:12:34:56';
const byName = { host: 'broker.local' };

/** The hints record as it sits in the world's RTC memory now. */
function hintsInRtc(world: ModelWorld): FastConnectHints {
  const r = RtcLayout.hints;
  return new FastConnectHints(world.rtc.bytes.slice(r.offset, r.offset + FAST_CONNECT_RECORD_BYTES));
}

describe('wake helper: fast-connect hints', () => {
  it('the first wake looks the broker up and keeps the answer; the next wakes skip DNS and join by BSSID and channel until the address is stale', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    const first = sensorWake(world, 'r1', 1, accepted, { addressTtlS: 100 }, byName) as WakeTrace;
    expect(first.why).toBe('sleep-ready');
    expect(first.addressHint).toBe(false);
    expect(first.dnsMs).toBe(340); // joined at 300, the answer 40 ms later
    expect(first.tcpMs).toBeGreaterThan(first.dnsMs);
    expect(world.lookups).toEqual(['broker.local']);
    expect(hintsInRtc(world).address('broker.local', Math.floor(world.now / 1000))).toBe('127.0.0.1');
    expect(hintsInRtc(world).wifi(Math.floor(world.now / 1000))).toEqual({ bssid: Uint8Array.of(0x24, 0x0a, 0xc4, 0x12, 0x34, 0x56), channel: 6 });

    const second = sensorWake(world, 'r2', 1, accepted, { addressTtlS: 100 }, byName) as WakeTrace;
    expect(second.addressHint).toBe(true);
    expect(second.dnsMs).toBe(-1);
    expect(world.lookups).toHaveLength(1); // no DNS in this wake
    expect(second.wifiMs).toBe(120);
    expect(second.tcpMs).toBeLessThan(first.tcpMs - 200); // no scan, no lookup
    expect(world.wifiLog.joins.at(-1)).toEqual({ bssid: AP, channel: 6 });
    expect(world.traces.at(-1)).toMatch(/^dormouse: sleep-ready; wifi 120 \(bssid\), dns hint, tcp \d+, tls -, connack/);

    // 60 s sleeps: the third wake is past the 100 s the address is trusted for, so it looks it up again, and refreshes it.
    const third = sensorWake(world, 'r3', 1, accepted, { addressTtlS: 100 }, byName) as WakeTrace;
    expect(third.addressHint).toBe(false);
    expect(third.dnsMs).toBe(160);
    expect(world.lookups).toHaveLength(2);
    const fourth = sensorWake(world, 'r4', 1, accepted, { addressTtlS: 100 }, byName) as WakeTrace;
    expect(fourth.addressHint).toBe(true);
    expect(world.lookups).toHaveLength(2);
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2', 'r3', 'r4']);
    expect(world.tcpAddresses).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']);
  });

  it('a kept address that refuses: the same wake looks the name up and connects to the answer, which the next wake uses', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    sensorWake(world, 'r1', 1, accepted, {}, byName);
    world.brokerAddress = '10.0.0.7'; // the broker moved; nothing listens at the old address
    const t = sensorWake(world, 'r2', 1, accepted, {}, byName) as WakeTrace;
    expect(t.why).toBe('sleep-ready');
    expect(t.addressHint).toBe(true);
    expect(t.addressFellBack).toBe(true);
    expect(t.dnsMs).toBeGreaterThan(t.wifiMs);
    // The hinted connect was refused; while the lookup ran the client's own backoff may retry the old
    // address; once the answer is in, the next connect goes to the new one, at once.
    expect(world.tcpAddresses.slice(0, 2)).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(world.tcpAddresses.at(-1)).toBe('10.0.0.7');
    expect(world.tcpAddresses.filter((a) => a === '10.0.0.7')).toHaveLength(1);
    expect(t.tcpMs - t.dnsMs).toBeLessThanOrEqual(2); // connected one hop after the answer
    expect(world.lookups).toHaveLength(2);
    expect(world.traces.at(-1)).toMatch(/dns \d+ \(address hint failed\), tcp \d+/);
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2']);
    const next = sensorWake(world, 'r3', 1, accepted, {}, byName) as WakeTrace;
    expect(next.addressHint).toBe(true);
    expect(next.addressFellBack).toBe(false);
    expect(world.lookups).toHaveLength(2);
    expect(world.tcpAddresses.at(-1)).toBe('10.0.0.7');
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2', 'r3']);
  });

  it('a kept address that never answers is given addressConnectMs, then the lookup, in the same wake', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    sensorWake(world, 'r1', 1, accepted, {}, byName);
    world.brokerAddress = '10.0.0.7';
    world.otherAddresses = 'void';
    const t = sensorWake(world, 'r2', 1, accepted, { addressConnectMs: 1500 }, byName) as WakeTrace;
    expect(t.why).toBe('sleep-ready');
    expect(t.addressFellBack).toBe(true);
    expect(t.dnsMs).toBe(120 + 1500 + 40); // joined at 120, gave up on the address at +1500, answer 40 ms later
    expect(t.tcpMs).toBeGreaterThan(t.dnsMs);
    expect(world.tcpAddresses.slice(1)).toEqual(['127.0.0.1', '10.0.0.7']);
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2']);
  });

  it('a name that does not resolve: the trace says so, the wake ends with the window and counts a failure', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    const t = sensorWake(world, 'r1', 1, accepted, { windowMs: 3000 }, { host: 'nowhere.local' }) as WakeTrace;
    expect([t.why, t.dnsMs, t.dnsFailed, t.tcpMs, t.failures]).toEqual(['window', 340, true, -1, 1]);
    expect(world.tcpAddresses).toEqual([]);
    expect(world.traces.at(-1)).toMatch(/dns 340 \(no address\), tcp -/);
    expect(hintsInRtc(world).address('nowhere.local', Math.floor(world.now / 1000))).toBeNull();
  });

  it('a kept BSSID whose access point is gone: the join fails, the same wake joins by SSID alone and keeps the new BSSID', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    sensorWake(world, 'r1', 1, accepted);
    world.wifi.bssid = '24:0a:c4:ab:cd:ef'; // the access point was replaced
    world.wifi.channel = 11;
    const t = sensorWake(world, 'r2', 1, accepted) as WakeTrace;
    expect(t.why).toBe('sleep-ready');
    expect(t.bssidHint).toBe(true);
    expect(t.bssidFellBack).toBe(true);
    expect(t.wifiMs).toBe(1500 + 300); // "disconnect" after 1.5 s, then a full join
    expect(world.wifiLog.joins).toEqual([{ bssid: undefined }, { bssid: AP, channel: 6 }, { bssid: undefined }]);
    expect(world.traces.at(-1)).toMatch(/^dormouse: sleep-ready; wifi 1800 \(bssid failed, full join\), dns -/);
    const next = sensorWake(world, 'r3', 1, accepted) as WakeTrace;
    expect(next.bssidFellBack).toBe(false);
    expect(next.wifiMs).toBe(120);
    expect(world.wifiLog.joins.at(-1)).toEqual({ bssid: '24:0a:c4:ab:cd:ef', channel: 11 });
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2', 'r3']);
  });

  it('a kept BSSID whose join hangs gets bssidJoinMs (at most half the Wi-Fi time), then a full join', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    sensorWake(world, 'r1', 1, accepted);
    world.wifi.hintedJoinMs = Infinity;
    const t = sensorWake(world, 'r2', 1, accepted, { bssidJoinMs: 800 }) as WakeTrace;
    expect(t.bssidFellBack).toBe(true);
    expect(t.wifiMs).toBe(800 + 300);
    expect(t.why).toBe('sleep-ready');
    expect(world.wifiLog.disconnects).toBe(3); // one after each wake, one to leave the hung join
  });

  it('power-on noise in RTC gives no hints and no backoff: a full join, a lookup, the normal sleep', () => {
    for (const seed of [3, 17, 99]) {
      const world = new ModelWorld(seed);
      world.rtc.powerOn(seed * 7919);
      const accepted: string[] = [];
      const t = sensorWake(world, 'r1', 1, accepted, {}, byName) as WakeTrace;
      expect(t.bssidHint).toBe(false);
      expect(t.addressHint).toBe(false);
      expect(world.lookups).toEqual(['broker.local']);
      expect(world.wifiLog.joins).toEqual([{ bssid: undefined }]);
      expect(t.sleepMs).toBe(60_000);
      expect(t.failures).toBe(0);
    }
  });

  it('a power cut between wakes loses the hints (RTC noise): the next wake falls back to a full join and lookup', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    sensorWake(world, 'r1', 1, accepted, {}, byName);
    expect((sensorWake(world, 'r2', 1, accepted, {}, byName) as WakeTrace).addressHint).toBe(true);
    world.powerCut();
    const t = sensorWake(world, 'r3', 1, accepted, {}, byName) as WakeTrace;
    expect(t.addressHint).toBe(false);
    expect(t.bssidHint).toBe(false);
    expect(world.lookups).toHaveLength(2);
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2', 'r3']);
  });
});

describe('wake helper: the sleep the wake budget chooses', () => {
  const options = { windowMs: 4000, sleepMs: 60_000, maxSleepMs: 600_000 };

  it('grows (jittered, capped) across deep sleeps while the broker is down, and is back to sleepMs after a good wake', () => {
    const world = new ModelWorld(5);
    const accepted: string[] = [];
    sensorWake(world, 'r0', 1, accepted, options);
    world.brokerUp = false;
    const sleeps: number[] = [];
    for (let n = 1; n <= 6; n++) {
      const t = sensorWake(world, `r${n}`, 1, accepted, options) as WakeTrace;
      expect(t.why).toBe('window');
      expect(t.failures).toBe(n);
      // Equal jitter: from [w/2, w], w = min(cap, sleepMs × 2^n).
      const w = Math.min(600_000, 60_000 * 2 ** n);
      expect(t.sleepMs).toBeGreaterThanOrEqual(w / 2);
      expect(t.sleepMs).toBeLessThanOrEqual(w);
      expect(world.traces.at(-1)).toMatch(new RegExp(`sleeping ${t.sleepMs} ms \\(${n} failed wakes in a row\\)$`));
      sleeps.push(t.sleepMs);
    }
    expect(sleeps[3]! + sleeps[4]! + sleeps[5]!).toBeGreaterThan(3 * 300_000); // at the cap's band
    expect(new Set(sleeps.slice(3)).size).toBeGreaterThan(1); // jittered, not a fixed step
    world.brokerUp = true;
    const good = sensorWake(world, 'r7', 1, accepted, options) as WakeTrace;
    expect(good.why).toBe('sleep-ready');
    expect(good.failures).toBe(0);
    expect(good.sleepMs).toBe(60_000);
    expect(world.delivered.map((d) => d.payload).sort()).toEqual(accepted.slice().sort());
  });

  it('a Wi-Fi timeout and a window that ends before the ack count as failed wakes too', () => {
    const world = new ModelWorld(8);
    const accepted: string[] = [];
    world.wifi.joinMs = world.wifi.hintedJoinMs = Infinity;
    const a = sensorWake(world, 'r1', 1, accepted, { ...options, wifiTimeoutMs: 2000 }) as WakeTrace;
    expect([a.why, a.failures]).toEqual(['wifi', 1]);
    expect(a.sleepMs).toBeGreaterThanOrEqual(60_000);
    world.wifi.joinMs = 3990; // up just before the window ends: no time for the ack
    world.wifi.hintedJoinMs = 3990;
    const b = sensorWake(world, 'r2', 1, accepted, options) as WakeTrace;
    expect([b.why, b.failures]).toEqual(['window', 2]);
    expect(b.sleepMs).toBeGreaterThanOrEqual(120_000);
  });

  it('a session takeover sleeps from its own window and ends the wake at once', () => {
    const world = new ModelWorld(11);
    const accepted: string[] = [];
    let trace: WakeTrace | undefined;
    // A second device with the same client id connects as soon as this one has its CONNACK.
    const intruder = new Client({ host: '127.0.0.1', id: 'dev-1', start: false, clean: true }, { ...world.platform, rtc: undefined, preference: undefined });
    const client = new Client({ host: '127.0.0.1', id: 'dev-1', start: false, expiry: 3600 }, world.platform);
    client.onReady = () => intruder.start();
    client.publish('sensors/dev-1', 'r1', { qos: 2 }); // four packets: still in flight when the takeover comes
    const wake = new Wake(client, { ssid: 'net', windowMs: 5000, sleepMs: 60_000, takeoverSleepMs: 900_000 }, world.wakePlatform);
    wake.onSleep = (t) => (trace = t);
    let slept = -1;
    try {
      world.run(10_000);
    } catch (e) {
      if (!(e instanceof Slept)) throw e;
      slept = e.ms;
    }
    intruder.close();
    expect(trace!.why).toBe('takeover');
    expect(trace!.takeovers).toBe(1);
    expect(trace!.failures).toBe(0);
    expect(slept).toBe(trace!.sleepMs);
    expect(slept).toBeGreaterThanOrEqual(450_000);
    expect(slept).toBeLessThanOrEqual(900_000);
    expect(trace!.awakeMs).toBeLessThan(1000); // not the whole 5 s window
    expect(world.traces.at(-1)).toMatch(/^dormouse: takeover; .* \(taken over 1x in a row: another device has this id\)$/);
    world.sleepFor(slept);
    const after = sensorWake(world, 'r2', 1, accepted) as WakeTrace;
    expect(after.why).toBe('sleep-ready');
    expect([after.takeovers, after.sleepMs]).toEqual([0, 60_000]);
  });
});
