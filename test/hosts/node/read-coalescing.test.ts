// Read coalescing in the Node host (hosts/node/transport.ts, nextReadMayWait):
// after a burst the broker sends without waiting for us, the next read waits a
// moment and takes a socket-full; a broker that keeps a window of
// unacknowledged messages is never made to wait.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type NodeClient } from '../../../hosts/node/client.js';
import { ANSWERED_WAITS, ANSWERED_WAIT_EVIDENCE, BURST_PACKETS, nextReadMayWait, ReadWait } from '../../../hosts/node/transport.js';
import { encodePublish } from '../../../modules/mqtt/encode.js';

describe('nextReadMayWait', () => {
  it('never waits with our own messages in flight, after fewer than BURST_PACKETS unanswered, or after no message', () => {
    const s = { answeredWaits: ANSWERED_WAITS };
    expect(nextReadMayWait(s, 500, false, 1)).toBe(ReadWait.None);
    expect(nextReadMayWait(s, 20, true, 1)).toBe(ReadWait.None);
    expect(nextReadMayWait(s, BURST_PACKETS - 1, false, 0)).toBe(ReadWait.None);
    expect(nextReadMayWait(s, 0, true, 0)).toBe(ReadWait.None);
    expect(s.answeredWaits).toBe(ANSWERED_WAITS);
  });

  it('always waits after an unanswered burst (QoS 0), as long as bursts last, without spending answered waits', () => {
    const s = { answeredWaits: 0 };
    expect(nextReadMayWait(s, BURST_PACKETS, false, 0)).toBe(ReadWait.Adaptive);
    expect(nextReadMayWait(s, 5000, false, 0)).toBe(ReadWait.Adaptive);
    expect(s.answeredWaits).toBe(0); // an unanswered burst is no evidence about acks
  });

  it('a windowed stream (answered reads below the evidence size) never waits', () => {
    const s = { answeredWaits: 0 };
    for (let i = 0; i < 1000; i++) expect(nextReadMayWait(s, 1 + (i % 20), true, 0)).toBe(ReadWait.None);
    expect(nextReadMayWait(s, ANSWERED_WAIT_EVIDENCE - 1, true, 0)).toBe(ReadWait.None);
  });

  it('after an answered read of ANSWERED_WAIT_EVIDENCE packets, answered bursts wait ANSWERED_WAITS times, renewed by more evidence', () => {
    const s = { answeredWaits: 0 };
    expect(nextReadMayWait(s, ANSWERED_WAIT_EVIDENCE, true, 0)).toBe(ReadWait.Short);
    let waits = 1;
    while (nextReadMayWait(s, 1, true, 0) === ReadWait.Short) waits++;
    expect(waits).toBe(ANSWERED_WAITS);
    expect(nextReadMayWait(s, 20, true, 0)).toBe(ReadWait.None);
    expect(nextReadMayWait(s, 300, true, 0)).toBe(ReadWait.Short);
    expect(s.answeredWaits).toBe(ANSWERED_WAITS - 1);
  });
});

/** A broker scripted over real TCP on 127.0.0.1: CONNACK, then `script` drives the socket. */
async function scriptedBroker(script: (sock: net.Socket, acks: () => number, onAck: (f: () => void) => void) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    let connected = false;
    let acks = 0;
    let listener: (() => void) | null = null;
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!connected) {
        // CONNECT from the client: its remaining length is one byte here.
        if (buf.length < 2 || buf.length < 2 + buf[1]!) return;
        buf = buf.subarray(2 + buf[1]!);
        connected = true;
        sock.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
        script(sock, () => acks, (f) => { listener = f; });
      }
      while (buf.length >= 4 && buf[0] === 0x40) {
        acks++;
        buf = buf.subarray(4);
      }
      listener?.();
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `mqtt://127.0.0.1:${port}`, close: () => new Promise((r) => { server.close(() => r()); }) };
}

/** n QoS 1 PUBLISHes on one topic with ids from `first`, as separate packets. */
function publishes(n: number, first: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const b = new Uint8Array(64);
    const len = encodePublish(b, 0, 4, 'backlog/t', new Uint8Array(16), 1, false, false, first + i, null);
    out.push(Buffer.from(b.subarray(0, len)));
  }
  return out;
}

describe('read coalescing against a scripted broker', () => {
  let client: NodeClient | null = null;
  let broker: { close: () => Promise<void> } | null = null;
  afterEach(async () => {
    await client?.end(true);
    await broker?.close();
    client = broker = null;
  });

  function subscriber(url: string, reads: number[]): { client: NodeClient; received: () => number } {
    let received = 0;
    const c = connect(url, { clientId: 'rc', reconnectPeriod: 0, keepalive: 0, trace: (dir) => { if (dir === 'receive') reads.push(received); } });
    c.on('message', () => { received++; });
    return { client: c, received: () => received };
  }

  it('a backlog sent past any window (one write of 200, then 400 one at a time) is read in a few socket-fulls, every message acknowledged', async () => {
    const reads: number[] = [];
    let phase2Start = -1;
    let acked = 0;
    const b = await scriptedBroker((sock, acks, onAck) => {
      sock.write(Buffer.concat(publishes(200, 1)));
      // The rest as a broker draining its queue writes it: a packet per write, not waiting for acks.
      onAck(() => {
        acked = acks();
        if (acks() < 200 || phase2Start >= 0) return;
        phase2Start = reads.length;
        const rest = publishes(400, 201);
        let k = 0;
        const next = (): void => {
          for (let j = 0; j < 4 && k < rest.length; j++) sock.write(rest[k++]!);
          if (k < rest.length) setImmediate(next);
        };
        next();
      });
    });
    broker = b;
    const s = subscriber(b.url, reads);
    client = s.client;
    await expect.poll(() => s.received(), { timeout: 10_000 }).toBe(600);
    await expect.poll(() => acked, { timeout: 5_000 }).toBe(600);
    // Reads that carried the 400 of the second phase. Without the wait after an
    // answered burst, a reader faster than the writer takes a few packets a read.
    const phase2Reads = reads.length - phase2Start;
    expect(phase2Reads).toBeLessThan(60);
  });

  it('a QoS 0 stream written 10 packets at a time is read in socket-fulls, and its tail arrives once the stream stops', async () => {
    const reads: number[] = [];
    const total = 3000;
    const b = await scriptedBroker((sock) => {
      const pubs: Buffer[] = [];
      for (let i = 0; i < total; i++) {
        const u = new Uint8Array(64);
        pubs.push(Buffer.from(u.subarray(0, encodePublish(u, 0, 4, 'stream/t', new Uint8Array(16), 0, false, false, 0, null))));
      }
      let k = 0;
      const next = (): void => {
        for (let j = 0; j < 10 && k < total; j++) sock.write(pubs[k++]!);
        if (k < total) setImmediate(next);
      };
      next();
    });
    broker = b;
    const s = subscriber(b.url, reads);
    client = s.client;
    await expect.poll(() => s.received(), { timeout: 10_000 }).toBe(total);
    // Written 10 packets per turn of this process's event loop (the broker
    // runs in it): a reader that never waited takes one read per turn.
    expect(reads.length).toBeLessThan(total / 10 / 4);
  });

  it('a broker that waits for the acks of each window of 20 is answered without waiting: 100 windows, every message acknowledged', async () => {
    const reads: number[] = [];
    const rounds = 100;
    // Per window: from the broker's write to its 20th PUBACK.
    const roundMs: number[] = [];
    const b = await scriptedBroker((sock, acks, onAck) => {
      let sent = 0;
      let at = 0;
      const send = (): void => {
        at = performance.now();
        sock.write(Buffer.concat(publishes(20, 1 + (sent % 60000))));
        sent += 20;
      };
      send();
      onAck(() => {
        if (acks() !== sent) return;
        roundMs.push(performance.now() - at);
        if (sent < rounds * 20) send();
      });
    });
    broker = b;
    const s = subscriber(b.url, reads);
    client = s.client;
    await expect.poll(() => roundMs.length, { timeout: 10_000 }).toBe(rounds);
    expect(s.received()).toBe(rounds * 20);
    // A client that waited READ_COALESCE_MS before reading the next window
    // would take at least 1 ms for every window after the first: the median
    // window takes well under that when none waits.
    roundMs.sort((x, y) => x - y);
    expect(roundMs[rounds >> 1]!).toBeLessThan(1);
  });
});
