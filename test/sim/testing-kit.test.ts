// The example the README shows: device logic run across sleep cycles and
// faults with the testing kit, on a virtual clock (ten wakes a minute apart
// take milliseconds).
import { describe, expect, it } from 'vitest';
import { simulateDevice } from '../../sim/testing.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('simulateDevice', () => {
  it('keeps every QoS 1 reading across deep sleep when the link dies mid-handshake', () => {
    const run = simulateDevice({
      client: { clientId: 'greenhouse-7', protocolVersion: 5 },
      wakes: 10,
      sleepMs: 60_000,
      onWake({ client, now, wake, link, after }) {
        client.publish('sensors/t1', enc(`reading ${wake}`), { qos: 1 }, now);
        // Every third wake the link is reset 50 ms in: after CONNECT, before the PUBACK.
        if (wake % 3 === 0) after(50, () => link.cut());
      },
    });
    const readings = run.atBroker.map((m) => dec(m.payload));
    // At least once, in order: each reading is there, and the first copies are in wake order.
    expect(new Set(readings)).toEqual(new Set(Array.from({ length: 10 }, (_, i) => `reading ${i}`)));
    const firsts = readings.filter((r, i) => readings.indexOf(r) === i);
    expect(firsts).toEqual(Array.from({ length: 10 }, (_, i) => `reading ${i}`));
    expect(run.held).toBe(0);
  });

  it('delivers a QoS 2 message exactly once even when the broker restarts between PUBREC and PUBCOMP', () => {
    const run = simulateDevice({
      client: { clientId: 'lock-3', protocolVersion: 5 },
      wakes: 3,
      sleepMs: 30_000,
      awakeWindowMs: 200, // the first wake ends before the handshake can finish
      onWake({ client, now, wake, broker, after }) {
        if (wake === 0) {
          client.publish('locks/3', enc('locked'), { qos: 2 }, now);
          after(110, () => broker.restart({ keepSessions: true }));
        }
      },
    });
    expect(run.atBroker.map((m) => dec(m.payload))).toEqual(['locked']);
    expect(run.acked).toHaveLength(1);
    expect(run.packets.items.some((p) => p.packet.startsWith('PUBREL'))).toBe(true);
  });
});
