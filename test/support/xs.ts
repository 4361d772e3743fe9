// Compile TypeScript sources into one script and run it in the XS engine.
// The bundle is what an XS build of the core contains: modules/ code only,
// no Node built-ins (esbuild is told the platform is neutral, so a stray
// node: import fails the bundle).
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const runner = fileURLToPath(new URL('./xs-runner.mjs', import.meta.url));

export interface XsStep {
  reports: unknown[];
  compute: number;
  allocate: number;
  currentHeapCount: number;
}

/**
 * Bundle `entry` (a .ts file that sets globals) as a classic script.
 * `modules` maps module specifiers the code imports (Moddable's `timer`,
 * `embedded:io/socket/tcp`, ...) to files that stand in for them.
 */
export async function bundleForXs(entry: string, modules: Record<string, string> = {}): Promise<string> {
  const names = Object.keys(modules);
  const standIns = {
    name: 'stand-ins',
    setup(b: import('esbuild').PluginBuild) {
      if (names.length === 0) return;
      const filter = new RegExp('^(' + names.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|') + ')$');
      b.onResolve({ filter }, (args) => ({ path: modules[args.path] }));
    },
  };
  const result = await build({
    plugins: [standIns],
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'neutral',
    target: 'es2022',
    mainFields: ['module', 'main'],
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

/** Evaluate the bundle, then each step in order; returns each step's reports and meter. */
export async function runInXs(bundle: string, steps: string[], timeoutMs = 120_000): Promise<XsStep[]> {
  const child = spawn(process.execPath, [runner], { stdio: ['pipe', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (stdout += d));
  child.stdin.end(JSON.stringify({ bundle, steps }));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code: number | null = await new Promise((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`XS runner exited with ${code}: ${stdout.slice(0, 500)}`);
  const parsed = JSON.parse(stdout) as { steps: XsStep[]; error: string | null };
  if (parsed.error) throw new Error(`XS engine: ${parsed.error}`);
  return parsed.steps;
}
