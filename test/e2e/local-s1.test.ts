/**
 * S1, the seed's experiment, end to end with real processes: `promshard local` with the real
 * Prometheus, six demo targets of 10045 series each (10040 exposed + Prometheus's 5 scrape
 * series) and a 30000-series budget: exactly 3 shards with 2 targets each, each target
 * scraped by exactly one shard (waitSteady asks every shard's own Prometheus), and the
 * global endpoint counting 6 × 10045 series. Then a SIGTERM and a second one during the
 * shutdown (a process group signalled along with the process) leave no process behind.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { e2eBinaries, Scenario, SERIES_PER_TARGET, waitForCount } from "./harness.ts";

for (const bin of e2eBinaries("every")) {
  describe(`S1 with promshard local and Prometheus ${bin.version}`, () => {
    const s = new Scenario("s1", bin);
    after(() => s.close());

    it("6 targets of 10045 series, budget 30000: 3 shards of 2 targets; global count 6 × 10045", {
      timeout: 180_000,
    }, async () => {
      const { local, shards } = await s.startSteady(6);
      assert.deepEqual(
        shards.map((sh) => [sh.targets.length, sh.series, sh.budget]),
        [
          [2, 2 * SERIES_PER_TARGET, 30_000],
          [2, 2 * SERIES_PER_TARGET, 30_000],
          [2, 2 * SERIES_PER_TARGET, 30_000],
        ],
        "each target counts the 5 series Prometheus adds to what it exposes",
      );
      assert.equal(await waitForCount(local.globalUrl, 6 * SERIES_PER_TARGET, 60_000), 6 * SERIES_PER_TARGET);
    });

    it("SIGTERM twice: every process it started is stopped", { timeout: 60_000 }, async () => {
      await s.stopLocalLeavingNothing({ twice: true });
    });
  });
}
