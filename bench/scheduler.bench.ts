/**
 * Scheduler time and memory for 1,000 / 10,000 / 100,000 targets over up to 200 shards:
 * a cold placement (nothing assigned yet) and a rebalance after 1% of the targets grew 3x.
 * Goal: 100,000 targets rebalanced in under 1 s. Baseline: consistent-hash (no measurement).
 */
import { getStrategy, type ScheduleInput } from "../src/scheduler/index.ts";
import { measure, printTable, writeResults } from "./lib.ts";

const sb = getStrategy("series-balanced")!;
const ch = getStrategy("consistent-hash")!;
const rows = [];
let seed = 42;
const rand = () => {
  seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

for (const n of [1_000, 10_000, 100_000]) {
  const targets = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, series: Math.round(50 + rand() * 5000) }));
  const total = targets.reduce((s, t) => s + t.series, 0);
  const budget = Math.ceil(total / 150); // about 150-200 shards
  const base: ScheduleInput = { targets, shards: [], budget, minShards: 1, maxShards: 200 };
  const cold = sb.schedule(base);
  const shards = cold.assignment.map((ids, id) => ({ id, budget, targets: ids }));
  const grown = targets.map((t, i) => (i % 100 === 0 ? { ...t, series: t.series * 3 } : t));
  const rebalance: ScheduleInput = { ...base, targets: grown, shards };
  const heapBefore = process.memoryUsage().heapUsed;
  const moved = sb.schedule(rebalance);
  const heapMiB = Math.max(0, (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20);
  const opts = { iterations: n >= 100_000 ? 3 : 10, warmup: 1 };
  rows.push(
    {
      ...(await measure(`consistent-hash ${n}`, () => ch.schedule({ ...base, minShards: cold.desiredShards }), opts)),
      shards: cold.desiredShards,
      "moved series": 0,
    },
    {
      ...(await measure(`series-balanced cold ${n}`, () => sb.schedule(base), opts)),
      shards: cold.desiredShards,
      "moved series": 0,
    },
    {
      ...(await measure(`series-balanced rebalance ${n}`, () => sb.schedule(rebalance), opts)),
      shards: moved.desiredShards,
      "moved series": moved.movedSeries,
      "grown series": grown.reduce((s, t, i) => s + (i % 100 === 0 ? t.series - targets[i]!.series : 0), 0),
      "heap MiB": heapMiB.toFixed(1),
    },
  );
}
printTable(rows);
writeResults("scheduler", rows);
