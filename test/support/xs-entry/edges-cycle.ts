// Issue 12's protocol edges on the client core, written once and run both in
// Node and inside the XS engine: a list in one SUBSCRIBE and one UNSUBSCRIBE,
// a SUBSCRIBE refused for the server's Maximum Packet Size, an error PUBACK
// that frees the window, a QoS 2 PUBLISH answered by PUBACK, an MQTT 5
// enhanced-authentication round and a 3.1.1 CONNACK to an MQTT 5 CONNECT.
import { DormouseClient } from '../../../modules/session/client.js';

import { bytes, hex } from './hex.js';

export function edgesCycle(): { writes: string[]; events: Array<Array<number | string>>; errors: string[] } {
  const writes: string[] = [];
  const events: Array<Array<number | string>> = [];
  const errors: string[] = [];
  const hooks = {
    send: (b: Uint8Array) => void writes.push(hex(b)),
    open: () => {},
    close: () => {},
    message: () => {},
    event: (k: number, a: number, b: number, detail?: unknown) =>
      void events.push([k, a, b, detail instanceof Uint8Array ? hex(detail) : typeof detail === 'string' ? detail : typeof detail === 'number' ? String(detail) : '']),
  };
  const payload = new Uint8Array([0x32, 0x31, 0x2e, 0x35]);
  const method = 'SCRAM-SHA-256';
  const c = new DormouseClient(
    { clientId: 'dev1', protocolVersion: 5, keepalive: 60, capacities: { inflight: 1 }, authentication: { method, initialData: () => bytes('6e2c2c6e3d75') } },
    hooks,
    null,
    () => 0.5,
  );
  c.start(0);
  c.transportOpened(0);
  // AUTH 0x18 with the method and data 01 02; then CONNACK with the method and maximum packet size 30.
  const m = '15000d' + Array.from(method, (ch) => ch.charCodeAt(0).toString(16)).join('');
  const packet = (first: string, body: string) => first + (body.length / 2).toString(16).padStart(2, '0') + body;
  const props = (p: string) => (p.length / 2).toString(16).padStart(2, '0') + p;
  c.receive(bytes(packet('f0', '18' + props(m + '16000201' + '02'))), 1);
  c.continueAuthentication(bytes('0304'), 2);
  c.receive(bytes(packet('20', '0000' + props(m + '270000001e'))), 3);
  try {
    c.subscribe('a'.repeat(31), 1, 4);
  } catch (e) {
    errors.push((e as Error).message);
  }
  c.subscribeMany([{ topic: 'a/+', qos: 1 }, { topic: 'b', qos: 2, noLocal: true }], 5);
  c.receive(bytes('9005000100' + '0101'), 6);
  c.unsubscribeMany(['a/+', 'never'], 7);
  c.receive(bytes('b0050002' + '00' + '0011'), 8);
  c.publish('sensors/t1', payload, { qos: 1 }, 9);
  c.publish('sensors/t1', payload, { qos: 2 }, 9);
  c.receive(bytes('4003000387'), 10); // refused: the QoS 2 message goes out at once
  c.receive(bytes('40020004'), 11); // and is answered with PUBACK: taken at QoS 1
  c.end(12);

  const v5 = new DormouseClient({ clientId: 'dev2', protocolVersion: 5 }, hooks, null, () => 0.5);
  v5.start(20);
  v5.transportOpened(20);
  v5.receive(bytes('20020001'), 21);
  return { writes, events, errors };
}

(globalThis as { edgesCycle?: typeof edgesCycle }).edgesCycle = edgesCycle;
