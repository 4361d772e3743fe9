// The codec fixtures inside the real XS engine must give byte-identical
// results to Node: the same encodings, the same decoded packets, the same
// rejections with the same reason codes.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { bundleForXs, runInXs } from '../support/xs.js';
import { codecFixtures } from '../support/xs-entry/codec-fixtures.js';

const entry = fileURLToPath(new URL('../support/xs-entry/codec-fixtures.ts', import.meta.url));

describe('codec on XS', () => {
  it('every fixture encodes, decodes and is rejected identically in XS and Node', async () => {
    const inNode = codecFixtures() as { encoded: Array<{ ok: boolean }>; rejected: Array<Array<{ error?: number }>> };
    expect(inNode.encoded.every((e) => e.ok)).toBe(true);
    expect(inNode.rejected.map((r) => r.at(-1)?.error)).toEqual([0x81, 0x81, 0x82, 0x81, 0x81, 0x82, 0x81]);
    const [step] = await runInXs(await bundleForXs(entry), ['report(codecFixtures())']);
    expect(step.reports[0]).toEqual(JSON.parse(JSON.stringify(inNode)));
  }, 120_000);
});
