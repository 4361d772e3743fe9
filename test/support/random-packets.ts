// Seeded random MQTT packets and the differential check against mqtt-packet:
// ours -> mqtt-packet parser, and mqtt-packet generate -> ours, comparing the
// decoded meaning (not bytes: mqtt-packet writes 6-byte MQTT 5 acks, ours 4).
// Shared by test/mqtt/differential.test.ts and bench/differential.ts.

import { createRequire } from 'node:module';
import { PROPERTIES, PropertyCheck, PropertyType, WILL_PROPERTIES, CONNACK_REASONS, PUBACK_REASONS, PUBREL_REASONS, SUBACK_REASONS, UNSUBACK_REASONS, DISCONNECT_REASONS, AUTH_REASONS } from '../../modules/mqtt/constants.js';
import { encode, encodedLength } from '../../modules/mqtt/encode.js';
import { DECODE_ERROR, DECODE_PACKET, PacketDecoder, DecodedPublish } from '../../modules/mqtt/decode.js';
import type { Packet, Properties, QoS, Subscription } from '../../modules/mqtt/types.js';
import { PacketType, ProtocolVersion } from '../../modules/mqtt/types.js';
import { Prng } from './prng.js';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const mqttPacket: any = require('mqtt-packet');

// ------------------------------------------------------------------ values

const ASCII = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-. ';
const WIDE = ['é', 'ß', 'Ω', 'ж', '€', '中', '文', '\u07ff', '\u0800', '\uffff', '😀', '𝄞', '\u{10ffff}', '\u0001', '\u007f'];

export function randomString(rng: Prng, min: number, max: number, extra = ''): string {
  const n = rng.int(min, max);
  let s = '';
  const wide = rng.bool(0.3);
  for (let i = 0; i < n; i++) {
    if (wide && rng.bool(0.3)) s += rng.pick(WIDE);
    else if (extra !== '' && rng.bool(0.1)) s += extra[rng.int(0, extra.length - 1)];
    else s += ASCII[rng.int(0, ASCII.length - 1)];
  }
  return s;
}

function payloadLength(rng: Prng): number {
  const r = rng.float();
  if (r < 0.7) return rng.int(0, 40);
  if (r < 0.95) return rng.int(41, 400);
  if (r < 0.995) return rng.int(401, 20000);
  return rng.int(20001, 70000);
}

const BOOLEAN_PROPS = new Set([
  'payloadFormatIndicator',
  'requestProblemInformation',
  'requestResponseInformation',
  'retainAvailable',
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifiersAvailable',
  'sharedSubscriptionAvailable',
]);

/** Random properties legal for a packet of kind `where` (1 << type or WILL_PROPERTIES). */
export function randomProperties(rng: Prng, where: number): Properties | undefined {
  if (rng.bool(0.5)) return undefined;
  const out: Record<string, unknown> = {};
  let any = false;
  for (const info of PROPERTIES) {
    if ((info.allowed & where) === 0 || !rng.bool(0.35)) continue;
    any = true;
    const one = (): unknown => {
      switch (info.type) {
        case PropertyType.Byte:
          return rng.int(0, 1);
        case PropertyType.U16:
          return rng.bool(0.2) ? 65535 : rng.int(info.check === PropertyCheck.NonZero ? 1 : 0, 65535);
        case PropertyType.U32:
          return rng.bool(0.2) ? 0xffffffff : rng.int(info.check === PropertyCheck.NonZero ? 1 : 0, 0xffffffff);
        case PropertyType.VarInt:
          return rng.bool(0.2) ? 268435455 : rng.int(1, rng.bool(0.5) ? 127 : 268435455);
        case PropertyType.Utf8:
          return randomString(rng, 0, 20);
        case PropertyType.Binary:
          return rng.bytes(rng.int(0, 20));
        default:
          return undefined;
      }
    };
    if (info.type === PropertyType.Pair) {
      const n = rng.int(1, 4);
      const pairs: Array<[string, string]> = [];
      for (let i = 0; i < n; i++) pairs.push([rng.bool(0.4) ? 'k' : randomString(rng, 1, 8), randomString(rng, 0, 12)]);
      out[info.name] = pairs;
    } else if ((info.repeatable & where) !== 0 && rng.bool(0.3)) {
      out[info.name] = [one(), one(), ...(rng.bool(0.5) ? [one()] : [])];
    } else {
      out[info.name] = one();
    }
  }
  return any ? (out as Properties) : undefined;
}

function withProps<T extends object>(p: T, props: Properties | undefined): T {
  if (props !== undefined) (p as { properties?: Properties }).properties = props;
  return p;
}

function pickCode(rng: Prng, table: Uint8Array): number {
  const codes: number[] = [];
  for (let i = 0; i < 256; i++) if (table[i] === 1) codes.push(i);
  return rng.bool(0.5) ? 0 : rng.pick(codes);
}

export const ALL_TYPES: readonly PacketType[] = [
  PacketType.Connect,
  PacketType.Connack,
  PacketType.Publish,
  PacketType.Puback,
  PacketType.Pubrec,
  PacketType.Pubrel,
  PacketType.Pubcomp,
  PacketType.Subscribe,
  PacketType.Suback,
  PacketType.Unsubscribe,
  PacketType.Unsuback,
  PacketType.Pingreq,
  PacketType.Pingresp,
  PacketType.Disconnect,
  PacketType.Auth,
];

/** A random packet of `type` that is legal in `version` and that mqtt-packet can also generate. */
export function randomPacket(rng: Prng, version: ProtocolVersion, type: PacketType): Packet {
  const v5 = version === ProtocolVersion.V5;
  const props = (t: number) => (v5 ? randomProperties(rng, t === 0 ? WILL_PROPERTIES : 1 << t) : undefined);
  const id = () => (rng.bool(0.2) ? rng.pick([1, 255, 256, 65535]) : rng.int(1, 65535));
  switch (type) {
    case PacketType.Connect: {
      const clientId = rng.bool(0.2) ? '' : randomString(rng, 1, 23);
      const p: Packet = { type, protocolVersion: version, clientId, clean: clientId === '' ? true : rng.bool(), keepalive: rng.int(0, 65535) };
      if (rng.bool(0.4)) {
        p.will = withProps({ topic: randomString(rng, 1, 30), payload: rng.bytes(payloadLength(rng) % 300), qos: rng.int(0, 2) as QoS, retain: rng.bool() }, props(0));
      }
      if (rng.bool(0.5)) {
        p.username = randomString(rng, 0, 12);
        if (rng.bool(0.6)) p.password = rng.bytes(rng.int(0, 20));
      }
      return withProps(p, props(type));
    }
    case PacketType.Connack: {
      const reasonCode = v5 ? pickCode(rng, CONNACK_REASONS) : rng.bool(0.5) ? 0 : rng.int(1, 5);
      return withProps({ type, sessionPresent: reasonCode === 0 && rng.bool(), reasonCode }, props(type));
    }
    case PacketType.Publish: {
      const qos = rng.int(0, 2) as QoS;
      let properties = props(type);
      let topic = randomString(rng, 1, 40);
      if (v5 && rng.bool(0.1)) {
        properties = { ...(properties ?? {}), topicAlias: rng.int(1, 65535) };
        if (rng.bool(0.5)) topic = '';
      }
      return withProps(
        { type, topic, payload: rng.bytes(payloadLength(rng)), qos, retain: rng.bool(), dup: qos > 0 && rng.bool(0.3), packetId: qos > 0 ? id() : 0 },
        properties,
      );
    }
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp: {
      const table = type === PacketType.Puback || type === PacketType.Pubrec ? PUBACK_REASONS : PUBREL_REASONS;
      return withProps({ type, packetId: id(), reasonCode: v5 ? pickCode(rng, table) : 0 }, props(type));
    }
    case PacketType.Subscribe: {
      const subscriptions: Subscription[] = [];
      const n = rng.int(1, 5);
      for (let i = 0; i < n; i++) {
        const s: Subscription = { topic: randomString(rng, 1, 30, '+#'), qos: rng.int(0, 2) as QoS };
        if (v5) {
          s.noLocal = rng.bool();
          s.retainAsPublished = rng.bool();
          s.retainHandling = rng.int(0, 2) as 0 | 1 | 2;
        }
        subscriptions.push(s);
      }
      return withProps({ type, packetId: id(), subscriptions }, props(type));
    }
    case PacketType.Suback: {
      const n = rng.int(1, 6);
      const reasonCodes: number[] = [];
      for (let i = 0; i < n; i++) reasonCodes.push(v5 ? pickCode(rng, SUBACK_REASONS) : rng.pick([0, 1, 2, 0x80]));
      return withProps({ type, packetId: id(), reasonCodes }, props(type));
    }
    case PacketType.Unsubscribe: {
      const topics: string[] = [];
      const n = rng.int(1, 5);
      for (let i = 0; i < n; i++) topics.push(randomString(rng, 1, 30, '+#'));
      return withProps({ type, packetId: id(), topics }, props(type));
    }
    case PacketType.Unsuback: {
      const reasonCodes: number[] = [];
      if (v5) {
        const n = rng.int(1, 6);
        for (let i = 0; i < n; i++) reasonCodes.push(pickCode(rng, UNSUBACK_REASONS));
      }
      return withProps({ type, packetId: id(), reasonCodes }, props(type));
    }
    case PacketType.Pingreq:
      return { type };
    case PacketType.Pingresp:
      return { type };
    case PacketType.Disconnect:
      return withProps({ type, reasonCode: v5 ? pickCode(rng, DISCONNECT_REASONS) : 0 }, props(type));
    case PacketType.Auth:
      return withProps({ type, reasonCode: pickCode(rng, AUTH_REASONS) }, props(type));
  }
}

// ------------------------------------------------------------------ canonical form

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/** Properties in a comparable form; accepts ours (pairs) or mqtt-packet's (object, Buffers, booleans). */
function canonicalProps(props: unknown): Record<string, unknown> | undefined {
  if (props === undefined || props === null) return undefined;
  const src = props as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(src).sort()) {
    const v = src[name];
    if (v === undefined) continue;
    if (name === 'userProperties') {
      const map: Record<string, string[]> = {};
      if (Array.isArray(v)) {
        for (const [k, w] of v as Array<[string, string]>) (map[k] ??= []).push(w);
      } else {
        for (const k of Object.keys(v as object)) {
          const w = (v as Record<string, string | string[]>)[k];
          map[k] = Array.isArray(w) ? w.slice() : [w];
        }
      }
      const sorted: Record<string, string[]> = {};
      for (const k of Object.keys(map).sort()) sorted[k] = map[k];
      out[name] = sorted;
    } else if (name === 'subscriptionIdentifier') {
      out[name] = Array.isArray(v) ? v.slice() : [v];
    } else if (v instanceof Uint8Array) {
      out[name] = hex(v);
    } else if (typeof v === 'boolean') {
      out[name] = v ? 1 : 0;
    } else {
      out[name] = v;
    }
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** A JSON-able description of a packet's meaning in `version`. */
export function canonical(p: Packet, version: ProtocolVersion): Record<string, unknown> {
  const v5 = version === ProtocolVersion.V5;
  const props = (x: Properties | undefined) => (v5 ? canonicalProps(x) : undefined);
  switch (p.type) {
    case PacketType.Connect: {
      const pv5 = p.protocolVersion === ProtocolVersion.V5;
      return {
        type: p.type,
        protocolVersion: p.protocolVersion,
        clientId: p.clientId,
        clean: p.clean,
        keepalive: p.keepalive,
        username: p.username,
        password: p.password === undefined ? undefined : hex(p.password),
        will:
          p.will === undefined
            ? undefined
            : { topic: p.will.topic, payload: hex(p.will.payload), qos: p.will.qos, retain: p.will.retain, properties: pv5 ? canonicalProps(p.will.properties) : undefined },
        properties: pv5 ? canonicalProps(p.properties) : undefined,
      };
    }
    case PacketType.Connack:
      return { type: p.type, sessionPresent: p.sessionPresent, reasonCode: p.reasonCode, properties: props(p.properties) };
    case PacketType.Publish:
      return {
        type: p.type,
        topic: p.topic,
        payload: hex(p.payload),
        qos: p.qos,
        retain: p.retain,
        dup: p.dup,
        packetId: p.qos === 0 ? 0 : p.packetId,
        properties: props(p.properties),
      };
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp:
      return { type: p.type, packetId: p.packetId, reasonCode: p.reasonCode, properties: props(p.properties) };
    case PacketType.Subscribe:
      return {
        type: p.type,
        packetId: p.packetId,
        subscriptions: p.subscriptions.map((s) =>
          v5
            ? { topic: s.topic, qos: s.qos, nl: !!s.noLocal, rap: !!s.retainAsPublished, rh: s.retainHandling ?? 0 }
            : { topic: s.topic, qos: s.qos },
        ),
        properties: props(p.properties),
      };
    case PacketType.Suback:
      return { type: p.type, packetId: p.packetId, reasonCodes: p.reasonCodes.slice(), properties: props(p.properties) };
    case PacketType.Unsubscribe:
      return { type: p.type, packetId: p.packetId, topics: p.topics.slice(), properties: props(p.properties) };
    case PacketType.Unsuback:
      return { type: p.type, packetId: p.packetId, reasonCodes: v5 ? p.reasonCodes.slice() : [], properties: props(p.properties) };
    case PacketType.Pingreq:
    case PacketType.Pingresp:
      return { type: p.type };
    case PacketType.Disconnect:
    case PacketType.Auth:
      return { type: p.type, reasonCode: v5 ? p.reasonCode : 0, properties: props(p.properties) };
  }
}

/** JSON with undefined fields dropped, for comparison and for printing. */
export function canonicalJson(p: Packet, version: ProtocolVersion): string {
  return JSON.stringify(canonical(p, version));
}

// ------------------------------------------------------------------ mqtt-packet mapping

const CMD = ['reserved', 'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback', 'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect', 'auth'];

function peerProps(props: Properties | undefined): unknown {
  if (props === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(props)) {
    if (v === undefined) continue;
    if (name === 'userProperties') {
      const obj: Record<string, string | string[]> = {};
      for (const [k, w] of v as Array<[string, string]>) {
        const prev = obj[k];
        obj[k] = prev === undefined ? w : Array.isArray(prev) ? [...prev, w] : [prev, w];
      }
      out[name] = obj;
    } else if (BOOLEAN_PROPS.has(name)) {
      out[name] = v === 1;
    } else if (v instanceof Uint8Array) {
      out[name] = Buffer.from(v);
    } else {
      out[name] = v;
    }
  }
  return out;
}

/** Our packet as the object mqtt-packet's generate() takes. */
export function toPeer(p: Packet, version: ProtocolVersion): Record<string, unknown> {
  const cmd = CMD[p.type];
  switch (p.type) {
    case PacketType.Connect:
      return {
        cmd,
        protocolId: 'MQTT',
        protocolVersion: p.protocolVersion,
        clientId: p.clientId,
        clean: p.clean,
        keepalive: p.keepalive,
        username: p.username,
        password: p.password === undefined ? undefined : Buffer.from(p.password),
        will:
          p.will === undefined
            ? undefined
            : { topic: p.will.topic, payload: Buffer.from(p.will.payload), qos: p.will.qos, retain: p.will.retain, properties: peerProps(p.will.properties) },
        properties: peerProps(p.properties),
      };
    case PacketType.Connack:
      return version === ProtocolVersion.V5
        ? { cmd, sessionPresent: p.sessionPresent, reasonCode: p.reasonCode, properties: peerProps(p.properties) }
        : { cmd, sessionPresent: p.sessionPresent, returnCode: p.reasonCode };
    case PacketType.Publish:
      return { cmd, topic: p.topic, payload: Buffer.from(p.payload), qos: p.qos, retain: p.retain, dup: p.dup, messageId: p.packetId, properties: peerProps(p.properties) };
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp:
      return { cmd, messageId: p.packetId, reasonCode: p.reasonCode, properties: peerProps(p.properties) };
    case PacketType.Subscribe:
      return {
        cmd,
        messageId: p.packetId,
        subscriptions: p.subscriptions.map((s) => ({ topic: s.topic, qos: s.qos, nl: s.noLocal ?? false, rap: s.retainAsPublished ?? false, rh: s.retainHandling ?? 0 })),
        properties: peerProps(p.properties),
      };
    case PacketType.Suback:
      return { cmd, messageId: p.packetId, granted: p.reasonCodes, properties: peerProps(p.properties) };
    case PacketType.Unsubscribe:
      return { cmd, messageId: p.packetId, unsubscriptions: p.topics, properties: peerProps(p.properties) };
    case PacketType.Unsuback:
      return { cmd, messageId: p.packetId, granted: p.reasonCodes, properties: peerProps(p.properties) };
    case PacketType.Pingreq:
    case PacketType.Pingresp:
      return { cmd };
    case PacketType.Disconnect:
    case PacketType.Auth:
      return { cmd, reasonCode: p.reasonCode, properties: peerProps(p.properties) };
  }
}

/** mqtt-packet's parsed object as our packet shape (for canonical()). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function fromPeer(pp: any, version: ProtocolVersion): Packet {
  const type = CMD.indexOf(pp.cmd) as PacketType;
  const v5 = version === ProtocolVersion.V5;
  const u8 = (b: Uint8Array | undefined) => (b === undefined ? undefined : new Uint8Array(b));
  switch (type) {
    case PacketType.Connect: {
      const p: Packet = { type, protocolVersion: pp.protocolVersion, clientId: pp.clientId, clean: pp.clean, keepalive: pp.keepalive };
      if (pp.username !== undefined) p.username = pp.username;
      if (pp.password !== undefined) p.password = u8(pp.password);
      if (pp.will !== undefined) p.will = { topic: pp.will.topic, payload: u8(pp.will.payload)!, qos: pp.will.qos, retain: pp.will.retain, properties: pp.will.properties };
      if (pp.properties !== undefined) p.properties = pp.properties;
      return p;
    }
    case PacketType.Connack:
      return { type, sessionPresent: pp.sessionPresent, reasonCode: v5 ? pp.reasonCode : pp.returnCode, properties: pp.properties };
    case PacketType.Publish:
      return { type, topic: pp.topic, payload: u8(pp.payload)!, qos: pp.qos, retain: pp.retain, dup: pp.dup, packetId: pp.messageId ?? 0, properties: pp.properties };
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp:
      return { type, packetId: pp.messageId, reasonCode: pp.reasonCode ?? 0, properties: pp.properties };
    case PacketType.Subscribe:
      return {
        type,
        packetId: pp.messageId,
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        subscriptions: pp.subscriptions.map((s: any) => ({ topic: s.topic, qos: s.qos, noLocal: s.nl, retainAsPublished: s.rap, retainHandling: s.rh })),
        properties: pp.properties,
      };
    case PacketType.Suback:
      return { type, packetId: pp.messageId, reasonCodes: pp.granted, properties: pp.properties };
    case PacketType.Unsubscribe:
      return { type, packetId: pp.messageId, topics: pp.unsubscriptions, properties: pp.properties };
    case PacketType.Unsuback:
      return { type, packetId: pp.messageId, reasonCodes: pp.granted ?? [], properties: pp.properties };
    case PacketType.Pingreq:
      return { type };
    case PacketType.Pingresp:
      return { type };
    case PacketType.Disconnect:
      return { type, reasonCode: pp.reasonCode ?? 0, properties: pp.properties };
    case PacketType.Auth:
      return { type, reasonCode: pp.reasonCode ?? 0, properties: pp.properties };
  }
  throw new Error('mqtt-packet returned unknown cmd ' + pp.cmd);
}

/** Parses one packet with mqtt-packet; returns the packet or an Error. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function peerParse(bytes: Uint8Array, version: ProtocolVersion): any {
  const parser = mqttPacket.parser({ protocolVersion: version });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const out: any[] = [];
  let error: Error | null = null;
  parser.on('packet', (p: unknown) => out.push(p));
  parser.on('error', (e: Error) => (error = error ?? e));
  parser.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  if (error !== null) return error;
  if (out.length !== 1) return new Error(`mqtt-packet parsed ${out.length} packets`);
  return out[0];
}

/** Generates one packet with mqtt-packet; returns bytes or an Error. */
export function peerGenerate(p: Packet, version: ProtocolVersion): Uint8Array | Error {
  try {
    const b: Buffer = mqttPacket.generate(toPeer(p, version), { protocolVersion: version });
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  } catch (e) {
    return e as Error;
  }
}

/** Decodes exactly one packet with ours; returns a standalone packet or a string error. */
export function oursDecode(bytes: Uint8Array, version: ProtocolVersion): Packet | string {
  const d = new PacketDecoder({ version, bufferSize: bytes.length + 16, maxPacketSize: bytes.length + 16 });
  d.feed(bytes);
  const r = d.next();
  if (r === DECODE_ERROR) return `DECODE_ERROR 0x${d.error!.reasonCode.toString(16)} ${d.error!.message}`;
  if (r !== DECODE_PACKET) return 'DECODE_NEED_DATA';
  const p = d.packet!;
  const out = p instanceof DecodedPublish ? p.toPacket() : p;
  if (d.next() !== 0) return 'trailing data after one packet';
  return out;
}

// ------------------------------------------------------------------ the check

export interface Mismatch {
  seed: number;
  index: number;
  version: ProtocolVersion;
  direction: 'ours->peer' | 'peer->ours' | 'ours->ours';
  packet: string;
  expected: string;
  actual: string;
}

export interface DifferentialResult {
  seed: number;
  packets: number;
  checks: number;
  mismatches: Mismatch[];
  /** Known mqtt-packet limitations met (not counted as mismatches), by name. */
  peerLimits: Record<string, number>;
}

/** mqtt-packet drops a user property value '' when the same name repeats after it (parser.js tests truthiness). */
function emptyThenRepeatedUserProperty(p: Packet): boolean {
  const lists: unknown[] = [(p as { properties?: Properties }).properties?.userProperties];
  if (p.type === PacketType.Connect) lists.push(p.will?.properties?.userProperties);
  for (const list of lists) {
    if (!Array.isArray(list)) continue;
    const seenEmpty = new Set<string>();
    for (const [k, w] of list as Array<[string, string]>) {
      if (seenEmpty.has(k)) return true;
      if (w === '') seenEmpty.add(k);
    }
  }
  return false;
}

const show = (p: Packet, v: ProtocolVersion): string => {
  try {
    return canonicalJson(p, v);
  } catch {
    return String(p);
  }
};

/**
 * Runs `count` random packets (all types, both versions, round robin) through
 * both directions. Stops collecting after `maxMismatches`.
 */
export function runDifferential(count: number, seed: number, maxMismatches = 10): DifferentialResult {
  const rng = new Prng(seed);
  const result: DifferentialResult = { seed, packets: 0, checks: 0, mismatches: [], peerLimits: {} };
  const limit = (name: string) => (result.peerLimits[name] = (result.peerLimits[name] ?? 0) + 1);
  const buf = new Uint8Array(80000);
  for (let i = 0; i < count && result.mismatches.length < maxMismatches; i++) {
    const version = i % 2 === 0 ? ProtocolVersion.V311 : ProtocolVersion.V5;
    const types = version === ProtocolVersion.V5 ? ALL_TYPES : ALL_TYPES.filter((t) => t !== PacketType.Auth);
    const type = types[(i >> 1) % types.length];
    const p = randomPacket(rng, version, type);
    const want = canonicalJson(p, version);
    const miss = (direction: Mismatch['direction'], actual: string) =>
      result.mismatches.push({ seed, index: i, version, direction, packet: show(p, version), expected: want, actual });
    result.packets++;

    // Ours -> ours and ours -> mqtt-packet.
    const n = encode(p, version, buf, 0);
    result.checks++;
    if (n < 0) {
      miss('ours->ours', `encode returned ${n}`);
      continue;
    }
    if (encodedLength(p, version) !== n) miss('ours->ours', `encodedLength ${encodedLength(p, version)} != encode ${n}`);
    const bytes = buf.slice(0, n);
    const self = oursDecode(bytes, version);
    if (typeof self === 'string') miss('ours->ours', self + ' bytes=' + hex(bytes));
    else if (canonicalJson(self, version) !== want) miss('ours->ours', canonicalJson(self, version));

    result.checks++;
    const pp = peerParse(bytes, version);
    if (pp instanceof Error) {
      // mqtt-packet cannot parse the short AUTH form (3.15.2.1: reason and properties left out).
      if (type === PacketType.Auth && n === 2) limit('AUTH with Remaining Length 0');
      else miss('ours->peer', 'mqtt-packet error: ' + pp.message + ' bytes=' + hex(bytes));
    } else {
      const got = canonicalJson(fromPeer(pp, version), version);
      if (got !== want && emptyThenRepeatedUserProperty(p)) limit("repeated user property after an empty value");
      else if (got !== want) miss('ours->peer', got + ' bytes=' + hex(bytes));
    }

    // mqtt-packet -> ours.
    result.checks++;
    const gen = peerGenerate(p, version);
    if (gen instanceof Error) {
      miss('peer->ours', 'mqtt-packet generate error: ' + gen.message);
      continue;
    }
    const theirs = oursDecode(gen, version);
    if (typeof theirs === 'string') miss('peer->ours', theirs + ' bytes=' + hex(gen));
    else if (canonicalJson(theirs, version) !== want) miss('peer->ours', canonicalJson(theirs, version) + ' bytes=' + hex(gen));
  }
  return result;
}

/** 1 to 4 edits: byte, bit, delete, insert, truncate, header byte, remaining-length byte, duplicated range. */
export function mutate(rng: Prng, src: Uint8Array): Uint8Array {
  const b = Array.from(src);
  const edits = rng.int(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(0, Math.max(0, b.length - 1));
    switch (rng.int(0, 7)) {
      case 0: b[at] = rng.int(0, 255); break;
      case 1: b[at] ^= 1 << rng.int(0, 7); break;
      case 2: b.splice(at, 1); break;
      case 3: b.splice(at, 0, rng.int(0, 255)); break;
      case 4: b.length = at; break;
      case 5: b[0] = rng.int(0, 255); break;
      case 6: if (b.length > 1) b[1] = rng.pick([0x00, 0x7f, 0x80, 0xff, rng.int(0, 255)]); break;
      case 7: {
        const from = rng.int(0, Math.max(0, b.length - 1));
        b.splice(at, 0, ...b.slice(from, from + rng.int(1, 16)));
        break;
      }
    }
  }
  return new Uint8Array(b);
}
