// The world the example app runs in, inside XS: a virtual clock behind
// `timer` and Date.now, an in-memory `preference` and flash partition, and a TCP socket whose peer
// is the broker model (sim/broker-model.ts), so the app's whole wake cycle
// runs against a scripted broker with no host I/O.
import { FakeTimers, FakeNvs, FakeTcp, FakeFlash } from '../../../hosts/moddable/fakes.js';
import { BrokerModel, type BrokerConnection } from '../../../../sim/broker-model.js';
import { PacketDecoder, DECODE_PACKET } from '../../../../modules/mqtt/decode.js';
import type { TcpSocketOptions } from '../../../../hosts/moddable/platform.js';

export const timers = new FakeTimers();
export const preference = new FakeNvs();
/** The "dormouse" flash partition, with NOR flash's rules (as on lin, where mcsim has the file-backed stand-in). */
export const flash = new FakeFlash();
export const broker = new BrokerModel();
export const packets: string[] = [];
export const traces: string[] = [];
export const readings: string[] = [];
export let sleeps = 0;
export const wifiLog = { joins: [] as { bssid?: string; channel?: number }[], disconnects: 0 };
/** Names looked up through `net`. */
export const lookups: string[] = [];

const EPOCH = 1_800_000_000_000;
Date.now = () => EPOCH + timers.now;
(globalThis as { trace?: (s: string) => void }).trace = (s: string) => void traces.push(s.trim());
broker.onMessage = (m) => {
  let s = '';
  for (let i = 0; i < m.payload.length; i++) s += String.fromCharCode(m.payload[i]);
  readings.push(`${m.topic} ${s}`);
};

const NAMES = ['', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];

function logPackets(d: PacketDecoder, dir: string, bytes: Uint8Array): void {
  d.feed(bytes);
  while (d.next() === DECODE_PACKET) packets.push(`${dir} ${NAMES[d.packet!.type]}`);
}

/** `embedded:io/socket/tcp` whose peer is the broker model, 2 ms away. */
export class ModelTcp extends FakeTcp {
  #conn: BrokerConnection;
  #up = new PacketDecoder({ version: 5, bufferSize: 4096 });
  #down = new PacketDecoder({ version: 5, bufferSize: 4096 });
  constructor(options: TcpSocketOptions) {
    super(options);
    this.#conn = broker.accept({
      send: (b) => {
        const copy = b.slice();
        logPackets(this.#down, 'broker →', copy);
        timers.set(() => {
          if (!this.closed) this.deliver(copy);
        }, 2);
      },
      close: () => timers.set(() => this.fail(), 2),
    });
    timers.set(() => this.connect(8192), 2);
  }
  override write(bytes: Uint8Array): number {
    const room = super.write(bytes);
    logPackets(this.#up, 'device →', bytes);
    const copy = bytes.slice();
    timers.set(() => {
      this.#conn.receive(copy, timers.now);
      this.drain(copy.length);
    }, 2);
    return room;
  }
  override close(): void {
    if (!this.closed) this.#conn.clientGone(timers.now);
    super.close();
  }
}

export function countSleep(): void {
  sleeps++;
}
