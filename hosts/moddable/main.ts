// The example app: one wake of a battery sensor.
//
//   wake → wake cause → restore the session (RTC, else NVS) → connect with a
//   persistent session → publish one reading at QoS 1 → wait for its ack, or
//   give up after a bounded window → persist (NVS on cadence) → deep sleep.
//
// On ESP32, Moddable's setup/network module joins Wi-Fi (config ssid and
// password) before main runs, and main runs again after every deep sleep
// because the wake is a reboot. In the lin simulator sleep() returns and the
// next wake runs in the same VM (see native/lin/deepsleep.ts).
//
// Configuration: the manifest's "config" (broker, port, clientId, topic,
// sleepSeconds, awakeSeconds, nvsEvery), each overridable on the mcconfig
// command line (`mcconfig -d -m -p esp32 broker=10.0.0.2 sleepSeconds=60`).

import config from 'mc/config';
import Timer from 'timer';
import Preference from 'preference';
import TCP from 'embedded:io/socket/tcp';
import Net from 'net';
import { sleep, wakeCause, rtcLength, rtcRead, rtcWrite } from 'dormouse/deepsleep';

// The portable core, the same modules the Node host and the tests run.
import { DormouseClient } from '../../modules/session/client.js';
import { ClientEvent } from '../../modules/session/ports.js';
import { snapshotCapacity, SnapshotMismatchError } from '../../modules/session/snapshot.js';
import type { Capacities } from '../../modules/session/session-state.js';
import type { ClientHooks } from '../../modules/session/ports.js';
import type { PublishPacket } from '../../modules/mqtt/types.js';

import type { RtcMemory } from './platform.js';
import { RtcSnapshotStore, NvsSnapshotStore, PreferredStore } from './stores.js';
import { RtcLayout, rtcRegion } from './rtc-layout.js';
import { TcpTransport } from './transport.js';
import { DeadlineTimer } from './timer-host.js';

const broker = text(config.broker, '127.0.0.1');
const port = whole(config.port, 1883);
const clientId = text(config.clientId, 'dormouse-1');
const topic = text(config.topic, `sensors/${clientId}`);
const sleepMs = whole(config.sleepSeconds, 300) * 1000;
const awakeMs = whole(config.awakeSeconds, 10) * 1000;
const nvsEvery = whole(config.nvsEvery, 1);

// On ESP32, Date.now() is kept by the RTC timer through deep sleep (reset
// only by power-on), so deadlines and expiry stored in a snapshot stay
// meaningful from one wake to the next. SNTP is off in the manifest so
// nothing steps it.
const clock = (): number => Date.now();

const rtc: RtcMemory = { byteLength: rtcLength(), read: rtcRead, write: rtcWrite };
// The session snapshot owns its range of the RTC region (rtc-layout.ts); other records share the rest.
const sessionRtc = rtcRegion(rtc, RtcLayout.session);

// Sized for a sensor that publishes a few readings per wake and subscribes to
// nothing much, so the largest snapshot fits one RTC slot (about 2 KiB of the
// 4 KiB region; checked below) and one NVS value.
const capacities: Capacities = {
  inflight: 4,
  outbox: 8,
  storeBytes: 768,
  incomingQos2: 2,
  subscriptions: 1,
  subscriptionBytes: 32,
  releasedQos2: 0, // it subscribes to nothing: no replay guard needed
};

export default function main(): void {
  wake();
}

function wake(): void {
  const started = clock();
  const cause = wakeCause();
  trace(`dormouse: wake cause ${cause}\n`);

  const rtcStore = new RtcSnapshotStore(sessionRtc);
  const largest = snapshotCapacity(capacities, clientId.length);
  if (largest > rtcStore.capacity)
    throw new RangeError(`snapshots of up to ${largest} bytes do not fit an RTC slot of ${rtcStore.capacity}: lower the capacities`);
  const store = new PreferredStore(rtcStore, new NvsSnapshotStore(Preference), { nvsEvery });
  let transport: TcpTransport | undefined;
  let deadlines: { sync(): void; dispose(): void } | undefined;
  let token = 0;
  let finished = false;

  const hooks: ClientHooks = {
    send(bytes) {
      transport?.send(bytes);
    },
    open() {
      transport?.open();
    },
    close() {
      transport?.close();
    },
    message(_p: PublishPacket) {
      // A sensor that only publishes subscribes to nothing; a persistent session
      // could still hold deliveries from an earlier subscription: they are dropped here.
    },
    event(kind, a, b) {
      switch (kind) {
        case ClientEvent.Connected:
          trace(`dormouse: connected, session present ${a}\n`);
          break;
        case ClientEvent.Acked:
          if (a === token) trace(`dormouse: reading acked, reason ${b}\n`);
          break;
        case ClientEvent.SleepReady:
          // Nothing in flight (this reading and any left from earlier wakes) and the
          // snapshot written. The core reports this only while connected, so end() must
          // come after it, not from the Acked event: end() leaves the Connected state
          // and reports Disconnected, never SleepReady.
          client.end(clock()); // DISCONNECT; the session stays on the broker
          finish('sleep-ready');
          break;
        case ClientEvent.Refused:
        case ClientEvent.ProtocolError:
          trace(`dormouse: event ${kind}, code ${a}\n`);
          break;
      }
    },
  };

  const create = (): DormouseClient =>
    new DormouseClient(
      {
        clientId,
        protocolVersion: 5,
        clean: false,
        keepalive: 60,
        // The broker must keep the session through the sleep and a few missed wakes.
        sessionExpiryInterval: Math.ceil((sleepMs * 4) / 1000),
        capacities,
      },
      hooks,
      store,
      Math.random,
    );
  let client = create();
  try {
    client.restore(clock());
  } catch (e) {
    if (!(e instanceof SnapshotMismatchError)) throw e;
    // Left by firmware with another client id or capacities: it would win every restore.
    trace('dormouse: stored session is for another configuration; starting clean\n');
    store.clear();
    client = create();
  }

  // Queue the reading first: it is in the outbox (and so in the next
  // snapshot) whether or not the broker is reachable this time.
  token = client.publish(topic, reading(cause, started), { qos: 1 }, clock());

  // The session's deadlines (connect timeout, keepalive, retries) run on one timer.
  deadlines = new DeadlineTimer(Timer, client, clock);

  const awakeWindow = Timer.set(() => {
    trace('dormouse: awake window over\n');
    // end() writes the snapshot (the reading stays queued for the next wake), sends
    // DISCONNECT if connected and closes the socket, all before it returns.
    client.end(clock());
    finish('window');
  }, awakeMs);

  resolve(broker, (address) => {
    if (finished) return;
    if (address === undefined) {
      trace(`dormouse: cannot resolve ${broker}\n`);
      finish('dns');
      return;
    }
    transport = new TcpTransport(TCP, {
      transportOpened(now) {
        client.transportOpened(now);
        deadlines?.sync();
      },
      receive(chunk, now) {
        client.receive(chunk, now);
        deadlines?.sync();
      },
      transportClosed(now) {
        client.transportClosed(now);
        deadlines?.sync();
      },
    }, clock, { address, port });
    client.start(clock());
    deadlines?.sync();
  });

  function finish(why: string): void {
    if (finished) return;
    finished = true;
    Timer.clear(awakeWindow);
    deadlines?.dispose();
    transport?.close();
    const written = store.checkpoint();
    trace(`dormouse: ${why} after ${clock() - started} ms, ${written} NVS writes, sleeping ${sleepMs} ms\n`);
    sleep(sleepMs);
    // Reached only in the lin simulator, where sleep() returns.
    Timer.set(() => wake(), sleepMs);
  }
}

/** Resolve once per wake; a dotted IPv4 skips DNS. */
function resolve(name: string, done: (address: string | undefined) => void): void {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) {
    done(name);
    return;
  }
  Net.resolve(name, (_name, address) => done(address));
}

/** Stand-in for a sensor: `{"cause":C,"ms":M}`, where M is how long this wake has taken so far. ASCII only. */
function reading(cause: number, started: number): Uint8Array {
  const json = `{"cause":${cause},"ms":${clock() - started}}`;
  const bytes = new Uint8Array(json.length);
  for (let i = 0; i < json.length; i++) bytes[i] = json.charCodeAt(i);
  return bytes;
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.length > 0 ? value : fallback;
}

/** Config numbers arrive as numbers from the manifest and as strings from the command line. */
function whole(value: unknown, fallback: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}
