#!/usr/bin/env node
// Project set-up that npm install alone does not do. npm 11 skips dependencies'
// install scripts unless allowed, so the XS engine worker that @agoric/xsnap
// ships as C sources is built here (about 30 s, once). Idempotent.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let xsnapDir;
try {
  xsnapDir = dirname(require.resolve('@agoric/xsnap/package.json'));
} catch {
  console.error('setup: @agoric/xsnap is not installed; run `npm ci` first.');
  process.exit(1);
}
const platform = process.platform === 'darwin' ? 'mac' : 'lin';
const worker = join(xsnapDir, 'xsnap-native', 'xsnap', 'build', 'bin', platform, 'release', 'xsnap-worker');
if (!existsSync(worker)) {
  console.log('setup: building the XS engine worker (@agoric/xsnap), about 30 s…');
  const r = spawnSync('npm', ['run', '--silent', 'build:from-env'], { cwd: xsnapDir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0 || !existsSync(worker)) {
    console.error('setup: building xsnap-worker failed; it needs make and a C compiler (apt-get install -y build-essential).');
    process.exit(1);
  }
  console.log('setup: xsnap-worker built.');
}
