#!/usr/bin/env node
// The `dormouse` command (pub, sub, sim, plan). The package runs the compiled
// dist/ (`prepack` builds it). A source checkout without a build runs
// hosts/node/cli.ts when Node was started with a TypeScript loader
// (`node --import tsx bin/dormouse.mjs`); DORMOUSE_FROM_SOURCE=1 picks the
// sources even when a dist/ is present (the tests set it, so a stale build is
// never what they test). The loader is not loaded from here: tsx is a
// development tool, not something the installed package needs.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/hosts/node/cli.js', import.meta.url);
const source = new URL('../hosts/node/cli.ts', import.meta.url);
const forced = process.env.DORMOUSE_FROM_SOURCE === '1';
let cli;
if (!forced && existsSync(fileURLToPath(built))) {
  cli = await import(built.href);
} else {
  try {
    cli = await import(source.href);
  } catch (e) {
    // Without a loader Node refuses the .ts file, or (stripping types itself) its .js imports.
    if (e?.code !== 'ERR_UNKNOWN_FILE_EXTENSION' && e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    const self = fileURLToPath(import.meta.url);
    process.stderr.write(
      (forced ? 'dormouse: DORMOUSE_FROM_SOURCE=1 runs the TypeScript sources: ' : `dormouse: no build in ${fileURLToPath(new URL('../dist/', import.meta.url))}: run \`npm run build\`, or `) +
        `start Node with a TypeScript loader: \`node --import tsx ${self}\` (${e.code}).\n`,
    );
    process.exit(1);
  }
}
await cli.run(process.argv.slice(2));
