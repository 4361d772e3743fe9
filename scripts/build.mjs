// `npm run build` (and `prepack`): a clean dist/ with the compiled modules,
// Node host and simulator, plus what the simulator reads at run time beside
// its compiled code: the shipped scenarios (sim/scenarios) and the
// dashboard's page files. Everything under sim/ that is not TypeScript is
// copied, so a new data file needs no change here.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
rmSync(dist, { recursive: true, force: true }); // nothing stale from an earlier build ships

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

let copied = 0;
const copy = (dir) => {
  for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) copy(rel);
    else if (!e.name.endsWith('.ts')) {
      cpSync(path.join(root, rel), path.join(dist, rel));
      copied++;
    }
  }
};
copy('sim');
process.stdout.write(`dist/: compiled, ${copied} data files copied from sim/\n`);
