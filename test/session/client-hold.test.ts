// Incoming QoS 2 beyond the id table (issue 12 item 8), byte for byte. A
// broker may send QoS 2 PUBLISH packets ahead of the PUBRELs it owes
// (mosquitto 2.0 does, on 3.1.1 and beyond a v5 Receive Maximum): they wait in
// the hold region, unacknowledged, and are delivered and answered in order as
// PUBRELs free ids, on the same connection. Only when the region is full too
// is a message held back at the broker, and the client reconnects to get it
// again; with reconnecting off it says why it gave up.
//
// Ids that continue a run go to capacities.incomingRuns first (see the last
// block); the hold region is for what the runs cannot take (ids out of
// sequence, every run in use), so these tests turn the runs off.
import { describe, expect, it } from 'vitest';
import { rig, refPublish } from './harness.js';
import { Release } from '../../modules/session/session-state.js';
import { ConnState, Metric } from '../../modules/session/client.js';
import { ClientEvent } from '../../modules/session/ports.js';
import { MemorySnapshotStore } from '../../sim/memory-store.js';

const CONNACK = '20 02 00 00';

/** A rig connected (CONNACK in, CONNECT taken). */
function connected(...args: Parameters<typeof rig>) {
  const r = rig(...args);
  r.client.start(0);
  r.client.transportOpened(0);
  r.feed(CONNACK);
  r.take();
  return r;
}

function full(options: Record<string, unknown> = {}, store: MemorySnapshotStore | null = null) {
  const r = connected({ clean: store === null, capacities: { incomingQos2: 2, incomingRuns: 0 }, ...options }, store);
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

  it('when the hold region is full too: held back at the broker, and a reconnect once the PUBRELs owed on this connection are in', () => {
    // 40 bytes: two 20-byte reference PUBLISH packets.
    const r = full({ incomingHoldBytes: 40 });
    r.feed(`${refPublish(2, 3)} ${refPublish(2, 4)} ${refPublish(2, 5)} ${refPublish(2, 6)}`, 2);
    expect(r.take()).toEqual([]);
    r.feed('62 02 00 01', 3);
    expect(r.take()).toEqual(['70 02 00 01 50 02 00 03']);
    r.feed('62 02 00 02', 4);
    expect(r.take()).toEqual(['70 02 00 02 50 02 00 04']);
    r.feed('62 02 00 03', 5);
    // Room, but the PUBREL of 4 is still owed on this connection: wait for it.
    expect(r.take()).toEqual(['70 02 00 03']);
    expect(r.closed).toBe(0);
    r.feed('62 02 00 04', 6);
    // Every PUBREL in, nothing held here, 5 and 6 at the broker: DISCONNECT and reconnect at once.
    expect(r.take()).toEqual(['70 02 00 04 e0 00']);
    expect(r.closed).toBe(1);
    expect(r.kinds(ClientEvent.HeldBack)).toEqual([{ kind: ClientEvent.HeldBack, a: 4, b: 1, detail: undefined }]);
    r.client.tick(6);
    expect(r.opened).toBe(2);
    r.client.transportOpened(6);
    r.feed(`20 02 00 00 ${refPublish(2, 5, true)} ${refPublish(2, 6, true)}`, 7);
    expect(r.messages.map((m) => m.packetId)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('with reconnecting off it gives up with a reason (HeldBack, b = 0), not in silence', () => {
    const r = full({ incomingHoldBytes: 0, autoReconnect: false });
    r.feed(refPublish(2, 3), 2);
    r.feed('62 02 00 01', 3);
    expect(r.take()).toEqual(['70 02 00 01']);
    r.feed('62 02 00 02', 3);
    expect(r.take()).toEqual(['70 02 00 02 e0 00']);
    expect(r.client.state).toBe(ConnState.Idle);
    expect(r.kinds(ClientEvent.HeldBack)).toEqual([{ kind: ClientEvent.HeldBack, a: 1, b: 0, detail: undefined }]);
  });
});

// Brokers number a session's messages in sequence, so ids sent far ahead of
// their PUBRELs continue one run: each of capacities.incomingRuns holds any
// number of consecutive ids in 4 bytes. mosquitto 2.0 sends a queued 3.1.1
// QoS 2 backlog almost whole before its PUBRELs; with runs it is delivered
// and answered on the one connection, with no hold and no reconnect.
const hex16 = (n: number) => `${(n >> 8).toString(16).padStart(2, '0')} ${(n & 0xff).toString(16).padStart(2, '0')}`;
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, k) => a + k);

describe('incoming QoS 2 ids in runs', () => {
  it('a backlog of 500 sequential ids beyond a table of 2 is delivered and answered at once, released in order, no hold, no reconnect', () => {
    const store = new MemorySnapshotStore();
    const r = connected({ clean: false, capacities: { incomingQos2: 2 } }, store);
    // Ids wrap from 65535 to 1 in the middle of the run.
    const ids = range(65300, 65535).concat(range(1, 264));
    r.feed(ids.map((id) => refPublish(2, id)).join(' '), 1);
    expect(r.takeAll()).toBe(ids.map((id) => `50 02 ${hex16(id)}`).join(' '));
    expect(r.messages.map((m) => m.packetId)).toEqual(ids);
    const s = r.client.session;
    expect(s.incomingHeld).toBe(500);
    expect(s.incomingCount).toBe(2);
    expect(r.client.metrics[Metric.HeldBack]).toBe(0);
    // A resend of an id in the run is a duplicate: PUBREC, no delivery.
    r.feed(refPublish(2, 7, true), 2);
    expect(r.takeAll()).toBe('50 02 00 07');
    expect(r.messages).toHaveLength(500);
    // The session survives a restart with the run in it.
    const r2 = rig({ clean: false, capacities: { incomingQos2: 2 } }, store.clone());
    r2.client.restore(10);
    expect(r2.client.session.incomingHeld).toBe(500);
    expect(r2.client.session.hasIncoming(65535) && r2.client.session.hasIncoming(1) && r2.client.session.hasIncoming(264)).toBe(true);
    expect(r2.client.session.hasIncoming(265) || r2.client.session.hasIncoming(65299)).toBe(false);
    // PUBRELs in order release every id.
    r.feed(ids.map((id) => `62 02 ${hex16(id)}`).join(' '), 3);
    expect(r.takeAll()).toBe(ids.map((id) => `70 02 ${hex16(id)}`).join(' '));
    expect(s.incomingHeld).toBe(0);
    expect(r.closed).toBe(0);
    expect(r.client.state).toBe(ConnState.Connected);
    // A released id is new again.
    r.feed(refPublish(2, 7), 4);
    expect(r.messages).toHaveLength(501);
  });

  it('ids out of sequence use a run each; with every run in use the next waits in the hold region', () => {
    const r = connected({ clean: true, capacities: { incomingQos2: 2, incomingRuns: 2 } });
    r.feed([1, 2, 10, 11, 20, 30].map((id) => refPublish(2, id)).join(' '), 1);
    // 1, 2 in the table; 10-11 one run, 20 the other; 30 has no room.
    expect(r.takeAll()).toBe('50 02 00 01 50 02 00 02 50 02 00 0a 50 02 00 0b 50 02 00 14');
    expect(r.client.metrics[Metric.HeldBack]).toBe(1);
    r.feed('62 02 00 01', 2);
    expect(r.takeAll()).toBe('70 02 00 01 50 02 00 1e');
    expect(r.messages.map((m) => m.packetId)).toEqual([1, 2, 10, 11, 20, 30]);
  });

  it('a PUBREL inside a run splits it into a free run; with none free it is a protocol error that keeps the id', () => {
    const r = connected({ clean: false, capacities: { incomingQos2: 1, incomingRuns: 2 } });
    r.feed([1, 5, 6, 7, 8].map((id) => refPublish(2, id)).join(' '), 1);
    r.take();
    // 1 in the table, 5..8 a run. PUBREL 6 splits it: 5 | 7-8.
    r.feed('62 02 00 06', 2);
    expect(r.takeAll()).toBe('70 02 00 06');
    const s = r.client.session;
    expect([5, 6, 7, 8].map((id) => s.hasIncoming(id))).toEqual([true, false, true, true]);
    // PUBREL 7 is the start of its run: no split. 9 continues the run 8.
    r.feed(`62 02 00 07 ${refPublish(2, 9)}`, 3);
    expect(r.takeAll()).toBe('70 02 00 07 50 02 00 09');
    // Runs 5 and 8-10, none free: 9 is inside a run that cannot be split.
    r.feed(`${refPublish(2, 10)}`, 4);
    r.take();
    expect(s.removeIncoming(9)).toBe(Release.NoRunFree); // and nothing changed
    r.feed('62 02 00 09', 5);
    expect(r.takeAll()).toBe(''); // no PUBCOMP: the id is kept
    expect(s.hasIncoming(9)).toBe(true);
    expect(r.kinds(ClientEvent.ProtocolError)).toHaveLength(1);
    expect(r.closed).toBe(1);
    // The next connection brings the PUBRELs again, oldest first: all released.
    r.client.tick(600_000);
    r.client.transportOpened(600_000);
    r.take();
    r.feed(`20 02 01 00 ${[1, 5, 8, 9, 10].map((id) => `62 02 ${hex16(id)}`).join(' ')}`, 600_001);
    expect(r.takeAll()).toBe([1, 5, 8, 9, 10].map((id) => `70 02 ${hex16(id)}`).join(' '));
    expect(s.incomingHeld).toBe(0);
    expect(r.messages.map((m) => m.packetId)).toEqual([1, 5, 6, 7, 8, 9, 10]);
  });

  it('the replay guard keeps hashes per id, so it uses no runs: beyond the table messages wait as before', () => {
    const r = connected({ clean: true, capacities: { incomingQos2: 2 }, guardReplayAfterPubrel: true });
    r.feed([1, 2, 3].map((id) => refPublish(2, id)).join(' '), 1);
    expect(r.takeAll()).toBe('50 02 00 01 50 02 00 02');
    expect(r.client.metrics[Metric.HeldBack]).toBe(1);
  });
});
