// The codec's public surface: types, constants, encoder, streaming decoder, UTF-8, topic filters.
export * from './types.js';
export * from './constants.js';
export {
  ENCODE_INVALID,
  ENCODE_NO_SPACE,
  PUBLISH_DUP_FLAG,
  encode,
  encodeAck,
  encodePublish,
  encodedLength,
  markDuplicate,
  propertiesLength,
  publishLayout,
  publishLength,
  topicLength,
  varintSize,
} from './encode.js';
export {
  DECODE_ERROR,
  DECODE_NEED_DATA,
  DECODE_PACKET,
  DECODE_PIECE,
  DECODE_PUBLISH_HEAD,
  DecodedAck,
  DecodedPublish,
  PINGREQ,
  PINGRESP,
  PacketDecoder,
} from './decode.js';
export type { DecodeError, PacketDecoderOptions } from './decode.js';
export { Utf8Status, utf8Check, utf8Decode, utf8Length, utf8Read, utf8Write } from './utf8.js';
export { hasWildcard, isValidTopicFilter, isValidTopicName, topicMatches } from './topic-match.js';
