/**
 * The coordinator at scale: the real control loop (src/coordinator/coordinator.ts with its
 * target index, explore, scheduler, move planning and HTTP shard client) over N targets and S
 * shards on this machine, every round timed per stage.
 *
 * Targets: N pods in file_sd files (10,000 groups a file, kubernetes pod meta labels),
 * relabeled by the 15-rule kubernetes-pods job to one loopback exporter (bench/scale-fleet.ts,
 * its own process) that serves each target on its own path with a skewed series count.
 * Shards: sidecar-like endpoints of that same process WITHOUT a Prometheus behind them (they
 * report every assigned target scraped, with the exporter's series, apply delta pushes with the
 * sidecar's contract code and answer `?since=` a token as a sidecar does); only this benchmark
 * uses them.
 *
 * Rounds: the first (explore included) from a cold start, rounds until nothing is pushed, steady
 * rounds, 1% of the targets growing ×3 (rounds until the moves are done), 1% new targets.
 * Printed per round: stage times, coordinator RSS, bytes pushed, targets and series moved; then
 * each goal beside its figure. JSON in bench/results/scale-<N>.json.
 *
 *   node bench/run.ts scale                     100,000 targets, 50 shards
 *   SCALE_QUICK=1 node bench/run.ts scale       10,000 targets, 10 shards
 *   SCALE_TARGETS=1000000 SCALE_SHARDS=500 node bench/run.ts scale
 *   SCALE_EXPLORE_CONCURRENCY=16                the explore concurrency (default: the coordinator's)
 *   SCALE_EXPORTER_LATENCY_MS=30                each exploring scrape's wait (the exporter's latency)
 *   node --expose-gc bench/run.ts scale         also the live heap a target after the steady rounds
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Coordinator, SCRAPE_SERIES, type TickResult } from "../src/coordinator/coordinator.ts";
import { exploreTarget, scrapeClientFor } from "../src/coordinator/explore.ts";
import { coordinatorMetrics } from "../src/coordinator/metrics.ts";
import { httpShardClient } from "../src/coordinator/shard-client.ts";
import type { Scaler, ShardClient } from "../src/coordinator/shards.ts";
import { DiscoveryManager } from "../src/discovery/manager.ts";
import { createLogger } from "../src/observability/log.ts";
import { Registry } from "../src/observability/metrics.ts";
import { parseConfig, type ScrapeJob } from "../src/prom/config.ts";
import { dialectFor } from "../src/prom/version.ts";
import { getStrategy } from "../src/scheduler/index.ts";
import { limitHeapGrowth } from "../src/util/heap.ts";
import { KUBERNETES_PODS_RELABEL } from "./kubernetes-pods.ts";
import { writeResults } from "./lib.ts";
import { PATH_LABEL, seriesOf } from "./scale-fleet.ts";

const quick = process.env.SCALE_QUICK === "1" || process.argv.includes("--quick");
const N = Number(process.env.SCALE_TARGETS ?? (quick ? 10_000 : 100_000));
const S = Number(process.env.SCALE_SHARDS ?? (quick ? 10 : Math.max(10, Math.round(N / 2000))));
const CONCURRENCY = process.env.SCALE_EXPLORE_CONCURRENCY ? Number(process.env.SCALE_EXPLORE_CONCURRENCY) : undefined;
const STEADY_ROUNDS = quick ? 3 : 5;
const PER_FILE = 10_000;
const GROW = 0.01;

/** The goals of issue 16, by target count: steady round, first assignment, RSS. */
const GOALS = {
  steadyMs: N >= 1_000_000 ? 5000 : N >= 100_000 ? 500 : 500 * (N / 100_000),
  firstAssignedMs: 60_000 * Math.max(1, N / 100_000),
  rssMiB: 2048,
};

// This process is the coordinator: it limits its heap's growth as `promshard coordinator` does.
limitHeapGrowth();
const dir = mkdtempSync(join(tmpdir(), "promshard-scale-"));
const configFile = join(dir, "prometheus.yml");
writeFileSync(
  configFile,
  `
global: {scrape_interval: 30s, scrape_timeout: 10s}
scrape_configs:
- job_name: kubernetes-pods
  file_sd_configs: [{files: ["${dir}/pods-*.json"], refresh_interval: 5m}]
${KUBERNETES_PODS_RELABEL}`,
);

const fleet = spawn(process.execPath, [join(import.meta.dirname, "scale-fleet.ts"), configFile], {
  stdio: ["pipe", "pipe", "inherit"],
});
const cleanup = () => {
  fleet.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
};
process.on("exit", cleanup);
const port = await new Promise<number>((resolve, reject) => {
  fleet.once("exit", (code) => reject(new Error(`bench/scale-fleet.ts exited (${code}) before listening`)));
  createInterface({ input: fleet.stdout! }).once("line", (l) => resolve((JSON.parse(l) as { port: number }).port));
});
const base = `http://127.0.0.1:${port}`;
/** A call to the fleet's control endpoints, tried twice (a kept-alive connection may have been closed). */
const control = async (path: string, body?: unknown): Promise<unknown> => {
  const init = body === undefined ? {} : { method: "POST", body: JSON.stringify(body) };
  try {
    return await (await fetch(`${base}${path}`, init)).json();
  } catch {
    return (await fetch(`${base}${path}`, init)).json();
  }
};

/** A pod as Kubernetes discovery would give it, annotated to be scraped at the fleet's /t/<i>. */
const pod = (i: number) => ({
  targets: [`127.0.0.1:8080`],
  labels: {
    __meta_kubernetes_namespace: `team-${i % 100}`,
    __meta_kubernetes_pod_name: `web-${i % 300}-7f9c6d5b8-${i.toString(36).padStart(5, "0")}`,
    __meta_kubernetes_pod_ip: "127.0.0.1",
    __meta_kubernetes_pod_node_name: `node-${i % 50}`,
    __meta_kubernetes_pod_phase: "Running",
    __meta_kubernetes_pod_controller_kind: "ReplicaSet",
    __meta_kubernetes_pod_controller_name: `web-${i % 300}-7f9c6d5b8`,
    __meta_kubernetes_pod_label_app: `web-${i % 300}`,
    __meta_kubernetes_pod_label_pod_template_hash: "7f9c6d5b8",
    __meta_kubernetes_pod_annotation_prometheus_io_scrape: "true",
    __meta_kubernetes_pod_annotation_prometheus_io_port: String(port),
    [PATH_LABEL]: `/t/${i}`,
  },
});
const writePods = (file: number, from: number, to: number) => {
  const groups = [];
  for (let i = from; i < to; i++) groups.push(pod(i));
  writeFileSync(join(dir, `pods-${file}.json`), JSON.stringify(groups));
};
for (let f = 0; f * PER_FILE < N; f++) writePods(f, f * PER_FILE, Math.min(N, (f + 1) * PER_FILE));

let totalSeries = 0;
for (let i = 0; i < N; i++) totalSeries += seriesOf(i) + 5;
// Sized so that the scheduler asks for about S shards.
const budget = Math.ceil(totalSeries / (S * 0.8));

const MiB = (n: number) => Math.round(n / 2 ** 20);
const rss = () => MiB(process.memoryUsage().rss);
const rssBefore = rss();
/** With `node --expose-gc`: the live heap, which RSS shows only with the GC's slack on top. */
const gc = (globalThis as { gc?: () => void }).gc;
const liveHeap = () => {
  gc?.();
  return process.memoryUsage().heapUsed;
};
const heapBefore = liveHeap();
const started = performance.now();
const config = parseConfig(readFileSync(configFile, "utf8"), {
  dialect: dialectFor("3.16"),
  directory: dir,
});
const discovery = new DiscoveryManager();
discovery.apply(config);
await discovery.ready();
const discoveryMs = performance.now() - started;

const registry = new Registry();
const metrics = coordinatorMetrics(registry);
let shardCount = 0;
const scaler: Scaler = {
  current: () => shardCount,
  scaleTo: async (n) => {
    shardCount = n;
  },
};
const clients = new Map<number, ShardClient>();
const scrapeClients = new WeakMap<ScrapeJob, ReturnType<typeof scrapeClientFor>>();
const coordinator = new Coordinator(config, {
  discovery,
  strategy: getStrategy("series-balanced")!,
  scaler,
  shard: (id) => {
    const c = clients.get(id) ?? httpShardClient(`${base}/s/${id}`, "bench", 120_000);
    clients.set(id, c);
    return c;
  },
  explore: async (target, job, labelNames) => {
    const client = scrapeClients.get(job) ?? scrapeClientFor(job, dir);
    scrapeClients.set(job, client);
    return (await exploreTarget(target, job, client, labelNames)).series;
  },
  budget,
  minShards: 1,
  maxShards: S * 4,
  scaleDownDelayMs: 3_600_000,
  metrics,
  // Its warnings (a push or report that failed) explain a round that took long.
  log: createLogger({ component: "coordinator", level: "warn" }),
  ...(CONCURRENCY === undefined ? {} : { exploreConcurrency: CONCURRENCY }),
});

const STEPS = ["targets", "runtime", "explore", "schedule", "plan", "push", "scale"] as const;
const stepSums = async () => {
  const out = new Map<string, number>();
  for (const v of (await metrics.stepSeconds.get()).values)
    if (v.metricName?.endsWith("_sum")) out.set(String(v.labels.step), (out.get(String(v.labels.step)) ?? 0) + v.value);
  return out;
};
const counter = async (c: { get(): Promise<{ values: { value: number }[] }> }) =>
  (await c.get()).values.reduce((n, v) => n + v.value, 0);

interface Round {
  round: string;
  totalMs: number;
  stages: Record<string, number>;
  rssMiB: number;
  pushedShards: number;
  bytesPushed: number;
  /** As the fleet received them: whole sets, deltas applied, deltas refused. */
  pushes: { whole: number; delta: number; refused: number };
  targetsMoved: number;
  seriesMoved: number;
  overlapping: number;
  shards: number;
  targets: number;
}
const rounds: Round[] = [];
let last: TickResult | undefined;

async function round(name: string): Promise<Round> {
  const before = await stepSums();
  const moves0 = await counter(metrics.moves);
  const series0 = await counter(metrics.movedSeries);
  const t = performance.now();
  const r = await coordinator.tick();
  last = r;
  const totalMs = performance.now() - t;
  const after = await stepSums();
  const stats = (await control("/control/stats")) as {
    bytesIn: number;
    pushes: { whole: number; delta: number; refused: number };
  };
  const stages: Record<string, number> = {};
  let timed = 0;
  for (const s of STEPS) {
    stages[s] = ((after.get(s) ?? 0) - (before.get(s) ?? 0)) * 1000;
    timed += stages[s];
  }
  stages.other = totalMs - timed;
  const out: Round = {
    round: name,
    totalMs,
    stages,
    rssMiB: rss(),
    pushedShards: r.pushed.length,
    bytesPushed: stats.bytesIn,
    pushes: stats.pushes,
    targetsMoved: (await counter(metrics.moves)) - moves0,
    seriesMoved: (await counter(metrics.movedSeries)) - series0,
    overlapping: r.overlapping,
    shards: r.shards.length,
    targets: r.shards.reduce((n, s) => n + s.targets.length, 0),
  };
  rounds.push(out);
  // As it goes: a long run that fails later still shows its rounds.
  console.error(
    `round ${name}: ${Math.round(totalMs)} ms, RSS ${out.rssMiB} MiB, ${JSON.stringify(stages, (_, v) => (typeof v === "number" ? Math.round(v) : v))}`,
  );
  return out;
}

/** Rounds until one pushes nothing (moves done), at most `max`. */
async function settle(name: string, max = 6): Promise<Round[]> {
  const out: Round[] = [];
  for (let k = 0; k < max; k++) {
    const r = await round(`${name} ${k + 1}`);
    out.push(r);
    if (r.pushedShards === 0 && r.overlapping === 0) break;
  }
  return out;
}

const first = await round("first (explore)");
const firstAssignedMs = performance.now() - started;
const firstAssigned = first.targets;
await settle("settle");
for (let k = 0; k < STEADY_ROUNDS; k++) await round(`steady ${k + 1}`);
const steady = rounds.filter((r) => r.round.startsWith("steady")).map((r) => r.totalMs);
const steadyMs = [...steady].sort((a, b) => a - b)[steady.length >> 1]!;
const heapPerTarget = gc ? Math.round((liveHeap() - heapBefore) / N) : undefined;
if (heapPerTarget !== undefined) console.log(`live heap after the steady rounds: ${heapPerTarget} B a target`);

// Growth: 1% of the targets (every 100th) grow ×3; the shards report it, the loop rebalances.
const grown = Array.from({ length: Math.ceil(N * GROW) }, (_, k) => k * Math.floor(1 / GROW));
const grownSet = new Set(grown);
// The least series any scheduler must move: what the grown shards hold above their budget.
const indexOf = (t: TickResult["shards"][number]["targets"][number]) => {
  const url = t.target.scrapeUrl;
  return Number(url.slice(url.lastIndexOf("/") + 1));
};
const lowerBound = last!.shards.reduce((n, s) => {
  const used = s.targets.reduce((m, t) => {
    const i = indexOf(t);
    return m + seriesOf(i) * (grownSet.has(i) ? 3 : 1) + SCRAPE_SERIES;
  }, 0);
  return n + Math.max(0, used - budget);
}, 0);
await control("/control/grow", { ids: grown, factor: 3 });
const growth = await settle("growth");
const movedTargets = growth.reduce((n, r) => n + r.targetsMoved, 0);
const movedSeries = growth.reduce((n, r) => n + r.seriesMoved, 0);
// A move adds the target to one shard and later removes it from another: a delta carries each
// moved target about twice; whole sets carried every target of every shard pushed to.
const grownBytes = growth.reduce((n, r) => n + r.bytesPushed, 0);
const perTarget = first.bytesPushed / N;
const deltaBound = 2 * movedTargets * perTarget;

// Churn: 1% new targets in a new file; discovery picks it up, the loop explores only them.
const added = Math.ceil(N * GROW);
const seen = new Promise<void>((resolve) => {
  const off = discovery.onChange(() => {
    off();
    resolve();
  });
});
const churnStart = performance.now();
writePods(1_000_000, N, N + added);
await seen;
const churnDiscoveryMs = performance.now() - churnStart;
const churn = await settle("new 1%");
const churnAssignedMs = churnDiscoveryMs + churn[0]!.totalMs;

const f = (ms: number) => (ms >= 100 ? Math.round(ms) : Math.round(ms * 10) / 10);
console.log(
  `\n${N} targets (${totalSeries} series, budget ${budget}), ${S} shards wanted; shards are sidecar-like endpoints WITHOUT Prometheus behind them (bench/scale-fleet.ts), only in this benchmark`,
);
console.log(
  `discovery (file_sd, ${Math.ceil(N / PER_FILE)} files) ready in ${f(discoveryMs)} ms; RSS before ${rssBefore} MiB`,
);
console.table(
  rounds.map((r) => ({
    round: r.round,
    "total ms": f(r.totalMs),
    "relabel+index": f(r.stages.targets!),
    "series (reports)": f(r.stages.runtime!),
    explore: f(r.stages.explore!),
    schedule: f(r.stages.schedule!),
    "plan moves": f(r.stages.plan!),
    push: f(r.stages.push!),
    other: f(r.stages.other!),
    "RSS MiB": r.rssMiB,
    "pushed KiB": Math.round(r.bytesPushed / 1024),
    "whole/delta/refused": `${r.pushes.whole}/${r.pushes.delta}/${r.pushes.refused}`,
    shards: `${r.pushedShards}/${r.shards}`,
    "targets moved": r.targetsMoved,
    "series moved": r.seriesMoved,
  })),
);
const peakRss = MiB(process.resourceUsage().maxRSS * 1024);
const goals = [
  {
    goal: `steady round at ${N} targets`,
    figure: `${f(steadyMs)} ms`,
    target: `< ${GOALS.steadyMs} ms`,
    ok: steadyMs < GOALS.steadyMs,
  },
  {
    goal: "first assignment (discovery + explore + round)",
    figure: `${f(firstAssignedMs)} ms, ${firstAssigned}/${N} targets`,
    target: `< ${GOALS.firstAssignedMs} ms, all`,
    ok: firstAssignedMs < GOALS.firstAssignedMs && firstAssigned === N,
  },
  {
    goal: "explore rate (first round)",
    figure: `${Math.round(N / (first.stages.explore! / 1000))} targets/s`,
    target: `>= ${Math.round(N / (GOALS.firstAssignedMs / 1000))} targets/s`,
    ok: N / (first.stages.explore! / 1000) >= N / (GOALS.firstAssignedMs / 1000),
  },
  {
    goal: "coordinator peak RSS",
    figure: `${peakRss} MiB`,
    target: `< ${GOALS.rssMiB} MiB`,
    ok: peakRss < GOALS.rssMiB,
  },
  {
    goal: "series moved after 1% grow ×3",
    figure: `${movedSeries} series (${(movedSeries / Math.max(1, lowerBound)).toFixed(2)}× the bound), ${movedTargets} targets`,
    target: `<= 1.1× the lower bound ${lowerBound} (Σ over budget; the exact minimum is at least that)`,
    ok: movedSeries <= 1.1 * Math.max(lowerBound, 1),
  },
  {
    goal: "a push carries what changed (growth rounds, deltas)",
    figure: `${Math.round(grownBytes / 1024)} KiB pushed for ${movedTargets} moved targets`,
    target: `<= ${Math.round(deltaBound / 1024)} KiB (each moved target twice at ${Math.round(perTarget)} B, the first round's bytes per target)`,
    ok: grownBytes <= deltaBound,
  },
  {
    goal: "1% new targets: discovered, explored, assigned",
    figure: `${f(churnAssignedMs)} ms`,
    target: "-",
    ok: true,
  },
];
console.table(goals);
const path = writeResults(`scale-${N}`, {
  targets: N,
  shardsWanted: S,
  totalSeries,
  budget,
  explore: CONCURRENCY ?? "default",
  discoveryMs,
  firstAssignedMs,
  steadyMs,
  peakRssMiB: peakRss,
  heapPerTarget,
  rounds,
  goals,
});
console.log(`results: ${path}`);
discovery.stop();
// The shard clients keep their connections open.
process.exit(0);
