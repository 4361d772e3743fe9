// Queues a backlog at the broker for the benchmarks that drain one (bench:e2e,
// bench:alloc, bench/e2e-profile.ts): n messages published as fast as the
// broker takes them, then one QoS 1 message on `sentinel` whose PUBACK shows
// the broker has taken everything before it.

import { connect } from '../hosts/node/client.js';
import { drive } from './e2e-driver.js';

/** Publishes n 16-byte messages at qos to `topics` in turn (over 3.1.1), then the sentinel. */
export async function fillBacklog(url: string, topics: readonly string[], qos: 0 | 1 | 2, n: number, sentinel: string): Promise<void> {
  // mosquitto takes at most max_inflight_messages (20) incoming QoS 2 flows
  // at a time; with more outstanding, messages went missing from the queue.
  const win = 20;
  const c = connect(url, { clientId: `filler-${process.pid}`, reconnectPeriod: 0, capacities: { inflight: win, outbox: 4, storeBytes: 4096 } });
  await new Promise((r) => c.once('connect', r));
  const payload = Buffer.alloc(16, 0x62);
  const opts = { qos };
  let k = 0;
  await drive(n, win, (done) => void c.publish(topics[k++ % topics.length]!, payload, opts, done));
  await (await c.publish(sentinel, payload, { qos: 1 })).acknowledged;
  await c.end();
}
