// `dormouse sim` and `dormouse plan`. bin/dormouse.mjs routes the two
// subcommands here (simMain, planMain); `npm run sim -- ARGS` runs this file.
//
//   dormouse sim SCENARIO [--virtual|--realtime] [--broker URL] [--devices N]
//                [--duration S] [--seed N] [--variant NAME] [--json] [--dashboard [PORT]]
//                [--progress S]
//   dormouse plan [SCENARIO] [--devices N] [--every S | --rate R] [--outage S]
//                 [--size B] [--overhead B] [--json]
//
// SCENARIO is a file (YAML or JSON) or the name of a shipped one (trucks,
// battery, storm). Exit codes: 0 all guarantees held, 1 a guarantee was
// broken, 2 bad arguments or scenario file, 3 the run could not do its work
// (no broker, nothing accepted).
//
// Output: the result on stdout (text, or one JSON line with --json); what
// runs, progress and the dashboard's address on stderr. Progress is a bar on
// a terminal and otherwise a line every --progress seconds (default 5).

import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenario, ScenarioError, type Scenario } from './scenario.js';
import { runVirtual, virtualRunShape, type RunShape, type SimResult } from './virtual.js';
import { runLine, summaryText } from './report.js';
import { plan, planFor, planTable, MOSQUITTO_OVERHEAD, type PlanInput } from './plan.js';
import type { DashboardFeed } from './dashboard/types.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SCENARIO_DIR = path.join(HERE, 'scenarios');

const SIM_USAGE = `usage: dormouse sim SCENARIO [--virtual|--realtime] [--broker URL] [--devices N] [--duration S]
                    [--seed N] [--variant NAME] [--json] [--dashboard [PORT]] [--progress S]
  SCENARIO   a YAML/JSON file (schema: sim/scenario.schema.json), or a shipped one: ${shippedNames().join(', ')}
  --virtual  virtual time: the Dormouse core and a broker model on one event queue (default)
  --realtime real sockets: Node clients through a fault proxy to aedes (or --broker URL); at most 200 devices, 60 s unless given
  --broker   mqtt://host:port of a broker for --realtime (e.g. a mosquitto you started)
  --devices  override the fleet size          --duration  override the run length (s; faults scale with it)
  --seed     override the seed                --variant   run only this variant (repeatable)
  --json     print one JSON result on stdout  --dashboard serve the live dashboard until Ctrl-C (port, default any free one)
  --progress seconds between progress lines on stderr when it is not a terminal (default 5; 0: none)
exit code: 0 guarantees held, 1 a guarantee broken, 2 bad arguments or scenario, 3 the run could not do its work`;

const PLAN_USAGE = `usage: dormouse plan [SCENARIO] [--devices N] [--every S | --rate R] [--outage S] [--size B] [--overhead B] [--json]
  Q = N × r × T messages queued; M = Q × (S + O) bytes of broker memory.
  Defaults are the chapter's trucks: N 5000, one message every 10 s, T 1800 s, S 120 B, O 40 B.
  With a SCENARIO, N, r, T, S and O come from it (its outage, downlink rate and payload).`;

/** The shipped scenarios' names, from the folder itself. */
export function shippedNames(): string[] {
  try {
    return readdirSync(SCENARIO_DIR).filter((f) => /\.(ya?ml|json)$/.test(f)).map((f) => f.replace(/\.(ya?ml|json)$/, '')).sort();
  } catch {
    return [];
  }
}

/** A scenario argument: a path, or the name of a shipped scenario. */
export function resolveScenario(arg: string): string {
  if (existsSync(arg)) return arg;
  for (const ext of ['.yaml', '.yml', '.json']) {
    const p = path.join(SCENARIO_DIR, arg + ext);
    if (existsSync(p)) return p;
  }
  // Neither a file nor a shipped name: say which names there are.
  const names = shippedNames();
  const shipped = names.length > 0 ? `the shipped scenarios are ${names.join(', ')}` : `no shipped scenarios found in ${SCENARIO_DIR}`;
  throw new ScenarioError([`no such file, and no shipped scenario of that name: ${shipped}`], arg);
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

/**
 * Progress on stderr: a bar on a terminal; otherwise (a pipe, a log file, CI)
 * a line every everyS seconds, so a long run is never silent.
 */
function progressReporter(everyS: number): ((fraction: number, label: string) => void) & { done(): void } {
  const tty = process.stderr.isTTY === true;
  let last = '';
  const t0 = performance.now();
  let nextLineAt = t0 + everyS * 1000;
  const f = ((fraction: number, label: string) => {
    if (!tty) {
      const now = performance.now();
      if (everyS <= 0 || now < nextLineAt) return;
      nextLineAt = now + everyS * 1000;
      const wallS = (now - t0) / 1000;
      const left = fraction > 0.01 ? `, about ${Math.ceil((wallS * (1 - fraction)) / fraction)} s left` : '';
      process.stderr.write(`progress: ${String(Math.floor(fraction * 100)).padStart(3)} % (${label}), ${Math.round(wallS)} s elapsed${left}\n`);
      return;
    }
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
      new Set(['broker', 'devices', 'duration', 'seed', 'variant', 'progress']),
      new Set(['dashboard']),
      new Set(['virtual', 'realtime', 'broker', 'devices', 'duration', 'seed', 'variant', 'json', 'dashboard', 'progress', 'help']),
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
  let progressS: number;
  try {
    scenario = loadScenario(resolveScenario(args.positional[0]));
    devices = numberFlag(args, 'devices', { int: true, min: 1 });
    durationS = numberFlag(args, 'duration', { min: 1 });
    seed = numberFlag(args, 'seed', { int: true, min: 0 });
    progressS = numberFlag(args, 'progress', { min: 0 }) ?? 5;
  } catch (e) {
    if (e instanceof ScenarioError || e instanceof UsageError) {
      console.error(`dormouse sim: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const json = args.flags.has('json');
  const variants = args.flags.get('variant');
  const realtime = args.flags.has('realtime');
  const broker = args.flags.get('broker')?.at(-1);
  // Say what runs before it runs: the fleet that runs, not the one the file was written for.
  const shape: RunShape = realtime
    ? (await import('./realtime.js')).realtimeRunShape(scenario, { devices, durationS, seed, broker })
    : virtualRunShape(scenario, { devices, durationS, seed });
  console.error(`dormouse sim: ${scenario.name}: ${runLine({ mode: realtime ? 'realtime' : 'virtual', run: shape })}`);
  let dashboard: { url: string; feed: DashboardFeed; close(): Promise<void> } | null = null;
  if (args.flags.has('dashboard')) {
    const port = Number(args.flags.get('dashboard')!.at(-1) || 0);
    const mod = (await import('./dashboard/server.js')) as { startDashboard(o: { port?: number }): Promise<{ url: string; feed: DashboardFeed; close(): Promise<void> }> };
    dashboard = await mod.startDashboard({ port });
    console.error(`dashboard: ${dashboard.url}`);
  }
  const bar = progressReporter(progressS);
  let result: SimResult | import('./realtime.js').RealtimeResult;
  try {
    if (realtime) {
      const rt = await import('./realtime.js');
      try {
        result = await rt.runRealtime(scenario, { devices, durationS, seed, variants, broker, feed: dashboard?.feed ?? null, onProgress: bar });
      } catch (e) {
        if (!(e instanceof rt.RunFailure)) throw e;
        bar.done();
        console.error(`dormouse sim: run failed, nothing was tested: ${e.message}`);
        await dashboard?.close();
        return 3;
      }
    } else {
      result = await runVirtual(scenario, { devices, durationS, seed, variants, feed: dashboard?.feed ?? null, onProgress: bar });
    }
  } finally {
    bar.done();
  }
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else console.log(summaryText(result));
  const code = result.violations.length > 0 ? 1 : result.failures.length > 0 ? 3 : 0;
  if (code === 3) console.error(`dormouse sim: run failed: ${result.failures.join('; ')}`);
  if (dashboard) {
    // Asked for, the page stays up with the whole run until the user is done with it.
    console.error(`dashboard: the whole run stays at ${dashboard.url}; Ctrl-C to quit${process.stdin.isTTY ? ' (or Enter)' : ''}`);
    await untilQuit();
    await dashboard.close();
  }
  return code;
}

/** Until SIGINT or SIGTERM (or Enter, on a terminal). */
function untilQuit(): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      if (process.stdin.isTTY) process.stdin.pause();
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (process.stdin.isTTY) process.stdin.once('data', done);
  });
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
