// One full device cycle on the client core, written once and run both in Node
// and inside the XS engine: connect, publish QoS 1 and 2, cut, "deep sleep"
// (every object dropped, only the store kept), restore, resume. Returns every
// write as hex so the two engines can be compared byte for byte.
import { DormouseClient } from '../../../modules/session/client.js';
import { MemorySnapshotStore } from '../../../sim/memory-store.js';

import { bytes, hex } from './hex.js';

export function coreCycle(): { writes: string[]; events: number[][]; restoredLive: number; snapshotBytes: number } {
  const writes: string[] = [];
  const events: number[][] = [];
  const hooks = {
    send: (b: Uint8Array) => void writes.push(hex(b)),
    open: () => {},
    close: () => {},
    message: () => {},
    event: (k: number, a: number, b: number) => void events.push([k, a, b]),
  };
  const store = new MemorySnapshotStore();
  const payload = new Uint8Array([0x32, 0x31, 0x2e, 0x35]);
  const c = new DormouseClient({ clientId: 'dev1', keepalive: 60 }, hooks, store, () => 0.5);
  c.start(0);
  c.transportOpened(0);
  c.receive(bytes('20020000'), 1);
  c.publish('sensors/t1', payload, { qos: 1 }, 2);
  c.publish('sensors/t1', payload, { qos: 2 }, 2);
  c.receive(bytes('40020001'), 3); // QoS 1 done; QoS 2 still waiting for PUBREC
  c.transportClosed(4);
  const snapshotBytes = store.slots[0]?.length ?? 0;

  const d = new DormouseClient({ clientId: 'dev1', keepalive: 60 }, hooks, store.clone(), () => 0.5);
  d.restore(60_000);
  const restoredLive = d.session.live;
  d.start(60_000);
  d.transportOpened(60_000); // CONNECT and the DUP resend in one write
  d.receive(bytes('20020100' + '50020002'), 60_010);
  d.receive(bytes('70020002'), 60_020);
  d.end(60_030);
  return { writes, events, restoredLive, snapshotBytes };
}

(globalThis as { coreCycle?: typeof coreCycle }).coreCycle = coreCycle;
