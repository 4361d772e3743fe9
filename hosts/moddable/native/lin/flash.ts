// `embedded:storage/flash` for the lin simulator (mcsim): Moddable has no
// flash on lin, so this stand-in keeps a partition in a file with NOR flash's
// rules, as Moddable's ESP32 module (modules/io/flash/esp32) exposes it:
//
// - open({ path }) opens the partition named `path`: the file
//   <config.file.root>dormouse-flash-<path>.bin (lin's root is /tmp/), made
//   erased (0xFF) when missing. (dormouse.ts asks for "dormouse-<FNV-1a of the
//   client id>" on lin, so each client id has its own file.) 16 KiB in 4 blocks of 4096, as the partition
//   hosts/moddable/native/partitions.csv gives an ESP32.
// - eraseBlock(start, end) sets blocks [start, end) to 0xFF.
// - write(buffer, offset) can only clear bits: a write that would set one (a
//   1 where the flash holds a 0) throws and changes nothing, where a real chip
//   would silently keep the AND of both.
// - read(byteLength | buffer, offset), status() { size, blockLength, blocks }.
//
// Every write and erase reaches the file at once (Moddable's lin File flushes
// each write), so killing mcsim keeps what was programmed, as a power cut
// keeps flash. What the partition was asked to do is counted in
// <file>.count ("written <bytes> <writes> erased <blocks>"), across runs, so
// a script can read the bytes a series of wakes really wrote.
import { File } from 'file';
import config from 'mc/config';

const SIZE = 16 * 1024;
const BLOCK = 4096;

class FilePartition {
  readonly #file: File;
  readonly #countPath: string;
  readonly #bytes: Uint8Array;
  #written = 0;
  #writes = 0;
  #erased = 0;

  constructor(path: string) {
    const root = (config as { file?: { root?: string } }).file?.root ?? '/tmp/';
    const name = `${root}dormouse-flash-${path}.bin`;
    this.#countPath = `${name}.count`;
    const fresh = !File.exists(name);
    this.#file = new File(name, true);
    this.#bytes = new Uint8Array(SIZE);
    if (fresh || this.#file.length !== SIZE) {
      this.#bytes.fill(0xff); // a new chip reads erased
      this.#file.position = 0;
      this.#file.write(this.#bytes.buffer as ArrayBuffer);
    } else {
      this.#file.position = 0;
      this.#bytes.set(new Uint8Array(this.#file.read(ArrayBuffer, SIZE)));
    }
    if (File.exists(this.#countPath)) {
      const f = new File(this.#countPath);
      const m = /written (\d+) (\d+) erased (\d+)/.exec(f.read(String));
      f.close();
      if (m) {
        this.#written = Number(m[1]);
        this.#writes = Number(m[2]);
        this.#erased = Number(m[3]);
      }
    }
  }

  get format(): string {
    return 'buffer';
  }

  read(into: number | ArrayBuffer | ArrayBufferView, offset: number): ArrayBuffer | number {
    if (typeof into === 'number') {
      this.#check(offset, into);
      return this.#bytes.slice(offset, offset + into).buffer;
    }
    const view = ArrayBuffer.isView(into) ? new Uint8Array(into.buffer, into.byteOffset, into.byteLength) : new Uint8Array(into);
    this.#check(offset, view.length);
    view.set(this.#bytes.subarray(offset, offset + view.length));
    return view.length;
  }

  write(from: ArrayBuffer | ArrayBufferView, offset: number): void {
    const bytes = ArrayBuffer.isView(from) ? new Uint8Array(from.buffer, from.byteOffset, from.byteLength) : new Uint8Array(from);
    this.#check(offset, bytes.length);
    const flash = this.#bytes;
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i]! & ~flash[offset + i]!) & 0xff)
        throw new Error(`flash: writing ${bytes[i]} over ${flash[offset + i]} at ${offset + i} would set a bit (NOR flash only clears bits: erase the block first)`);
    }
    flash.set(bytes, offset);
    this.#file.position = offset;
    this.#file.write(bytes.slice().buffer as ArrayBuffer);
    this.#written += bytes.length;
    this.#writes++;
    this.#count();
  }

  eraseBlock(start: number, end: number = start + 1): void {
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start && end * BLOCK <= SIZE))
      throw new RangeError(`flash: no blocks [${start}, ${end}) in ${SIZE / BLOCK}`);
    const erased = new Uint8Array((end - start) * BLOCK).fill(0xff);
    this.#bytes.set(erased, start * BLOCK);
    this.#file.position = start * BLOCK;
    this.#file.write(erased.buffer as ArrayBuffer);
    this.#erased += end - start;
    this.#count();
  }

  status(): { size: number; blockLength: number; blocks: number; writeAlign: number; eraseValue: number; written: number; writes: number; erased: number } {
    return { size: SIZE, blockLength: BLOCK, blocks: SIZE / BLOCK, writeAlign: 1, eraseValue: 0xff, written: this.#written, writes: this.#writes, erased: this.#erased };
  }

  close(): void {
    this.#file.close();
  }

  #count(): void {
    const f = new File(this.#countPath, true);
    f.position = 0;
    f.write(`written ${this.#written} ${this.#writes} erased ${this.#erased}`.padEnd(64, ' '));
    f.close();
  }

  #check(offset: number, length: number): void {
    if (!(Number.isInteger(offset) && offset >= 0 && offset + length <= SIZE)) throw new RangeError(`flash: [${offset}, ${offset + length}) is outside the ${SIZE}-byte partition`);
  }
}

const partitions = new Map<string, FilePartition>();

export default {
  open(options: { path: string; mode?: string }): FilePartition {
    const path = options?.path;
    if (typeof path !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(path)) throw new Error('no path');
    let p = partitions.get(path);
    if (p === undefined) partitions.set(path, (p = new FilePartition(path)));
    return p;
  },
};
