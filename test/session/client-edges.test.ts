// Scenario tests of the client core at the edges where brokers and
// applications meet (issue 12): subscription packets within the server's
// limits, one packet per list, error acks that do not stall the outbox, a
// broker without QoS 2, protocol version refusals and MQTT 5 enhanced
// authentication. Each asserts the exact bytes exchanged, as client.test.ts.
import { describe, expect, it } from 'vitest';
import { rig, refPublish, payload, ascii, hex } from './harness.js';
import { ClientEvent, DropReason } from '../../modules/session/ports.js';
import { ConnState, Metric } from '../../modules/session/client.js';
import { MemorySnapshotStore } from '../../sim/memory-store.js';
import { scramClient, scramServer } from '../support/scram.js';

const CONNACK = '20 02 00 00';
const CONNACK_SP = '20 02 01 00';
const CONNACK5 = '20 03 00 00 00';

function connected(options: Record<string, unknown> = {}, connack = CONNACK, store: MemorySnapshotStore | null = null) {
  const r = rig({ clean: true, ...options }, store);
  r.client.start(0);
  r.client.transportOpened(0);
  r.take();
  r.feed(connack);
  r.take();
  return r;
}
const connected5 = (options: Record<string, unknown> = {}, connack = CONNACK5) => connected({ protocolVersion: 5, ...options }, connack);

/** A two-byte big-endian length then the string, as hex. */
const str = (s: string) => `${hex(new Uint8Array([s.length >> 8, s.length & 0xff]))} ${ascii(s)}`;
const len = (n: number) => n.toString(16).padStart(2, '0');

describe('SUBSCRIBE and UNSUBSCRIBE within the server Maximum Packet Size [MQTT-3.1.2-24]', () => {
  // CONNACK: maximum packet size 30
  const MAX30 = '20 08 00 00 05 27 00 00 00 1e';

  it('a 31-character filter (a 39-byte SUBSCRIBE) is refused with a clear error, and nothing is sent or kept', () => {
    const r = connected5({}, MAX30);
    const filter = 'a'.repeat(31);
    expect(() => r.client.subscribe(filter, 1, 0)).toThrow(/SUBSCRIBE would be 39 bytes and the server accepts at most 30 \(Maximum Packet Size/);
    expect(r.take()).toEqual([]);
    expect(r.client.session.subCount).toBe(0);
    expect(r.client.isSleepReady()).toBe(true);
    // 22 characters make exactly 30 bytes: sent.
    const ok = 'b'.repeat(22);
    expect(r.client.subscribe(ok, 1, 0)).toBe(1);
    expect(r.take()).toEqual([`82 1c 00 01 00 ${str(ok)} 01`]);
  });

  it('UNSUBSCRIBE too: a 24-character filter (31 bytes) is refused, 23 (30 bytes) goes', () => {
    const r = connected5({}, MAX30);
    expect(() => r.client.unsubscribe('u'.repeat(24), 0)).toThrow(/UNSUBSCRIBE would be 31 bytes and the server accepts at most 30/);
    expect(r.take()).toEqual([]);
    expect(r.client.session.subCount).toBe(0);
    const ok = 'u'.repeat(23);
    expect(r.client.unsubscribe(ok, 0)).toBe(1);
    expect(r.take()).toEqual([`a2 1c 00 01 00 ${str(ok)}`]);
  });

  it('a list whose one packet would be too large is refused whole: nothing sent, nothing kept', () => {
    const r = connected5({ capacities: { subscriptions: 16 } }, MAX30);
    // 4 filters of 3 bytes: 2 + 1 + 4 × 6 = 27 bytes of body, 29 in all: fits.
    r.client.subscribeMany([1, 2, 3, 4].map((k) => ({ topic: `a/${k}`, qos: 0 as const })), 0);
    expect(r.take()).toEqual([`82 1b 00 01 00 ${str('a/1')} 00 ${str('a/2')} 00 ${str('a/3')} 00 ${str('a/4')} 00`]);
    // 5 do not.
    const five = [1, 2, 3, 4, 5].map((k) => ({ topic: `b/${k}`, qos: 0 as const }));
    expect(() => r.client.subscribeMany(five, 0)).toThrow(/SUBSCRIBE would be 35 bytes and the server accepts at most 30/);
    expect(r.take()).toEqual([]);
    expect(r.client.session.subCount).toBe(4);
  });

  it('the send buffer bounds it too (3.1.1, no server limit)', () => {
    const r = connected({ sendBufferSize: 40 });
    expect(() => r.client.subscribe('x'.repeat(40), 0, 0)).toThrow(/more than sendBufferSize \(40\)/);
    expect(r.take()).toEqual([]);
  });

  it('a subscription kept offline that the server now finds too large is not sent: reported with 0x95', () => {
    const r = rig({ clean: true, protocolVersion: 5 });
    r.client.subscribeMany([{ topic: 'c'.repeat(31), qos: 1 }, { topic: 'ok', qos: 1 }], 0);
    r.client.start(0);
    r.client.transportOpened(0);
    r.take();
    r.feed(MAX30);
    expect(r.take()).toEqual([`82 08 00 01 00 ${str('ok')} 01`]);
    expect(r.kinds(ClientEvent.SubscriptionDowngraded).map((e) => [e.a, e.b, e.detail])).toEqual([[1, 0x95, 'c'.repeat(31)]]);
    expect(r.kinds(ClientEvent.Subscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[0, 0x95, 'c'.repeat(31)]]);
    expect(r.client.session.subCount).toBe(1);
  });

  it('restored subscriptions that do not fit one packet go in as few as fit', () => {
    const r = rig({ clean: true, protocolVersion: 5 });
    const five = [1, 2, 3, 4, 5].map((k) => ({ topic: `b/${k}`, qos: 0 as const }));
    r.client.subscribeMany(five, 0);
    r.client.start(0);
    r.client.transportOpened(0);
    r.take();
    r.feed(MAX30);
    expect(r.take()).toEqual([
      `82 1b 00 01 00 ${str('b/1')} 00 ${str('b/2')} 00 ${str('b/3')} 00 ${str('b/4')} 00 82 09 00 02 00 ${str('b/5')} 00`,
    ]);
    r.feed('90 07 00 01 00 00 00 00 00 90 04 00 02 00 00');
    expect(r.kinds(ClientEvent.Subscribed).map((e) => [e.a, e.detail])).toEqual([[1, 'b/1'], [1, 'b/2'], [1, 'b/3'], [1, 'b/4'], [2, 'b/5']]);
    expect(r.client.isSleepReady()).toBe(true);
  });
});

describe('an error ack does not stall the outbox', () => {
  // receive maximum 1: one message in flight at a time
  const WINDOW1 = '20 06 00 00 03 21 00 01';

  it('PUBACK 0x87: the next queued message goes out at once; the application learns which and why', () => {
    const r = connected5({}, WINDOW1);
    const t1 = r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    const t2 = r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    const t3 = r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    expect(r.take()).toEqual([refPublish(1, 1, false, true)]);
    r.feed('40 03 00 01 87'); // not authorized
    expect(r.take()).toEqual([refPublish(1, 2, false, true)]);
    expect(r.kinds(ClientEvent.Dropped).map((e) => [e.a, e.b, e.detail])).toEqual([[t1, DropReason.RefusedByServer, 0x87]]);
    r.feed('40 02 00 02');
    expect(r.take()).toEqual([refPublish(1, 3, false, true)]);
    r.feed('40 02 00 03');
    expect(r.kinds(ClientEvent.Acked).map((e) => e.a)).toEqual([t2, t3]);
    expect(r.client.metrics[Metric.DroppedRefused]).toBe(1);
    expect(r.client.session.live).toBe(0);
  });

  it('PUBREC 0x80: the flow ends (no PUBREL) and the next queued message goes out at once', () => {
    const r = connected5({}, WINDOW1);
    const t1 = r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    expect(r.take()).toEqual([refPublish(2, 1, false, true)]);
    r.feed('50 03 00 01 80');
    expect(r.take()).toEqual([refPublish(2, 2, false, true)]);
    expect(r.kinds(ClientEvent.Dropped).map((e) => [e.a, e.b, e.detail])).toEqual([[t1, DropReason.RefusedByServer, 0x80]]);
  });
});

describe('unsubscribe always sends UNSUBSCRIBE; MQTT 5 reason codes are reported', () => {
  it('a filter this session never subscribed: UNSUBSCRIBE goes out, UNSUBACK 0x11 is reported', () => {
    const r = connected5();
    expect(r.client.unsubscribe('old/#', 0)).toBe(1);
    expect(r.take()).toEqual([`a2 0a 00 01 00 ${str('old/#')}`]);
    expect(r.client.isSleepReady()).toBe(false);
    r.feed('b0 04 00 01 00 11'); // no subscription existed
    expect(r.kinds(ClientEvent.Unsubscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[1, 0x11, 'old/#']]);
    expect(r.client.session.subCount).toBe(0);
    expect(r.client.isSleepReady()).toBe(true);
  });

  it('3.1.1: the same packet, and the UNSUBACK reports 0', () => {
    const r = connected();
    r.client.unsubscribe('old/#', 0);
    expect(r.take()).toEqual([`a2 09 00 01 ${str('old/#')}`]);
    r.feed('b0 02 00 01');
    expect(r.kinds(ClientEvent.Unsubscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[1, 0, 'old/#']]);
  });

  it('accepted offline, it waits for CONNACK: sent if the broker kept the session, settled (0x11) if it has none', () => {
    const store = new MemorySnapshotStore();
    const r = rig({ protocolVersion: 5 }, store);
    r.client.unsubscribe('old/#', 0);
    r.client.start(0);
    r.client.transportOpened(0);
    r.take();
    r.feed('20 03 01 00 00'); // session present
    expect(r.take()).toEqual([`a2 0a 00 01 00 ${str('old/#')}`]);
    const fresh = rig({ protocolVersion: 5, clientId: 'dev2' }, new MemorySnapshotStore());
    fresh.client.unsubscribe('old/#', 0);
    fresh.client.start(0);
    fresh.client.transportOpened(0);
    fresh.take();
    fresh.feed(CONNACK5); // no session: it holds no subscription
    expect(fresh.take()).toEqual([]);
    expect(fresh.kinds(ClientEvent.Unsubscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[0, 0x11, 'old/#']]);
  });

  it('an UNSUBSCRIBE in flight goes again after a reconnect to the kept session', () => {
    const store = new MemorySnapshotStore();
    const r = connected({ clean: false, protocolVersion: 5 }, '20 03 01 00 00', store);
    r.client.unsubscribe('old/#', 0);
    r.take();
    r.client.transportClosed(1);
    r.client.tick(10_000);
    r.client.transportOpened(10_000);
    expect(r.takeAll()).toContain(`a2 0a 00 02 00 ${str('old/#')}`); // early, behind CONNECT
    r.feed('20 03 01 00 00 b0 04 00 02 00 00');
    expect(r.kinds(ClientEvent.Unsubscribed).map((e) => [e.a, e.b])).toEqual([[2, 0]]);
  });

  it('a full subscription table refuses it with a clear error, changing nothing', () => {
    const r = connected({ capacities: { subscriptions: 1 } });
    r.client.subscribe('a', 0, 0);
    r.take();
    expect(() => r.client.unsubscribe('b', 0)).toThrow(/no room to track this UNSUBSCRIBE/);
    expect(r.take()).toEqual([]);
    expect(r.client.session.subCount).toBe(1);
  });
});

describe('one SUBSCRIBE for a list, one UNSUBSCRIBE for a list', () => {
  it('3.1.1: three filters, one packet; the SUBACK codes go to their filters', () => {
    const r = connected();
    const id = r.client.subscribeMany([{ topic: 'a/+', qos: 1 }, { topic: 'b/#', qos: 2 }, { topic: 'secret', qos: 0 }], 0);
    expect(id).toBe(1);
    expect(r.take()).toEqual([`82 17 00 01 ${str('a/+')} 01 ${str('b/#')} 02 ${str('secret')} 00`]);
    r.feed('90 05 00 01 01 01 80');
    expect(r.kinds(ClientEvent.Subscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[1, 1, 'a/+'], [1, 1, 'b/#'], [1, 0x80, 'secret']]);
    expect(r.kinds(ClientEvent.SubscriptionDowngraded).map((e) => [e.a, e.b, e.detail])).toEqual([[2, 1, 'b/#'], [0, 0x80, 'secret']]);
    expect(r.client.session.subCount).toBe(2);
    expect(r.client.unsubscribeMany(['a/+', 'b/#', 'never'], 0)).toBe(2);
    expect(r.take()).toEqual([`a2 13 00 02 ${str('a/+')} ${str('b/#')} ${str('never')}`]);
    r.feed('b0 02 00 02');
    expect(r.kinds(ClientEvent.Unsubscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[2, 0, 'a/+'], [2, 0, 'b/#'], [2, 0, 'never']]);
    expect(r.client.session.subCount).toBe(0);
  });

  it('MQTT 5: subscription options per filter, reason codes per filter in UNSUBACK', () => {
    const r = connected5();
    r.client.subscribeMany([{ topic: 'a', qos: 1, noLocal: true }, { topic: 'b', qos: 0, retainAsPublished: true, retainHandling: 2 }], 0);
    expect(r.take()).toEqual([`82 0b 00 01 00 ${str('a')} 05 ${str('b')} 28`]);
    r.feed('90 05 00 01 00 01 00');
    r.client.unsubscribeMany(['b', 'a'], 0); // in the session's order
    expect(r.take()).toEqual([`a2 09 00 02 00 ${str('a')} ${str('b')}`]);
    r.feed('b0 05 00 02 00 00 87'); // a: success, b: not authorized
    expect(r.kinds(ClientEvent.Unsubscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[2, 0x00, 'a'], [2, 0x87, 'b']]);
    expect(r.client.session.subCount).toBe(0);
  });

  it('filters the session already holds cost no packet; the rest go in one', () => {
    const r = connected();
    r.client.subscribe('a', 1, 0);
    r.feed('90 03 00 01 01');
    r.take();
    expect(r.client.subscribeMany([{ topic: 'a', qos: 1 }, { topic: 'b', qos: 1 }], 0)).toBe(2);
    expect(r.take()).toEqual([`82 06 00 02 ${str('b')} 01`]);
    expect(r.kinds(ClientEvent.Subscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[1, 1, 'a'], [0, 1, 'a']]);
  });

  it('a filter subscribed again before its SUBACK: each answer goes to the right filter', () => {
    const r = connected();
    r.client.subscribeMany([{ topic: 'a', qos: 1 }, { topic: 'b', qos: 1 }], 0); // id 1
    r.client.subscribe('a', 2, 0); // id 2
    expect(r.take()).toEqual([`82 0a 00 01 ${str('a')} 01 ${str('b')} 01`, `82 06 00 02 ${str('a')} 02`]);
    r.feed('90 04 00 01 01 01'); // a's answer here is for the old request: not applied
    expect(r.kinds(ClientEvent.Subscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[1, 1, 'b']]);
    r.feed('90 03 00 02 02');
    expect(r.kinds(ClientEvent.Subscribed).map((e) => [e.a, e.b, e.detail])).toEqual([[1, 1, 'b'], [2, 2, 'a']]);
    expect(r.client.isSleepReady()).toBe(true);
  });

  it('refuses, changing and sending nothing: a bad filter, a filter twice, an empty list, a full table', () => {
    const r = connected({ capacities: { subscriptions: 2 } });
    expect(() => r.client.subscribeMany([{ topic: 'ok', qos: 0 }, { topic: 'a/#/b', qos: 0 }], 0)).toThrow(/"a\/#\/b" is not a topic filter/);
    expect(() => r.client.subscribeMany([{ topic: 'x', qos: 0 }, { topic: 'x', qos: 1 }], 0)).toThrow(/"x" appears twice/);
    expect(() => r.client.subscribeMany([], 0)).toThrow(/at least one topic filter/);
    expect(() => r.client.unsubscribeMany(['x', ''], 0)).toThrow(/"" is not a topic filter/);
    expect(() => r.client.subscribeMany([1, 2, 3].map((k) => ({ topic: `t${k}`, qos: 0 as const })), 0)).toThrow(/table is full/);
    expect(r.take()).toEqual([]);
    expect(r.client.session.subCount).toBe(0);
  });

  it('a session lost with several subscriptions restores them in one SUBSCRIBE', () => {
    const r = connected({}, CONNACK_SP, new MemorySnapshotStore());
    r.client.subscribeMany([{ topic: 'a', qos: 1 }, { topic: 'b', qos: 2 }], 0);
    r.feed('90 04 00 01 01 02');
    r.take();
    r.client.transportClosed(1);
    r.client.tick(10_000);
    r.client.transportOpened(10_000);
    r.take();
    r.feed(CONNACK);
    expect(r.take()).toEqual([`82 0a 00 02 ${str('a')} 01 ${str('b')} 02`]);
  });

  it('a list pending across deep sleep: the snapshot keeps it (format unchanged) and the woken client sends it in one packet', () => {
    const store = new MemorySnapshotStore();
    const r = rig({ protocolVersion: 5 }, store);
    r.client.subscribeMany([{ topic: 'a', qos: 1 }, { topic: 'b', qos: 2 }], 0);
    r.client.unsubscribe('old', 0);
    const image = store.slots[0] ?? store.slots[1];
    expect(new DataView(image!.buffer, image!.byteOffset).getUint32(0, true)).toBe(0x01534d44); // "DMS" + format 1
    const woke = rig({ protocolVersion: 5 }, store.clone());
    woke.client.restore(0);
    woke.client.start(0);
    woke.client.transportOpened(0);
    woke.take();
    woke.feed('20 03 01 00 00');
    expect(woke.take()).toEqual([`82 0b 00 01 00 ${str('a')} 01 ${str('b')} 02 a2 08 00 02 00 ${str('old')}`]);
  });
});

describe('a broker without QoS 2 answers PUBLISH QoS 2 with PUBACK (RabbitMQ 3.10)', () => {
  it('the message completes as delivered at QoS 1, the downgrade is reported, and the window keeps moving', () => {
    const r = connected({ capacities: { inflight: 1 } });
    const t1 = r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    const t2 = r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    expect(r.take()).toEqual([refPublish(2, 1)]);
    r.feed('40 02 00 01');
    expect(r.take()).toEqual([refPublish(2, 2)]); // no PUBREL: there is no QoS 2 flow to finish
    r.feed('40 02 00 02');
    expect(r.kinds(ClientEvent.PublishDowngraded).map((e) => [e.a, e.b])).toEqual([[t1, 1], [t2, 1]]);
    expect(r.kinds(ClientEvent.Acked).map((e) => e.a)).toEqual([t1, t2]);
    expect(r.client.metrics[Metric.PublishDowngraded]).toBe(2);
    expect(r.client.metrics[Metric.StrayAcks]).toBe(0);
    expect(r.client.session.live).toBe(0);
  });

  it('with a session store nothing is resent after a restart: each message reached the broker once', () => {
    const store = new MemorySnapshotStore();
    const r = connected({ clean: false }, CONNACK_SP, store);
    r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    r.take();
    r.feed('40 02 00 01');
    const woke = rig({}, store.clone());
    woke.client.restore(0);
    woke.client.start(0);
    woke.client.transportOpened(0);
    expect(woke.take()).toEqual(['10 10 00 04 4d 51 54 54 04 00 00 3c 00 04 64 65 76 31']);
    expect(woke.client.session.live).toBe(0);
  });
});

describe('protocol version refusals', () => {
  it('an MQTT 5 CONNECT answered with a 3.1.1 CONNACK 20 02 00 01 (aedes): unsupported protocol version, try 3.1.1', () => {
    const r = rig({ clean: true, protocolVersion: 5 });
    r.client.start(0);
    r.client.transportOpened(0);
    r.feed('20 02 00 01', 5);
    expect(r.kinds(ClientEvent.ProtocolError)).toEqual([]);
    const [refused] = r.kinds(ClientEvent.Refused);
    expect([refused.a, refused.b]).toEqual([0x84, 1]);
    expect(refused.detail).toMatch(/MQTT 3\.1\.1 CONNACK \(return code 1\): it does not support MQTT 5, try 3\.1\.1/);
    expect(r.closed).toBe(1);
    expect(r.client.lastReasonCode).toBe(0x84);
    expect(r.client.nextDeadline() - 5).toBeGreaterThanOrEqual(30_000); // retrying soon will not help
  });

  it('a 3.1.1 CONNACK with properties after it is still malformed for MQTT 5, and 0x01 with a property length is too', () => {
    const r = rig({ clean: true, protocolVersion: 5 });
    r.client.start(0);
    r.client.transportOpened(0);
    r.feed('20 03 00 01 00');
    expect(r.kinds(ClientEvent.ProtocolError).map((e) => e.a)).toEqual([0x82]);
  });

  it('a broker that closes right after an MQTT 5 CONNECT: reported once, not at every reconnect, and again after a success', () => {
    const r = rig({ clean: true, protocolVersion: 5 });
    r.client.start(0);
    let now = 0;
    const attempt = (close: boolean) => {
      now = Math.max(now, r.client.nextDeadline());
      r.client.tick(now);
      r.client.transportOpened(now);
      if (close) r.client.transportClosed(now + 1);
      else r.feed(CONNACK5, now + 1);
    };
    attempt(true);
    attempt(true);
    attempt(true);
    expect(r.kinds(ClientEvent.ClosedBeforeConnack).map((e) => e.a)).toEqual([5]);
    attempt(false);
    expect(r.client.state).toBe(ConnState.Connected);
    r.client.transportClosed(now + 2);
    attempt(true);
    expect(r.kinds(ClientEvent.ClosedBeforeConnack)).toHaveLength(2);
  });

  it('3.1.1, or a transport that never opened, is not reported so', () => {
    const r = rig({ clean: true });
    r.client.start(0);
    r.client.transportOpened(0);
    r.client.transportClosed(1);
    const v5 = rig({ clean: true, protocolVersion: 5 });
    v5.client.start(0);
    v5.client.transportClosed(1); // connection refused: Opening, no CONNECT sent
    expect([...r.kinds(ClientEvent.ClosedBeforeConnack), ...v5.kinds(ClientEvent.ClosedBeforeConnack)]).toEqual([]);
  });
});

// ---- MQTT 5 enhanced authentication: a SCRAM-SHA-256 exchange (test/support/scram.ts) ----

const METHOD = 'SCRAM-SHA-256';
/** AUTH (or the tail of a CONNACK/CONNECT's properties) built by hand, not by the codec under test. */
function authProps(data?: Uint8Array): string {
  const m = `15 ${str(METHOD)}`;
  return data ? `${m} 16 ${len(data.length >> 8)} ${len(data.length & 0xff)} ${hex(data)}` : m;
}
function propLen(data?: Uint8Array) {
  return 3 + METHOD.length + (data ? 3 + data.length : 0);
}
function authPacket(rc: number, data?: Uint8Array): string {
  const pl = propLen(data);
  return `f0 ${len(2 + pl)} ${len(rc)} ${len(pl)} ${authProps(data)}`;
}
function connackWithAuth(data: Uint8Array): string {
  const pl = propLen(data);
  return `20 ${len(3 + pl)} 00 00 ${len(pl)} ${authProps(data)}`;
}

describe('MQTT 5 enhanced authentication (4.12): a SCRAM-SHA-256 exchange through the application hook', () => {
  const salt = Buffer.from('dormouse-salt-16');
  const cnonce = 'rOprNGfwEbeRWgbNEkqO';
  const snonce = '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';

  function start(password = 'pencil', initialData?: () => Uint8Array) {
    const client = scramClient('user', password, cnonce);
    const server = scramServer('pencil', salt, 4096, snonce);
    const r = rig({ clean: true, protocolVersion: 5, authentication: { method: METHOD, initialData: initialData ?? (() => client.first) } });
    r.client.start(0);
    r.client.transportOpened(0);
    return { r, client, server };
  }

  it('CONNECT carries the method and client-first; a continue round (0x18) answered by the hook; CONNACK with the server signature', () => {
    const { r, client, server } = start();
    const first = client.first;
    // CONNECT: properties in identifier order: method, data, receive maximum 16, maximum packet size 2048.
    const pl = propLen(first) + 8;
    expect(r.take()).toEqual([
      `10 ${len(10 + 1 + pl + 6)} 00 04 ${ascii('MQTT')} 05 02 00 3c ${len(pl)} ${authProps(first)} 21 00 10 27 00 00 08 00 00 04 ${ascii('dev1')}`,
    ]);
    const serverFirst = server.first(first);
    r.feed(authPacket(0x18, serverFirst));
    const [challenge] = r.kinds(ClientEvent.Auth);
    expect([challenge.a, challenge.b]).toEqual([0x18, 0]);
    expect(hex(challenge.detail as Uint8Array)).toBe(hex(serverFirst));
    // The hook answers outside the core's call, as an async host would.
    const final = client.final(challenge.detail as Uint8Array);
    r.client.continueAuthentication(final, 1);
    expect(r.take()).toEqual([authPacket(0x18, final)]);
    const serverFinal = server.final(final);
    expect(serverFinal).not.toBeNull();
    r.feed(connackWithAuth(serverFinal!), 2);
    expect(r.client.state).toBe(ConnState.Connected);
    const done = r.kinds(ClientEvent.Auth)[1];
    expect([done.a, done.b]).toEqual([0, 0]);
    expect(client.verify(done.detail as Uint8Array)).toBe(true);
    expect(r.events.findIndex((e) => e.kind === ClientEvent.Auth && e.a === 0)).toBeLessThan(r.events.findIndex((e) => e.kind === ClientEvent.Connected));
  });

  it('each connection attempt asks for fresh initial data (a fresh nonce)', () => {
    let n = 0;
    const { r } = start('pencil', () => new TextEncoder().encode(`n,,n=user,r=nonce${++n}`));
    r.client.transportClosed(1);
    r.client.tick(r.client.nextDeadline());
    r.client.transportOpened(r.client.nextDeadline());
    const writes = r.take();
    expect(writes[0]).toContain(ascii('r=nonce1'));
    expect(writes[1]).toContain(ascii('r=nonce2'));
  });

  it('a wrong password: the broker refuses (CONNACK 0x87), retried only after a long wait', () => {
    const { r, client, server } = start('wrong');
    r.take();
    r.feed(authPacket(0x18, server.first(client.first)));
    const final = client.final(r.kinds(ClientEvent.Auth)[0].detail as Uint8Array);
    expect(server.final(final)).toBeNull();
    r.client.continueAuthentication(final, 1);
    r.feed('20 03 00 87 00', 2);
    expect(r.kinds(ClientEvent.Refused).map((e) => e.a)).toEqual([0x87]);
    expect(r.client.nextDeadline() - 2).toBeGreaterThanOrEqual(30_000);
  });

  it('the server signature does not check out: the application aborts, the connection closes with DISCONNECT 0x80', () => {
    const { r, client, server } = start();
    r.take();
    r.feed(authPacket(0x18, server.first(client.first)));
    r.client.continueAuthentication(client.final(r.kinds(ClientEvent.Auth)[0].detail as Uint8Array), 1);
    r.take();
    r.feed(connackWithAuth(new TextEncoder().encode('v=Zm9yZ2Vk')), 2);
    expect(client.verify(r.kinds(ClientEvent.Auth)[1].detail as Uint8Array)).toBe(false);
    r.client.abortAuthentication(3);
    expect(r.take()).toEqual(['e0 02 80 00']);
    expect(r.client.state).toBe(ConnState.Waiting);
    expect(r.client.nextDeadline() - 3).toBeGreaterThanOrEqual(30_000);
  });

  it('re-authentication started by the client: AUTH 0x19, a continue round, AUTH 0x00 from the server', () => {
    const { r, client, server } = start();
    r.take();
    r.feed(authPacket(0x18, server.first(client.first)));
    const f = client.final(r.kinds(ClientEvent.Auth)[0].detail as Uint8Array);
    r.client.continueAuthentication(f, 1);
    r.feed(connackWithAuth(server.final(f)!), 2);
    r.take();
    // Later, on the open connection (a token about to expire, say).
    const again = scramClient('user', 'pencil', 'second-nonce-0123');
    const server2 = scramServer('pencil', salt, 4096, 'srv2');
    r.client.reauthenticate(again.first, 100);
    expect(r.take()).toEqual([authPacket(0x19, again.first)]);
    expect(() => r.client.reauthenticate(again.first, 100)).toThrow(/already under way/);
    // Messages keep flowing during it.
    r.client.publish('sensors/t1', payload, { qos: 1 }, 101);
    expect(r.take()).toEqual([refPublish(1, 1, false, true)]);
    r.feed(authPacket(0x18, server2.first(again.first)), 102);
    const ch = r.kinds(ClientEvent.Auth).at(-1)!;
    expect([ch.a, ch.b]).toEqual([0x18, 1]);
    const f2 = again.final(ch.detail as Uint8Array);
    r.client.continueAuthentication(f2, 103);
    expect(r.take()).toEqual([authPacket(0x18, f2)]);
    r.feed(authPacket(0x00, server2.final(f2)!), 104);
    const ok = r.kinds(ClientEvent.Auth).at(-1)!;
    expect([ok.a, ok.b]).toEqual([0, 1]);
    expect(again.verify(ok.detail as Uint8Array)).toBe(true);
    expect(r.client.state).toBe(ConnState.Connected);
  });

  it('AUTH the client cannot accept is a protocol error: without a method in CONNECT, another method, 0x00 outside re-authentication', () => {
    const plain = connected5();
    plain.feed(authPacket(0x18, new Uint8Array([1])));
    expect(plain.take()).toEqual(['e0 02 82 00']);
    expect(plain.kinds(ClientEvent.ProtocolError)[0].detail).toMatch(/MQTT-4\.12\.0-6/);

    const { r } = start();
    r.take();
    r.feed(`f0 0b 18 09 15 00 06 ${ascii('OTHER!')}`);
    expect(r.kinds(ClientEvent.ProtocolError)[0].detail).toMatch(/MQTT-4\.12\.0-5/);

    const c = start().r;
    c.feed(connackWithAuth(new Uint8Array([0x76])));
    c.take();
    c.feed(authPacket(0x00));
    expect(c.take()).toEqual(['e0 02 82 00']);
    expect(() => c.client.continueAuthentication(undefined, 0)).toThrow(/no AUTH from the server is waiting/);
  });

  it('needs MQTT 5; properties.authenticationMethod (MQTT.js) works as well', () => {
    expect(() => rig({ authentication: { method: METHOD } })).toThrow(/needs MQTT 5/);
    const r = rig({ clean: true, protocolVersion: 5, properties: { authenticationMethod: METHOD, authenticationData: new Uint8Array([7]) } });
    r.client.start(0);
    r.client.transportOpened(0);
    expect(r.takeAll()).toContain(`${authProps(new Uint8Array([7]))}`);
  });
});
