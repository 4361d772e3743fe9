// Packet encoder. Writes straight into a buffer the caller owns; returns the
// number of bytes written or a negative result code, never throws for bad
// packets and never writes past the end of the buffer.
//
// The PUBLISH and ack paths (publishLength, encodePublish, encodeAck) allocate
// nothing. The generic encode() allocates nothing either, but computes string
// lengths twice; it is for the less frequent packets.

import {
  AUTH_REASONS,
  CONNACK_REASONS,
  DISCONNECT_REASONS,
  MAX_VARINT,
  PROPERTIES,
  PROPERTY_BY_ID,
  PropertyCheck,
  PropertyId,
  PropertyType,
  PUBACK_REASONS,
  PUBREL_REASONS,
  SUBACK_REASONS,
  SUBACK_RETURN_CODES_311,
  UNSUBACK_REASONS,
  WILL_PROPERTIES,
} from './constants.js';
import type { Packet, Properties, QoS, Subscription } from './types.js';
import { PacketType, ProtocolVersion } from './types.js';
import { utf8Length, utf8Write } from './utf8.js';

/** The buffer is too small: nothing useful was written. */
export const ENCODE_NO_SPACE = -1;
/** The packet cannot be encoded legally (the message is in the name of the check that failed; see the function docs). */
export const ENCODE_INVALID = -2;
/** The DUP bit of a PUBLISH fixed header: set it in place to resend [MQTT-3.3.1-1]. */
export const PUBLISH_DUP_FLAG = 0x08;

// Property lengths from the last remainingLength() call, reused by encode()
// so properties are measured once. Single-threaded: safe.
let lastPropLen = 0;
let lastWillPropLen = 0;

/** Bytes a Variable Byte Integer takes (MQTT 5.0, 1.5.5). */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4;
}

function writeVarint(buf: Uint8Array, o: number, n: number): number {
  while (n >= 0x80) {
    buf[o++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[o++] = n;
  return o;
}

function writeString(buf: Uint8Array, o: number, s: string, len: number): number {
  buf[o] = len >> 8;
  buf[o + 1] = len & 0xff;
  return utf8Write(s, buf, o + 2);
}

function writeBinary(buf: Uint8Array, o: number, b: Uint8Array): number {
  const n = b.length;
  buf[o++] = n >> 8;
  buf[o++] = n & 0xff;
  if (n < 32) {
    for (let i = 0; i < n; i++) buf[o++] = b[i];
    return o;
  }
  buf.set(b, o);
  return o + n;
}

/** Bytes of a string field (2-byte length + UTF-8), or -1 if not a legal MQTT string. */
function stringField(s: unknown): number {
  if (typeof s !== 'string') return -1;
  const n = utf8Length(s);
  return n < 0 || n > 0xffff ? -1 : n + 2;
}

function binaryField(b: unknown): number {
  if (!(b instanceof Uint8Array) || b.length > 0xffff) return -1;
  return b.length + 2;
}

/**
 * Byte length of a topic name, or -1 if it is not a legal one: not a string,
 * ill-formed, U+0000, or a wildcard [MQTT-3.3.2-2].
 */
export function topicLength(s: string): number {
  // A device publishes to the same few topics again and again: remember the
  // last one checked (a string compare is far cheaper than the scan on XS).
  if (s === lastTopic) return lastTopicLength;
  const bytes = scanTopic(s);
  lastTopic = s;
  lastTopicLength = bytes;
  // Keep an ASCII topic's bytes too, so encodePublish copies them in one call.
  lastTopicBytes = null;
  if (bytes === s.length && bytes > 0 && bytes <= TOPIC_CACHE.length) {
    for (let i = 0; i < bytes; i++) TOPIC_CACHE[i] = s.charCodeAt(i);
    lastTopicBytes = TOPIC_CACHE.subarray(0, bytes);
  }
  return bytes;
}

let lastTopic = '';
let lastTopicLength = 0; // scanTopic('')
let lastTopicBytes: Uint8Array | null = null;
const TOPIC_CACHE = new Uint8Array(128);

function scanTopic(s: string): number {
  if (typeof s !== 'string' || s.indexOf('#') >= 0 || s.indexOf('+') >= 0) return -1;
  return utf8Length(s); // -1 for ill-formed UTF-16 or U+0000
}

function isU16(v: unknown): boolean {
  return typeof v === 'number' && (v & 0xffff) === v;
}

function propertyValueLength(type: PropertyType, check: PropertyCheck, v: unknown): number {
  switch (type) {
    case PropertyType.Byte:
      if (typeof v !== 'number' || (v & 0xff) !== v) return -1;
      if (check === PropertyCheck.ZeroOrOne && v > 1) return -1;
      return 1;
    case PropertyType.U16:
      if (!isU16(v) || (check === PropertyCheck.NonZero && v === 0)) return -1;
      return 2;
    case PropertyType.U32:
      if (typeof v !== 'number' || v >>> 0 !== v || (check === PropertyCheck.NonZero && v === 0)) return -1;
      return 4;
    case PropertyType.VarInt:
      if (typeof v !== 'number' || v >>> 0 !== v || v > MAX_VARINT || (check === PropertyCheck.NonZero && v === 0)) return -1;
      return varintSize(v);
    case PropertyType.Utf8:
      return stringField(v);
    case PropertyType.Binary:
      return binaryField(v);
    case PropertyType.Pair: {
      if (!Array.isArray(v) || v.length !== 2) return -1;
      const k = stringField(v[0]);
      const w = stringField(v[1]);
      return k < 0 || w < 0 ? -1 : k + w;
    }
  }
  return -1;
}

/**
 * Length of the properties (without their length prefix) that `props` holds
 * for a packet of kind `where` (1 << PacketType, or WILL_PROPERTIES), or
 * ENCODE_INVALID if one is not allowed there [MQTT-2.2.2], repeats where it
 * may not, or has a value out of range.
 */
export function propertiesLength(props: Properties | null | undefined, where: number): number {
  if (props === null || props === undefined) return 0;
  const bag = props as Record<string, unknown>;
  let len = 0;
  for (let i = 0; i < PROPERTIES.length; i++) {
    const info = PROPERTIES[i];
    const v = bag[info.name];
    if (v === undefined) continue;
    if ((info.allowed & where) === 0) return ENCODE_INVALID;
    if (info.type === PropertyType.Pair || (info.type === PropertyType.VarInt && Array.isArray(v))) {
      // userProperties is always a list; subscriptionIdentifier may be one.
      if (!Array.isArray(v)) return ENCODE_INVALID;
      if (v.length > 1 && (info.repeatable & where) === 0) return ENCODE_INVALID;
      for (let j = 0; j < v.length; j++) {
        const n = propertyValueLength(info.type, info.check, v[j]);
        if (n < 0) return ENCODE_INVALID;
        len += 1 + n;
      }
    } else {
      const n = propertyValueLength(info.type, info.check, v);
      if (n < 0) return ENCODE_INVALID;
      len += 1 + n;
    }
  }
  return len;
}

function writePropertyValue(buf: Uint8Array, o: number, id: number, type: PropertyType, v: unknown): number {
  buf[o++] = id;
  switch (type) {
    case PropertyType.Byte:
      buf[o++] = v as number;
      return o;
    case PropertyType.U16:
      buf[o++] = (v as number) >> 8;
      buf[o++] = (v as number) & 0xff;
      return o;
    case PropertyType.U32: {
      const n = v as number;
      buf[o++] = n >>> 24;
      buf[o++] = (n >>> 16) & 0xff;
      buf[o++] = (n >>> 8) & 0xff;
      buf[o++] = n & 0xff;
      return o;
    }
    case PropertyType.VarInt:
      return writeVarint(buf, o, v as number);
    case PropertyType.Utf8:
      return writeString(buf, o, v as string, utf8Length(v as string));
    case PropertyType.Binary:
      return writeBinary(buf, o, v as Uint8Array);
    case PropertyType.Pair: {
      const k = (v as [string, string])[0];
      const w = (v as [string, string])[1];
      o = writeString(buf, o, k, utf8Length(k));
      return writeString(buf, o, w, utf8Length(w));
    }
  }
  return o;
}

/** Writes the property length `len` (from propertiesLength) and then the properties. */
function writeProperties(buf: Uint8Array, o: number, props: Properties | null | undefined, len: number): number {
  o = writeVarint(buf, o, len);
  if (len === 0 || props === null || props === undefined) return o;
  const bag = props as Record<string, unknown>;
  for (let i = 0; i < PROPERTIES.length; i++) {
    const info = PROPERTIES[i];
    const v = bag[info.name];
    if (v === undefined) continue;
    if (info.type === PropertyType.Pair || (info.type === PropertyType.VarInt && Array.isArray(v))) {
      const list = v as unknown[];
      for (let j = 0; j < list.length; j++) o = writePropertyValue(buf, o, info.id, info.type, list[j]);
    } else {
      o = writePropertyValue(buf, o, info.id, info.type, v);
    }
  }
  return o;
}

// ---------------------------------------------------------------- PUBLISH

const PUBLISH_BIT = 1 << PacketType.Publish;

/** Remaining length of a PUBLISH, or ENCODE_INVALID. Sets lastPropLen. */
function publishRemaining(version: ProtocolVersion, topic: string, payloadLength: number, qos: QoS, properties: Properties | null): number {
  const tl = topicLength(topic);
  if (tl < 0 || tl > 0xffff || (qos !== 0 && qos !== 1 && qos !== 2)) return ENCODE_INVALID;
  let rl = 2 + tl + payloadLength + (qos === 0 ? 0 : 2);
  let pl = 0;
  if (version === ProtocolVersion.V5) {
    if (properties !== null && properties !== undefined) {
      pl = propertiesLength(properties, PUBLISH_BIT);
      if (pl < 0) return ENCODE_INVALID;
    }
    // An empty topic needs a topic alias [MQTT-3.3.2-8 / 3.3.4].
    if (tl === 0 && (pl === 0 || properties!.topicAlias === undefined)) return ENCODE_INVALID;
    rl += varintSize(pl) + pl;
  } else if (tl === 0) {
    return ENCODE_INVALID; // [MQTT-4.7.3-1]
  }
  lastPropLen = pl;
  return rl > MAX_VARINT ? ENCODE_INVALID : rl;
}

/**
 * Total bytes of a PUBLISH (fixed header included), or ENCODE_INVALID. Allocates nothing.
 */
export function publishLength(version: ProtocolVersion, topic: string, payloadLength: number, qos: QoS, properties: Properties | null): number {
  const rl = publishRemaining(version, topic, payloadLength, qos, properties);
  return rl < 0 ? rl : 1 + varintSize(rl) + rl;
}

/**
 * Encodes a PUBLISH at `offset`. Returns the bytes written, ENCODE_NO_SPACE or
 * ENCODE_INVALID (topic not a legal topic name, empty topic without a topic
 * alias [MQTT-4.7.3-1], packet id 0 with QoS > 0 [MQTT-2.2.1-3], DUP on QoS 0
 * [MQTT-3.3.1-2], bad properties, too long). Allocates nothing.
 * A Message Expiry Interval is always 4 bytes: publishLayout finds it so the
 * session layer can rewrite it in place before a resend.
 */
export function encodePublish(
  buf: Uint8Array,
  offset: number,
  version: ProtocolVersion,
  topic: string,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  packetId: number,
  properties: Properties | null,
): number {
  if (qos === 0) {
    if (dup) return ENCODE_INVALID;
  } else if (!isU16(packetId) || packetId === 0) {
    return ENCODE_INVALID;
  }
  const n = payload.length;
  const rl0 = publishRemaining(version, topic, n, qos, properties);
  if (rl0 < 0) return rl0;
  let rl = rl0;
  const pl = lastPropLen;
  const total = 1 + varintSize(rl) + rl;
  if (offset < 0 || offset + total > buf.length) return ENCODE_NO_SPACE;
  let o = offset;
  buf[o++] = 0x30 | (dup ? PUBLISH_DUP_FLAG : 0) | (qos << 1) | (retain ? 1 : 0);
  while (rl >= 0x80) {
    buf[o++] = (rl & 0x7f) | 0x80;
    rl >>>= 7;
  }
  buf[o++] = rl;
  const tn = topic.length;
  const tl = rl0 - n - (qos === 0 ? 2 : 4) - (version === ProtocolVersion.V5 ? varintSize(pl) + pl : 0);
  buf[o++] = tl >> 8;
  buf[o++] = tl & 0xff;
  if (topic === lastTopic && lastTopicBytes !== null) {
    buf.set(lastTopicBytes, o);
    o += tl;
  } else if (tl === tn) {
    for (let i = 0; i < tn; i++) buf[o++] = topic.charCodeAt(i);
  } else {
    o = utf8Write(topic, buf, o);
  }
  if (qos !== 0) {
    buf[o++] = packetId >> 8;
    buf[o++] = packetId & 0xff;
  }
  if (version === ProtocolVersion.V5) o = writeProperties(buf, o, properties, pl);
  if (n < 32) {
    for (let i = 0; i < n; i++) buf[o++] = payload[i];
  } else {
    buf.set(payload, o);
  }
  return total;
}

/** Sets the DUP flag of an encoded PUBLISH in place (for a resend [MQTT-4.4.0-1]). */
export function markDuplicate(buf: Uint8Array, offset: number): void {
  buf[offset] |= PUBLISH_DUP_FLAG;
}

/**
 * Finds the fields of an encoded PUBLISH at `offset` that a resend may patch.
 * Writes out[0] = offset of the packet id (-1 for QoS 0) and out[1] = offset
 * of the 4-byte Message Expiry Interval value (-1 if absent or 3.1.1).
 * Returns the packet's total length, or ENCODE_INVALID if the bytes are not a
 * complete PUBLISH. Allocates nothing.
 */
export function publishLayout(buf: Uint8Array, offset: number, version: ProtocolVersion, out: Int32Array): number {
  out[0] = -1;
  out[1] = -1;
  const end0 = buf.length;
  if (offset < 0 || offset + 2 > end0 || buf[offset] >> 4 !== PacketType.Publish) return ENCODE_INVALID;
  let o = offset + 1;
  let rl = 0;
  let shift = 0;
  for (;;) {
    if (o >= end0 || shift > 21) return ENCODE_INVALID;
    const b = buf[o++];
    rl += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) break;
  }
  const end = o + rl;
  if (end > end0 || o + 2 > end) return ENCODE_INVALID;
  o += 2 + ((buf[o] << 8) | buf[o + 1]);
  if (((buf[offset] >> 1) & 3) !== 0) {
    if (o + 2 > end) return ENCODE_INVALID;
    out[0] = o;
    o += 2;
  }
  if (version === ProtocolVersion.V5) {
    let pl = 0;
    shift = 0;
    for (;;) {
      if (o >= end || shift > 21) return ENCODE_INVALID;
      const b = buf[o++];
      pl += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) break;
    }
    const pend = o + pl;
    if (pend > end) return ENCODE_INVALID;
    while (o < pend) {
      const id = buf[o++];
      const info = id < PROPERTY_BY_ID.length ? PROPERTY_BY_ID[id] : undefined;
      if (info === undefined) return ENCODE_INVALID;
      if (id === PropertyId.MessageExpiryInterval) out[1] = o;
      switch (info.type) {
        case PropertyType.Byte: o += 1; break;
        case PropertyType.U16: o += 2; break;
        case PropertyType.U32: o += 4; break;
        case PropertyType.VarInt:
          while (o < pend && buf[o] >= 0x80) o++;
          o++;
          break;
        case PropertyType.Utf8:
        case PropertyType.Binary:
          if (o + 2 > pend) return ENCODE_INVALID;
          o += 2 + ((buf[o] << 8) | buf[o + 1]);
          break;
        case PropertyType.Pair:
          if (o + 2 > pend) return ENCODE_INVALID;
          o += 2 + ((buf[o] << 8) | buf[o + 1]);
          if (o + 2 > pend) return ENCODE_INVALID;
          o += 2 + ((buf[o] << 8) | buf[o + 1]);
          break;
      }
    }
    if (o !== pend) {
      out[1] = -1;
      return ENCODE_INVALID;
    }
  }
  return end - offset;
}

// ---------------------------------------------------------------- acks

function ackReasonAllowed(type: number, reasonCode: number): boolean {
  if ((reasonCode & 0xff) !== reasonCode) return false;
  return (type === PacketType.Puback || type === PacketType.Pubrec ? PUBACK_REASONS : PUBREL_REASONS)[reasonCode] === 1;
}

/**
 * Encodes PUBACK, PUBREC, PUBREL or PUBCOMP without properties in its shortest
 * legal form: 4 bytes, or in MQTT 5 with a non-zero reason 5 bytes (the
 * property length is left out [MQTT-3.4.2.2.1]). A 3.1.1 ack has no reason
 * code: a non-zero one is ENCODE_INVALID. Allocates nothing.
 */
export function encodeAck(buf: Uint8Array, offset: number, version: ProtocolVersion, type: number, packetId: number, reasonCode: number): number {
  if (type < PacketType.Puback || type > PacketType.Pubcomp || !isU16(packetId) || packetId === 0) return ENCODE_INVALID;
  if (reasonCode !== 0 && (version !== ProtocolVersion.V5 || !ackReasonAllowed(type, reasonCode))) return ENCODE_INVALID;
  const total = reasonCode === 0 ? 4 : 5;
  if (offset < 0 || offset + total > buf.length) return ENCODE_NO_SPACE;
  buf[offset] = (type << 4) | (type === PacketType.Pubrel ? 0x02 : 0);
  buf[offset + 1] = total - 2;
  buf[offset + 2] = packetId >> 8;
  buf[offset + 3] = packetId & 0xff;
  if (total === 5) buf[offset + 4] = reasonCode;
  return total;
}

// ---------------------------------------------------------------- generic


function isQoS(q: unknown): boolean {
  return q === 0 || q === 1 || q === 2;
}

/** v5 properties section: varint length + properties. Sets lastPropLen. */
function sectionLength(props: Properties | undefined, where: number): number {
  const pl = propertiesLength(props, where);
  if (pl < 0) return ENCODE_INVALID;
  lastPropLen = pl;
  return varintSize(pl) + pl;
}

/** Remaining length of `p`, or ENCODE_INVALID. */
function remainingLength(p: Packet, version: ProtocolVersion): number {
  const v5 = version === ProtocolVersion.V5;
  if (version !== ProtocolVersion.V5 && version !== ProtocolVersion.V311) return ENCODE_INVALID;
  lastPropLen = 0;
  switch (p.type) {
    case PacketType.Connect: {
      if (p.protocolVersion !== version || !isU16(p.keepalive)) return ENCODE_INVALID;
      let rl = 10;
      if (v5) {
        const s = sectionLength(p.properties, 1 << PacketType.Connect);
        if (s < 0) return s;
        rl += s;
      }
      const cid = stringField(p.clientId);
      if (cid < 0) return ENCODE_INVALID;
      rl += cid;
      lastWillPropLen = 0;
      const will = p.will;
      if (will !== undefined) {
        if (!isQoS(will.qos)) return ENCODE_INVALID;
        const t = typeof will.topic === 'string' ? topicLength(will.topic) : -1;
        if (t < 1 || t > 0xffff) return ENCODE_INVALID;
        const pay = binaryField(will.payload);
        if (pay < 0) return ENCODE_INVALID;
        rl += 2 + t + pay;
        if (v5) {
          const saved = lastPropLen;
          const s = sectionLength(will.properties, WILL_PROPERTIES);
          if (s < 0) return s;
          lastWillPropLen = lastPropLen;
          lastPropLen = saved;
          rl += s;
        }
      }
      if (p.username !== undefined) {
        const u = stringField(p.username);
        if (u < 0) return ENCODE_INVALID;
        rl += u;
      } else if (p.password !== undefined && !v5) {
        return ENCODE_INVALID; // [MQTT-3.1.2-22]
      }
      if (p.password !== undefined) {
        const w = binaryField(p.password);
        if (w < 0) return ENCODE_INVALID;
        rl += w;
      }
      return rl;
    }
    case PacketType.Connack: {
      const rc = p.reasonCode;
      if (typeof rc !== 'number' || (rc & 0xff) !== rc) return ENCODE_INVALID;
      if (v5 ? CONNACK_REASONS[rc] !== 1 : rc > 5) return ENCODE_INVALID;
      if (p.sessionPresent && rc !== 0) return ENCODE_INVALID; // [MQTT-3.2.2-4] / [MQTT-3.2.2-6]
      if (!v5) return 2;
      const s = sectionLength(p.properties, 1 << PacketType.Connack);
      return s < 0 ? s : 2 + s;
    }
    case PacketType.Publish: {
      if (p.qos === 0 ? p.dup : !isU16(p.packetId) || p.packetId === 0) return ENCODE_INVALID;
      return publishRemaining(version, p.topic, p.payload.length, p.qos, p.properties ?? null);
    }
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp: {
      if (!isU16(p.packetId) || p.packetId === 0) return ENCODE_INVALID;
      const rc = p.reasonCode;
      if (!v5) return rc === 0 ? 2 : ENCODE_INVALID;
      if (!ackReasonAllowed(p.type, rc)) return ENCODE_INVALID;
      const pl = propertiesLength(p.properties, 1 << p.type);
      if (pl < 0) return pl;
      lastPropLen = pl;
      return pl === 0 ? (rc === 0 ? 2 : 3) : 3 + varintSize(pl) + pl;
    }
    case PacketType.Subscribe: {
      if (!isU16(p.packetId) || p.packetId === 0) return ENCODE_INVALID;
      const subs = p.subscriptions;
      if (!Array.isArray(subs) || subs.length === 0) return ENCODE_INVALID; // [MQTT-3.8.3-3]
      let rl = 2;
      if (v5) {
        const s = sectionLength(p.properties, 1 << PacketType.Subscribe);
        if (s < 0) return s;
        rl += s;
      }
      for (let i = 0; i < subs.length; i++) {
        const sub = subs[i];
        const f = stringField(sub.topic);
        if (f < 3 || !isQoS(sub.qos)) return ENCODE_INVALID; // [MQTT-4.7.3-1] at least one character
        if (sub.retainHandling !== undefined && sub.retainHandling !== 0 && sub.retainHandling !== 1 && sub.retainHandling !== 2) return ENCODE_INVALID;
        rl += f + 1;
      }
      return rl;
    }
    case PacketType.Suback: {
      if (!isU16(p.packetId) || p.packetId === 0) return ENCODE_INVALID;
      const codes = p.reasonCodes;
      if (!Array.isArray(codes) || codes.length === 0) return ENCODE_INVALID;
      const table = v5 ? SUBACK_REASONS : SUBACK_RETURN_CODES_311;
      for (let i = 0; i < codes.length; i++) {
        const c = codes[i];
        if ((c & 0xff) !== c || table[c] !== 1) return ENCODE_INVALID;
      }
      let rl = 2 + codes.length;
      if (v5) {
        const s = sectionLength(p.properties, 1 << PacketType.Suback);
        if (s < 0) return s;
        rl += s;
      }
      return rl;
    }
    case PacketType.Unsubscribe: {
      if (!isU16(p.packetId) || p.packetId === 0) return ENCODE_INVALID;
      const topics = p.topics;
      if (!Array.isArray(topics) || topics.length === 0) return ENCODE_INVALID; // [MQTT-3.10.3-2]
      let rl = 2;
      if (v5) {
        const s = sectionLength(p.properties, 1 << PacketType.Unsubscribe);
        if (s < 0) return s;
        rl += s;
      }
      for (let i = 0; i < topics.length; i++) {
        const f = stringField(topics[i]);
        if (f < 3) return ENCODE_INVALID;
        rl += f;
      }
      return rl;
    }
    case PacketType.Unsuback: {
      if (!isU16(p.packetId) || p.packetId === 0) return ENCODE_INVALID;
      if (!v5) return 2; // 3.1.1 UNSUBACK has no payload: reasonCodes are not sent
      const codes = p.reasonCodes;
      if (!Array.isArray(codes)) return ENCODE_INVALID;
      for (let i = 0; i < codes.length; i++) {
        const c = codes[i];
        if ((c & 0xff) !== c || UNSUBACK_REASONS[c] !== 1) return ENCODE_INVALID;
      }
      const s = sectionLength(p.properties, 1 << PacketType.Unsuback);
      return s < 0 ? s : 2 + s + codes.length;
    }
    case PacketType.Pingreq:
    case PacketType.Pingresp:
      return 0;
    case PacketType.Disconnect:
    case PacketType.Auth: {
      const rc = p.reasonCode;
      const auth = p.type === PacketType.Auth;
      if (!v5) return rc === 0 && !auth ? 0 : ENCODE_INVALID;
      if (typeof rc !== 'number' || (rc & 0xff) !== rc || (auth ? AUTH_REASONS : DISCONNECT_REASONS)[rc] !== 1) return ENCODE_INVALID;
      const pl = propertiesLength(p.properties, 1 << p.type);
      if (pl < 0) return pl;
      lastPropLen = pl;
      // Reason and property length may both be left out for success with no properties (3.14.2.1, 3.15.2.1).
      return pl === 0 ? (rc === 0 ? 0 : 1) : 1 + varintSize(pl) + pl;
    }
  }
  return ENCODE_INVALID;
}

/**
 * Total bytes `p` encodes to in `version` (fixed header included), or
 * ENCODE_INVALID. 3.1.1 has no properties: any given are not sent.
 */
export function encodedLength(p: Packet, version: ProtocolVersion): number {
  const rl = remainingLength(p, version);
  if (rl < 0) return rl;
  if (rl > MAX_VARINT) return ENCODE_INVALID;
  return 1 + varintSize(rl) + rl;
}

function writeSubscription(buf: Uint8Array, o: number, s: Subscription, v5: boolean): number {
  o = writeString(buf, o, s.topic, utf8Length(s.topic));
  let opts = s.qos;
  if (v5) {
    if (s.noLocal) opts |= 0x04;
    if (s.retainAsPublished) opts |= 0x08;
    if (s.retainHandling) opts |= s.retainHandling << 4;
  }
  buf[o++] = opts;
  return o;
}

/**
 * Encodes `p` at `offset`. Returns the bytes written, ENCODE_NO_SPACE (nothing
 * is written past the end of `buf`), or ENCODE_INVALID. 3.1.1 has no
 * properties: any given are not sent.
 */
export function encode(p: Packet, version: ProtocolVersion, buf: Uint8Array, offset: number): number {
  if (p.type === PacketType.Publish) {
    return encodePublish(buf, offset, version, p.topic, p.payload, p.qos, p.retain, p.dup, p.packetId, p.properties ?? null);
  }
  const rl = remainingLength(p, version);
  if (rl < 0) return rl;
  if (rl > MAX_VARINT) return ENCODE_INVALID;
  const total = 1 + varintSize(rl) + rl;
  if (offset < 0 || offset + total > buf.length) return ENCODE_NO_SPACE;
  const v5 = version === ProtocolVersion.V5;
  const type = p.type;
  let o = offset;
  buf[o++] = (type << 4) | (type === PacketType.Pubrel || type === PacketType.Subscribe || type === PacketType.Unsubscribe ? 0x02 : 0);
  o = writeVarint(buf, o, rl);
  const pl = lastPropLen;
  switch (type) {
    case PacketType.Connect: {
      buf[o++] = 0;
      buf[o++] = 4;
      buf[o++] = 0x4d; // M
      buf[o++] = 0x51; // Q
      buf[o++] = 0x54; // T
      buf[o++] = 0x54; // T
      buf[o++] = version;
      const will = p.will;
      let flags = p.clean ? 0x02 : 0;
      if (will !== undefined) flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
      if (p.password !== undefined) flags |= 0x40;
      if (p.username !== undefined) flags |= 0x80;
      buf[o++] = flags;
      buf[o++] = p.keepalive >> 8;
      buf[o++] = p.keepalive & 0xff;
      if (v5) o = writeProperties(buf, o, p.properties, pl);
      o = writeString(buf, o, p.clientId, utf8Length(p.clientId));
      if (will !== undefined) {
        if (v5) o = writeProperties(buf, o, will.properties, lastWillPropLen);
        o = writeString(buf, o, will.topic, utf8Length(will.topic));
        o = writeBinary(buf, o, will.payload);
      }
      if (p.username !== undefined) o = writeString(buf, o, p.username, utf8Length(p.username));
      if (p.password !== undefined) o = writeBinary(buf, o, p.password);
      break;
    }
    case PacketType.Connack:
      buf[o++] = p.sessionPresent ? 1 : 0;
      buf[o++] = p.reasonCode;
      if (v5) o = writeProperties(buf, o, p.properties, pl);
      break;
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp:
      buf[o++] = p.packetId >> 8;
      buf[o++] = p.packetId & 0xff;
      if (rl > 2) buf[o++] = p.reasonCode;
      if (rl > 3) o = writeProperties(buf, o, p.properties, pl);
      break;
    case PacketType.Subscribe:
      buf[o++] = p.packetId >> 8;
      buf[o++] = p.packetId & 0xff;
      if (v5) o = writeProperties(buf, o, p.properties, pl);
      for (let i = 0; i < p.subscriptions.length; i++) o = writeSubscription(buf, o, p.subscriptions[i], v5);
      break;
    case PacketType.Suback:
    case PacketType.Unsuback:
      buf[o++] = p.packetId >> 8;
      buf[o++] = p.packetId & 0xff;
      if (v5) {
        o = writeProperties(buf, o, p.properties, pl);
        for (let i = 0; i < p.reasonCodes.length; i++) buf[o++] = p.reasonCodes[i];
      } else if (type === PacketType.Suback) {
        for (let i = 0; i < p.reasonCodes.length; i++) buf[o++] = p.reasonCodes[i];
      }
      break;
    case PacketType.Unsubscribe:
      buf[o++] = p.packetId >> 8;
      buf[o++] = p.packetId & 0xff;
      if (v5) o = writeProperties(buf, o, p.properties, pl);
      for (let i = 0; i < p.topics.length; i++) o = writeString(buf, o, p.topics[i], utf8Length(p.topics[i]));
      break;
    case PacketType.Disconnect:
    case PacketType.Auth:
      if (rl > 0) buf[o++] = p.reasonCode;
      if (rl > 1) o = writeProperties(buf, o, p.properties, pl);
      break;
  }
  return total;
}
