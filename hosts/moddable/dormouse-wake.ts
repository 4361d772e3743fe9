// The module `dormouse/wake`: the wake helper of wake.ts bound to Moddable's
// `wifi`, `net`, `timer` and dormouse/deepsleep.
//
//   everyWake({ ssid, password, windowMs, sleepMs }, (cause) => {
//     const client = new Client({ host, id, start: false });
//     client.publish(topic, reading(), { qos: 1 });
//     return client;
//   });
//
// On a device each wake is a reboot, so the body runs once per boot. In the
// lin simulator sleep() returns: the next wake runs after the chosen sleep in the same VM.

import Timer from 'timer';
import WiFi from 'wifi';
import Net from 'net';
import { sleep, wakeCause, rtcLength, rtcRead, rtcWrite } from 'dormouse/deepsleep';
import { Wake, type WakeOptions, type WakePlatform, type WakeTrace } from './wake.js';
import type { Client } from './client.js';

// Net.get("CHANNEL") exists on ESP32 (modules/network/net/esp/modNet.c) but not in Moddable's typings.
const netGet = Net.get as unknown as (what: string) => unknown;

export const platform: WakePlatform = {
  Timer: Timer as unknown as WakePlatform['Timer'],
  WiFi: WiFi as unknown as WakePlatform['WiFi'],
  bssid: () => {
    const b = netGet('BSSID');
    return typeof b === 'string' ? b : undefined;
  },
  channel: () => {
    const c = netGet('CHANNEL');
    return typeof c === 'number' ? c : undefined;
  },
  resolve(name, done) {
    Net.resolve(name, (_name, address) => done(address));
  },
  rtc: { byteLength: rtcLength(), read: rtcRead, write: rtcWrite },
  clock: () => Date.now(),
  random: Math.random,
  sleep,
  trace: (line) => trace(line),
};

/** Run `body` at every wake: it returns the Client holding this wake's messages; the helper does the rest. */
export function everyWake(options: WakeOptions, body: (cause: number) => Client, onSleep?: (trace: WakeTrace) => void): void {
  const wake = new Wake(body(wakeCause()), options, platform);
  wake.onSleep = (t) => {
    onSleep?.(t);
    // Reached only where sleep() returns (lin): the next wake in this VM.
    Timer.set(() => everyWake(options, body, onSleep), t.sleepMs);
  };
}

export { Wake } from './wake.js';
export type { WakeOptions, WakeTrace } from './wake.js';
