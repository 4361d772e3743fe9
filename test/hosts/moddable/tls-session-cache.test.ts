// The RTC-backed cache manager for Moddable's TLS, driven with the calls
// Moddable's session_419.js makes on the client side, in its order, across a
// simulated deep sleep (a fresh cache object over the same RTC bytes).
import { describe, expect, it } from 'vitest';
import { TlsSessionCache, TlsHandshake } from '../../../hosts/moddable/tls-session-cache.js';
import { RtcLayout, rtcRegion } from '../../../hosts/moddable/rtc-layout.js';
import type { RtcMemory } from '../../../hosts/moddable/platform.js';

function fakeRtc(bytes = new Uint8Array(4096)): RtcMemory & { bytes: Uint8Array } {
  return {
    bytes,
    byteLength: bytes.length,
    read(offset, into) { if (offset + into.length > bytes.length) throw new RangeError('past the end'); into.set(bytes.subarray(offset, offset + into.length)); },
    write(offset, b) { if (offset + b.length > bytes.length) throw new RangeError('past the end'); bytes.set(b, offset); },
  };
}

const buf = (n: number, fill: number) => new Uint8Array(n).fill(fill).buffer;
const HOST = 'broker.example';

/** One handshake as session_419.js runs it: getByHost, then saveSession (and deleteSessionID if refused). */
function handshake(cache: TlsSessionCache, serverResumes: boolean, newId: ArrayBuffer, newSecret: ArrayBuffer): boolean {
  const offered = cache.getByHost(HOST);
  if (offered && serverResumes) {
    cache.saveSession(HOST, offered.id, offered.secret);
    return true;
  }
  cache.saveSession(HOST, newId, newSecret);
  if (offered) cache.deleteSessionID(offered.id);
  return false;
}

describe('TlsSessionCache (Moddable "ssl/cache" over RTC memory)', () => {
  it('a session saved before deep sleep is offered after it, resumed, and keeps its first time', () => {
    const rtc = fakeRtc();
    let now = 5000;
    const wake = () => {
      const c = new TlsSessionCache(); // RAM is gone: a fresh object each wake
      c.configure({ rtc: rtcRegion(rtc, RtcLayout.tls), now: () => now, lifetimeS: 7200 });
      return c;
    };
    const first = wake();
    expect(handshake(first, true, buf(32, 1), buf(48, 2))).toBe(false);
    expect(first.last).toBe(TlsHandshake.Full);
    // Only the TLS range was written.
    expect(rtc.bytes.subarray(0, RtcLayout.tls.offset).every((b) => b === 0)).toBe(true);
    expect(rtc.bytes.subarray(RtcLayout.hints.offset).every((b) => b === 0)).toBe(true);
    now += 600;
    const second = wake();
    const offered = second.getByHost(HOST)!;
    expect(new Uint8Array(offered.id)).toEqual(new Uint8Array(32).fill(1));
    expect(new Uint8Array(offered.secret)).toEqual(new Uint8Array(48).fill(2));
    expect(second.getByHost('other.example')).toBeUndefined();
    expect(handshake(second, true, buf(32, 9), buf(48, 9))).toBe(true);
    expect(second.last).toBe(TlsHandshake.Resumed);
    // Resumed again and again: still counted from the first handshake, so it expires with the server's cache.
    now = 5000 + 7199;
    expect(wake().getByHost(HOST)).toBeDefined();
    now = 5000 + 7200;
    expect(wake().getByHost(HOST)).toBeUndefined();
  });

  it('a refused resumption keeps the new session (Moddable deletes the old id after saving the new one)', () => {
    const rtc = fakeRtc();
    const c = new TlsSessionCache();
    c.configure({ rtc: rtcRegion(rtc, RtcLayout.tls), now: () => 100 });
    handshake(c, true, buf(32, 1), buf(48, 1));
    expect(handshake(c, false, buf(32, 3), buf(48, 4))).toBe(false);
    expect(c.last).toBe(TlsHandshake.Full);
    const after = new TlsSessionCache();
    after.configure({ rtc: rtcRegion(rtc, RtcLayout.tls), now: () => 101 });
    expect(new Uint8Array(after.getByHost(HOST)!.id)).toEqual(new Uint8Array(32).fill(3));
  });

  it('forget() after a TLS error wipes the secret from RTC memory; corrupt bytes are never offered', () => {
    const rtc = fakeRtc();
    const c = new TlsSessionCache();
    c.configure({ rtc: rtcRegion(rtc, RtcLayout.tls), now: () => 100 });
    handshake(c, false, buf(32, 1), buf(48, 0x5a));
    const range = () => rtc.bytes.subarray(RtcLayout.tls.offset, RtcLayout.tls.offset + RtcLayout.tls.length);
    expect(range().includes(0x5a)).toBe(true);
    c.forget();
    expect(range().every((b) => b === 0)).toBe(true);
    expect(c.getByHost(HOST)).toBeUndefined();
    handshake(c, false, buf(32, 1), buf(48, 0x5a));
    rtc.bytes[RtcLayout.tls.offset + 70] ^= 1;
    const woke = new TlsSessionCache();
    woke.configure({ rtc: rtcRegion(rtc, RtcLayout.tls), now: () => 101 });
    expect(woke.getByHost(HOST)).toBeUndefined();
  });

  it('without a server name or an id nothing is kept; without RTC it is a RAM cache', () => {
    const c = new TlsSessionCache();
    c.configure({ now: () => 1 });
    c.saveSession(undefined, buf(32, 1), buf(48, 1));
    expect(c.getByHost(HOST)).toBeUndefined();
    c.saveSession(HOST, new ArrayBuffer(0), buf(48, 1));
    expect(c.getByHost(HOST)).toBeUndefined();
    c.saveSession(HOST, buf(16, 7), buf(48, 1));
    expect(new Uint8Array(c.getByHost(HOST)!.id)).toEqual(new Uint8Array(16).fill(7));
    expect(c.getByID(buf(16, 7))).toBeUndefined();
  });
});
