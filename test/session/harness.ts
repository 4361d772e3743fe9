// A client core wired to recording hooks: every write, event, delivery and
// transport request is kept, so tests can assert the exact bytes exchanged.
import { DormouseClient, type ClientOptions } from '../../modules/session/client.js';
import { ClientEvent, type SnapshotStore } from '../../modules/session/ports.js';
import type { PublishPacket } from '../../modules/mqtt/types.js';

export const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
export const bytes = (h: string): Uint8Array => new Uint8Array(h.trim().split(/\s+/).filter(Boolean).map((x) => parseInt(x, 16)));
export const ascii = (s: string): string => hex(new TextEncoder().encode(s));

export interface Delivery {
  topic: string;
  payload: string;
  qos: number;
  dup: boolean;
  packetId: number;
}

export function rig(options: Partial<ClientOptions> = {}, store: SnapshotStore | null = null, random: () => number = () => 0.5) {
  const writes: string[] = [];
  const events: Array<{ kind: ClientEvent; a: number; b: number; detail?: unknown }> = [];
  const messages: Delivery[] = [];
  const r = {
    opened: 0,
    closed: 0,
    /** While true, the send hook answers false: the link is backed up. */
    backed: false,
    writes,
    events,
    messages,
    client: undefined as unknown as DormouseClient,
    /** Writes since the last take(), joined as one hex string per write. */
    take(): string[] {
      return writes.splice(0, writes.length);
    },
    /** All written bytes since the last take(), as one hex string. */
    takeAll(): string {
      return writes.splice(0, writes.length).join(' ');
    },
    kinds(kind: ClientEvent) {
      return events.filter((e) => e.kind === kind);
    },
    feed(h: string, now = 0) {
      r.client.receive(bytes(h), now);
    },
  };
  r.client = new DormouseClient(
    { clientId: 'dev1', keepalive: 60, ...options },
    {
      send: (b) => {
        writes.push(hex(b));
        return !r.backed;
      },
      open: () => r.opened++,
      close: () => r.closed++,
      message: (p: PublishPacket) =>
        messages.push({ topic: p.topic, payload: new TextDecoder().decode(p.payload), qos: p.qos, dup: p.dup, packetId: p.packetId }),
      event: (kind, a, b, detail) => events.push({ kind, a, b, detail }),
    },
    store,
    random,
  );
  return r;
}

const T = ascii('sensors/t1');
const P = ascii('21.5');
/** The reference message of FACTS.md as bytes: topic sensors/t1, payload 21.5. */
export function refPublish(qos: 0 | 1 | 2, packetId = 0, dup = false, v5 = false): string {
  const first = (0x30 | (dup ? 8 : 0) | (qos << 1)).toString(16);
  const len = 2 + 10 + (qos ? 2 : 0) + 4 + (v5 ? 1 : 0);
  const id = qos ? ` ${(packetId >> 8).toString(16).padStart(2, '0')} ${(packetId & 0xff).toString(16).padStart(2, '0')}` : '';
  return `${first} ${len.toString(16).padStart(2, '0')} 00 0a ${T}${id}${v5 ? ' 00' : ''} ${P}`;
}
export const payload = new TextEncoder().encode('21.5');
