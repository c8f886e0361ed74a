/**
 * What the status page plots: each shard's series over the last window, the global view's
 * count, and the moves and scalings to mark on them. Bounded whatever runs for how long: one
 * point per step per shard (a later sample in the same step replaces the earlier one), in
 * fixed typed arrays, so a shard costs (window / step + 1) × 16 bytes: 361 points, 5.8 KiB
 * for an hour at 10 s, 2.9 MiB for 500 shards. A shard not recorded for a whole window (it
 * was scaled away) is dropped; marks are at most `maxMarks`, the oldest dropped first.
 */

export interface HistoryPoint {
  readonly at: number;
  readonly value: number;
}

export interface HistoryMark {
  readonly at: number;
  readonly kind: "move" | "scale";
  readonly text: string;
  /** The shards it concerns (a move's old and new shard); absent: every shard (a scaling). */
  readonly shards?: readonly number[];
}

export interface HistoryOptions {
  readonly windowMs?: number;
  readonly stepMs?: number;
  readonly maxMarks?: number;
}

/** A ring of (time, value) points, one per step: the newest overwrites its step's point. */
class Ring {
  readonly #at: Float64Array;
  readonly #value: Float64Array;
  #start = 0;
  #length = 0;

  constructor(capacity: number) {
    this.#at = new Float64Array(capacity);
    this.#value = new Float64Array(capacity);
  }

  get newest(): number | undefined {
    return this.#length === 0 ? undefined : this.#at[(this.#start + this.#length - 1) % this.#at.length];
  }

  add(at: number, value: number, stepMs: number): void {
    const cap = this.#at.length;
    const last = this.newest;
    if (last !== undefined && Math.floor(last / stepMs) === Math.floor(at / stepMs)) {
      const i = (this.#start + this.#length - 1) % cap;
      this.#at[i] = at;
      this.#value[i] = value;
      return;
    }
    const i = (this.#start + this.#length) % cap;
    this.#at[i] = at;
    this.#value[i] = value;
    if (this.#length < cap) this.#length++;
    else this.#start = (this.#start + 1) % cap;
  }

  since(from: number): HistoryPoint[] {
    const out: HistoryPoint[] = [];
    for (let k = 0; k < this.#length; k++) {
      const i = (this.#start + k) % this.#at.length;
      if (this.#at[i]! >= from) out.push({ at: this.#at[i]!, value: this.#value[i]! });
    }
    return out;
  }
}

export class SeriesHistory {
  readonly windowMs: number;
  readonly stepMs: number;
  readonly #maxMarks: number;
  readonly #shards = new Map<number, Ring>();
  readonly #global: Ring;
  readonly #marks: HistoryMark[] = [];

  constructor(opts: HistoryOptions = {}) {
    this.windowMs = opts.windowMs ?? 3_600_000;
    this.stepMs = opts.stepMs ?? 10_000;
    this.#maxMarks = opts.maxMarks ?? 500;
    this.#global = new Ring(this.#capacity);
  }

  /** Points a ring holds: every step of the window and the one being filled. */
  get #capacity(): number {
    return Math.ceil(this.windowMs / this.stepMs) + 1;
  }

  /** Each shard's series at `at`; shards silent for a whole window are forgotten. */
  record(at: number, shards: readonly { readonly id: number; readonly series: number }[]): void {
    for (const s of shards) {
      let ring = this.#shards.get(s.id);
      if (!ring) {
        ring = new Ring(this.#capacity);
        this.#shards.set(s.id, ring);
      }
      ring.add(at, s.series, this.stepMs);
    }
    for (const [id, ring] of this.#shards) if (ring.newest! < at - this.windowMs) this.#shards.delete(id);
  }

  /** The global view's series count at `at`. */
  recordGlobal(at: number, series: number): void {
    this.#global.add(at, series, this.stepMs);
  }

  mark(mark: HistoryMark): void {
    this.#marks.push(mark);
    if (this.#marks.length > this.#maxMarks) this.#marks.splice(0, this.#marks.length - this.#maxMarks);
  }

  /** Shard `id`'s points within the window ending at `now`, oldest first. */
  shard(id: number, now: number): HistoryPoint[] {
    return this.#shards.get(id)?.since(now - this.windowMs) ?? [];
  }

  global(now: number): HistoryPoint[] {
    return this.#global.since(now - this.windowMs);
  }

  /** Marks within the window for shard `id` (its moves, and every scaling), oldest first. */
  marks(id: number, now: number): HistoryMark[] {
    const from = now - this.windowMs;
    return this.#marks.filter((m) => m.at >= from && (m.shards === undefined || m.shards.includes(id)));
  }

  /** Shards with a ring (for tests of the bound). */
  get shardCount(): number {
    return this.#shards.size;
  }
}
