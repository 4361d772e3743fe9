// ECMA-419 raw flash, Moddable's `embedded:storage/flash` (modules/io/flash:
// esp32, mac, zephyr; hosts/moddable/native/lin/flash.ts on lin). open() finds a
// data partition by its label and throws "can't find partition" when there is none.
declare module 'embedded:storage/flash' {
  export interface Flash {
    close(): void;
    eraseBlock(start: number, end?: number): void;
    read(byteLength: number, byteOffset: number): ArrayBuffer;
    read(buffer: ArrayBuffer | ArrayBufferView, byteOffset: number): number;
    write(buffer: ArrayBuffer | ArrayBufferView, byteOffset: number): void;
    status(): { size: number; blockLength: number; blocks: number };
  }
  const FlashStorage: {
    open(options: { path: string; mode?: 'r' | 'r+' }): Flash;
  };
  export default FlashStorage;
}
