/**
 * The global count through Thanos Query while a target moves between shards (the measurement
 * is test/thanos/moves.ts): evaluated every 250 ms across 8 moves on each Prometheus version,
 * promshard's Query flags (chain dedup, replica labels replica and shard) never give a count
 * below or above the true one. The same run shows the measurement can fail: Thanos's default
 * penalty dedup leaves holes, and without shard as a replica label the count doubles while
 * both shards hold the target. bench/thanos-moves.bench.ts prints the figures.
 */
import assert from "node:assert/strict";
import { after, describe, it, type TestContext } from "node:test";
import { ThanosStack } from "../support/thanos.ts";
import { bins } from "./fixtures.ts";
import { describeResult, measureMoves } from "./moves.ts";

const MOVES = 8;

describe("the global count through Thanos Query while a target moves between shards", () => {
  const stack = new ThanosStack();
  after(() => stack.stop());
  const versions = bins()
    .map((b) => b.version)
    .join(", ");

  it(
    `is exact at every evaluation with chain dedup over shard and replica (${versions})`,
    { timeout: 600_000 },
    (t: TestContext) =>
      stack.withLogs(async () => {
        // Both versions at once: independent shards and queriers, half the wall time.
        const results = await Promise.all(bins().map((bin) => measureMoves(stack, bin, { moves: MOVES })));
        for (const r of results) for (const line of describeResult(r)) t.diagnostic(line);
        for (const { version: v, tallies } of results) {
          assert.ok(tallies.chain.evaluations >= MOVES * 16, `${v}: too few evaluations to mean anything`);
          assert.equal(tallies.chain.errors, 0, `${v}: chain: query errors`);
          assert.equal(tallies.chain.below, 0, `${v}: chain: evaluations below the true count (a hole)`);
          assert.equal(tallies.chain.above, 0, `${v}: chain: evaluations above the true count (a double count)`);
          // The measurement sees holes where they exist: penalty dedup shows them.
          assert.ok(tallies.penalty.below > 0, `${v}: penalty dedup showed no hole; the measurement may be blind`);
          // Without shard as a replica label both copies count during the overlap.
          assert.ok(tallies.noShard.above > 0, `${v}: the count never doubled without the shard replica label`);
        }
      }),
  );
});
