/**
 * The scrape cost of a split target (issue 16): a target of SERIES series under a budget of
 * BUDGET is split into k parts (src/scheduler/split.ts), and each of k shards scrapes the whole
 * exposition and keeps its 1/k through the hashmod the generated config adds
 * (src/sidecar/generate.ts). Measured with the real Prometheus (the newest of
 * prometheusBinaries()) and a demo exporter on loopback, one run after the other:
 *
 *   whole   one Prometheus holding the target whole (the baseline: one scrape per interval)
 *   parts   one Prometheus holding all k parts, each with its generated hashmod rules (k scrapes
 *           per interval, the k shards' work summed on one process)
 *
 * For each: bytes fetched and samples parsed and kept per interval, the mean scrape duration
 * (Prometheus's scrape_duration_seconds: fetch, parse, relabel, append), and Prometheus's CPU
 * per interval (process_cpu_seconds_total over the window, idle included), each against the
 * baseline. SERIES=30000 BUDGET=10000 SECONDS=30 node bench/run.ts split (the defaults).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseConfigFile } from "../src/config/load.ts";
import type { AssignedTarget } from "../src/contract/assignment.ts";
import { SCRAPE_SERIES } from "../src/coordinator/coordinator.ts";
import { startDemoExporter } from "../src/demo/exporter.ts";
import { dialectFor } from "../src/prom/version.ts";
import { partsFor } from "../src/scheduler/split.ts";
import { generateShardConfig, type ShardSettings, targetFiles } from "../src/sidecar/generate.ts";
import { prometheusBinaries, startPrometheus } from "../test/support/prometheus.ts";
import { writeResults } from "./lib.ts";

const SERIES = Number(process.env.SERIES ?? 30_000);
const BUDGET = Number(process.env.BUDGET ?? 10_000);
const SECONDS = Number(process.env.SECONDS ?? 30);
const INTERVAL_S = 1;
const JOB = "giant";

const bins = prometheusBinaries();
const rank = (v: string) => v.split(".").reduce((n, p) => n * 1000 + Number(p), 0);
const bin = bins.reduce((a, b) => (rank(b.version) > rank(a.version) ? b : a));
const k = partsFor(SERIES + SCRAPE_SERIES, BUDGET, 1, 16);
const exporter = await startDemoExporter({ series: SERIES, host: "127.0.0.1" });
const address = `127.0.0.1:${exporter.port}`;
const bytes = Buffer.byteLength(await (await fetch(exporter.url)).text());

const config = parseConfigFile(
  `global: {scrape_interval: ${INTERVAL_S}s, scrape_timeout: ${INTERVAL_S}s}
scrape_configs:
- job_name: ${JOB}
  static_configs: [{targets: ['${address}']}]
`,
  "/bench/prometheus.yml",
  dialectFor(bin.version.split(".").slice(0, 2).join(".")),
);
const settings: ShardSettings = {
  shard: 0,
  replica: "bench",
  shardLabel: "shard",
  replicaLabel: "",
  targetsDir: "targets",
  remoteWriteDropShard: false,
};

interface Row {
  name: string;
  scrapes: number;
  "KiB / interval": number;
  "samples parsed": number;
  "samples kept": number;
  "scrape ms (mean)": number;
  "CPU ms / interval": number;
}

const cpuSeconds = async (url: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^process_cpu_seconds_total ([0-9.e+]+)$/m.exec(text);
  if (!m) throw new Error(`${url}/metrics has no process_cpu_seconds_total`);
  return Number(m[1]);
};

async function run(name: string, targets: AssignedTarget[]): Promise<Row> {
  const files: Record<string, string> = {};
  for (const [path, content] of targetFiles(config, settings, targets)) files[`targets/${path}`] = content;
  const prom = await startPrometheus(bin, { config: generateShardConfig(config, settings, targets), files });
  try {
    // Until every target has been scraped a few times: the first scrapes fill the head.
    for (;;) {
      const r = await prom.query(`count(count_over_time(up{job="${JOB}"}[5s]) >= 3)`);
      if (r.resultType === "vector" && Number(r.result[0]?.value[1] ?? 0) === targets.length) break;
      await sleep(500);
    }
    const cpu0 = await cpuSeconds(prom.url);
    const t0 = Date.now();
    await sleep(SECONDS * 1000);
    const cpu1 = await cpuSeconds(prom.url);
    const window = `${Math.floor((Date.now() - t0) / 1000)}s`;
    const one = async (expr: string) => {
      const r = await prom.query(expr);
      if (r.resultType !== "vector" || r.result.length === 0) throw new Error(`${expr}: no answer`);
      return Number(r.result[0]!.value[1]);
    };
    const scrapes = await one(`sum(count_over_time(up{job="${JOB}"}[${window}]))`);
    const intervals = scrapes / targets.length;
    return {
      name,
      scrapes,
      "KiB / interval": Math.round((10 * targets.length * bytes) / 1024) / 10,
      "samples parsed": await one(`sum(scrape_samples_scraped{job="${JOB}"})`),
      "samples kept": await one(`sum(scrape_samples_post_metric_relabeling{job="${JOB}"})`),
      "scrape ms (mean)": Number(
        (1000 * (await one(`avg(avg_over_time(scrape_duration_seconds{job="${JOB}"}[${window}]))`))).toFixed(1),
      ),
      "CPU ms / interval": Math.round(((cpu1 - cpu0) * 1000) / intervals),
    };
  } finally {
    await prom.stop();
  }
}

const target = { job: JOB, labels: { __address__: address }, sdIndex: 0 };
try {
  const whole = await run("whole (1 scrape)", [target]);
  // The hashmod over __name__ and the demo's one label, as the coordinator sets `by` once it has seen them.
  const parts = await run(
    `${k} parts (${k} scrapes)`,
    Array.from({ length: k }, (_, part) => ({ ...target, split: { part, parts: k, by: ["__name__", "i"] } })),
  );
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const perPart = {
    name: "one part",
    scrapes: parts.scrapes / k,
    "KiB / interval": whole["KiB / interval"],
    "samples parsed": parts["samples parsed"] / k,
    "samples kept": Math.round(parts["samples kept"] / k),
    "scrape ms (mean)": parts["scrape ms (mean)"],
    "CPU ms / interval": Math.round(parts["CPU ms / interval"] / k),
  };
  const rows = [whole, perPart, parts].map((r) => ({
    ...r,
    "CPU × whole": ratio(r["CPU ms / interval"], whole["CPU ms / interval"]),
    "bytes × whole": ratio(r["KiB / interval"], whole["KiB / interval"]),
  }));
  console.log(
    `split: a target of ${SERIES} series (+${SCRAPE_SERIES}) under a budget of ${BUDGET}: k = ${k}; Prometheus ${bin.version}, ` +
      `scrape_interval ${INTERVAL_S}s, ${SECONDS}s per run, exposition ${(bytes / 1024).toFixed(1)} KiB`,
  );
  console.table(rows);
  console.log("CPU is the whole Prometheus process (idle, TSDB and its own work included), not the scrape alone.");
  console.log(
    `results: ${writeResults("split", { series: SERIES, budget: BUDGET, k, bytes, prometheus: bin.version, rows })}`,
  );
} finally {
  await exporter.close();
}
