#!/usr/bin/env node
// The `dormouse` command (dormouse pub, dormouse sub). A published package
// runs the compiled dist/; a source checkout runs hosts/node/cli.ts through
// tsx's loader. DORMOUSE_FROM_SOURCE=1 forces the source even when a dist/
// is present (the tests set it, so a stale build is never what they test).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/hosts/node/cli.js', import.meta.url);
let cli;
if (process.env.DORMOUSE_FROM_SOURCE !== '1' && existsSync(fileURLToPath(built))) {
  cli = await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(new URL('../hosts/node/cli.ts', import.meta.url).href);
}
await cli.run(process.argv.slice(2));
