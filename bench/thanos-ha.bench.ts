/**
 * Two replica groups of one shard through Thanos Query: what each way of listing them costs
 * (docs/thanos.md, "HA replica groups"). TARGETS counters, each answering after a random delay
 * up to JITTER_MS, scraped every second by both groups (Prometheus 3.16, Thanos sidecars);
 * after RUN_S seconds, per querier: the targets whose deduplicated counter shows resets (it
 * never goes down), the samples a target has per 30 s, and what a query answers once one
 * group's sidecar is gone.
 * - both groups, chain dedup (promshard's flags for moves);
 * - both groups, penalty dedup (Thanos's default);
 * - one group per shard index (what `promshard query-endpoints` writes).
 *
 * TARGETS=12 JITTER_MS=300 RUN_S=60 node bench/run.ts thanos-ha   (~2 minutes)
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ThanosStack } from "../test/support/thanos.ts";
import { bins, startJitteryCounters, startShard } from "../test/thanos/fixtures.ts";
import { writeResults } from "./lib.ts";

const TARGETS = Number(process.env.TARGETS ?? 12);
const JITTER_MS = Number(process.env.JITTER_MS ?? 300);
const RUN_S = Number(process.env.RUN_S ?? 60);

const stack = new ThanosStack();
const rows: Record<string, string | number>[] = [];
try {
  const targets = await startJitteryCounters(stack, TARGETS, JITTER_MS);
  const bin = bins().at(-1)!;
  const a = await startShard(stack, bin, { shard: "0", replica: "0" }, targets);
  const b = await startShard(stack, bin, { shard: "0", replica: "1" }, targets);
  const strict = (c: { grpcAddress: string }) => ({ address: c.grpcAddress, strict: true });
  const queriers = {
    "both groups, chain": await stack.query({ name: "chain", endpoints: [strict(a.sidecar), strict(b.sidecar)] }),
    "both groups, penalty": await stack.query({
      name: "penalty",
      endpoints: [strict(a.sidecar), strict(b.sidecar)],
      dedupFunc: "penalty",
    }),
    "one group per index": await stack.query({ name: "one", endpoints: [strict(a.sidecar)] }),
  };
  await sleep(RUN_S * 1000);
  const values = async (q: (typeof queriers)[keyof typeof queriers], expr: string) =>
    ((await q.query(expr)).body.data?.result ?? []).map((r) => Number(r.value[1]));
  for (const [name, q] of Object.entries(queriers)) {
    const resets = await values(q, "resets(ha_ms_total[5m])");
    const samples = await values(q, "count_over_time(ha_ms_total[30s])");
    rows.push({
      querier: name,
      "targets with resets": `${resets.filter((r) => r > 0).length} / ${resets.length}`,
      "resets in all": resets.reduce((s, r) => s + r, 0),
      "samples per 30 s": Math.round(samples.reduce((s, r) => s + r, 0) / Math.max(1, samples.length)),
    });
  }
  // Group 1's sidecar gone: the queriers listing both have a strict endpoint down.
  await b.sidecar.stop();
  await sleep(2_000);
  for (const [i, q] of Object.values(queriers).entries()) {
    const answer = await q.query("count(ha_ms_total)");
    rows[i]!["one group down: count"] =
      answer.httpStatus === 200 ? String(answer.body.data?.result?.[0]?.value?.[1]) : `HTTP ${answer.httpStatus}`;
  }
} finally {
  await stack.stop();
}
console.table(rows);
console.log(
  `wrote ${writeResults("thanos-ha", { targets: TARGETS, jitterMs: JITTER_MS, runSeconds: RUN_S, scrapeIntervalS: 1, rows })}`,
);
