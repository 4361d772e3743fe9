// The Node host as users run it: TypeScript stripped to plain JavaScript
// (what `npm run build` ships), not through tsx's loader. tsx compiles with
// esbuild's keepNames, which wraps every arrow function and class in a
// `__name(fn, "name")` call: Object.defineProperty on each closure when it is
// created, about 250 bytes of heap per closure and a call per creation. MQTT.js
// is plain JavaScript from node_modules, so measuring ours through tsx would
// charge us for the loader. The bundle goes to a temp dir and imports its npm
// dependencies (ws) from this checkout's node_modules.

import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Bundles `entry` (relative to the repo root) and returns the bundle's file URL and a cleanup. */
export async function bundle(entry: string): Promise<{ url: string; dispose: () => void }> {
  // Inside the checkout, so `ws` resolves from its node_modules; .tmp/ is ignored by git.
  mkdirSync(path.join(root, '.tmp'), { recursive: true });
  const dir = mkdtempSync(path.join(root, '.tmp', 'bundle-'));
  const out = path.join(dir, path.basename(entry).replace(/\.ts$/, '.mjs'));
  await build({
    entryPoints: [path.join(root, entry)],
    outfile: out,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    keepNames: false,
    logLevel: 'error',
  });
  return { url: pathToFileURL(out).href, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
