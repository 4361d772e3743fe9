// Values by message token for the messages a client has in flight: an
// open-addressing hash table of fixed capacity. A Map with one insert and one
// delete per message grows and rehashes as deleted entries pile up (about
// 100 bytes of garbage per message, measured); this table allocates only when
// it is made. Tokens increase by one per accepted message and a client holds
// at most `maxLive` of them at once (its record slots), so with at least twice
// that many slots, indexed by the token's low bits, probes are short.

export class TokenTable<V> {
  #keys: number[];
  #values: Array<V | undefined>;
  #mask: number;
  #size = 0;

  constructor(maxLive: number) {
    let n = 4;
    while (n < maxLive * 2) n *= 2;
    this.#keys = new Array<number>(n).fill(0);
    this.#values = new Array<V | undefined>(n).fill(undefined);
    this.#mask = n - 1;
  }

  /** Twice the slots; only if more than maxLive tokens were ever live at once (it should not happen). */
  #grow(): void {
    const keys = this.#keys;
    const values = this.#values;
    const n = keys.length * 2;
    this.#keys = new Array<number>(n).fill(0);
    this.#values = new Array<V | undefined>(n).fill(undefined);
    this.#mask = n - 1;
    this.#size = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== 0) this.set(keys[i]!, values[i] as V);
  }

  get size(): number {
    return this.#size;
  }

  /** Adds (or replaces) the value for a token (> 0). */
  set(token: number, value: V): void {
    if (this.#size * 2 >= this.#keys.length) this.#grow();
    const keys = this.#keys;
    const mask = this.#mask;
    let i = token & mask;
    while (keys[i] !== 0) {
      if (keys[i] === token) {
        this.#values[i] = value;
        return;
      }
      i = (i + 1) & mask;
    }
    keys[i] = token;
    this.#values[i] = value;
    this.#size++;
  }

  /** Removes and returns the value for a token, or undefined. */
  take(token: number): V | undefined {
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = token & mask;
    for (;;) {
      const k = keys[i];
      if (k === 0) return undefined;
      if (k === token) break;
      i = (i + 1) & mask;
    }
    const v = values[i];
    // Backward-shift deletion: later members of the probe run move back so every key stays reachable.
    for (let j = (i + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const home = keys[j] & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        keys[i] = keys[j];
        values[i] = values[j];
        i = j;
      }
    }
    keys[i] = 0;
    values[i] = undefined;
    this.#size--;
    return v;
  }
}
