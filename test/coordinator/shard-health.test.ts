/**
 * The crash-loop rule on its own (DESIGN §6, failures without cascades): two restarts within
 * the window lower the effective budget to 80 % of the series held; a window without one
 * gives it back; without the scaler's count, a fall from healthy counts as a restart.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newShardMemory, observeShard } from "../../src/coordinator/shard-health.ts";

const policy = { budget: 30_000, crashWindowMs: 600_000 };

describe("shard health", () => {
  it("two restarts within the window lower the budget; a quiet window restores it", () => {
    const m = newShardMemory(policy.budget);
    m.heldSeries = 20_000;
    assert.deepEqual(observeShard(m, 1, true, ["a"], 0, 0, policy), []);
    observeShard(m, 1, true, ["a"], 1, 1_000, policy);
    assert.equal(m.effectiveBudget, 30_000, "one restart is not a loop");
    const events = observeShard(m, 1, true, ["a"], 2, 2_000, policy);
    assert.equal(m.effectiveBudget, 16_000);
    assert.equal(events[0]?.kind, "warning");
    assert.match(
      events[0]!.text,
      /restarted 2 times within 600s while holding 20000 series: its budget is lowered to 16000/,
    );
    assert.deepEqual(observeShard(m, 1, true, ["a"], 2, 2_000 + 600_000, policy), [
      { kind: "shard", text: "shard 1 stayed up for 600s: its budget is 30000 again" },
    ]);
    assert.equal(m.effectiveBudget, 30_000);
  });

  it("down and back are told once each; the last assignment is kept while down", () => {
    const m = newShardMemory(policy.budget);
    observeShard(m, 0, true, ["a", "b"], undefined, 0, policy);
    const down = observeShard(m, 0, false, [], undefined, 1_000, policy);
    assert.deepEqual(down, [{ kind: "shard", text: "shard 0 is down; it keeps its targets for the grace period" }]);
    assert.deepEqual(observeShard(m, 0, false, [], undefined, 2_000, policy), []);
    assert.deepEqual(m.lastAssigned, ["a", "b"]);
    assert.equal(m.crashes.length, 1, "without a restart count, going down counts as one");
    assert.deepEqual(observeShard(m, 0, true, ["a"], undefined, 4_500, policy), [
      { kind: "shard", text: "shard 0 is back after 3.5s" },
    ]);
  });
});
