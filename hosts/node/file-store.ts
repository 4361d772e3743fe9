// SnapshotStore over two files, PATH.0 and PATH.1.
//
// Why two files rather than one file with two fixed regions: each slot keeps
// its own length (no maximum image size to choose up front, no length header
// of our own), a torn write or a size change touches only that slot's inode,
// and the core's CRC + sequence number already pick the good slot. The store's
// single duty is never to harm the slot it is not writing.
//
// A write is: open (create if needed), write the whole image at offset 0,
// truncate to its length, fsync, close; the first time a slot file is
// created, the directory is fsynced too so the new name survives a power cut.
// Killed at any instant (SIGKILL) the OS still holds every byte we wrote, so
// the slot being written is either old, new, or torn (new prefix + old tail,
// which the core's CRC rejects), and the other slot is untouched. Writing
// before truncating (not truncate-then-write) means a complete new image is
// never left shorter than itself.

import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync, constants } from 'node:fs';
import path from 'node:path';
import type { SnapshotStore } from '../../modules/session/ports.js';

export interface FileSnapshotStoreOptions {
  /** fsync after every write (default true). false is for simulations where durability does not matter. */
  sync?: boolean;
  /** Files shorter than this read as null (default 1: an empty file is no image). */
  minImageBytes?: number;
}

/** Base name used inside a directory: DIR/session.0 and DIR/session.1. */
export const DIRECTORY_BASENAME = 'session';

export class FileSnapshotStore implements SnapshotStore {
  /** Absolute paths of slot 0 and slot 1. */
  readonly paths: readonly [string, string];
  readonly #dir: string;
  readonly #sync: boolean;
  readonly #min: number;

  /**
   * `location` is either an existing directory (slots DIR/session.0 and
   * DIR/session.1) or a path prefix (slots PATH.0 and PATH.1, whose parent
   * directory is created if missing).
   */
  constructor(location: string, opts: FileSnapshotStoreOptions = {}) {
    if (typeof location !== 'string' || location === '') throw new TypeError('FileSnapshotStore needs a directory or a file path prefix');
    let base = path.resolve(location);
    let isDir = false;
    try { isDir = statSync(base).isDirectory(); } catch { /* does not exist: a prefix */ }
    if (isDir) base = path.join(base, DIRECTORY_BASENAME);
    this.#dir = path.dirname(base);
    mkdirSync(this.#dir, { recursive: true });
    this.paths = Object.freeze([`${base}.0`, `${base}.1`]) as readonly [string, string];
    this.#sync = opts.sync ?? true;
    this.#min = Math.max(1, opts.minImageBytes ?? 1);
  }

  /** The slot's bytes, or null when the file is missing or shorter than minImageBytes. */
  read(slot: 0 | 1): Uint8Array | null {
    let buf: Buffer;
    try {
      buf = readFileSync(this.#path(slot));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    if (buf.byteLength < this.#min) return null;
    // A plain Uint8Array: Buffer's slice() shares memory where Uint8Array's copies.
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  write(slot: 0 | 1, image: Uint8Array): void {
    const file = this.#path(slot);
    let created = false;
    let fd: number;
    try {
      fd = openSync(file, constants.O_WRONLY);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      fd = openSync(file, constants.O_WRONLY | constants.O_CREAT, 0o600);
      created = true;
    }
    try {
      let off = 0;
      while (off < image.byteLength) {
        off += writeSync(fd, image, off, image.byteLength - off, off);
      }
      if (fstatSync(fd).size !== image.byteLength) ftruncateSync(fd, image.byteLength);
      if (this.#sync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (created && this.#sync) this.#syncDirectory();
  }

  #path(slot: 0 | 1): string {
    if (slot !== 0 && slot !== 1) throw new RangeError(`snapshot slot must be 0 or 1, got ${String(slot)}`);
    return this.paths[slot];
  }

  #syncDirectory(): void {
    let fd: number;
    try {
      fd = openSync(this.#dir, constants.O_RDONLY);
    } catch (e) {
      // Windows cannot open a directory this way; its metadata is journaled anyway.
      if (process.platform === 'win32') return;
      throw e;
    }
    try {
      fsyncSync(fd);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR') throw e;
    } finally {
      closeSync(fd);
    }
  }
}
