// Moddable `timer` (documentation/base/base.md, class Timer). Intervals in ms.
declare module 'timer' {
  /** Opaque: only useful to pass back to Timer's static functions. */
  interface TimerHandle {
    readonly __timer: unique symbol;
  }
  const Timer: {
    /** No intervals: immediate. One: one-shot. Two (repeat non-zero): repeating. */
    set(callback: (timer: TimerHandle) => void, initialInterval?: number, repeatInterval?: number): TimerHandle;
    repeat(callback: (timer: TimerHandle) => void, repeatInterval: number): TimerHandle;
    /** No intervals: unscheduled (kept, fires never). A timer whose repeat is 0 when its callback returns is freed. */
    schedule(timer: TimerHandle, initialInterval?: number, repeatInterval?: number): void;
    /** Accepts undefined and null. */
    clear(timer: TimerHandle | undefined | null): void;
    /** Blocks. */
    delay(ms: number): void;
  };
  export default Timer;
}
