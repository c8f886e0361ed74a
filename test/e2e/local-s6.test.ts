/**
 * S6 (DESIGN §8): the coordinator is killed. `promshard local` is SIGKILLed while a
 * rebalance is under way (6 targets on 3 shards, 6 targets added, killed at the first move
 * or scale event or change of shard count) and started again with the same flags and data
 * dir: it adopts the shard processes that kept running and finishes the rebalance (6 shards,
 * each of the 12 targets scraped by one), and nothing is lost. Then a plain SIGKILL and
 * restart in steady state: no target changes shard, no shard process is replaced, no move
 * happens, no gaps. Finally SIGTERM stops every process it started, adopted ones included.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  assignmentOf,
  checkNoGaps,
  e2eBinaries,
  maxGapsByInstance,
  pidsOf,
  Scenario,
  until,
  waitSteady,
} from "./harness.ts";

for (const bin of e2eBinaries("newest")) {
  describe(`S6 coordinator killed, with promshard local and Prometheus ${bin.version}`, () => {
    const s = new Scenario("s6", bin);
    after(() => s.close());

    it("starts with 6 targets on 3 shards", { timeout: 150_000 }, async () => {
      await s.startSteady(6);
    });

    it("SIGKILLed mid-rebalance and started again: the rebalance finishes (6 shards, 12 targets once each), no gaps", {
      timeout: 300_000,
    }, async (t) => {
      const local = s.requireLocal();
      const addedAt = Date.now();
      await s.addDemoTargets(6);
      const during = await until(
        "a move or scale-up under way",
        async () => {
          const [events, shards] = await Promise.all([local.events(), local.shards()]);
          const fresh = events.find((e) => (e.kind === "move" || e.kind === "scale") && Date.parse(e.at) >= addedAt);
          if (fresh) return `${fresh.kind} event "${fresh.text}" with ${shards.length} shards`;
          return shards.length !== 3 ? `${shards.length} shards` : undefined;
        },
        { timeoutMs: 90_000, everyMs: 100, context: () => local.tail() },
      );
      await local.signal("SIGKILL");
      t.diagnostic(`SIGKILLed ${Date.now() - addedAt} ms after adding 6 targets, during: ${during}`);

      await s.restartLocal();
      const shards = await waitSteady(local, { instances: s.demoInstances(), shards: 6, timeoutMs: 180_000 });
      assert.equal(shards.length, 6);
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets());
      t.diagnostic(`max gap per target: ${maxGapsByInstance(rows)}`);
    });

    it("a restart in steady state changes no target's shard and replaces no shard process", {
      timeout: 240_000,
    }, async (t) => {
      const local = s.requireLocal();
      const instances = s.demoInstances();
      const before = await waitSteady(local, { instances, shards: 6, timeoutMs: 60_000 });
      const pidsBefore = before.map(pidsOf);
      const killedAt = Date.now();
      await local.signal("SIGKILL");
      await s.restartLocal();
      await sleep(5000); // a few control loops of the new process
      const afterShards = await waitSteady(local, { instances, shards: 6, timeoutMs: 60_000 });
      assert.deepEqual(assignmentOf(afterShards), assignmentOf(before), "no target changed shard");
      assert.deepEqual(afterShards.map(pidsOf), pidsBefore, "the shard processes were adopted, not replaced");
      const moves = (await local.events()).filter((e) => e.kind === "move" && Date.parse(e.at) >= killedAt);
      assert.deepEqual(moves, [], "no move after the restart");
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets());
      t.diagnostic(`max gap per target over the whole scenario: ${maxGapsByInstance(rows)}`);
    });

    it("SIGTERM stops every process it started, the adopted ones included", { timeout: 120_000 }, () =>
      s.stopLocalLeavingNothing(),
    );
  });
}
