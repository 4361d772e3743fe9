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
//
// Problems with the location (a parent that is a file, no permission) are
// found when the store is made, not at the first write after connecting, and
// thrown as a SessionFileError with one line that names the path. Damaged
// images are never overwritten: setAside() renames them beside the session
// (PATH.0.damaged-<time>) before a fresh session is written.

import { accessSync, closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync, constants } from 'node:fs';
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

/** The session file cannot be used; `code` is the system's (EACCES, ENOTDIR, ...) or ERR_NOT_A_SESSION_FILE. */
export class SessionFileError extends Error {
  constructor(message: string, readonly code: string, readonly path: string) {
    super(message);
    this.name = 'SessionFileError';
  }
}

/** One line for a failed file operation on `file`, naming the cause in words. */
function fileProblem(what: string, file: string, e: unknown): SessionFileError {
  const err = e as NodeJS.ErrnoException;
  const code = err.code ?? 'EIO';
  let why: string;
  switch (code) {
    case 'EACCES': case 'EPERM': why = 'permission denied'; break;
    case 'EEXIST': case 'ENOTDIR': why = `${blockingFile(file)} is a file, not a directory`; break;
    case 'EISDIR': why = 'it is a directory'; break;
    case 'EROFS': why = 'read-only file system'; break;
    case 'ENOSPC': why = 'no space left on the device'; break;
    default: why = err.message;
  }
  return new SessionFileError(`cannot ${what} "${file}": ${why}`, code, file);
}

/** The nearest ancestor of `p` that exists (what stands where a directory was wanted). */
function blockingFile(p: string): string {
  let at = p;
  while (!existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  return `"${at}"`;
}

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
    try {
      mkdirSync(this.#dir, { recursive: true });
    } catch (e) {
      throw fileProblem('create the session directory', this.#dir, e);
    }
    this.paths = Object.freeze([`${base}.0`, `${base}.1`]) as readonly [string, string];
    // Now, not at the first write (after connecting, deep in a delivery): can the slots be written?
    try {
      accessSync(this.#dir, constants.W_OK | constants.X_OK);
    } catch (e) {
      throw fileProblem('write the session files in', this.#dir, e);
    }
    for (const file of this.paths) {
      try {
        if (statSync(file).isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
        accessSync(file, constants.R_OK | constants.W_OK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileProblem('use the session file', file, e);
      }
    }
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
      throw fileProblem('read the session file', this.#path(slot), e);
    }
    if (buf.byteLength < this.#min) return null;
    // A plain Uint8Array: Buffer's slice() shares memory where Uint8Array's copies.
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  write(slot: 0 | 1, image: Uint8Array): void {
    try {
      this.#write(slot, image);
    } catch (e) {
      throw e instanceof SessionFileError ? e : fileProblem('write the session file', this.#path(slot), e);
    }
  }

  /**
   * Renames the slot files that exist to PATH.N.damaged-<UTC time> (a
   * damaged session's bytes are kept, for a look or a recovery, not
   * overwritten by the fresh one) and returns the new names.
   */
  setAside(): string[] {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const kept: string[] = [];
    for (const file of this.paths) {
      if (!existsSync(file)) continue;
      let to = `${file}.damaged-${stamp}`;
      for (let k = 2; existsSync(to); k++) to = `${file}.damaged-${stamp}-${k}`;
      try {
        renameSync(file, to);
      } catch (e) {
        throw fileProblem('set aside the damaged session file', file, e);
      }
      kept.push(to);
    }
    if (kept.length && this.#sync) this.#syncDirectory();
    return kept;
  }

  #write(slot: 0 | 1, image: Uint8Array): void {
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
