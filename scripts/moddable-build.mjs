#!/usr/bin/env node
// Build the Moddable example app (root manifest.json) for esp32 or lin.
//   node scripts/moddable-build.mjs esp32|lin [name=value ...]
// Extra name=value arguments go to mcconfig as config overrides
// (ssid=... password=... broker=... sleepSeconds=...).
// Runs `mcconfig -d -m -p <platform>` in the repository root. Without the
// Moddable SDK it says what is missing and exits 1.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [platform, ...overrides] = process.argv.slice(2);

if (platform !== 'esp32' && platform !== 'lin') {
  console.error('usage: node scripts/moddable-build.mjs esp32|lin [name=value ...]');
  process.exit(2);
}
for (const o of overrides) {
  if (!/^[A-Za-z_][\w.]*=/.test(o)) {
    console.error(`not a config override (name=value): ${o}`);
    process.exit(2);
  }
}

const missing = [];
const moddable = process.env.MODDABLE;
if (!moddable) {
  missing.push(
    'MODDABLE is not set. Install the Moddable SDK (https://github.com/Moddable-OpenSource/moddable,',
    '  documentation/Moddable SDK - Getting Started.md), build its tools for this machine',
    '  (Linux: cd $MODDABLE/build/makefiles/lin && make), then export MODDABLE=<sdk folder>',
    '  and put $MODDABLE/build/bin/lin/release on PATH.',
  );
}
const idfHelp = [
  "IDF_PATH is not set. Flashing an esp32 needs ESP-IDF v6.0 (Moddable's documentation/devices/esp32.md):",
  '  git clone -b v6.0 --recursive https://github.com/espressif/esp-idf.git, run its install.sh,',
  '  then `source $IDF_PATH/export.sh`.',
];
if (platform === 'esp32' && !process.env.IDF_PATH) {
  if (missing.length) missing.push(...idfHelp);
  // With the SDK but without ESP-IDF, mcconfig (8.2) still generates the build folder
  // ($MODDABLE/build/tmp/esp32/debug/<folder name>/, one <module>-tsconfig.json per .ts module)
  // and then stops with "$IDF_PATH not set" before running make, so nothing is type-checked;
  // `tsc -p` on those tsconfig files checks against the SDK's esp32 typings.
  else console.warn(`warning: ${idfHelp.join('\n')}\nmcconfig will only generate the build folder, then stop.`);
}
if (missing.length) {
  console.error(`Cannot build for ${platform}:\n${missing.join('\n')}`);
  process.exit(1);
}

const host = process.platform === 'darwin' ? 'mac' : process.platform === 'win32' ? 'win' : 'lin';
const bundled = join(moddable, 'build', 'bin', host, 'release', process.platform === 'win32' ? 'mcconfig.exe' : 'mcconfig');
const onPath = spawnSync(process.platform === 'win32' ? 'where' : 'which', ['mcconfig'], { encoding: 'utf8' });
const mcconfig = onPath.status === 0 ? onPath.stdout.trim().split('\n')[0] : existsSync(bundled) ? bundled : null;
if (!mcconfig) {
  console.error(`Cannot build for ${platform}: mcconfig is neither on PATH nor at ${bundled}.`);
  console.error(`Build the Moddable tools first: cd ${join(moddable, 'build', 'makefiles', host)} && make`);
  process.exit(1);
}

const args = ['-d', '-m', '-p', platform, ...overrides];
console.log(`${mcconfig} ${args.join(' ')}   (in ${root})`);
const run = spawnSync(mcconfig, args, { cwd: root, stdio: 'inherit' });
process.exit(run.status ?? 1);
