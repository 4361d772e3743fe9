// Moddable's TLS socket for ECMA-419 (examples/io/tcp/tlssocket with
// modules/crypt/tls_419.json): the TCP socket's options plus `host` (server
// name), `TCP.io` (the socket class underneath) and `secure` (the TLS session's
// options: serverName, certificate = a CA certificate in DER, verify).
declare module 'embedded:io/socket/tcp/tls' {
  import type { TCPOptions } from 'embedded:io/socket/tcp';
  import type TCP from 'embedded:io/socket/tcp';
  export interface TLSOptions extends TCPOptions {
    host: string;
    TCP: { io: typeof TCP };
    secure?: { serverName?: string; certificate?: ArrayBuffer; verify?: boolean };
  }
  export default class TLSSocket {
    constructor(options: TLSOptions);
    read(into: ArrayBuffer | ArrayBufferView): number;
    write(bytes: ArrayBuffer | ArrayBufferView): number;
    close(): void;
  }
}
