// OutboxPolicy.Conflate: per topic only the newest unsent message is kept.
// Scripted-broker tests asserting the exact bytes that leave the client.
import { describe, expect, it } from 'vitest';
import { rig, hex } from './harness.js';
import { ClientEvent, DropReason, OutboxPolicy } from '../../modules/session/ports.js';
import { Metric, PublishError } from '../../modules/session/client.js';
import { MemorySnapshotStore } from '../../sim/memory-store.js';

const CONNECT_CLEAN = '10 10 00 04 4d 51 54 54 04 02 00 3c 00 04 64 65 76 31';
const CONNACK = '20 02 00 00';
const enc = (s: string) => new TextEncoder().encode(s);

/** A 3.1.1 PUBLISH as hex [MQTT-3.3]: fixed header, topic, packet id (QoS > 0), payload. */
function pub(topic: string, body: string, qos: 0 | 1 | 2, id = 0, dup = false): string {
  const t = enc(topic);
  const b = enc(body);
  const out = [0x30 | (dup ? 8 : 0) | (qos << 1), 2 + t.length + (qos ? 2 : 0) + b.length, t.length >> 8, t.length & 0xff, ...t];
  if (qos) out.push(id >> 8, id & 0xff);
  out.push(...b);
  return hex(new Uint8Array(out));
}

function drops(r: ReturnType<typeof rig>) {
  return r.kinds(ClientEvent.Dropped).map((e) => [e.a, e.b]);
}

describe('conflating outbox (OutboxPolicy.Conflate)', () => {
  it('offline: only the newest queued reading per topic goes out, each older one reported as superseded', () => {
    const r = rig({ clean: true, outboxPolicy: OutboxPolicy.Conflate });
    const c = r.client;
    expect(c.publish('s/t', enc('20.1'), { qos: 1 }, 0)).toBe(1);
    expect(c.publish('s/h', enc('40'), { qos: 1 }, 0)).toBe(2);
    expect(c.publish('s/t', enc('20.2'), { qos: 1 }, 0)).toBe(3);
    expect(c.publish('s/t', enc('20.3'), { qos: 0 }, 0)).toBe(4);
    expect(drops(r)).toEqual([[1, DropReason.Superseded], [3, DropReason.Superseded]]);
    expect(c.session.queued).toBe(2);
    expect(c.metrics[Metric.DroppedSuperseded]).toBe(2);
    c.start(0);
    c.transportOpened(0);
    expect(r.take()).toEqual([CONNECT_CLEAN]);
    r.feed(CONNACK);
    // Acceptance order of what is left: s/h (token 2), then the newest s/t.
    expect(r.takeAll()).toBe([pub('s/h', '40', 1, 1), pub('s/t', '20.3', 0)].join(' '));
  });

  it('never drops an inflight message, only queued ones of the same topic', () => {
    const r = rig({ clean: true, outboxPolicy: OutboxPolicy.Conflate, capacities: { inflight: 1 } });
    const c = r.client;
    c.start(0);
    c.transportOpened(0);
    r.feed(CONNACK);
    r.take();
    expect(c.publish('s/t', enc('1'), { qos: 1 }, 1)).toBe(1); // in flight at once
    expect(r.take()).toEqual([pub('s/t', '1', 1, 1)]);
    expect(c.publish('s/t', enc('2'), { qos: 1 }, 2)).toBe(2); // window full: queued
    expect(c.publish('s/x', enc('a'), { qos: 1 }, 3)).toBe(3);
    expect(c.publish('s/t', enc('3'), { qos: 1 }, 4)).toBe(4); // supersedes 2, not the inflight 1
    expect(r.take()).toEqual([]);
    expect(drops(r)).toEqual([[2, DropReason.Superseded]]);
    r.feed('40 02 00 01', 5);
    expect(r.take()).toEqual([pub('s/x', 'a', 1, 2)]);
    r.feed('40 02 00 02', 6);
    expect(r.take()).toEqual([pub('s/t', '3', 1, 3)]);
    r.feed('40 02 00 03', 7);
    expect(r.kinds(ClientEvent.Acked).map((e) => e.a)).toEqual([1, 3, 4]);
    expect(c.session.live).toBe(0);
  });

  it('compares whole topics in UTF-8: a prefix or a different accent is another topic', () => {
    const r = rig({ clean: true, outboxPolicy: OutboxPolicy.Conflate });
    const c = r.client;
    c.publish('capteurs/température', enc('1'), { qos: 1 }, 0);
    c.publish('capteurs/temperature', enc('2'), { qos: 1 }, 0);
    c.publish('capteurs/températur', enc('3'), { qos: 1 }, 0);
    c.publish('capteurs/température/x', enc('4'), { qos: 1 }, 0);
    c.publish('🌡/t', enc('5'), { qos: 1 }, 0);
    expect(drops(r)).toEqual([]);
    c.publish('capteurs/température', enc('6'), { qos: 1 }, 0);
    c.publish('🌡/t', enc('7'), { qos: 1 }, 0);
    expect(drops(r)).toEqual([[1, DropReason.Superseded], [5, DropReason.Superseded]]);
    expect(c.session.queued).toBe(5);
  });

  it('a full outbox of other topics refuses the new reading and keeps the old ones; a newer reading of a held topic takes its place', () => {
    const r = rig({ clean: true, outboxPolicy: OutboxPolicy.Conflate, capacities: { outbox: 2 } });
    const c = r.client;
    expect(c.publish('s/a', enc('1'), { qos: 1 }, 0)).toBe(1);
    expect(c.publish('s/b', enc('1'), { qos: 1 }, 0)).toBe(2);
    expect(c.publish('s/c', enc('1'), { qos: 1 }, 0)).toBe(PublishError.OutboxFull);
    expect(c.publish('s/b', enc('2'), { qos: 1 }, 0)).toBe(3); // a refused message takes no token
    expect(drops(r)).toEqual([[2, DropReason.Superseded]]);
    c.start(0);
    c.transportOpened(0);
    r.take();
    r.feed(CONNACK);
    expect(r.takeAll()).toBe([pub('s/a', '1', 1, 1), pub('s/b', '2', 1, 2)].join(' '));
  });

  it('the byte store counts what the superseded message frees, and nothing is dropped for a message that will not fit', () => {
    // 2 records of 9 + 1 payload bytes each: s/a + 5 B = 14 B per PUBLISH; 30 B of store.
    const r = rig({ clean: true, outboxPolicy: OutboxPolicy.Conflate, capacities: { storeBytes: 30 } });
    const c = r.client;
    expect(c.publish('s/a', enc('11111'), { qos: 1 }, 0)).toBe(1);
    expect(c.publish('s/b', enc('22222'), { qos: 1 }, 0)).toBe(2);
    // Replacing s/a by a 7-byte reading: 14 + 16 = 30 B, fits once s/a's 14 B are freed.
    expect(c.publish('s/a', enc('3333333'), { qos: 1 }, 0)).toBe(3);
    // Replacing s/a by a 9-byte reading would need 32 B: refused, and the held s/a stays.
    expect(c.publish('s/a', enc('444444444'), { qos: 1 }, 0)).toBe(PublishError.OutboxFull);
    expect(drops(r)).toEqual([[1, DropReason.Superseded]]);
    expect(c.session.queued).toBe(2);
    expect(c.session.liveBytes).toBe(30);
  });

  it('with a resumed session the superseding happens before the early publish behind CONNECT', () => {
    const r = rig({ outboxPolicy: OutboxPolicy.Conflate, capacities: { inflight: 2 } }, new MemorySnapshotStore());
    const c = r.client;
    c.meta.hasSession = true; // as after a restore
    c.publish('s/t', enc('a'), { qos: 1 }, 0);
    c.publish('s/t', enc('b'), { qos: 1 }, 0);
    c.start(0);
    c.transportOpened(0);
    expect(r.takeAll()).toBe('10 10 00 04 4d 51 54 54 04 00 00 3c 00 04 64 65 76 31 ' + pub('s/t', 'b', 1, 1));
  });
});
