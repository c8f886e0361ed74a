/**
 * Explore throughput: how fast the coordinator measures targets it has not seen yet, with one
 * exploring scrape each (exploreTarget: HTTP GET with the job's client, streaming series count
 * after metric_relabel_configs). 50 demo exporters (20 × 100, 20 × 1,000, 10 × 10,000 series)
 * run in a child process, so their CPU is not the explorer's; the explorer loops over all of
 * them with 1, 4 and 16 scrapes in flight (the coordinator's default is 16).
 *
 * Rows: a plain undici GET whose body is discarded (the ceiling set by HTTP and the exporters),
 * exploreTarget, and exploreTarget on a job whose metric_relabel_configs drop half the series
 * (`source_labels: [i], regex: .*[02468], action: drop`). Per row: targets/s, MB/s of
 * exposition read, series/s (as exposed, before relabeling), per-target latency p50/p99, and
 * the explorer's and the exporters' CPU per target. A second table splits the latency at
 * concurrency 1 by target size. Every exploration's series and bytes are checked against the
 * exporters (bytes from one separate fetch of each exporter).
 *
 * SECONDS=4 node bench/run.ts explore (timed seconds per row; one untimed pass first).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { dump } from "js-yaml";
import { Agent, request } from "undici";
import { exploreTarget, type ScrapeClient, scrapeClientFor } from "../src/coordinator/explore.ts";
import { type DemoExporter, startDemoExporter } from "../src/demo/exporter.ts";
import { parseConfig, type ScrapeJob } from "../src/prom/config.ts";
import { type Target, targetsForJob } from "../src/prom/targets.ts";
import { dialectFor } from "../src/prom/version.ts";
import { writeResults } from "./lib.ts";

const SELF = fileURLToPath(import.meta.url);
const MIX = [
  { series: 100, count: 20 },
  { series: 1_000, count: 20 },
  { series: 10_000, count: 10 },
];
const SECONDS = Number(process.env.SECONDS ?? 4);
const dialect = dialectFor("3.16");

// ---------------------------------------------------------------- child: the exporters

async function runExporters(): Promise<void> {
  const exporters: DemoExporter[] = [];
  for (const { series, count } of MIX) {
    for (let i = 0; i < count; i++) exporters.push(await startDemoExporter({ series }));
  }
  process.stdout.write(`${JSON.stringify(exporters.map((e) => ({ port: e.port, series: e.series })))}\n`);
  const cpu = () => process.cpuUsage();
  // One line on stdin asks for CPU used so far; stdin closing (the parent is gone) ends it.
  const rl = createInterface({ input: process.stdin });
  rl.on("line", () => {
    const c = cpu();
    process.stdout.write(`${JSON.stringify({ cpuMicros: c.user + c.system })}\n`);
  });
  rl.on("close", () => {
    void Promise.all(exporters.map((e) => e.close())).then(() => process.exit(0));
  });
}

interface ExporterChild {
  readonly child: ChildProcess;
  readonly exporters: { port: number; series: number }[];
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

async function startExporterChild(): Promise<ExporterChild> {
  const child = spawn(process.execPath, [...process.execArgv, SELF, "--exporters"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  process.once("exit", () => child.kill("SIGKILL"));
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on("line", (l) => waiting.shift()?.(l));
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("exporter child: no answer in 30 s")), 30_000);
      waiting.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const exporters = JSON.parse(await next()) as { port: number; series: number }[];
  return {
    child,
    exporters,
    cpuMicros: async () => {
      const answer = next();
      child.stdin!.write("cpu\n");
      return (JSON.parse(await answer) as { cpuMicros: number }).cpuMicros;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end();
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

// ---------------------------------------------------------------- parent: the explorer

interface Item {
  readonly target: Target;
  readonly job: ScrapeJob;
  readonly client: ScrapeClient;
  /** Series the exporter exposes, and what is left after the job's metric_relabel_configs. */
  readonly series: number;
  readonly expected: number;
  readonly bytes: number;
}

interface Sample {
  ms: number;
  series: number;
  bytes: number;
}

type Probe = (item: Item) => Promise<{ series: number; bytes: number }>;

/** Runs probe over the items with `concurrency` in flight; per-item latencies. */
async function pass(items: readonly Item[], concurrency: number, probe: Probe, out: Sample[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      const t0 = performance.now();
      const r = await probe(item);
      out.push({ ms: performance.now() - t0, series: item.series, bytes: r.bytes });
      if (r.series !== item.expected) {
        throw new Error(
          `${item.target.scrapeUrl} (${item.job.jobName}): counted ${r.series}, expected ${item.expected}`,
        );
      }
      if (r.bytes !== item.bytes) {
        throw new Error(`${item.target.scrapeUrl}: read ${r.bytes} bytes, one fetch read ${item.bytes}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

const quantile = (sorted: readonly number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
const fmt = (n: number, digits = 1) => Number(n.toFixed(digits));

async function main(): Promise<void> {
  const exp = await startExporterChild();
  const getAgent = new Agent({ connections: 64 });
  const clients: ScrapeClient[] = [];
  try {
    const addresses = exp.exporters.map((e) => `127.0.0.1:${e.port}`);
    const config = parseConfig(
      dump({
        global: { scrape_interval: "15s", scrape_timeout: "10s" },
        scrape_configs: [
          { job_name: "explore", static_configs: [{ targets: addresses }] },
          {
            job_name: "explore-drop-half",
            static_configs: [{ targets: addresses }],
            metric_relabel_configs: [{ source_labels: ["i"], regex: ".*[02468]", action: "drop" }],
          },
        ],
      }),
      { dialect, directory: "." },
    );
    const bodyBytes = new Map<string, number>();
    for (const a of addresses) {
      const res = await fetch(`http://${a}/metrics`);
      bodyBytes.set(a, (await res.arrayBuffer()).byteLength);
    }
    const itemsOf = (job: ScrapeJob, halve: boolean): Item[] => {
      const client = scrapeClientFor(job, ".");
      clients.push(client);
      const groups = job.serviceDiscovery.flatMap((sd) =>
        sd.mechanism === "static" && "groups" in sd ? sd.groups : [],
      );
      const targets = targetsForJob(groups, job).active;
      if (targets.length !== addresses.length) throw new Error(`${job.jobName}: ${targets.length} targets`);
      return targets.map((target) => {
        const address = target.labels.instance!;
        const series = exp.exporters[addresses.indexOf(address)]!.series;
        // demo_series{i="0"} … {i="series-2"} and demo_scrapes_total: the even i end in 0,2,4,6,8.
        const expected = halve ? series - Math.ceil((series - 1) / 2) : series;
        // The scrape counter's digits change the body by a few bytes from one scrape to the next.
        return { target, job, client, series, expected, bytes: bodyBytes.get(address)! };
      });
    };
    const [plainJob, dropJob] = config.scrapeConfigs as [ScrapeJob, ScrapeJob];
    const plain = itemsOf(plainJob, false);
    const dropping = itemsOf(dropJob, true);

    const explore: Probe = async (item) => exploreTarget(item.target, item.job, item.client);
    const getOnly: Probe = async (item) => {
      const res = await request(item.target.scrapeUrl, { dispatcher: getAgent });
      let bytes = 0;
      for await (const chunk of res.body) bytes += (chunk as Uint8Array).length;
      return { series: item.expected, bytes };
    };
    // The scrape counter grows, so the body does too; the byte check allows for it.
    const tolerant =
      (p: Probe): Probe =>
      async (item) => {
        const r = await p(item);
        return { ...r, bytes: Math.abs(r.bytes - item.bytes) <= 8 ? item.bytes : r.bytes };
      };

    const runs = [
      { name: "GET only, body discarded (baseline)", items: plain, concurrency: 1, probe: getOnly },
      { name: "GET only, body discarded (baseline)", items: plain, concurrency: 16, probe: getOnly },
      { name: "exploreTarget", items: plain, concurrency: 1, probe: explore },
      { name: "exploreTarget", items: plain, concurrency: 4, probe: explore },
      { name: "exploreTarget", items: plain, concurrency: 16, probe: explore },
      { name: "exploreTarget + metric_relabel drop half", items: dropping, concurrency: 1, probe: explore },
      { name: "exploreTarget + metric_relabel drop half", items: dropping, concurrency: 16, probe: explore },
    ];
    const table = [];
    const bySize = [];
    const data = [];
    for (const r of runs) {
      const probe = tolerant(r.probe);
      await pass(r.items, r.concurrency, probe, []); // warm-up
      const samples: Sample[] = [];
      const cpu0 = process.cpuUsage();
      const exp0 = await exp.cpuMicros();
      const t0 = performance.now();
      let passes = 0;
      while (passes < 2 || performance.now() - t0 < SECONDS * 1000) {
        await pass(r.items, r.concurrency, probe, samples);
        passes++;
      }
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const expCpu = (await exp.cpuMicros()) - exp0;
      const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
      const bytes = samples.reduce((n, s) => n + s.bytes, 0);
      const series = samples.reduce((n, s) => n + s.series, 0);
      const row = {
        name: r.name,
        concurrency: r.concurrency,
        targets: samples.length,
        "targets/s": fmt(samples.length / (wallMs / 1000), 0),
        "MB/s": fmt(bytes / 1e6 / (wallMs / 1000)),
        "series/s": Math.round(series / (wallMs / 1000)),
        "p50 ms": fmt(quantile(ms, 0.5), 2),
        "p99 ms": fmt(quantile(ms, 0.99), 2),
        "explorer CPU ms/target": fmt((cpu.user + cpu.system) / 1000 / samples.length, 3),
        "exporter CPU ms/target": fmt(expCpu / 1000 / samples.length, 3),
      };
      table.push(row);
      data.push({ ...row, passes, wallMs });
      if (r.concurrency === 1) {
        for (const { series: size } of MIX) {
          const of = samples.filter((s) => s.series === size);
          const t = of.map((s) => s.ms).sort((a, b) => a - b);
          const mb = of.reduce((n, s) => n + s.bytes, 0) / 1e6;
          bySize.push({
            name: r.name,
            series: size,
            "KiB/target": fmt(of[0]!.bytes / 1024),
            "p50 ms": fmt(quantile(t, 0.5), 3),
            "p99 ms": fmt(quantile(t, 0.99), 3),
            "MB/s while busy": fmt(mb / (t.reduce((a, b) => a + b, 0) / 1000)),
            "series/s while busy": Math.round((size * of.length) / (t.reduce((a, b) => a + b, 0) / 1000)),
          });
        }
      }
    }
    const total = MIX.reduce((n, m) => n + m.series * m.count, 0);
    console.log(
      `explore: ${exp.exporters.length} demo exporters (${MIX.map((m) => `${m.count} × ${m.series}`).join(", ")} series; ` +
        `${total} series, ${fmt([...bodyBytes.values()].reduce((a, b) => a + b, 0) / 1e6, 2)} MB per pass), ` +
        `~${SECONDS} s per row; exporters in a child process`,
    );
    console.table(table);
    console.log("per target size, concurrency 1 (busy = summed latency of that size's targets):");
    console.table(bySize);
    const path = writeResults("explore", { mix: MIX, rows: data, bySize });
    console.log(`results: ${path}`);
  } finally {
    for (const c of clients) await c.dispatcher.close();
    await getAgent.close();
    await exp.stop();
  }
}

if (process.argv[2] === "--exporters") await runExporters();
else await main();
