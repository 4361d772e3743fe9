// The module map of the Moddable manifests against the imports of the files
// they list: every module a listed file imports must be in the map, or the
// app builds and then aborts at start ("XS abort: unhandled exception", seen
// in mcsim when wake.ts first imported modules/wake/*). XS resolves a
// relative import against the importing module's specifier, so
// `hosts/moddable/wake` importing `../../modules/wake/fast-connect.js` needs
// `modules/wake/fast-connect` (or `modules/wake/*`) in the map.
import { describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const dir = fileURLToPath(new URL('../../../hosts/moddable/', import.meta.url));
// Modules the SDK (or the manifests' own includes) provide.
const SDK = new Set(['timer', 'wifi', 'net', 'preference', 'embedded:io/socket/tcp', 'embedded:io/socket/tcp/tls', 'embedded:storage/flash', 'dormouse/deepsleep', 'ssl/cache', 'ssl/session', 'mc/config', 'Resource']);

function moduleMap(names: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const name of names) {
    const m = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as { modules: Record<string, string | string[]> };
    for (const [k, v] of Object.entries(m.modules)) if (k !== '~' && k !== '*' && typeof v === 'string') map.set(k, v);
  }
  return map;
}

/** The source file of a specifier, or null when the map does not have it. */
function fileOf(map: Map<string, string>, spec: string): string | null {
  const exact = map.get(spec);
  if (exact !== undefined) return path.resolve(dir, exact) + '.ts';
  for (const [k, v] of map) {
    if (k.endsWith('/*') && spec.startsWith(k.slice(0, -1))) return path.join(path.resolve(dir, v.slice(0, -1)), spec.slice(k.length - 1)) + '.ts';
  }
  return null;
}

/** Imports that stay in the compiled module (type-only ones are erased). */
function importsOf(file: string): string[] {
  const out: string[] = [];
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) if (!m[2]) out.push(m[3]!);
  return out;
}

function unmapped(manifests: string[]): string[] {
  const map = moduleMap(manifests);
  const missing: string[] = [];
  const seen = new Set<string>();
  const todo = [...map.keys()].filter((k) => !k.endsWith('/*'));
  while (todo.length > 0) {
    const spec = todo.pop()!;
    if (seen.has(spec)) continue;
    seen.add(spec);
    const file = fileOf(map, spec);
    if (file === null || !existsSync(file)) {
      missing.push(spec);
      continue;
    }
    for (const i of importsOf(file)) {
      const target = i.startsWith('.') ? path.posix.join(path.posix.dirname(spec), i.replace(/\.js$/, '')) : i;
      if (!i.startsWith('.') && SDK.has(i)) continue;
      todo.push(target);
    }
  }
  return missing.sort();
}

describe('Moddable manifests', () => {
  it('manifest_dormouse.json maps every module its files import', () => {
    expect(unmapped(['manifest_dormouse.json'])).toEqual([]);
  });

  it('manifest_dormouse_tls.json (with the base one it includes) maps every module its files import', () => {
    expect(unmapped(['manifest_dormouse.json', 'manifest_dormouse_tls.json'])).toEqual([]);
  });

  it('the check sees a missing mapping', () => {
    const map = moduleMap(['manifest_dormouse.json']);
    expect(fileOf(map, 'modules/wake/fast-connect')).toMatch(/modules\/wake\/fast-connect\.ts$/);
    expect(fileOf(map, 'modules/nowhere/x')).toBeNull();
    expect(importsOf(path.join(dir, 'wake.ts'))).toContain('../../modules/wake/fast-connect.js');
    expect(importsOf(path.join(dir, 'wake.ts'))).not.toContain('./platform.js'); // `import type`: erased
  });
});
