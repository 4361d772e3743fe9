// `dormouse sim` and `dormouse plan`. bin/dormouse.mjs routes the two
// subcommands here (simMain, planMain); `npm run sim -- ARGS` runs this file.
//
//   dormouse sim SCENARIO [--virtual|--realtime] [--broker URL] [--devices N]
//                [--duration S] [--seed N] [--variant NAME] [--json] [--dashboard [PORT]]
//   dormouse plan [SCENARIO] [--devices N] [--every S | --rate R] [--outage S]
//                 [--size B] [--overhead B] [--json]
//
// SCENARIO is a file (YAML or JSON) or the name of a shipped one (trucks,
// battery, storm). Exit codes: 0 all guarantees held, 1 a guarantee was
// broken, 2 bad arguments or scenario file.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenario, ScenarioError, type Scenario } from './scenario.js';
import { runVirtual, type SimResult } from './virtual.js';
import { summaryText } from './report.js';
import { plan, planFor, planTable, MOSQUITTO_OVERHEAD, type PlanInput } from './plan.js';
import type { DashboardFeed } from './dashboard/types.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SCENARIO_DIR = path.join(HERE, 'scenarios');

const SIM_USAGE = `usage: dormouse sim SCENARIO [--virtual|--realtime] [--broker URL] [--devices N] [--duration S]
                    [--seed N] [--variant NAME] [--json] [--dashboard [PORT]]
  SCENARIO   a YAML/JSON file, or a shipped one: ${shippedNames().join(', ')}
  --virtual  virtual time: the Dormouse core and a broker model on one event queue (default)
  --realtime real sockets: Node clients through a fault proxy to aedes (or --broker URL)
  --broker   mqtt://host:port of a broker for --realtime (e.g. a mosquitto you started)
  --devices  override the fleet size          --duration  override the run length (s; faults scale with it)
  --seed     override the seed                --variant   run only this variant (repeatable)
  --json     print one JSON result on stdout  --dashboard serve the live dashboard (port, default any free one)
exit code: 0 guarantees held, 1 a guarantee broken, 2 bad arguments or scenario`;

const PLAN_USAGE = `usage: dormouse plan [SCENARIO] [--devices N] [--every S | --rate R] [--outage S] [--size B] [--overhead B] [--json]
  Q = N × r × T messages queued; M = Q × (S + O) bytes of broker memory.
  Defaults are the chapter's trucks: N 5000, one message every 10 s, T 1800 s, S 120 B, O 40 B.
  With a SCENARIO, N, r, T, S and O come from it (its outage, downlink rate and payload).`;

function shippedNames(): string[] {
  return ['trucks', 'battery', 'storm'];
}

/** A scenario argument: a path, or the name of a shipped scenario. */
export function resolveScenario(arg: string): string {
  if (existsSync(arg)) return arg;
  for (const ext of ['.yaml', '.yml', '.json']) {
    const p = path.join(SCENARIO_DIR, arg + ext);
    if (existsSync(p)) return p;
  }
  return arg; // loadScenario reports it cannot be read
}

interface Args {
  positional: string[];
  flags: Map<string, string[]>;
}

function parseArgs(argv: readonly string[], valued: Set<string>, optionalValue: Set<string>, known: Set<string>): Args {
  const out: Args = { positional: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      out.positional.push(a);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (!known.has(name)) throw new UsageError(`unknown option --${name}`);
    if (value === undefined && valued.has(name)) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
    } else if (value === undefined && optionalValue.has(name) && argv[i + 1] !== undefined && /^\d+$/.test(argv[i + 1])) {
      value = argv[++i];
    }
    const list = out.flags.get(name) ?? [];
    list.push(value ?? '');
    out.flags.set(name, list);
  }
  return out;
}

class UsageError extends Error {}

function numberFlag(a: Args, name: string, opts: { int?: boolean; min?: number } = {}): number | undefined {
  const v = a.flags.get(name)?.at(-1);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === '' || !Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
    throw new UsageError(`--${name}: must be ${opts.int ? 'a whole number' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''} (got ${JSON.stringify(v)})`);
  }
  return n;
}

/** A progress bar on stderr, only on a terminal. */
function progressBar(): ((fraction: number, label: string) => void) & { done(): void } {
  const tty = process.stderr.isTTY === true;
  let last = '';
  const f = ((fraction: number, label: string) => {
    if (!tty) return;
    const width = 30;
    const k = Math.max(0, Math.min(width, Math.round(fraction * width)));
    const line = `\r[${'#'.repeat(k)}${'.'.repeat(width - k)}] ${String(Math.round(fraction * 100)).padStart(3)} % ${label}`;
    if (line !== last) process.stderr.write(line.padEnd(70));
    last = line;
  }) as ((fraction: number, label: string) => void) & { done(): void };
  f.done = () => {
    if (tty && last !== '') process.stderr.write('\r' + ' '.repeat(72) + '\r');
  };
  return f;
}

export async function simMain(argv: readonly string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(
      argv,
      new Set(['broker', 'devices', 'duration', 'seed', 'variant']),
      new Set(['dashboard']),
      new Set(['virtual', 'realtime', 'broker', 'devices', 'duration', 'seed', 'variant', 'json', 'dashboard', 'help']),
    );
    if (args.flags.has('help')) {
      console.log(SIM_USAGE);
      return 0;
    }
    if (args.positional.length !== 1) throw new UsageError(args.positional.length === 0 ? 'a SCENARIO is needed' : `one SCENARIO only (got ${args.positional.join(' ')})`);
    if (args.flags.has('virtual') && args.flags.has('realtime')) throw new UsageError('--virtual and --realtime exclude each other');
    if (args.flags.has('broker') && !args.flags.has('realtime')) throw new UsageError('--broker goes with --realtime');
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`dormouse sim: ${e.message}\n${SIM_USAGE}`);
    return 2;
  }
  let scenario: Scenario;
  let devices: number | undefined;
  let durationS: number | undefined;
  let seed: number | undefined;
  try {
    scenario = loadScenario(resolveScenario(args.positional[0]));
    devices = numberFlag(args, 'devices', { int: true, min: 1 });
    durationS = numberFlag(args, 'duration', { min: 1 });
    seed = numberFlag(args, 'seed', { int: true, min: 0 });
  } catch (e) {
    if (e instanceof ScenarioError || e instanceof UsageError) {
      console.error(`dormouse sim: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const json = args.flags.has('json');
  const variants = args.flags.get('variant');
  let dashboard: { url: string; feed: DashboardFeed; close(): Promise<void> } | null = null;
  if (args.flags.has('dashboard')) {
    const port = Number(args.flags.get('dashboard')!.at(-1) || 0);
    const mod = (await import('./dashboard/server.js')) as { startDashboard(o: { port?: number }): Promise<{ url: string; feed: DashboardFeed; close(): Promise<void> }> };
    dashboard = await mod.startDashboard({ port });
    console.error(`dashboard: ${dashboard.url}`);
  }
  const bar = progressBar();
  let result: SimResult | import('./realtime.js').RealtimeResult;
  try {
    if (args.flags.has('realtime')) {
      const { runRealtime } = await import('./realtime.js');
      result = await runRealtime(scenario, { devices, durationS, seed, variants, broker: args.flags.get('broker')?.at(-1), feed: dashboard?.feed ?? null, onProgress: bar });
    } else {
      result = await runVirtual(scenario, { devices, durationS, seed, variants, feed: dashboard?.feed ?? null, onProgress: bar });
    }
  } finally {
    bar.done();
  }
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else console.log(summaryText(result));
  if (dashboard) {
    if (process.stdin.isTTY) {
      console.error(`dashboard still at ${dashboard.url}; press Enter to quit`);
      await new Promise<void>((r) => process.stdin.once('data', () => r()));
      process.stdin.pause();
    }
    await dashboard.close();
  }
  return result.ok ? 0 : 1;
}

export async function planMain(argv: readonly string[]): Promise<number> {
  let args: Args;
  let input: PlanInput;
  try {
    args = parseArgs(
      argv,
      new Set(['devices', 'every', 'rate', 'outage', 'size', 'overhead', 'margin']),
      new Set(),
      new Set(['devices', 'every', 'rate', 'outage', 'size', 'overhead', 'margin', 'json', 'help']),
    );
    if (args.flags.has('help')) {
      console.log(PLAN_USAGE);
      return 0;
    }
    if (args.positional.length > 1) throw new UsageError(`at most one SCENARIO (got ${args.positional.join(' ')})`);
    if (args.flags.has('every') && args.flags.has('rate')) throw new UsageError('--every and --rate say the same thing: give one');
    const base: PlanInput = args.positional.length === 1
      ? planFor(loadScenario(resolveScenario(args.positional[0]))).input
      : { devices: 5000, ratePerS: 0.1, outageS: 1800, messageBytes: 120, overheadBytes: 40 };
    const every = numberFlag(args, 'every', { min: 0.001 });
    input = {
      devices: numberFlag(args, 'devices', { int: true, min: 1 }) ?? base.devices,
      ratePerS: numberFlag(args, 'rate', { min: 0 }) ?? (every !== undefined ? 1 / every : base.ratePerS),
      outageS: numberFlag(args, 'outage', { min: 0 }) ?? base.outageS,
      messageBytes: numberFlag(args, 'size', { int: true, min: 0 }) ?? base.messageBytes,
      overheadBytes: numberFlag(args, 'overhead', { min: 0 }) ?? base.overheadBytes,
      margin: numberFlag(args, 'margin', { min: 0 }) ?? base.margin ?? 0.1,
    };
  } catch (e) {
    if (e instanceof UsageError || e instanceof ScenarioError || e instanceof RangeError) {
      console.error(`dormouse plan: ${e.message}\n${PLAN_USAGE}`);
      return 2;
    }
    throw e;
  }
  const p = plan(input);
  if (args.flags.has('json')) {
    process.stdout.write(JSON.stringify(p) + '\n');
    return 0;
  }
  console.log(planTable(p));
  console.log('');
  for (const n of p.notes) console.log(`- ${n}`);
  if (input.overheadBytes < MOSQUITTO_OVERHEAD) {
    console.log(`- O = ${input.overheadBytes} B is below what mosquitto was measured to use (~${MOSQUITTO_OVERHEAD} B per queued message); size for the larger figure`);
  }
  console.log('- check it: dormouse sim trucks (simulated broker queue beside this plan); on mosquitto, watch $SYS/broker/messages/stored and $SYS/broker/heap/current (sys_interval 1)');
  return 0;
}

// Run directly: `node --import tsx sim/cli.ts sim|plan ...` or `npm run sim -- SCENARIO ...`.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const argv = process.argv.slice(2);
  const main = argv[0] === 'plan' ? () => planMain(argv.slice(1)) : () => simMain(argv[0] === 'sim' ? argv.slice(1) : argv);
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(2);
    },
  );
}
