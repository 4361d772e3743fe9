// The one home of session state: outgoing message records and their stored
// packets, packet ids, incoming QoS 2 ids and subscriptions. Every change to a
// message record goes through `transition`, whose rules are the table below.
// All storage is fixed at construction: three typed arrays the snapshot copies
// as they are, so nothing here allocates after the constructor.

/** Where an accepted message is in its life. */
export const enum RecordState {
  Free = 0,
  /** Accepted, stored, not yet sent (the outbox). */
  Queued = 1,
  /** PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2). */
  SentPublish = 2,
  /** PUBREL sent, waiting for PUBCOMP. */
  SentPubrel = 3,
}

/** What can happen to a record. */
export const enum RecordEvent {
  Send = 0,
  Puback = 1,
  Pubrec = 2,
  PubrecError = 3,
  Pubcomp = 4,
  Drop = 5,
  /** The broker lost the session: unacknowledged publishes go out again as new messages. */
  SessionLost = 6,
  /** A QoS 0 message left the outbox: nothing to wait for. */
  SentAtMostOnce = 7,
}

const EVENTS = 8;
const X = -1; // not allowed
// NEXT[state * EVENTS + event]: the state after `event`, or X.
//                 Send  Puback Pubrec PubrecErr Pubcomp Drop SessionLost SentQoS0
const NEXT = Object.freeze([
  /* Free        */ X, X, X, X, X, X, X, X,
  /* Queued      */ RecordState.SentPublish, X, X, X, X, RecordState.Free, RecordState.Queued, RecordState.Free,
  /* SentPublish */ X, RecordState.Free, RecordState.SentPubrel, RecordState.Free, X, X, RecordState.Queued, X,
  /* SentPubrel  */ X, X, X, X, RecordState.Free, X, RecordState.Free, X,
]);

// A record is WORDS consecutive u32 in `records`.
export const WORDS = 6;
const W_META = 0; // state (bits 0-3) | qos (bits 4-5) | resend flag (bit 6) | packet id (bits 16-31)
const W_TOKEN = 1; // the message's token, increasing in acceptance order
const W_SPAN = 2; // arena offset (bits 0-15) | length (bits 16-31)
const W_EXPIRES = 3; // session second at which it expires; 0 = never
const W_SENT = 4; // low 32 bits of the session millisecond it was first sent (time to ack)
const W_LAYOUT = 5; // packet id offset in the packet (bits 0-15) | expiry value offset (bits 16-31; 0 = none)

const FLAG_RESEND = 0x40;

export interface Capacities {
  /** Records that may be sent and unacknowledged at once. Default 16. */
  inflight: number;
  /** Records that may wait in the outbox. Default 16. */
  outbox: number;
  /** Bytes of stored PUBLISH packets, shared by inflight and outbox. Default 2048, at most 65535. */
  storeBytes: number;
  /** Incoming QoS 2 packet ids held until PUBREL. Default 16. */
  incomingQos2: number;
  /** Subscriptions. Default 8. */
  subscriptions: number;
  /** Bytes of subscription topic filters. Default 512. */
  subscriptionBytes: number;
  /**
   * Incoming QoS 2 ids remembered after their PUBREL, with a hash of the
   * message, to recognise a broker replaying a finished message (see
   * ClientOptions.guardReplayAfterPubrel). Default 0: off.
   */
  releasedQos2: number;
  /**
   * Runs of consecutive incoming QoS 2 ids held beyond incomingQos2, each
   * kept as (first id, count) in 4 bytes however long. Brokers number a
   * session's messages in sequence, so a backlog sent far ahead of its PUBRELs
   * (mosquitto 2.0 sends a queued 3.1.1 QoS 2 backlog almost whole) fits in
   * one run instead of filling the table. Not used with the replay guard (a run
   * keeps no message hashes). Default 4; 0: none.
   */
  incomingRuns: number;
}

export const DEFAULT_CAPACITIES: Readonly<Capacities> = Object.freeze({
  inflight: 16,
  outbox: 16,
  storeBytes: 2048,
  incomingQos2: 16,
  subscriptions: 8,
  subscriptionBytes: 512,
  releasedQos2: 0,
  incomingRuns: 4,
});

/** What removeIncoming did. */
export const enum Release {
  Removed = 0,
  NotHeld = 1,
  /** Inside a run, with no free run to split it into: kept. */
  NoRunFree = 2,
}

/** Subscription entry states. */
export const enum SubState {
  Free = 0,
  /** SUBSCRIBE to send or sent, SUBACK awaited. */
  PendingSubscribe = 1,
  Active = 2,
  /** UNSUBSCRIBE to send or sent, UNSUBACK awaited. */
  PendingUnsubscribe = 3,
}

// A subscription is SUB_WORDS u32 at `subsAt` in the 32-bit view.
export const SUB_WORDS = 2;
// word 0: offset (bits 0-15) | length (bits 16-31) into the topic filter bytes at subBytesAt
// word 1: state (bits 0-3) | requested options (bits 8-15) | granted code (bits 16-23)
//         | position in its pending SUBSCRIBE/UNSUBSCRIBE (bits 24-31: which reason code of the answer is its)
// packet ids of pending subscription packets live at subIdsAt, one word each.
// Several entries share a packet id when one packet carries several filters.

/** Bits of a released-ring id word: released on the current network connection; and its PUBCOMP not yet sent. */
const RELEASED_NOW = 0x10000;
const RELEASED_UNANSWERED = 0x20000;

export class SessionState {
  readonly caps: Readonly<Capacities>;
  // Two views hold every table, one 32-bit and one byte view: each typed array
  // view costs about 96 bytes of heap however small, so the tables are regions
  // of a view at the offsets below, not views of their own (16-bit ids sit in
  // 32-bit words: buffer bytes are cheaper than a view). A view is named after
  // the table at its start.
  /** The 32-bit view: records (index 0), then subs, the incoming id hash set, its hashes, the released ring, subscription packet ids. */
  readonly records: Uint32Array;
  /**
   * The byte view: the stored packets (index 0, caps.storeBytes), then topic
   * filter bytes, then the client's bytes (from `extraBytesIndex`).
   */
  readonly arena: Uint8Array;
  /** Where each subscription's SUB_WORDS words start in `records`. */
  readonly subsAt: number;
  /** The incoming id hash set in `records`: incomingSlots words (ids 1..65535, 0 free). */
  readonly incomingAt: number;
  /** With the replay guard: each held id's message hash in `records`, at incomingHashAt + its slot in the hash set. */
  readonly incomingHashAt: number;
  /** With the replay guard: a ring of (id, message hash) pairs in `records` released by PUBREL, oldest overwritten. */
  readonly releasedAt: number;
  /**
   * Runs of incoming ids beyond the hash set, one word each: first id (bits
   * 16-31) | count (bits 0-15; 0: a free run). Without the replay guard only.
   */
  readonly incomingRunsAt: number;
  /** Words at incomingRunsAt: caps.incomingRuns, or 0 with the replay guard (a run keeps no message hashes). */
  readonly incomingRunSlots: number;
  /** Packet ids of pending subscription packets in `records`, one per subscription. */
  readonly subIdsAt: number;
  /** Topic filter bytes in `arena`, caps.subscriptionBytes of them. */
  readonly subBytesAt: number;
  /** Slots of the incoming id hash set: a power of two. */
  readonly incomingSlots: number;
  /** Is the replay guard on (caps.releasedQos2 > 0)? */
  readonly replayGuard: boolean;
  /** First record slot in use; records are kept in acceptance order. */
  first = 0;
  /** Slots used from `first` on, holes included. */
  span = 0;
  /** Arena bytes in use run from byteStart to byteEnd, holes included. */
  byteStart = 0;
  byteEnd = 0;
  liveBytes = 0;
  queued = 0;
  inflight = 0;
  /** Next packet id to try, 1..65535. */
  nextPacketId = 1;
  /** Token of the next accepted message. */
  nextToken = 1;

  /** Incoming QoS 2 ids held until PUBREL, in the hash set at incomingAt (see hasIncoming). */
  incomingCount = 0;
  /** Incoming QoS 2 ids held in runs (incomingRunsAt), beyond the hash set. */
  incomingRunIds = 0;
  #shift: number;
  /** Pairs in the released ring, and the pair the next release overwrites. */
  releasedCount = 0;
  releasedNext = 0;
  /** Some release in the ring still has RELEASED_UNANSWERED. */
  #unanswered = false;

  subCount = 0;
  subBytesUsed = 0;

  /**
   * The one ArrayBuffer behind every table. A client puts its own fixed
   * buffers in it too (`extraWords` 32-bit words at byte `extraWordsAt`, then
   * `extraBytes` bytes at the end of `arena`, from its index `extraBytesIndex`):
   * each ArrayBuffer costs an object on the heap however small it is, and so
   * does each view.
   */
  get buffer(): ArrayBuffer {
    return this.records.buffer as ArrayBuffer;
  }
  get extraWordsAt(): number {
    return this.records.byteLength;
  }
  get extraBytesIndex(): number {
    return this.subBytesAt + this.caps.subscriptionBytes;
  }

  constructor(caps: Partial<Capacities> = {}, extraWords = 0, extraBytes = 0) {
    // A literal of every field, not a spread of two objects: V8 keeps all seven
    // in the object itself (a spread past its slack adds a property array).
    const d = DEFAULT_CAPACITIES;
    const c: Capacities = {
      inflight: caps.inflight ?? d.inflight,
      outbox: caps.outbox ?? d.outbox,
      storeBytes: caps.storeBytes ?? d.storeBytes,
      incomingQos2: caps.incomingQos2 ?? d.incomingQos2,
      subscriptions: caps.subscriptions ?? d.subscriptions,
      subscriptionBytes: caps.subscriptionBytes ?? d.subscriptionBytes,
      releasedQos2: caps.releasedQos2 ?? d.releasedQos2,
      incomingRuns: caps.incomingRuns ?? d.incomingRuns,
    };
    for (const k of Object.keys(DEFAULT_CAPACITIES) as (keyof Capacities)[]) {
      const min = k === 'releasedQos2' || k === 'incomingRuns' ? 0 : 1;
      if (!Number.isInteger(c[k]) || c[k] < min) throw new RangeError(`capacities.${k} must be a whole number >= ${min}`);
    }
    if (c.releasedQos2 > 65535) throw new RangeError('capacities.releasedQos2 must be at most 65535');
    if (c.incomingRuns > 256) throw new RangeError('capacities.incomingRuns must be at most 256');
    if (c.storeBytes > 65535) throw new RangeError('capacities.storeBytes must be at most 65535');
    if (c.incomingQos2 > 65535) throw new RangeError('capacities.incomingQos2 must be at most 65535 (there are no more packet ids)');
    if (c.subscriptionBytes > 65535) throw new RangeError('capacities.subscriptionBytes must be at most 65535');
    this.caps = Object.freeze(c);
    // Twice the capacity, rounded up to a power of two, keeps probe runs short.
    const bits = Math.max(2, 32 - Math.clz32(c.incomingQos2 * 2 - 1));
    this.#shift = 32 - bits;
    // Every table lives in one ArrayBuffer (one allocation, and fewer buffer
    // objects: each costs heap however small it is). The 32-bit tables come
    // first, then the client's words, the byte tables and the client's bytes,
    // so each view is aligned. The 32-bit view covers the session's tables
    // only; the byte view runs on over the client's bytes, and every write of
    // the session's into it is bounded by its own offsets.
    const guard = c.releasedQos2 > 0;
    this.replayGuard = guard;
    this.incomingSlots = 1 << bits;
    this.subsAt = (c.inflight + c.outbox) * WORDS;
    this.incomingAt = this.subsAt + c.subscriptions * SUB_WORDS;
    this.incomingHashAt = this.incomingAt + this.incomingSlots;
    this.releasedAt = this.incomingHashAt + (guard ? this.incomingSlots : 0);
    this.incomingRunsAt = this.releasedAt + c.releasedQos2 * 2;
    this.incomingRunSlots = guard ? 0 : c.incomingRuns;
    this.subIdsAt = this.incomingRunsAt + this.incomingRunSlots;
    const words = this.subIdsAt + c.subscriptions;
    this.subBytesAt = c.storeBytes;
    const bytes = this.subBytesAt + c.subscriptionBytes;
    const bytesAt = (words + extraWords) * 4;
    const buf = new ArrayBuffer(bytesAt + bytes + extraBytes);
    this.records = new Uint32Array(buf, 0, words);
    this.arena = new Uint8Array(buf, bytesAt, bytes + extraBytes);
  }

  get recordSlots(): number {
    return this.caps.inflight + this.caps.outbox;
  }
  get live(): number {
    return this.queued + this.inflight;
  }

  // ---- record fields -------------------------------------------------------
  state(i: number): RecordState {
    return (this.records[i * WORDS + W_META] & 0xf) as RecordState;
  }
  qos(i: number): number {
    return (this.records[i * WORDS + W_META] >>> 4) & 3;
  }
  packetId(i: number): number {
    return this.records[i * WORDS + W_META] >>> 16;
  }
  wasSent(i: number): boolean {
    return (this.records[i * WORDS + W_META] & FLAG_RESEND) !== 0;
  }
  token(i: number): number {
    return this.records[i * WORDS + W_TOKEN];
  }
  offset(i: number): number {
    return this.records[i * WORDS + W_SPAN] & 0xffff;
  }
  length(i: number): number {
    return this.records[i * WORDS + W_SPAN] >>> 16;
  }
  expiresAt(i: number): number {
    return this.records[i * WORDS + W_EXPIRES];
  }
  sentAt(i: number): number {
    return this.records[i * WORDS + W_SENT];
  }
  packetIdOffset(i: number): number {
    return this.records[i * WORDS + W_LAYOUT] & 0xffff;
  }
  expiryOffset(i: number): number {
    return this.records[i * WORDS + W_LAYOUT] >>> 16;
  }

  /**
   * Make room for a new record of `length` bytes at the end; returns the arena
   * offset to encode into, or -1 when the record slots or bytes are exhausted.
   * The caller then encodes and calls `commitAccept`.
   */
  reserve(length: number): number {
    if (this.live >= this.recordSlots || this.liveBytes + length > this.caps.storeBytes) return -1;
    if (this.first + this.span >= this.recordSlots || this.byteEnd + length > this.caps.storeBytes) this.compact();
    return this.byteEnd;
  }

  /** Append the record whose packet was just encoded at `reserve`'s offset. Returns its slot. */
  commitAccept(qos: number, length: number, expiresAt: number, packetIdOffset: number, expiryOffset: number): number {
    const i = this.first + this.span;
    const o = i * WORDS;
    const r = this.records;
    r[o + W_META] = RecordState.Queued | (qos << 4);
    r[o + W_TOKEN] = this.nextToken;
    this.nextToken = (this.nextToken + 1) >>> 0 || 1;
    r[o + W_SPAN] = this.byteEnd | (length << 16);
    r[o + W_EXPIRES] = expiresAt;
    r[o + W_SENT] = 0;
    r[o + W_LAYOUT] = packetIdOffset | (expiryOffset << 16);
    this.span++;
    this.byteEnd += length;
    this.liveBytes += length;
    this.queued++;
    return i;
  }

  /**
   * Apply `event` to record `i`. Returns false, changing nothing, when the
   * table does not allow it (a stray or repeated ack, say).
   */
  transition(i: number, event: RecordEvent, packetId = 0, now = 0): boolean {
    const o = i * WORDS;
    const meta = this.records[o + W_META];
    const from = meta & 0xf;
    const to = NEXT[from * EVENTS + event];
    if (to === X) return false;
    const wasInflight = from === RecordState.SentPublish || from === RecordState.SentPubrel;
    const isInflight = to === RecordState.SentPublish || to === RecordState.SentPubrel;
    if (from === RecordState.Queued) this.queued--;
    if (wasInflight) this.inflight--;
    if (to === RecordState.Queued) this.queued++;
    if (isInflight) this.inflight++;
    if (to === RecordState.Free) {
      this.records[o + W_META] = 0;
      this.liveBytes -= this.length(i);
      this.trimHead();
      return true;
    }
    let m = (meta & ~0xf) | to;
    if (event === RecordEvent.Send) {
      m = (m & 0xffff) | (packetId << 16);
      this.records[o + W_SENT] = now >>> 0;
    } else if (event === RecordEvent.SessionLost) {
      // Out again as a new message: a fresh packet id and no DUP [MQTT-3.3.1-1].
      m = (m & 0xffff & ~FLAG_RESEND);
    }
    this.records[o + W_META] = m;
    return true;
  }

  /** Mark that the record's PUBLISH has gone out once, so a later send sets DUP. */
  markSentOnce(i: number): void {
    this.records[i * WORDS + W_META] |= FLAG_RESEND;
  }

  /** Drop free slots at the head so the common in-order ack costs nothing. */
  private trimHead(): void {
    const r = this.records;
    while (this.span > 0 && (r[this.first * WORDS + W_META] & 0xf) === RecordState.Free) {
      const o = this.first * WORDS;
      this.byteStart = (r[o + W_SPAN] & 0xffff) + (r[o + W_SPAN] >>> 16);
      this.first++;
      this.span--;
    }
    if (this.span === 0) {
      this.first = 0;
      this.byteStart = 0;
      this.byteEnd = 0;
    }
  }

  /** Move live records and their bytes to the front, in order, closing holes. */
  compact(): void {
    const r = this.records;
    const a = this.arena;
    let to = 0;
    let bytes = 0;
    const end = this.first + this.span;
    for (let i = this.first; i < end; i++) {
      const o = i * WORDS;
      if ((r[o + W_META] & 0xf) === RecordState.Free) continue;
      const off = r[o + W_SPAN] & 0xffff;
      const len = r[o + W_SPAN] >>> 16;
      if (off !== bytes) a.copyWithin(bytes, off, off + len);
      const t = to * WORDS;
      if (t !== o) for (let w = 0; w < WORDS; w++) r[t + w] = r[o + w];
      r[t + W_SPAN] = bytes | (len << 16);
      bytes += len;
      to++;
    }
    for (let i = to; i < end; i++) r[i * WORDS + W_META] = 0;
    this.first = 0;
    this.span = to;
    this.byteStart = 0;
    this.byteEnd = bytes;
  }

  /** The slot holding a sent record with this packet id and state, or -1. */
  findSent(packetId: number, state: RecordState): number {
    const r = this.records;
    const end = this.first + this.span;
    const want = state | (packetId << 16);
    for (let i = this.first; i < end; i++) {
      if ((r[i * WORDS + W_META] & 0xffff000f) === want) return i;
    }
    return -1;
  }

  /** The oldest queued record, or -1. */
  firstQueued(): number {
    if (this.queued === 0) return -1;
    const r = this.records;
    const end = this.first + this.span;
    for (let i = this.first; i < end; i++) if ((r[i * WORDS + W_META] & 0xf) === RecordState.Queued) return i;
    return -1;
  }

  /** A packet id no sent record and no pending subscription packet holds. */
  allocatePacketId(): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.packetIdInUse(id)) return id;
    }
    return 0; // cannot happen with fewer than 65535 records
  }

  packetIdInUse(id: number): boolean {
    const r = this.records;
    const end = this.first + this.span;
    for (let i = this.first; i < end; i++) {
      const m = r[i * WORDS + W_META];
      const s = m & 0xf;
      if ((s === RecordState.SentPublish || s === RecordState.SentPubrel) && m >>> 16 === id) return true;
    }
    for (let s = 0; s < this.subCount; s++) if (this.records[this.subIdsAt + s] === id) return true;
    return false;
  }

  // ---- incoming QoS 2 ------------------------------------------------------
  // An open-addressing hash set of packet ids (1..65535; 0 marks a free slot)
  // with linear probing and backward-shift deletion: constant time however
  // many ids a large table holds, and still one typed array region.

  #slot(id: number): number {
    return Math.imul(id, 0x9e3779b1) >>> this.#shift;
  }

  hasIncoming(id: number): boolean {
    return this.#inSet(id) || (this.incomingRunIds > 0 && this.#runOf(id) >= 0);
  }

  /** Incoming QoS 2 ids held, in the hash set and in runs. */
  get incomingHeld(): number {
    return this.incomingCount + this.incomingRunIds;
  }

  /** Could a new id be held now (in the hash set, or in a free run)? */
  get incomingRoom(): boolean {
    return this.incomingCount < this.caps.incomingQos2 || (this.incomingHeld < RUN_IDS_LIMIT && this.#freeRun() >= 0);
  }

  /**
   * Hold a new incoming id anywhere: extending a run it continues, else in
   * the hash set, else as a new run. False when there is no room.
   */
  addIncomingAny(id: number, hash = 0): boolean {
    if (this.incomingRunSlots > 0) {
      if (this.incomingRunIds > 0 && this.#runOf(id) >= 0) return true;
      // Past half the id space in use, a broker's next ids come round to held
      // ones: mosquitto 2.0 sends a queued backlog of over 65535 messages whole,
      // ids repeating (a new message under an id not yet released was seen:
      // suppressed as a resend, 30,097 of 100,000 lost). Taking no more then (the
      // caller holds them back, and reconnects) keeps every held id unique.
      if (this.incomingHeld >= RUN_IDS_LIMIT) return this.addIncoming(id, hash);
      if (this.incomingRunIds > 0) {
        const t = this.records;
        const end = this.incomingRunsAt + this.incomingRunSlots;
        for (let k = this.incomingRunsAt; k < end; k++) {
          const w = t[k];
          const n = w & 0xffff;
          if (n !== 0 && n < 0xffff && nextId(w >>> 16, n) === id && !this.#inSet(id)) {
            t[k] = w + 1;
            this.incomingRunIds++;
            return true;
          }
        }
      }
      if (this.addIncoming(id, hash)) return true;
      const k = this.#freeRun();
      if (k < 0) return false;
      this.records[k] = ((id << 16) | 1) >>> 0;
      this.incomingRunIds++;
      return true;
    }
    return this.addIncoming(id, hash);
  }

  #inSet(id: number): boolean {
    const t = this.records;
    const at = this.incomingAt;
    const mask = this.incomingSlots - 1;
    for (let i = this.#slot(id); ; i = (i + 1) & mask) {
      const v = t[at + i];
      if (v === id) return true;
      if (v === 0) return false;
    }
  }

  /** The index in `records` of the run holding `id`, or -1. */
  #runOf(id: number): number {
    const t = this.records;
    const end = this.incomingRunsAt + this.incomingRunSlots;
    for (let k = this.incomingRunsAt; k < end; k++) {
      const w = t[k];
      if ((w & 0xffff) !== 0 && idDistance(w >>> 16, id) < (w & 0xffff)) return k;
    }
    return -1;
  }

  #freeRun(): number {
    const t = this.records;
    const end = this.incomingRunsAt + this.incomingRunSlots;
    for (let k = this.incomingRunsAt; k < end; k++) if ((t[k] & 0xffff) === 0) return k;
    return -1;
  }

  /** Remove `id` from its run, splitting the run when `id` lies inside it (see removeIncoming). */
  #removeFromRun(id: number): Release {
    const k = this.#runOf(id);
    if (k < 0) return Release.NotHeld;
    const t = this.records;
    const w = t[k];
    const first = w >>> 16;
    const n = w & 0xffff;
    const d = idDistance(first, id);
    if (d === 0) t[k] = n === 1 ? 0 : ((nextId(first, 1) << 16) | (n - 1)) >>> 0;
    else if (d === n - 1) t[k] = w - 1;
    else {
      const f = this.#freeRun();
      if (f < 0) return Release.NoRunFree;
      t[k] = ((first << 16) | d) >>> 0;
      t[f] = ((nextId(id, 1) << 16) | (n - d - 1)) >>> 0;
    }
    this.incomingRunIds--;
    return Release.Removed;
  }

  /** Returns false when the id is new and the table already holds its capacity. */
  addIncoming(id: number, hash = 0): boolean {
    const t = this.records;
    const at = this.incomingAt;
    const mask = this.incomingSlots - 1;
    let i = this.#slot(id);
    while (t[at + i] !== 0) {
      if (t[at + i] === id) return true;
      i = (i + 1) & mask;
    }
    if (this.incomingCount >= this.caps.incomingQos2) return false;
    t[at + i] = id;
    if (this.replayGuard) t[this.incomingHashAt + i] = hash;
    this.incomingCount++;
    return true;
  }

  /**
   * Release `id`. NotHeld: no such id. NoRunFree: it lies inside a run (not
   * at either end) and no free run is left to split it into two, which only a
   * broker sending PUBRELs out of order [MQTT-4.6.0-3] with every run in use
   * brings about; nothing is changed then.
   */
  removeIncoming(id: number): Release {
    const t = this.records;
    const at = this.incomingAt;
    const mask = this.incomingSlots - 1;
    let i = this.#slot(id);
    for (;;) {
      if (t[at + i] === 0) return this.incomingRunIds > 0 ? this.#removeFromRun(id) : Release.NotHeld;
      if (t[at + i] === id) break;
      i = (i + 1) & mask;
    }
    const guard = this.replayGuard;
    const ha = this.incomingHashAt;
    if (guard) this.#remember(id, t[ha + i]);
    // Shift later members of the probe run back so every id stays reachable.
    for (let j = (i + 1) & mask; t[at + j] !== 0; j = (j + 1) & mask) {
      const home = this.#slot(t[at + j]);
      if (((j - home) & mask) >= ((j - i) & mask)) {
        t[at + i] = t[at + j];
        if (guard) t[ha + i] = t[ha + j];
        i = j;
      }
    }
    t[at + i] = 0;
    this.incomingCount--;
    return Release.Removed;
  }

  #remember(id: number, hash: number): void {
    const r = this.records;
    const at = this.releasedAt + this.releasedNext * 2;
    const n = this.caps.releasedQos2;
    this.forgetReleased(id);
    r[at] = id | RELEASED_NOW | RELEASED_UNANSWERED;
    this.#unanswered = true;
    r[at + 1] = hash;
    this.releasedNext = (this.releasedNext + 1) % n;
    if (this.releasedCount < n) this.releasedCount++;
  }

  /** Was `id` released by a PUBREL for a message with this hash (and not reused since)? */
  isReleased(id: number, hash: number): boolean {
    const r = this.records;
    const end = this.releasedAt + this.caps.releasedQos2 * 2;
    for (let k = this.releasedAt; k < end; k += 2) if ((r[k] & 0xffff) === id && r[k + 1] === hash) return true;
    return false;
  }

  /**
   * As isReleased, for a PUBLISH with DUP clear: only when the broker cannot
   * be reusing the id for a new message, because the release was on an
   * earlier network connection (see releasedNowEnded) or its PUBCOMP has not
   * even been sent yet (see releasedAnswered) [MQTT-2.2.1-3].
   */
  isReleasedNotReusable(id: number, hash: number): boolean {
    const r = this.records;
    const end = this.releasedAt + this.caps.releasedQos2 * 2;
    for (let k = this.releasedAt; k < end; k += 2) {
      const w = r[k];
      if ((w & 0xffff) === id && r[k + 1] === hash) return (w & RELEASED_NOW) === 0 || (w & RELEASED_UNANSWERED) !== 0;
    }
    return false;
  }

  /** A new network connection begins: every release so far happened on an earlier one. */
  releasedNowEnded(): void {
    const r = this.records;
    const end = this.releasedAt + this.caps.releasedQos2 * 2;
    for (let k = this.releasedAt; k < end; k += 2) r[k] &= 0xffff;
    this.#unanswered = false;
  }

  /** The PUBCOMPs for every release so far have been sent. */
  releasedAnswered(): void {
    if (!this.#unanswered) return;
    this.#unanswered = false;
    const r = this.records;
    const end = this.releasedAt + this.caps.releasedQos2 * 2;
    for (let k = this.releasedAt; k < end; k += 2) r[k] &= ~RELEASED_UNANSWERED;
  }

  /** The broker has used `id` for a new message: the old record no longer applies. */
  forgetReleased(id: number): void {
    const r = this.records;
    const end = this.releasedAt + this.caps.releasedQos2 * 2;
    for (let k = this.releasedAt; k < end; k += 2) if ((r[k] & 0xffff) === id) r[k] = 0;
  }

  /** Every held incoming id (the hash set's, then each run's) into `out`; returns how many. */
  incomingIds(out: Uint16Array | number[]): number {
    let n = 0;
    const t = this.records;
    const end = this.incomingAt + this.incomingSlots;
    for (let i = this.incomingAt; i < end; i++) if (t[i] !== 0) out[n++] = t[i];
    if (this.incomingRunIds > 0) {
      const runsEnd = this.incomingRunsAt + this.caps.incomingRuns;
      for (let k = this.incomingRunsAt; k < runsEnd; k++) {
        const first = t[k] >>> 16;
        for (let d = 0, c = t[k] & 0xffff; d < c; d++) out[n++] = nextId(first, d);
      }
    }
    return n;
  }

  clearIncoming(): void {
    // The hash set, its hashes and the released ring, up to the subscription packet ids.
    this.records.fill(0, this.incomingAt, this.subIdsAt);
    this.incomingCount = 0;
    this.incomingRunIds = 0;
    this.releasedCount = 0;
    this.releasedNext = 0;
  }

  // ---- subscriptions -------------------------------------------------------
  subState(s: number): SubState {
    return (this.records[this.subsAt + s * SUB_WORDS + 1] & 0xf) as SubState;
  }
  subOptions(s: number): number {
    return (this.records[this.subsAt + s * SUB_WORDS + 1] >>> 8) & 0xff;
  }
  subGranted(s: number): number {
    return (this.records[this.subsAt + s * SUB_WORDS + 1] >>> 16) & 0xff;
  }
  /** The packet id of subscription `s`'s pending SUBSCRIBE or UNSUBSCRIBE; 0 = none sent on this connection. */
  subPacketId(s: number): number {
    return this.records[this.subIdsAt + s];
  }
  setSubPacketId(s: number, id: number): void {
    this.records[this.subIdsAt + s] = id;
  }
  /** Which reason code of its packet's SUBACK/UNSUBACK belongs to subscription `s` (0..255). */
  subPosition(s: number): number {
    return this.records[this.subsAt + s * SUB_WORDS + 1] >>> 24;
  }
  /** Subscription `s` is the `position`th filter of the packet with this id. */
  setSubPacket(s: number, id: number, position: number): void {
    this.records[this.subIdsAt + s] = id;
    const o = this.subsAt + s * SUB_WORDS + 1;
    this.records[o] = (this.records[o] & 0xffffff) | (position << 24);
  }
  subTopicBytes(s: number): Uint8Array {
    const w = this.records[this.subsAt + s * SUB_WORDS];
    const off = this.subBytesAt + (w & 0xffff);
    return this.arena.subarray(off, off + (w >>> 16));
  }
  findSub(topic: Uint8Array): number {
    const r = this.records;
    const b = this.arena;
    for (let s = 0; s < this.subCount; s++) {
      const w = r[this.subsAt + s * SUB_WORDS];
      const off = this.subBytesAt + (w & 0xffff);
      const len = w >>> 16;
      if (len !== topic.length) continue;
      let k = 0;
      while (k < len && b[off + k] === topic[k]) k++;
      if (k === len) return s;
    }
    return -1;
  }
  findSubByPacketId(id: number): number {
    const ids = this.records;
    const at = this.subIdsAt;
    for (let s = 0; s < this.subCount; s++) if (ids[at + s] === id) return s;
    return -1;
  }
  /** Adds or updates a subscription entry; -1 when full. */
  putSub(topic: Uint8Array, options: number): number {
    const r = this.records;
    let s = this.findSub(topic);
    if (s < 0) {
      if (this.subCount >= this.caps.subscriptions || this.subBytesUsed + topic.length > this.caps.subscriptionBytes) return -1;
      s = this.subCount++;
      this.arena.set(topic, this.subBytesAt + this.subBytesUsed);
      r[this.subsAt + s * SUB_WORDS] = this.subBytesUsed | (topic.length << 16);
      this.subBytesUsed += topic.length;
    }
    r[this.subsAt + s * SUB_WORDS + 1] = SubState.PendingSubscribe | (options << 8);
    r[this.subIdsAt + s] = 0;
    return s;
  }
  setSubState(s: number, state: SubState, granted = this.subGranted(s)): void {
    const o = this.subsAt + s * SUB_WORDS + 1;
    this.records[o] = state | (this.records[o] & 0xff00) | (granted << 16);
  }
  removeSub(s: number): void {
    const r = this.records;
    const at = this.subsAt;
    const w = r[at + s * SUB_WORDS];
    const off = w & 0xffff;
    const len = w >>> 16;
    const b = this.subBytesAt;
    this.arena.copyWithin(b + off, b + off + len, b + this.subBytesUsed);
    this.subBytesUsed -= len;
    for (let k = s; k < this.subCount - 1; k++) {
      r[at + k * SUB_WORDS] = r[at + (k + 1) * SUB_WORDS];
      r[at + k * SUB_WORDS + 1] = r[at + (k + 1) * SUB_WORDS + 1];
      r[this.subIdsAt + k] = r[this.subIdsAt + k + 1];
    }
    this.subCount--;
    for (let k = 0; k < this.subCount; k++) {
      const x = r[at + k * SUB_WORDS];
      if ((x & 0xffff) > off) r[at + k * SUB_WORDS] = ((x & 0xffff) - len) | (x & 0xffff0000);
    }
  }

  /** Forget everything (a clean session). Tokens keep increasing. */
  clear(): void {
    this.records.fill(0, 0, this.subsAt);
    this.first = this.span = 0;
    this.byteStart = this.byteEnd = this.liveBytes = 0;
    this.queued = this.inflight = 0;
    this.clearIncoming();
    this.subCount = 0;
    this.subBytesUsed = 0;
  }
}

/** Most incoming ids held with runs: half the id space (see addIncomingAny). */
const RUN_IDS_LIMIT = 32768;

/** Packet ids run 1..65535 and wrap to 1 (0 is not an id): the id `n` after `id`. */
function nextId(id: number, n: number): number {
  return ((id - 1 + n) % 65535) + 1;
}

/** How many ids after `from` `id` comes, in 0..65534. */
function idDistance(from: number, id: number): number {
  return (id - from + 65535) % 65535;
}
