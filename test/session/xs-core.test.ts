// The client core inside the real XS engine (Moddable's, via @agoric/xsnap):
// the same cycle must give byte-identical writes and events to Node's.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { bundleForXs, runInXs } from '../support/xs.js';
import { coreCycle } from '../support/xs-entry/core-cycle.js';
import { edgesCycle } from '../support/xs-entry/edges-cycle.js';

const entry = fileURLToPath(new URL('../support/xs-entry/core-cycle.ts', import.meta.url));
const edgesEntry = fileURLToPath(new URL('../support/xs-entry/edges-cycle.ts', import.meta.url));

describe('client core on XS', () => {
  it('connect, publish, cut, restore from the snapshot and resume: identical to Node, byte for byte', async () => {
    const inNode = coreCycle();
    expect(inNode.restoredLive).toBe(1);
    const [step] = await runInXs(await bundleForXs(entry), ['report(coreCycle())']);
    expect(step.reports[0]).toEqual(inNode);
    // The resumed connection's first write: CONNECT, then the QoS 2 PUBLISH again with DUP (0x3c) and packet id 2.
    expect(inNode.writes).toContain('101000044d5154540400003c000464657631' + '3c12000a73656e736f72732f74310002' + '32312e35');
    // Then PUBREL for it after the PUBREC, and DISCONNECT at the end.
    expect(inNode.writes.slice(-2)).toEqual(['62020002', 'e000']);
  }, 120_000);

  it('issue 12 edges (lists, Maximum Packet Size, error ack, QoS 2 by PUBACK, AUTH, 3.1.1 CONNACK): identical to Node', async () => {
    const inNode = edgesCycle();
    expect(inNode.errors).toHaveLength(1);
    expect(inNode.writes).toContain('820d0001000003612f2b0100016206'); // one SUBSCRIBE for both filters
    const [step] = await runInXs(await bundleForXs(edgesEntry), ['report(edgesCycle())']);
    expect(step.reports[0]).toEqual(inNode);
  }, 120_000);
});
