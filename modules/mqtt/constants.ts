// Protocol constants as data: reason codes, 3.1.1 CONNACK return codes and the
// MQTT 5 property table. Everything is a const enum or a frozen table so XS can
// keep it in flash.

import { PacketType } from './types.js';

/** MQTT 5 reason codes (MQTT 5.0, 2.4 Reason Code). Names follow the spec. */
export const enum ReasonCode {
  Success = 0x00, // also Normal Disconnection, Granted QoS 0
  NormalDisconnection = 0x00,
  GrantedQoS0 = 0x00,
  GrantedQoS1 = 0x01,
  GrantedQoS2 = 0x02,
  DisconnectWithWillMessage = 0x04,
  NoMatchingSubscribers = 0x10,
  NoSubscriptionExisted = 0x11,
  ContinueAuthentication = 0x18,
  ReAuthenticate = 0x19,
  UnspecifiedError = 0x80,
  MalformedPacket = 0x81,
  ProtocolError = 0x82,
  ImplementationSpecificError = 0x83,
  UnsupportedProtocolVersion = 0x84,
  ClientIdentifierNotValid = 0x85,
  BadUserNameOrPassword = 0x86,
  NotAuthorized = 0x87,
  ServerUnavailable = 0x88,
  ServerBusy = 0x89,
  Banned = 0x8a,
  ServerShuttingDown = 0x8b,
  BadAuthenticationMethod = 0x8c,
  KeepAliveTimeout = 0x8d,
  SessionTakenOver = 0x8e,
  TopicFilterInvalid = 0x8f,
  TopicNameInvalid = 0x90,
  PacketIdentifierInUse = 0x91,
  PacketIdentifierNotFound = 0x92,
  ReceiveMaximumExceeded = 0x93,
  TopicAliasInvalid = 0x94,
  PacketTooLarge = 0x95,
  MessageRateTooHigh = 0x96,
  QuotaExceeded = 0x97,
  AdministrativeAction = 0x98,
  PayloadFormatInvalid = 0x99,
  RetainNotSupported = 0x9a,
  QoSNotSupported = 0x9b,
  UseAnotherServer = 0x9c,
  ServerMoved = 0x9d,
  SharedSubscriptionsNotSupported = 0x9e,
  ConnectionRateExceeded = 0x9f,
  MaximumConnectTime = 0xa0,
  SubscriptionIdentifiersNotSupported = 0xa1,
  WildcardSubscriptionsNotSupported = 0xa2,
}

/** MQTT 3.1.1 CONNACK return codes (3.1.1, 3.2.2.3). */
export const enum ConnackReturnCode {
  Accepted = 0,
  UnacceptableProtocolVersion = 1,
  IdentifierRejected = 2,
  ServerUnavailable = 3,
  BadUserNameOrPassword = 4,
  NotAuthorized = 5,
}

/** Value types of MQTT 5 properties (MQTT 5.0, 1.5 Data representation). */
export const enum PropertyType {
  Byte = 1,
  U16 = 2,
  U32 = 3,
  VarInt = 4,
  Utf8 = 5,
  Binary = 6,
  Pair = 7,
}

/** Property identifiers (MQTT 5.0, 2.2.2.2). */
export const enum PropertyId {
  PayloadFormatIndicator = 0x01,
  MessageExpiryInterval = 0x02,
  ContentType = 0x03,
  ResponseTopic = 0x08,
  CorrelationData = 0x09,
  SubscriptionIdentifier = 0x0b,
  SessionExpiryInterval = 0x11,
  AssignedClientIdentifier = 0x12,
  ServerKeepAlive = 0x13,
  AuthenticationMethod = 0x15,
  AuthenticationData = 0x16,
  RequestProblemInformation = 0x17,
  WillDelayInterval = 0x18,
  RequestResponseInformation = 0x19,
  ResponseInformation = 0x1a,
  ServerReference = 0x1c,
  ReasonString = 0x1f,
  ReceiveMaximum = 0x21,
  TopicAliasMaximum = 0x22,
  TopicAlias = 0x23,
  MaximumQoS = 0x24,
  RetainAvailable = 0x25,
  UserProperty = 0x26,
  MaximumPacketSize = 0x27,
  WildcardSubscriptionAvailable = 0x28,
  SubscriptionIdentifiersAvailable = 0x29,
  SharedSubscriptionAvailable = 0x2a,
}

/**
 * Where a property may appear: a bit per packet type (1 << PacketType), and
 * bit 0 (packet type 0 is reserved) for the will properties of a CONNECT.
 */
export const WILL_PROPERTIES = 1;
const C = 1 << PacketType.Connect;
const CA = 1 << PacketType.Connack;
const P = 1 << PacketType.Publish;
const ACKS = (1 << PacketType.Puback) | (1 << PacketType.Pubrec) | (1 << PacketType.Pubrel) | (1 << PacketType.Pubcomp);
const S = 1 << PacketType.Subscribe;
const SA = 1 << PacketType.Suback;
const U = 1 << PacketType.Unsubscribe;
const UA = 1 << PacketType.Unsuback;
const D = 1 << PacketType.Disconnect;
const A = 1 << PacketType.Auth;
const W = WILL_PROPERTIES;

/** Value limits checked on encode and decode. */
export const enum PropertyCheck {
  None = 0,
  ZeroOrOne = 1, // byte properties that are booleans ("It is a Protocol Error to include a value other than 0 or 1")
  NonZero = 2, // Receive Maximum, Maximum Packet Size, Topic Alias, Subscription Identifier
}

export interface PropertyInfo {
  readonly id: number;
  readonly name: string; // the key in Properties
  readonly type: PropertyType;
  readonly allowed: number; // mask of packet types (and WILL_PROPERTIES)
  readonly repeatable: number; // mask of packet types where it may appear more than once
  readonly check: PropertyCheck;
}

function prop(id: number, name: string, type: PropertyType, allowed: number, repeatable: number, check: PropertyCheck): PropertyInfo {
  return Object.freeze({ id, name, type, allowed, repeatable, check });
}

/** The property table (MQTT 5.0, 2.2.2.2), ordered by identifier; encode writes in this order. */
export const PROPERTIES: readonly PropertyInfo[] = Object.freeze([
  prop(0x01, 'payloadFormatIndicator', PropertyType.Byte, P | W, 0, PropertyCheck.ZeroOrOne),
  prop(0x02, 'messageExpiryInterval', PropertyType.U32, P | W, 0, PropertyCheck.None),
  prop(0x03, 'contentType', PropertyType.Utf8, P | W, 0, PropertyCheck.None),
  prop(0x08, 'responseTopic', PropertyType.Utf8, P | W, 0, PropertyCheck.None),
  prop(0x09, 'correlationData', PropertyType.Binary, P | W, 0, PropertyCheck.None),
  prop(0x0b, 'subscriptionIdentifier', PropertyType.VarInt, P | S, P, PropertyCheck.NonZero),
  prop(0x11, 'sessionExpiryInterval', PropertyType.U32, C | CA | D, 0, PropertyCheck.None),
  prop(0x12, 'assignedClientIdentifier', PropertyType.Utf8, CA, 0, PropertyCheck.None),
  prop(0x13, 'serverKeepAlive', PropertyType.U16, CA, 0, PropertyCheck.None),
  prop(0x15, 'authenticationMethod', PropertyType.Utf8, C | CA | A, 0, PropertyCheck.None),
  prop(0x16, 'authenticationData', PropertyType.Binary, C | CA | A, 0, PropertyCheck.None),
  prop(0x17, 'requestProblemInformation', PropertyType.Byte, C, 0, PropertyCheck.ZeroOrOne),
  prop(0x18, 'willDelayInterval', PropertyType.U32, W, 0, PropertyCheck.None),
  prop(0x19, 'requestResponseInformation', PropertyType.Byte, C, 0, PropertyCheck.ZeroOrOne),
  prop(0x1a, 'responseInformation', PropertyType.Utf8, CA, 0, PropertyCheck.None),
  prop(0x1c, 'serverReference', PropertyType.Utf8, CA | D, 0, PropertyCheck.None),
  prop(0x1f, 'reasonString', PropertyType.Utf8, CA | ACKS | SA | UA | D | A, 0, PropertyCheck.None),
  prop(0x21, 'receiveMaximum', PropertyType.U16, C | CA, 0, PropertyCheck.NonZero),
  prop(0x22, 'topicAliasMaximum', PropertyType.U16, C | CA, 0, PropertyCheck.None),
  prop(0x23, 'topicAlias', PropertyType.U16, P, 0, PropertyCheck.NonZero),
  prop(0x24, 'maximumQoS', PropertyType.Byte, CA, 0, PropertyCheck.ZeroOrOne),
  prop(0x25, 'retainAvailable', PropertyType.Byte, CA, 0, PropertyCheck.ZeroOrOne),
  prop(0x26, 'userProperties', PropertyType.Pair, C | CA | P | W | ACKS | S | SA | U | UA | D | A, 0xffff, PropertyCheck.None),
  prop(0x27, 'maximumPacketSize', PropertyType.U32, C | CA, 0, PropertyCheck.NonZero),
  prop(0x28, 'wildcardSubscriptionAvailable', PropertyType.Byte, CA, 0, PropertyCheck.ZeroOrOne),
  prop(0x29, 'subscriptionIdentifiersAvailable', PropertyType.Byte, CA, 0, PropertyCheck.ZeroOrOne),
  prop(0x2a, 'sharedSubscriptionAvailable', PropertyType.Byte, CA, 0, PropertyCheck.ZeroOrOne),
]);

/** Identifier -> PropertyInfo (undefined for unknown identifiers). Index 0..0x2a. */
export const PROPERTY_BY_ID: readonly (PropertyInfo | undefined)[] = (() => {
  const t: (PropertyInfo | undefined)[] = [];
  for (let i = 0; i <= 0x2a; i++) t.push(undefined);
  for (const p of PROPERTIES) t[p.id] = p;
  return Object.freeze(t);
})();

/** Largest value of a Variable Byte Integer (MQTT 5.0, 1.5.5): also the largest remaining length. */
export const MAX_VARINT = 268435455;

function codeSet(codes: number[]): Uint8Array {
  const s = new Uint8Array(256);
  for (const c of codes) s[c] = 1;
  return s;
}

// Reason codes each packet may carry (MQTT 5.0, 3.x.2.1). A lookup byte per code.
export const CONNACK_REASONS = codeSet([
  0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f,
]);
export const PUBACK_REASONS = codeSet([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]); // PUBACK and PUBREC
export const PUBREL_REASONS = codeSet([0x00, 0x92]); // PUBREL and PUBCOMP
export const SUBACK_REASONS = codeSet([0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2]);
export const UNSUBACK_REASONS = codeSet([0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91]);
export const DISCONNECT_REASONS = codeSet([
  0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c,
  0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
]);
export const AUTH_REASONS = codeSet([0x00, 0x18, 0x19]);
/** 3.1.1 SUBACK return codes (3.1.1, 3.9.3). */
export const SUBACK_RETURN_CODES_311 = codeSet([0x00, 0x01, 0x02, 0x80]);
