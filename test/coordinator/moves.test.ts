import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { planMoves, type ShardReport } from "../../src/coordinator/moves.ts";

const report = (assigned: string[], scraped: string[] = [], healthy = true): ShardReport => ({
  assigned,
  scraped: new Set(scraped),
  healthy,
});

describe("gapless moves", () => {
  it("a moved target is on both shards until the new one has scraped it", () => {
    const live = new Set(["a", "b"]);
    const first = planMoves([["a"], ["b"]], [report(["a", "b"]), report([])], live);
    assert.deepEqual(first.push, [["a", "b"], ["b"]]);
    assert.deepEqual(first.overlapping, [{ id: "b", from: 0, to: 1 }]);
    const pending = planMoves([["a"], ["b"]], [report(["a", "b"], ["a", "b"]), report(["b"], [])], live);
    assert.deepEqual(pending.push, [["a", "b"], ["b"]], "assigned but not yet scraped: still on both");
    const done = planMoves([["a"], ["b"]], [report(["a", "b"], ["a", "b"]), report(["b"], ["b"])], live);
    assert.deepEqual(done.push, [["a"], ["b"]]);
    assert.deepEqual(done.overlapping, []);
  });

  it("a dead new shard never takes a target away from a live old one", () => {
    const plan = planMoves([[], ["x"]], [report(["x"], ["x"]), report(["x"], ["x"], false)], new Set(["x"]));
    assert.deepEqual(plan.push[0], ["x"]);
  });

  it("a shard being scaled away keeps its targets until they arrived elsewhere", () => {
    const plan = planMoves([["x"]], [report([]), report(["x"], ["x"])], new Set(["x"]));
    assert.deepEqual(plan.push, [["x"], ["x"]]);
  });

  it("targets gone from discovery go everywhere at once", () => {
    const plan = planMoves([[]], [report(["gone"], ["gone"])], new Set());
    assert.deepEqual(plan.push, [[]]);
  });

  it("property: every live target is pushed to its desired shard; nothing dead is pushed; nothing is on a shard it neither belongs to nor leaves", () => {
    const ids = ["a", "b", "c", "d", "e", "f"];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(0, 1, 2), { minLength: ids.length, maxLength: ids.length }),
        fc.array(fc.constantFrom(-1, 0, 1, 2), { minLength: ids.length, maxLength: ids.length }),
        fc.array(fc.boolean(), { minLength: ids.length, maxLength: ids.length }),
        fc.array(fc.boolean(), { minLength: ids.length, maxLength: ids.length }),
        (want, have, scraped, live) => {
          const desired = [0, 1, 2].map((s) => ids.filter((_, i) => want[i] === s));
          const reports = [0, 1, 2].map((s) =>
            report(
              ids.filter((_, i) => have[i] === s),
              ids.filter((_, i) => scraped[i]),
            ),
          );
          const liveSet = new Set(ids.filter((_, i) => live[i]));
          const plan = planMoves(desired, reports, liveSet);
          for (const [i, id] of ids.entries()) {
            assert.ok(plan.push[want[i]!]!.includes(id), `${id} pushed to its shard`);
            const on = plan.push.flatMap((p, s) => (p.includes(id) ? [s] : []));
            for (const s of on) assert.ok(s === want[i] || s === have[i], `${id} only on its new or old shard`);
            if (!liveSet.has(id)) assert.deepEqual(on, [want[i]], "dead targets are not kept on old shards");
          }
        },
      ),
    );
  });
});
