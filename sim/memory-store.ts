// A SnapshotStore in memory, for the simulator and for tests: it keeps what a
// device's RTC memory or flash would keep, and can tear a write at a chosen
// byte to stand in for power failing mid-write.
import type { SnapshotStore } from '../modules/session/ports.js';

export class MemorySnapshotStore implements SnapshotStore {
  readonly slots: [Uint8Array | null, Uint8Array | null] = [null, null];
  writes = 0;
  /**
   * When >= 0, the next write stops after this many bytes and throws
   * PowerLossError; then the hook clears. The cut is kept before the image's
   * last 4 bytes (its CRC), so a torn write never completes: a write cut in
   * its last bytes where old and new bytes happen to agree has in effect
   * finished, and is power lost after a write, a different case.
   */
  tearNextWriteAt = -1;

  read(slot: 0 | 1): Uint8Array | null {
    return this.slots[slot];
  }

  write(slot: 0 | 1, image: Uint8Array): void {
    this.writes++;
    if (this.tearNextWriteAt >= 0) {
      // Power fails: the bytes already written over the old image stay, the rest is the old image.
      const cut = Math.max(0, Math.min(this.tearNextWriteAt, image.length - 4));
      const old = this.slots[slot] ?? new Uint8Array(0);
      const torn = new Uint8Array(Math.max(old.length, cut));
      torn.set(old.subarray(0, torn.length));
      torn.set(image.subarray(0, cut));
      this.slots[slot] = torn;
      this.tearNextWriteAt = -1;
      throw new PowerLossError();
    }
    this.slots[slot] = image.slice();
  }

  /** A copy, as the device would find it after a reboot. */
  clone(): MemorySnapshotStore {
    const c = new MemorySnapshotStore();
    c.slots[0] = this.slots[0]?.slice() ?? null;
    c.slots[1] = this.slots[1]?.slice() ?? null;
    return c;
  }
}

/** Thrown by a torn write: the device lost power there; nothing after it ran. */
export class PowerLossError extends Error {
  constructor() {
    super('power lost during a snapshot write');
  }
}
