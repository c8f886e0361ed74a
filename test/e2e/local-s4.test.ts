/**
 * S4 (DESIGN §8): a target grows from 10045 to 25045 series. Before: 3 shards of 2 targets
 * (20090 of 30000 each). After the growth its shard holds 35090; no other shard has room for
 * a 10045-series target (20090 + 10045 > 30000), so one target has to go to a new shard, and
 * the fewest series moved is its 10045-series neighbour, not the grown target (25045). So:
 * exactly one target moves, the neighbour, 10045 series; nothing else changes shard.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  assignmentOf,
  checkNoGaps,
  DEMO_EXPOSED,
  describeShards,
  e2eBinaries,
  maxGapsByInstance,
  Scenario,
  SERIES_PER_TARGET,
  waitForCount,
  waitSteady,
} from "./harness.ts";

const GROWN_EXPOSED = 25_040;
const GROWN_SERIES = GROWN_EXPOSED + 5;

for (const bin of e2eBinaries("newest")) {
  describe(`S4 a target grows, with promshard local and Prometheus ${bin.version}`, () => {
    const s = new Scenario("s4", bin);
    after(() => s.close());

    it("starts with 6 targets on 3 shards", { timeout: 150_000 }, async () => {
      await s.startSteady(6);
    });

    it("a target grows to 25045 series: no shard over budget, only its neighbour (10045 series) moves, no gaps", {
      timeout: 240_000,
    }, async (t) => {
      const local = s.requireLocal();
      const before = await waitSteady(local, { instances: s.demoInstances(), shards: 3, timeoutMs: 60_000 });
      const [grown, neighbour] = before[0]!.targets.map((x) => x.labels.instance!);
      assert.ok(grown && neighbour, `shard 0 has two targets:\n${describeShards(before)}`);
      assert.equal(s.exporter(grown).series, DEMO_EXPOSED);
      await s.growTarget(grown, GROWN_EXPOSED);
      const afterShards = await waitSteady(local, { instances: s.demoInstances(), timeoutMs: 120_000 });

      const was = assignmentOf(before);
      const now = assignmentOf(afterShards);
      const moved = [...now].filter(([i, ids]) => ids[0] !== was.get(i)?.[0]).map(([i]) => i);
      const series = new Map(
        afterShards.flatMap((sh) => sh.targets.map((x) => [x.labels.instance!, x.series] as const)),
      );
      const movedSeries = moved.reduce((n, i) => n + (series.get(i) ?? 0), 0);
      t.diagnostic(
        `moved ${moved.length} target(s), ${movedSeries} series: ${moved.map((i) => `${i} ${was.get(i)} -> ${now.get(i)}`).join(", ")}`,
      );
      t.diagnostic(`after:\n${describeShards(afterShards)}`);
      assert.deepEqual(moved, [neighbour], `only the grown target's neighbour moves\n${describeShards(afterShards)}`);
      assert.ok(movedSeries < GROWN_EXPOSED, `moved ${movedSeries} series, fewer than the grown target's`);
      assert.equal(afterShards.length, 4, "one new shard for the neighbour");

      await waitForCount(local.globalUrl, 5 * SERIES_PER_TARGET + GROWN_SERIES, 60_000);
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets());
      t.diagnostic(`max gap per target: ${maxGapsByInstance(rows)}`);
    });
  });
}
