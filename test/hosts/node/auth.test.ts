// MQTT 5 enhanced authentication through the Node host: a scripted broker on
// 127.0.0.1 that runs a real SCRAM-SHA-256 exchange (node:crypto, in
// test/support/scram.ts) against the application's `authenticate` handler.
// mosquitto and aedes have no enhanced authentication without plugins.
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { connect, type AuthStep, type NodeClient } from '../../../hosts/node/client.js';
import { PacketDecoder, DECODE_PACKET } from '../../../modules/mqtt/decode.js';
import { encode } from '../../../modules/mqtt/encode.js';
import { PacketType, ProtocolVersion, type Packet } from '../../../modules/mqtt/types.js';
import { scramClient, scramServer } from '../../support/scram.js';

const METHOD = 'SCRAM-SHA-256';
const NAMES = ['', 'Connect', 'Connack', 'Publish', 'Puback', 'Pubrec', 'Pubrel', 'Pubcomp', 'Subscribe', 'Suback', 'Unsubscribe', 'Unsuback', 'Pingreq', 'Pingresp', 'Disconnect', 'Auth'];
const once = <T extends unknown[]>(em: { once(e: string, f: (...a: T) => void): unknown }, ev: string) =>
  new Promise<T>((resolve) => em.once(ev, (...a: T) => resolve(a)));

interface Broker {
  url: string;
  /** Packet types each connection received, in order. */
  seen: string[];
  close(): Promise<void>;
}

/** A broker that knows one user and SCRAM-SHA-256, and answers PUBLISH QoS 1. `forge` sends a wrong server signature. */
async function scramBroker(opts: { password: string; forge?: boolean }): Promise<Broker> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    const d = new PacketDecoder({ version: ProtocolVersion.V5 });
    let scram = scramServer(opts.password, randomBytes(16), 4096, randomBytes(12).toString('base64'));
    const send = (p: Packet) => {
      const out = new Uint8Array(1024);
      sock.write(out.subarray(0, encode(p, ProtocolVersion.V5, out, 0)));
    };
    const challenge = (data: Uint8Array | undefined) =>
      send({ type: PacketType.Auth, reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: scram.first(data!) } });
    let reauth = false;
    sock.on('data', (chunk) => {
      d.feed(chunk);
      while (d.next() === DECODE_PACKET) {
        const p = d.packet!;
        seen.push(NAMES[p.type]);
        if (p.type === PacketType.Connect) {
          if (p.properties?.authenticationMethod !== METHOD) return send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0x8c });
          challenge(p.properties.authenticationData);
        } else if (p.type === PacketType.Auth && p.reasonCode === 0x19) {
          reauth = true;
          scram = scramServer(opts.password, randomBytes(16), 4096, randomBytes(12).toString('base64'));
          challenge(p.properties?.authenticationData);
        } else if (p.type === PacketType.Auth && p.reasonCode === 0x18) {
          const fin = scram.final(p.properties!.authenticationData!);
          if (!fin) {
            if (reauth) send({ type: PacketType.Disconnect, reasonCode: 0x87 });
            else send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0x87 });
            sock.end();
            return;
          }
          const data = opts.forge ? new TextEncoder().encode('v=Zm9yZ2VkIHNpZ25hdHVyZQ==') : fin;
          const properties = { authenticationMethod: METHOD, authenticationData: data };
          if (reauth) send({ type: PacketType.Auth, reasonCode: 0, properties });
          else send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0, properties });
          reauth = false;
        } else if (p.type === PacketType.Publish && p.qos === 1) {
          send({ type: PacketType.Puback, packetId: p.packetId, reasonCode: 0 });
        } else if (p.type === PacketType.Disconnect) {
          sock.end();
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The application's side: a fresh nonce for each CONNECT, the proof for each challenge, the server signature checked. */
function scramApp(password: string) {
  let current = scramClient('user', password, randomBytes(18).toString('base64'));
  const steps: Array<Pick<AuthStep, 'reasonCode' | 'reauthentication'>> = [];
  const app = {
    steps,
    /** Server signatures checked and found right. */
    verified: 0,
    data: () => {
      current = scramClient('user', password, randomBytes(18).toString('base64'));
      return current.first;
    },
    reauthData: () => {
      current = scramClient('user', password, randomBytes(18).toString('base64'));
      return current.first;
    },
    authenticate: async (step: AuthStep) => {
      steps.push({ reasonCode: step.reasonCode, reauthentication: step.reauthentication });
      expect(step.method).toBe(METHOD);
      await new Promise((r) => setTimeout(r, 5)); // an asynchronous handler, as a real one may be
      if (step.reasonCode === 0x18) return current.final(step.data!);
      if (!current.verify(step.data!)) throw new Error('the server signature does not match: not the server we know');
      app.verified++;
      return undefined;
    },
  };
  return app;
}

describe('MQTT 5 enhanced authentication in the Node host (SCRAM-SHA-256 against a scripted broker)', () => {
  let broker: Broker | null = null;
  let client: NodeClient | null = null;
  afterEach(async () => {
    await client?.end(true);
    await broker?.close();
    client = broker = null;
  });

  it('connects through a continue round, checks the server signature, publishes, and re-authenticates on the open connection', async () => {
    broker = await scramBroker({ password: 'pencil' });
    const app = scramApp('pencil');
    client = connect(broker.url, {
      protocolVersion: 5,
      clientId: 'scram-1',
      authentication: { method: METHOD, data: app.data },
      authenticate: app.authenticate,
    });
    await once(client, 'connect');
    await (await client.publish('a/b', 'x', { qos: 1 })).acknowledged;
    // 'connect' comes at CONNACK; the handler checks the server's signature in its own time.
    while (app.verified < 1) await new Promise((r) => setTimeout(r, 5));
    await client.reauthenticate(app.reauthData());
    expect(app.verified).toBe(2);
    await (await client.publish('a/b', 'y', { qos: 1 })).acknowledged;
    expect(app.steps).toEqual([
      { reasonCode: 0x18, reauthentication: false },
      { reasonCode: 0x00, reauthentication: false },
      { reasonCode: 0x18, reauthentication: true },
      { reasonCode: 0x00, reauthentication: true },
    ]);
    expect(broker.seen).toEqual(['Connect', 'Auth', 'Publish', 'Auth', 'Auth', 'Publish']);
    expect(client.connected).toBe(true);
  });

  it('a wrong password: the broker refuses the CONNECT (not authorized), reported as an error', async () => {
    broker = await scramBroker({ password: 'pencil' });
    const app = scramApp('wrong');
    client = connect(broker.url, { protocolVersion: 5, clientId: 'scram-2', authentication: { method: METHOD, data: app.data }, authenticate: app.authenticate });
    let connected = false;
    client.on('connect', () => { connected = true; });
    const [err] = await once<[Error & { code: number }]>(client, 'error');
    expect(err.message).toBe('connection refused: not authorized');
    expect(err.code).toBe(0x87);
    expect(connected).toBe(false);
  });

  it('a server that cannot prove it knows the password: the handler refuses, the client disconnects and says why', async () => {
    broker = await scramBroker({ password: 'pencil', forge: true });
    const app = scramApp('pencil');
    client = connect(broker.url, { protocolVersion: 5, clientId: 'scram-3', authentication: { method: METHOD, data: app.data }, authenticate: app.authenticate });
    client.on('connect', () => {});
    const [err] = await once<[Error]>(client, 'error');
    expect(err.message).toBe('authentication aborted: the server signature does not match: not the server we know');
    await new Promise((r) => setTimeout(r, 50));
    expect(client.connected).toBe(false);
    expect(broker.seen.at(-1)).toBe('Disconnect');
  });

  it('without a handler a continue round cannot be answered: an error, and the connection closes', async () => {
    broker = await scramBroker({ password: 'pencil' });
    client = connect(broker.url, { protocolVersion: 5, clientId: 'scram-4', properties: { authenticationMethod: METHOD, authenticationData: scramApp('pencil').data() } });
    const [err] = await once<[Error]>(client, 'error');
    expect(err.message).toMatch(/AUTH 0x18\) and no `authenticate` handler was given/);
  });
});
