// QoS 0 back-pressure (issue 12 item 6): when the host's send hook says the
// link is backed up, the core writes nothing new, keeps QoS 0 messages in the
// bounded outbox under its policy, and sends them in order on writable().
import { describe, expect, it } from 'vitest';
import { rig, refPublish, payload } from './harness.js';
import { ClientEvent, DropReason, OutboxPolicy } from '../../modules/session/ports.js';
import { Metric, PublishError } from '../../modules/session/client.js';

const CONNACK = '20 02 00 00';

function connected(options = {}) {
  const r = rig({ clean: true, ...options });
  r.client.start(0);
  r.client.transportOpened(0);
  r.take();
  r.feed(CONNACK);
  r.take();
  return r;
}

describe('QoS 0 back-pressure', () => {
  it('a QoS 0 message goes straight out while the link takes more, and into the outbox once it is backed up', () => {
    const r = connected();
    r.backed = true;
    expect(r.client.publish('sensors/t1', payload, { qos: 0 }, 0)).toBe(0);
    // That write was taken, but the hook said the link is full.
    expect(r.take()).toEqual([refPublish(0)]);
    expect(r.client.backedUp).toBe(true);
    const t1 = r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    const t2 = r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    expect(t1).toBeGreaterThan(0);
    expect(t2).toBeGreaterThan(0);
    expect(r.take()).toEqual([]);
    expect(r.client.session.queued).toBe(2);
    r.backed = false;
    r.client.writable(1);
    expect(r.client.backedUp).toBe(false);
    // In acceptance order, in one write.
    expect(r.take()).toEqual([[refPublish(0), refPublish(1, 1)].join(' ')]);
    expect(r.client.session.queued).toBe(0);
    expect(r.client.metrics[Metric.Sent]).toBe(3);
  });

  it('the outbox bounds what waits: reject policy refuses with OutboxFull, nothing is written', () => {
    const r = connected({ capacities: { outbox: 3 } });
    r.backed = true;
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.take();
    for (let k = 0; k < 3; k++) expect(r.client.publish('sensors/t1', payload, { qos: 0 }, 0)).toBeGreaterThan(0);
    expect(r.client.publish('sensors/t1', payload, { qos: 0 }, 0)).toBe(PublishError.OutboxFull);
    expect(r.take()).toEqual([]);
    r.backed = false;
    r.client.writable(0);
    expect(r.takeAll()).toBe([refPublish(0), refPublish(0), refPublish(0)].join(' '));
    expect(r.client.session.queued).toBe(0);
    // Room again: the next one goes straight out.
    expect(r.client.publish('sensors/t1', payload, { qos: 0 }, 0)).toBe(0);
    expect(r.take()).toEqual([refPublish(0)]);
  });

  it('drop-oldest policy drops and reports the oldest waiting QoS 0 message', () => {
    const r = connected({ capacities: { outbox: 2 }, outboxPolicy: OutboxPolicy.DropOldest });
    r.backed = true;
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.take();
    const a = r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    expect(r.kinds(ClientEvent.Dropped).map((e) => [e.a, e.b])).toEqual([[a, DropReason.OutboxFullOldest]]);
    expect(r.client.metrics[Metric.DroppedOutboxOldest]).toBe(1);
  });

  it('stops sending from the outbox when the link backs up again part way, and goes on at the next writable()', () => {
    // A 40-byte send buffer holds two 18-byte QoS 0 PUBLISHes: the pump flushes every two.
    const r = connected({ sendBufferSize: 40, capacities: { outbox: 8 } });
    r.backed = true;
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.take();
    for (let k = 0; k < 6; k++) r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    expect(r.client.session.queued).toBe(6);
    // Drained, but the first flush of the pump (to make room for the third)
    // fills the link again: the third, already in the send buffer, still
    // leaves (the hook takes the bytes it is given), and the pump stops.
    r.client.writable(0);
    expect(r.take()).toEqual([[refPublish(0), refPublish(0)].join(' '), refPublish(0)]);
    expect(r.client.session.queued).toBe(3);
    r.client.writable(0); // drained again: the other three (two, then one behind the flush that said full)
    expect(r.takeAll()).toBe([refPublish(0), refPublish(0), refPublish(0)].join(' '));
    expect(r.client.session.queued).toBe(0);
    expect(r.client.session.queued).toBe(0);
  });

  it('acks that free the window do not send while the link is backed up', () => {
    const r = connected({ capacities: { inflight: 1 } });
    r.backed = true;
    expect(r.client.publish('sensors/t1', payload, { qos: 1 }, 0)).toBe(1);
    expect(r.take()).toEqual([refPublish(1, 1)]); // answered "full"
    r.client.publish('sensors/t1', payload, { qos: 1 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.feed('40 02 00 01'); // PUBACK 1: room in the window, but the link is backed up
    expect(r.take()).toEqual([]);
    expect(r.client.session.queued).toBe(2);
    r.backed = false;
    r.client.writable(0);
    expect(r.take()).toEqual([[refPublish(1, 2), refPublish(0)].join(' ')]);
  });

  it('a new connection starts writable, and what waited goes out behind CONNECT', () => {
    const r = connected();
    r.backed = true;
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.client.publish('sensors/t1', payload, { qos: 0 }, 0);
    r.take();
    r.client.transportClosed(0);
    r.backed = false;
    expect(r.client.backedUp).toBe(false);
    r.client.tick(10_000);
    r.client.transportOpened(10_000);
    r.take();
    r.feed(CONNACK, 10_000);
    expect(r.take()).toEqual([refPublish(0)]);
  });
});
