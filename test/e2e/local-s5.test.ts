/**
 * S5 (DESIGN §8): a shard dies. 6 targets on 3 shards (20090 of 30000 each); shard 1's
 * Prometheus is killed with SIGKILL four times, each time after it has recovered. Each time:
 * the restart time is measured (kill until the shard's Prometheus answers /-/ready again,
 * which includes the local scaler noticing the death), and every target of that shard must
 * be up again on the global endpoint (a sample with up == 1 stamped after the kill) within
 * two scrape intervals plus that restart time, whether the restarted shard or another one
 * scrapes it. Throughout, /api/v1/shards is polled every 500 ms and no shard may ever be
 * over its budget (the others have 9910 series of room, less than one target: a dead
 * shard's load must not be pushed onto them; a shard that keeps restarting may get a lower
 * effective budget, and what no longer fits on it goes to a new shard). The other shards
 * never restart, and their targets have no gaps. And the global view never answers a smaller
 * count: while the shard is down, `count` through it is an error (partial responses off),
 * else exactly 6 × 10045 (polled every 250 ms through all four kills).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  alive,
  BudgetWatch,
  COUNT_DEMO,
  checkNoGaps,
  describeShards,
  e2eBinaries,
  JOB,
  maxGapsByInstance,
  type PromshardLocal,
  pidsOf,
  query,
  queryValue,
  SCRAPE_INTERVAL_MS,
  Scenario,
  SERIES_PER_TARGET,
  until,
  waitSteady,
} from "./harness.ts";

const KILLS = 4;
const VICTIM = 1;

/** The time (ms) of the first `up == 1` sample of `instance` stamped after `afterMs`, if any. */
async function upAgainAt(promUrl: string, instance: string, afterMs: number): Promise<number | undefined> {
  const rangeS = Math.ceil((Date.now() - afterMs) / 1000) + 5;
  const result = await query(promUrl, `up{job="${JOB}",instance="${instance}"}[${rangeS}s]`);
  const times = result
    .flatMap((s) => s.values ?? [])
    .filter(([ts, v]) => v === "1" && ts * 1000 > afterMs)
    .map(([ts]) => Math.round(ts * 1000));
  return times.length > 0 ? Math.min(...times) : undefined;
}

/** Polls the shard's Prometheus /-/ready every 50 ms (its URL re-read from the API each second); the time it answers. */
async function readyAgainAt(local: PromshardLocal, id: number, url: string): Promise<number> {
  let current = url;
  let polls = 0;
  return until(
    `shard ${id}'s Prometheus ready again`,
    async () => {
      if (++polls % 20 === 0) current = (await local.shards()).find((sh) => sh.id === id)?.prometheusUrl ?? current;
      const res = await fetch(`${current}/-/ready`, { signal: AbortSignal.timeout(1000) });
      return res.ok ? Date.now() : undefined;
    },
    { timeoutMs: 60_000, everyMs: 50, context: () => local.tail() },
  );
}

/**
 * Polls `count` of the demo job through the global view every 250 ms until stopped: each
 * answer is exact, an error, or smaller (which would be a shard's data silently missing).
 */
function watchGlobalCount(globalUrl: string, want: number) {
  const seen = { exact: 0, errors: 0, smaller: [] as string[], lastError: "" };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const at = new Date().toISOString();
      try {
        const got = await queryValue(globalUrl, COUNT_DEMO);
        if (got === want) seen.exact++;
        else seen.smaller.push(`${at}: ${got}`);
      } catch (err) {
        seen.errors++;
        seen.lastError = (err as Error).message.slice(0, 200);
      }
      await sleep(250);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return seen;
    },
  };
}

for (const bin of e2eBinaries("newest")) {
  describe(`S5 a shard dies, with promshard local and Prometheus ${bin.version}`, () => {
    const s = new Scenario("s5", bin);
    after(() => s.close());

    it("starts with 6 targets on 3 shards", { timeout: 150_000 }, async () => {
      await s.startSteady(6, { local: { flags: ["--shard.down-grace", "10s"] } });
    });

    it(`shard ${VICTIM}'s Prometheus killed ${KILLS} times: its targets are back within 2 scrape intervals + restart time; no shard ever over budget`, {
      timeout: 420_000,
    }, async (t) => {
      const local = s.requireLocal();
      const instances = s.demoInstances();
      const first = await waitSteady(local, { instances, shards: 3, timeoutMs: 60_000 });
      const restartsBefore = new Map(first.map((sh) => [sh.id, sh.restarts]));
      const others = first.filter((sh) => sh.id !== VICTIM).flatMap((sh) => sh.targets.map((x) => x.labels.instance!));
      const checkFrom = Date.now();
      const budgets = new BudgetWatch(() => local);
      const failures: string[] = [];
      const global = watchGlobalCount(local.globalUrl, instances.length * SERIES_PER_TARGET);

      for (let kill = 1; kill <= KILLS; kill++) {
        // Not always 3 shards: a shard that keeps restarting gets a lower effective budget,
        // and what no longer fits goes to a new shard (never onto a full neighbour).
        const shards = await waitSteady(local, { instances, timeoutMs: 90_000 });
        const victim = shards.find((sh) => sh.id === VICTIM)!;
        const pid = pidsOf(victim).prometheus;
        assert.ok(alive(pid), `shard ${VICTIM}'s Prometheus pid ${pid} from /api/v1/shards is not running`);
        const its = victim.targets.map((x) => x.labels.instance!);
        if (kill === 1) assert.equal(its.length, 2, `shard ${VICTIM} holds 2 targets before the first kill`);

        const killedAt = Date.now();
        process.kill(pid, "SIGKILL");
        const restartMs = (await readyAgainAt(local, VICTIM, victim.prometheusUrl)) - killedAt;
        const allowedMs = 2 * SCRAPE_INTERVAL_MS + restartMs;
        const upAt = await until(
          `shard ${VICTIM}'s targets up again on the global endpoint after kill ${kill}`,
          async () => {
            const at = await Promise.all(its.map((i) => upAgainAt(local.globalUrl, i, killedAt)));
            return at.every((x) => x !== undefined) ? (at as number[]) : undefined;
          },
          { timeoutMs: 90_000, everyMs: 250, context: () => `${describeShards(shards)}\n${local.tail()}` },
        );
        const took = its.map((i, n) => `${i} after ${upAt[n]! - killedAt} ms`);
        t.diagnostic(
          `kill ${kill}: restart took ${restartMs} ms; allowed ${allowedMs} ms; up again: ${took.join(", ") || "(it held no target)"}`,
        );
        for (const [n, i] of its.entries())
          if (upAt[n]! - killedAt > allowedMs)
            failures.push(
              `kill ${kill}: ${i} up again ${upAt[n]! - killedAt} ms after the kill, allowed ${allowedMs} ms`,
            );
        await sleep(2 * SCRAPE_INTERVAL_MS);
      }

      await budgets.stopAndAssert();
      const seen = await global.stop();
      t.diagnostic(`global count through the kills: ${seen.exact} exact, ${seen.errors} errors (${seen.lastError})`);
      assert.deepEqual(seen.smaller, [], "the global view never answers a silently smaller count");
      assert.ok(seen.errors > 0, "while the shard was down, a global query said so");
      assert.deepEqual(failures, [], "targets back within two scrape intervals plus the restart time");
      const last = await waitSteady(local, { instances, timeoutMs: 90_000 });
      t.diagnostic(`after the kills:\n${describeShards(last)}`);
      for (const sh of last) {
        const want = (restartsBefore.get(sh.id) ?? 0) + (sh.id === VICTIM ? KILLS : 0);
        assert.equal(sh.restarts, want, `restarts of shard ${sh.id}\n${describeShards(last)}`);
      }
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets(others, checkFrom));
      t.diagnostic(`other shards' targets, max gap: ${maxGapsByInstance(rows)}`);
    });
  });
}
