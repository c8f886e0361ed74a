/**
 * The chart on the real one-node cluster (test/support/cluster.ts), timed as a user sees it:
 *
 * - from `helm install` to every target scraped: six demo exporters of 10045 series (the seed)
 *   are Ready in a namespace before the install; the clock runs from `helm install` until
 *   Thanos Query shows each scraped by exactly one shard and the global count is exact (the
 *   coordinator has scaled the example shards to 3 through /scale, the webhook injected them);
 * - from a new exporter pod to its first sample in Thanos Query: HELM_BENCH_NEW (3) more
 *   exporters, one at a time, each timed from its creation until a series of it is in Query.
 *   The shards are full (2 targets of 10045 in 30000), so the first needs a new shard (scale
 *   up, injected pod start, Query's endpoint list) and the second lands beside it.
 *
 * Needs root and `make images` like the cluster tests. `node bench/run.ts helm-install`.
 */
import { loadavg } from "node:os";
import { type Cluster, startCluster } from "../test/support/cluster.ts";
import { eventually } from "../test/support/eventually.ts";
import { CHART_DIR, createExporters, Release } from "../test/support/helm.ts";
import { writeResults } from "./lib.ts";

const NS = "monitoring";
const APPS = "apps";
const JOB = "kubernetes-pods";
const SERIES = 10045;
const FIRST = Array.from({ length: 6 }, (_, i) => `exporter-${i}`);
const NEW = Number(process.env.HELM_BENCH_NEW ?? 3);
const TIMEOUT = 600_000;

const cluster: Cluster = await startCluster({ images: ["promshard", "prometheus3", "thanos"] });
const release = new Release(cluster, "ps", NS);
const rows: { step: string; seconds: number; shards: number; loadavg1: number }[] = [];
/** A row: seconds since `startedMs`, the shards the coordinator runs then, the machine's load. */
const row = async (step: string, startedMs: number) => {
  const seconds = Number(((performance.now() - startedMs) / 1000).toFixed(1));
  const shards = await release.replicas(NS, release.object("shard"));
  rows.push({ step, seconds, shards, loadavg1: Number((loadavg()[0] ?? 0).toFixed(1)) });
};
try {
  await cluster.api("POST", "/api/v1/namespaces", {
    body: { metadata: { name: NS, labels: { "promshard.io/inject": "enabled" } } },
  });
  await cluster.api("POST", "/api/v1/namespaces", { body: { metadata: { name: APPS } } });
  await createExporters(cluster, APPS, FIRST);
  for (const name of FIRST) await cluster.waitForPodReady(APPS, name);

  const installed = performance.now();
  release.run(["install", release.name, CHART_DIR, "--set", "coordinator.interval=2s"]);
  await row("helm install returns (its certificate hook Job done)", installed);
  await eventually(
    "every target scraped once, the global count exact",
    async () => {
      await release.placement(JOB, FIRST);
      const [count] = await release.query(`count({job="${JOB}"})`);
      return Number(count?.value[1]) === FIRST.length * SERIES ? true : undefined;
    },
    TIMEOUT,
  );
  await row("helm install -> every target scraped once, global count exact (6 x 10045 series)", installed);

  for (let i = 0; i < NEW; i++) {
    const name = `exporter-new-${i}`;
    const created = performance.now();
    await createExporters(cluster, APPS, [name]);
    await eventually(
      `a sample of ${name} in Thanos Query`,
      async () => ((await release.query(`up{job="${JOB}",pod="${name}"}`)).length > 0 ? true : undefined),
      TIMEOUT,
    );
    await row(`new exporter ${i + 1} -> its first sample in Thanos Query`, created);
  }
  console.table(rows);
  console.log(`wrote ${writeResults("helm-install", { series: SERIES, exporters: FIRST.length, rows })}`);
  release.helm(["uninstall", release.name]);
} finally {
  await cluster.stop();
}
