// A first look at Dormouse, with no set-up: an embedded broker (aedes on
// 127.0.0.1), a sleepy device with its session in a file, and a controller.
// It publishes at QoS 0, 1 and 2, sleeps, is sent a command while asleep,
// wakes and resumes its session, and prints what went over the wire.
//   npm run demo
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAedes } from './brokers.js';
import { FaultProxy, packetTypeName } from './proxy.js';
import { connect, type NodeClient } from '../hosts/node/client.js';

const once = (em: NodeClient, ev: string) => new Promise<unknown[]>((r) => em.once(ev, (...a: unknown[]) => r(a)));

async function main(): Promise<void> {
  const broker = await startAedes();
  const proxy = await FaultProxy.start({ targetPort: broker.port });
  const dir = mkdtempSync(join(tmpdir(), 'dormouse-demo-'));
  const wire: string[] = [];
  proxy.onPacket = (dirn, type, bytes) => wire.push(`${dirn === 'c2s' ? 'device → broker' : 'broker → device'}  ${packetTypeName(type).padEnd(11)} ${bytes} B`);
  const flush = (title: string) => {
    console.log(`\n${title}`);
    for (const l of wire.splice(0)) console.log('  ' + l);
  };
  try {
    console.log(`embedded broker (aedes) on ${broker.url}; the device talks through a counting proxy on ${proxy.url}`);
    const controller = connect(broker.url, { clientId: 'demo-controller' });
    const readings: string[] = [];
    controller.on('message', (topic: string, payload: Buffer, packet: { qos: number }) => readings.push(`${topic} "${payload}" (QoS ${packet.qos})`));
    await controller.subscribe('sensors/#', { qos: 2 });

    const sessionFile = join(dir, 'device');
    const device = connect(proxy.url, { clientId: 'demo-device', sessionFile });
    const [connack] = (await once(device, 'connect')) as [{ sessionPresent: boolean }];
    await device.subscribe('cmd/demo-device', { qos: 1 });
    flush(`1. first wake: connected (session present: ${connack.sessionPresent}) and subscribed`);

    for (const qos of [0, 1, 2] as const) {
      const { acknowledged } = await device.publish('sensors/t1', `21.${qos}`, { qos });
      await acknowledged;
      await new Promise((r) => setTimeout(r, 20)); // let the proxy see a QoS 0 packet, which has no ack to wait for
      flush(`2.${qos} publish at QoS ${qos}`);
    }
    await device.end();
    flush('3. DISCONNECT, deep sleep (the process object is dropped; the session stays in its file)');

    await controller.publishAsync('cmd/demo-device', 'calibrate', { qos: 1 });
    console.log('\n4. while the device sleeps, the controller sends it "calibrate" at QoS 1; the broker queues it');

    const woke = connect(proxy.url, { clientId: 'demo-device', sessionFile });
    const got = new Promise<string>((r) => woke.once('message', (t: string, p: Buffer) => r(`${t} "${p}"`)));
    const [again] = (await once(woke, 'connect')) as [{ sessionPresent: boolean }];
    const cmd = await got;
    const { acknowledged } = await woke.publish('sensors/t1', '21.9', { qos: 1 });
    await acknowledged;
    await woke.end();
    flush(`5. wake: session present ${again.sessionPresent}, no SUBSCRIBE needed; got ${cmd}; one QoS 1 reading; sleep again`);

    await new Promise((r) => setTimeout(r, 50));
    console.log('\nthe controller received:');
    for (const r of readings) console.log('  ' + r);
    console.log(`\ndevice metrics (second wake): ${JSON.stringify(woke.metrics())}`);
    await controller.end();
  } finally {
    await proxy.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
