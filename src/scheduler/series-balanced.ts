import {
  bySeriesDesc,
  registerStrategy,
  type SchedTarget,
  type ScheduleInput,
  type ScheduleResult,
  type Strategy,
} from "./strategy.ts";

/** The highest shard is drained only when its targets fit elsewhere below this share of budget (hysteresis). */
const DRAIN_FILL = 0.8;

interface Bin {
  readonly id: number;
  readonly budget: number;
  readonly targets: SchedTarget[];
  used: number;
  /** Holds one target larger than any budget, or is unavailable: it takes nothing else. */
  dedicated: boolean;
  /** A down shard keeps its id (the ones above must not shift), so it is never dropped as empty. */
  unavailable?: boolean;
}

function room(b: Bin): number {
  return b.budget - b.used;
}

/** The bin holds another part of the same split target. */
function clash(b: Bin, t: SchedTarget): boolean {
  return t.group !== undefined && b.targets.some((x) => x.group === t.group);
}

/**
 * The default: a target stays where it is; new targets go to the shard with the most room;
 * an over-budget shard sheds the fewest series that bring it under; a new shard is asked for
 * only when nothing fits; a target larger than a whole budget gets a shard of its own (and a
 * warning) instead of scaling up forever; the highest shard is drained when its targets fit
 * comfortably in the others, so the shard count can come down.
 */
export const seriesBalanced: Strategy = {
  name: "series-balanced",
  description: "balance measured series under each shard's budget, moving as little as possible (default)",
  schedule(input: ScheduleInput): ScheduleResult {
    const warnings: string[] = [];
    const byId = new Map(input.targets.map((t) => [t.id, t]));
    const bins: Bin[] = input.shards.map((s) => ({
      id: s.id,
      budget: s.budget,
      targets: [],
      used: 0,
      dedicated: s.unavailable === true,
      unavailable: s.unavailable === true,
    }));
    const placed = new Set<string>();
    const origin = new Map<string, number>();
    for (const s of input.shards) {
      for (const id of s.targets) {
        const t = byId.get(id);
        if (!t || placed.has(id)) continue; // gone, or listed twice: keep the first
        placed.add(id);
        origin.set(id, s.id);
        const bin = bins[s.id]!;
        if (bin.unavailable || clash(bin, t)) {
          placed.delete(id); // goes where there is room, like a new target
          continue;
        }
        bin.targets.push(t);
        bin.used += t.series;
      }
    }
    const pending: SchedTarget[] = input.targets.filter((t) => !placed.has(t.id));

    // Over-budget shards shed the fewest series that bring them under (a lone giant stays).
    for (const bin of bins) {
      if (bin.used <= bin.budget || bin.targets.length <= 1) {
        if (bin.targets.length === 1 && bin.used > bin.budget) bin.dedicated = true;
        continue;
      }
      for (const t of shed(bin.targets, bin.budget)) {
        bin.targets.splice(bin.targets.indexOf(t), 1);
        bin.used -= t.series;
        pending.push(t);
      }
      if (bin.targets.length === 1 && bin.used > bin.budget) bin.dedicated = true;
    }

    const newBin = (): Bin | undefined => {
      if (bins.length >= input.maxShards) return undefined;
      const bin: Bin = { id: bins.length, budget: input.budget, targets: [], used: 0, dedicated: false };
      bins.push(bin);
      return bin;
    };
    pending.sort(bySeriesDesc);
    for (const t of pending) {
      const open = bins.filter((b) => !b.dedicated && !clash(b, t));
      const fit = open.filter((b) => room(b) >= t.series).sort((a, b) => room(b) - room(a) || a.id - b.id)[0];
      if (fit) {
        fit.targets.push(t);
        fit.used += t.series;
        continue;
      }
      const giant = t.series > input.budget;
      const empty = giant ? open.find((b) => b.targets.length === 0) : undefined;
      const fresh = empty ?? newBin();
      if (fresh) {
        fresh.targets.push(t);
        fresh.used += t.series;
        if (giant) {
          fresh.dedicated = true;
          warnings.push(
            `target ${t.id} has ${t.series} series, more than a shard's budget of ${input.budget}: it gets a shard of its own`,
          );
        }
        continue;
      }
      // At --shards.max (>= 1): the target is still scraped, on the shard with the most room.
      const up = bins.filter((b) => !b.unavailable && !clash(b, t));
      const candidates = open.length > 0 ? open : up.length > 0 ? up : bins;
      const target = [...candidates].sort((a, b) => room(b) - room(a) || a.id - b.id)[0]!;
      target.targets.push(t);
      target.used += t.series;
      warnings.push(
        `no room for target ${t.id} (${t.series} series) below budget within --shards.max ${input.maxShards}: shard ${target.id} goes over budget`,
      );
    }

    // Drain and drop from the top until nothing more can go: the result is a fixed point, so
    // the next round with nothing changed moves nothing.
    for (;;) {
      while (
        bins.length > input.minShards &&
        bins[bins.length - 1]!.targets.length === 0 &&
        !bins[bins.length - 1]!.unavailable
      )
        bins.pop();
      if (!drainHighest(bins, input.minShards)) break;
    }
    while (bins.length < input.minShards)
      bins.push({ id: bins.length, budget: input.budget, targets: [], used: 0, dedicated: false });

    let movedSeries = 0;
    const assignment = bins.map((b) => {
      for (const t of b.targets) {
        const from = origin.get(t.id);
        if (from !== undefined && from !== b.id) movedSeries += t.series;
      }
      return b.targets.map((t) => t.id).sort();
    });
    return { assignment, desiredShards: bins.length, movedSeries, warnings };
  },
};

/**
 * The fewest series to remove so that what stays fits `budget`: the larger of the kept sets
 * that fit, found by subset-sum over the series (exact while budget × targets is small, else
 * on series rounded up to a grid, which never overfills), compared with a greedy pick
 * (smallest single target that covers the excess, else the largest below it), the better
 * one taken. A target larger than the whole budget either leaves alone or stays alone,
 * whichever moves fewer series.
 */
function shed(targets: readonly SchedTarget[], budget: number): SchedTarget[] {
  const sorted = [...targets].sort(bySeriesDesc);
  const used = sorted.reduce((n, t) => n + t.series, 0);
  const giant = sorted[0]!;
  if (giant.series > budget) {
    const others = sorted.slice(1);
    const othersSeries = used - giant.series;
    // It stays dedicated if the others go; or it goes (to a shard of its own) and they stay, if they fit.
    return othersSeries <= budget && giant.series < othersSeries ? [giant] : others;
  }
  const candidates = [greedyShed(sorted, used - budget), knapsackShed(sorted, budget)];
  const cost = (c: SchedTarget[]) => c.reduce((n, t) => n + t.series, 0);
  return candidates.sort((a, b) => cost(a) - cost(b) || a.length - b.length)[0]!;
}

function greedyShed(sorted: readonly SchedTarget[], excess: number): SchedTarget[] {
  const out: SchedTarget[] = [];
  let left = excess;
  const rest = [...sorted];
  while (left > 0 && rest.length > 1) {
    const cover = [...rest].reverse().find((t) => t.series >= left);
    const pick = cover ?? rest[0]!;
    out.push(pick);
    rest.splice(rest.indexOf(pick), 1);
    left -= pick.series;
  }
  return out;
}

/** Cells of the subset-sum table, bounded so that a large shard costs milliseconds, not seconds. */
const KNAPSACK_CELLS = 1_000_000;

/** Keeps the subset with the most series that fits `budget`; returns the rest (to shed). */
function knapsackShed(sorted: readonly SchedTarget[], budget: number): SchedTarget[] {
  const n = sorted.length;
  const width = Math.max(1, Math.min(budget, Math.floor(KNAPSACK_CELLS / n)));
  const grid = budget / width;
  const size = sorted.map((t) => Math.ceil(t.series / grid));
  // by[s] = the index of the item that first reached kept sum s (−1: unreached; s = 0 is the empty set).
  const by = new Int32Array(width + 1).fill(-1);
  const reached = new Uint8Array(width + 1);
  reached[0] = 1;
  for (let i = 0; i < n; i++) {
    const w = size[i]!;
    for (let s = width; s >= w; s--) {
      if (!reached[s] && reached[s - w]) {
        reached[s] = 1;
        by[s] = i;
      }
    }
  }
  let best = width;
  while (!reached[best]) best--;
  const keep = new Set<number>();
  // Items are recorded in the order they were added, so walking back takes each at most once.
  for (let s = best; s > 0; s -= size[by[s]!]!) keep.add(by[s]!);
  return sorted.filter((_, i) => !keep.has(i));
}

/** Moves the highest shard's targets into the others when they all fit below DRAIN_FILL of budget. */
function drainHighest(bins: Bin[], minShards: number): boolean {
  if (bins.length <= minShards) return false;
  const last = bins[bins.length - 1]!;
  if (last.targets.length === 0 || last.dedicated) return false;
  const others = bins.slice(0, -1).filter((b) => !b.dedicated);
  const plan = new Map<SchedTarget, Bin>();
  const used = new Map(others.map((b) => [b, b.used]));
  const taken = (b: Bin, t: SchedTarget) =>
    clash(b, t) || [...plan].some(([p, to]) => to === b && p.group !== undefined && p.group === t.group);
  for (const t of [...last.targets].sort(bySeriesDesc)) {
    const fit = others
      .filter((b) => used.get(b)! + t.series <= b.budget * DRAIN_FILL && !taken(b, t))
      .sort((a, b) => used.get(a)! - used.get(b)! || a.id - b.id)[0];
    if (!fit) return false;
    plan.set(t, fit);
    used.set(fit, used.get(fit)! + t.series);
  }
  for (const [t, b] of plan) {
    b.targets.push(t);
    b.used += t.series;
  }
  last.targets.length = 0;
  last.used = 0;
  return true;
}

registerStrategy(seriesBalanced);
