import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { getStrategy, type ScheduleInput, type ScheduleResult, strategyNames } from "../../src/scheduler/index.ts";

const sb = getStrategy("series-balanced")!;

const targets = (...series: number[]) => series.map((s, i) => ({ id: `t${i}`, series: s }));
const input = (over: Partial<ScheduleInput> = {}): ScheduleInput => ({
  targets: [],
  shards: [],
  budget: 30_000,
  minShards: 1,
  maxShards: 200,
  ...over,
});
const seriesOf = (inp: ScheduleInput, r: ScheduleResult) =>
  r.assignment.map((ids) => ids.reduce((n, id) => n + inp.targets.find((t) => t.id === id)!.series, 0));

const inputArb = fc
  .record({
    series: fc.array(fc.integer({ min: 1, max: 40_000 }), { maxLength: 40 }),
    budget: fc.integer({ min: 5_000, max: 50_000 }),
    minShards: fc.integer({ min: 1, max: 3 }),
    current: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 40 }),
    shardCount: fc.integer({ min: 0, max: 6 }),
  })
  .map(({ series, budget, minShards, current, shardCount }) => {
    const ts = targets(...series);
    const shards = Array.from({ length: shardCount }, (_, id) => ({
      id,
      budget,
      targets: ts.filter((_, i) => (current[i] ?? -1) === id).map((t) => t.id),
    }));
    return input({ targets: ts, shards, budget, minShards, maxShards: 200 });
  });

/** One contract for every registered strategy. */
for (const name of strategyNames()) {
  const strategy = getStrategy(name)!;
  describe(`strategy ${name}: contract`, () => {
    it("every target is assigned exactly once, on a shard that is wanted", () => {
      fc.assert(
        fc.property(inputArb, (inp) => {
          const r = strategy.schedule(inp);
          const all = r.assignment.flat();
          assert.equal(new Set(all).size, all.length, "no target doubled");
          assert.deepEqual([...all].sort(), inp.targets.map((t) => t.id).sort(), "no target lost");
          assert.equal(r.assignment.length, r.desiredShards);
          assert.ok(r.desiredShards >= inp.minShards && r.desiredShards <= Math.max(inp.minShards, inp.maxShards));
        }),
      );
    });

    it("is deterministic", () => {
      fc.assert(fc.property(inputArb, (inp) => assert.deepEqual(strategy.schedule(inp), strategy.schedule(inp))));
    });

    it("an unchanged, balanced input moves nothing", () => {
      fc.assert(
        fc.property(inputArb, (inp) => {
          const first = strategy.schedule(inp);
          const again = strategy.schedule({
            ...inp,
            shards: first.assignment.map((ids, id) => ({ id, budget: inp.budget, targets: ids })),
          });
          assert.deepEqual(again.assignment, first.assignment);
          assert.equal(again.movedSeries, 0);
        }),
      );
    });
  });
}

describe("series-balanced", () => {
  it("the seed's experiment: 6 targets of 10045 series, budget 30000 -> 3 shards of 2", () => {
    const inp = input({ targets: targets(10045, 10045, 10045, 10045, 10045, 10045) });
    const r = sb.schedule(inp);
    assert.equal(r.desiredShards, 3);
    assert.deepEqual(
      r.assignment.map((a) => a.length),
      [2, 2, 2],
    );
  });

  it("no shard over budget when every target fits a budget", () => {
    fc.assert(
      fc.property(inputArb, (inp) => {
        const small = { ...inp, targets: inp.targets.filter((t) => t.series <= inp.budget) };
        const r = sb.schedule(small);
        for (const s of seriesOf(small, r)) assert.ok(s <= small.budget, `${s} > ${small.budget}`);
      }),
    );
  });

  it("targets on shards within budget never move, unless their shard is drained away from the top", () => {
    fc.assert(
      fc.property(inputArb, (inp) => {
        const r = sb.schedule(inp);
        const after = new Map(r.assignment.flatMap((ids, shard) => ids.map((id) => [id, shard] as const)));
        for (const s of inp.shards) {
          const used = s.targets.reduce((n, id) => n + inp.targets.find((t) => t.id === id)!.series, 0);
          if (used > s.budget || s.id >= r.desiredShards) continue;
          for (const id of s.targets) assert.equal(after.get(id), s.id, `target ${id} moved off shard ${s.id}`);
        }
      }),
    );
  });

  it("a target larger than a budget gets a shard of its own and a warning, not endless shards", () => {
    const inp = input({ targets: targets(100_000, 10, 20), budget: 30_000 });
    const r = sb.schedule(inp);
    assert.equal(r.desiredShards, 2);
    const giant = r.assignment.find((ids) => ids.includes("t0"))!;
    assert.deepEqual(giant, ["t0"]);
    assert.match(r.warnings.join(), /t0 has 100000 series, more than a shard's budget of 30000/);
    // Stable: the next round changes nothing.
    const again = sb.schedule({
      ...inp,
      shards: r.assignment.map((ids, id) => ({ id, budget: 30_000, targets: ids })),
    });
    assert.deepEqual(again.assignment, r.assignment);
  });

  it("a grown target (S4): the fewest series move and no shard stays over budget", () => {
    const ts = targets(10_000, 10_000, 10_000, 10_000, 10_000, 10_000);
    const shards = [0, 1, 2].map((id) => ({ id, budget: 30_000, targets: [`t${id * 2}`, `t${id * 2 + 1}`] }));
    const grown = ts.map((t) => (t.id === "t0" ? { ...t, series: 25_000 } : t));
    const r = sb.schedule(input({ targets: grown, shards }));
    for (const s of seriesOf(input({ targets: grown }), r)) assert.ok(s <= 30_000);
    assert.equal(r.movedSeries, 10_000, "t1 (10k) moves, not the 25k target");
  });

  it("sheds the fewest series: equal to the exact minimum found by trying every subset", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 2, maxLength: 12 }),
        fc.integer({ min: 5_000, max: 50_000 }),
        (series, budget) => {
          const ts = targets(...series).filter((t) => t.series <= budget);
          const used = ts.reduce((n, t) => n + t.series, 0);
          fc.pre(ts.length >= 2 && used > budget);
          // Shard 1 is empty with a budget that takes anything: only what shard 0 sheds counts.
          const r = sb.schedule(
            input({
              targets: ts,
              budget,
              shards: [
                { id: 0, budget, targets: ts.map((t) => t.id) },
                { id: 1, budget: used, targets: [] },
              ],
            }),
          );
          let exact = used;
          for (let mask = 0; mask < 1 << ts.length; mask++) {
            const moved = ts.reduce((n, t, i) => n + (mask & (1 << i) ? t.series : 0), 0);
            if (used - moved <= budget) exact = Math.min(exact, moved);
          }
          assert.equal(r.movedSeries, exact);
        },
      ),
    );
  });

  it("a target grown past a whole budget stays alone if its neighbours move fewer series", () => {
    const ts = targets(75_000, 10_000, 10_000, 10_000);
    const r = sb.schedule(input({ targets: ts, shards: [{ id: 0, budget: 30_000, targets: ts.map((t) => t.id) }] }));
    assert.deepEqual(r.assignment[0], ["t0"]);
    assert.equal(r.movedSeries, 30_000);
    assert.equal(r.warnings.length, 0, "it was not moved, so no new giant shard is asked for");
  });

  it("a shard down past its grace gets nothing; its targets go where there is room, and its place stays", () => {
    const ts = targets(10_000, 10_000, 10_000, 10_000);
    const r = sb.schedule(
      input({
        targets: ts,
        shards: [
          { id: 0, budget: 30_000, targets: ["t0"] },
          { id: 1, budget: 30_000, targets: ["t1", "t2"], unavailable: true },
          { id: 2, budget: 30_000, targets: ["t3"] },
        ],
      }),
    );
    assert.equal(r.desiredShards, 3);
    assert.deepEqual(r.assignment[1], []);
    for (const s of seriesOf(input({ targets: ts }), r)) assert.ok(s <= 30_000);
    assert.equal(r.movedSeries, 20_000);
  });

  it("at --shards.max nothing is left unscraped: the fullest fit goes over budget with a warning", () => {
    const r = sb.schedule(input({ targets: targets(20_000, 20_000, 20_000), maxShards: 2 }));
    assert.equal(r.desiredShards, 2);
    assert.equal(r.assignment.flat().length, 3);
    assert.match(r.warnings.join(), /--shards.max 2/);
  });

  it("drains shards from the top while their targets fit comfortably below, then asks for fewer shards", () => {
    const ts = targets(5_000, 5_000, 5_000);
    const shards = [0, 1, 2].map((id) => ({ id, budget: 30_000, targets: [`t${id}`] }));
    const r = sb.schedule(input({ targets: ts, shards }));
    assert.equal(r.desiredShards, 1);
    assert.equal(r.movedSeries, 10_000);
    assert.deepEqual(r.assignment.flat().sort(), ["t0", "t1", "t2"]);
  });

  it("does not drain into shards past 80% of budget (hysteresis)", () => {
    const ts = targets(20_000, 5_000);
    const shards = [0, 1].map((id) => ({ id, budget: 30_000, targets: [`t${id}`] }));
    assert.equal(sb.schedule(input({ targets: ts, shards })).desiredShards, 2);
  });

  it("keeps --shards.min even when fewer would do", () => {
    assert.equal(sb.schedule(input({ targets: targets(1), minShards: 3 })).desiredShards, 3);
  });
});

describe("consistent-hash", () => {
  it("adding a shard moves only targets that now rank it highest (about 1/n)", () => {
    const ch = getStrategy("consistent-hash")!;
    const ts = Array.from({ length: 1000 }, (_, i) => ({ id: `target-${i}`, series: 1 }));
    const three = ch.schedule(input({ targets: ts, minShards: 3, maxShards: 10 }));
    const four = ch.schedule(
      input({
        targets: ts,
        minShards: 4,
        maxShards: 10,
        shards: three.assignment.map((ids, id) => ({ id, budget: 1, targets: ids })),
      }),
    );
    assert.ok(four.movedSeries > 150 && four.movedSeries < 350, `moved ${four.movedSeries} of 1000`);
    for (const [shard, ids] of four.assignment.entries()) {
      if (shard === 3) continue;
      for (const id of ids) assert.ok(three.assignment[shard]!.includes(id), "a target only moves to the new shard");
    }
  });
});
