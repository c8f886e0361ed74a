import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  getStrategy,
  parsePartId,
  partId,
  partsFor,
  type ScheduleInput,
  scheduleWithSplits,
  strategyNames,
  targetOf,
} from "../../src/scheduler/index.ts";

const sb = getStrategy("series-balanced")!;
const BUDGET = 30_000;

const input = (over: Partial<ScheduleInput> = {}): ScheduleInput => ({
  targets: [],
  shards: [],
  budget: BUDGET,
  minShards: 1,
  maxShards: 200,
  ...over,
});

/** Series per shard, a part counted at its planned share. */
function load(inp: ScheduleInput, assignment: readonly (readonly string[])[]): number[] {
  const series = new Map(inp.targets.map((t) => [t.id, t.series]));
  return assignment.map((ids) =>
    ids.reduce((n, id) => {
      const p = parsePartId(id);
      return n + (p ? Math.ceil(series.get(p.target)! / p.parts) : series.get(id)!);
    }, 0),
  );
}

const inputArb = fc
  .record({
    series: fc.array(fc.oneof(fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 30_001, max: 200_000 })), {
      maxLength: 30,
    }),
    current: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 30 }),
    shardCount: fc.integer({ min: 0, max: 6 }),
  })
  .map(({ series, current, shardCount }) => {
    const targets = series.map((s, i) => ({ id: `t${i}`, series: s }));
    const shards = Array.from({ length: shardCount }, (_, id) => ({
      id,
      budget: BUDGET,
      targets: targets.filter((_, i) => (current[i] ?? -1) === id).map((t) => t.id),
    }));
    return input({ targets, shards });
  });

describe("split: parts of a target bigger than a shard", () => {
  it("part ids name their target, part and count", () => {
    assert.equal(partId("abc", 1, 3), "abc#1/3");
    assert.deepEqual(parsePartId("abc#1/3"), { target: "abc", part: 1, parts: 3 });
    assert.equal(parsePartId("abc"), undefined);
    assert.equal(targetOf("abc#2/4"), "abc");
    assert.equal(targetOf("abc"), "abc");
  });

  it("partsFor: whole while it fits, parts at 90 % of budget, kept while they fit, capped by --shards.max", () => {
    assert.equal(partsFor(30_000, BUDGET, 1, 200), 1);
    assert.equal(partsFor(30_001, BUDGET, 1, 200), 2);
    assert.equal(partsFor(90_000, BUDGET, 1, 200), 4, "3 × budget: 4 parts of 22,500");
    // Grown past what its parts hold: more parts; shrunk a little: the same; shrunk a lot: fewer.
    assert.equal(partsFor(95_000, BUDGET, 3, 200), 4);
    assert.equal(partsFor(60_000, BUDGET, 3, 200), 3, "two parts would be 100 %: three stay");
    assert.equal(partsFor(40_000, BUDGET, 3, 200), 2, "two parts of 66 %");
    assert.equal(partsFor(25_000, BUDGET, 2, 200), 2, "whole it would fill 83 %: the split stays");
    assert.equal(partsFor(20_000, BUDGET, 2, 200), 1);
    assert.equal(partsFor(10_000_000, BUDGET, 1, 12), 12, "never more parts than shards may exist");
  });

  it("a target of 3 × budget: 4 parts on 4 distinct shards, none over budget, then a fixed point", () => {
    const inp = input({
      targets: [
        { id: "giant", series: 3 * BUDGET },
        { id: "small", series: 5_000 },
      ],
    });
    const r = scheduleWithSplits(sb, inp);
    assert.deepEqual([...r.parts], [["giant", 4]]);
    assert.equal(r.desiredShards, 4);
    for (const [i, ids] of r.assignment.entries())
      assert.equal(ids.filter((id) => targetOf(id) === "giant").length, 1, `shard ${i} holds one part`);
    for (const n of load(inp, r.assignment)) assert.ok(n <= BUDGET, `${n} series fit the budget`);
    const again = scheduleWithSplits(sb, {
      ...inp,
      shards: r.assignment.map((targets, id) => ({ id, budget: BUDGET, targets })),
    });
    assert.deepEqual(again.assignment, r.assignment);
    assert.equal(again.movedSeries, 0);
  });

  it("a giant at --shards.max: split over every shard with a warning, no endless scale-up", () => {
    const inp = input({ targets: [{ id: "huge", series: 100 * BUDGET }], maxShards: 5 });
    const r = scheduleWithSplits(sb, inp);
    assert.equal(r.desiredShards, 5);
    assert.ok(r.assignment.every((ids) => ids.length === 1));
    assert.match(r.warnings.join("\n"), /split over --shards.max 5 shards/);
    const again = scheduleWithSplits(sb, {
      ...inp,
      shards: r.assignment.map((targets, id) => ({ id, budget: BUDGET, targets })),
    });
    assert.equal(again.desiredShards, 5);
    assert.equal(again.movedSeries, 0);
  });

  for (const name of strategyNames()) {
    const strategy = getStrategy(name)!;
    it(`${name}: every item once, whole targets or all their parts, parts apart`, () => {
      fc.assert(
        fc.property(inputArb, (inp) => {
          const r = scheduleWithSplits(strategy, inp);
          const all = r.assignment.flat();
          assert.equal(new Set(all).size, all.length, "no item doubled");
          const expected = inp.targets.flatMap((t) => {
            const k = r.parts.get(t.id);
            return k === undefined ? [t.id] : Array.from({ length: k }, (_, i) => partId(t.id, i, k));
          });
          assert.deepEqual([...all].sort(), expected.sort(), "no item lost, no stale part kept");
          for (const t of inp.targets) if (t.series > inp.budget) assert.ok(r.parts.has(t.id), `${t.id} is split`);
          if (name === "series-balanced") {
            for (const ids of r.assignment) {
              const groups = ids.map(targetOf);
              assert.equal(new Set(groups).size, groups.length, "no two parts of one target on one shard");
            }
            for (const n of load(inp, r.assignment)) assert.ok(n <= inp.budget, `${n} series over the budget`);
          }
        }),
      );
    });
  }

  it("series-balanced: an unchanged input with splits moves nothing", () => {
    fc.assert(
      fc.property(inputArb, (inp) => {
        const first = scheduleWithSplits(sb, inp);
        const again = scheduleWithSplits(sb, {
          ...inp,
          shards: first.assignment.map((targets, id) => ({ id, budget: inp.budget, targets })),
        });
        assert.deepEqual(again.assignment, first.assignment);
        assert.equal(again.movedSeries, 0);
      }),
    );
  });
});
