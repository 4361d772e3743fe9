import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { openTransport, parseBrokerUrl, type Transport, type TransportOptions } from '../../../hosts/node/transport.js';
import { freePort, startAedes, type AedesHandle } from '../../support/brokers.js';
import { makeTestPki, type TestPki } from '../../support/certs.js';

// MQTT 3.1.1 CONNECT, protocol level 4, clean session, keepalive 60, empty client id (14 B).
const CONNECT = Uint8Array.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00]);
// CONNACK, session present 0, return code 0 [MQTT-3.2.2].
const CONNACK = [0x20, 0x02, 0x00, 0x00];

interface Outcome {
  opened: boolean;
  data: number[];
  closed: Promise<Error | undefined>;
  closeCount: () => number;
  t: Transport;
  openedP: Promise<void>;
  gotBytes(n: number): Promise<number[]>;
}

function connect(url: string, opts: TransportOptions = {}, extra: { onDrain?: () => void } = {}): Outcome {
  let opened = false;
  const data: number[] = [];
  let closes = 0;
  let resolveClose!: (e: Error | undefined) => void;
  let resolveOpen!: () => void;
  const closed = new Promise<Error | undefined>((r) => { resolveClose = r; });
  const openedP = new Promise<void>((r) => { resolveOpen = r; });
  const waiters: Array<{ n: number; r: (d: number[]) => void }> = [];
  const t = openTransport(url, opts, {
    onOpen() { opened = true; resolveOpen(); },
    onData(chunk, _t, length = chunk.length) {
      data.push(...chunk.subarray(0, length));
      for (const w of waiters.splice(0)) {
        if (data.length >= w.n) w.r(data.slice(0, w.n)); else waiters.push(w);
      }
    },
    onClose(err) { closes++; resolveClose(err); },
    onDrain: extra.onDrain,
  });
  const out: Outcome = {
    get opened() { return opened; },
    data, closed, t, openedP,
    closeCount: () => closes,
    gotBytes(n) {
      if (data.length >= n) return Promise.resolve(data.slice(0, n));
      return new Promise((r) => waiters.push({ n, r }));
    },
  };
  return out;
}

async function mqttHandshake(url: string, opts: TransportOptions = {}): Promise<void> {
  const c = connect(url, opts);
  await c.openedP;
  expect(c.t.write(CONNECT)).toBe(true);
  expect(await c.gotBytes(4)).toEqual(CONNACK);
  c.t.close();
  expect(await c.closed).toBeUndefined();
  expect(c.closeCount()).toBe(1);
}

describe('parseBrokerUrl', () => {
  it('fills default ports and the /mqtt path for WebSocket', () => {
    expect(parseBrokerUrl('mqtt://example.com')).toEqual({ scheme: 'mqtt', host: 'example.com', port: 1883, path: '', secure: false, websocket: false });
    expect(parseBrokerUrl('mqtts://example.com')).toMatchObject({ port: 8883, secure: true, websocket: false });
    expect(parseBrokerUrl('ws://example.com')).toMatchObject({ port: 80, path: '/mqtt', websocket: true, secure: false });
    expect(parseBrokerUrl('wss://example.com/')).toMatchObject({ port: 443, path: '/mqtt', secure: true });
  });
  it('keeps explicit ports, paths, queries and IPv6 literals', () => {
    expect(parseBrokerUrl('mqtt://127.0.0.1:1999')).toMatchObject({ host: '127.0.0.1', port: 1999 });
    expect(parseBrokerUrl('ws://h:9001/custom/path?x=1')).toMatchObject({ port: 9001, path: '/custom/path?x=1' });
    expect(parseBrokerUrl('mqtt://[::1]:1884')).toMatchObject({ host: '::1', port: 1884 });
    expect(parseBrokerUrl('tcp://h')).toMatchObject({ scheme: 'mqtt', port: 1883 });
    expect(parseBrokerUrl('ssl://h')).toMatchObject({ scheme: 'mqtts', port: 8883 });
  });
  it('rejects unknown schemes and non-URLs with a message that says what to use', () => {
    expect(() => parseBrokerUrl('http://h')).toThrow(/use mqtt, mqtts, ws or wss/);
    expect(() => parseBrokerUrl('localhost:1883x')).toThrow();
    expect(() => parseBrokerUrl('not a url')).toThrow(/not a broker URL/);
  });
});

describe('openTransport over TCP and WebSocket (aedes)', () => {
  let aedes: AedesHandle;
  beforeAll(async () => { aedes = await startAedes({ ws: true }); });
  afterAll(async () => { await aedes?.close(); });

  it('mqtt:// carries CONNECT and CONNACK bytes', async () => {
    await mqttHandshake(aedes.url);
  });

  it('ws:// carries CONNECT and CONNACK bytes', async () => {
    await mqttHandshake(aedes.wsUrl!);
  });

  it('reports a refused connection through onClose with the error, never onOpen', async () => {
    const port = await freePort();
    const c = connect(`mqtt://127.0.0.1:${port}`);
    const err = await c.closed;
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(c.opened).toBe(false);
    expect(c.closeCount()).toBe(1);
    expect(c.t.write(CONNECT)).toBe(false);
  });

  it('calls onClose once after a local destroy and once when the broker closes', async () => {
    const c = connect(aedes.url);
    await c.openedP;
    c.t.destroy();
    expect(await c.closed).toBeUndefined();
    c.t.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(c.closeCount()).toBe(1);

    // A malformed first packet (PUBLISH before CONNECT): the broker hangs up.
    const d = connect(aedes.url);
    await d.openedP;
    d.t.write(Uint8Array.from([0x30, 0x03, 0x00, 0x01, 0x61]));
    await d.closed;
    expect(d.closeCount()).toBe(1);
  });
});

describe('WebSocket framing rules', () => {
  let wss: WebSocketServer;
  let port: number;
  const seen: Array<{ protocol: string; binary: boolean; bytes: number[] }> = [];
  beforeAll(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    port = (wss.address() as net.AddressInfo).port;
    wss.on('connection', (ws, req) => {
      ws.on('message', (data: Buffer, isBinary) => {
        seen.push({ protocol: ws.protocol, binary: isBinary, bytes: [...data] });
        if (req.url === '/text') ws.send('not mqtt');
        else ws.send(data, { binary: true });
      });
    });
  });
  afterAll(async () => { await new Promise((r) => wss.close(r)); });

  it('asks for subprotocol mqtt, sends binary frames and uses /mqtt by default', async () => {
    let path = '';
    wss.once('connection', (_ws, req) => { path = req.url ?? ''; });
    const c = connect(`ws://127.0.0.1:${port}`);
    await c.openedP;
    c.t.write(CONNECT);
    expect(await c.gotBytes(CONNECT.length)).toEqual([...CONNECT]);
    expect(path).toBe('/mqtt');
    expect(seen.at(-1)).toMatchObject({ protocol: 'mqtt', binary: true });
    c.t.close();
    expect(await c.closed).toBeUndefined();
  });

  it('closes with an error when the server sends a text frame [MQTT-6.0.0-1]', async () => {
    const c = connect(`ws://127.0.0.1:${port}/text`);
    await c.openedP;
    c.t.write(CONNECT);
    const err = await c.closed;
    expect(err?.message).toMatch(/text frame/);
  });
});

describe('TLS (mqtts:// and wss://) with a test PKI', () => {
  let pki: TestPki;
  let aedes: AedesHandle;
  let tlsServer: tls.Server;
  let mtlsServer: tls.Server;
  let httpsServer: https.Server;
  let tlsPort: number;
  let mtlsPort: number;
  let wssPort: number;
  const tlsSockets = new Set<net.Socket>();

  beforeAll(async () => {
    pki = makeTestPki();
    aedes = await startAedes();
    const track = (s: net.Socket) => { tlsSockets.add(s); s.once('close', () => tlsSockets.delete(s)); s.on('error', () => s.destroy()); };
    tlsServer = tls.createServer({ key: pki.serverKey, cert: pki.serverCert }, (s) => { track(s); aedes.broker.handle(s); });
    tlsServer.on('tlsClientError', () => { /* the refused handshakes of these tests */ });
    mtlsServer = tls.createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: true },
      (s) => { track(s); aedes.broker.handle(s); });
    mtlsServer.on('tlsClientError', () => {});
    httpsServer = https.createServer({ key: pki.serverKey, cert: pki.serverCert });
    const wss = new WebSocketServer({ server: httpsServer, path: '/mqtt' });
    wss.on('connection', (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      aedes.broker.handle(stream as unknown as net.Socket);
    });
    httpsServer.on('tlsClientError', () => {});
    const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as net.AddressInfo).port)));
    tlsPort = await listen(tlsServer);
    mtlsPort = await listen(mtlsServer);
    wssPort = await listen(httpsServer);
  });
  afterAll(async () => {
    for (const s of tlsSockets) s.destroy();
    httpsServer?.closeAllConnections();
    await Promise.all([tlsServer, mtlsServer, httpsServer].filter(Boolean).map((s) => new Promise((r) => s.close(r))));
    await aedes?.close();
    pki?.dispose();
  });

  it('connects when the right CA is given and the IP is in the certificate', async () => {
    await mqttHandshake(`mqtts://127.0.0.1:${tlsPort}`, { ca: pki.caCert });
  });

  it('checks the name: localhost via servername passes, a wrong servername is refused', async () => {
    await mqttHandshake(`mqtts://127.0.0.1:${tlsPort}`, { ca: pki.caCert, servername: 'localhost' });
    const c = connect(`mqtts://127.0.0.1:${tlsPort}`, { ca: pki.caCert, servername: 'broker.example' });
    const err = await c.closed;
    expect(c.opened).toBe(false);
    expect(err?.message).toMatch(/does not match certificate|altnames/i);
  });

  it('refuses a server signed by another CA, and by default (system store only)', async () => {
    for (const opts of [{ ca: pki.otherCaCert }, {}] as TransportOptions[]) {
      const c = connect(`mqtts://127.0.0.1:${tlsPort}`, opts);
      const err = await c.closed;
      expect(c.opened).toBe(false);
      expect(err?.message).toMatch(/certificate/i);
    }
  });

  it('connects with the wrong CA when verification is switched off (insecure or rejectUnauthorized false)', async () => {
    await mqttHandshake(`mqtts://127.0.0.1:${tlsPort}`, { ca: pki.otherCaCert, insecure: true });
    await mqttHandshake(`mqtts://127.0.0.1:${tlsPort}`, { ca: pki.otherCaCert, rejectUnauthorized: false });
  });

  it('presents a client certificate when the broker requires one', async () => {
    await mqttHandshake(`mqtts://127.0.0.1:${mtlsPort}`, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey });
    const c = connect(`mqtts://127.0.0.1:${mtlsPort}`, { ca: pki.caCert });
    // TLS 1.3: the client may see the handshake finish before the server rejects it.
    c.t.write(CONNECT);
    const err = await c.closed;
    expect(c.data).toEqual([]);
    // TLS 1.3 alert 116 "certificate required".
    expect(err?.message).toMatch(/certificate required/i);
  });

  it('wss:// verifies the same way', async () => {
    await mqttHandshake(`wss://127.0.0.1:${wssPort}`, { ca: pki.caCert });
    const c = connect(`wss://127.0.0.1:${wssPort}`, { ca: pki.otherCaCert });
    expect((await c.closed)?.message).toMatch(/certificate/i);
    expect(c.opened).toBe(false);
    await mqttHandshake(`wss://127.0.0.1:${wssPort}`, { ca: pki.otherCaCert, insecure: true });
  });

  it('gives up after connectTimeoutMs when the TLS handshake never answers', async () => {
    const silent = net.createServer(() => { /* accept and say nothing */ });
    const held = new Set<net.Socket>();
    silent.on('connection', (s) => held.add(s));
    const port = await new Promise<number>((r) => silent.listen(0, '127.0.0.1', () => r((silent.address() as net.AddressInfo).port)));
    try {
      const started = Date.now();
      const c = connect(`mqtts://127.0.0.1:${port}`, { ca: pki.caCert, connectTimeoutMs: 200 });
      const err = await c.closed;
      expect(err?.message).toMatch(/timed out/);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(c.opened).toBe(false);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe('back-pressure', () => {
  const chunk = new Uint8Array(64 * 1024).fill(0x55);
  const marker = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);

  async function fillThenDrain(url: string, paused: { resume(): void; received(): Buffer }): Promise<void> {
    let drained!: () => void;
    const drainedP = new Promise<void>((r) => { drained = r; });
    const c = connect(url, {}, { onDrain: () => drained() });
    await c.openedP;
    let sent = 0;
    let ok = true;
    // Loopback kernel buffers hold a few MiB; 256 MiB is a bound, not an expectation.
    while (ok && sent < 256 * 1024 * 1024) {
      ok = c.t.write(chunk);
      sent += chunk.length;
      if (ok && sent % (4 * 1024 * 1024) === 0) await new Promise((r) => setImmediate(r));
    }
    expect(ok).toBe(false);
    // The caller's view is only valid during write(): it must have been copied.
    const scratch = marker.slice();
    c.t.write(scratch);
    scratch.fill(0);
    sent += marker.length;
    paused.resume();
    await drainedP;
    const deadline = Date.now() + 5000;
    while (paused.received().length < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const got = paused.received();
    expect(got.length).toBe(sent);
    expect([...got.subarray(got.length - marker.length)]).toEqual([...marker]);
    c.t.destroy();
    await c.closed;
  }

  it('TCP: write returns false when the buffer is full and onDrain fires after the peer reads', async () => {
    const parts: Buffer[] = [];
    let peer: net.Socket | undefined;
    const server = net.createServer((s) => { peer = s; s.pause(); s.on('data', (d) => parts.push(d)); });
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
    try {
      await fillThenDrain(`mqtt://127.0.0.1:${port}`, { resume: () => peer!.resume(), received: () => Buffer.concat(parts) });
    } finally {
      peer?.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('WebSocket: the same through ws frames', async () => {
    const parts: Buffer[] = [];
    let raw: net.Socket | undefined;
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1 << 20 });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws, req) => {
      raw = req.socket;
      raw.pause();
      ws.on('message', (d: Buffer) => parts.push(d));
    });
    const port = (wss.address() as net.AddressInfo).port;
    try {
      await fillThenDrain(`ws://127.0.0.1:${port}/mqtt`, { resume: () => raw!.resume(), received: () => Buffer.concat(parts) });
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});
