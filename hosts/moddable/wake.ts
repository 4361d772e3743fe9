// A battery device's wake, around a Client: join Wi-Fi with a timeout (the
// last access point's BSSID from RTC memory makes the join shorter), connect,
// let the app's messages go, and sleep as soon as the session is sleep-ready
// or the window ends, whatever was reached. A reading published before the
// join is in the session (RTC and the NVS journal) whether or not Wi-Fi or the
// broker answer: it goes with the next wake that reaches the broker.
//
// Before the radio stops the client's DISCONNECT is given a bounded time to
// leave (the socket's writes acknowledged), so the broker sees a clean
// disconnect and fires no will.
//
// Each wake prints one trace line: Wi-Fi join, TCP connect, CONNACK and last
// ack (ms from the wake's start, - when not reached), total awake ms, and the
// NVS bytes and writes the session store made in this wake.

import type { Client } from './client.js';
import type { RtcMemory, TimerApi, WiFiApi, WiFiInstance } from './platform.js';
import { RtcLayout, rtcRegion } from './rtc-layout.js';
import { crc32 } from '../../modules/session/crc32.js';

export interface WakeOptions {
  /** Wi-Fi network; without it the wake assumes the network is up (lin, or joined by someone else). */
  ssid?: string;
  password?: string;
  /** The whole wake's budget: Wi-Fi, TLS, MQTT. Default 10 s. */
  windowMs?: number;
  /** Wi-Fi must give an address within this (and within the window). Default: the window. */
  wifiTimeoutMs?: number;
  /** Deep sleep between wakes. Default 300 s. */
  sleepMs?: number;
  /** Longest wait for DISCONNECT to leave before the radio stops. Default 500 ms. */
  drainMs?: number;
}

export interface WakePlatform {
  Timer: TimerApi<any> & { set(callback: () => void, ms: number): unknown };
  /** The `wifi` module (absent: no Wi-Fi to join). */
  WiFi?: WiFiApi;
  /** BSSID of the access point joined, "aa:bb:cc:dd:ee:ff" (Net.get("BSSID")), if the target tells. */
  bssid?: () => string | undefined;
  rtc?: RtcMemory;
  clock(): number;
  /** dormouse/deepsleep's sleep: does not return on a device; returns in the lin simulator. */
  sleep(ms: number): void;
  trace(line: string): void;
}

/** What one wake did, in ms from its start (-1: not reached). */
export interface WakeTrace {
  why: 'sleep-ready' | 'window' | 'wifi';
  wifiMs: number;
  tcpMs: number;
  connackMs: number;
  lastAckMs: number;
  awakeMs: number;
  /** The last join used a BSSID from RTC memory. */
  bssidHint: boolean;
  drained: boolean;
  flashBytes: number;
  flashWrites: number;
}

// The wake record, in its RTC range (rtc-layout.ts): u32 magic, u8 flags (1: BSSID valid),
// 6 bytes BSSID, u8 reserved, u32 CRC-32 of the 12 bytes before it.
const WAKE_MAGIC = 0x31574d44; // "DMW1"
const WAKE_RECORD_BYTES = 16;

/** The access point of the last good join, kept through deep sleep. */
export class WakeRecord {
  readonly #rtc: RtcMemory | null;
  readonly #bytes = new Uint8Array(WAKE_RECORD_BYTES);
  readonly #view = new DataView(this.#bytes.buffer);

  constructor(rtc: RtcMemory | undefined) {
    this.#rtc = rtc ? rtcRegion(rtc, RtcLayout.wake) : null;
  }

  /** The BSSID kept, as 6 bytes, or undefined (none, or RTC noise after power-on). */
  get bssid(): ArrayBuffer | undefined {
    const rtc = this.#rtc;
    if (rtc === null) return undefined;
    const b = this.#bytes;
    rtc.read(0, b);
    if (this.#view.getUint32(0, true) !== WAKE_MAGIC || this.#view.getUint32(12, true) !== crc32(b, 0, 12) || (b[4]! & 1) === 0) return undefined;
    return b.slice(5, 11).buffer;
  }

  /** Keep `bssid` ("aa:bb:cc:dd:ee:ff"), or forget it (undefined, or not six hex pairs). */
  set bssid(text: string | undefined) {
    const rtc = this.#rtc;
    if (rtc === null) return;
    const b = this.#bytes;
    b.fill(0);
    this.#view.setUint32(0, WAKE_MAGIC, true);
    const parts = text?.split(':') ?? [];
    if (parts.length === 6 && parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
      b[4] = 1;
      for (let i = 0; i < 6; i++) b[5 + i] = parseInt(parts[i]!, 16);
    }
    this.#view.setUint32(12, crc32(b, 0, 12), true);
    rtc.write(0, b);
  }
}

export class Wake {
  /** Called with the trace just before sleep. */
  onSleep?: (trace: WakeTrace) => void;
  readonly trace: WakeTrace = { why: 'window', wifiMs: -1, tcpMs: -1, connackMs: -1, lastAckMs: -1, awakeMs: -1, bssidHint: false, drained: false, flashBytes: 0, flashWrites: 0 };

  readonly #client: Client;
  readonly #p: WakePlatform;
  readonly #o: Required<Omit<WakeOptions, 'ssid' | 'password' | 'wifiTimeoutMs'>> & WakeOptions;
  readonly #record: WakeRecord;
  readonly #started: number;
  #window: unknown;
  #wifiTimer: unknown;
  #wifi: WiFiInstance | null = null;
  #finished = false;

  constructor(client: Client, options: WakeOptions, platform: WakePlatform) {
    this.#client = client;
    this.#p = platform;
    this.#o = { windowMs: 10_000, sleepMs: 300_000, drainMs: 500, ...options };
    for (const k of ['windowMs', 'sleepMs', 'drainMs'] as const)
      if (!(this.#o[k] >= 0 && this.#o[k] <= 0x7fffffff)) throw new RangeError(`${k} must be a number of ms, not ${this.#o[k]}`);
    this.#record = new WakeRecord(platform.rtc);
    // The TLS session kept through deep sleep: read from its RTC range before the first TLS socket.
    const cache = client.tlsCache;
    if (cache !== null && platform.rtc) cache.configure({ rtc: rtcRegion(platform.rtc, RtcLayout.tls), now: () => Math.floor(platform.clock() / 1000) });
    this.#started = platform.clock();
    const app = client.onSleepReady;
    client.onSleepReady = function (this: Client) {
      app?.call(this);
      wake.#finish('sleep-ready');
    };
    const wake = this;
    this.#window = platform.Timer.set(() => this.#finish('window'), this.#o.windowMs);
    if (options.ssid && platform.WiFi) this.#join(platform.WiFi, options.ssid, options.password);
    else client.start();
  }

  #join(WiFi: WiFiApi, ssid: string, password: string | undefined): void {
    const bssid = this.#record.bssid;
    this.trace.bssidHint = bssid !== undefined;
    const dictionary: { ssid: string; password?: string; bssid?: ArrayBuffer } = { ssid };
    if (password) dictionary.password = password;
    if (bssid) dictionary.bssid = bssid;
    const timeout = Math.min(this.#o.wifiTimeoutMs ?? this.#o.windowMs, this.#o.windowMs);
    this.#wifiTimer = this.#p.Timer.set(() => {
      this.#wifiTimer = undefined;
      // A hint that did not lead to a join is forgotten: the next wake joins by SSID alone.
      if (this.trace.bssidHint) this.#record.bssid = undefined;
      this.#finish('wifi');
    }, timeout);
    this.#wifi = new WiFi(dictionary, (message) => {
      if (this.#finished || message !== 'gotIP' || this.trace.wifiMs >= 0) return;
      this.trace.wifiMs = this.#p.clock() - this.#started;
      this.#p.Timer.clear(this.#wifiTimer);
      this.#wifiTimer = undefined;
      const joined = this.#p.bssid?.();
      if (joined !== undefined) this.#record.bssid = joined;
      this.#client.start();
    });
  }

  #finish(why: WakeTrace['why']): void {
    if (this.#finished) return;
    this.#finished = true;
    const p = this.#p;
    p.Timer.clear(this.#window);
    if (this.#wifiTimer !== undefined) p.Timer.clear(this.#wifiTimer);
    const t = this.trace;
    t.why = why;
    const c = this.#client;
    const at = (ms: number): number => (ms < 0 ? -1 : ms - this.#started);
    c.close(this.#o.drainMs, (drained) => {
      t.tcpMs = at(c.timings.tcpAt);
      t.connackMs = at(c.timings.connackAt);
      t.lastAckMs = at(c.timings.lastAckAt);
      t.drained = drained;
      const flash = c.flash;
      t.flashBytes = flash.bytes;
      t.flashWrites = flash.writes;
      if (this.#wifi !== null) {
        this.#wifi.close();
        this.#wifi = null;
        p.WiFi?.disconnect();
      }
      t.awakeMs = p.clock() - this.#started;
      const ms = (n: number): string => (n < 0 ? '-' : `${n}`);
      p.trace(
        `dormouse: ${why}; wifi ${ms(t.wifiMs)}${t.bssidHint ? ' (bssid)' : ''}, tcp ${ms(t.tcpMs)}, connack ${ms(t.connackMs)}, ` +
          `last ack ${ms(t.lastAckMs)}, awake ${t.awakeMs} ms; ${c.pending} pending; DISCONNECT ${drained ? 'drained' : 'not drained'}; ` +
          `flash ${t.flashBytes} B in ${t.flashWrites} NVS writes; sleeping ${this.#o.sleepMs} ms\n`,
      );
      this.onSleep?.(t);
      p.sleep(this.#o.sleepMs);
    });
  }
}
