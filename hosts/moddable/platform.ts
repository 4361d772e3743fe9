// The slices of Moddable's APIs this host uses, written as structural types.
// The bindings (stores, transport, timer-host) take these as constructor
// arguments instead of importing the Moddable modules, so the very same files
// run under Node against fakes (test/hosts/moddable) and on the device, where
// dormouse.ts and dormouse-wake.ts pass the real modules. The real modules' typings are checked
// against these shapes where those files hand them over.

/** ECMA-419 TCP socket (`embedded:io/socket/tcp`) in its default "buffer" format. */
export interface TcpSocket {
  /** Fills the whole view; the view must not be longer than the bytes announced by onReadable. */
  read(into: Uint8Array): unknown;
  /** Throws ("would block") when the bytes exceed the room announced by onWritable. */
  write(bytes: Uint8Array): unknown;
  close(): void;
}

export interface TcpSocketOptions {
  /** Dotted IPv4: the lwIP socket on ESP32 takes no host name. */
  address: string;
  port: number;
  nodelay?: boolean;
  /** `count` bytes can be read now. */
  onReadable?: (count: number) => void;
  /** First call means connected; `count` bytes can be written without blocking. */
  onWritable?: (count: number) => void;
  /** The socket is unusable, for any reason, including a clean close by the peer. */
  onError?: () => void;
}

export type TcpSocketConstructor = new (options: TcpSocketOptions) => TcpSocket;

/** `preference` (NVS on ESP32): blobs must be ArrayBuffer instances, not views; integers are stored as i32. */
export interface PreferenceStore {
  get(domain: string, key: string): unknown;
  set(domain: string, key: string, value: ArrayBuffer | number): void;
  delete(domain: string, key: string): void;
}

/** `timer`: only the calls that let one timer object be reused for every deadline. */
export interface TimerApi<T> {
  repeat(callback: (timer: T) => void, interval: number): T;
  schedule(timer: T, initialInterval?: number, repeatInterval?: number): void;
  clear(timer: T | undefined): void;
}

/** The RTC-retained buffer of `dormouse/deepsleep`: copies in and out by offset. */
export interface RtcMemory {
  readonly byteLength: number;
  /** Fills `into` from `offset`. Throws RangeError past the end. */
  read(offset: number, into: Uint8Array): void;
  /** Copies `bytes` to `offset`. Throws RangeError past the end. */
  write(offset: number, bytes: Uint8Array): void;
}

/** What `dormouse/deepsleep`'s wakeCause() returns; the C module maps ESP-IDF's causes onto these. */
export const enum WakeCause {
  /** Not a wake from deep sleep: power-on, reset button, panic, watchdog, flashing. */
  Reset = 0,
  Timer = 1,
  /** EXT0, EXT1 or GPIO. */
  Pin = 2,
  Touch = 3,
  Ulp = 4,
  Other = 5,
}

/** The legacy `wifi` module's static side (ESP32 and the lin simulation): `new WiFi(dictionary, onNotify)`. */
export interface WiFiApi {
  /** Starts a station join; `onNotify` gets "connect", "gotIP", "disconnect", "lostIP". */
  new (dictionary: { ssid: string; password?: string; bssid?: ArrayBuffer; channel?: number }, onNotify: (message: string) => void): WiFiInstance;
  /** Leave the network (no arguments). */
  disconnect(): void;
}

export interface WiFiInstance {
  close(): void;
}
