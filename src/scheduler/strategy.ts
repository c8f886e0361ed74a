/**
 * The scheduler plugin interface (`--scheduler NAME`). A strategy is a pure function from
 * targets with their series and the shards with their current assignment to a new
 * assignment and the number of shards wanted. The coordinator owns state, moves and
 * scaling; strategies only decide.
 */
export interface SchedTarget {
  /** Stable identity (job + final labels hash). */
  readonly id: string;
  /** Measured series (scrape_samples_post_metric_relabeling), or a hint/estimate. */
  readonly series: number;
  /**
   * Items of one group (the parts of a split target, src/scheduler/split.ts) never share a
   * shard: each part keeps a different share of the same scrape.
   */
  readonly group?: string;
}

export interface SchedShard {
  readonly id: number;
  /** Series this shard may hold; lowered for a shard that keeps restarting. */
  readonly budget: number;
  /** Target ids it scrapes now. */
  readonly targets: readonly string[];
  /** Down past its grace period: it gets nothing, and its place stays (ids must not shift). */
  readonly unavailable?: boolean;
}

export interface ScheduleInput {
  readonly targets: readonly SchedTarget[];
  /** Current shards, ids 0..n-1 (a shard StatefulSet's ordinals). */
  readonly shards: readonly SchedShard[];
  /** Budget of a shard that does not exist yet. */
  readonly budget: number;
  readonly minShards: number;
  readonly maxShards: number;
}

export interface ScheduleResult {
  /** Target ids per shard id, for shards 0..desiredShards-1. */
  readonly assignment: readonly (readonly string[])[];
  readonly desiredShards: number;
  /** Series moved from one existing shard to another (new targets do not count). */
  readonly movedSeries: number;
  readonly warnings: readonly string[];
}

export interface Strategy {
  readonly name: string;
  readonly description: string;
  schedule(input: ScheduleInput): ScheduleResult;
}

const registry = new Map<string, Strategy>();

export function registerStrategy(s: Strategy): void {
  registry.set(s.name, s);
}

export function strategyNames(): string[] {
  return [...registry.keys()].sort();
}

export function getStrategy(name: string): Strategy | undefined {
  return registry.get(name);
}

/** Deterministic order for ties: larger first, then by id. */
export function bySeriesDesc(a: SchedTarget, b: SchedTarget): number {
  return b.series - a.series || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
