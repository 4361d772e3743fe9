// Runs a bundled script inside the real XS engine (@agoric/xsnap's worker) in
// its own process: @endo/init hardens the realm it runs in, so it must not run
// inside the test runner. Input (stdin, JSON): { bundle, steps: [code...] }.
// Output (stdout, JSON): one entry per step with the reports the step made
// through `report(value)` and the engine's meter (compute, allocate, heap).
import '@endo/init';
import { xsnap } from '@agoric/xsnap';
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as childProcess from 'node:child_process';

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const decoder = new TextDecoder();
let reports = [];
const worker = await xsnap({
  os: os.type(),
  spawn: childProcess.spawn,
  fs: { ...fs, ...fs.promises },
  name: 'dormouse-xs',
  meteringLimit: 0,
  stderr: 'inherit',
  stdout: 'inherit',
  handleCommand: async (bytes) => {
    reports.push(JSON.parse(decoder.decode(bytes)));
    return new Uint8Array(0);
  },
});
const prelude = `globalThis.report = (value) => { issueCommand(new TextEncoder().encode(JSON.stringify(value)).buffer); };`;
const out = [];
let failed = null;
try {
  await worker.evaluate(prelude + '\n' + input.bundle);
  for (const code of input.steps) {
    reports = [];
    const r = await worker.evaluate(code);
    const { compute, allocate, currentHeapCount } = r.meterUsage;
    out.push({ reports, compute, allocate, currentHeapCount });
  }
} catch (e) {
  failed = String(e && e.message ? e.message : e);
} finally {
  await worker.close().catch(() => {});
}
process.stdout.write(JSON.stringify({ steps: out, error: failed }));
