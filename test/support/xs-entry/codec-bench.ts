// Codec work units for the XS compute count (bench/codec.ts): the same
// operations as the Node benchmark's "ours" side, without mqtt-packet.
import { encodePublish, encodeAck } from '../../../modules/mqtt/encode.js';
import { PacketDecoder, DECODE_PACKET, type DecodedPublish } from '../../../modules/mqtt/decode.js';

const out = new Uint8Array(2048);
const SMALL = new Uint8Array([0x32, 0x31, 0x2e, 0x35]);
const V4 = 4;
let sink = 0;

function publishBytes(qos: 0 | 1): Uint8Array {
  const n = encodePublish(out, 0, V4, 'sensors/t1', SMALL, qos, false, false, qos ? 1 : 0, null);
  return out.slice(0, n);
}
const pub0 = publishBytes(0);
const pub1 = publishBytes(1);
const puback = new Uint8Array([0x40, 2, 0, 1]);
const decoder = new PacketDecoder({ version: V4, bufferSize: 2048 });

function decodeN(bytes: Uint8Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    decoder.feed(bytes);
    while (decoder.next() === DECODE_PACKET) {
      const p = decoder.packet as DecodedPublish;
      s = p.type === 3 ? (s + p.packetId + p.topic.length + (p.payloadEnd - p.payloadStart)) & 0xffff : (s + p.packetId) & 0xffff;
    }
  }
  return s;
}

const ops: Record<string, (n: number) => void> = {
  'publish-qos0-encode': (n) => { for (let i = 0; i < n; i++) sink ^= encodePublish(out, 0, V4, 'sensors/t1', SMALL, 0, false, false, 0, null); },
  'publish-qos1-encode': (n) => { for (let i = 0; i < n; i++) sink ^= encodePublish(out, 0, V4, 'sensors/t1', SMALL, 1, false, false, (i & 0xffff) | 1, null); },
  'publish-qos0-decode': (n) => { sink ^= decodeN(pub0, n); },
  'publish-qos1-decode': (n) => { sink ^= decodeN(pub1, n); },
  'puback-encode': (n) => { for (let i = 0; i < n; i++) sink ^= encodeAck(out, 0, V4, 4, (i & 0xffff) | 1, 0); },
  'puback-decode': (n) => { sink ^= decodeN(puback, n); },
};

(globalThis as Record<string, unknown>).codecOps = ops;
(globalThis as Record<string, unknown>).codecOpNames = Object.keys(ops);
