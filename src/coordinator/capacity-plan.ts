import { parsePartId, scheduleWithSplits } from "../scheduler/split.ts";
import type { Strategy } from "../scheduler/strategy.ts";
import { SCRAPE_SERIES } from "./coordinator.ts";
import type { IndexedTarget } from "./target-index.ts";

/**
 * The answer of `promshard plan` and of the status page's what-if, computed once here: the
 * coordinator's scheduler (with splits) over measured targets on empty shards, so the answer
 * is where a fresh coordinator would put every target under that budget.
 */

/** Where a target's series count came from. */
export type SeriesSource = "coordinator" | "explored" | "default";

export interface PlannedTarget {
  readonly job: string;
  readonly instance: string;
  readonly scrapeUrl: string;
  /** The whole target's series, as its shards would count them (scrape series included). */
  readonly series: number;
  readonly source: SeriesSource;
  /** Set when the target is split: this entry is part `part` of `parts`. */
  readonly part?: number;
  readonly parts?: number;
}

export interface Plan {
  readonly budget: number;
  readonly shards: number;
  readonly totalSeries: number;
  readonly targets: number;
  readonly perShard: readonly { shard: number; series: number; targets: PlannedTarget[] }[];
  /** The largest targets, largest first (at most ten). */
  readonly largest: readonly PlannedTarget[];
  readonly warnings: readonly string[];
}

/** A target and the series it exposes (after metric relabeling, without the scrape series). */
export interface MeasuredTarget {
  readonly target: IndexedTarget;
  readonly series: number;
  readonly source: SeriesSource;
}

export interface PlanBounds {
  readonly budget: number;
  readonly minShards: number;
  readonly maxShards: number;
  readonly strategy: Strategy;
}

const LARGEST = 10;

/**
 * What each target exposes, from a coordinator's items (a whole target, or each part of a
 * split one): the coordinator reports every item with the scrape series of its own scrape,
 * so those are taken off once per item and the parts of a target are added up.
 */
export function exposedSeries(items: Iterable<readonly [key: string, series: number]>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, series] of items) out.set(key, (out.get(key) ?? 0) + Math.max(0, series - SCRAPE_SERIES));
  return out;
}

export function capacityPlan(measured: readonly MeasuredTarget[], bounds: PlanBounds): Plan {
  const byId = new Map(measured.map((m) => [m.target.id, m]));
  const whole = (id: string) => byId.get(id)!.series + SCRAPE_SERIES;
  const r = scheduleWithSplits(bounds.strategy, {
    targets: measured.map(({ target }) => ({ id: target.id, series: whole(target.id) })),
    shards: [],
    budget: bounds.budget,
    minShards: bounds.minShards,
    maxShards: bounds.maxShards,
  });
  const entry = (id: string): PlannedTarget => {
    const p = parsePartId(id);
    const m = byId.get(p?.target ?? id)!;
    return {
      job: m.target.scrapePool,
      instance: m.target.labels.instance ?? "",
      scrapeUrl: m.target.scrapeUrl,
      series: whole(m.target.id),
      source: m.source,
      ...(p ? { part: p.part, parts: p.parts } : {}),
    };
  };
  const share = (id: string) => {
    const p = parsePartId(id);
    return p ? Math.ceil(whole(p.target) / p.parts) : whole(id);
  };
  const largest = measured
    .map(({ target }) => target.id)
    .sort((a, b) => whole(b) - whole(a) || (a < b ? -1 : 1))
    .slice(0, LARGEST)
    .map((id) => {
      const parts = r.parts.get(id);
      return { ...entry(id), ...(parts ? { parts } : {}) };
    });
  return {
    budget: bounds.budget,
    shards: r.desiredShards,
    totalSeries: measured.reduce((n, { target }) => n + whole(target.id), 0),
    targets: measured.length,
    perShard: r.assignment.map((ids, shard) => ({
      shard,
      series: ids.reduce((n, id) => n + share(id), 0),
      targets: ids.map(entry),
    })),
    largest,
    warnings: [...r.warnings],
  };
}
