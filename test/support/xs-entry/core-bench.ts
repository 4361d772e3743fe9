// Work units for the core benchmark, run both in Node and inside XS: a
// connected client with hooks that do nothing, and publish-to-completion
// cycles at QoS 1 (PUBLISH, PUBACK) and QoS 2 (PUBLISH, PUBREC, PUBREL sent, PUBCOMP).
import { DormouseClient } from '../../../modules/session/client.js';

let client: DormouseClient;
let lastId = 0;
const ack = new Uint8Array(4);
const payload = new Uint8Array([0x32, 0x31, 0x2e, 0x35]);
const opts1 = { qos: 1 as const };
const opts2 = { qos: 2 as const };

export function setup(): void {
  client = new DormouseClient(
    { clientId: 'bench', keepalive: 0 },
    {
      // The id the core just used is in the PUBLISH it wrote: remember it to ack it.
      send: (b: Uint8Array) => {
        if (b[0] >> 4 === 3) lastId = (b[14] << 8) | b[15];
      },
      open: () => {},
      close: () => {},
      message: () => {},
      event: () => {},
    },
    null,
    () => 0.5,
  );
  client.start(0);
  client.transportOpened(0);
  client.receive(new Uint8Array([0x20, 2, 0, 0]), 0);
}

function reply(type: number, id: number): void {
  ack[0] = type;
  ack[1] = 2;
  ack[2] = id >> 8;
  ack[3] = id & 0xff;
  client.receive(ack, 0);
}

/** n QoS 1 publishes, each acknowledged at once. */
export function cycles1(n: number): number {
  for (let i = 0; i < n; i++) {
    client.publish('sensors/t1', payload, opts1, 0);
    reply(0x40, lastId);
  }
  return client.session.live;
}

/** n QoS 2 publishes, each taken through PUBREC and PUBCOMP. */
export function cycles2(n: number): number {
  for (let i = 0; i < n; i++) {
    client.publish('sensors/t1', payload, opts2, 0);
    const id = lastId;
    reply(0x50, id);
    reply(0x70, id);
  }
  return client.session.live;
}

export function connectOnce(): number {
  const c = new DormouseClient({ clientId: 'bench2', keepalive: 60 }, { send() {}, open() {}, close() {}, message() {}, event() {} }, null, () => 0.5);
  c.start(0);
  c.transportOpened(0);
  c.receive(new Uint8Array([0x20, 2, 0, 0]), 0);
  return c.state;
}

const g = globalThis as Record<string, unknown>;
g.setup = setup;
g.cycles1 = cycles1;
g.cycles2 = cycles2;
g.connectOnce = connectOnce;
