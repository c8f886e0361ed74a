/**
 * Bad inputs to `promshard local`, with 6 demo targets on 3 shards:
 * (a) the config file is overwritten with an invalid one (a relabel regex that does not
 *     compile): the last good config stays, targets keep being scraped without gaps,
 *     /api/v1/status reports the error naming the field; fixing the file recovers.
 *     A target added while the file is invalid needs a new shard, which must start with the
 *     last good config as well.
 * (b) a target that answers garbage (HTTP 200, not the exposition format) and one that
 *     accepts connections and never answers: both are still assigned to a shard (listed in
 *     /api/v1/targets with a shard, as in /api/v1/shards), down, with the error shown; the
 *     coordinator keeps working (a target added afterwards is placed and scraped) and the
 *     demo targets have no gaps.
 * Finally SIGTERM stops every process `promshard local` started.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  assignmentOf,
  type CoordinatorTarget,
  checkNoGaps,
  e2eBinaries,
  type LocalStatus,
  maxGapsByInstance,
  type PromshardLocal,
  SCRAPE_INTERVAL_MS,
  Scenario,
  until,
  waitSteady,
} from "./harness.ts";

const BAD_RELABEL = `  - {source_labels: [__address__], regex: "([", action: keep}`;

/** Waits until /api/v1/status says the last reload did (ok = true) or did not succeed. */
function configStatus(local: PromshardLocal, ok: boolean): Promise<LocalStatus> {
  return until(
    `/api/v1/status reports the last config reload ${ok ? "successful" : "failed"}`,
    async () => {
      const st = await local.status();
      if (st.config.lastReloadSuccessful !== ok || (st.config.error === null) !== ok)
        throw new Error(JSON.stringify(st.config));
      return st;
    },
    { timeoutMs: 30_000, context: () => local.tail() },
  );
}

for (const bin of e2eBinaries("newest")) {
  describe(`bad inputs, with promshard local and Prometheus ${bin.version}`, () => {
    const s = new Scenario("bad", bin);
    after(() => s.close());

    it("starts with 6 targets on 3 shards", { timeout: 150_000 }, async () => {
      await s.startSteady(6);
    });

    it("(a) an invalid config keeps the last good one, is reported naming the field; fixing it recovers", {
      timeout: 240_000,
    }, async (t) => {
      const local = s.requireLocal();
      const instances = s.demoInstances();
      const from = Date.now();
      await configStatus(local, true);
      s.writeConfig({ relabelConfigs: BAD_RELABEL });
      // Subtests, so that one failing check does not hide the others; the file is fixed in any case.
      try {
        const failed = await configStatus(local, false);
        t.diagnostic(`error reported: ${JSON.stringify(failed.config.error)}`);
        await t.test("the error is a string naming the field", () => {
          assert.equal(typeof failed.config.error, "string", `error: ${JSON.stringify(failed.config.error)}`);
          assert.match(failed.config.error!, /relabel_configs.*regex/);
        });
        await t.test("the targets keep being scraped, where they were", { timeout: 60_000 }, async () => {
          await sleep(4 * SCRAPE_INTERVAL_MS); // several control loops and scrapes on the bad file
          await waitSteady(local, { instances, shards: 3, timeoutMs: 30_000 });
        });
        // The 3 shards are full (2 × 10045 of 30000): this one needs a 4th shard, whose sidecar
        // must run the last good config too, not the invalid file on disk.
        await t.test("a target added meanwhile is scraped, on a new shard", { timeout: 90_000 }, async () => {
          await s.addDemoTargets(1);
          await waitSteady(local, { instances: s.demoInstances(), shards: 4, timeoutMs: 60_000 });
        });
      } finally {
        s.writeConfig();
      }
      await configStatus(local, true);
      await waitSteady(local, { instances: s.demoInstances(), timeoutMs: 90_000 });
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets(s.demoInstances(), from));
      t.diagnostic(`max gap per target: ${maxGapsByInstance(rows)}`);
    });

    it("(b) a garbage and a hanging target are assigned, down with their error; the coordinator keeps working", {
      timeout: 240_000,
    }, async (t) => {
      const local = s.requireLocal();
      const from = Date.now();
      const garbage = await s.startGarbageTarget();
      const hanging = await s.startHangingTarget();
      s.addTargets([garbage, hanging]);
      const bad = await until(
        "both listed in /api/v1/targets on a shard, down, with an error",
        async () => {
          const [targets, shards] = await Promise.all([local.targets(), local.shards()]);
          const api = assignmentOf(shards);
          const found: CoordinatorTarget[] = [];
          for (const instance of [garbage, hanging]) {
            const x = targets.find((a) => a.labels.instance === instance);
            if (!x) throw new Error(`${instance} not in /api/v1/targets`);
            if (!Number.isInteger(x.shard) || x.shard < 0 || x.shard >= shards.length)
              throw new Error(`${instance} has shard ${x.shard} of ${shards.length}`);
            if (JSON.stringify(api.get(instance)) !== JSON.stringify([x.shard]))
              throw new Error(
                `${instance}: shard ${x.shard} in /api/v1/targets, ${api.get(instance)} in /api/v1/shards`,
              );
            if (x.health !== "down" || !x.lastError) throw new Error(`${instance}: ${x.health}, "${x.lastError}"`);
            found.push(x);
          }
          return found;
        },
        { timeoutMs: 90_000, context: () => local.tail() },
      );
      for (const x of bad) t.diagnostic(`${x.labels.instance} on shard ${x.shard}: ${x.health}, "${x.lastError}"`);

      // Still working: a target added now is placed and scraped, and every demo target shows up.
      await s.addDemoTargets(1);
      const shards = await waitSteady(local, { instances: s.demoInstances(), timeoutMs: 120_000 });
      const api = assignmentOf(shards);
      const targets = await local.targets();
      for (const instance of s.demoInstances()) {
        const x = targets.find((a) => a.labels.instance === instance);
        assert.ok(x, `${instance} in /api/v1/targets`);
        assert.equal(x.health, "up", `${instance} health`);
        assert.deepEqual(
          [x.shard],
          api.get(instance),
          `${instance}: the same shard in /api/v1/targets and /api/v1/shards`,
        );
      }
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets(s.demoInstances(), from));
      t.diagnostic(`max gap per target: ${maxGapsByInstance(rows)}`);
    });

    it("SIGTERM stops every process it started", { timeout: 120_000 }, () => s.stopLocalLeavingNothing());
  });
}
