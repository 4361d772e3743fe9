// Moddable `net` (documentation/network/network.md, class Net): DNS lookup and the station's properties.
declare module 'net' {
  const Net: {
    /** Asynchronous; `address` is undefined when the name does not resolve. Throws when lwIP's DNS queue is full. */
    resolve(name: string, callback: (name: string, address?: string) => void): void;
    /** "IP", "SSID", "BSSID" ("aa:bb:cc:dd:ee:ff"), "RSSI"...; undefined where the target has none. */
    get(property: string): string | number | undefined;
  };
  export default Net;
}
