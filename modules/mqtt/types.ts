// The codec's contract. Everything in modules/ is portable: no Node, no Moddable
// imports, Uint8Array/DataView only.

/** MQTT control packet types (the high nibble of the fixed header). */
export const enum PacketType {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Pubrec = 5,
  Pubrel = 6,
  Pubcomp = 7,
  Subscribe = 8,
  Suback = 9,
  Unsubscribe = 10,
  Unsuback = 11,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
  Auth = 15,
}

/** The protocol level byte of CONNECT. */
export const enum ProtocolVersion {
  V311 = 4,
  V5 = 5,
}

export type QoS = 0 | 1 | 2;

/** MQTT 5 properties. Names follow mqtt-packet where the concept is the same. */
export interface Properties {
  payloadFormatIndicator?: number; // 0x01 byte
  messageExpiryInterval?: number; // 0x02 u32
  contentType?: string; // 0x03
  responseTopic?: string; // 0x08
  correlationData?: Uint8Array; // 0x09
  subscriptionIdentifier?: number | number[]; // 0x0B varint; several allowed on PUBLISH
  sessionExpiryInterval?: number; // 0x11 u32
  assignedClientIdentifier?: string; // 0x12
  serverKeepAlive?: number; // 0x13 u16
  authenticationMethod?: string; // 0x15
  authenticationData?: Uint8Array; // 0x16
  requestProblemInformation?: number; // 0x17 byte
  willDelayInterval?: number; // 0x18 u32
  requestResponseInformation?: number; // 0x19 byte
  responseInformation?: string; // 0x1A
  serverReference?: string; // 0x1C
  reasonString?: string; // 0x1F
  receiveMaximum?: number; // 0x21 u16
  topicAliasMaximum?: number; // 0x22 u16
  topicAlias?: number; // 0x23 u16
  maximumQoS?: number; // 0x24 byte
  retainAvailable?: number; // 0x25 byte
  userProperties?: Array<[string, string]>; // 0x26, order and repeats kept
  maximumPacketSize?: number; // 0x27 u32
  wildcardSubscriptionAvailable?: number; // 0x28 byte
  subscriptionIdentifiersAvailable?: number; // 0x29 byte
  sharedSubscriptionAvailable?: number; // 0x2A byte
}

export interface Will {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  properties?: Properties; // MQTT 5 will properties
}

export interface ConnectPacket {
  type: PacketType.Connect;
  protocolVersion: ProtocolVersion;
  clientId: string;
  clean: boolean; // clean session (3.1.1) / clean start (5.0)
  keepalive: number; // seconds, 0..65535
  username?: string;
  password?: Uint8Array;
  will?: Will;
  properties?: Properties;
}

export interface ConnackPacket {
  type: PacketType.Connack;
  sessionPresent: boolean;
  reasonCode: number; // 3.1.1 return code or 5.0 reason code
  properties?: Properties;
}

export interface PublishPacket {
  type: PacketType.Publish;
  topic: string;
  payload: Uint8Array; // on decode: a view into the decoder's input, not a copy
  qos: QoS;
  retain: boolean;
  dup: boolean;
  packetId: number; // 0 for QoS 0
  properties?: Properties;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP. */
export interface AckPacket {
  type: PacketType.Puback | PacketType.Pubrec | PacketType.Pubrel | PacketType.Pubcomp;
  packetId: number;
  reasonCode: number; // 0 = success; 3.1.1 always 0
  properties?: Properties;
}

export interface Subscription {
  topic: string;
  qos: QoS;
  noLocal?: boolean; // MQTT 5
  retainAsPublished?: boolean; // MQTT 5
  retainHandling?: 0 | 1 | 2; // MQTT 5
}

export interface SubscribePacket {
  type: PacketType.Subscribe;
  packetId: number;
  subscriptions: Subscription[];
  properties?: Properties;
}

export interface SubackPacket {
  type: PacketType.Suback;
  packetId: number;
  reasonCodes: number[]; // granted QoS 0..2 or failure (0x80 in 3.1.1, >= 0x80 in 5.0)
  properties?: Properties;
}

export interface UnsubscribePacket {
  type: PacketType.Unsubscribe;
  packetId: number;
  topics: string[];
  properties?: Properties;
}

export interface UnsubackPacket {
  type: PacketType.Unsuback;
  packetId: number;
  reasonCodes: number[]; // empty in 3.1.1
  properties?: Properties;
}

export interface PingreqPacket {
  type: PacketType.Pingreq;
}
export interface PingrespPacket {
  type: PacketType.Pingresp;
}

export interface DisconnectPacket {
  type: PacketType.Disconnect;
  reasonCode: number; // 0 in 3.1.1
  properties?: Properties;
}

export interface AuthPacket {
  type: PacketType.Auth;
  reasonCode: number;
  properties?: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;
