// Incoming QoS 2 beyond the id table (issue 12 item 8), byte for byte. A
// broker may send QoS 2 PUBLISH packets ahead of the PUBRELs it owes
// (mosquitto 2.0 does, on 3.1.1 and beyond a v5 Receive Maximum): they wait in
// the hold region, unacknowledged, and are delivered and answered in order as
// PUBRELs free ids, on the same connection. Only when the region is full too
// is a message held back at the broker, and the client reconnects to get it
// again; with reconnecting off it says why it gave up.
import { describe, expect, it } from 'vitest';
import { rig, refPublish } from './harness.js';
import { ConnState, Metric } from '../../modules/session/client.js';
import { ClientEvent } from '../../modules/session/ports.js';
import { MemorySnapshotStore } from '../../sim/memory-store.js';

const CONNACK = '20 02 00 00';

function full(options: Record<string, unknown> = {}, store: MemorySnapshotStore | null = null) {
  const r = rig({ clean: store === null, capacities: { incomingQos2: 2 }, ...options }, store);
  r.client.start(0);
  r.client.transportOpened(0);
  r.feed(CONNACK);
  r.take();
  r.feed(`${refPublish(2, 1)} ${refPublish(2, 2)}`, 1);
  expect(r.take()).toEqual(['50 02 00 01 50 02 00 02']);
  return r;
}

describe('incoming QoS 2 beyond the id table', () => {
  it('waits in the hold region, then is delivered and answered as each PUBREL frees an id, in order, no reconnect', () => {
    const r = full();
    r.feed(`${refPublish(2, 3)} ${refPublish(2, 4)}`, 2);
    // Held: not delivered, not acknowledged.
    expect(r.take()).toEqual([]);
    expect(r.messages.map((m) => m.packetId)).toEqual([1, 2]);
    // PUBREL 1: PUBCOMP 1, then message 3 takes the freed id: delivered, PUBREC 3.
    // Message 5 arrives in the same read: it queues behind 4.
    r.feed(`62 02 00 01 ${refPublish(2, 5)}`, 3);
    expect(r.take()).toEqual(['70 02 00 01 50 02 00 03']);
    expect(r.messages.map((m) => m.packetId)).toEqual([1, 2, 3]);
    r.feed('62 02 00 02 62 02 00 03', 4);
    expect(r.take()).toEqual(['70 02 00 02 50 02 00 04 70 02 00 03 50 02 00 05']);
    expect(r.messages.map((m) => m.packetId)).toEqual([1, 2, 3, 4, 5]);
    expect(r.messages.every((m) => m.payload === '21.5' && m.topic === 'sensors/t1')).toBe(true);
    expect(r.client.state).toBe(ConnState.Connected);
    expect(r.closed).toBe(0);
    expect(r.client.metrics[Metric.HeldBack]).toBe(3);
  });

  it('a resend of an id in the table is still a duplicate while others wait: PUBREC, not queued', () => {
    const r = full();
    r.feed(refPublish(2, 3), 2);
    r.feed(refPublish(2, 1, true), 3);
    expect(r.take()).toEqual(['50 02 00 01']);
    expect(r.client.metrics[Metric.DuplicatesSuppressed]).toBe(1);
  });

  it('held messages are not in the snapshot and not delivered when the connection ends: the broker sends them again', () => {
    const store = new MemorySnapshotStore();
    const r = full({ sessionExpiryInterval: undefined }, store);
    r.feed(refPublish(2, 3), 2);
    r.client.transportClosed(3);
    r.client.tick(100_000);
    r.client.transportOpened(100_000);
    r.take();
    // The broker resends PUBREL 1 and 2, and PUBLISH 3 (DUP).
    r.feed(`20 02 01 00 62 02 00 01 62 02 00 02 ${refPublish(2, 3, true)}`, 100_001);
    expect(r.take()).toEqual(['70 02 00 01 70 02 00 02 50 02 00 03']);
    expect(r.messages.map((m) => m.packetId)).toEqual([1, 2, 3]);
  });

  it('when the hold region is full too: held back at the broker, and a reconnect once PUBRELs made room', () => {
    // 40 bytes: two 20-byte reference PUBLISH packets.
    const r = full({ incomingHoldBytes: 40 });
    r.feed(`${refPublish(2, 3)} ${refPublish(2, 4)} ${refPublish(2, 5)} ${refPublish(2, 6)}`, 2);
    expect(r.take()).toEqual([]);
    r.feed('62 02 00 01', 3);
    expect(r.take()).toEqual(['70 02 00 01 50 02 00 03']);
    r.feed('62 02 00 02', 4);
    expect(r.take()).toEqual(['70 02 00 02 50 02 00 04']);
    r.feed('62 02 00 03', 5);
    // Room, nothing held here, 5 and 6 at the broker: DISCONNECT and reconnect at once.
    expect(r.take()).toEqual(['70 02 00 03 e0 00']);
    expect(r.closed).toBe(1);
    expect(r.kinds(ClientEvent.HeldBack)).toEqual([{ kind: ClientEvent.HeldBack, a: 4, b: 1, detail: undefined }]);
    r.client.tick(5);
    expect(r.opened).toBe(2);
    r.client.transportOpened(5);
    r.feed(`20 02 00 00 ${refPublish(2, 5, true)} ${refPublish(2, 6, true)}`, 6);
    expect(r.messages.map((m) => m.packetId)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('with reconnecting off it gives up with a reason (HeldBack, b = 0), not in silence', () => {
    const r = full({ incomingHoldBytes: 0, autoReconnect: false });
    r.feed(refPublish(2, 3), 2);
    r.feed('62 02 00 01', 3);
    expect(r.take()).toEqual(['70 02 00 01 e0 00']);
    expect(r.client.state).toBe(ConnState.Idle);
    expect(r.kinds(ClientEvent.HeldBack)).toEqual([{ kind: ClientEvent.HeldBack, a: 1, b: 0, detail: undefined }]);
  });
});
