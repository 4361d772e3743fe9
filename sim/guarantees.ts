// What the simulator checks: every QoS 1/2 message a device accepted (its
// publish returned a token) reached the broker, in order, and a QoS 2 message
// reached it once. Each message carries its device number and sequence number
// in the first 8 bytes of its payload. Per device: two growable bitmaps
// (received, dropped) and a few counters, so a fleet of 100,000 costs a few
// megabytes however long it runs.
//
// A message a declared policy dropped (outbox full, expiry, a clean session
// ended before its ack, the session-lost policy "discard") is a drop, not a
// loss. A message still held by the device when the run ends is pending.

export const enum Drop {
  OutboxFull = 0,
  Expired = 1,
  SessionLost = 2,
  CleanSessionEnded = 3,
  Refused = 4,
}
export const DROP_NAMES = ['outboxFull', 'expired', 'sessionLost', 'cleanSessionEnded', 'refusedByServer'] as const;

export interface GuaranteeReport {
  /** QoS 1/2 messages accepted by devices. */
  accepted: number;
  /** Acknowledged to the device (PUBACK / PUBCOMP). */
  acked: number;
  /** Distinct accepted messages the broker took. */
  delivered: number;
  /** Accepted, never at the broker, not dropped by a policy, not held by the device: a broken guarantee. */
  lost: number;
  /** Still held by a device at the end (not a loss). */
  pending: number;
  dropped: Record<(typeof DROP_NAMES)[number], number>;
  /** publish() refused the message (outbox full, policy reject or drop-newest): never accepted. */
  rejected: number;
  /** QoS 1 arrivals of a message already taken: allowed (at least once). */
  duplicatesQos1: number;
  /** QoS 2 arrivals of a message already taken, persistent sessions: a broken guarantee. */
  duplicatesQos2: number;
  /** QoS 2 arrivals again after a clean session was lost and the message republished: what clean sessions allow. */
  duplicatesQos2CleanSession: number;
  /** First arrivals with a lower sequence number than one already taken from the same device. */
  outOfOrder: number;
  /** QoS 0 messages sent and taken by the broker (no guarantee; for the loss rate). */
  qos0Sent: number;
  qos0Delivered: number;
  /** Human-readable list of what was broken (empty when all held). */
  violations: string[];
}

export class GuaranteeTracker {
  /** Sequence number of the next accepted message, per device. */
  readonly next: Uint32Array;
  readonly maxSeen: Int32Array;
  readonly clean: Uint8Array;
  readonly #recv: (Uint8Array | null)[];
  readonly #drop: (Uint8Array | null)[];
  accepted = 0;
  acked = 0;
  delivered = 0;
  rejected = 0;
  dupQ1 = 0;
  dupQ2 = 0;
  dupQ2Clean = 0;
  outOfOrder = 0;
  qos0Sent = 0;
  qos0Delivered = 0;
  readonly dropped = new Uint32Array(DROP_NAMES.length);

  constructor(readonly devices: number) {
    this.next = new Uint32Array(devices);
    this.maxSeen = new Int32Array(devices).fill(-1);
    this.clean = new Uint8Array(devices);
    this.#recv = new Array(devices).fill(null);
    this.#drop = new Array(devices).fill(null);
  }

  /** The device accepted a QoS 1/2 message; returns its sequence number. */
  accept(dev: number): number {
    this.accepted++;
    return this.next[dev]++;
  }

  drop(dev: number, seq: number, why: Drop): void {
    if (seq < 0 || seq >= this.next[dev]) return;
    const b = (this.#drop[dev] = grow(this.#drop[dev], seq));
    if (b[seq >> 3] & (1 << (seq & 7))) return;
    b[seq >> 3] |= 1 << (seq & 7);
    this.dropped[why]++;
  }

  /** The broker took a message from the device. */
  received(dev: number, seq: number, qos: number): void {
    if (dev < 0 || dev >= this.devices) return;
    if (qos === 0) {
      this.qos0Delivered++;
      return;
    }
    const b = (this.#recv[dev] = grow(this.#recv[dev], seq));
    const bit = 1 << (seq & 7);
    if (b[seq >> 3] & bit) {
      if (qos === 1) this.dupQ1++;
      else if (this.clean[dev]) this.dupQ2Clean++;
      else this.dupQ2++;
      return;
    }
    b[seq >> 3] |= bit;
    this.delivered++;
    if (seq < this.maxSeen[dev]) this.outOfOrder++;
    else this.maxSeen[dev] = seq;
  }

  isReceived(dev: number, seq: number): boolean {
    const b = this.#recv[dev];
    return b !== null && seq >> 3 < b.length && (b[seq >> 3] & (1 << (seq & 7))) !== 0;
  }

  isDropped(dev: number, seq: number): boolean {
    const b = this.#drop[dev];
    return b !== null && seq >> 3 < b.length && (b[seq >> 3] & (1 << (seq & 7))) !== 0;
  }

  /** Devices with accepted messages neither received nor dropped (only those need their session read). */
  *unresolved(): Generator<number> {
    for (let d = 0; d < this.devices; d++) {
      const n = this.next[d];
      for (let s = 0; s < n; s++) {
        if (!this.isReceived(d, s) && !this.isDropped(d, s)) {
          yield d;
          break;
        }
      }
    }
  }

  /**
   * The final tally. `held(dev)` gives the sequence numbers a device still
   * holds (read from its session); only asked for devices with unresolved messages.
   */
  report(held: (dev: number) => Iterable<number>): GuaranteeReport {
    let lost = 0;
    let pending = 0;
    const lostExamples: string[] = [];
    for (const d of Array.from(this.unresolved())) {
      const h = new Set(held(d));
      for (let s = 0; s < this.next[d]; s++) {
        if (this.isReceived(d, s) || this.isDropped(d, s)) continue;
        if (h.has(s)) pending++;
        else {
          lost++;
          if (lostExamples.length < 5) lostExamples.push(`device ${d} message ${s}`);
        }
      }
    }
    const violations: string[] = [];
    if (lost > 0) violations.push(`${lost} accepted QoS 1/2 message(s) lost (e.g. ${lostExamples.join(', ')})`);
    if (this.dupQ2 > 0) violations.push(`${this.dupQ2} QoS 2 message(s) delivered twice`);
    if (this.outOfOrder > 0) violations.push(`${this.outOfOrder} message(s) out of order`);
    const dropped = {} as GuaranteeReport['dropped'];
    DROP_NAMES.forEach((n, i) => (dropped[n] = this.dropped[i]));
    return {
      accepted: this.accepted,
      acked: this.acked,
      delivered: this.delivered,
      lost,
      pending,
      dropped,
      rejected: this.rejected,
      duplicatesQos1: this.dupQ1,
      duplicatesQos2: this.dupQ2,
      duplicatesQos2CleanSession: this.dupQ2Clean,
      outOfOrder: this.outOfOrder,
      qos0Sent: this.qos0Sent,
      qos0Delivered: this.qos0Delivered,
      violations,
    };
  }
}

function grow(b: Uint8Array | null, seq: number): Uint8Array {
  const need = (seq >> 3) + 1;
  if (b !== null && b.length >= need) return b;
  const n = new Uint8Array(Math.max(need, b === null ? 4 : b.length * 2));
  if (b !== null) n.set(b);
  return n;
}

/** The first 8 bytes of a tracked payload: device number and sequence number (big-endian). */
export function writeStamp(payload: Uint8Array, dev: number, seq: number): void {
  payload[0] = dev >>> 24;
  payload[1] = (dev >>> 16) & 0xff;
  payload[2] = (dev >>> 8) & 0xff;
  payload[3] = dev & 0xff;
  payload[4] = seq >>> 24;
  payload[5] = (seq >>> 16) & 0xff;
  payload[6] = (seq >>> 8) & 0xff;
  payload[7] = seq & 0xff;
}

export function readStamp(payload: Uint8Array): [dev: number, seq: number] {
  if (payload.length < 8) return [-1, -1];
  const dev = ((payload[0] << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]) >>> 0;
  const seq = ((payload[4] << 24) | (payload[5] << 16) | (payload[6] << 8) | payload[7]) >>> 0;
  return [dev, seq];
}
