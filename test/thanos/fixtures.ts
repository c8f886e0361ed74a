/**
 * What the test/thanos files share: shards (a real Prometheus with external labels, scraping
 * demo exporters through file_sd) and their sidecars, started into a ThanosStack.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startDemoExporter } from "../../src/demo/exporter.ts";
import {
  type PrometheusBinary,
  prometheusBinaries,
  type RunningPrometheus,
  startPrometheus,
} from "../support/prometheus.ts";
import type { Component, ThanosStack } from "../support/thanos.ts";

export const JOB = "demo";
/** Short, so that a move (and its end-of-run staleness markers, ~2.1 intervals late) is quick to watch. */
export const SCRAPE_INTERVAL_S = 1;

/** Debian's 2.42 and the 3.x build: PROMSHARD_PROMETHEUS_BINS in the order it lists them. */
export function bins(): PrometheusBinary[] {
  return prometheusBinaries();
}

export interface Shard {
  prom: RunningPrometheus;
  sidecar: Component;
  labels: Record<string, string>;
  /** Rewrites targets.json (the shard's file_sd) to exactly these host:port targets. */
  setTargets(targets: readonly string[]): Promise<void>;
}

export function targetsJson(targets: readonly string[]): string {
  return JSON.stringify(targets.length > 0 ? [{ targets: [...targets], labels: {} }] : []);
}

export function shardConfig(labels: Record<string, string>): string {
  return [
    "global:",
    `  scrape_interval: ${SCRAPE_INTERVAL_S}s`,
    `  external_labels: ${JSON.stringify(labels)}`,
    "scrape_configs:",
    `  - job_name: ${JOB}`,
    "    file_sd_configs: [{files: [targets.json]}]",
    "",
  ].join("\n");
}

/**
 * A Prometheus with these external labels and targets, and a Thanos sidecar beside it; with
 * `bucketDir`, the sidecar ships finished blocks to that FILESYSTEM bucket.
 */
export async function startShard(
  stack: ThanosStack,
  bin: PrometheusBinary,
  labels: Record<string, string>,
  targets: readonly string[],
  opts: { args?: string[]; bucketDir?: string } = {},
): Promise<Shard> {
  const name = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  // A sidecar that uploads waits (forever, retrying) for Prometheus to run with equal min and
  // max block durations, so that Prometheus never compacts a block before it was shipped.
  const args = [
    ...(opts.bucketDir ? ["--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"] : []),
    ...(opts.args ?? []),
  ];
  const prom = await startPrometheus(bin, {
    config: shardConfig(labels),
    files: { "targets.json": targetsJson(targets) },
    ...(args.length > 0 ? { args } : {}),
  });
  stack.track(`prometheus ${bin.version} {${name}}`, prom);
  const sidecar = await stack.sidecar(prom, {
    name: `sidecar {${name}}`,
    ...(opts.bucketDir ? { bucketDir: opts.bucketDir } : {}),
  });
  return {
    prom,
    sidecar,
    labels,
    setTargets: (t) => prom.writeFile("targets.json", targetsJson(t)),
  };
}

/** Demo exporters with `series` series each (Prometheus adds 5 per target); closed with the stack. */
export async function startExporters(stack: ThanosStack, n: number, series: number): Promise<string[]> {
  const exporters = await Promise.all(Array.from({ length: n }, () => startDemoExporter({ series })));
  for (const e of exporters) stack.track(`exporter ${e.port}`, { logs: () => "", stop: () => e.close() });
  return exporters.map((e) => `127.0.0.1:${e.port}`);
}

/** A series count that a query must equal: Prometheus adds up and four scrape_* series per target. */
export function seriesOf(targets: number, series: number): number {
  return targets * (series + 5);
}

/**
 * Targets of one counter, `ha_ms_total` (milliseconds since they started), each answering
 * after a random delay up to `jitterMs`: a scrape's sample is stamped at its start and valued
 * at its end, as with any target whose answer takes varying time. Two replica groups' samples
 * of it, interleaved by time, then seem to go down now and then. Closed with the stack.
 */
export async function startJitteryCounters(stack: ThanosStack, n: number, jitterMs: number): Promise<string[]> {
  const t0 = Date.now();
  const targets: string[] = [];
  for (let i = 0; i < n; i++) {
    const server = createServer((_req, res) => {
      setTimeout(() => {
        res
          .writeHead(200, { "Content-Type": "text/plain; version=0.0.4" })
          .end(`# TYPE ha_ms_total counter\nha_ms_total ${Date.now() - t0}\n`);
      }, Math.random() * jitterMs);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    stack.track(`counter target ${i}`, {
      logs: () => "",
      stop: () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    });
    targets.push(`127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  return targets;
}
