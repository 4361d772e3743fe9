// Moves bytes between an ECMA-419 TCP socket and the sans-I/O core.
//
// Why ECMA-419 `embedded:io/socket/tcp` and not the legacy `socket` module:
// it reports back-pressure as a byte count (onWritable(count)), which maps
// one-to-one onto a bounded send queue; it reads into a buffer we own
// (read(view)), so a receive allocates nothing; and it throws instead of
// silently buffering when a write would not fit. The legacy socket buffers
// writes internally without a bound the caller can see, reads by allocating
// an ArrayBuffer or String, and multiplexes every event through one callback
// with message codes. Its one advantage, host names, is covered by resolving
// the broker's name once per connection (see client.ts).

import type { TcpSocket, TcpSocketConstructor } from './platform.js';

/** The part of the core the transport drives. DormouseClient has exactly these. */
export interface TransportEvents {
  transportOpened(now: number): void;
  receive(chunk: Uint8Array, now: number): void;
  transportClosed(now: number): void;
}

export interface TcpTransportOptions {
  /** Dotted IPv4 address of the broker. */
  address: string;
  port: number;
  /** Bytes read from the socket per core.receive call. The core copies what it keeps. */
  receiveBufferBytes?: number;
  /** Bytes held while the socket has no room; past this the connection is dropped. */
  sendQueueBytes?: number;
}

export const enum SendResult {
  /** Handed to the socket. */
  Written = 0,
  /** Partly or wholly held until onWritable. */
  Queued = 1,
  /** No open connection: nothing was sent. */
  NotOpen = 2,
  /** The send queue is full: the connection is being dropped and transportClosed follows. */
  QueueFull = 3,
}

const enum State {
  Idle = 0,
  Connecting = 1,
  Open = 2,
}

export class TcpTransport {
  readonly #Tcp: TcpSocketConstructor;
  readonly #core: TransportEvents;
  readonly #clock: () => number;
  #address: string;
  readonly #port: number;
  readonly #rx: Uint8Array; // receive buffer, lent to core.receive
  readonly #queue: Uint8Array; // bytes waiting for room; front is queue[0]
  #queued = 0;
  #writable = 0; // room the socket last announced, minus what was written since
  #socket: TcpSocket | null = null;
  #state = State.Idle;
  #generation = 0; // callbacks of an older socket are ignored
  #peakWritable = 0; // the most room the socket announced: its send buffer when empty
  #linger: ((drained: boolean) => void) | null = null;

  constructor(Tcp: TcpSocketConstructor, core: TransportEvents, clock: () => number, options: TcpTransportOptions) {
    const rxBytes = options.receiveBufferBytes ?? 1024;
    const queueBytes = options.sendQueueBytes ?? 2048;
    if (!(rxBytes >= 16)) throw new RangeError(`receiveBufferBytes must be at least 16, not ${rxBytes}`);
    if (!(queueBytes >= 0)) throw new RangeError(`sendQueueBytes must be 0 or more, not ${queueBytes}`);
    if (!(options.port > 0 && options.port < 65536)) throw new RangeError(`port must be 1..65535, not ${options.port}`);
    this.#Tcp = Tcp;
    this.#core = core;
    this.#clock = clock;
    this.#address = options.address;
    this.#port = options.port;
    this.#rx = new Uint8Array(rxBytes);
    this.#queue = new Uint8Array(queueBytes);
  }

  /** Where the next open() connects; a change applies from the next open (the wake's address hint falling back to a lookup). */
  get address(): string {
    return this.#address;
  }

  set address(address: string) {
    this.#address = address;
  }

  get isOpen(): boolean {
    return this.#state === State.Open;
  }

  /** Bytes waiting for the socket to have room. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Start connecting. The answer is core.transportOpened or core.transportClosed, always on a later turn. */
  open(): void {
    if (this.#state !== State.Idle) throw new Error('TcpTransport.open: already open or connecting; close() first');
    const generation = ++this.#generation;
    this.#state = State.Connecting;
    this.#writable = 0;
    this.#peakWritable = 0;
    this.#queued = 0;
    try {
      this.#socket = new this.#Tcp({
        address: this.#address,
        port: this.#port,
        nodelay: true, // MQTT packets are small and each one waits for an answer: no Nagle delay
        onWritable: (count) => {
          if (generation === this.#generation) this.#onWritable(count);
        },
        onReadable: (count) => {
          if (generation === this.#generation) this.#onReadable(count);
        },
        onError: () => {
          if (generation === this.#generation) this.#fail();
        },
      });
    } catch {
      // Bad address, no socket left, network not up: report on a later turn so the
      // core is never re-entered from inside its own open hook.
      this.#socket = null;
      this.#failLater(generation);
    }
  }

  /** Write or queue. `bytes` is only valid during the call; queued bytes are copied. */
  send(bytes: Uint8Array): SendResult {
    const socket = this.#socket;
    if (this.#state !== State.Open || socket === null) return SendResult.NotOpen;
    let offset = 0;
    if (this.#queued === 0 && this.#writable > 0) {
      offset = bytes.length <= this.#writable ? bytes.length : this.#writable;
      socket.write(offset === bytes.length ? bytes : bytes.subarray(0, offset));
      this.#writable -= offset;
      if (offset === bytes.length) return SendResult.Written;
    }
    const rest = bytes.length - offset;
    if (rest > this.#queue.length - this.#queued) {
      const generation = ++this.#generation; // silence the old socket's callbacks
      this.#teardown();
      this.#failLater(generation);
      return SendResult.QueueFull;
    }
    this.#queue.set(offset === 0 ? bytes : bytes.subarray(offset), this.#queued);
    this.#queued += rest;
    return SendResult.Queued;
  }

  /** Close at the core's request: the core already considers the link closed, so no callback. */
  close(): void {
    this.#endLinger(false);
    this.#generation++;
    this.#teardown();
  }

  /**
   * Close once everything written has left: nothing queued here and the
   * socket's room back to the most it ever announced (its send buffer empty,
   * so the peer acknowledged every byte), or after `maxMs`, whichever comes
   * first. For the last packets before the radio stops (DISCONNECT): closing
   * at once can drop them with the socket's buffer. `later(fn, ms)` schedules
   * the bound and returns its cancel. `done(drained)` runs once, on a later turn
   * or from a socket callback; the core is not told (it closed the link itself).
   */
  closeWhenDrained(maxMs: number, later: (fn: () => void, ms: number) => () => void, done: (drained: boolean) => void): void {
    this.#endLinger(false);
    if (this.#socket === null || this.#state !== State.Open) {
      this.close();
      later(() => done(false), 0);
      return;
    }
    const cancel = later(() => {
      if (this.#linger !== finish) return;
      this.#linger = null;
      this.#generation++;
      this.#teardown();
      done(false);
    }, maxMs);
    // Drained is seen inside a socket callback: the socket is closed on a later turn, since
    // Moddable's TLS socket (examples/io/tcp/tlssocket) throws on a callback of its TCP socket
    // that comes after a close made from inside one (seen in mcsim).
    const finish = (drained: boolean): void => {
      cancel();
      this.#generation++;
      const socket = this.#socket;
      this.#socket = null;
      this.#state = State.Idle;
      this.#queued = 0;
      this.#writable = 0;
      later(() => {
        try {
          socket?.close();
        } catch {
          // already failed: gone either way
        }
        done(drained);
      }, 0);
    };
    this.#linger = finish;
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#linger !== null && this.#queued === 0 && this.#writable >= this.#peakWritable) this.#endLinger(true);
  }

  #endLinger(drained: boolean): void {
    const linger = this.#linger;
    this.#linger = null;
    linger?.(drained);
  }

  #onWritable(count: number): void {
    this.#writable = count;
    if (count > this.#peakWritable) this.#peakWritable = count;
    if (this.#state === State.Connecting) {
      this.#state = State.Open;
      this.#core.transportOpened(this.#clock());
      if (this.#state !== State.Open) return; // the core closed it from inside transportOpened
    }
    this.#flush();
    this.#checkDrained();
  }

  #flush(): void {
    const socket = this.#socket;
    if (socket === null || this.#queued === 0 || this.#writable === 0) return;
    const n = this.#queued <= this.#writable ? this.#queued : this.#writable;
    socket.write(this.#queue.subarray(0, n));
    this.#writable -= n;
    this.#queue.copyWithin(0, n, this.#queued);
    this.#queued -= n;
  }

  #onReadable(count: number): void {
    const rx = this.#rx;
    const generation = this.#generation;
    while (count > 0) {
      const socket = this.#socket;
      if (socket === null || generation !== this.#generation) return; // closed by the core meanwhile
      const n = count < rx.length ? count : rx.length;
      const chunk = n === rx.length ? rx : rx.subarray(0, n);
      socket.read(chunk);
      count -= n;
      this.#core.receive(chunk, this.#clock());
    }
  }

  #fail(): void {
    // Lingering, the core already closed its side. The broker closing now, with
    // every byte handed to the socket, is its answer to our DISCONNECT (a server
    // closes on DISCONNECT [MQTT-3.14.4]): seen on lin and over TLS, where that
    // close comes before the socket reports its send buffer empty again.
    if (this.#linger !== null) return this.#endLinger(this.#queued === 0);
    this.#generation++;
    this.#teardown();
    this.#core.transportClosed(this.#clock());
  }

  /** Report a failure on a later turn, unless the core closed or reopened in the meantime. */
  #failLater(generation: number): void {
    void Promise.resolve().then(() => {
      if (generation !== this.#generation) return;
      this.#generation++;
      this.#teardown();
      this.#core.transportClosed(this.#clock());
    });
  }

  #teardown(): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#state = State.Idle;
    this.#queued = 0;
    this.#writable = 0;
    if (socket !== null) {
      try {
        socket.close();
      } catch {
        // closing a socket that already failed may throw; it is gone either way
      }
    }
  }
}
