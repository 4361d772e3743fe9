// A battery device's wake, around a Client: join Wi-Fi, connect, let the
// app's messages go, and sleep as soon as the session is sleep-ready or the
// wake's one deadline passes, whatever was reached. A reading published
// before the join is in the session (RTC, and flash: the partition's log, or
// the NVS journal without a partition) whether or not
// Wi-Fi or the broker answer: it goes with the next wake that reaches the broker.
//
// Two records in RTC memory make the next wake cheaper or calmer:
// - fast-connect hints (modules/wake/fast-connect.ts, RtcLayout.hints): the
//   access point's BSSID and channel, passed to the join (no scan), and the
//   broker's looked-up address, used instead of a DNS lookup while fresh. A
//   hint that fails is dropped and the wake falls back in the same wake: a
//   join by SSID alone, or a lookup and a connect to its answer. What a full
//   join or a lookup finds is kept for the next wake.
// - the wake budget (modules/session/wake-budget.ts, RtcLayout.wake): the
//   failed wakes in a row. A wake that did not get its work to the broker
//   (Wi-Fi timeout, broker unreachable, the window over before the acks)
//   sleeps longer than the last (jittered, capped); a good wake resets it; a
//   session takeover (two devices with one id) sleeps from a window of its own.
//
// Before the radio stops the client's DISCONNECT is given a bounded time to
// leave (the socket's writes acknowledged), so the broker sees a clean
// disconnect and fires no will.
//
// Each wake prints one trace line: Wi-Fi join, DNS, TCP connect, TLS
// handshake, CONNACK and last ack (ms from the wake's start, - when not
// reached), total awake ms, the flash bytes, writes and erased blocks the
// session store made (NVS writes without a partition),
// and the sleep chosen with its reason.

import { isDotted, type Client } from './client.js';
import type { RtcMemory, TimerApi, WiFiApi, WiFiInstance } from './platform.js';
import { RtcLayout, rtcRegion } from './rtc-layout.js';
import { FAST_CONNECT_RECORD_BYTES, FastConnectHints } from '../../modules/wake/fast-connect.js';
import { WAKE_BUDGET_RECORD_BYTES, WakeBudget, WakeOutcome } from '../../modules/session/wake-budget.js';

export interface WakeOptions {
  /** Wi-Fi network; without it the wake assumes the network is up (lin, or joined by someone else). */
  ssid?: string;
  password?: string;
  /** The whole wake's budget: Wi-Fi, DNS, TLS, MQTT. Default 10 s. */
  windowMs?: number;
  /** Wi-Fi must give an address within this (and within the window). Default: the window. */
  wifiTimeoutMs?: number;
  /** Deep sleep after a good wake. Default 300 s. */
  sleepMs?: number;
  /** Longest sleep after failed wakes in a row (the backoff's cap). Default 6 h. */
  maxSleepMs?: number;
  /** First sleep after a session takeover, doubling with each one in a row. Default 1 h. */
  takeoverSleepMs?: number;
  /** Longest wait for DISCONNECT to leave before the radio stops. Default 500 ms. */
  drainMs?: number;
  /** A join with the kept BSSID must give an address within this, or the wake joins by SSID alone. Default 3000 ms. */
  bssidJoinMs?: number;
  /** TCP to the kept broker address must connect within this, or the wake looks the name up. Default 2000 ms. */
  addressConnectMs?: number;
  /** How long a looked-up broker address is used without a lookup, seconds (Net.resolve tells no TTL). Default 3600. */
  addressTtlS?: number;
}

export interface WakePlatform {
  Timer: TimerApi<any> & { set(callback: () => void, ms: number): unknown };
  /** The `wifi` module (absent: no Wi-Fi to join). */
  WiFi?: WiFiApi;
  /** BSSID of the access point joined, "aa:bb:cc:dd:ee:ff" (Net.get("BSSID")), if the target tells. */
  bssid?: () => string | undefined;
  /** Channel of the access point joined (Net.get("CHANNEL")), if the target tells. */
  channel?: () => number | undefined;
  /** Host name to dotted IPv4 (Net.resolve). Without it the client resolves by itself and no address is kept. */
  resolve?: (name: string, done: (address: string | undefined) => void) => void;
  rtc?: RtcMemory;
  clock(): number;
  /** The sleep's jitter; default Math.random (the hardware RNG on ESP32). */
  random?: () => number;
  /** dormouse/deepsleep's sleep: does not return on a device; returns in the lin simulator. */
  sleep(ms: number): void;
  trace(line: string): void;
}

/** How a wake ended. */
export type WakeEnd = 'sleep-ready' | 'window' | 'wifi' | 'takeover';

/** What one wake did, in ms from its start (-1: not reached). */
export interface WakeTrace {
  why: WakeEnd;
  wifiMs: number;
  /** The join used the kept BSSID (and channel). */
  bssidHint: boolean;
  /** That join failed; the wake joined again by SSID alone. */
  bssidFellBack: boolean;
  /** The broker's name looked up (-1: no lookup: a dotted host, or the kept address). */
  dnsMs: number;
  /** The lookup gave no IPv4 address (the wake then has nothing to connect to). */
  dnsFailed: boolean;
  /** The kept broker address was used instead of a lookup. */
  addressHint: boolean;
  /** It did not connect; the wake looked the name up and connected to the answer. */
  addressFellBack: boolean;
  tcpMs: number;
  /** TLS handshake done (-1: no TLS, or not reached). */
  tlsMs: number;
  connackMs: number;
  lastAckMs: number;
  awakeMs: number;
  drained: boolean;
  flashBytes: number;
  flashWrites: number;
  /** Blocks the flash log erased (0 with the NVS journal). */
  flashErased: number;
  /** The deep sleep chosen. */
  sleepMs: number;
  /** Failed wakes in a row, this one included (0: a good wake). */
  failures: number;
  /** Takeover wakes in a row, this one included. */
  takeovers: number;
}

export class Wake {
  /** Called with the trace just before sleep. */
  onSleep?: (trace: WakeTrace) => void;
  readonly trace: WakeTrace = {
    why: 'window', wifiMs: -1, bssidHint: false, bssidFellBack: false, dnsMs: -1, dnsFailed: false, addressHint: false, addressFellBack: false,
    tcpMs: -1, tlsMs: -1, connackMs: -1, lastAckMs: -1, awakeMs: -1, drained: false, flashBytes: 0, flashWrites: 0, flashErased: 0,
    sleepMs: 0, failures: 0, takeovers: 0,
  };
  readonly budget: WakeBudget;
  readonly hints: FastConnectHints;

  readonly #client: Client;
  readonly #p: WakePlatform;
  readonly #o: Required<Omit<WakeOptions, 'ssid' | 'password' | 'wifiTimeoutMs'>> & WakeOptions;
  readonly #started: number;
  readonly #hintsRtc: RtcMemory | null;
  readonly #budgetRtc: RtcMemory | null;
  readonly #budgetBytes = new Uint8Array(WAKE_BUDGET_RECORD_BYTES);
  #window: unknown;
  #wifiTimer: unknown;
  #hintTimer: unknown;
  #addressTimer: unknown;
  #wifi: WiFiInstance | null = null;
  #joins = 0; // generation of the Wi-Fi join: messages of an abandoned one are ignored
  #finished = false;

  constructor(client: Client, options: WakeOptions, platform: WakePlatform) {
    this.#client = client;
    this.#p = platform;
    this.#o = { windowMs: 10_000, sleepMs: 300_000, maxSleepMs: 6 * 3600_000, takeoverSleepMs: 3600_000, drainMs: 500, bssidJoinMs: 3000, addressConnectMs: 2000, addressTtlS: 3600, ...options };
    for (const k of ['windowMs', 'sleepMs', 'maxSleepMs', 'takeoverSleepMs', 'drainMs', 'bssidJoinMs', 'addressConnectMs'] as const)
      if (!(this.#o[k] >= 0 && this.#o[k] <= 0x7fffffff)) throw new RangeError(`${k} must be a number of ms, not ${this.#o[k]}`);
    if (!(this.#o.addressTtlS >= 0)) throw new RangeError(`addressTtlS must be a number of seconds, not ${this.#o.addressTtlS}`);
    const o = this.#o;
    const rtc = platform.rtc;
    this.budget = new WakeBudget({ sleepMs: o.sleepMs, windowMs: Math.max(1, o.windowMs), maxSleepMs: o.maxSleepMs, takeoverSleepMs: o.takeoverSleepMs }, platform.random ?? Math.random);
    this.#budgetRtc = rtc ? rtcRegion(rtc, RtcLayout.wake) : null;
    this.#budgetRtc?.read(0, this.#budgetBytes);
    this.budget.restore(this.#budgetBytes); // noise after power-on: no failures counted
    // Hints are read once into RAM and written back whenever they change: a few bytes per change.
    this.#hintsRtc = rtc ? rtcRegion(rtc, RtcLayout.hints) : null;
    const hintBytes = new Uint8Array(FAST_CONNECT_RECORD_BYTES);
    this.#hintsRtc?.read(0, hintBytes);
    this.hints = new FastConnectHints(hintBytes); // noise after power-on: no hints
    // The TLS session kept through deep sleep: read from its RTC range before the first TLS socket.
    const cache = client.tlsCache;
    if (cache !== null && rtc) cache.configure({ rtc: rtcRegion(rtc, RtcLayout.tls), now: () => Math.floor(platform.clock() / 1000) });
    this.#started = platform.clock();
    this.budget.begin(this.#started);
    const wake = this;
    const { onSleepReady, onClose, onTakenOver } = client;
    client.onSleepReady = function (this: Client) {
      onSleepReady?.call(this);
      wake.#finish('sleep-ready');
    };
    client.onClose = function (this: Client) {
      onClose?.call(this);
      // A connect to the kept address that failed before TCP was up: the address hint failed.
      if (wake.trace.addressHint && this.timings.tcpAt < 0) wake.#addressFailed();
    };
    client.onTakenOver = function (this: Client, retryMs: number) {
      onTakenOver?.call(this, retryMs);
      wake.#finish('takeover'); // the client backs off for minutes: nothing left to do awake
    };
    this.#window = platform.Timer.set(() => this.#finish('window'), o.windowMs);
    if (options.ssid && platform.WiFi) {
      this.#wifiTimer = platform.Timer.set(() => {
        this.#wifiTimer = undefined;
        // Still on the kept BSSID when time ran out: it did not lead to a join, so it is not offered again.
        if (this.trace.bssidHint && !this.trace.bssidFellBack) {
          this.hints.wifiHintFailed();
          this.#saveHints();
        }
        this.#finish('wifi');
      }, Math.min(o.wifiTimeoutMs ?? o.windowMs, o.windowMs));
      this.#join(platform.WiFi, options.ssid, options.password, true);
    } else this.#connect();
  }

  #nowS(): number {
    return Math.floor(this.#p.clock() / 1000);
  }

  #saveHints(): void {
    this.#hintsRtc?.write(0, this.hints.region);
  }

  #join(WiFi: WiFiApi, ssid: string, password: string | undefined, useHint: boolean): void {
    const hint = useHint ? this.hints.wifi(this.#nowS()) : null;
    const dictionary: { ssid: string; password?: string; bssid?: ArrayBuffer; channel?: number } = { ssid };
    if (password) dictionary.password = password;
    if (hint !== null) {
      this.trace.bssidHint = true;
      dictionary.bssid = hint.bssid.buffer as ArrayBuffer;
      if (hint.channel >= 1 && hint.channel <= 13) dictionary.channel = hint.channel; // ESP32's wifi refuses others
      // Leave the full join at least half of the Wi-Fi time.
      const wifiMs = Math.min(this.#o.wifiTimeoutMs ?? this.#o.windowMs, this.#o.windowMs);
      this.#hintTimer = this.#p.Timer.set(() => {
        this.#hintTimer = undefined;
        this.#bssidFailed(WiFi, ssid, password);
      }, Math.min(this.#o.bssidJoinMs, Math.floor(wifiMs / 2)));
    }
    const join = ++this.#joins;
    this.#wifi = new WiFi(dictionary, (message) => {
      if (this.#finished || join !== this.#joins || this.trace.wifiMs >= 0) return;
      // The kept access point is not there (ESP32 says "disconnect" when its join fails).
      if (message === 'disconnect' && hint !== null) return this.#bssidFailed(WiFi, ssid, password);
      if (message !== 'gotIP') return;
      const p = this.#p;
      this.trace.wifiMs = p.clock() - this.#started;
      p.Timer.clear(this.#wifiTimer);
      p.Timer.clear(this.#hintTimer);
      this.#wifiTimer = this.#hintTimer = undefined;
      const bssid = parseBssid(p.bssid?.());
      if (bssid !== null) {
        this.hints.joined(bssid, p.channel?.() ?? 0, this.#nowS());
        this.#saveHints();
      }
      this.#connect();
    });
  }

  /** The join with the kept BSSID did not come up: forget it and join by SSID alone, in this wake. */
  #bssidFailed(WiFi: WiFiApi, ssid: string, password: string | undefined): void {
    if (this.#finished || this.trace.bssidFellBack || this.trace.wifiMs >= 0) return;
    this.#p.Timer.clear(this.#hintTimer);
    this.#hintTimer = undefined;
    this.trace.bssidFellBack = true;
    this.hints.wifiHintFailed();
    this.#saveHints();
    this.#joins++;
    this.#wifi?.close();
    WiFi.disconnect();
    this.#join(WiFi, ssid, password, false);
  }

  /** The network is up: connect, to the kept broker address while it is fresh, else to a looked-up one. */
  #connect(): void {
    const c = this.#client;
    const host = c.host;
    if (this.#p.resolve === undefined || isDotted(host)) return c.start();
    const address = this.hints.address(host, this.#nowS());
    if (address === null) return this.#lookup((a) => c.start(a));
    this.trace.addressHint = true;
    c.start(address);
    // A kept address that no longer answers may not refuse either (SYN into the void): bound it.
    this.#addressTimer = this.#p.Timer.set(() => {
      this.#addressTimer = undefined;
      if (c.timings.tcpAt < 0) this.#addressFailed();
    }, this.#o.addressConnectMs);
  }

  #addressFailed(): void {
    if (this.#finished || this.trace.addressFellBack) return;
    this.trace.addressFellBack = true;
    this.hints.addressFailed();
    this.#saveHints();
    this.#lookup((a) => this.#client.retarget(a));
  }

  /** Look the broker's name up, keep the answer for the next wakes, and go on with it. No answer: the window ends the wake. */
  #lookup(then: (address: string) => void): void {
    const host = this.#client.host;
    const answer = (address: string | undefined): void => {
      if (this.#finished) return;
      this.trace.dnsMs = this.#p.clock() - this.#started;
      if (address === undefined || !isDotted(address)) {
        this.trace.dnsFailed = true;
        return;
      }
      if (this.hints.resolved(host, address, this.#nowS(), this.#o.addressTtlS)) this.#saveHints();
      then(address);
    };
    try {
      this.#p.resolve!(host, answer);
    } catch {
      // lwIP's lookup queue is full: as good as no answer
      this.trace.dnsFailed = true;
    }
  }

  #finish(why: WakeEnd): void {
    if (this.#finished) return;
    this.#finished = true;
    const p = this.#p;
    p.Timer.clear(this.#window);
    p.Timer.clear(this.#wifiTimer);
    p.Timer.clear(this.#hintTimer);
    p.Timer.clear(this.#addressTimer);
    const t = this.trace;
    t.why = why;
    const c = this.#client;
    const at = (ms: number): number => (ms < 0 ? -1 : ms - this.#started);
    c.close(this.#o.drainMs, (drained) => {
      t.tcpMs = at(c.timings.tcpAt);
      t.tlsMs = at(c.timings.tlsAt);
      t.connackMs = at(c.timings.connackAt);
      t.lastAckMs = at(c.timings.lastAckAt);
      t.drained = drained;
      const flash = c.flash;
      t.flashBytes = flash.bytes;
      t.flashWrites = flash.writes;
      t.flashErased = flash.erased;
      if (this.#wifi !== null) {
        this.#wifi.close();
        this.#wifi = null;
        p.WiFi?.disconnect();
      }
      const budget = this.budget;
      t.sleepMs = budget.finish(why === 'sleep-ready' ? WakeOutcome.Delivered : why === 'takeover' ? WakeOutcome.TakenOver : WakeOutcome.Unreachable);
      t.failures = budget.failures;
      t.takeovers = budget.takeovers;
      budget.save(this.#budgetBytes);
      this.#budgetRtc?.write(0, this.#budgetBytes);
      t.awakeMs = p.clock() - this.#started;
      const ms = (n: number): string => (n < 0 ? '-' : `${n}`);
      const wifi = t.bssidFellBack ? ' (bssid failed, full join)' : t.bssidHint ? ' (bssid)' : '';
      const dns = (t.addressFellBack ? `${ms(t.dnsMs)} (address hint failed)` : t.addressHint ? 'hint' : ms(t.dnsMs)) + (t.dnsFailed ? ' (no address)' : '');
      const reason = why === 'takeover' ? `taken over ${t.takeovers}x in a row: another device has this id` : t.failures > 0 ? `${t.failures} failed wakes in a row` : 'good wake';
      p.trace(
        `dormouse: ${why}; wifi ${ms(t.wifiMs)}${wifi}, dns ${dns}, tcp ${ms(t.tcpMs)}, tls ${ms(t.tlsMs)}, connack ${ms(t.connackMs)}, ` +
          `last ack ${ms(t.lastAckMs)}, awake ${t.awakeMs} ms; ${c.pending} pending; DISCONNECT ${drained ? 'drained' : 'not drained'}; ` +
          `flash ${t.flashBytes} B in ${t.flashWrites} ${flash.medium === 'NVS' ? 'NVS writes' : `flash writes, ${t.flashErased} blocks erased`}; sleeping ${t.sleepMs} ms (${reason})\n`,
      );
      this.onSleep?.(t);
      p.sleep(t.sleepMs);
    });
  }
}

/** "aa:bb:cc:dd:ee:ff" as 6 bytes, or null. */
function parseBssid(text: string | undefined): Uint8Array | null {
  const parts = text?.split(':') ?? [];
  if (parts.length !== 6) return null;
  const b = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    const p = parts[i]!;
    if (!/^[0-9a-fA-F]{2}$/.test(p)) return null;
    b[i] = parseInt(p, 16);
  }
  return b;
}
