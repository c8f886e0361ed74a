/**
 * S2 growth and S3 shrink (DESIGN §8) with `promshard local` and real Prometheus, one
 * sequence per Prometheus version: 6 demo targets of 10045 series, budget 30000 (3 shards of
 * 2), then 6 more (6 shards), then 6 removed (back to 3 shards).
 *
 * The shrink keeps one target of each of the 6 shards, so 3 of the remaining targets must
 * move down off shards 3-5 before those are stopped: their history before the move lives
 * only in the drained shards, and the gap checker asks the global endpoint for all of it
 * after they are gone (DESIGN: scaled away only after their data is safe).
 *
 * Both versions run here (see e2eBinaries); 2.42's 5 s file-SD throttle makes it slower.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  alive,
  assignmentOf,
  BudgetWatch,
  checkNoGaps,
  e2eBinaries,
  maxGapsByInstance,
  pidsOf,
  Scenario,
  SERIES_PER_TARGET,
  until,
  waitForCount,
  waitSteady,
} from "./harness.ts";

for (const bin of e2eBinaries("every")) {
  describe(`S2 growth and S3 shrink with promshard local and Prometheus ${bin.version}`, () => {
    const s = new Scenario("s2s3", bin);
    after(() => s.close());
    let originals: string[] = [];

    it("starts with 6 targets on 3 shards", { timeout: 150_000 }, async () => {
      await s.startSteady(6, {
        local: { flags: ["--scale-down.delay", "3s", "--scale-down.wait", "90s"] },
      });
      originals = s.demoInstances();
    });

    it("S2: 6 more targets -> 6 shards, none over budget, each scraped by one shard, no gaps", {
      timeout: 240_000,
    }, async (t) => {
      const local = s.requireLocal();
      const budgets = new BudgetWatch(() => local);
      const added = await s.addDemoTargets(6);
      // waitSteady: 6 shards, none over budget, each target up on exactly the shard the API names.
      await waitSteady(local, { instances: [...originals, ...added], shards: 6, timeoutMs: 180_000 });
      await budgets.stopAndAssert();
      await waitForCount(local.globalUrl, 12 * SERIES_PER_TARGET, 60_000);
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets());
      t.diagnostic(`max gap per target: ${maxGapsByInstance(rows)}`);
    });

    it("S3: 6 targets removed -> back to 3 shards; the remaining 6 have no gaps over their whole history", {
      timeout: 420_000,
    }, async (t) => {
      const local = s.requireLocal();
      const before = await local.shards();
      assert.equal(before.length, 6, "S2 left 6 shards");
      const keep = before.map((sh) => sh.targets[0]?.labels.instance);
      assert.ok(
        keep.every((i): i is string => typeof i === "string"),
        "every shard had a target",
      );
      const drainedPids = before.filter((sh) => sh.id >= 3).flatMap((sh) => Object.values(pidsOf(sh)));
      const removed = s.demoInstances().filter((i) => !keep.includes(i));
      const removedAt = Date.now();
      s.removeTargets(removed);

      const afterShards = await waitSteady(local, { instances: keep, shards: 3, timeoutMs: 360_000 });
      const was = assignmentOf(before);
      const moved = [...assignmentOf(afterShards)].filter(([i, ids]) => ids[0] !== was.get(i)?.[0]);
      t.diagnostic(
        `back to 3 shards ${((Date.now() - removedAt) / 1000).toFixed(1)} s after the removal; moved down: ` +
          moved.map(([i, ids]) => `${i} ${was.get(i)} -> ${ids}`).join(", "),
      );
      await until("the drained shards' processes are gone", () => (drainedPids.some(alive) ? undefined : true), {
        timeoutMs: 30_000,
      });
      await waitForCount(local.globalUrl, 6 * SERIES_PER_TARGET, 60_000);
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets(keep));
      t.diagnostic(`max gap per target: ${maxGapsByInstance(rows)}`);
    });
  });
}
