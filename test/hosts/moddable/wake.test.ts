// The wake helper and the client against the broker model: Wi-Fi that fails
// or is slow, the BSSID kept in RTC, DISCONNECT drained before the radio
// stops, the per-wake trace, and the flash the session store costs.
import { describe, expect, it } from 'vitest';
import { Client } from '../../../hosts/moddable/client.js';
import type { WakeTrace } from '../../../hosts/moddable/wake.js';
import { ModelWorld } from './model-world.js';
import { sensorWake } from './sensor-wake.js';

describe('Moddable wake helper', () => {
  it('one wake: Wi-Fi, TCP, CONNACK, ack in the trace; the reading at the broker; DISCONNECT drained before the radio stops', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    const t = sensorWake(world, 'r1', 1, accepted) as WakeTrace;
    expect(t.why).toBe('sleep-ready');
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1']);
    expect(t.wifiMs).toBe(300);
    expect(t.tcpMs).toBeGreaterThan(t.wifiMs);
    expect(t.connackMs).toBeGreaterThan(t.tcpMs);
    expect(t.lastAckMs).toBeGreaterThanOrEqual(t.connackMs);
    expect(t.awakeMs).toBeGreaterThan(t.lastAckMs);
    expect(t.drained).toBe(true);
    // The broker saw DISCONNECT (a clean close), and Wi-Fi was stopped after it.
    expect(world.broker.stats.wills).toBe(0);
    expect(world.wifiLog.disconnects).toBe(1);
    expect(world.traces.at(-1)).toMatch(
      /^dormouse: sleep-ready; wifi 300, dns -, tcp \d+, tls -, connack \d+, last ack \d+, awake \d+ ms; 0 pending; DISCONNECT drained; flash \d+ B in \d+ NVS writes; sleeping 60000 ms \(good wake\)$/,
    );
  });

  it('the trace counts every NVS write the store makes, and the bytes the flash model counts', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    for (let n = 0; n < 30; n++) {
      const before = { bytes: world.nvs.bytes, writes: world.nvs.sets + world.nvs.deletes };
      const t = sensorWake(world, `r${n}`, 1, accepted) as WakeTrace;
      expect(t.flashWrites).toBe(world.nvs.sets + world.nvs.deletes - before.writes);
      expect(t.flashBytes).toBe(world.nvs.bytes - before.bytes);
    }
    expect(world.delivered.map((d) => d.payload)).toEqual(accepted);
  });

  it('keeps the BSSID and channel in RTC and passes them to the next join; a hint that never joins is forgotten', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    const first = sensorWake(world, 'r1', 1, accepted) as WakeTrace;
    const second = sensorWake(world, 'r2', 1, accepted) as WakeTrace;
    expect(world.wifiLog.joins).toEqual([{ bssid: undefined }, { bssid: '24:0a:c4:12:34:56', channel: 6 }]);
    expect(first.bssidHint).toBe(false);
    expect(second.bssidHint).toBe(true);
    expect(second.wifiMs).toBe(120);
    // Wi-Fi goes: the hinted join gets half the Wi-Fi time, then a full join the rest; neither comes up.
    world.wifi.joinMs = Infinity;
    world.wifi.hintedJoinMs = Infinity;
    const failed = sensorWake(world, 'r3', 1, accepted, { wifiTimeoutMs: 2000 }) as WakeTrace;
    expect(failed.why).toBe('wifi');
    expect(failed.bssidFellBack).toBe(true);
    sensorWake(world, 'r4', 1, accepted, { wifiTimeoutMs: 2000 });
    expect(world.wifiLog.joins.map((j) => j.bssid)).toEqual([undefined, '24:0a:c4:12:34:56', '24:0a:c4:12:34:56', undefined, undefined]);
  });

  it('Wi-Fi that never comes up: sleeps at the Wi-Fi timeout with the reading kept, and delivers it once Wi-Fi is back', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    world.wifi.joinMs = Infinity;
    world.wifi.hintedJoinMs = Infinity;
    const t = sensorWake(world, 'r1', 1, accepted, { wifiTimeoutMs: 3000 }) as WakeTrace;
    expect(t.why).toBe('wifi');
    expect(t.awakeMs).toBe(3000);
    expect(t.wifiMs).toBe(-1);
    world.wifi.joinMs = 2500; // slow, but inside the window
    const t2 = sensorWake(world, 'r2', 1, accepted) as WakeTrace;
    expect(t2.why).toBe('sleep-ready');
    expect(world.delivered.map((d) => d.payload)).toEqual(['r1', 'r2']);
  });

  it('a broker that does not answer: sleeps when the window ends, the readings go with the next wake that reaches it', () => {
    const world = new ModelWorld();
    const accepted: string[] = [];
    world.brokerUp = false;
    const t = sensorWake(world, 'r1', 1, accepted, { windowMs: 4000 }) as WakeTrace;
    expect(t.why).toBe('window');
    expect(t.awakeMs).toBeLessThanOrEqual(4000 + 10);
    expect(t.connackMs).toBe(-1);
    sensorWake(world, 'r2', 1, accepted, { windowMs: 4000 });
    world.brokerUp = true;
    sensorWake(world, 'r3', 1, accepted);
    expect(world.delivered.map((d) => d.payload).sort()).toEqual(['r1', 'r2', 'r3']);
  });
});

describe('Moddable Client, Moddable mqtt idiom', () => {
  it('onReady, subscribe, onMessage(topic, ArrayBuffer), publish(topic, string), close', () => {
    const world = new ModelWorld();
    const got: string[] = [];
    const c = new Client({ host: 'broker.local', id: 'c1', timeout: 60_000 }, world.platform);
    let ready = 0;
    c.onReady = function () {
      ready++;
      this.subscribe('echo/#');
      this.publish('echo/a', 'hello', { quality: 1 });
    };
    c.onMessage = (topic, body) => got.push(`${topic} ${new TextDecoder().decode(body)}`);
    world.run(1000);
    expect(ready).toBe(1);
    expect(got).toEqual(['echo/a hello']);
    c.close();
    world.run(100);
    expect(world.broker.stats.wills).toBe(0);
  });

  for (const qos of [1, 2] as const) {
    it(`largeMessages "pieces": a 20 KB QoS ${qos} message through a 512-byte receive buffer arrives in order, acknowledged after the last piece`, () => {
      const world = new ModelWorld();
      const image = new Uint8Array(20_000).map((_, i) => (i * 7 + 3) & 0xff);
      const c = new Client({ host: 'broker.local', id: 'fw1', receiveBuffer: 512, largeMessages: 'pieces' }, world.platform);
      const pieces: Array<{ offset: number; total: number; bytes: Uint8Array }> = [];
      const whole: string[] = [];
      c.onReady = function () {
        this.subscribe('fw/#', { qos });
      };
      c.onMessage = (topic) => whole.push(topic);
      c.onMessagePiece = (topic, body, offset, total) => {
        expect(topic).toBe('fw/img');
        pieces.push({ offset, total, bytes: new Uint8Array(body) });
      };
      world.run(500);
      world.broker.publish('fw/img', image, qos);
      world.broker.publish('fw/small', new Uint8Array([1, 2, 3]), qos);
      world.run(2000);
      // Pieces are what each socket read brought: the transport reads at most 1,024 bytes at a time.
      expect(pieces.length).toBeGreaterThanOrEqual(20);
      let at = 0;
      for (const p of pieces) {
        expect([p.offset, p.total]).toEqual([at, image.length]);
        expect(p.bytes.length).toBeLessThanOrEqual(1024);
        at += p.bytes.length;
      }
      const joined = new Uint8Array(at);
      for (const p of pieces) joined.set(p.bytes, p.offset);
      expect(joined).toEqual(image);
      expect(whole).toEqual(['fw/small']);
      // Both acknowledged: nothing left in flight at the broker.
      expect(world.broker.sessions.get('fw1')?.inflight ?? -1).toBe(0);
      c.close();
    });
  }

  it('largeMessages "refuse" (the default): MQTT 5 CONNECT asks for no packet larger than the receive buffer', () => {
    const world = new ModelWorld();
    const c = new Client({ host: 'broker.local', id: 'fw2', receiveBuffer: 512 }, world.platform);
    const got: string[] = [];
    c.onReady = function () {
      this.subscribe('fw/#', { qos: 1 });
    };
    c.onMessage = (topic) => got.push(topic);
    world.run(500);
    world.broker.publish('fw/img', new Uint8Array(2000), 1);
    world.broker.publish('fw/small', new Uint8Array(10), 1);
    world.run(1000);
    // The broker model keeps to the client's Maximum Packet Size (MQTT-3.1.2-25): the large one is not sent.
    expect(got).toEqual(['fw/small']);
    c.close();
  });

  it('a refused publish is never silent: it throws, and the outbox keeps what it had', () => {
    const world = new ModelWorld();
    const c = new Client({ host: '127.0.0.1', id: 'c2', start: false, capacities: { outbox: 2 } }, world.platform);
    c.publish('t', 'a', { qos: 1 });
    c.publish('t', 'b', { qos: 1 });
    expect(() => c.publish('t', 'c', { qos: 1 })).toThrow(/outbox is full/);
    expect(() => c.publish('t/#', 'd', { qos: 1 })).toThrow(/invalid publish/);
    c.start();
    world.run(1000);
    expect(world.delivered.map((d) => d.payload)).toEqual(['a', 'b']);
  });

  it('a message that expires in the outbox is reported to onDrop', () => {
    const world = new ModelWorld();
    const drops: string[] = [];
    const c = new Client({ host: '127.0.0.1', id: 'c3', start: false }, world.platform);
    c.onDrop = (token, reason) => drops.push(`${token} ${reason}`);
    const token = c.publish('t', 'stale', { qos: 1, expiry: 1 });
    world.run(2500);
    c.start();
    world.run(1000);
    expect(drops).toEqual([`${token} expired before it was sent`]);
    expect(world.delivered).toEqual([]);
  });

  it('tls: the socket is Moddable TLS over TCP, the server name checked is the host (or the one given), the CA passed', () => {
    const world = new ModelWorld();
    const ca = new Uint8Array([0x30, 0x82]).buffer;
    const c = new Client({ host: '127.0.0.1', id: 'c4', tls: { serverName: 'broker.example', ca } }, world.platform);
    world.run(500);
    expect(c.connected).toBe(true);
    expect(world.tlsOptions).toHaveLength(1);
    const o = world.tlsOptions[0]!;
    expect(o.host).toBe('broker.example');
    expect(o.secure.serverName).toBe('broker.example');
    expect(o.secure.certificate).toBe(ca);
    expect(o.port).toBe(8883);
    // Under TLS the platform's TCP socket (wrapped to time its connect): the one socket made is world.TCP's.
    expect(world.sockets).toHaveLength(1);
    expect(world.sockets[0]).toBeInstanceOf(world.TCP);
    expect(c.timings.tcpAt).toBeGreaterThan(0);
    expect(c.timings.tlsAt).toBeGreaterThanOrEqual(c.timings.tcpAt);
  });

  it('without an id (as mqtt allows) the session is clean and costs no flash', () => {
    const world = new ModelWorld();
    const c = new Client({ host: '127.0.0.1' }, world.platform);
    world.run(500);
    expect(c.connected).toBe(true);
    c.publish('t', 'x', { qos: 1 });
    world.run(500);
    expect(world.delivered.map((d) => d.payload)).toEqual(['x']);
    expect(world.nvs.sets).toBe(0);
  });
});
