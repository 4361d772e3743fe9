// sim/scenario.schema.json: what editors read and what the simulator checks
// against. The shipped scenarios point at it and pass it; the schema itself is
// valid JSON Schema 2020-12 with a description on every field (what an editor
// shows while completing); ajv's errors come out in the checker's words.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { parseScenario, ScenarioError, SCENARIO_SCHEMA_FILE } from '../../sim/scenario.js';

const simDir = path.join(import.meta.dirname, '../../sim');
const scenarioDir = path.join(simDir, 'scenarios');
const schema = JSON.parse(readFileSync(path.join(simDir, 'scenario.schema.json'), 'utf8')) as Record<string, unknown>;
const shipped = readdirSync(scenarioDir).filter((f) => f.endsWith('.yaml'));
const validate = new Ajv2020({ strict: true, strictRequired: false, allErrors: true }).compile(schema);

const errorsOf = (text: string): string[] => {
  try {
    parseScenario(text, 'x.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.problems;
    throw e;
  }
  return [];
};

/** Every subschema that describes an object's properties, with its JSON pointer. */
function propertySchemas(node: unknown, at: string, out: Array<[string, Record<string, unknown>]>): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) return node.forEach((x, i) => propertySchemas(x, `${at}/${i}`, out));
  const o = node as Record<string, unknown>;
  if (o.properties && typeof o.properties === 'object') for (const [k, v] of Object.entries(o.properties)) out.push([`${at}/properties/${k}`, v as Record<string, unknown>]);
  for (const [k, v] of Object.entries(o)) propertySchemas(v, `${at}/${k}`, out);
}

describe('scenario schema', () => {
  it('is the file the simulator validates with, and valid JSON Schema 2020-12 under ajv strict mode', () => {
    expect(path.resolve(SCENARIO_SCHEMA_FILE)).toBe(path.join(simDir, 'scenario.schema.json'));
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const ajv = new Ajv2020({ strict: true, strictRequired: false });
    expect(ajv.validateSchema(schema), JSON.stringify(ajv.errors)).toBe(true);
    expect(() => ajv.compile(schema)).not.toThrow();
  });

  it('describes every field, so editors can explain what they complete', () => {
    const props: Array<[string, Record<string, unknown>]> = [];
    propertySchemas(schema, '#', props);
    expect(props.length).toBeGreaterThan(60);
    const bare = props.filter(([, s]) => typeof s.description !== 'string' && typeof s.$ref !== 'string' && s.const === undefined);
    expect(bare.map(([p]) => p)).toEqual([]);
    // A $ref'd field gets its description from where it points.
    for (const [p, s] of props) if (typeof s.$ref === 'string' && typeof s.description !== 'string') expect(resolve(s.$ref as string).description, p).toEqual(expect.any(String));
  });

  it.each(shipped)('%s points editors at the schema and passes it, defaults and all', (file) => {
    const text = readFileSync(path.join(scenarioDir, file), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../scenario.schema.json');
    const doc = parseYaml(text) as unknown;
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const s = parseScenario(text, file);
    expect(s.name).toBe(path.basename(file, '.yaml'));
    // Every default the schema declares is filled in: each top-level and fleet field is present.
    for (const k of Object.keys(schema.properties as object).filter((x) => x !== '$schema')) expect(s, k).toHaveProperty(k);
    for (const k of Object.keys(((schema.$defs as Record<string, { properties: object }>).fleet.properties))) expect(s.fleet, `fleet.${k}`).toHaveProperty(k);
  });

  it('turns a schema default into the scenario default', () => {
    const s = parseScenario('name: s\nfleet: { devices: 1 }\nfaults: [{ kind: power-outage, atS: 5, durationS: 10 }]\ndownlink: {}\n');
    const defs = schema.$defs as Record<string, { properties: Record<string, { default?: unknown }> }>;
    for (const [k, v] of Object.entries(defs.broker.properties)) expect(s.broker[k as keyof typeof s.broker], `broker.${k}`).toEqual(v.default);
    for (const [k, v] of Object.entries(defs.downlink.properties)) expect(s.downlink![k as keyof NonNullable<typeof s.downlink>], `downlink.${k}`).toEqual(v.default);
    expect(s.faults[0]).toEqual({ kind: 'power-outage', atS: 5, durationS: 10, brokerBootS: 0, bootSpreadS: 1 });
    // A variant keeps only what it changes: no defaults are written into it.
    const v = parseScenario('name: s\nfleet: { devices: 1, protocol: 4 }\nvariants: [{ name: a, fleet: { qos: 0 } }]\n').variants[0];
    expect(v).toEqual({ name: 'a', overrides: { fleet: { qos: 0 } } });
  });

  it('rejects the known bad inputs with the checker\'s messages', () => {
    expect(errorsOf('name: s\nfleet: { devices: 2, devcies: 3 }\n')).toEqual(['fleet.devcies: unknown key (did you mean "devices"?)']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nbrokr: {}\n')).toEqual(['brokr: unknown key (did you mean "broker"?)']);
    expect(errorsOf('name: s\nfleet: { devices: 2, zzz: 1 }\n')[0]).toMatch(/^fleet\.zzz: unknown key; expected one of devices, protocol, qos, /);
    expect(errorsOf('name: s\nfleet: { devices: .inf }\n')).toEqual(['fleet.devices: must be a whole number >= 1 (got Infinity)']);
    expect(errorsOf('name: s\nfleet: { devices: 2, expiryS: 0 }\n')).toEqual(['fleet.expiryS: must be a whole number >= 1 or null (got 0)']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nreport: { plan: yes please }\n')).toEqual(['report.plan: must be true or false (got "yes please")']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\ndownlink: 5\n')).toEqual(['downlink: must be a mapping of keys to values or null (got 5)']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nfaults: { kind: outage }\n')).toEqual(['faults: must be a list (got {"kind":"outage"})']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nfaults: [{ atS: 1 }, { kind: power-outage, atS: 1 }]\n')).toEqual(['faults[0].kind: required', 'faults[1].durationS: required']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nfaults: [{ kind: outage, atS: 1, durationS: 2, downForS: 3 }]\n')).toEqual(['faults[0].downForS: unknown key; expected one of kind, atS, durationS, share, staggerS, mode']);
    expect(errorsOf('name: s\nfleet: {}\n')).toEqual(['fleet.devices: required']);
    expect(errorsOf('name: s\nfleet: { devices: 2 }\nvariants: [3, { fleet: {} }, { name: "", foo: 1 }]\n')).toEqual([
      'variants[0]: must be a mapping with a name and the fields it changes (got 3)',
      'variants[1].name: required',
      'variants[2].foo: a variant may change description, durationS, drainS, seed, sampleEveryS, fleet, broker, network, radio, downlink, faults, report',
      'variants[2].name: must be a non-empty string (got "")',
    ]);
    // One line per path, however many keywords failed there.
    expect(errorsOf('name: s\nfleet: { devices: -2.5 }\n')).toEqual(['fleet.devices: must be a whole number >= 1 (got -2.5)']);
  });
});

function resolve(ref: string): Record<string, unknown> {
  let node: unknown = schema;
  for (const part of ref.replace(/^#\//, '').split('/')) node = (node as Record<string, unknown>)[part];
  return node as Record<string, unknown>;
}
