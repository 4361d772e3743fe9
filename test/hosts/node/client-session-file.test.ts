// connect() with a sessionFile that cannot be used, is damaged, or is not
// ours: never a synchronous throw, never a silent overwrite. The EACCES case
// runs in a child process as nobody when the suite runs as root (root
// ignores permissions; CI runs as root).
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NodeClient } from '../../../hosts/node/client.js';
import { SessionFileError } from '../../../hosts/node/file-store.js';

const CLIENT = fileURLToPath(new URL('../../../hosts/node/client.ts', import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'dormouse-session-file-'));
chmodSync(work, 0o777);
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = path.join(work, `case${n++}`);
  mkdirSync(d);
  chmodSync(d, 0o777);
  return d;
};
// Port 1 on loopback: nothing listens, and nothing here needs a broker.
const NOWHERE = 'mqtt://127.0.0.1:1';

/** The events a failed client gives, in order, and what its calls do. */
async function failure(c: NodeClient): Promise<{ events: string[]; error: Error; publish: unknown }> {
  const events: string[] = [];
  let error: Error | null = null;
  c.on('error', (e: Error) => { events.push('error'); error = e; });
  c.on('close', () => events.push('close'));
  const ended = new Promise<void>((r) => c.once('end', () => { events.push('end'); r(); }));
  const publish = await c.publish('t', 'x', { qos: 1 }).then(() => 'accepted', (e: Error) => e);
  await ended;
  await c.end();
  return { events, error: error!, publish };
}

/** Run an ES module script in a child Node (with tsx), as nobody when the tests run as root (so permissions bite). */
async function runUnprivileged(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => { stdout += b; });
  child.stderr.on('data', (b: Buffer) => { stderr += b; });
  const code = await new Promise<number | null>((r) => child.once('close', r));
  return { code, stdout, stderr };
}

describe('connect() with a sessionFile', () => {
  it('under a regular file: no throw, an error event, close and end; publish rejects with the same one line', async () => {
    const d = fresh();
    writeFileSync(path.join(d, 'plain'), 'x');
    let c!: NodeClient;
    expect(() => { c = connect(NOWHERE, { clientId: 'dev', sessionFile: path.join(d, 'plain', 'sub', 's'), reconnectPeriod: 0 }); }).not.toThrow();
    const f = await failure(c);
    expect(f.events).toEqual(['error', 'close', 'end']);
    expect(f.error).toBeInstanceOf(SessionFileError);
    expect(f.error.message).toBe(`cannot create the session directory "${path.join(d, 'plain', 'sub')}": "${path.join(d, 'plain')}" is a file, not a directory`);
    expect(f.publish).toBe(f.error);
    expect(c.startError).toBe(f.error);
  });

  it('in a directory the process cannot create (EACCES, run as an unprivileged user)', async () => {
    const d = fresh();
    const locked = path.join(d, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    const script = `
      import { connect } from ${JSON.stringify(CLIENT)};
      let c;
      try { c = connect('${NOWHERE}', { clientId: 'dev', sessionFile: ${JSON.stringify(path.join(locked, 'new', 's'))}, reconnectPeriod: 0 }); }
      catch (e) { console.log(JSON.stringify({ threw: e.message })); process.exit(0); }
      const out = {};
      c.on('error', (e) => { out.error = e.message; out.code = e.code; });
      c.publish('t', 'x', { qos: 1 }).catch((e) => { out.rejected = e.message; });
      c.on('end', () => setImmediate(() => console.log(JSON.stringify(out))));
    `;
    const { code, stdout, stderr } = await runUnprivileged(script);
    expect(code, stderr).toBe(0);
    const want = `cannot create the session directory "${path.join(locked, 'new')}": permission denied`;
    expect(JSON.parse(stdout)).toEqual({ error: want, code: 'EACCES', rejected: want });
  });

  it('a session write that fails later (permissions changed): publish rejects, error, close and end; no uncaught exception', async () => {
    const d = fresh();
    const prefix = path.join(d, 'dev');
    const script = `
      import { chmodSync } from 'node:fs';
      import { connect } from ${JSON.stringify(CLIENT)};
      const out = { events: [] };
      process.on('uncaughtException', (e) => { out.uncaught = e.message; console.log(JSON.stringify(out)); process.exit(3); });
      const c = connect('${NOWHERE}', { clientId: 'dev', sessionFile: ${JSON.stringify(prefix)}, reconnectPeriod: 0 });
      c.on('error', (e) => { if (e.code !== 'ECONNREFUSED') out.events.push('error: ' + e.message); });
      c.on('close', () => out.events.push('close'));
      c.on('end', () => out.events.push('end'));
      await c.publish('t', 'one', { qos: 1 });
      await c.publish('t', 'two', { qos: 1 });
      chmodSync(${JSON.stringify(prefix)} + '.0', 0o444);
      chmodSync(${JSON.stringify(prefix)} + '.1', 0o444);
      out.rejected = await c.publish('t', 'three', { qos: 1 }).then(() => 'accepted', (e) => e.message);
      out.again = await c.publish('t', 'four', { qos: 1 }).then(() => 'accepted', (e) => e.message);
      await c.end();
      setImmediate(() => console.log(JSON.stringify(out)));
    `;
    const { code, stdout, stderr } = await runUnprivileged(script);
    expect(code, stdout + stderr).toBe(0);
    const out = JSON.parse(stdout) as { events: string[]; rejected: string; again: string };
    const failed = new RegExp(`^cannot write the session file "${prefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\.[01]": permission denied$`);
    expect(out.rejected).toMatch(failed);
    expect(out.again).toBe(out.rejected);
    expect(out.events.filter((e) => e !== 'close')).toEqual([`error: ${out.rejected}`, 'end']);
  });

  it('both slots damaged: the files are kept beside it, sessionDamaged says where, and a new session starts', async () => {
    const d = fresh();
    const prefix = path.join(d, 'dev');
    const first = connect(NOWHERE, { clientId: 'dev', sessionFile: prefix, reconnectPeriod: 0 });
    first.on('error', () => {});
    await first.publish('t', 'one', { qos: 1 });
    await first.publish('t', 'two', { qos: 1 });
    await first.end();
    const damaged = [0, 1].map((slot) => {
      const b = readFileSync(`${prefix}.${slot}`);
      b[b.length - 9] ^= 0x01;
      writeFileSync(`${prefix}.${slot}`, b);
      return b;
    });
    const again = connect(NOWHERE, { clientId: 'dev', sessionFile: prefix, reconnectPeriod: 0 });
    again.on('error', () => {});
    const [{ keptAs }] = await new Promise<[{ keptAs: string[] }]>((r) => again.once('sessionDamaged', (...a) => r(a as [{ keptAs: string[] }])));
    expect(keptAs).toHaveLength(2);
    expect(keptAs[0]).toMatch(/dev\.0\.damaged-\d{8}T\d{6}Z$/);
    expect(readFileSync(keptAs[0]!)).toEqual(damaged[0]);
    expect(readFileSync(keptAs[1]!)).toEqual(damaged[1]);
    expect(again.core.session.live).toBe(0);
    await again.publish('t', 'three', { qos: 1 });
    await again.end();
    // The new session's slots beside the kept ones, which nothing overwrote.
    expect(readdirSync(d).sort()).toEqual(['dev.0', 'dev.1', path.basename(keptAs[0]!), path.basename(keptAs[1]!)].sort());
    expect(readFileSync(keptAs[0]!)).toEqual(damaged[0]);
  });

  it('a file that is not a session is refused, not overwritten', async () => {
    const d = fresh();
    const prefix = path.join(d, 'notes');
    writeFileSync(`${prefix}.1`, 'shopping list\n');
    const c = connect(NOWHERE, { clientId: 'dev', sessionFile: prefix, reconnectPeriod: 0 });
    const f = await failure(c);
    expect(f.events).toEqual(['error', 'close', 'end']);
    expect((f.error as SessionFileError).code).toBe('ERR_NOT_A_SESSION_FILE');
    expect(f.error.message).toBe(`"${prefix}.1" is not a dormouse session file: refusing to overwrite it (move it away, or choose another session file)`);
    expect(readFileSync(`${prefix}.1`, 'utf8')).toBe('shopping list\n');
    expect(existsSync(`${prefix}.0`)).toBe(false);
  });
});
