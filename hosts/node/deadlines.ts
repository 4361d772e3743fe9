// One Node timer for the next deadline of every client in the process. Each
// client has at most one deadline (the core's nextDeadline: keepalive, a
// reconnect, an ack or connect timeout); a Timeout object per client cost
// about 200 bytes of heap and was re-armed as deadlines moved. Here the
// deadlines wait in a binary min-heap and one timer is armed for the earliest.
// Times are whole performance.now() milliseconds; each client turns its own clock's
// deadline into a delay when it schedules.

export interface Deadline {
  /** performance.now() ms, whole, at which fire() is due (kept by the queue). */
  dueAt: number;
  /** Position in the queue, -1 while not queued (kept by the queue). */
  queueIndex: number;
  /** Called once when due; it may schedule again. */
  fire(): void;
}

const heap: Deadline[] = [];
let timer: NodeJS.Timeout | null = null;
let timerAt = Infinity;
const due: Deadline[] = [];

/** Queue (or move) `d` to fire `delayMs` from now. */
export function scheduleDeadline(d: Deadline, delayMs: number): void {
  // Whole milliseconds (rounded up: never early): V8 keeps a small integer in
  // the client's own field, a fraction in a 16-byte number box per client.
  const at = Math.ceil(performance.now() + Math.max(0, delayMs));
  const i = d.queueIndex;
  if (i >= 0) {
    const earlier = at < d.dueAt;
    d.dueAt = at;
    if (earlier) up(i);
    else down(i);
  } else {
    d.dueAt = at;
    d.queueIndex = heap.length;
    heap.push(d);
    up(d.queueIndex);
  }
  arm();
}

export function cancelDeadline(d: Deadline): void {
  const i = d.queueIndex;
  if (i < 0) return;
  d.queueIndex = -1;
  const last = heap.pop()!;
  if (last !== d) {
    heap[i] = last;
    last.queueIndex = i;
    up(i);
    down(last.queueIndex);
  }
  if (heap.length === 0) disarm();
}

/** Deadlines waiting (for tests and diagnostics). */
export function queuedDeadlines(): number {
  return heap.length;
}

function arm(): void {
  const top = heap[0];
  if (top === undefined) return disarm();
  // A wakeup no later than needed is kept: run() re-arms for what is left.
  if (timer !== null && timerAt <= top.dueAt) return;
  if (timer !== null) clearTimeout(timer);
  timerAt = top.dueAt;
  timer = setTimeout(run, Math.min(Math.max(0, top.dueAt - performance.now()), 0x7fffffff));
}

function disarm(): void {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  timerAt = Infinity;
}

function run(): void {
  timer = null;
  timerAt = Infinity;
  // Node's timer clock is cached per loop turn in whole milliseconds: allow
  // for firing up to 1 ms early (a core woken early only re-checks).
  const now = performance.now() + 1;
  // Take everything due first: a deadline scheduled again while firing waits for the next timer.
  while (heap.length > 0 && heap[0]!.dueAt <= now) due.push(popTop());
  for (let k = 0; k < due.length; k++) {
    const d = due[k]!;
    due[k] = undefined as unknown as Deadline;
    d.fire();
  }
  due.length = 0;
  arm();
}

function popTop(): Deadline {
  const top = heap[0]!;
  top.queueIndex = -1;
  const last = heap.pop()!;
  if (last !== top) {
    heap[0] = last;
    last.queueIndex = 0;
    down(0);
  }
  return top;
}

function up(i: number): void {
  const d = heap[i]!;
  while (i > 0) {
    const p = (i - 1) >> 1;
    const parent = heap[p]!;
    if (parent.dueAt <= d.dueAt) break;
    heap[i] = parent;
    parent.queueIndex = i;
    i = p;
  }
  heap[i] = d;
  d.queueIndex = i;
}

function down(i: number): void {
  const d = heap[i]!;
  const n = heap.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && heap[r]!.dueAt < heap[l]!.dueAt ? r : l;
    const child = heap[c]!;
    if (child.dueAt >= d.dueAt) break;
    heap[i] = child;
    child.queueIndex = i;
    i = c;
  }
  heap[i] = d;
  d.queueIndex = i;
}
