// Moddable `net` (documentation/network/network.md, class Net): only the DNS lookup.
declare module 'net' {
  const Net: {
    /** Asynchronous; `address` is undefined when the name does not resolve. Throws when lwIP's DNS queue is full. */
    resolve(name: string, callback: (name: string, address?: string) => void): void;
  };
  export default Net;
}
