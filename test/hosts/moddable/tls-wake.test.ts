// The TLS session cache wired into the Moddable client and wake helper: the
// wake helper reads the session from RTC memory (RtcLayout.tls) before the
// first TLS socket, a TLS error forgets it, and a session made in one wake is
// offered, and resumed, in the next one after a simulated deep sleep (RTC
// bytes kept; the cache object, client and sockets new).
//
// The TLS socket here makes the cache calls Moddable's session_419.js makes on
// the client side (getByHost before ClientHello; saveSession after Finished;
// deleteSessionID after a refused resumption) against a server that keeps the
// sessions it issued, then carries MQTT over the model world's TCP socket.
import { describe, expect, it } from 'vitest';
import { Client, type ClientPlatform, type TlsSocketOptions } from '../../../hosts/moddable/client.js';
import { Wake, type WakeTrace } from '../../../hosts/moddable/wake.js';
import { TlsSessionCache, TlsHandshake } from '../../../hosts/moddable/tls-session-cache.js';
import { RtcLayout } from '../../../hosts/moddable/rtc-layout.js';
import { ModelWorld, Slept } from './model-world.js';

const HOST = 'broker.example';
const hex = (b: ArrayBuffer): string => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

interface Handshake {
  offered: string | null;
  resumed: boolean;
  failed: boolean;
}

/** A TLS server's side of session resumption, and a socket that runs the client's cache calls. */
class TlsModel {
  readonly sessions = new Map<string, ArrayBuffer>(); // id (hex) -> master secret, on the server
  readonly handshakes: Handshake[] = [];
  /** The next handshake fails (a bad record, a reset): the socket reports onError instead of connecting. */
  failNext = false;
  /** The socket reports onError as it closes after DISCONNECT (Moddable's TLS socket does on the broker's close_notify). */
  errorOnClose = false;
  #n = 0;

  constructor(readonly world: ModelWorld) {}

  /** `embedded:io/socket/tcp/tls` over `cache` (the module `ssl/cache` of this boot). */
  socketClass(cache: () => TlsSessionCache): ClientPlatform['TLS'] {
    const model = this;
    return function ModelTls(options: TlsSocketOptions) {
      const c = cache();
      const offered = c.getByHost(options.secure.serverName); // before ClientHello
      const h: Handshake = { offered: offered ? hex(offered.id) : null, resumed: false, failed: false };
      model.handshakes.push(h);
      if (model.failNext) {
        model.failNext = false;
        h.failed = true;
        const socket = new options.TCP.io({ ...options, onWritable: undefined, onReadable: undefined });
        model.world.timers.set(() => options.onError?.(), 3);
        return socket;
      }
      // No server answers (the model world's SYN into the void): no handshake, nothing saved.
      if (!model.world.brokerUp) return new options.TCP.io(options);
      const known = offered ? model.sessions.get(h.offered!) : undefined;
      if (offered && known && hex(known) === hex(offered.secret)) {
        h.resumed = true;
        c.saveSession(options.secure.serverName, offered.id, offered.secret);
      } else {
        const id = new Uint8Array(32).fill(++model.#n);
        const secret = new Uint8Array(48).fill(0x80 + model.#n);
        model.sessions.set(hex(id.buffer), secret.buffer);
        c.saveSession(options.secure.serverName, id.buffer, secret.buffer);
        if (offered) c.deleteSessionID(offered.id);
      }
      const socket = new options.TCP.io(options);
      if (model.errorOnClose) {
        const close = socket.close.bind(socket);
        socket.close = () => (options.onError?.(), close());
      }
      return socket;
    } as unknown as ClientPlatform['TLS'];
  }
}

/** One boot: a new cache object (RAM is new), client and wake helper; run until it sleeps. */
function tlsWake(world: ModelWorld, tls: TlsModel, reading: string): { trace: WakeTrace; cache: TlsSessionCache } {
  const cache = new TlsSessionCache();
  const platform: ClientPlatform = { ...world.platform, TLS: tls.socketClass(() => cache), tlsCache: cache };
  let trace: WakeTrace | undefined;
  try {
    const client = new Client({ host: '127.0.0.1', id: 'dev-1', start: false, expiry: 3600, tls: { serverName: HOST } }, platform);
    client.publish('sensors/dev-1', reading, { qos: 1 });
    const wake = new Wake(client, { ssid: 'net', password: 'pw', windowMs: 5000, sleepMs: 60_000 }, world.wakePlatform);
    wake.onSleep = (t) => (trace = t);
    world.run(10_000);
    throw new Error('the wake did not sleep within 10 s');
  } catch (e) {
    if (!(e instanceof Slept)) throw e;
    world.sleepFor(e.ms); // RAM and sockets gone, RTC kept
    return { trace: trace!, cache };
  }
}

const tlsBytes = (world: ModelWorld): Uint8Array => world.rtc.bytes.slice(RtcLayout.tls.offset, RtcLayout.tls.offset + RtcLayout.tls.length);

describe('Moddable wake helper with the TLS session cache', () => {
  it('a session made in one wake is kept in the RTC range through deep sleep and resumed in the next wake', () => {
    const world = new ModelWorld();
    const tls = new TlsModel(world);
    const rtcBefore = tlsBytes(world);
    const first = tlsWake(world, tls, 'r1');
    expect(first.trace.why).toBe('sleep-ready');
    expect(first.cache.last).toBe(TlsHandshake.Full);
    // The record went into the TLS range of RTC memory (it held power-on noise before).
    expect(tlsBytes(world)).not.toEqual(rtcBefore);

    const second = tlsWake(world, tls, 'r2');
    const third = tlsWake(world, tls, 'r3');
    expect(tls.handshakes).toEqual([
      { offered: null, resumed: false, failed: false },
      { offered: '01'.repeat(32), resumed: true, failed: false },
      { offered: '01'.repeat(32), resumed: true, failed: false },
    ]);
    expect(second.cache.last).toBe(TlsHandshake.Resumed);
    expect(third.cache.last).toBe(TlsHandshake.Resumed);
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2', 'r3']);
    // The session snapshot beside it still resumes the MQTT session (no clean start, nothing lost).
    expect(third.trace.why).toBe('sleep-ready');
  });

  it('the server forgot the session: the next wake makes a full handshake and keeps the new session', () => {
    const world = new ModelWorld();
    const tls = new TlsModel(world);
    tlsWake(world, tls, 'r1');
    tls.sessions.clear(); // the broker restarted
    const second = tlsWake(world, tls, 'r2');
    expect(second.cache.last).toBe(TlsHandshake.Full);
    tlsWake(world, tls, 'r3');
    expect(tls.handshakes.map((h) => [h.offered?.slice(0, 2) ?? null, h.resumed])).toEqual([
      [null, false],
      ['01', false],
      ['02', true],
    ]);
  });

  it('a TLS error forgets the kept session: the next wake offers none and makes a full handshake', () => {
    const world = new ModelWorld();
    const tls = new TlsModel(world);
    tlsWake(world, tls, 'r1');
    tls.failNext = true;
    const second = tlsWake(world, tls, 'r2');
    // The handshake that offered the kept session failed; the client's reconnect in the same
    // wake offered nothing (the error wiped it) and made a full handshake, a new session (02).
    expect(tls.handshakes.slice(1, 3)).toEqual([
      { offered: '01'.repeat(32), resumed: false, failed: true },
      { offered: null, resumed: false, failed: false },
    ]);
    expect(second.cache.last).toBe(TlsHandshake.Full);
    tlsWake(world, tls, 'r3');
    // The session made after the error is the one kept through deep sleep, and resumed.
    expect(tls.handshakes.slice(3)).toEqual([{ offered: '02'.repeat(32), resumed: true, failed: false }]);
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2', 'r3']);
  });

  it('a TLS error in the last attempt of a wake leaves no session in RTC memory for the next', () => {
    const world = new ModelWorld();
    const tls = new TlsModel(world);
    tlsWake(world, tls, 'r1');
    tls.failNext = true;
    world.brokerUp = false; // after the failed handshake, no reconnect gets through in this wake
    const failed = tlsWake(world, tls, 'r2');
    expect(failed.trace.connackMs).toBe(-1);
    expect(tls.handshakes[1]).toEqual({ offered: '01'.repeat(32), resumed: false, failed: true });
    world.brokerUp = true;
    tlsWake(world, tls, 'r3');
    // Every reconnect in wake 2 after the error offered nothing; wake 3 offered nothing either.
    for (const h of tls.handshakes.slice(2)) expect(h.offered).toBeNull();
    const next = tls.handshakes.at(-1)!;
    expect(next).toEqual({ offered: null, resumed: false, failed: false });
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2', 'r3']);
  });

  it('an error after the handshake (the broker closing after DISCONNECT) keeps the session', () => {
    const world = new ModelWorld();
    const tls = new TlsModel(world);
    tls.errorOnClose = true;
    tlsWake(world, tls, 'r1');
    const second = tlsWake(world, tls, 'r2');
    expect(second.cache.last).toBe(TlsHandshake.Resumed);
    expect(tls.handshakes.map((h) => h.resumed)).toEqual([false, true]);
  });

  it('without a TLS cache in the platform, or without tls, nothing is configured', () => {
    const world = new ModelWorld();
    const cache = new TlsSessionCache();
    const plain = new Client({ host: '127.0.0.1', id: 'dev-1', start: false }, { ...world.platform, tlsCache: cache });
    expect(plain.tlsCache).toBeNull();
    const secure = new Client({ host: '127.0.0.1', id: 'dev-2', start: false, tls: true }, world.platform);
    expect(secure.tlsCache).toBeNull();
  });
});
