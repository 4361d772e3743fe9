// A battery sensor on Dormouse: wake, read, publish at QoS 1, sleep as soon as
// the broker has the reading (sleep-ready) or the wake's window is over. The
// reading is kept (RTC memory and the flash journal) whether or not Wi-Fi or
// the broker answered, and goes with a later wake.
import config from 'mc/config';
import Client from 'dormouse';
import { everyWake } from 'dormouse/wake';

const id = String(config.clientId ?? 'dormouse-1');
const topic = String(config.topic ?? `sensors/${id}`);
const sleepMs = Number(config.sleepSeconds ?? 300) * 1000;
const qos = Number(config.qos) === 2 ? 2 : 1;

/** Stand-in for a sensor: the wake cause and the time of the reading. */
function read(cause: number): string {
  return `{"cause":${cause},"t":${Date.now()}}`;
}

export default function main(): void {
  everyWake(
    {
      ssid: config.wifi ? String(config.wifi) : undefined, // not `ssid`: Moddable's own setup would join without a timeout
      password: config.wifiPassword ? String(config.wifiPassword) : undefined,
      windowMs: Number(config.awakeSeconds ?? 10) * 1000,
      sleepMs,
    },
    (cause) => {
      const client = new Client({
        host: String(config.broker ?? '127.0.0.1'),
        port: Number(config.port ?? 1883),
        id,
        keepalive: 60,
        expiry: (sleepMs / 1000) * 4, // the broker keeps the session through a few missed wakes
        start: false, // the wake helper starts it once Wi-Fi is up
      });
      client.onDrop = (token, reason) => trace(`dormouse: reading ${token} dropped: ${reason}\n`);
      const reading = read(cause);
      client.publish(topic, reading, { qos });
      trace(`dormouse: accepted ${reading}\n`);
      return client;
    },
  );
}
