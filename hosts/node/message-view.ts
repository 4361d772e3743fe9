// A received message without a copy: the 'messageView' event (issue 14).
//
// 'message' hands the listener a Buffer of its own per message: one object and
// the payload's bytes, which is what an application that keeps the payload
// needs. An application that only reads it (parses a number, compares a
// command, forwards a few bytes) can listen for 'messageView' instead: one
// object per client, filled before each call with ranges of the receive
// buffer, and emptied after it. Nothing is allocated per message unless the
// listener asks for it (payload, text(), copyPayload()).

import type { Properties, QoS } from '../../modules/mqtt/types.js';

const EMPTY = new Uint8Array(0);

/**
 * bytes[from .. to) as a Buffer of its own (a small one from Node's pool):
 * what the 'message' event delivers and MessageView.copyPayload() returns.
 * Short ranges are copied by a loop, which costs less than a view for set().
 */
export function copyRange(bytes: Uint8Array, from: number, to: number): Buffer {
  const n = to - from;
  const out = Buffer.allocUnsafe(n);
  if (n <= 64) for (let i = 0; i < n; i++) out[i] = bytes[from + i]!;
  else out.set(bytes.subarray(from, to));
  return out;
}

/**
 * A received message, valid only during the 'messageView' listener's call.
 * `bytes` is the client's receive buffer (or a large message's assembled
 * bytes): the payload is `bytes[payloadStart .. payloadEnd)`. After the call
 * the view is emptied (an empty topic and payload), so a view kept by mistake
 * reads as empty rather than as a later message's bytes. Copy what you keep.
 */
export class MessageView {
  topic = '';
  qos: QoS = 0;
  retain = false;
  dup = false;
  /** MQTT 5 properties the message carried, undefined when none. */
  properties: Properties | undefined = undefined;
  bytes: Uint8Array = EMPTY;
  payloadStart = 0;
  payloadEnd = 0;

  get payloadLength(): number {
    return this.payloadEnd - this.payloadStart;
  }

  /** The payload as a Buffer over the receive buffer (no copy; one view object): valid during the call only. */
  get payload(): Buffer {
    const b = this.bytes;
    return Buffer.from(b.buffer, b.byteOffset + this.payloadStart, this.payloadEnd - this.payloadStart);
  }

  /** The payload as a Buffer of its own, kept after the call. */
  copyPayload(): Buffer {
    return copyRange(this.bytes, this.payloadStart, this.payloadEnd);
  }

  /** The payload decoded as UTF-8 (a string of its own; malformed bytes become U+FFFD). */
  text(): string {
    const b = this.bytes;
    return Buffer.prototype.utf8Slice.call(b, this.payloadStart, this.payloadEnd) as string;
  }

  /** Fills the view from a message's ranges (the host, before the listener's call). */
  set(topic: string, qos: QoS, retain: boolean, dup: boolean, properties: Properties | undefined, bytes: Uint8Array, start: number, end: number): void {
    this.topic = topic;
    this.qos = qos;
    this.retain = retain;
    this.dup = dup;
    this.properties = properties;
    this.bytes = bytes;
    this.payloadStart = start;
    this.payloadEnd = end;
  }

  /** Empties the view (the host, after the listener's call). */
  clear(): void {
    this.set('', 0, false, false, undefined, EMPTY, 0, 0);
  }
}
