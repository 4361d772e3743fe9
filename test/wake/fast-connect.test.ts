// Fast-connect hints across simulated deep sleeps: a Wi-Fi model whose join
// takes the user-reported times (1.2 s with a known BSSID, 3.9 s scanning), an
// access point that is replaced between wakes, a broker that moves address.
import { describe, expect, it } from 'vitest';
import { FastConnectHints, FAST_CONNECT_RECORD_BYTES, withFallback } from '../../modules/wake/fast-connect.js';

const AP1 = Uint8Array.of(0x24, 0x0a, 0xc4, 0x01, 0x02, 0x03);
const AP2 = Uint8Array.of(0x24, 0x0a, 0xc4, 0x09, 0x09, 0x09);

/** A tiny world: which AP serves the SSID, where the broker is, and the time each step costs. */
function world() {
  const w = {
    ap: AP1,
    channel: 6,
    brokerAt: '192.168.1.20',
    ms: 0,
    dnsLookups: 0,
    /** Join with a BSSID (fails after 1.5 s if that AP is gone) or by scanning. */
    join(hint: { bssid: Uint8Array; channel: number } | null): boolean {
      if (hint) {
        if (hint.bssid.every((b, k) => b === w.ap[k])) { w.ms += 1200; return true; }
        w.ms += 1500;
        return false;
      }
      w.ms += 3900;
      return true;
    },
    lookup(): string { w.dnsLookups++; w.ms += 150; return w.brokerAt; },
    tcp(address: string): boolean { w.ms += 30; return address === w.brokerAt; },
  };
  return w;
}

/** One wake with the hints in `rtc`; returns the ms spent joining and connecting. */
function wake(rtc: Uint8Array, w: ReturnType<typeof world>, nowS: number) {
  const hints = new FastConnectHints(rtc.subarray(0, 256)); // a fresh object: RAM is lost in deep sleep
  const start = w.ms;
  const j = withFallback(hints.wifi(nowS), (h) => w.join(h), () => hints.wifiHintFailed());
  expect(j.ok).toBe(true);
  hints.joined(w.ap, w.channel, nowS);
  const joinMs = w.ms - start;
  const host = 'broker.example';
  const c = withFallback(hints.address(host, nowS), (a) => w.tcp(a ?? w.lookup()), () => hints.addressFailed());
  expect(c.ok).toBe(true);
  if (!c.usedHint || c.fellBack) hints.resolved(host, w.brokerAt, nowS, 3600);
  return { joinMs, totalMs: w.ms - start, wifiFellBack: j.fellBack, addressFellBack: c.fellBack };
}

describe('FastConnectHints', () => {
  it('the second wake joins by BSSID and skips DNS; a replaced AP or moved broker falls back once and is learned again', () => {
    const rtc = new Uint8Array(4096).fill(0xa5); // power-on noise
    const w = world();
    const first = wake(rtc, w, 1000);
    expect(first).toMatchObject({ joinMs: 3900, totalMs: 3900 + 150 + 30 });
    expect(w.dnsLookups).toBe(1);
    const second = wake(rtc, w, 1300);
    expect(second).toMatchObject({ joinMs: 1200, totalMs: 1230, wifiFellBack: false, addressFellBack: false });
    expect(w.dnsLookups).toBe(1);
    // The access point was replaced and the broker moved while the device slept.
    w.ap = AP2;
    w.brokerAt = '192.168.1.21';
    const third = wake(rtc, w, 1600);
    expect(third).toMatchObject({ joinMs: 1500 + 3900, wifiFellBack: true, addressFellBack: true });
    expect(w.dnsLookups).toBe(2);
    const fourth = wake(rtc, w, 1900);
    expect(fourth).toMatchObject({ joinMs: 1200, totalMs: 1230 });
  });

  it('hints expire: an address after its TTL, a BSSID after bssidMaxAgeS; another host name gets no address', () => {
    const region = new Uint8Array(FAST_CONNECT_RECORD_BYTES);
    const h = new FastConnectHints(region, { bssidMaxAgeS: 86400 });
    h.joined(AP1, 11, 100);
    expect(h.resolved('Broker.example', '10.0.0.5', 100, 60)).toBe(true);
    expect(h.address('broker.example', 159)).toBe('10.0.0.5');
    expect(h.address('broker.example', 160)).toBeNull();
    expect(h.address('other.example', 120)).toBeNull();
    expect(h.wifi(100 + 86399)).toEqual({ bssid: AP1, channel: 11 });
    expect(h.wifi(100 + 86400)).toBeNull();
    expect(h.wifi(99)).toBeNull(); // the clock ran back: not trusted
    for (const bad of ['10.0.0', '10.0.0.256', '::1', '10.0.0.5a', '1.2.3.-4']) expect(h.resolved('x', bad, 100, 60)).toBe(false);
  });

  it('a torn or corrupt record gives no hints at all', () => {
    const region = new Uint8Array(FAST_CONNECT_RECORD_BYTES);
    const h = new FastConnectHints(region);
    h.joined(AP1, 1, 10);
    h.resolved('b', '1.2.3.4', 10, 100);
    region[8] ^= 0x40;
    const after = new FastConnectHints(region);
    expect(after.wifi(11)).toBeNull();
    expect(after.address('b', 11)).toBeNull();
    expect(after.valid()).toBe(true); // cleared and sealed afresh
  });
});
