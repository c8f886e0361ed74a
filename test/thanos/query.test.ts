/**
 * Thanos Query over real shards (Prometheus 2.42 and 3.x, each with a Thanos sidecar):
 * - the global count is exact, and a second shard scraping the same target with external
 *   labels that differ only in a replica label is counted once (twice with dedup=false);
 * - an endpoint added to or removed from the --endpoint.sd-config-file is used or dropped
 *   within a measured time, which depends on --endpoint.info-timeout;
 * - with partial responses off, a shard that is down makes every query fail when its endpoint
 *   is strict; a non-strict endpoint is dropped and the answer is silently smaller; with
 *   partial responses on, the answer is smaller and carries a warning.
 */
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Endpoint } from "../../src/thanos/files.ts";
import { type QueryAnswer, type ThanosQuery, ThanosStack } from "../support/thanos.ts";
import { bins, JOB, type Shard, seriesOf, startExporters, startShard } from "./fixtures.ts";

const SERIES = 200;
const COUNT = `count({job="${JOB}"})`;

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`, { cause: last });
    await sleep(50);
  }
}

function outcome(a: QueryAnswer | Error): string {
  if (a instanceof Error) return `request failed: ${a.message}`;
  const value = a.body.data?.result?.[0]?.value[1];
  const warnings = a.body.warnings?.length ? ` warnings=${JSON.stringify(a.body.warnings)}` : "";
  const error = a.body.error ? ` ${a.body.errorType}: ${a.body.error}` : "";
  return `HTTP ${a.httpStatus} ${a.body.status}${value !== undefined ? ` value=${value}` : ""}${error}${warnings}`;
}

describe("Thanos Query over shards with sidecars", () => {
  const stack = new ThanosStack();
  const all = bins();
  const older = all[0]!;
  const newer = all.at(-1)!;
  let s0: Shard;
  let s1: Shard;
  let s0r: Shard;
  let q: ThanosQuery;
  let endpoints: Endpoint[];

  before(async () => {
    const [t1, t2] = await startExporters(stack, 2, SERIES);
    [s0, s1, s0r] = await Promise.all([
      startShard(stack, older, { shard: "0", replica: "0" }, [t1!]),
      startShard(stack, newer, { shard: "1", replica: "0" }, [t2!]),
      // Shard 0's second replica: the same target, external labels differing only in `replica`.
      startShard(stack, newer, { shard: "0", replica: "1" }, [t1!]),
    ]);
    endpoints = [s0, s1, s0r].map((s) => ({ address: s.sidecar.grpcAddress, strict: true }));
    q = await stack.query({ name: "query", endpoints });
  });
  after(() => stack.stop());

  it(`counts exactly over Prometheus ${older.version} and ${newer.version}, replicas once`, { timeout: 120_000 }, () =>
    stack.withLogs(async () => {
      const exact = seriesOf(2, SERIES);
      await until("the deduplicated global count", async () => ((await q.value(COUNT)) === exact ? true : undefined));
      // Without dedup the replica's copy of target 1 counts again: the replica label is what merges them.
      await until("the count without dedup", async () =>
        (await q.value(COUNT, { dedup: "false" })) === exact + seriesOf(1, SERIES) ? true : undefined,
      );
      const byShard = await q.query(`count by (shard, replica) ({job="${JOB}"})`, { dedup: "false" });
      assert.equal(byShard.body.data?.result.length, 3, outcome(byShard));
      // The deduplicated answer carries no replica label at all.
      const labels = await q.query(`count by (shard, replica) ({job="${JOB}"})`);
      assert.deepEqual(
        labels.body.data?.result.map((r) => r.metric),
        [{}],
        outcome(labels),
      );
      for (let i = 0; i < 20; i++) {
        assert.equal(await q.value(COUNT), exact);
        await sleep(100);
      }
    }),
  );

  it("sees endpoints come and go through the endpoint file", { timeout: 180_000 }, (t: TestContext) =>
    stack.withLogs(async () => {
      const one = seriesOf(1, SERIES);
      const two = seriesOf(2, SERIES);
      const measure = async (name: string, infoTimeout: string | undefined) => {
        const qd = await stack.query({
          name,
          endpoints: [endpoints[0]!],
          ...(infoTimeout ? { endpointInfoTimeout: infoTimeout } : {}),
        });
        await until(`${name}: shard 0 alone`, async () => ((await qd.value(COUNT)) === one ? true : undefined));
        const adds: number[] = [];
        const removes: number[] = [];
        for (let round = 0; round < 3; round++) {
          let t0 = Date.now();
          await qd.setEndpoints([endpoints[0]!, endpoints[1]!]);
          await until(
            `${name}: shard 1 added`,
            async () => ((await qd.value(COUNT)) === two ? true : undefined),
            30_000,
          );
          adds.push(Date.now() - t0);
          // Not in step with Thanos's timers: each round lands at another point of them.
          await sleep(700 + round * 900);
          t0 = Date.now();
          await qd.setEndpoints([endpoints[0]!]);
          await until(
            `${name}: shard 1 removed`,
            async () => ((await qd.value(COUNT)) === one ? true : undefined),
            30_000,
          );
          removes.push(Date.now() - t0);
          await sleep(500 + round * 1100);
        }
        await qd.stop();
        return { name, adds, removes };
      };
      const results = await Promise.all([
        measure("query, --endpoint.info-timeout=5s (default)", undefined),
        measure("query, --endpoint.info-timeout=1s", "1s"),
      ]);
      for (const r of results) t.diagnostic(`${r.name}: added after ${r.adds} ms, removed after ${r.removes} ms`);
      // The file is polled every 1s and endpoints are updated every info-timeout: a bound per setting.
      assert.ok(
        Math.max(...results[0]!.adds, ...results[0]!.removes) < 1_000 + 5_000 + 1_500,
        JSON.stringify(results[0]),
      );
      assert.ok(
        Math.max(...results[1]!.adds, ...results[1]!.removes) < 1_000 + 1_000 + 1_500,
        JSON.stringify(results[1]),
      );
    }),
  );

  it(
    "with partial responses off, a down shard fails the query where its endpoint is strict",
    { timeout: 120_000 },
    (t: TestContext) =>
      stack.withLogs(async () => {
        const one = seriesOf(1, SERIES);
        const loose = await stack.query({
          name: "query, non-strict",
          endpoints: endpoints.map((e) => ({ address: e.address })),
        });
        const partial = await stack.query({ name: "query, partial on", endpoints, partialResponse: true });
        const queriers = { strict: q, loose, partial };
        for (const x of [loose, partial]) {
          await until(`${x.name}: all shards`, async () =>
            (await x.value(COUNT)) === seriesOf(2, SERIES) ? true : undefined,
          );
        }
        const observe = async (stage: string, ms: number) => {
          const seen: Record<string, string[]> = { strict: [], loose: [], partial: [] };
          const since: Record<string, number[]> = { strict: [], loose: [], partial: [] };
          const t0 = Date.now();
          while (Date.now() < t0 + ms) {
            await Promise.all(
              Object.entries(queriers).map(async ([k, x]) => {
                const o = outcome(await x.query(COUNT).catch((e: Error) => e));
                const list = seen[k]!;
                if (list.at(-1) !== o) {
                  list.push(o);
                  since[k]!.push(Date.now() - t0);
                }
              }),
            );
            await sleep(250);
          }
          for (const [k, list] of Object.entries(seen)) {
            t.diagnostic(`${stage}, ${k}: ${list.map((o, i) => `[from ${since[k]![i]} ms] ${o}`).join(" -> ")}`);
          }
          return seen;
        };

        // Stage 1: shard 1's Prometheus is gone, its sidecar still answers.
        await s1.prom.stop();
        const promDown = await observe("shard 1's Prometheus down", 8_000);
        // Stage 2: the sidecar is gone too (the whole shard, as when its pod is deleted).
        await s1.sidecar.stop();
        const shardDown = await observe("shard 1's sidecar down too", 12_000);

        for (const seen of [promDown, shardDown]) {
          assert.ok(
            seen.strict!.every((o) => !o.startsWith("HTTP 200")),
            `strict + partial off never answers 200: ${seen.strict}`,
          );
          assert.ok(
            seen.partial!.every(
              (o) => o.startsWith("HTTP 200 success") && o.includes(`value=${one}`) && o.includes("warnings="),
            ),
            `partial on answers the smaller count with a warning: ${seen.partial}`,
          );
        }
        // The non-strict endpoint is dropped once its Info call fails: then a smaller count, no warning.
        assert.equal(shardDown.loose!.at(-1), `HTTP 200 success value=${one}`, `${shardDown.loose}`);
      }),
  );
});
