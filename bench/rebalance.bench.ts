/**
 * Series moved per rebalance after targets grow, with the series-balanced scheduler.
 *
 * A steady state per scenario (at least 60 and 1,000 targets of 500-12,000 series,
 * log-uniform; budget 50,000): shard after shard filled with new targets to a seeded goal of
 * 70-90% of the budget, none above 90% (shards are filled whole, so there are a few more
 * targets than asked: 69 and 1,011); the first shard holds a target of exactly 10,000 series
 * and is filled to 80%. Then settled by the scheduler itself until a round moves nothing.
 * Then one change per case and one schedule():
 *   - the 10,000-series target grows to 25,000 (the example);
 *   - the largest target of the fullest shard grows ×2, and ×5;
 *   - 1% of the targets (at least one, seeded) grow ×3;
 *   - the 10,000-series target grows to 1.5 × the budget (larger than any shard).
 * Reported: series and targets moved, the lower bound the brief names (Σ used - budget over the
 * over-budget shards), the exact minimum (per over-budget shard, the smallest sum of targets
 * whose removal brings it under budget or leaves one target larger than the budget alone,
 * found by enumerating subsets), moved / bound, shards before and after, shards still over
 * budget after (must be 0 but for a lone giant), whether a second round moves anything, and the
 * median time of schedule(). consistent-hash with the same shard count ignores series: how many
 * of its shards are over budget before and after the same change.
 *
 * Deterministic: seeded RNG, no clock in the decisions.
 */
import { getStrategy, type SchedTarget, type ScheduleInput, type ScheduleResult } from "../src/scheduler/index.ts";
import { measure, writeResults } from "./lib.ts";

const sb = getStrategy("series-balanced")!;
const ch = getStrategy("consistent-hash")!;
const BUDGET = 50_000;
const MAX_SHARDS = 1_000;

/** mulberry32: small, seeded, good enough for picking sizes. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

type Assignment = readonly (readonly string[])[];

const input = (targets: readonly SchedTarget[], assignment: Assignment): ScheduleInput => ({
  targets,
  shards: assignment.map((ids, id) => ({ id, budget: BUDGET, targets: ids })),
  budget: BUDGET,
  minShards: 1,
  maxShards: MAX_SHARDS,
});

/** Shard loads of an assignment under the given sizes. */
function loads(assignment: Assignment, size: ReadonlyMap<string, number>): number[] {
  return assignment.map((ids) => ids.reduce((n, id) => n + size.get(id)!, 0));
}

/** Targets whose shard differs between two assignments (targets in only one of them excluded). */
function movedIds(a: Assignment, b: Assignment): string[] {
  const where = new Map<string, number>();
  a.forEach((ids, s) => {
    for (const id of ids) where.set(id, s);
  });
  const out: string[] = [];
  b.forEach((ids, s) => {
    for (const id of ids) if (where.has(id) && where.get(id) !== s) out.push(id);
  });
  return out;
}

const targetsMoved = (a: Assignment, b: Assignment) => movedIds(a, b).length;

/**
 * The least series that must leave one shard: the smallest subset sum whose removal leaves
 * at most the budget, or leaves a single target (one larger than a budget keeps a shard alone).
 */
function exactMinimum(sizes: readonly number[]): number {
  const used = sizes.reduce((a, b) => a + b, 0);
  if (used <= BUDGET || sizes.length <= 1) return 0;
  if (sizes.length > 22) return Number.NaN;
  let best = Number.POSITIVE_INFINITY;
  for (let mask = 1; mask < 1 << sizes.length; mask++) {
    let removed = 0;
    let kept = 0;
    for (let i = 0; i < sizes.length; i++) {
      if (mask & (1 << i)) removed += sizes[i]!;
      else kept++;
    }
    if (removed < best && (used - removed <= BUDGET || kept === 1)) best = removed;
  }
  return best;
}

interface Scenario {
  readonly n: number;
  readonly targets: SchedTarget[];
  readonly steady: Assignment;
}

function steadyState(wanted: number, seed: number): Scenario {
  const r = rng(seed);
  const draw = () => Math.round(500 * (12_000 / 500) ** r());
  const targets: SchedTarget[] = [];
  const packed: string[][] = [];
  // Shard by shard: each filled to a seeded goal of 70-90% of the budget (the first, which holds
  // the 10,000-series target, to 80%), no shard above 90%; until `wanted` targets exist.
  while (targets.length < wanted) {
    const goal = (packed.length === 0 ? 0.8 : 0.7 + 0.2 * r()) * BUDGET;
    const shard: string[] = [];
    let used = 0;
    while (used < goal) {
      let series = targets.length === 0 ? 10_000 : draw();
      if (used + series > 0.9 * BUDGET) series = Math.round(0.9 * BUDGET - used);
      if (series < 500) break;
      const id = `t${String(targets.length).padStart(4, "0")}`;
      targets.push({ id, series });
      shard.push(id);
      used += series;
    }
    packed.push(shard);
  }
  // The scheduler's own fixed point from there (it may drain the highest shard).
  let steady: Assignment = packed;
  for (let round = 0; ; round++) {
    const res = sb.schedule(input(targets, steady));
    if (res.movedSeries === 0 && targetsMoved(steady, res.assignment) === 0) break;
    if (round > 10) throw new Error(`${wanted} targets: no fixed point after 10 rounds`);
    steady = res.assignment;
  }
  return { n: targets.length, targets, steady };
}

interface Case {
  readonly name: string;
  grow(s: Scenario, size: Map<string, number>): void;
}

const cases: Case[] = [
  {
    name: "1 target 10k → 25k",
    grow: (_s, size) => size.set("t0000", 25_000),
  },
  ...[2, 5].map(
    (factor): Case => ({
      name: `largest target of the fullest shard ×${factor}`,
      grow: (s, size) => {
        const l = loads(s.steady, size);
        const fullest = s.steady[l.indexOf(Math.max(...l))]!;
        const id = [...fullest].sort((a, b) => size.get(b)! - size.get(a)! || (a < b ? -1 : 1))[0]!;
        size.set(id, size.get(id)! * factor);
      },
    }),
  ),
  {
    name: "1% of targets ×3",
    grow: (s, size) => {
      const r = rng(7);
      const ids = s.targets.map((t) => t.id);
      const k = Math.max(1, Math.round(ids.length / 100));
      for (let i = 0; i < k; i++) {
        const [id] = ids.splice(Math.floor(r() * ids.length), 1);
        size.set(id!, size.get(id!)! * 3);
      }
    },
  },
  {
    name: "1 target 10k → 1.5 × budget",
    grow: (_s, size) => size.set("t0000", 1.5 * BUDGET),
  },
];

const pct = (x: number) => `${Math.round((100 * x) / BUDGET)}%`;

async function main(): Promise<void> {
  const table = [];
  const data = [];
  for (const [wanted, seed] of [
    [60, 1],
    [1_000, 2],
  ] as const) {
    const s = steadyState(wanted, seed);
    const n = s.n;
    const base = new Map(s.targets.map((t) => [t.id, t.series]));
    const steadyLoads = loads(s.steady, base);
    // consistent-hash's own placement of the same targets over the same number of shards.
    const k = s.steady.length;
    const chInput = (targets: readonly SchedTarget[], assignment: Assignment): ScheduleInput => ({
      ...input(targets, assignment),
      minShards: k,
      maxShards: k,
    });
    const chSteady = ch.schedule(chInput(s.targets, [])).assignment;
    const chOver = (a: Assignment, size: Map<string, number>) => loads(a, size).filter((u) => u > BUDGET).length;
    console.log(
      `${n} targets, budget ${BUDGET}: steady state ${k} shards, ${Math.round(steadyLoads.reduce((a, b) => a + b, 0) / k)} series per shard on average, fill ${pct(Math.min(...steadyLoads))}-${pct(Math.max(...steadyLoads))}; ` +
        `consistent-hash over ${k} shards: ${chOver(chSteady, base)} over budget before any growth`,
    );
    for (const c of cases) {
      const size = new Map(base);
      c.grow(s, size);
      const grown = s.targets.map((t) => ({ id: t.id, series: size.get(t.id)! }));
      const before = loads(s.steady, size);
      const over = before.map((u, i) => ({ u, i })).filter(({ u, i }) => u > BUDGET && s.steady[i]!.length > 1);
      const bound = over.reduce((n, { u }) => n + u - BUDGET, 0);
      const exact = over.reduce((n, { i }) => n + exactMinimum(s.steady[i]!.map((id) => size.get(id)!)), 0);
      const rebalance = input(grown, s.steady);
      const res: ScheduleResult = sb.schedule(rebalance);
      const after = loads(res.assignment, size);
      const overAfter = after.filter((u, i) => u > BUDGET && res.assignment[i]!.length > 1).length;
      const second = sb.schedule(input(grown, res.assignment));
      const moved = movedIds(s.steady, res.assignment);
      const time = await measure(c.name, () => sb.schedule(rebalance), {
        iterations: n >= 1_000 ? 30 : 300,
        warmup: 5,
      });
      const chAfter = ch.schedule(chInput(grown, chSteady));
      const row = {
        targets: n,
        case: c.name,
        "grown series": grown.reduce((a, t) => a + t.series, 0) - s.targets.reduce((a, t) => a + t.series, 0),
        "over-budget shards": over.length,
        "moved series": res.movedSeries,
        "moved targets": moved.length,
        "of them grown": moved.filter((id) => size.get(id) !== base.get(id)).length,
        "lower bound (used-budget)": bound,
        "moved / bound": bound === 0 ? (res.movedSeries === 0 ? "— (0/0)" : "∞") : (res.movedSeries / bound).toFixed(2),
        "exact min": exact,
        "moved / exact": exact === 0 ? (res.movedSeries === 0 ? "— (0/0)" : "∞") : (res.movedSeries / exact).toFixed(2),
        shards: `${k} → ${res.desiredShards}`,
        "max fill after": pct(Math.max(...after)),
        "over budget after": overAfter,
        "2nd round moves": second.movedSeries,
        "median ms": Number(time.medianMs.toPrecision(3)),
        "CH over budget before→after": `${chOver(chSteady, base)} → ${chOver(chAfter.assignment, size)}`,
        "CH max fill after": pct(Math.max(...loads(chAfter.assignment, size))),
      };
      table.push(row);
      data.push({ ...row, warnings: res.warnings, time });
    }
  }
  console.table(table);
  const path = writeResults("rebalance", { budget: BUDGET, rows: data });
  console.log(`results: ${path}`);
}

await main();
