// The battery sensor of examples/sensor over TLS: the broker's certificate is
// checked against the CA in this app's data (broker-ca.der, see the manifest)
// and against the server name.
import config from 'mc/config';
import Resource from 'Resource';
import Client from 'dormouse';
import 'dormouse/tls';
import { everyWake } from 'dormouse/wake';

const id = String(config.clientId ?? 'dormouse-tls-1');
const topic = String(config.topic ?? `sensors/${id}`);
const sleepMs = Number(config.sleepSeconds ?? 300) * 1000;

export default function main(): void {
  everyWake(
    {
      ssid: config.wifi ? String(config.wifi) : undefined,
      password: config.wifiPassword ? String(config.wifiPassword) : undefined,
      windowMs: Number(config.awakeSeconds ?? 10) * 1000,
      sleepMs,
    },
    (cause) => {
      const client = new Client({
        host: String(config.broker ?? '127.0.0.1'),
        port: Number(config.port ?? 8883),
        id,
        expiry: (sleepMs / 1000) * 4,
        tls: { serverName: String(config.serverName ?? 'localhost'), ca: new Resource('broker-ca.der') as unknown as ArrayBuffer },
        start: false,
      });
      client.onDrop = (token, reason) => trace(`dormouse: reading ${token} dropped: ${reason}\n`);
      const reading = `{"cause":${cause},"t":${Date.now()}}`;
      client.publish(topic, reading, { qos: 1 });
      trace(`dormouse: accepted ${reading}\n`);
      return client;
    },
  );
}
