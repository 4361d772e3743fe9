// Byte fixtures for every packet type in MQTT 3.1.1 (version 4) and 5.0
// (version 5). Plain data, no test framework and nothing Node-only, so the same
// list can run inside XS (bundled with the codec) and be compared byte for byte.
//
// Each fixture: the packet, the exact bytes our encoder must produce (the
// shortest legal form), and the spec section. `decoded` is given when decoding
// the bytes yields a fuller object than `packet` (MQTT 5 subscription options).

import type { Packet } from '../../modules/mqtt/types.js';

export interface Fixture {
  name: string;
  /** Spec section or rule that fixes these bytes. */
  spec: string;
  version: 4 | 5;
  hex: string;
  packet: Packet;
  decoded?: Packet;
}

/** ASCII/UTF-8 bytes of a string literal, without TextEncoder (not a global on XS). */
export function bytes(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00) c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

export function fromHex(hex: string): Uint8Array {
  const h = hex.replace(/\s+/g, '');
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}

// Packet type numbers (PacketType is a const enum; plain numbers keep this file framework- and bundler-neutral).
const CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, PUBREC = 5, PUBREL = 6, PUBCOMP = 7, SUBSCRIBE = 8, SUBACK = 9,
  UNSUBSCRIBE = 10, UNSUBACK = 11, PINGREQ = 12, PINGRESP = 13, DISCONNECT = 14, AUTH = 15;

export const FIXTURES: Fixture[] = [
  // ------------------------------------------------------------------ MQTT 3.1.1
  {
    name: 'v3.1.1 CONNECT, empty client id, clean, keepalive 60 (14 B)',
    spec: '3.1.1 §3.1; [MQTT-3.1.3-6] empty ClientId with CleanSession 1',
    version: 4,
    hex: '100c00044d5154540402003c0000',
    packet: { type: CONNECT, protocolVersion: 4, clientId: '', clean: true, keepalive: 60 },
  },
  {
    name: 'v3.1.1 CONNECT with will, user name and password',
    spec: '3.1.1 §3.1.2.5-3.1.2.9, §3.1.3',
    version: 4,
    hex: '103100044d51545404ec001e000a646f726d6f7573652d3100097374617475732f643100076f66666c696e6500016b00027077',
    packet: {
      type: CONNECT, protocolVersion: 4, clientId: 'dormouse-1', clean: false, keepalive: 30,
      will: { topic: 'status/d1', payload: bytes('offline'), qos: 1, retain: true },
      username: 'k', password: bytes('pw'),
    },
  },
  {
    name: 'v3.1.1 CONNACK accepted, session present',
    spec: '3.1.1 §3.2.2.2-3.2.2.3',
    version: 4,
    hex: '20020100',
    packet: { type: CONNACK, sessionPresent: true, reasonCode: 0 },
  },
  {
    name: 'v3.1.1 CONNACK not authorized',
    spec: '3.1.1 §3.2.2.3 return code 5',
    version: 4,
    hex: '20020005',
    packet: { type: CONNACK, sessionPresent: false, reasonCode: 5 },
  },
  {
    name: 'v3.1.1 PUBLISH QoS 0 sensors/t1 "21.5" (18 B)',
    spec: '3.1.1 §3.3; no Packet Identifier at QoS 0 (§3.3.2.2)',
    version: 4,
    hex: '3010000a73656e736f72732f743132312e35',
    packet: { type: PUBLISH, topic: 'sensors/t1', payload: bytes('21.5'), qos: 0, retain: false, dup: false, packetId: 0 },
  },
  {
    name: 'v3.1.1 PUBLISH QoS 1 sensors/t1 "21.5" (20 B)',
    spec: '3.1.1 §3.3.1, §3.3.2.2',
    version: 4,
    hex: '3212000a73656e736f72732f7431000132312e35',
    packet: { type: PUBLISH, topic: 'sensors/t1', payload: bytes('21.5'), qos: 1, retain: false, dup: false, packetId: 1 },
  },
  {
    name: 'v3.1.1 PUBLISH QoS 2, DUP, RETAIN, UTF-8 topic',
    spec: '3.1.1 §3.3.1.1-3.3.1.3, §1.5.3',
    version: 4,
    hex: '3d0e0008c3a9742fe282ac31123400ff',
    packet: { type: PUBLISH, topic: 'ét/€1', payload: new Uint8Array([0x00, 0xff]), qos: 2, retain: true, dup: true, packetId: 0x1234 },
  },
  {
    name: 'v3.1.1 PUBACK',
    spec: '3.1.1 §3.4',
    version: 4,
    hex: '40020001',
    packet: { type: PUBACK, packetId: 1, reasonCode: 0 },
  },
  {
    name: 'v3.1.1 PUBREC',
    spec: '3.1.1 §3.5',
    version: 4,
    hex: '5002ffff',
    packet: { type: PUBREC, packetId: 65535, reasonCode: 0 },
  },
  {
    name: 'v3.1.1 PUBREL (flags 0010)',
    spec: '3.1.1 §3.6.1 [MQTT-3.6.1-1]',
    version: 4,
    hex: '62020001',
    packet: { type: PUBREL, packetId: 1, reasonCode: 0 },
  },
  {
    name: 'v3.1.1 PUBCOMP',
    spec: '3.1.1 §3.7',
    version: 4,
    hex: '70020001',
    packet: { type: PUBCOMP, packetId: 1, reasonCode: 0 },
  },
  {
    name: 'v3.1.1 SUBSCRIBE two filters (flags 0010)',
    spec: '3.1.1 §3.8 [MQTT-3.8.1-1]',
    version: 4,
    hex: '8217000a0008636d642f64312f2301000773656e736f722b00',
    packet: { type: SUBSCRIBE, packetId: 10, subscriptions: [{ topic: 'cmd/d1/#', qos: 1 }, { topic: 'sensor+', qos: 0 }] },
  },
  {
    name: 'v3.1.1 SUBACK granted and failure',
    spec: '3.1.1 §3.9.3',
    version: 4,
    hex: '9005000a000180',
    packet: { type: SUBACK, packetId: 10, reasonCodes: [0, 1, 0x80] },
  },
  {
    name: 'v3.1.1 UNSUBSCRIBE (flags 0010)',
    spec: '3.1.1 §3.10 [MQTT-3.10.1-1]',
    version: 4,
    hex: 'a20c000b0008636d642f64312f23',
    packet: { type: UNSUBSCRIBE, packetId: 11, topics: ['cmd/d1/#'] },
  },
  {
    name: 'v3.1.1 UNSUBACK',
    spec: '3.1.1 §3.11',
    version: 4,
    hex: 'b002000b',
    packet: { type: UNSUBACK, packetId: 11, reasonCodes: [] },
  },
  { name: 'v3.1.1 PINGREQ', spec: '3.1.1 §3.12', version: 4, hex: 'c000', packet: { type: PINGREQ } },
  { name: 'v3.1.1 PINGRESP', spec: '3.1.1 §3.13', version: 4, hex: 'd000', packet: { type: PINGRESP } },
  { name: 'v3.1.1 DISCONNECT', spec: '3.1.1 §3.14', version: 4, hex: 'e000', packet: { type: DISCONNECT, reasonCode: 0 } },

  // ------------------------------------------------------------------ MQTT 5.0
  {
    name: 'v5 CONNECT, empty client id, clean start, keepalive 60 (15 B)',
    spec: '5.0 §3.1; property length 0 (§3.1.2.11)',
    version: 5,
    hex: '100d00044d5154540502003c000000',
    packet: { type: CONNECT, protocolVersion: 5, clientId: '', clean: true, keepalive: 60 },
  },
  {
    name: 'v5 CONNECT, persistent session, will with properties, user name, password',
    spec: '5.0 §3.1.2.11 (properties), §3.1.3.2 (will properties)',
    version: 5,
    hex: '103e00044d51545405cc003c0811ffffffff21000a000264310c01010200000e101800000e10' +
      '00097374617475732f6431000130000464657669000470617373',
    packet: {
      type: CONNECT, protocolVersion: 5, clientId: 'd1', clean: false, keepalive: 60,
      properties: { sessionExpiryInterval: 0xffffffff, receiveMaximum: 10 },
      will: { topic: 'status/d1', payload: bytes('0'), qos: 1, retain: false, properties: { payloadFormatIndicator: 1, messageExpiryInterval: 3600, willDelayInterval: 3600 } },
      username: 'devi', password: bytes('pass'),
    },
  },
  {
    name: 'v5 CONNACK success, no properties',
    spec: '5.0 §3.2.2',
    version: 5,
    hex: '2003000000',
    packet: { type: CONNACK, sessionPresent: false, reasonCode: 0 },
  },
  {
    name: 'v5 CONNACK session present with server limits',
    spec: '5.0 §3.2.2.3',
    version: 5,
    hex: '2017010014120004642d3a3121001422000a24012700001000',
    packet: {
      type: CONNACK, sessionPresent: true, reasonCode: 0,
      properties: { assignedClientIdentifier: 'd-:1', receiveMaximum: 20, topicAliasMaximum: 10, maximumQoS: 1, maximumPacketSize: 4096 },
    },
  },
  {
    name: 'v5 CONNACK bad user name or password',
    spec: '5.0 §3.2.2.2 reason 0x86',
    version: 5,
    hex: '2003008600',
    packet: { type: CONNACK, sessionPresent: false, reasonCode: 0x86 },
  },
  {
    name: 'v5 PUBLISH QoS 0 sensors/t1 "21.5" (19 B)',
    spec: '5.0 §3.3; property length 0',
    version: 5,
    hex: '3011000a73656e736f72732f74310032312e35',
    packet: { type: PUBLISH, topic: 'sensors/t1', payload: bytes('21.5'), qos: 0, retain: false, dup: false, packetId: 0 },
  },
  {
    name: 'v5 PUBLISH QoS 1 sensors/t1 "21.5" (21 B)',
    spec: '5.0 §3.3.2.2',
    version: 5,
    hex: '3213000a73656e736f72732f743100010032312e35',
    packet: { type: PUBLISH, topic: 'sensors/t1', payload: bytes('21.5'), qos: 1, retain: false, dup: false, packetId: 1 },
  },
  {
    name: 'v5 PUBLISH QoS 1 with message expiry (4-byte u32), subscription ids and a user property',
    spec: '5.0 §3.3.2.3.3, §3.3.2.3.8 (several Subscription Identifiers), §3.3.2.3.7',
    version: 5,
    hex: '3225000161002a1b02000000780b010bac022300052600066f726967696e000331323732312e35',
    packet: {
      type: PUBLISH, topic: 'a', payload: bytes('21.5'), qos: 1, retain: false, dup: false, packetId: 42,
      properties: { messageExpiryInterval: 120, subscriptionIdentifier: [1, 300], userProperties: [['origin', '127']], topicAlias: 5 },
    },
  },
  {
    name: 'v5 PUBLISH with an empty topic and a Topic Alias',
    spec: '5.0 §3.3.2.3.4',
    version: 5,
    hex: '300700000323000731',
    packet: { type: PUBLISH, topic: '', payload: bytes('1'), qos: 0, retain: false, dup: false, packetId: 0, properties: { topicAlias: 7 } },
  },
  {
    name: 'v5 PUBACK success, no properties (4 B)',
    spec: '5.0 [MQTT-3.4.2.1] reason and property length omitted',
    version: 5,
    hex: '40020001',
    packet: { type: PUBACK, packetId: 1, reasonCode: 0 },
  },
  {
    name: 'v5 PUBACK no matching subscribers (5 B)',
    spec: '5.0 §3.4.2.2.1: Remaining Length 3, no property length',
    version: 5,
    hex: '4003000110',
    packet: { type: PUBACK, packetId: 1, reasonCode: 0x10 },
  },
  {
    name: 'v5 PUBACK with a reason string',
    spec: '5.0 §3.4.2.2.2',
    version: 5,
    hex: '400c000197081f000571756f7461',
    packet: { type: PUBACK, packetId: 1, reasonCode: 0x97, properties: { reasonString: 'quota' } },
  },
  {
    name: 'v5 PUBREC unspecified error',
    spec: '5.0 §3.5.2.1',
    version: 5,
    hex: '5003000280',
    packet: { type: PUBREC, packetId: 2, reasonCode: 0x80 },
  },
  {
    name: 'v5 PUBREL success (flags 0010, 4 B)',
    spec: '5.0 §3.6.1, §3.6.2.1',
    version: 5,
    hex: '62020002',
    packet: { type: PUBREL, packetId: 2, reasonCode: 0 },
  },
  {
    name: 'v5 PUBREL packet identifier not found',
    spec: '5.0 §3.6.2.1 reason 0x92',
    version: 5,
    hex: '6203000292',
    packet: { type: PUBREL, packetId: 2, reasonCode: 0x92 },
  },
  {
    name: 'v5 PUBCOMP success (4 B)',
    spec: '5.0 §3.7.2.1',
    version: 5,
    hex: '70020002',
    packet: { type: PUBCOMP, packetId: 2, reasonCode: 0 },
  },
  {
    name: 'v5 SUBSCRIBE with options and a subscription identifier',
    spec: '5.0 §3.8.2.1.2, §3.8.3.1 subscription options',
    version: 5,
    hex: '8219000c020b070008636d642f64312f23250006242f6c61737400',
    packet: {
      type: SUBSCRIBE, packetId: 12, properties: { subscriptionIdentifier: 7 },
      subscriptions: [
        { topic: 'cmd/d1/#', qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 2 },
        { topic: '$/last', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    },
  },
  {
    name: 'v5 SUBACK granted and not authorized',
    spec: '5.0 §3.9.3',
    version: 5,
    hex: '9007000c0000010287',
    packet: { type: SUBACK, packetId: 12, reasonCodes: [0, 1, 2, 0x87] },
  },
  {
    name: 'v5 UNSUBSCRIBE',
    spec: '5.0 §3.10',
    version: 5,
    hex: 'a215000d000008636d642f64312f2300067b302c317d2f',
    packet: { type: UNSUBSCRIBE, packetId: 13, topics: ['cmd/d1/#', '{0,1}/'] },
  },
  {
    name: 'v5 UNSUBACK success and no subscription existed',
    spec: '5.0 §3.11.3',
    version: 5,
    hex: 'b005000d000011',
    packet: { type: UNSUBACK, packetId: 13, reasonCodes: [0, 0x11] },
  },
  { name: 'v5 PINGREQ', spec: '5.0 §3.12', version: 5, hex: 'c000', packet: { type: PINGREQ } },
  { name: 'v5 PINGRESP', spec: '5.0 §3.13', version: 5, hex: 'd000', packet: { type: PINGRESP } },
  {
    name: 'v5 DISCONNECT normal, short form E0 00',
    spec: '5.0 §3.14.2.1: reason and property length omitted',
    version: 5,
    hex: 'e000',
    packet: { type: DISCONNECT, reasonCode: 0 },
  },
  {
    name: 'v5 DISCONNECT with will message',
    spec: '5.0 §3.14.2.1 reason 0x04',
    version: 5,
    hex: 'e00104',
    packet: { type: DISCONNECT, reasonCode: 4 },
  },
  {
    name: 'v5 DISCONNECT normal with session expiry',
    spec: '5.0 §3.14.2.2.2',
    version: 5,
    hex: 'e0070005110000012c',
    packet: { type: DISCONNECT, reasonCode: 0, properties: { sessionExpiryInterval: 300 } },
  },
  {
    name: 'v5 AUTH success, short form',
    spec: '5.0 §3.15.2.1: Remaining Length 0',
    version: 5,
    hex: 'f000',
    packet: { type: AUTH, reasonCode: 0 },
  },
  {
    name: 'v5 AUTH continue authentication',
    spec: '5.0 §3.15.2.2',
    version: 5,
    hex: 'f011180f150005534352414d16000401020304',
    packet: { type: AUTH, reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM', authenticationData: new Uint8Array([1, 2, 3, 4]) } },
  },
];
