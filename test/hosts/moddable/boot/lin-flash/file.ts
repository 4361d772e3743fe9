// Moddable's lin `file` module (modules/files/file/lin/modFile.c) over Node's fs, for the flash
// stand-in under test: new File(path, write) opens "rb+", or creates the file when `write`;
// read(type, count) and write(...items) at `position`, each write flushed; length; exists.
interface Fs {
  openSync(path: string, flags: string): number;
  readSync(fd: number, into: Uint8Array, offset: number, length: number, position: number): number;
  writeSync(fd: number, from: Uint8Array, offset: number, length: number, position: number): number;
  fstatSync(fd: number): { size: number };
  closeSync(fd: number): void;
  existsSync(path: string): boolean;
}
const fs = (globalThis as unknown as { __linFs: Fs }).__linFs;

export class File {
  #fd: number;
  position = 0;
  constructor(path: string, write = false) {
    try {
      this.#fd = fs.openSync(path, write ? 'r+' : 'r');
    } catch {
      if (!write) throw new Error('file not found');
      this.#fd = fs.openSync(path, 'w+');
    }
  }
  get length(): number {
    return fs.fstatSync(this.#fd).size;
  }
  read(type: unknown, count?: number): string | ArrayBuffer {
    const n = count ?? this.length - this.position;
    if (this.position + n > this.length) throw new Error('read past end of file');
    const b = new Uint8Array(n);
    fs.readSync(this.#fd, b, 0, n, this.position);
    this.position += n;
    return type === String ? String.fromCharCode(...b) : b.buffer; // the stand-in reads ASCII only
  }
  write(...items: (ArrayBuffer | string)[]): void {
    for (const item of items) {
      const b = typeof item === 'string' ? Uint8Array.from(item, (c) => c.charCodeAt(0)) : new Uint8Array(item);
      fs.writeSync(this.#fd, b, 0, b.length, this.position);
      this.position += b.length;
    }
  }
  close(): void {
    fs.closeSync(this.#fd);
  }
  static exists(path: string): boolean {
    return fs.existsSync(path);
  }
}
