// The publisher of bench:e2e's live part: a raw MQTT writer on one socket,
// the same for both measured subscribers, so what it costs the machine does
// not depend on which library is being measured, and it costs little (the
// CONNECT and PUBLISH bytes are built once, by Dormouse's codec; per message it
// only patches the packet id, and acks are parsed by their fixed header only).
// QoS 0 goes out in large writes as fast as the socket takes them; QoS 1 and
// 2 keep at most `window` messages unacknowledged, answering every PUBREC
// with a PUBREL, all the packets one read calls for in one write.

import net from 'node:net';
import { encode, encodedLength, encodePublish, publishLayout, publishLength } from '../modules/mqtt/encode.js';
import { PacketType, ProtocolVersion, type Packet } from '../modules/mqtt/types.js';

export interface StreamOptions {
  port: number;
  version: 4 | 5;
  qos: 0 | 1 | 2;
  topic: string;
  n: number;
  payloadBytes: number;
  window: number;
  clientId: string;
}

/** One packet as Dormouse's codec encodes it (built once per stream, not per message). */
function packetBytes(p: Packet, version: ProtocolVersion): Buffer {
  const bytes = Buffer.alloc(encodedLength(p, version));
  encode(p, version, bytes, 0);
  return bytes;
}

function connectPacket(o: StreamOptions): Buffer {
  return packetBytes({ type: PacketType.Connect, protocolVersion: o.version, clientId: o.clientId, clean: true, keepalive: 60 }, o.version);
}

/** One PUBLISH, and where its packet id sits (-1 at QoS 0). */
function publishPacket(o: StreamOptions): { bytes: Buffer; idAt: number } {
  const payload = new Uint8Array(o.payloadBytes).fill(0x61);
  const bytes = Buffer.alloc(publishLength(o.version, o.topic, payload.length, o.qos, null));
  encodePublish(bytes, 0, o.version, o.topic, payload, o.qos, false, false, o.qos > 0 ? 1 : 0, null);
  const layout = new Int32Array(2);
  publishLayout(bytes, 0, o.version, layout);
  return { bytes, idAt: layout[0]! };
}

/**
 * Connects, streams n messages, and resolves once the last one is acknowledged
 * (QoS 0: handed to the socket) with the ms from CONNACK to then.
 */
export function stream(o: StreamOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: o.port });
    sock.setNoDelay(true);
    const { bytes: pub, idAt } = publishPacket(o);
    let connected = false;
    let t0 = 0;
    let sent = 0;
    let completed = 0;
    let outstanding = 0;
    let nextId = 0;
    let pending: Buffer | null = null; // bytes of an unfinished packet from the last read
    let ended = false;
    const fail = (e: Error) => { sock.destroy(); reject(e); };
    const finish = () => {
      if (ended) return;
      ended = true;
      const ms = performance.now() - t0;
      sock.end(Buffer.from([0xe0, 0]), () => { sock.destroy(); resolve(ms); });
    };

    // QoS 0: the whole run as fast as the socket takes it, 256 packets a write.
    const pumpQos0 = () => {
      const per = 256;
      while (sent < o.n) {
        const k = Math.min(per, o.n - sent);
        const chunk = Buffer.allocUnsafe(k * pub.length);
        for (let i = 0; i < k; i++) pub.copy(chunk, i * pub.length);
        sent += k;
        if (!sock.write(chunk)) {
          sock.once('drain', pumpQos0);
          return;
        }
      }
      finish();
    };

    // QoS 1/2: fill the window; the packets of one turn go out in one write.
    const out: Buffer[] = [];
    const refill = () => {
      while (outstanding < o.window && sent < o.n) {
        const p = Buffer.from(pub);
        nextId = (nextId % 65535) + 1;
        p.writeUInt16BE(nextId, idAt);
        out.push(p);
        sent++;
        outstanding++;
      }
    };
    const flush = () => {
      if (out.length === 0) return;
      sock.write(out.length === 1 ? out[0]! : Buffer.concat(out));
      out.length = 0;
    };

    const onPacket = (type: number, body: Buffer) => {
      if (!connected) {
        if (type !== 2) return fail(new Error(`stream: expected CONNACK, got packet type ${type}`));
        if (body[1] !== 0) return fail(new Error(`stream: CONNACK refused, code ${body[1]}`));
        connected = true;
        t0 = performance.now();
        if (o.qos === 0) return pumpQos0();
        refill();
        return;
      }
      const id = body.readUInt16BE(0);
      if (type === 4 || type === 7) { // PUBACK (QoS 1), PUBCOMP (QoS 2): a slot free
        outstanding--;
        if (++completed === o.n) return;
        refill();
      } else if (type === 5) { // PUBREC: release it
        out.push(Buffer.from([0x62, 2, id >> 8, id & 0xff]));
      } else {
        fail(new Error(`stream: unexpected packet type ${type}`));
      }
    };

    sock.on('connect', () => sock.write(connectPacket(o)));
    sock.on('data', (d: Buffer) => {
      const buf = pending ? Buffer.concat([pending, d]) : d;
      pending = null;
      let at = 0;
      while (at < buf.length) {
        // Fixed header: type, remaining length (variable byte integer).
        let len = 0, mul = 1, i = at + 1, done = false;
        while (i < buf.length && i < at + 5) {
          const b = buf[i++]!;
          len += (b & 0x7f) * mul;
          mul *= 128;
          if ((b & 0x80) === 0) { done = true; break; }
        }
        if (!done || i + len > buf.length) break;
        onPacket(buf[at]! >> 4, buf.subarray(i, i + len));
        at = i + len;
      }
      if (at < buf.length) pending = Buffer.from(buf.subarray(at));
      flush();
      if (o.qos > 0 && completed === o.n) finish();
    });
    sock.on('error', fail);
    sock.on('close', () => { if (o.qos > 0 ? completed < o.n : sent < o.n) reject(new Error(`stream: connection closed after ${completed} of ${o.n} acknowledged`)); });
  });
}
