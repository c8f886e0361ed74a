/**
 * The hole a moving target leaves in the global count through Thanos Query, per Prometheus
 * version and dedup setting (the measurement is test/thanos/moves.ts: two shards with
 * sidecars, a 1 s scrape interval, `count` over the job every 250 ms across MOVES moves).
 * Rows: chain dedup over replica+shard (promshard's flags; the baseline: zero), Thanos's
 * default penalty dedup, chain without shard as a replica label (double counts), and chain
 * again with six moving targets that take SLOW_MS to answer a scrape: chain's argument (the
 * old shard's staleness marker is older than the new shard's newest sample) needs the new
 * shard's scrape to finish within 10% of the interval, so this row shows where it ends.
 *
 * MOVES=8 SLOW_MS=500 node bench/run.ts thanos-moves (the defaults; ~6 minutes).
 */

import { ThanosStack } from "../test/support/thanos.ts";
import { bins } from "../test/thanos/fixtures.ts";
import { describeResult, type MoveResult, measureMoves } from "../test/thanos/moves.ts";
import { writeResults } from "./lib.ts";

const MOVES = Number(process.env.MOVES ?? 8);
const SLOW_MS = Number(process.env.SLOW_MS ?? 500);

const rows: Record<string, string | number>[] = [];
const results: (MoveResult & { scrapeDelayMs: number })[] = [];
for (const bin of bins()) {
  for (const scrapeDelayMs of [0, SLOW_MS]) {
    // One version and one setting at a time: the figures are timings on a shared 2-core machine.
    const stack = new ThanosStack();
    try {
      // Slow targets: six at once, each with its own pair of scrape phases on the two shards.
      const r = await measureMoves(stack, bin, { moves: MOVES, scrapeDelayMs, moving: scrapeDelayMs > 0 ? 6 : 1 });
      for (const line of describeResult(r)) console.log(line);
      results.push({ ...r, scrapeDelayMs });
      for (const [dedup, t] of Object.entries(r.tallies)) {
        if (scrapeDelayMs > 0 && dedup !== "chain") continue;
        rows.push({
          prometheus: r.version,
          querier:
            dedup === "chain"
              ? "chain, replica+shard"
              : dedup === "penalty"
                ? "penalty, replica+shard"
                : "chain, replica",
          "moving targets": scrapeDelayMs > 0 ? 6 : 1,
          "target scrape ms": scrapeDelayMs,
          evaluations: t.evaluations,
          "below truth": t.below,
          "longest hole ms": t.longestHoleMs,
          "above truth": t.above,
          errors: t.errors,
        });
      }
    } finally {
      await stack.stop();
    }
  }
}
console.table(rows);
console.log(`wrote ${writeResults("thanos-moves", { moves: MOVES, pollMs: 250, scrapeIntervalS: 1, results })}`);
