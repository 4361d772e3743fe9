// A device and its broker on one virtual clock, for the Moddable client and
// wake tests: FakeTimers, an RTC region, NVS that counts bytes, Wi-Fi, and
// TCP sockets whose peer is the broker model (sim/broker-model.ts), 2 ms away.
//
// Every NVS step and every packet handed from one side to the other is a
// numbered step; `cutAt` makes the world lose power just before that step
// (PowerCut is thrown out of whatever was running). `powerCut()` then does
// what losing power does: timers and sockets gone, RTC noise; NVS and the
// broker (another machine) stay.
import { BrokerModel, type BrokerConnection } from '../../../sim/broker-model.js';
import type { TcpSocketOptions } from '../../../hosts/moddable/platform.js';
import type { ClientPlatform, TlsSocketOptions } from '../../../hosts/moddable/client.js';
import type { WakePlatform } from '../../../hosts/moddable/wake.js';
import { FakeFlash, FakeNvs, FakeRtc, FakeTcp, FakeTimers, PowerCut, fakeWiFi, prng, type FakeWiFiBehaviour } from './fakes.js';

export const EPOCH = 1_800_000_000_000;

/** Thrown by the world's sleep(): on a device deep sleep does not return, the wake is a reboot. */
export class Slept extends Error {
  constructor(readonly ms: number) {
    super(`slept ${ms} ms`);
  }
}

export interface Delivery {
  topic: string;
  payload: string;
  qos: number;
}

export class ModelWorld {
  readonly timers = new FakeTimers();
  readonly rtc = new FakeRtc(4096, 1);
  readonly nvs = new FakeNvs();
  /** The "dormouse" flash partition; the client sees it only while `useFlash` is true. */
  flash = new FakeFlash();
  useFlash = false;
  readonly broker = new BrokerModel();
  readonly delivered: Delivery[] = [];
  readonly traces: string[] = [];
  readonly wifiLog = { joins: [] as { bssid?: string; channel?: number }[], disconnects: 0 };
  /** The broker's address: what `broker.local` resolves to, and the one address a TCP connect reaches. */
  brokerAddress = '127.0.0.1';
  /** A connect to any other address: refused at once, or never answered (SYN into the void). */
  otherAddresses: 'refuse' | 'void' = 'refuse';
  /** Names looked up, in order. */
  readonly lookups: string[] = [];
  /** Addresses TCP connects went to, in order. */
  readonly tcpAddresses: string[] = [];
  readonly sockets: FakeTcp[] = [];
  /** TLS sockets made: their options (host, secure). */
  readonly tlsOptions: TlsSocketOptions[] = [];
  wifi: FakeWiFiBehaviour = { joinMs: 300, hintedJoinMs: 120, bssid: '24:0a:c4:12:34:56', channel: 6 };
  /** When false, a TCP connect is never answered (the broker is unreachable). */
  brokerUp = true;
  steps = 0;
  cutAt = -1;
  cause = 0;
  seed = 1;
  readonly #random: () => number;

  constructor(seed = 1) {
    this.seed = seed;
    this.#random = prng(seed);
    this.nvs.beforeStep = () => this.step();
    this.flash.beforeStep = () => this.step();
    this.broker.onMessage = (m) => {
      let s = '';
      for (let i = 0; i < m.payload.length; i++) s += String.fromCharCode(m.payload[i]!);
      this.delivered.push({ topic: m.topic, payload: s, qos: m.qos });
    };
  }

  /** Give the client a flash partition of `size` bytes in blocks of `blockLength` (a power cut can come at any of its steps). */
  withFlash(size = 16 * 1024, blockLength = 4096): this {
    this.flash = new FakeFlash(size, blockLength);
    this.flash.beforeStep = () => this.step();
    this.useFlash = true;
    return this;
  }

  /** The world's seeded random source (reconnect jitter), so a run replays exactly. */
  get random(): () => number {
    return this.#random;
  }

  get now(): number {
    return EPOCH + this.timers.now;
  }

  /** One step of the world; the power goes before step number `cutAt`. */
  step(): void {
    if (this.steps++ === this.cutAt) {
      this.cutAt = -1;
      throw new PowerCut();
    }
  }

  /** Power lost: no timers, sockets gone (the broker sees the connections drop), RTC noise. */
  powerCut(): void {
    this.#dropVolatile();
    this.rtc.powerOn(++this.seed);
    this.cause = 0;
  }

  /** Deep sleep for `ms`: RAM and sockets gone, RTC kept, the clock moves on. */
  sleepFor(ms: number): void {
    this.#dropVolatile();
    this.timers.advance(ms);
    this.cause = 1;
  }

  #dropVolatile(): void {
    for (const t of [...this.timers.live]) this.timers.clear(t);
    for (const s of this.sockets.splice(0)) s.close();
  }

  /** Run timers until `done()` or `ms` pass; PowerCut and Slept come out of here. */
  run(ms: number, done: () => boolean = () => false): void {
    const end = this.timers.now + ms;
    while (!done()) {
      let next = Infinity;
      for (const t of this.timers.live) next = Math.min(next, t.due);
      if (next > end) {
        this.timers.advance(end - this.timers.now);
        return;
      }
      this.timers.advance(Math.max(0, next - this.timers.now));
    }
  }

  readonly TCP = ((world: ModelWorld) =>
    class ModelTcp extends FakeTcp {
      #conn: BrokerConnection | null = null;
      constructor(options: TcpSocketOptions) {
        super(options);
        world.sockets.push(this);
        world.tcpAddresses.push(options.address);
        if (options.address !== world.brokerAddress) {
          // No broker there (the broker moved): refused (RST), or no answer at all.
          if (world.otherAddresses === 'refuse') world.timers.set(() => this.closed || this.fail(), 2);
          return;
        }
        if (!world.brokerUp) return; // SYN into the void: the connect timeout decides
        world.timers.set(() => {
          if (this.closed) return;
          world.step(); // TCP accept
          this.#conn = world.broker.accept({
            send: (b) => {
              const copy = b.slice();
              world.timers.set(() => {
                if (this.closed) return;
                world.step();
                this.deliver(copy);
              }, 2);
            },
            close: () => world.timers.set(() => this.fail(), 2),
          });
          this.connect(5760); // lwIP's default send buffer on ESP32 (4 × MSS)
        }, 2);
      }
      override write(bytes: Uint8Array): number {
        const room = super.write(bytes);
        const copy = bytes.slice();
        world.timers.set(() => {
          if (this.closed) return;
          world.step();
          this.#conn?.receive(copy, world.timers.now);
          this.drain(copy.length);
        }, 2);
        return room;
      }
      override close(): void {
        if (!this.closed) this.#conn?.clientGone(world.timers.now);
        super.close();
      }
    })(this);

  /** `embedded:io/socket/tcp/tls` stand-in: records its options, then behaves as the TCP socket underneath. */
  readonly TLS = ((world: ModelWorld) =>
    class ModelTls {
      constructor(options: TlsSocketOptions) {
        world.tlsOptions.push(options);
        return new options.TCP.io(options);
      }
    })(this);

  readonly WiFi = fakeWiFi(this.timers, this.wifi, this.wifiLog);

  get platform(): ClientPlatform {
    return {
      Timer: this.timers,
      TCP: this.TCP,
      TLS: this.TLS as unknown as ClientPlatform['TLS'],
      preference: this.nvs,
      flash: this.useFlash ? () => this.flash : undefined,
      rtc: this.rtc,
      resolve: (name, done) => this.#resolve(name, done),
      clock: () => this.now,
      random: this.#random,
    };
  }

  /** Net.resolve: `broker.local` is the broker, 40 ms for the answer (a DNS round trip over Wi-Fi). */
  #resolve(name: string, done: (address: string | undefined) => void): void {
    this.lookups.push(name);
    this.timers.set(() => done(name === 'broker.local' ? this.brokerAddress : undefined), 40);
  }

  get wakePlatform(): WakePlatform {
    return {
      Timer: this.timers,
      WiFi: this.WiFi,
      bssid: () => this.wifi.bssid,
      channel: () => this.wifi.channel,
      resolve: (name, done) => this.#resolve(name, done),
      random: this.#random,
      rtc: this.rtc,
      clock: () => this.now,
      sleep: (ms) => {
        throw new Slept(ms);
      },
      trace: (line) => void this.traces.push(line.trim()),
    };
  }
}
