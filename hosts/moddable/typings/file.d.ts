// Moddable's legacy `file` module (documentation/files/files.md), as the lin
// flash stand-in uses it: positioned reads and writes; on lin each write is flushed.
declare module 'file' {
  export class File {
    constructor(path: string, write?: boolean);
    read(type: typeof String, bytes?: number): string;
    read(type: typeof ArrayBuffer, bytes?: number): ArrayBuffer;
    write(value: ArrayBuffer | string, ...more: (ArrayBuffer | string)[]): void;
    close(): void;
    readonly length: number;
    position: number;
    static exists(path: string): boolean;
    static delete(path: string): boolean;
  }
}
