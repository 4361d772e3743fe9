// Scenario files: defaults, variants, and clear errors that name the path.
import { describe, expect, it } from 'vitest';
import { applyVariant, parseScenario, ScenarioError } from '../../sim/scenario.js';

const errorsOf = (text: string): string[] => {
  try {
    parseScenario(text, 'x.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.problems;
    throw e;
  }
  return [];
};

describe('scenario files', () => {
  it('fills in defaults, in YAML and in JSON', () => {
    const y = parseScenario('name: s\nfleet:\n  devices: 3\n');
    const j = parseScenario('{"name": "s", "fleet": {"devices": 3}}');
    expect(y).toEqual(j);
    expect(y.fleet.qos).toBe(1);
    expect(y.fleet.reconnect).toEqual({ backoff: 'exponential', jitter: 'full', baseMs: 1000, capMs: 60000 });
    expect(y.radio.headerBytes).toBe(40);
    expect(y.faults).toEqual([]);
  });

  it('names the path and the value of what is wrong', () => {
    expect(errorsOf('name: s\nfleet:\n  devices: lots\n')).toEqual(['fleet.devices: must be a whole number >= 1 (got "lots")']);
    expect(errorsOf('name: s\nfleet: { devices: 2, qos: 3 }\n')).toEqual(['fleet.qos: must be one of 0, 1, 2 (got 3)']);
    expect(errorsOf('name: s\nfleet: { devices: 2, reconect: {} }\n')).toEqual(['fleet.reconect: unknown key (did you mean "reconnect"?)']);
    expect(errorsOf('fleet: { devices: 2 }\n')).toEqual(['name: required']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nfaults:\n  - { kind: flood, atS: 1 }\n')).toEqual([
      'faults[0].kind: must be one of "outage", "broker-restart", "power-outage" (got "flood")',
    ]);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nfaults:\n  - { kind: outage, atS: -1, durationS: 5, share: 2 }\n')).toEqual([
      'faults[0].atS: must be a number >= 0 (got -1)',
      'faults[0].share: must be a number from 0 to 1 (got 2)',
    ]);
    expect(errorsOf('name: s\nfleet: { devices: 2, reconnect: { baseMs: 5000, capMs: 100 } }\n')).toEqual(['fleet.reconnect.capMs: must be >= baseMs (5000) (got 100)']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nvariants:\n  - { name: a, fleet: { qos: 7 } }\n')).toEqual(['variants[0].fleet.qos: must be one of 0, 1, 2 (got 7)']);
    expect(errorsOf('name: [unclosed\n')[0]).toMatch(/^not valid YAML or JSON/);
    expect(errorsOf('- just\n- a list\n')[0]).toMatch(/must hold a mapping/);
  });

  it('lists every problem at once, prefixed by the file', () => {
    expect(() => parseScenario('name: 5\nfleet: { devices: 0 }\n', 'bad.yaml')).toThrow(/^bad\.yaml: invalid scenario:\n {2}name: must be a string \(got 5\)\n {2}fleet\.devices: must be a whole number >= 1 \(got 0\)$/);
  });

  it('merges a variant into the base', () => {
    const s = parseScenario('name: s\nfleet: { devices: 2, reconnect: { baseMs: 300 } }\nvariants:\n  - { name: a, fleet: { reconnect: { jitter: none } } }\n');
    const v = applyVariant(s, s.variants[0].overrides);
    expect(v.fleet.reconnect).toEqual({ backoff: 'exponential', jitter: 'none', baseMs: 300, capMs: 60000 });
    expect(v.fleet.devices).toBe(2);
  });
});
