// ECMA-419 TCP socket as Moddable implements it (documentation/io/io.md,
// "TCP Socket"), "buffer" format only. On ESP32 (lwIP) the remote end is an
// IPv4 `address`; host names are resolved elsewhere (module `net`).
declare module 'embedded:io/socket/tcp' {
  export interface TCPOptions {
    address: string;
    port: number;
    /** Disables Nagle's algorithm when true. */
    nodelay?: boolean;
    /** `from`: adopt the native socket of a Listener's accepted socket. */
    from?: TCP;
    /** Bytes available to read. */
    onReadable?: (this: TCP, count: number) => void;
    /** Called once connected, then whenever room frees up; the count is the room in bytes. */
    onWritable?: (this: TCP, count: number) => void;
    /** The connection is unusable (peer closed, reset, connect failed). */
    onError?: (this: TCP) => void;
    format?: 'buffer';
  }
  export default class TCP {
    constructor(options: TCPOptions);
    /** Without argument: all available bytes as a new ArrayBuffer. With a count: that many. */
    read(count?: number): ArrayBuffer;
    /** Fills the whole buffer; must not exceed the available bytes. */
    read(into: ArrayBuffer | ArrayBufferView): number;
    /** Throws when the bytes exceed the room last announced; otherwise the room left. */
    write(bytes: ArrayBuffer | ArrayBufferView): number;
    close(): void;
    readonly remoteAddress: string | undefined;
    readonly remotePort: number | undefined;
    format: 'buffer' | 'number';
  }
}
