// Streaming packet decoder: bytes in, packets out, DECODE_NEED_DATA when the
// input runs short. A packet that lies whole inside the fed chunk is decoded in
// place; only an incomplete tail is copied, into one buffer allocated at
// construction. A remote protocol violation is a DecodeError carrying the MQTT
// reason code to disconnect with and the rule it broke.

import {
  AUTH_REASONS,
  CONNACK_REASONS,
  DISCONNECT_REASONS,
  PROPERTY_BY_ID,
  PropertyCheck,
  PropertyType,
  PUBACK_REASONS,
  PUBREL_REASONS,
  ReasonCode,
  SUBACK_REASONS,
  SUBACK_RETURN_CODES_311,
  UNSUBACK_REASONS,
  WILL_PROPERTIES,
} from './constants.js';
import type {
  AckPacket,
  ConnectPacket,
  Packet,
  PingreqPacket,
  PingrespPacket,
  Properties,
  PublishPacket,
  QoS,
  Subscription,
  Will,
} from './types.js';
import { PacketType, ProtocolVersion } from './types.js';
import { utf8Check, utf8Read, Utf8Status } from './utf8.js';

/** next() result: a packet is in `decoder.packet`. */
export const DECODE_PACKET = 1;
/** next() result: all input is consumed; feed more. */
export const DECODE_NEED_DATA = 0;
/** next() result: the input broke the protocol; see `decoder.error`. The decoder stays failed until reset(). */
export const DECODE_ERROR = -1;
/**
 * next() result (only with `pieces`): a PUBLISH larger than the buffer begins.
 * `decoder.packet` is its DecodedPublish with the fixed header, topic, packet
 * id and properties parsed, `payloadLength` its whole payload and no payload
 * bytes yet; DECODE_PIECE results follow until the payload is complete.
 */
export const DECODE_PUBLISH_HEAD = 2;
/**
 * next() result (only with `pieces`): payload bytes of the large PUBLISH begun
 * by the last DECODE_PUBLISH_HEAD, in order. `decoder.packet` is the same
 * DecodedPublish: `payload` (bytes[payloadStart, payloadEnd)) is this piece, a
 * view into the fed chunk, `pieceOffset` where it lies in the payload. The
 * last piece ends at `payloadLength`.
 */
export const DECODE_PIECE = 3;

export interface DecodeError {
  /** The reason code to close with: 0x81 Malformed Packet, 0x82 Protocol Error, 0x84 Unsupported Protocol Version, 0x95 Packet Too Large. */
  readonly reasonCode: number;
  /** Names the rule, e.g. "[MQTT-1.5.4-2] U+0000 in a UTF-8 string". */
  readonly message: string;
}

export interface PacketDecoderOptions {
  /** Protocol of the connection; a server sets it from the CONNECT (decoding a CONNECT does not change it). */
  version: ProtocolVersion;
  /** Bytes of the buffer that holds an incomplete packet; also the largest packet accepted. Default 4096. */
  bufferSize?: number;
  /** Largest packet (fixed header included) accepted [MQTT-3.1.2-24]; default bufferSize. */
  maxPacketSize?: number;
  /**
   * The caller's own buffer to use instead of allocating one: the decoder uses
   * `bufferSize` bytes of it from `bufferOffset` (default: all of it), so a
   * client can hand it a region of a view it already has.
   */
  buffer?: Uint8Array;
  bufferOffset?: number;
  /**
   * Hand out a PUBLISH larger than bufferSize (up to maxPacketSize, which may
   * then exceed bufferSize) as DECODE_PUBLISH_HEAD and DECODE_PIECE results:
   * only its head (fixed header to properties) is buffered, and that must fit
   * bufferSize. Any other packet larger than bufferSize is refused (0x95).
   */
  pieces?: boolean;
}

const EMPTY = new Uint8Array(0);

export const PINGREQ: PingreqPacket = Object.freeze({ type: PacketType.Pingreq });
export const PINGRESP: PingrespPacket = Object.freeze({ type: PacketType.Pingresp });

/**
 * The PUBLISH the decoder hands out: one object per decoder, overwritten by
 * every next() call. Its fields, `payload` view and `bytes` are valid only
 * until the next call to next() or feed(); copy what you keep (toPacket()).
 * `payload` is a view into the fed chunk (or the decoder's buffer), made when
 * the getter is read. `topic` is decoded when read and cached while the topic
 * bytes stay the same, so a stream on one topic allocates no strings.
 */
export class DecodedPublish implements PublishPacket {
  readonly type: PacketType.Publish = PacketType.Publish;
  qos: QoS = 0;
  retain = false;
  dup = false;
  packetId = 0;
  properties: Properties | undefined = undefined;
  /** The array holding the packet: topic and payload are ranges of it. */
  bytes: Uint8Array = EMPTY;
  /** Offset of the packet's first byte (the fixed header) in `bytes`. */
  packetStart = 0;
  topicStart = 0;
  topicEnd = 0;
  payloadStart = 0;
  payloadEnd = 0;
  /** Set by the decoder for a message in pieces: its whole payload length (-1 otherwise), and this piece's offset. */
  _total = -1;
  _offset = 0;
  // The bytes of the last accepted topic (already validated) and its string.
  #topicBytes = new Uint8Array(64);
  #topicLength = -1;
  #topicString: string | null = null;

  /** Bytes of the whole payload: payloadEnd - payloadStart unless the message comes in pieces. */
  get payloadLength(): number {
    return this._total < 0 ? this.payloadEnd - this.payloadStart : this._total;
  }

  /** Where `payload` lies in the whole payload: 0 unless it is a later piece. */
  get pieceOffset(): number {
    return this._total < 0 ? 0 : this._offset;
  }

  get payload(): Uint8Array {
    return this.bytes.subarray(this.payloadStart, this.payloadEnd);
  }

  get topic(): string {
    let s = this.#topicString;
    if (s === null) {
      s = utf8Read(this.#topicBytes, 0, this.#topicLength);
      this.#topicString = s;
    }
    return s;
  }

  /** A standalone copy that outlives the next next() call. */
  toPacket(): PublishPacket {
    const p: PublishPacket = {
      type: PacketType.Publish,
      topic: this.topic,
      payload: this.bytes.slice(this.payloadStart, this.payloadEnd),
      qos: this.qos,
      retain: this.retain,
      dup: this.dup,
      packetId: this.packetId,
    };
    if (this.properties !== undefined) p.properties = this.properties;
    return p;
  }

  /**
   * Accepts topic bytes b[start, end): 0 if they are the cached topic or a new
   * valid one (then cached), else a Utf8Status error or 1 for a wildcard.
   */
  _setTopic(b: Uint8Array, start: number, end: number): number {
    const n = end - start;
    const cache = this.#topicBytes;
    if (n === this.#topicLength) {
      let i = 0;
      while (i < n && cache[i] === b[start + i]) i++;
      if (i === n) return 0;
    }
    const status = utf8Check(b, start, end);
    if (status < 0) return status;
    for (let i = start; i < end; i++) {
      const c = b[i];
      if (c === 0x23 || c === 0x2b) return 1; // '#', '+' [MQTT-3.3.2-2]
    }
    let dst = cache;
    if (n > dst.length) {
      let size = dst.length;
      while (size < n) size *= 2;
      dst = new Uint8Array(size);
      this.#topicBytes = dst;
    }
    for (let i = 0; i < n; i++) dst[i] = b[start + i];
    this.#topicLength = n;
    this.#topicString = null;
    return 0;
  }
}

/** The PUBACK/PUBREC/PUBREL/PUBCOMP the decoder hands out: one object per decoder, valid until the next next(). */
export class DecodedAck implements AckPacket {
  type: PacketType.Puback | PacketType.Pubrec | PacketType.Pubrel | PacketType.Pubcomp = PacketType.Puback;
  packetId = 0;
  reasonCode = 0;
  properties: Properties | undefined = undefined;
}

// Thrown inside the decoder only, caught in next(); carries nothing (the
// error is in decoder.error).
const FAIL = Object.freeze({ fail: true });

// Required fixed-header flags per packet type (MQTT 5.0 2.1.3, Table 2-2); -1: PUBLISH, checked apart.
const HEADER_FLAGS = [0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

const M_PACKET_TOO_SHORT = 'Remaining Length shorter than the packet fields (1.5, 2.1.4)';
const M_TRAILING = 'Remaining Length longer than the packet fields (2.1.4)';

// Modes of a PacketDecoder: between packets (or inside one that fits the
// buffer), gathering the head of a large PUBLISH, streaming its payload.
const enum Large {
  None = 0,
  Head = 1,
  Payload = 2,
  /** The last piece was handed out; the next call clears the piece fields (off the hot path). */
  Done = 3,
}

export class PacketDecoder {
  /** Protocol used for every packet but CONNECT (which carries its own level). */
  version: ProtocolVersion;
  readonly maxPacketSize: number;
  /** The last decoded packet (valid until the next next() call for PUBLISH and acks). */
  packet: Packet | null = null;
  /** Set when next() returned DECODE_ERROR; cleared by reset(). */
  error: DecodeError | null = null;

  readonly #buf: Uint8Array; // holds an incomplete packet, from #base on
  readonly #base: number;
  // Bytes in #buf; 1 while #large is not None, so the hot path tests one field
  // (bufLen > 0) and finds the large mode inside that branch.
  #bufLen = 0;
  #need = 0; // total length of the packet in #buf, 0 while its header is incomplete
  #bodyOffset = 0; // length of the fixed header found by #header()
  #chunk: Uint8Array = EMPTY;
  /** Where the current chunk's input ends (its length unless feed() was told fewer bytes). */
  #end = 0;
  #pos = 0;
  // Made on first use: an idle client (a subscriber that waits) never pays for them.
  #publish: DecodedPublish | null = null;
  #ack: DecodedAck | null = null;
  // Parse cursor over the packet being decoded.
  #b: Uint8Array = EMPTY;
  #p = 0;
  #lim = 0;
  // Declared last: XS finds private fields in declaration order, and these are off the hot path but one.
  /** Largest packet #header lets through without a second look: maxPacketSize, or the buffer size with pieces. */
  readonly #plain: number;
  readonly #size: number; // bytes of #buf from #base
  #large = Large.None;
  #left = 0; // payload bytes of the large PUBLISH still to come
  #headHave = 0; // bytes of a large PUBLISH's head in #buf

  constructor(options: PacketDecoderOptions) {
    const base = options.buffer ? (options.bufferOffset ?? 0) : 0;
    const bufferSize = options.buffer ? (options.bufferSize ?? options.buffer.length - base) : (options.bufferSize ?? 4096);
    const max = options.maxPacketSize ?? bufferSize;
    if (!(bufferSize >= 8) || !(max >= 2)) throw new RangeError('PacketDecoder: bufferSize must be >= 8 and maxPacketSize >= 2');
    if (options.buffer && !(base >= 0 && base + bufferSize <= options.buffer.length)) {
      throw new RangeError('PacketDecoder: bufferOffset + bufferSize must lie within buffer');
    }
    this.version = options.version;
    this.#buf = options.buffer ?? new Uint8Array(bufferSize);
    this.#base = base;
    this.#size = bufferSize;
    this.maxPacketSize = max < bufferSize || options.pieces === true ? max : bufferSize;
    this.#plain = this.maxPacketSize < bufferSize ? this.maxPacketSize : bufferSize;
  }

  /** Bytes of the current chunk not yet consumed plus any incomplete packet held. */
  get pending(): number {
    return this.#end - this.#pos + (this.#large === Large.None ? this.#bufLen : this.#headHave);
  }

  /**
   * Hands the decoder a chunk. The previous chunk must be fully consumed
   * (next() returned DECODE_NEED_DATA). The decoder reads the chunk in place
   * until then: do not modify it. `length`: the input is chunk[0 .. length)
   * (a host reading into one reused buffer hands it over without a view per read).
   */
  feed(chunk: Uint8Array, length: number = chunk.length): void {
    if (this.#pos < this.#end && this.error === null) {
      throw new Error('PacketDecoder.feed: call next() until it returns DECODE_NEED_DATA before feeding more');
    }
    if (!(length >= 0 && length <= chunk.length)) throw new RangeError(`PacketDecoder.feed: length ${length} is outside the chunk (${chunk.length} bytes)`);
    this.#chunk = chunk;
    this.#end = length;
    this.#pos = 0;
  }

  /** Forgets all input and any error (for a new connection). */
  reset(): void {
    this.#chunk = EMPTY;
    this.#end = 0;
    this.#pos = 0;
    this.#bufLen = 0;
    this.#need = 0;
    this.#large = Large.None;
    this.#left = 0;
    this.#headHave = 0;
    if (this.#publish !== null) this.#publish._total = -1;
    this.packet = null;
    this.error = null;
  }

  /** A large PUBLISH is under way (its head was handed out, not yet its last piece). */
  get inPieces(): boolean {
    return this.#large === Large.Head || this.#large === Large.Payload;
  }

  /** Decodes the next packet: DECODE_PACKET, DECODE_NEED_DATA or DECODE_ERROR. Never throws. */
  next(): number {
    if (this.error !== null) return DECODE_ERROR;
    this.packet = null;
    const chunk = this.#chunk;
    let pos = this.#pos;
    const end = this.#end;
    if (this.#bufLen > 0) {
      if (this.#large !== Large.None) return this.#nextLarge();
      const buf = this.#buf;
      const base = this.#base;
      let have = this.#bufLen;
      if (this.#need === 0) {
        while (pos < end && this.#need === 0) {
          buf[base + have++] = chunk[pos++];
          const total = this.#header(buf, base, base + have);
          if (total < 0) return DECODE_ERROR;
          this.#need = total;
        }
        if (this.#need === 0) {
          this.#bufLen = have;
          return this.#consumed();
        }
      }
      const need = this.#need;
      if (need > this.#size) {
        // A PUBLISH larger than the buffer (#header let only that through).
        this.#headHave = have;
        this.#bufLen = 1;
        this.#pos = pos;
        this.#large = Large.Head;
        return this.#nextLarge();
      }
      let take = need - have;
      if (take > end - pos) take = end - pos;
      if (take < 64) {
        for (let i = 0; i < take; i++) buf[base + have + i] = chunk[pos + i];
      } else {
        buf.set(chunk.subarray(pos, pos + take), base + have);
      }
      have += take;
      this.#pos = pos + take;
      if (have < need) {
        this.#bufLen = have;
        return this.#consumed();
      }
      this.#bufLen = 0;
      this.#need = 0;
      return this.#parse(buf, base, base + need);
    }
    if (pos >= end) return this.#consumed();
    const total = this.#header(chunk, pos, end);
    if (total < 0) return DECODE_ERROR;
    if (total > this.#size) {
      // Even whole in this chunk it comes out in pieces: the same message is
      // delivered the same way however the network cuts it.
      this.#pos = pos;
      this.#need = total;
      this.#headHave = 0;
      this.#bufLen = 1;
      this.#large = Large.Head;
      return this.#nextLarge();
    }
    if (total === 0 || pos + total > end) {
      // Incomplete: keep the tail (it fits: #header checked the length).
      const n = end - pos;
      const buf = this.#buf;
      const base = this.#base;
      for (let i = 0; i < n; i++) buf[base + i] = chunk[pos + i];
      this.#bufLen = n;
      this.#need = total;
      return this.#consumed();
    }
    this.#pos = pos + total;
    return this.#parse(chunk, pos, pos + total);
  }

  /**
   * The chunk is used up (what it held of an incomplete packet is in #buf):
   * let go of it and of the last packet's view into it, so an idle client does
   * not keep its last network chunk alive.
   */
  #consumed(): number {
    this.#chunk = EMPTY;
    this.#end = 0;
    this.#pos = 0;
    this.#b = EMPTY;
    if (this.#publish !== null) this.#publish.bytes = EMPTY;
    return DECODE_NEED_DATA;
  }

  /** The head or the next piece of a large PUBLISH (#large is not None). */
  #nextLarge(): number {
    const chunk = this.#chunk;
    let pos = this.#pos;
    const end = this.#end;
    if (this.#large === Large.Done) {
      this.#publish!._total = -1;
      this.#large = Large.None;
      this.#bufLen = 0;
      return this.next();
    }
    if (this.#large === Large.Payload) {
      if (pos >= end) return this.#consumed();
      const pub = this.#publish!;
      const left = this.#left;
      const take = left < end - pos ? left : end - pos;
      pub.bytes = chunk;
      pub.payloadStart = pos;
      pub.payloadEnd = pos + take;
      pub._offset = pub._total - left;
      this.#left = left - take;
      if (left === take) this.#large = Large.Done;
      this.#pos = pos + take;
      this.packet = pub;
      return DECODE_PIECE;
    }
    // Gather the head in the buffer, as many bytes at a time as are known to belong to it.
    const buf = this.#buf;
    const base = this.#base;
    let have = this.#headHave;
    let head: number;
    for (;;) {
      head = this.#headLength(buf, base, have);
      if (head > 0) break;
      const want = -head;
      if (want > this.#size) {
        return this.#fail(ReasonCode.PacketTooLarge, 'PUBLISH topic and properties larger than the receive buffer');
      }
      let take = want - have;
      if (take > end - pos) take = end - pos;
      if (take <= 0) {
        this.#headHave = have;
        return this.#consumed();
      }
      for (let i = 0; i < take; i++) buf[base + have + i] = chunk[pos + i];
      have += take;
      pos += take;
    }
    this.#pos = pos;
    this.#headHave = 0;
    const total = this.#need;
    this.#need = 0;
    const r = this.#parse(buf, base, base + head);
    if (r !== DECODE_PACKET) return r;
    const pub = this.#publish!;
    pub._total = this.#left = total - head;
    pub._offset = 0;
    this.#large = Large.Payload;
    return DECODE_PUBLISH_HEAD;
  }

  /**
   * Length of a large PUBLISH's head (fixed header to the end of its
   * properties) from the `have` bytes of it at b[s]: the length when they hold
   * it all, else minus the bytes needed to learn more. A malformed head ends
   * where its fields say; #parse reports it.
   */
  #headLength(b: Uint8Array, s: number, have: number): number {
    let p = this.#bodyOffset + 2;
    if (have < p) return -p;
    p += ((b[s + p - 2] << 8) | b[s + p - 1]) + ((b[s] & 0x06) !== 0 ? 2 : 0);
    if (this.version === ProtocolVersion.V5) {
      let len = 0;
      let mul = 1;
      for (let k = 0; k < 4; k++) {
        if (have < p + 1) return -(p + 1);
        const c = b[s + p++];
        len += (c & 0x7f) * mul;
        if (c < 0x80) break;
        mul *= 128;
      }
      p += len;
    }
    return have < p ? -p : p;
  }

  #fail(reasonCode: number, message: string): number {
    this.error = { reasonCode, message };
    this.packet = null;
    return DECODE_ERROR;
  }

  /** Total length of the packet at b[start], 0 if its header is incomplete, DECODE_ERROR. */
  #header(b: Uint8Array, start: number, end: number): number {
    let i = start + 1;
    let rl = 0;
    let mul = 1;
    for (;;) {
      if (i >= end) return 0;
      const c = b[i++];
      rl += (c & 0x7f) * mul;
      if (c < 0x80) break;
      if (i - start > 4) return this.#fail(ReasonCode.MalformedPacket, '[MQTT-1.5.5] Remaining Length field longer than 4 bytes (2.1.4)');
      mul *= 128;
    }
    const total = i - start + rl;
    if (total > this.#plain) {
      if (total > this.maxPacketSize) return this.#fail(ReasonCode.PacketTooLarge, '[MQTT-3.1.2-24] packet larger than the Maximum Packet Size');
      if (b[start] >> 4 !== PacketType.Publish) {
        return this.#fail(ReasonCode.PacketTooLarge, 'packet larger than the receive buffer (only a PUBLISH may be, and it comes in pieces)');
      }
    }
    this.#bodyOffset = i - start;
    return total;
  }

  #parse(b: Uint8Array, start: number, end: number): number {
    const first = b[start];
    const type = first >> 4;
    const flags = first & 0x0f;
    this.#b = b;
    this.#p = start + this.#bodyOffset;
    this.#lim = end;
    try {
      if (type === PacketType.Publish) return this.#parsePublish(b, start, end, flags);
      if (HEADER_FLAGS[type] !== flags) {
        return this.#fail(ReasonCode.MalformedPacket, '[MQTT-2.1.3-1] reserved fixed header flags are not as specified');
      }
      let p: Packet;
      switch (type) {
        case PacketType.Puback:
        case PacketType.Pubrec:
        case PacketType.Pubrel:
        case PacketType.Pubcomp:
          p = this.#parseAck(type);
          break;
        case PacketType.Connect:
          p = this.#parseConnect();
          break;
        case PacketType.Connack:
          p = this.#parseConnack();
          break;
        case PacketType.Subscribe:
          p = this.#parseSubscribe();
          break;
        case PacketType.Suback:
        case PacketType.Unsuback:
          p = this.#parseSubackUnsuback(type);
          break;
        case PacketType.Unsubscribe:
          p = this.#parseUnsubscribe();
          break;
        case PacketType.Pingreq:
        case PacketType.Pingresp:
          if (this.#p !== end) return this.#fail(ReasonCode.MalformedPacket, '[MQTT-3.12.1] PINGREQ/PINGRESP Remaining Length must be 0');
          p = type === PacketType.Pingreq ? PINGREQ : PINGRESP;
          break;
        case PacketType.Disconnect:
        case PacketType.Auth:
          p = this.#parseDisconnectAuth(type);
          break;
        default:
          return this.#fail(ReasonCode.MalformedPacket, '[MQTT-2.1.2] reserved packet type 0');
      }
      if (this.#p !== end) return this.#fail(ReasonCode.MalformedPacket, M_TRAILING);
      this.packet = p;
      return DECODE_PACKET;
    } catch (e) {
      if (e === FAIL) return DECODE_ERROR;
      return this.#fail(ReasonCode.MalformedPacket, 'decoder fault: ' + String(e));
    }
  }

  // ------------------------------------------------------------ primitives
  // Each reader checks the current limit and throws FAIL (after setting error).

  #error(reasonCode: number, message: string): never {
    this.#fail(reasonCode, message);
    throw FAIL;
  }

  #u8(): number {
    if (this.#p >= this.#lim) this.#error(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
    return this.#b[this.#p++];
  }

  #u16(): number {
    const p = this.#p;
    if (p + 2 > this.#lim) this.#error(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
    this.#p = p + 2;
    return (this.#b[p] << 8) | this.#b[p + 1];
  }

  #u32(): number {
    const p = this.#p;
    if (p + 4 > this.#lim) this.#error(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
    this.#p = p + 4;
    const b = this.#b;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }

  #varint(): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const c = this.#u8();
      value += (c & 0x7f) * mul;
      if (c < 0x80) return value;
      mul *= 128;
    }
    return this.#error(ReasonCode.MalformedPacket, '[MQTT-1.5.5] Variable Byte Integer longer than 4 bytes');
  }

  #string(): string {
    const n = this.#u16();
    const p = this.#p;
    if (p + n > this.#lim) this.#error(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
    const status = utf8Check(this.#b, p, p + n);
    if (status < 0) this.#utf8Error(status);
    this.#p = p + n;
    return utf8Read(this.#b, p, p + n);
  }

  /** A Topic Filter: a string at least one character long [MQTT-4.7.3-1]. */
  #filter(): string {
    const t = this.#string();
    if (t.length === 0) this.#error(ReasonCode.ProtocolError, '[MQTT-4.7.3-1] empty Topic Filter');
    return t;
  }

  #utf8Error(status: number): never {
    return status === Utf8Status.Null
      ? this.#error(ReasonCode.MalformedPacket, '[MQTT-1.5.4-2] U+0000 in a UTF-8 string')
      : this.#error(ReasonCode.MalformedPacket, '[MQTT-1.5.4-1] ill-formed UTF-8 string');
  }

  /** Binary Data, copied: it must outlive the input chunk. */
  #binary(): Uint8Array {
    const n = this.#u16();
    const p = this.#p;
    if (p + n > this.#lim) this.#error(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
    this.#p = p + n;
    return this.#b.slice(p, p + n);
  }

  #packetId(): number {
    const id = this.#u16();
    if (id === 0) this.#error(ReasonCode.ProtocolError, '[MQTT-2.2.1-3] Packet Identifier 0');
    return id;
  }

  /** MQTT 5 properties for a packet of kind `where`; undefined when the property length is 0. */
  #properties(where: number): Properties | undefined {
    const len = this.#varint();
    if (len === 0) return undefined;
    const pend = this.#p + len;
    const outer = this.#lim;
    if (pend > outer) this.#error(ReasonCode.MalformedPacket, '[MQTT-2.2.2] Property Length beyond the packet');
    this.#lim = pend;
    const props: Record<string, unknown> = {};
    let seenLo = 0;
    let seenHi = 0;
    while (this.#p < pend) {
      const id = this.#u8();
      const info = id < PROPERTY_BY_ID.length ? PROPERTY_BY_ID[id] : undefined;
      if (info === undefined) this.#error(ReasonCode.MalformedPacket, '[MQTT-2.2.2] unknown property identifier 0x' + id.toString(16));
      if ((info.allowed & where) === 0) {
        this.#error(ReasonCode.ProtocolError, '[MQTT-2.2.2] property ' + info.name + ' not allowed in this packet');
      }
      const bit = 1 << (id & 31);
      const seen = id < 32 ? seenLo & bit : seenHi & bit;
      if (seen !== 0 && (info.repeatable & where) === 0) {
        this.#error(ReasonCode.ProtocolError, '[MQTT-2.2.2] It is a Protocol Error to include ' + info.name + ' more than once');
      }
      if (id < 32) seenLo |= bit;
      else seenHi |= bit;
      let v: unknown;
      switch (info.type) {
        case PropertyType.Byte: {
          const n = this.#u8();
          if (info.check === PropertyCheck.ZeroOrOne && n > 1) {
            this.#error(ReasonCode.ProtocolError, '[MQTT-2.2.2] ' + info.name + ' must be 0 or 1');
          }
          v = n;
          break;
        }
        case PropertyType.U16:
          v = this.#u16();
          if (v === 0 && info.check === PropertyCheck.NonZero) this.#error(ReasonCode.ProtocolError, '[MQTT-2.2.2] ' + info.name + ' of 0');
          break;
        case PropertyType.U32:
          v = this.#u32();
          if (v === 0 && info.check === PropertyCheck.NonZero) this.#error(ReasonCode.ProtocolError, '[MQTT-2.2.2] ' + info.name + ' of 0');
          break;
        case PropertyType.VarInt:
          v = this.#varint();
          if (v === 0 && info.check === PropertyCheck.NonZero) this.#error(ReasonCode.ProtocolError, '[MQTT-2.2.2] ' + info.name + ' of 0');
          break;
        case PropertyType.Utf8:
          v = this.#string();
          break;
        case PropertyType.Binary:
          v = this.#binary();
          break;
        case PropertyType.Pair: {
          const k = this.#string();
          const w = this.#string();
          const list = props.userProperties as Array<[string, string]> | undefined;
          if (list === undefined) props.userProperties = [[k, w]];
          else list.push([k, w]);
          continue;
        }
      }
      if (seen !== 0) {
        // A repeatable non-pair property (Subscription Identifier in PUBLISH): a list.
        const prev = props[info.name];
        if (Array.isArray(prev)) prev.push(v);
        else props[info.name] = [prev, v];
      } else {
        props[info.name] = v;
      }
    }
    this.#lim = outer;
    return props as Properties;
  }

  // ------------------------------------------------------------ packets

  #parsePublish(b: Uint8Array, start: number, end: number, flags: number): number {
    const qos = (flags >> 1) & 3;
    if (qos === 3) return this.#fail(ReasonCode.MalformedPacket, '[MQTT-3.3.1-4] PUBLISH with QoS 3');
    const dup = (flags & 0x08) !== 0;
    if (dup && qos === 0) return this.#fail(ReasonCode.MalformedPacket, '[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH');
    let p = this.#p;
    if (p + 2 > end) return this.#fail(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
    const topicStart = p + 2;
    const topicEnd = topicStart + ((b[p] << 8) | b[p + 1]);
    if (topicEnd > end) return this.#fail(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
    const pub = (this.#publish ??= new DecodedPublish());
    const t = pub._setTopic(b, topicStart, topicEnd);
    if (t !== 0) {
      if (t === 1) return this.#fail(ReasonCode.ProtocolError, '[MQTT-3.3.2-2] wildcard in a PUBLISH Topic Name');
      if (t === Utf8Status.Null) return this.#fail(ReasonCode.MalformedPacket, '[MQTT-1.5.4-2] U+0000 in a UTF-8 string');
      return this.#fail(ReasonCode.MalformedPacket, '[MQTT-1.5.4-1] ill-formed UTF-8 string');
    }
    p = topicEnd;
    let packetId = 0;
    if (qos !== 0) {
      if (p + 2 > end) return this.#fail(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
      packetId = (b[p] << 8) | b[p + 1];
      if (packetId === 0) return this.#fail(ReasonCode.ProtocolError, '[MQTT-2.2.1-3] Packet Identifier 0');
      p += 2;
    }
    let properties: Properties | undefined = undefined;
    if (this.version === ProtocolVersion.V5) {
      if (p < end && b[p] === 0) {
        p++;
      } else {
        this.#p = p;
        properties = this.#properties(1 << PacketType.Publish);
        p = this.#p;
      }
      if (topicEnd === topicStart && (properties === undefined || properties.topicAlias === undefined)) {
        return this.#fail(ReasonCode.ProtocolError, '[MQTT-3.3.2.1] empty Topic Name without a Topic Alias');
      }
    } else if (topicEnd === topicStart) {
      return this.#fail(ReasonCode.ProtocolError, '[MQTT-4.7.3-1] empty Topic Name');
    }
    pub.qos = qos as QoS;
    pub.retain = (flags & 1) !== 0;
    pub.dup = dup;
    pub.packetId = packetId;
    pub.properties = properties;
    pub.bytes = b;
    pub.packetStart = start;
    pub.topicStart = topicStart;
    pub.topicEnd = topicEnd;
    pub.payloadStart = p;
    pub.payloadEnd = end;
    this.packet = pub;
    return DECODE_PACKET;
  }

  #parseAck(type: number): AckPacket {
    const ack = (this.#ack ??= new DecodedAck());
    ack.type = type as AckPacket['type'];
    ack.packetId = this.#packetId();
    ack.reasonCode = 0;
    ack.properties = undefined;
    if (this.version === ProtocolVersion.V5) {
      if (this.#p < this.#lim) {
        const rc = this.#u8();
        if ((type === PacketType.Puback || type === PacketType.Pubrec ? PUBACK_REASONS : PUBREL_REASONS)[rc] !== 1) {
          this.#error(ReasonCode.ProtocolError, '[MQTT-3.4.2.1] reason code not allowed in this acknowledgement');
        }
        ack.reasonCode = rc;
        if (this.#p < this.#lim) ack.properties = this.#properties(1 << type);
      }
    } else if (this.#p !== this.#lim) {
      this.#error(ReasonCode.MalformedPacket, '[MQTT-3.4.2] 3.1.1 acknowledgement Remaining Length must be 2');
    }
    return ack;
  }

  #parseConnect(): ConnectPacket {
    const b = this.#b;
    const p = this.#p;
    if (p + 8 > this.#lim) this.#error(ReasonCode.MalformedPacket, M_PACKET_TOO_SHORT);
    if (b[p] !== 0 || b[p + 1] !== 4 || b[p + 2] !== 0x4d || b[p + 3] !== 0x51 || b[p + 4] !== 0x54 || b[p + 5] !== 0x54) {
      this.#error(ReasonCode.UnsupportedProtocolVersion, '[MQTT-3.1.2-1] Protocol Name is not "MQTT"');
    }
    const level = b[p + 6];
    if (level !== ProtocolVersion.V311 && level !== ProtocolVersion.V5) {
      this.#error(ReasonCode.UnsupportedProtocolVersion, '[MQTT-3.1.2-2] unsupported Protocol Level');
    }
    const v5 = level === ProtocolVersion.V5;
    const flags = b[p + 7];
    this.#p = p + 8;
    if (flags & 0x01) this.#error(ReasonCode.MalformedPacket, '[MQTT-3.1.2-3] reserved CONNECT flag set');
    const willFlag = (flags & 0x04) !== 0;
    const willQos = (flags >> 3) & 3;
    const willRetain = (flags & 0x20) !== 0;
    if (willQos === 3) this.#error(ReasonCode.MalformedPacket, '[MQTT-3.1.2-12] Will QoS 3');
    if (!willFlag && (willQos !== 0 || willRetain)) {
      this.#error(ReasonCode.MalformedPacket, '[MQTT-3.1.2-11] Will QoS and Will Retain must be 0 without a Will Flag');
    }
    const hasUser = (flags & 0x80) !== 0;
    const hasPassword = (flags & 0x40) !== 0;
    if (!v5 && hasPassword && !hasUser) this.#error(ReasonCode.MalformedPacket, '[MQTT-3.1.2-22] Password Flag set without User Name Flag');
    const keepalive = this.#u16();
    const properties = v5 ? this.#properties(1 << PacketType.Connect) : undefined;
    const clientId = this.#string();
    const packet: ConnectPacket = { type: PacketType.Connect, protocolVersion: level, clientId, clean: (flags & 0x02) !== 0, keepalive };
    if (willFlag) {
      const willProps = v5 ? this.#properties(WILL_PROPERTIES) : undefined;
      const topic = this.#string();
      if (topic.length === 0) this.#error(ReasonCode.ProtocolError, '[MQTT-4.7.3-1] empty Will Topic');
      for (let i = 0; i < topic.length; i++) {
        const c = topic.charCodeAt(i);
        if (c === 0x23 || c === 0x2b) this.#error(ReasonCode.ProtocolError, '[MQTT-3.3.2-2] wildcard in the Will Topic');
      }
      const will: Will = { topic, payload: this.#binary(), qos: willQos as QoS, retain: willRetain };
      if (willProps !== undefined) will.properties = willProps;
      packet.will = will;
    }
    if (hasUser) packet.username = this.#string();
    if (hasPassword) packet.password = this.#binary();
    if (properties !== undefined) packet.properties = properties;
    return packet;
  }

  #parseConnack(): Packet {
    const ackFlags = this.#u8();
    if (ackFlags > 1) this.#error(ReasonCode.MalformedPacket, '[MQTT-3.2.2-1] reserved CONNACK flags set');
    const rc = this.#u8();
    const v5 = this.version === ProtocolVersion.V5;
    // A broker that speaks only 3.1.1 may answer an MQTT 5 CONNECT with a
    // 3.1.1 CONNACK (aedes: 20 02 00 01, no properties): let its return code
    // through, so the client can say what it means.
    const legacy = v5 && rc >= 1 && rc <= 5 && this.#p === this.#lim;
    if (!legacy && (v5 ? CONNACK_REASONS[rc] !== 1 : rc > 5)) this.#error(ReasonCode.ProtocolError, '[MQTT-3.2.2] unknown CONNACK reason code');
    if (ackFlags === 1 && rc !== 0) this.#error(ReasonCode.ProtocolError, '[MQTT-3.2.2-4] Session Present with a non-zero return code');
    const packet: Packet = { type: PacketType.Connack, sessionPresent: ackFlags === 1, reasonCode: rc };
    if (v5 && this.#p < this.#lim) {
      const props = this.#properties(1 << PacketType.Connack);
      if (props !== undefined) packet.properties = props;
    }
    return packet;
  }

  #parseSubscribe(): Packet {
    const packetId = this.#packetId();
    const v5 = this.version === ProtocolVersion.V5;
    const properties = v5 ? this.#properties(1 << PacketType.Subscribe) : undefined;
    const subscriptions: Subscription[] = [];
    while (this.#p < this.#lim) {
      const topic = this.#filter();
      const opts = this.#u8();
      const qos = opts & 3;
      if (qos === 3) this.#error(ReasonCode.MalformedPacket, '[MQTT-3.8.3-4] subscription QoS 3');
      if (v5) {
        if (opts & 0xc0) this.#error(ReasonCode.MalformedPacket, '[MQTT-3.8.3-5] reserved subscription option bits set');
        const rh = (opts >> 4) & 3;
        if (rh === 3) this.#error(ReasonCode.ProtocolError, '[MQTT-3.8.3.1] Retain Handling 3');
        subscriptions.push({ topic, qos: qos as QoS, noLocal: (opts & 0x04) !== 0, retainAsPublished: (opts & 0x08) !== 0, retainHandling: rh as 0 | 1 | 2 });
      } else {
        if (opts & 0xfc) this.#error(ReasonCode.MalformedPacket, '[MQTT-3.8.3-4] reserved subscription option bits set');
        subscriptions.push({ topic, qos: qos as QoS });
      }
    }
    if (subscriptions.length === 0) this.#error(ReasonCode.ProtocolError, '[MQTT-3.8.3-3] SUBSCRIBE without a Topic Filter');
    const packet: Packet = { type: PacketType.Subscribe, packetId, subscriptions };
    if (properties !== undefined) packet.properties = properties;
    return packet;
  }

  #parseSubackUnsuback(type: number): Packet {
    const packetId = this.#packetId();
    const v5 = this.version === ProtocolVersion.V5;
    const properties = v5 ? this.#properties(1 << type) : undefined;
    const reasonCodes: number[] = [];
    if (type === PacketType.Suback || v5) {
      const table = type === PacketType.Unsuback ? UNSUBACK_REASONS : v5 ? SUBACK_REASONS : SUBACK_RETURN_CODES_311;
      while (this.#p < this.#lim) {
        const rc = this.#u8();
        if (table[rc] !== 1) this.#error(ReasonCode.ProtocolError, '[MQTT-3.9.3] reason code not allowed in SUBACK/UNSUBACK');
        reasonCodes.push(rc);
      }
      if (type === PacketType.Suback && reasonCodes.length === 0) {
        this.#error(ReasonCode.ProtocolError, '[MQTT-3.9.3-1] SUBACK without a reason code');
      }
    }
    const packet: Packet =
      type === PacketType.Suback
        ? { type: PacketType.Suback, packetId, reasonCodes }
        : { type: PacketType.Unsuback, packetId, reasonCodes };
    if (properties !== undefined) packet.properties = properties;
    return packet;
  }

  #parseUnsubscribe(): Packet {
    const packetId = this.#packetId();
    const properties = this.version === ProtocolVersion.V5 ? this.#properties(1 << PacketType.Unsubscribe) : undefined;
    const topics: string[] = [];
    while (this.#p < this.#lim) topics.push(this.#filter());
    if (topics.length === 0) this.#error(ReasonCode.ProtocolError, '[MQTT-3.10.3-2] UNSUBSCRIBE without a Topic Filter');
    const packet: Packet = { type: PacketType.Unsubscribe, packetId, topics };
    if (properties !== undefined) packet.properties = properties;
    return packet;
  }

  #parseDisconnectAuth(type: number): Packet {
    const auth = type === PacketType.Auth;
    if (this.version !== ProtocolVersion.V5) {
      if (auth) this.#error(ReasonCode.MalformedPacket, '[MQTT-2.1.2] packet type 15 is reserved in 3.1.1');
      if (this.#p !== this.#lim) this.#error(ReasonCode.MalformedPacket, '[MQTT-3.14.1] 3.1.1 DISCONNECT Remaining Length must be 0');
      return { type: PacketType.Disconnect, reasonCode: 0 };
    }
    let reasonCode = 0;
    let properties: Properties | undefined = undefined;
    if (this.#p < this.#lim) {
      reasonCode = this.#u8();
      if ((auth ? AUTH_REASONS : DISCONNECT_REASONS)[reasonCode] !== 1) {
        this.#error(ReasonCode.ProtocolError, auth ? '[MQTT-3.15.2-1] unknown AUTH reason code' : '[MQTT-3.14.2.1] unknown DISCONNECT reason code');
      }
      if (this.#p < this.#lim) properties = this.#properties(1 << type);
    }
    const packet: Packet = auth ? { type: PacketType.Auth, reasonCode } : { type: PacketType.Disconnect, reasonCode };
    if (properties !== undefined) packet.properties = properties;
    return packet;
  }
}
