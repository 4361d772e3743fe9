// Reproduction (found by bench/fuzz.ts, seed 20240601: "accepted, our encoder
// refuses it: UNSUBSCRIBE with topics ['']"): the decoder accepts SUBSCRIBE and
// UNSUBSCRIBE packets whose Topic Filter is the empty string. "All Topic Names
// and Topic Filters MUST be at least one character long" [MQTT-4.7.3-1]; the
// encoder already refuses them (ENCODE_INVALID), the decoder should reject them
// with a reason code and the rule. Only a server decodes these packets (the
// broker model in sim/), so a client is not exposed. Fixed in the decoder.
import { describe, expect, it } from 'vitest';
import { DECODE_ERROR, PacketDecoder } from '../../modules/mqtt/decode.js';
import { ProtocolVersion } from '../../modules/mqtt/types.js';
import { fromHex } from '../mqtt/fixtures.js';

const CASES: ReadonlyArray<[string, ProtocolVersion, string]> = [
  ['SUBSCRIBE, 3.1.1', ProtocolVersion.V311, '82 05 00 01 00 00 00'],
  ['SUBSCRIBE, 5', ProtocolVersion.V5, '82 06 00 01 00 00 00 00'],
  ['UNSUBSCRIBE, 3.1.1', ProtocolVersion.V311, 'a2 04 ff ff 00 00'],
  ['UNSUBSCRIBE, 5', ProtocolVersion.V5, 'a2 05 ff ff 00 00 00'],
];

describe('an empty Topic Filter is rejected [MQTT-4.7.3-1] (regression)', () => {
  for (const [name, version, hex] of CASES) {
    it(name, () => {
      const d = new PacketDecoder({ version });
      d.feed(fromHex(hex));
      expect(d.next(), JSON.stringify(d.packet)).toBe(DECODE_ERROR);
      expect([0x81, 0x82]).toContain(d.error!.reasonCode);
      expect(d.error!.message).toMatch(/MQTT-4\.7\.3-1/);
    });
  }
});
