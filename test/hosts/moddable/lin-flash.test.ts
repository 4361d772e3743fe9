// The lin stand-in for `embedded:storage/flash` (hosts/moddable/native/lin/flash.ts), bundled as
// mcsim builds it, over a `file` module with Moddable lin's behaviour (Node fs underneath): NOR
// flash's rules in a file that outlives the process (a new evaluation of the bundle is a restart
// of mcsim), and counters that add up across restarts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForXs } from '../../support/xs.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
type Partition = {
  read(into: number | Uint8Array, offset: number): ArrayBuffer | number;
  write(bytes: Uint8Array, offset: number): void;
  eraseBlock(start: number, end?: number): void;
  status(): { size: number; blockLength: number; blocks: number; written: number; writes: number; erased: number };
  close(): void;
};
type FlashModule = { open(o: { path: string }): Partition };
const g = globalThis as unknown as { __linFs?: typeof fs; __linRoot?: string; __linFlash?: FlashModule };

let root = '';
let bundle = '';
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'dormouse-linflash-')) + '/';
  g.__linFs = fs;
  g.__linRoot = root;
  bundle = await bundleForXs(here('./boot/lin-flash/entry.ts'), {
    'embedded:storage/flash': here('../../../hosts/moddable/native/lin/flash.ts'),
    file: here('./boot/lin-flash/file.ts'),
    'mc/config': here('./boot/lin-flash/config.ts'),
  });
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  delete g.__linFs;
  delete g.__linRoot;
  delete g.__linFlash;
});

/** Start mcsim again: a fresh evaluation of the module, the files kept. */
function boot(): FlashModule {
  new Function(bundle)();
  return g.__linFlash!;
}

describe('lin flash stand-in', () => {
  it('has NOR flash rules, keeps what was programmed across restarts, and counts', () => {
    const p = boot().open({ path: 'dormouse-test' });
    const file = `${root}dormouse-flash-dormouse-test.bin`;
    expect(p.status()).toMatchObject({ size: 16384, blockLength: 4096, blocks: 4, written: 0, erased: 0 });
    expect(new Uint8Array(p.read(16, 0) as ArrayBuffer)).toEqual(new Uint8Array(16).fill(0xff)); // a new chip reads erased
    expect(readFileSync(file).every((b) => b === 0xff)).toBe(true);

    p.write(new Uint8Array([0x0f, 0xf0, 0x00]), 100);
    p.write(new Uint8Array([0x05]), 100); // clearing more bits is allowed
    expect(() => p.write(new Uint8Array([0xff, 0xff]), 100)).toThrow(/would set a bit/);
    expect(() => p.write(new Uint8Array([0x01]), 102)).toThrow(/would set a bit/);
    expect(() => p.write(new Uint8Array(4), 16382)).toThrow(RangeError);
    expect(Array.from(readFileSync(file).subarray(100, 103))).toEqual([0x05, 0xf0, 0x00]); // a refused write changed nothing
    const into = new Uint8Array(3);
    expect(p.read(into, 100)).toBe(3);
    expect(Array.from(into)).toEqual([0x05, 0xf0, 0x00]);

    p.write(new Uint8Array([1, 2, 3, 4]), 5000); // block 1
    p.eraseBlock(0);
    expect(readFileSync(file)[100]).toBe(0xff);
    expect(Array.from(readFileSync(file).subarray(5000, 5004))).toEqual([1, 2, 3, 4]); // only block 0 erased
    expect(() => p.eraseBlock(3, 5)).toThrow(RangeError);
    expect(p.status()).toMatchObject({ written: 8, writes: 3, erased: 1 });

    // mcsim killed and started again: the partition and the counters are what they were.
    const again = boot().open({ path: 'dormouse-test' });
    expect(again).not.toBe(p);
    expect(new Uint8Array(again.read(4, 5000) as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(() => again.write(new Uint8Array([0xff]), 5000)).toThrow(/would set a bit/);
    again.eraseBlock(1, 3);
    expect(again.status()).toMatchObject({ written: 8, writes: 3, erased: 3 });
    expect(readFileSync(`${file}.count`, 'utf8')).toMatch(/^written 8 3 erased 3 */);
  });

  it('keeps each partition name in its own file', () => {
    const flash = boot();
    const a = flash.open({ path: 'dormouse-aaaa' });
    const b = flash.open({ path: 'dormouse-bbbb' });
    a.write(new Uint8Array([0]), 0);
    expect(new Uint8Array(b.read(1, 0) as ArrayBuffer)[0]).toBe(0xff);
    expect(flash.open({ path: 'dormouse-aaaa' })).toBe(a);
    expect(() => flash.open({ path: '../etc/passwd' })).toThrow(/no path/);
  });
});
