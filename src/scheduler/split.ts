import { parsePartId, partId } from "../contract/assignment.ts";
import type { SchedTarget, ScheduleInput, ScheduleResult, Strategy } from "./strategy.ts";

export { type PartRef, parsePartId, partId } from "../contract/assignment.ts";

/**
 * A target bigger than a shard's budget is split: k shards each scrape it and keep a
 * disjoint 1/k of its series (a hashmod over each series' labels in the metric relabeling,
 * src/sidecar/generate.ts). Each part is an item of its own for the strategy, with the
 * target's id as its group: parts move, count and scale like targets, and no two parts of one
 * target share a shard (they would keep the same series twice on none and half on one).
 */

/** The id of the target an item (a whole target or one of its parts) belongs to. */
export function targetOf(id: string): string {
  return parsePartId(id)?.target ?? id;
}

/**
 * A new split plans each part at most this share of the budget: a hashmod partition is not
 * exactly even (a binomial spread of √(n/k) series), and the target may grow.
 */
const SPLIT_FILL = 0.9;
/** A split shrinks to k−1 parts only when they would fill at most this share (hysteresis, as for draining). */
const MERGE_FILL = 0.8;

/**
 * How many parts a target of `series` needs under `budget`: 1 while it fits; else the count
 * it has while every part still fits and one fewer would not fit comfortably, else enough
 * parts at SPLIT_FILL. Never more than `maxShards` (parts need distinct shards).
 */
export function partsFor(series: number, budget: number, current: number, maxShards: number): number {
  const cap = Math.max(1, maxShards);
  if (current > 1) {
    const keeps = Math.ceil(series / current) <= budget;
    const tooFew = series / (current - 1) > budget * MERGE_FILL;
    if (keeps && tooFew) return Math.min(current, cap);
  }
  if (series <= budget) return 1;
  return Math.min(cap, Math.max(2, Math.ceil(series / (budget * SPLIT_FILL))));
}

export interface SplitResult extends ScheduleResult {
  /** Parts per split target id (targets that are whole are absent). */
  readonly parts: ReadonlyMap<string, number>;
}

/**
 * Runs `strategy` over the input's targets, each split into parts when it is bigger than
 * the budget. Target ids in `input.shards` may be part ids (what the shards hold now): a part
 * whose count did not change is the same item and stays where it is.
 */
export function scheduleWithSplits(strategy: Strategy, input: ScheduleInput): SplitResult {
  const current = new Map<string, number>();
  for (const s of input.shards)
    for (const id of s.targets) {
      const p = parsePartId(id);
      if (p) current.set(p.target, p.parts);
    }
  const parts = new Map<string, number>();
  const warnings: string[] = [];
  const items: SchedTarget[] = [];
  for (const t of input.targets) {
    const k = partsFor(t.series, input.budget, current.get(t.id) ?? 1, input.maxShards);
    if (k === 1) {
      items.push(t);
      continue;
    }
    parts.set(t.id, k);
    const share = Math.ceil(t.series / k);
    if (share > input.budget)
      warnings.push(
        `target ${t.id} has ${t.series} series: split over --shards.max ${input.maxShards} shards, each part (${share}) is still over the budget of ${input.budget}`,
      );
    for (let i = 0; i < k; i++) items.push({ id: partId(t.id, i, k), series: share, group: t.id });
  }
  const r = strategy.schedule({ ...input, targets: items });
  return { ...r, warnings: [...warnings, ...r.warnings], parts };
}
