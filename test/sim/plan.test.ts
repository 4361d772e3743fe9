// The plan against the chapter's worked numbers (fleet tracking: 5,000 trucks,
// GPS every 10 s, 30-minute outages, 120 B messages, 40 B overhead).
import { describe, expect, it } from 'vitest';
import { plan, planTable, MOSQUITTO_OVERHEAD } from '../../sim/plan.js';
import { planMain } from '../../sim/cli.js';

describe('plan', () => {
  it('reproduces the chapter: 180 per truck, 900,000 queued, 144 MB, cap 200, expiry 1800 s', () => {
    const p = plan({ devices: 5000, ratePerS: 1 / 10, outageS: 1800, messageBytes: 120, overheadBytes: 40 });
    expect(p.perClientQueue).toBe(180);
    expect(p.queueDepth).toBe(900_000);
    expect(p.memoryBytes).toBe(144_000_000);
    expect(p.recommendedQueueCap).toBe(200);
    expect(p.recommendedExpiryS).toBe(1800);
    // With mosquitto's measured overhead (112 + 56 B) the same queue needs about twice as much.
    expect(p.byOverhead.find((o) => o.overheadBytes === MOSQUITTO_OVERHEAD)!.memoryBytes).toBe(900_000 * (120 + 168));
    expect(planTable(p)).toMatch(/queue depth Q = N × r × T\s+900,000 messages/);
    expect(planTable(p)).toMatch(/144\.0 MB/);
  });

  it('rejects nonsense', () => {
    expect(() => plan({ devices: -1, ratePerS: 1, outageS: 1, messageBytes: 1, overheadBytes: 1 })).toThrow(/devices must be a number >= 0/);
  });

  it('prints the table from the command line, and reads a scenario', async () => {
    const lines: string[] = [];
    const log = console.log;
    const write = process.stdout.write;
    console.log = (s: string) => lines.push(s);
    process.stdout.write = ((s: string) => lines.push(s) > 0) as unknown as typeof process.stdout.write;
    try {
      expect(await planMain([])).toBe(0);
      expect(lines.join('\n')).toMatch(/900,000 messages/);
      lines.length = 0;
      expect(await planMain(['trucks', '--json'])).toBe(0);
      expect(JSON.parse(lines.join('')).queueDepth).toBe(1000 * 180); // 20 % of 5,000 trucks in tunnels
      lines.length = 0;
      expect(await planMain(['--every', 'often'])).toBe(2);
    } finally {
      console.log = log;
      process.stdout.write = write;
    }
  });
});

describe('dormouse sim (command line)', () => {
  it('exits 2 with the problem for a bad scenario file, and 0 when the guarantees held', async () => {
    const { simMain } = await import('../../sim/cli.js');
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'dormouse-sim-')), 'bad.yaml');
    writeFileSync(file, 'name: bad\nfleet:\n  devices: lots\n');
    const errors: string[] = [];
    const out: string[] = [];
    const err = console.error;
    const write = process.stdout.write;
    console.error = (s: string) => errors.push(s);
    process.stdout.write = ((s: string) => out.push(s) > 0) as unknown as typeof process.stdout.write;
    try {
      expect(await simMain([file])).toBe(2);
      expect(errors.join('\n')).toContain('fleet.devices: must be a whole number >= 1 (got "lots")');
      expect(await simMain(['storm', '--devices', '20', '--duration', '300', '--variant', 'full-jitter', '--json'])).toBe(0);
      expect(JSON.parse(out.join('')).ok).toBe(true);
      expect(await simMain(['storm', '--devices', 'many'])).toBe(2);
    } finally {
      console.error = err;
      process.stdout.write = write;
    }
  });
});
