// A virtual clock: an event queue ordered by time, ties broken by the order
// events were scheduled, so a run replays exactly from its seed. Nothing waits
// on the wall clock: `run` jumps from one event to the next.
//
// An event is a function and up to two arguments. Hot callers pass a shared
// function and the objects it works on, so scheduling allocates one small
// entry and no closure.

export type EventFn<A = any, B = any> = (a: A, b: B) => void;

interface Entry {
  t: number;
  seq: number;
  fn: EventFn;
  a: unknown;
  b: unknown;
}

export class VirtualClock {
  /** Current virtual time, ms. */
  now: number;
  /** Events run so far. */
  events = 0;
  #heap: Entry[] = [];
  #seq = 0;
  #free: Entry[] = [];

  constructor(startMs = 0) {
    this.now = startMs;
  }

  /** Events waiting. */
  get pending(): number {
    return this.#heap.length;
  }

  /** Time of the next event, or Infinity. */
  get nextAt(): number {
    return this.#heap.length > 0 ? this.#heap[0].t : Infinity;
  }

  /** Run `fn(a, b)` at time `t` (clamped to now: the past cannot be scheduled). */
  at<A, B>(t: number, fn: EventFn<A, B>, a?: A, b?: B): void {
    const e = this.#free.pop() ?? { t: 0, seq: 0, fn, a: undefined, b: undefined };
    e.t = t > this.now ? t : this.now;
    e.seq = this.#seq++;
    e.fn = fn;
    e.a = a;
    e.b = b;
    const h = this.#heap;
    h.push(e);
    // Sift up.
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  /** Run `fn(a, b)` after `ms`. */
  after<A, B>(ms: number, fn: EventFn<A, B>, a?: A, b?: B): void {
    this.at(this.now + ms, fn, a, b);
  }

  /** Run the next event; false if there is none. */
  step(): boolean {
    const h = this.#heap;
    if (h.length === 0) return false;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      // Sift down.
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r], h[l]) ? r : l;
        if (!before(h[c], last)) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    this.now = top.t;
    const { fn, a, b } = top;
    top.a = top.b = undefined;
    this.#free.push(top);
    this.events++;
    fn(a, b);
    return true;
  }

  /** Run every event up to and including time `t`; the clock ends at `t`. */
  runUntil(t: number): void {
    const h = this.#heap;
    while (h.length > 0 && h[0].t <= t) this.step();
    if (t > this.now) this.now = t;
  }

  /** Advance by `ms`, running what falls due. */
  advance(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Drop every pending event. */
  clear(): void {
    this.#heap.length = 0;
  }
}

function before(x: Entry, y: Entry): boolean {
  return x.t < y.t || (x.t === y.t && x.seq < y.seq);
}
