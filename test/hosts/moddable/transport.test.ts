import { beforeEach, describe, expect, it } from 'vitest';
import { SendResult, TcpTransport, type TransportEvents } from '../../../hosts/moddable/transport.js';
import { FakeTcp } from './fakes.js';

class CoreLog implements TransportEvents {
  readonly calls: string[] = [];
  readonly received: number[] = [];
  chunkSizes: number[] = [];
  onReceive: ((chunk: Uint8Array) => void) | null = null;
  onOpened: (() => void) | null = null;
  transportOpened(now: number): void {
    this.calls.push(`opened@${now}`);
    this.onOpened?.();
  }
  receive(chunk: Uint8Array, now: number): void {
    this.calls.push(`receive@${now}`);
    this.chunkSizes.push(chunk.length);
    for (const b of chunk) this.received.push(b);
    this.onReceive?.(chunk);
  }
  transportClosed(now: number): void {
    this.calls.push(`closed@${now}`);
  }
}

const bytes = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);
const tick = () => new Promise<void>((r) => setTimeout(r, 0));

function setup(options: { receiveBufferBytes?: number; sendQueueBytes?: number } = {}) {
  const core = new CoreLog();
  let now = 100;
  const transport = new TcpTransport(FakeTcp, core, () => now, { address: '10.0.0.2', port: 1883, ...options });
  return { core, transport, advance: (ms: number) => (now += ms) };
}

beforeEach(() => FakeTcp.reset());

describe('TcpTransport', () => {
  it('opens with nodelay and reports the connection on the first onWritable', () => {
    const { core, transport } = setup();
    expect(transport.send(bytes(4))).toBe(SendResult.NotOpen);
    transport.open();
    const socket = FakeTcp.instances[0]!;
    expect(socket.options).toMatchObject({ address: '10.0.0.2', port: 1883, nodelay: true });
    expect(core.calls).toEqual([]);
    socket.connect(5744);
    expect(core.calls).toEqual(['opened@100']);
    expect(transport.isOpen).toBe(true);
    expect(transport.send(bytes(14))).toBe(SendResult.Written);
    expect(socket.written).toEqual([...bytes(14)]);
    expect(() => transport.open()).toThrow(/already open/);
  });

  it('closeWhenDrained: the broker closing after the last byte left for the socket counts as drained; with bytes still queued here it does not', async () => {
    for (const [room, drained] of [[100, true], [4, false]] as const) {
      FakeTcp.reset();
      const { transport } = setup();
      transport.open();
      const socket = FakeTcp.instances[0]!;
      socket.connect(room);
      transport.send(bytes(2)); // DISCONNECT
      transport.send(bytes(8)); // and what was before it, when room is short
      const results: boolean[] = [];
      transport.closeWhenDrained(500, (fn, ms) => {
        const t = setTimeout(fn, ms);
        return () => clearTimeout(t);
      }, (d) => results.push(d));
      expect(results).toEqual([]);
      socket.fail(); // the broker's close, before any onWritable
      await new Promise((r) => setTimeout(r, 5));
      expect(results).toEqual([drained]);
      expect(socket.closed).toBe(true);
    }
  });

  it('sends CONNECT written from inside transportOpened', () => {
    const { core, transport } = setup();
    core.onOpened = () => transport.send(bytes(14));
    transport.open();
    FakeTcp.instances[0]!.connect(100);
    expect(FakeTcp.instances[0]!.written.length).toBe(14);
  });

  it('holds what does not fit and writes it, in order, as room is announced', () => {
    const { transport } = setup();
    transport.open();
    const socket = FakeTcp.instances[0]!;
    socket.connect(10);
    expect(transport.send(bytes(25))).toBe(SendResult.Queued);
    expect(socket.written.length).toBe(10);
    expect(transport.queuedBytes).toBe(15);
    expect(transport.send(bytes(5, 25))).toBe(SendResult.Queued); // behind the queue, not around it
    socket.drain(8);
    expect(socket.written.length).toBe(18);
    socket.drain(100);
    expect(transport.queuedBytes).toBe(0);
    expect(socket.written).toEqual([...bytes(30)]);
    expect(transport.send(bytes(3, 30))).toBe(SendResult.Written);
  });

  it('drops the connection when the send queue overflows, and says so on a later turn', async () => {
    const { core, transport } = setup({ sendQueueBytes: 16 });
    transport.open();
    const socket = FakeTcp.instances[0]!;
    socket.connect(4);
    expect(transport.send(bytes(20))).toBe(SendResult.Queued); // 4 written, 16 queued
    expect(transport.send(bytes(1))).toBe(SendResult.QueueFull);
    expect(socket.closed).toBe(true);
    expect(core.calls).toEqual(['opened@100']);
    await tick();
    expect(core.calls).toEqual(['opened@100', 'closed@100']);
    expect(transport.send(bytes(1))).toBe(SendResult.NotOpen);
    socket.drain(100); // late callback from the dropped socket: ignored
    expect(core.calls.length).toBe(2);
  });

  it('reads into its own buffer, in chunks no larger than it, in order', () => {
    const { core, transport } = setup({ receiveBufferBytes: 16 });
    transport.open();
    const socket = FakeTcp.instances[0]!;
    socket.connect(100);
    socket.deliver(bytes(40));
    expect(core.chunkSizes).toEqual([16, 16, 8]);
    expect(core.received).toEqual([...bytes(40)]);
    expect(socket.inbox.length).toBe(0);
  });

  it('stops reading when the core closes the link from inside receive', () => {
    const { core, transport } = setup({ receiveBufferBytes: 16 });
    core.onReceive = () => transport.close();
    transport.open();
    const socket = FakeTcp.instances[0]!;
    socket.connect(100);
    socket.deliver(bytes(40));
    expect(core.chunkSizes).toEqual([16]);
    expect(socket.closed).toBe(true);
    expect(core.calls).not.toContain('closed@100'); // the core asked: no callback
  });

  it('reports a peer close or reset once, and can open again', () => {
    const { core, transport, advance } = setup();
    transport.open();
    const first = FakeTcp.instances[0]!;
    first.connect(100);
    advance(50);
    first.fail();
    expect(core.calls).toEqual(['opened@100', 'closed@150']);
    expect(first.closed).toBe(true);
    first.fail();
    expect(core.calls.length).toBe(2);
    transport.open();
    FakeTcp.instances[1]!.connect(100);
    expect(core.calls).toEqual(['opened@100', 'closed@150', 'opened@150']);
  });

  it('reports a connect failure as closed', () => {
    const { core, transport } = setup();
    transport.open();
    FakeTcp.instances[0]!.fail();
    expect(core.calls).toEqual(['closed@100']);
  });

  it('reports a constructor failure on a later turn, never from inside open()', async () => {
    const { core, transport } = setup();
    FakeTcp.throwOnConstruct = true;
    transport.open();
    expect(core.calls).toEqual([]);
    await tick();
    expect(core.calls).toEqual(['closed@100']);
  });

  it('close() at the core request ignores the old socket afterwards', () => {
    const { core, transport } = setup();
    transport.open();
    const socket = FakeTcp.instances[0]!;
    socket.connect(100);
    transport.close();
    expect(socket.closed).toBe(true);
    socket.deliver(bytes(3));
    socket.fail();
    expect(core.calls).toEqual(['opened@100']);
  });

  it('validates its options', () => {
    const core = new CoreLog();
    expect(() => new TcpTransport(FakeTcp, core, () => 0, { address: '1.2.3.4', port: 0 })).toThrow(RangeError);
    expect(() => new TcpTransport(FakeTcp, core, () => 0, { address: '1.2.3.4', port: 1883, receiveBufferBytes: 4 })).toThrow(RangeError);
  });
});
