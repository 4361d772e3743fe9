// TLS resumption across a simulated deep sleep: the session goes into a
// fixed record in a byte region (RTC memory on a device), everything else is
// dropped, and the next wake offers it from those bytes alone. Against
// mosquitto's TLS listener (OpenSSL, session-id resumption), through the Node host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type ConnectOptions, type NodeClient } from '../../../hosts/node/client.js';
import { fromNodeSession, toNodeSession } from '../../../hosts/node/tls-session.js';
import { TlsSessionRecord, TlsSessionStatus, TLS_SESSION_RECORD_BYTES } from '../../../modules/wake/tls-session-record.js';
import { describeMosquitto, freePort, startMosquitto, type MosquittoHandle } from '../../support/brokers.js';
import { makeTestPki, type TestPki } from '../../support/certs.js';

const SERVER = 'localhost';
const RTC_TLS_OFFSET = 3072; // hosts/moddable/rtc-layout.ts: the TLS record's range
const RTC_TLS_LENGTH = 512;

interface Wake {
  client: NodeClient;
  resumed: boolean;
  session: Uint8Array | null;
  error?: Error;
}

/** One wake: connect, publish a reading at QoS 1, wait for its PUBACK, disconnect. */
async function wake(url: string, opts: ConnectOptions): Promise<Wake> {
  const client = connect(url, { clientId: 'tls-sleeper', wantTlsSession: true, reconnect: { baseMs: 50, capMs: 100 }, ...opts });
  let session: Uint8Array | null = null;
  let error: Error | undefined;
  client.on('tlsSession', (s: Uint8Array | null) => { session = s; });
  client.on('error', (e: Error) => { error ??= e; });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no connect: ${error?.message}`)), 8000);
    client.once('connect', () => { clearTimeout(t); resolve(); });
  });
  const resumed = client.tlsResumed;
  await client.publishAsync('sensors/t1', '21.5', { qos: 1 });
  await client.end();
  return { client, resumed, session, error };
}

describe('TlsSessionRecord', () => {
  const id = new Uint8Array(32).fill(7);
  const secret = new Uint8Array(48).fill(9);

  it('is 108 bytes, fits the RTC range, and reads back what was saved', () => {
    expect(TLS_SESSION_RECORD_BYTES).toBeLessThanOrEqual(RTC_TLS_LENGTH);
    const rtc = new Uint8Array(4096);
    const r = new TlsSessionRecord(rtc.subarray(RTC_TLS_OFFSET, RTC_TLS_OFFSET + RTC_TLS_LENGTH));
    r.save('Broker.example', { sessionId: id, masterSecret: secret, cipherSuite: 0xc02c, flags: 1 }, 1000, 300);
    // Deep sleep: only the bytes remain.
    const after = new TlsSessionRecord(rtc.slice().subarray(RTC_TLS_OFFSET, RTC_TLS_OFFSET + RTC_TLS_LENGTH));
    expect(after.check('broker.example', 1299)).toBe(TlsSessionStatus.Usable);
    expect([after.cipherSuite, after.protocolVersion, after.flags]).toEqual([0xc02c, 0x0303, 1]);
    expect(after.sessionId).toEqual(id);
    expect(after.masterSecret).toEqual(secret);
    expect(rtc.subarray(0, RTC_TLS_OFFSET).every((b) => b === 0)).toBe(true); // nothing outside its range
  });

  it('is not offered when expired, to another server, after the clock ran back, corrupt, or never written', () => {
    const region = new Uint8Array(TLS_SESSION_RECORD_BYTES);
    const r = new TlsSessionRecord(region);
    expect(r.check(SERVER, 0)).toBe(TlsSessionStatus.Empty);
    r.save(SERVER, { sessionId: id, masterSecret: secret }, 1000, 300);
    expect(r.check(SERVER, 1300)).toBe(TlsSessionStatus.Expired);
    expect(r.check(SERVER, 999)).toBe(TlsSessionStatus.Expired);
    expect(r.check('other.example', 1001)).toBe(TlsSessionStatus.OtherServer);
    for (const at of [4, 30, 60, 104]) {
      const copy = region.slice();
      copy[at] ^= 0x10;
      expect(new TlsSessionRecord(copy).check(SERVER, 1001)).toBe(at === 4 ? TlsSessionStatus.Corrupt : TlsSessionStatus.Corrupt);
    }
    // Power-on noise is not a session.
    const noise = Uint8Array.from({ length: TLS_SESSION_RECORD_BYTES }, (_, k) => (k * 151 + 7) & 0xff);
    expect(new TlsSessionRecord(noise).check(SERVER, 1001)).not.toBe(TlsSessionStatus.Usable);
    r.forget();
    expect(region.every((b) => b === 0)).toBe(true);
  });

  it('refuses a region too small and ids or secrets of the wrong size', () => {
    expect(() => new TlsSessionRecord(new Uint8Array(100))).toThrow(/at least 108 bytes/);
    const r = new TlsSessionRecord(new Uint8Array(TLS_SESSION_RECORD_BYTES));
    expect(() => r.save(SERVER, { sessionId: new Uint8Array(0), masterSecret: secret }, 0, 1)).toThrow(/1 to 32 bytes/);
    expect(() => r.save(SERVER, { sessionId: id, masterSecret: new Uint8Array(32) }, 0, 1)).toThrow(/48 bytes/);
  });
});

describeMosquitto('TLS resumption across a simulated deep sleep (mosquitto TLS listener, Node host)', () => {
  let broker: MosquittoHandle;
  let pki: TestPki;
  let url: string;
  beforeAll(async () => {
    pki = makeTestPki();
    const tlsPort = await freePort();
    broker = await startMosquitto({
      persistence: false,
      extraConfig: [`listener ${tlsPort} 127.0.0.1`, `cafile ${pki.files.caCert}`, `certfile ${pki.files.serverCert}`, `keyfile ${pki.files.serverKey}`],
    });
    url = `mqtts://127.0.0.1:${tlsPort}`;
  });
  afterAll(async () => {
    await broker?.dispose();
    pki?.dispose();
  });

  const base = (): ConnectOptions => ({ ca: pki.caCert, servername: SERVER, tlsSessionIdOnly: true });

  /** A first wake with a full handshake, its session saved into an RTC-like region. */
  async function firstWake(rtc: Uint8Array, nowS: number): Promise<TlsSessionRecord> {
    const w = await wake(url, base());
    expect(w.resumed).toBe(false);
    expect(w.session).not.toBeNull();
    const record = new TlsSessionRecord(rtc.subarray(RTC_TLS_OFFSET, RTC_TLS_OFFSET + RTC_TLS_LENGTH));
    const s = fromNodeSession(w.session!);
    record.save(SERVER, s, nowS, 3600);
    return record;
  }

  it('the first wake after a deep sleep resumes from the record bytes alone', async () => {
    const rtc = new Uint8Array(4096);
    await firstWake(rtc, 10_000);
    // Deep sleep: RAM is gone; RTC memory keeps its bytes.
    const kept = rtc.slice();
    const record = new TlsSessionRecord(kept.subarray(RTC_TLS_OFFSET, RTC_TLS_OFFSET + RTC_TLS_LENGTH));
    const offered = toNodeSession(record, SERVER, 10_060);
    expect(offered).not.toBeNull();
    const w = await wake(url, { ...base(), tlsSession: offered! });
    expect(w.resumed).toBe(true);
    expect(w.error).toBeUndefined();
  });

  it('a corrupt record is not offered: a full handshake, then a new session to keep', async () => {
    const rtc = new Uint8Array(4096);
    await firstWake(rtc, 10_000);
    rtc[RTC_TLS_OFFSET + 60] ^= 0xff; // a flipped bit in the master secret
    const record = new TlsSessionRecord(rtc.subarray(RTC_TLS_OFFSET, RTC_TLS_OFFSET + RTC_TLS_LENGTH));
    expect(record.check(SERVER, 10_060)).toBe(TlsSessionStatus.Corrupt);
    expect(toNodeSession(record, SERVER, 10_060)).toBeNull();
    const w = await wake(url, base());
    expect(w.resumed).toBe(false);
    expect(w.session).not.toBeNull();
  });

  it('a session the broker does not know is refused: it falls back to a full handshake and keeps the new session', async () => {
    const rtc = new Uint8Array(4096);
    const record = await firstWake(rtc, 10_000);
    // The broker restarted (its session cache is in RAM) while the device slept.
    await broker.restart();
    const w = await wake(url, { ...base(), tlsSession: toNodeSession(record, SERVER, 10_060)! });
    expect(w.resumed).toBe(false);
    expect(w.error).toBeUndefined();
    const fresh = fromNodeSession(w.session!);
    expect(record.holds(fresh.sessionId)).toBe(false);
  });

  it('a TLS error with a cached session (the secret does not match): the session is forgotten and the next attempt does a full handshake', async () => {
    const rtc = new Uint8Array(4096);
    const record = await firstWake(rtc, 10_000);
    const s = fromNodeSession(toNodeSession(record, SERVER, 10_060)!);
    const wrong = s.masterSecret.slice();
    wrong[0] ^= 1;
    record.save(SERVER, { ...s, masterSecret: wrong }, 10_000, 3600);
    const w = await wake(url, { ...base(), tlsSession: toNodeSession(record, SERVER, 10_060)!, reconnect: { baseMs: 20, capMs: 40 } });
    expect(w.error?.message).toMatch(/cipher operation failed|decrypt|bad record mac|alert/i);
    // The host dropped the offered session after the failed connect; the retry made a full handshake.
    expect(w.resumed).toBe(false);
    expect(w.session).not.toBeNull();
  });

  it('a full handshake is still verified with tlsSessionIdOnly: the wrong CA is refused', async () => {
    const c = connect(url, { clientId: 'tls-wrong-ca', ca: pki.otherCaCert, servername: SERVER, tlsSessionIdOnly: true, reconnectPeriod: 0 });
    const err = await new Promise<Error>((resolve) => c.once('error', resolve));
    expect(err.message).toMatch(/TLS: .*(ISSUER|SIGNATURE|CERT)/i);
    expect(c.connected).toBe(false);
    await c.end(true);
  });

  it('a full handshake is still verified with tlsSessionIdOnly: the wrong host name is refused', async () => {
    const c = connect(url, { clientId: 'tls-wrong-name', ca: pki.caCert, servername: 'broker.example', tlsSessionIdOnly: true, reconnectPeriod: 0 });
    const err = await new Promise<Error>((resolve) => c.once('error', resolve));
    expect(err.message).toMatch(/TLS: ERR_TLS_CERT_ALTNAME_INVALID/);
    await c.end(true);
  });
});
