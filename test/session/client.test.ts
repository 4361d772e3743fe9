// Scenario tests of the client core, each asserting the exact bytes exchanged.
// Spec rules are cited where a byte is the point.
import { describe, expect, it } from 'vitest';
import { rig, refPublish, payload, ascii } from './harness.js';
import { ClientEvent, DropReason, OutboxPolicy } from '../../modules/session/ports.js';
import { ConnState, Metric, PublishError, SessionLostPolicy } from '../../modules/session/client.js';
import { MemorySnapshotStore } from '../../sim/memory-store.js';

const CONNECT_CLEAN = '10 10 00 04 4d 51 54 54 04 02 00 3c 00 04 64 65 76 31';
const CONNECT_PERSISTENT = '10 10 00 04 4d 51 54 54 04 00 00 3c 00 04 64 65 76 31';
const CONNACK = '20 02 00 00';
const CONNACK_SP = '20 02 01 00';

function connected(options = {}, store: MemorySnapshotStore | null = null) {
  const r = rig(options, store);
  r.client.start(0);
  r.client.transportOpened(0);
  r.take();
  r.feed(CONNACK);
  r.take();
  return r;
}

describe('connect and publish (MQTT 3.1.1)', () => {
  it('sends a minimal CONNECT and reports the CONNACK [MQTT-3.1]', () => {
    const r = rig({ clean: true });
    r.client.start(0);
    expect(r.opened).toBe(1);
    r.client.transportOpened(1);
    expect(r.take()).toEqual([CONNECT_CLEAN]);
    r.feed(CONNACK);
    expect(r.client.state).toBe(ConnState.Connected);
    expect(r.kinds(ClientEvent.Connected)).toEqual([{ kind: ClientEvent.Connected, a: 0, b: 0, detail: undefined }]);
  });

  it('QoS 0 is 18 bytes and needs no record', () => {
    const r = connected({ clean: true });
    expect(r.client.publish('sensors/t1', payload, { qos: 0 }, 5)).toBe(0);
    expect(r.take()).toEqual([refPublish(0)]);
    expect(r.client.session.live).toBe(0);
  });

  it('QoS 1: 20-byte PUBLISH, PUBACK completes it and the device is sleep-ready', () => {
    const r = connected({ clean: true });
    const token = r.client.publish('sensors/t1', payload, { qos: 1 }, 5);
    expect(token).toBe(1);
    const [w] = r.take();
    expect(w).toBe('32 12 00 0a 73 65 6e 73 6f 72 73 2f 74 31 00 01 32 31 2e 35');
    expect(r.client.isSleepReady()).toBe(false);
    r.feed('40 02 00 01', 30);
    expect(r.kinds(ClientEvent.Acked)).toEqual([{ kind: ClientEvent.Acked, a: token, b: 0, detail: undefined }]);
    // Sleep-ready once after CONNACK (nothing held) and again once the ack came.
    expect(r.kinds(ClientEvent.SleepReady)).toHaveLength(2);
    expect(r.events.at(-1)?.kind).toBe(ClientEvent.SleepReady);
    expect(r.client.metrics[Metric.AckTimeTotalMs]).toBe(25);
  });

  it('QoS 2: PUBLISH, PUBREC → PUBREL, PUBCOMP completes [MQTT-4.3.3]', () => {
    const r = connected({ clean: true });
    const token = r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    expect(r.take()).toEqual([refPublish(2, 1)]);
    r.feed('50 02 00 01');
    expect(r.take()).toEqual(['62 02 00 01']);
    expect(r.kinds(ClientEvent.Acked)).toHaveLength(0);
    r.feed('70 02 00 01');
    expect(r.kinds(ClientEvent.Acked).map((e) => e.a)).toEqual([token]);
    expect(r.client.session.live).toBe(0);
  });

  it('a repeated PUBREC gets the PUBREL again; a stray PUBACK/PUBCOMP is ignored and counted', () => {
    const r = connected({ clean: true });
    r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    r.take();
    r.feed('50 02 00 01');
    r.feed('50 02 00 01');
    expect(r.take()).toEqual(['62 02 00 01', '62 02 00 01']);
    r.feed('40 02 00 09');
    r.feed('70 02 00 08');
    expect(r.client.metrics[Metric.StrayAcks]).toBe(2);
    expect(r.client.session.live).toBe(1);
  });

  it('packet ids are never reused while in flight and wrap from 65535 to 1', () => {
    const r = connected({ clean: true, capacities: { inflight: 4 } });
    r.client.session.nextPacketId = 65534;
    for (let k = 0; k < 3; k++) r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    expect(r.take()).toEqual([refPublish(1, 65534), refPublish(1, 65535), refPublish(1, 1)]);
    r.client.session.nextPacketId = 65534; // force a collision: 65534 and 65535 are still in flight
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    expect(r.take()).toEqual([refPublish(1, 2)]);
  });
});

describe('incoming messages', () => {
  it('QoS 1 is delivered and acknowledged', () => {
    const r = connected({ clean: true });
    r.feed(refPublish(1, 5));
    expect(r.messages).toEqual([{ topic: 'sensors/t1', payload: '21.5', qos: 1, dup: false, packetId: 5 }]);
    expect(r.take()).toEqual(['40 02 00 05']);
  });

  it('QoS 2 is delivered once: a resent PUBLISH before PUBREL is not delivered again [MQTT-4.3.3-9]', () => {
    const r = connected({ clean: true });
    r.feed(refPublish(2, 7));
    expect(r.take()).toEqual(['50 02 00 07']);
    r.feed(refPublish(2, 7, true));
    expect(r.take()).toEqual(['50 02 00 07']);
    expect(r.messages).toHaveLength(1);
    expect(r.client.metrics[Metric.DuplicatesSuppressed]).toBe(1);
    r.feed('62 02 00 07');
    expect(r.take()).toEqual(['70 02 00 07']);
    r.feed(refPublish(2, 7)); // the id is free again: a new message
    expect(r.messages).toHaveLength(2);
  });

  it('power lost after the QoS 2 id is stored and before delivery: at most once, never twice', () => {
    // The id is persisted before the application sees the message. If power
    // fails in between, the restored session holds the id, so the resent
    // PUBLISH is acknowledged but not delivered: the one window where a QoS 2
    // message can be missed, chosen over delivering it twice.
    const store = new MemorySnapshotStore();
    const r = connected({}, store);
    const realWrite = store.write.bind(store);
    store.write = (slot, image) => {
      realWrite(slot, image);
      throw new Error('power lost right after the write');
    };
    expect(() => r.feed(refPublish(2, 7))).toThrow(/power lost/);
    expect(r.messages).toHaveLength(0);
    store.write = realWrite;
    const woke = rig({}, store.clone());
    woke.client.restore(0);
    woke.client.start(0);
    woke.client.transportOpened(0);
    woke.feed(CONNACK_SP + ' ' + refPublish(2, 7, true));
    expect(woke.messages).toHaveLength(0);
    expect(woke.takeAll()).toContain('50 02 00 07');
  });

  describe('replay after PUBREL (mosquitto 2.0: bench/soak-mosquitto-pubrel.ts)', () => {
    // The broker sends PUBLISH 7, gets PUBREC, sends PUBREL 7 (we release the id
    // and answer PUBCOMP, which is lost); the connection dies right behind the
    // next CONNECT; on the connect after that the broker sends PUBLISH 7 again.
    function replay(options: Record<string, unknown>, store: MemorySnapshotStore | null = null, sleep = false) {
      let r = connected(options, store);
      r.feed(refPublish(2, 7));
      r.feed('62 02 00 07');
      expect(r.take()).toEqual(['50 02 00 07', '70 02 00 07']);
      expect(r.messages).toHaveLength(1);
      if (sleep && store) {
        const first = r.messages.length;
        r = rig(options, store.clone());
        r.client.restore(0);
        expect(first).toBe(1);
      } else {
        r.client.transportClosed(10);
      }
      r.client.start(100_000);
      r.client.tick(100_000);
      r.client.transportOpened(100_000);
      r.feed(CONNACK_SP + ' ' + refPublish(2, 7, true));
      return r;
    }

    it('is delivered twice without the guard: the spec says a receiver may release the id at PUBREL', () => {
      const r = replay({ clean: true });
      expect(r.messages).toHaveLength(2);
    });

    it('with guardReplayAfterPubrel it is acknowledged and not delivered again', () => {
      const r = replay({ clean: true, guardReplayAfterPubrel: true });
      expect(r.messages).toHaveLength(1);
      expect(r.takeAll()).toContain('50 02 00 07'); // PUBREC, so the broker finishes its side
      expect(r.client.metrics[Metric.BrokerReplays]).toBe(1);
      r.feed('62 02 00 07');
      expect(r.take()).toEqual(['70 02 00 07']);
    });

    it('the guard survives deep sleep: released ids are in the snapshot', () => {
      const store = new MemorySnapshotStore();
      const r = replay({ guardReplayAfterPubrel: true }, store, true);
      expect(r.messages).toHaveLength(0); // the woken device delivered nothing again
      expect(r.client.metrics[Metric.BrokerReplays]).toBe(1);
    });

    it('a new message under the released id is delivered: DUP clear, or other content', () => {
      const r = connected({ clean: true, guardReplayAfterPubrel: true });
      r.feed(refPublish(2, 7));
      r.feed('62 02 00 07');
      r.feed(refPublish(2, 7)); // DUP clear: a new message that reuses the id
      expect(r.messages).toHaveLength(2);
      r.feed('62 02 00 07');
      // DUP set but other content: not the released message.
      r.feed(`3c 12 00 0a ${ascii('sensors/t2')} 00 07 ${ascii('21.5')}`);
      expect(r.messages).toHaveLength(3);
    });
  });

  it('a stray PUBREL is answered with PUBCOMP', () => {
    const r = connected({ clean: true });
    r.feed('62 02 00 09');
    expect(r.take()).toEqual(['70 02 00 09']);
  });

  it('a QoS 2 id survives deep sleep: the resent PUBLISH after a restore is not delivered twice', () => {
    const store = new MemorySnapshotStore();
    const r = connected({}, store);
    r.feed(refPublish(2, 7));
    expect(r.messages).toHaveLength(1);
    // Deep sleep: every object is gone; only the store remains.
    const woke = rig({}, store.clone());
    woke.client.restore(1000);
    woke.client.start(1000);
    woke.client.transportOpened(1000);
    woke.feed(CONNACK_SP + ' ' + refPublish(2, 7, true));
    expect(woke.messages).toHaveLength(0);
    expect(woke.takeAll()).toContain('50 02 00 07');
  });
});

describe('resend and resume', () => {
  function withWork(options = {}) {
    const store = new MemorySnapshotStore();
    const r = connected(options, store);
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0); // id 1
    r.client.publish('sensors/t1', payload, { qos: 2 }, 0); // id 2
    r.client.publish('sensors/t1', payload, { qos: 2 }, 0); // id 3
    r.feed('50 02 00 03'); // id 3 is past PUBREC
    r.take();
    return { r, store };
  }

  it('resends in order with DUP after a cut; a message past PUBREC resumes with PUBREL [MQTT-4.4.0-1]', () => {
    const { r } = withWork({ earlyPublish: false });
    r.client.transportClosed(10);
    expect(r.client.state).toBe(ConnState.Waiting);
    r.client.tick(10 + 500); // full jitter with random 0.5 over base 1000
    expect(r.opened).toBe(2);
    r.client.transportOpened(520);
    expect(r.take()).toEqual([CONNECT_PERSISTENT]);
    r.feed(CONNACK_SP);
    expect(r.take()).toEqual([[refPublish(1, 1, true), refPublish(2, 2, true), '62 02 00 03'].join(' ')]);
    expect(r.client.metrics[Metric.Resent]).toBe(3);
  });

  it('resumed session: resends and new publishes go right behind CONNECT, in one write (one round trip)', () => {
    const { r } = withWork();
    r.client.transportClosed(10);
    r.client.publish('sensors/t1', payload, { qos: 1 }, 11); // accepted while offline: queued
    r.client.tick(600);
    r.client.transportOpened(600);
    expect(r.take()).toEqual([
      [CONNECT_PERSISTENT, refPublish(1, 1, true), refPublish(2, 2, true), '62 02 00 03', refPublish(1, 4)].join(' '),
    ]);
    r.feed(CONNACK_SP);
    expect(r.take()).toEqual([]); // nothing sent twice, no SUBSCRIBE
    r.feed('40 02 00 01 50 02 00 02 70 02 00 03 40 02 00 04');
    expect(r.take()).toEqual(['62 02 00 02']);
    r.feed('70 02 00 02');
    expect(r.kinds(ClientEvent.Acked).map((e) => e.a).sort()).toEqual([1, 2, 3, 4]);
  });

  it('deep sleep: a new client restored from the store resends with the same packet ids and never reuses them', () => {
    const { store } = withWork();
    const woke = rig({}, store.clone());
    woke.client.restore(50_000);
    expect(woke.client.session.live).toBe(3);
    woke.client.publish('sensors/t1', payload, { qos: 1 }, 50_000);
    woke.client.start(50_000);
    woke.client.transportOpened(50_001);
    expect(woke.take()).toEqual([
      [CONNECT_PERSISTENT, refPublish(1, 1, true), refPublish(2, 2, true), '62 02 00 03', refPublish(1, 4)].join(' '),
    ]);
  });

  it('a refused CONNACK after early publishing: nothing was processed, so the next attempt resends it all', () => {
    const { r } = withWork();
    r.client.transportClosed(10);
    r.client.tick(600);
    r.client.transportOpened(600);
    r.take();
    r.feed('20 02 00 05', 601); // not authorized [MQTT-3.2.2.3]
    expect(r.kinds(ClientEvent.Refused).map((e) => e.a)).toEqual([5]);
    expect(r.client.state).toBe(ConnState.Waiting);
    // A refusal that will not heal waits about the cap (60 s) rather than the base.
    const wait = r.client.nextDeadline() - 601;
    expect(wait).toBeGreaterThanOrEqual(30_000);
    r.client.tick(601 + wait);
    r.client.transportOpened(601 + wait);
    expect(r.take()).toEqual([[CONNECT_PERSISTENT, refPublish(1, 1, true), refPublish(2, 2, true), '62 02 00 03'].join(' ')]);
    expect(r.client.session.live).toBe(3);
  });

  it('the broker lost the session: unacknowledged messages go out again as new messages and subscriptions are restored', () => {
    const { r } = withWork({ earlyPublish: false });
    r.client.subscribe('cmd/#', 1, 1);
    r.feed('90 03 00 04 01'); // SUBACK
    r.take();
    r.client.transportClosed(10);
    r.client.tick(600);
    r.client.transportOpened(600);
    r.take();
    r.feed(CONNACK); // session present 0
    const out = r.takeAll();
    // Republished without DUP and with fresh packet ids; SUBSCRIBE sent again.
    expect(out).toBe(['82 0a 00 05 00 05 ' + ascii('cmd/#') + ' 01', refPublish(1, 6), refPublish(2, 7)].join(' '));
    const lost = r.kinds(ClientEvent.SessionLost);
    expect(lost).toEqual([{ kind: ClientEvent.SessionLost, a: 2, b: 0, detail: undefined }]);
    // The message past PUBREC was the broker's: it completes (reported with 0x92).
    expect(r.kinds(ClientEvent.Acked).map((e) => [e.a, e.b])).toEqual([[3, 0x92]]);
  });

  it('session lost with the discard policy: unacknowledged messages are dropped and reported', () => {
    const { r } = withWork({ earlyPublish: false, sessionLostPolicy: SessionLostPolicy.Discard });
    r.client.transportClosed(10);
    r.client.tick(600);
    r.client.transportOpened(600);
    r.take();
    r.feed(CONNACK);
    expect(r.takeAll()).toBe('');
    expect(r.kinds(ClientEvent.Dropped).map((e) => [e.a, e.b])).toEqual([
      [1, DropReason.SessionLostDiscarded],
      [2, DropReason.SessionLostDiscarded],
    ]);
  });

  it('session lost after early publishing: the broker took the early messages as new ones; only subscriptions go again', () => {
    const { r } = withWork();
    r.client.subscribe('cmd/#', 1, 1);
    r.feed('90 03 00 04 01');
    r.client.transportClosed(10);
    r.client.tick(600);
    r.client.transportOpened(600);
    r.take();
    r.feed(CONNACK);
    expect(r.takeAll()).toBe('82 0a 00 05 00 05 ' + ascii('cmd/#') + ' 01');
    r.feed('40 02 00 01 50 02 00 02');
    r.feed('70 02 00 03');
    expect(r.kinds(ClientEvent.Acked).map((e) => e.a).sort()).toEqual([1, 3]);
  });

  it('with a resumed session no SUBSCRIBE is sent on wake', () => {
    const store = new MemorySnapshotStore();
    const r = connected({}, store);
    r.client.subscribe('cmd/#', 1, 0);
    r.feed('90 03 00 01 01');
    const woke = rig({}, store.clone());
    woke.client.restore(0);
    woke.client.start(0);
    woke.client.transportOpened(0);
    woke.feed(CONNACK_SP);
    expect(woke.takeAll()).toBe(CONNECT_PERSISTENT);
  });
});

describe('subscriptions', () => {
  it('reports a granted QoS lower than requested, and a failure', () => {
    const r = connected({ clean: true });
    r.client.subscribe('cmd/#', 2, 0);
    expect(r.take()).toEqual(['82 0a 00 01 00 05 ' + ascii('cmd/#') + ' 02']);
    r.feed('90 03 00 01 01');
    expect(r.kinds(ClientEvent.SubscriptionDowngraded).map((e) => [e.a, e.b, e.detail])).toEqual([[2, 1, 'cmd/#']]);
    r.client.subscribe('secret', 1, 0);
    r.take();
    r.feed('90 03 00 02 80');
    expect(r.kinds(ClientEvent.SubscriptionDowngraded).map((e) => [e.a, e.b, e.detail])).toEqual([[2, 1, 'cmd/#'], [1, 0x80, 'secret']]);
    expect(r.client.session.subCount).toBe(1);
  });

  it('unsubscribe sends UNSUBSCRIBE and forgets the filter on UNSUBACK', () => {
    const r = connected({ clean: true });
    r.client.subscribe('cmd/#', 1, 0);
    r.feed('90 03 00 01 01');
    r.take();
    expect(r.client.unsubscribe('cmd/#', 0)).toBe(2);
    expect(r.take()).toEqual(['a2 09 00 02 00 05 ' + ascii('cmd/#')]);
    r.feed('b0 02 00 02');
    expect(r.client.session.subCount).toBe(0);
  });
});

describe('keepalive', () => {
  it('sends PINGREQ only after the link has been idle for the keepalive period', () => {
    const r = connected({ clean: true, keepalive: 10 });
    r.client.publish('sensors/t1', payload, { qos: 0 }, 5000);
    r.take();
    r.client.tick(10_000);
    expect(r.take()).toEqual([]);
    expect(r.client.nextDeadline()).toBe(15_000);
    r.client.tick(15_000);
    expect(r.take()).toEqual(['c0 00']);
    r.feed('d0 00', 15_100);
    r.client.tick(24_000);
    expect(r.client.state).toBe(ConnState.Connected);
  });

  it('no PINGRESP within the bound: the link is half-open, so it is closed and a reconnect scheduled', () => {
    const r = connected({ clean: true, keepalive: 10, pingTimeoutMs: 3000 });
    r.client.tick(10_000);
    expect(r.take()).toEqual(['c0 00']);
    r.client.tick(12_999);
    expect(r.client.state).toBe(ConnState.Connected);
    r.client.tick(13_000);
    expect(r.kinds(ClientEvent.KeepaliveTimeout)).toHaveLength(1);
    expect(r.closed).toBe(1);
    expect(r.client.state).toBe(ConnState.Waiting);
  });
});

describe('outbox', () => {
  it('queues while offline and sends in acceptance order on connect', () => {
    const r = rig({ clean: true });
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    r.client.start(0);
    r.client.transportOpened(0);
    r.take();
    r.feed(CONNACK);
    expect(r.takeAll()).toBe([refPublish(1, 1), refPublish(0), refPublish(2, 2)].join(' '));
  });

  it('reject policy: a full outbox is an error to the caller', () => {
    const r = rig({ clean: true, capacities: { outbox: 2 } });
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(1);
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(2);
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(PublishError.OutboxFull);
  });

  it('drop-oldest policy drops and reports the oldest queued message', () => {
    const r = rig({ clean: true, capacities: { outbox: 2 }, outboxPolicy: OutboxPolicy.DropOldest });
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(3);
    expect(r.kinds(ClientEvent.Dropped).map((e) => [e.a, e.b])).toEqual([[1, DropReason.OutboxFullOldest]]);
    r.client.start(0);
    r.client.transportOpened(0);
    r.take();
    r.feed(CONNACK);
    expect(r.takeAll()).toBe([refPublish(1, 1), refPublish(1, 2)].join(' '));
    expect(r.client.metrics[Metric.DroppedOutboxOldest]).toBe(1);
  });

  it('drop-newest policy drops and reports the new message', () => {
    const r = rig({ clean: true, capacities: { outbox: 1 }, outboxPolicy: OutboxPolicy.DropNewest });
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(PublishError.DroppedNewest);
    expect(r.kinds(ClientEvent.Dropped).map((e) => e.b)).toEqual([DropReason.OutboxFullNewest]);
  });

  it('the byte store bounds the outbox too, and a message larger than the store is refused', () => {
    const r = rig({ clean: true, capacities: { storeBytes: 45 } });
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(1);
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(2);
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(PublishError.OutboxFull);
    expect(r.client.publish('sensors/t1', new Uint8Array(64), { qos: 1 }, 0)).toBe(PublishError.PacketTooLarge);
  });

  it('an expired message is dropped from the outbox and reported', () => {
    const r = rig({ clean: true });
    r.client.publish('sensors/t1', payload, { qos: 1, messageExpiryInterval: 10 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    expect(r.client.nextDeadline()).toBe(10_000);
    r.client.tick(10_000);
    expect(r.kinds(ClientEvent.Dropped).map((e) => [e.a, e.b])).toEqual([[1, DropReason.Expired]]);
    r.client.start(10_000);
    r.client.transportOpened(10_000);
    r.take();
    r.feed(CONNACK, 10_000);
    expect(r.takeAll()).toBe(refPublish(1, 1));
  });
});

describe('MQTT 5', () => {
  const CONNACK5 = '20 03 00 00 00';
  function connected5(options = {}, connack = CONNACK5) {
    const r = rig({ clean: true, protocolVersion: 5, ...options });
    r.client.start(0);
    r.client.transportOpened(0);
    r.take();
    r.feed(connack);
    r.take();
    return r;
  }

  it('acks in their shortest form: a PUBACK with success and no properties is 4 bytes [MQTT-3.4.2.1]', () => {
    const r = connected5();
    r.feed(refPublish(1, 5, false, true));
    expect(r.take()).toEqual(['40 02 00 05']);
    expect(r.messages[0].payload).toBe('21.5');
  });

  it('honours Receive Maximum, Maximum QoS, Retain Available and Maximum Packet Size from CONNACK', () => {
    // receiveMaximum 2, maximumQoS 1, retainAvailable 0, maximumPacketSize 20
    const r = connected5({}, '20 0f 00 00 0c 21 00 02 24 01 25 00 27 00 00 00 14');
    expect(r.client.publish('sensors/t1', payload, { qos: 2 }, 0)).toBe(PublishError.QosNotSupported);
    expect(r.client.publish('sensors/t1', payload, { qos: 0, retain: true }, 0)).toBe(PublishError.RetainNotSupported);
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(PublishError.PacketTooLarge); // 21 B > 20
    expect(r.client.publish('sensors/t1', payload, { qos: 0 }, 0)).toBe(0); // 19 B
    expect(r.take()).toEqual([refPublish(0, 0, false, true)]);
    expect(r.take()).toEqual([]);
  });

  it('Server Keep Alive from CONNACK replaces the keepalive asked for [MQTT-3.2.2-21]', () => {
    const r = connected5({ keepalive: 60 }, '20 06 00 00 03 13 00 05'); // server keep alive 5 s
    expect(r.client.nextDeadline()).toBe(5000);
    r.client.tick(5000);
    expect(r.take()).toEqual(['c0 00']);
  });

  it('a DISCONNECT from the server closes our side and backs off', () => {
    const r = connected5();
    r.feed('e0 02 8b 00'); // server shutting down
    expect(r.closed).toBe(1);
    expect(r.client.state).toBe(ConnState.Waiting);
    expect(r.client.lastReasonCode).toBe(0x8b);
  });

  it('keeps at most Receive Maximum messages in flight; the rest wait in order', () => {
    const r = connected5({}, '20 06 00 00 03 21 00 02');
    for (let k = 0; k < 3; k++) r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    expect(r.take()).toEqual([refPublish(1, 1, false, true), refPublish(1, 2, false, true)]);
    r.feed('40 02 00 01');
    expect(r.take()).toEqual([refPublish(1, 3, false, true)]);
  });

  it('a PUBREC with an error reason ends that flow and reports the drop', () => {
    const r = connected5();
    const token = r.client.publish('sensors/t1', payload, { qos: 2 }, 0);
    r.take();
    r.feed('50 03 00 01 87'); // not authorized
    expect(r.take()).toEqual([]);
    expect(r.kinds(ClientEvent.Dropped).map((e) => [e.a, e.b, e.detail])).toEqual([[token, DropReason.RefusedByServer, 0x87]]);
    expect(r.client.session.live).toBe(0);
  });

  it('sends the remaining message expiry when a queued message finally leaves [MQTT-3.3.2-6]', () => {
    const r = rig({ clean: true, protocolVersion: 5 });
    r.client.publish('sensors/t1', payload, { qos: 1, messageExpiryInterval: 100 }, 0);
    r.client.start(40_000);
    r.client.transportOpened(40_000);
    r.take();
    r.feed(CONNACK5, 40_000);
    // properties: length 5, 02 = Message Expiry Interval, 60 s left
    expect(r.takeAll()).toBe(`32 18 00 0a ${ascii('sensors/t1')} 00 01 05 02 00 00 00 3c ${ascii('21.5')}`);
  });

  it('asks for a persistent session with a Session Expiry Interval and limits what it receives', () => {
    const r = rig({ protocolVersion: 5, sessionExpiryInterval: 3600 }, new MemorySnapshotStore());
    r.client.start(0);
    r.client.transportOpened(0);
    // flags 00 (clean start 0); properties: 11 = session expiry 3600, 21 = receive maximum 16, 27 = maximum packet size 2048
    expect(r.take()).toEqual([
      '10 1e 00 04 4d 51 54 54 05 00 00 3c 0d 11 00 00 0e 10 21 00 10 27 00 00 08 00 00 04 64 65 76 31',
    ]);
  });

  it('a malformed packet closes the connection with DISCONNECT 0x81 and loses nothing accepted', () => {
    const r = connected5();
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    r.take();
    r.feed('36 00'); // QoS 3 [MQTT-3.3.1-4]
    expect(r.take()).toEqual(['e0 02 81 00']);
    expect(r.kinds(ClientEvent.ProtocolError).map((e) => e.a)).toEqual([0x81]);
    expect(r.closed).toBe(1);
    expect(r.client.session.live).toBe(1);
  });
});

describe('CONNACK refusals', () => {
  // Every 3.1.1 return code [MQTT-3.2.2.3] and 5.0 CONNACK reason code [MQTT-3.2.2.2]:
  // reported, the connection closed, and the next attempt scheduled; the ones
  // that retrying soon cannot fix wait about the cap (60 s) instead of the base.
  const permanent311 = new Set([1, 2, 4, 5]);
  const permanent5 = new Set([0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c]);
  const cases: Array<[4 | 5, number]> = [
    ...[1, 2, 3, 4, 5].map((c) => [4, c] as [4, number]),
    ...[0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f].map(
      (c) => [5, c] as [5, number],
    ),
  ];
  for (const [version, code] of cases) {
    it(`MQTT ${version === 4 ? '3.1.1' : '5.0'} code 0x${code.toString(16)}`, () => {
      const r = rig({ clean: true, protocolVersion: version });
      r.client.start(0);
      r.client.transportOpened(0);
      r.feed(version === 4 ? `20 02 00 0${code}` : `20 03 00 ${code.toString(16)} 00`, 10);
      expect(r.kinds(ClientEvent.Refused).map((e) => e.a)).toEqual([code]);
      expect(r.client.state).toBe(ConnState.Waiting);
      expect(r.closed).toBe(1);
      const wait = r.client.nextDeadline() - 10;
      if ((version === 4 ? permanent311 : permanent5).has(code)) expect(wait).toBeGreaterThanOrEqual(30_000);
      else expect(wait).toBeLessThan(1000);
    });
  }
});

describe('client ids', () => {
  it('refuses a persistent session with an empty client id, saying why', () => {
    expect(() => rig({ clientId: '', clean: false })).toThrow(/random id/);
    expect(() => rig({ clientId: '', clean: true })).not.toThrow();
  });
});
