// Moddable's legacy `wifi` module (documentation/network/wifi.md; ESP32 and
// the lin simulation): a station join with a callback of string messages.
declare module 'wifi' {
  export interface WiFiOptions {
    ssid: string;
    password?: string;
    /** 6 bytes: join this access point (skips the scan on ESP32). */
    bssid?: ArrayBuffer;
  }
  export default class WiFi {
    constructor(dictionary: WiFiOptions | undefined, onNotify: (message: string) => void);
    close(): void;
    static connect(dictionary?: WiFiOptions): void;
    static disconnect(): void;
    static readonly gotIP: 'gotIP';
    static readonly lostIP: 'lostIP';
    static readonly connected: 'connect';
    static readonly disconnected: 'disconnect';
  }
}
