/**
 * Issue 16's real-parts run: beside the synthetic scale harness (bench/scale.bench.ts, whose
 * shards are fake), N targets over ~S shards with only real parts: `promshard local` (the
 * coordinator, a real Prometheus and a promshard sidecar per shard, Thanos for the global view)
 * scraping one loopback exporter that serves every target (`/t/<i>`, bench/scale-fleet.ts's
 * skewed series counts times SCALE_REAL_FACTOR; each target its own `instance`).
 *
 * `--shard.max-series` is the total over S, plus a tenth, so that about S shards result (and at
 * least the biggest target, see budget).
 * Printed: time from the start to every target assigned (the coordinator's /api/v1/shards) and
 * to every target scraped once (`up` of every instance at the global view), shards used, series
 * per shard (the coordinator's figure and its Prometheus's own count) against the budget, each
 * process's CPU seconds and peak RSS. Then the checks, each scrape interval until they held
 * SCALE_REAL_CHECKS (3) times in a row (so the placement holds, not just once) or
 * SCALE_REAL_SETTLE_SECONDS pass (the first scrapes and moves settle):
 *
 * - every target is an active target of exactly one shard's Prometheus (its /api/v1/targets),
 *   and up there;
 * - the global count, `count({__name__=~".+"})` through the global view, equals the series the
 *   exporter serves plus the 5 Prometheus adds per scrape (up, scrape_duration_seconds,
 *   scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added).
 *
 * Exits 1 when a check fails, or when the machine's available memory falls under
 * SCALE_REAL_MIN_AVAILABLE_MIB (the run is stopped before it takes the machine's memory). The
 * processes' RSS summed overstates what the run takes (file pages that Prometheus and Thanos
 * map count in each), so the table also shows how far the machine's available memory fell.
 *
 *   node bench/run.ts scale-real     2,000 targets, ~10 shards, ~1.6M series (the default)
 *   SCALE_REAL_TARGETS=200 SCALE_REAL_SHARDS=3 node bench/run.ts scale-real   a quick look
 *
 * Also: SCALE_REAL_FACTOR (4), SCALE_REAL_INTERVAL (30s), SCALE_REAL_TIMEOUT_SECONDS (1200),
 * SCALE_REAL_SETTLE_SECONDS (600), SCALE_REAL_MIN_AVAILABLE_MIB (4096).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { freemem, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../src/util/ports.ts";
import { writeResults } from "./lib.ts";
import { instantValue, type Row, sampleTree, startLocal, stopLocal } from "./local-run.ts";
import { exposition, indexOfPath, seriesOf } from "./scale-fleet.ts";

const N = Number(process.env.SCALE_REAL_TARGETS ?? 2000);
const SHARDS = Number(process.env.SCALE_REAL_SHARDS ?? 10);
const FACTOR = Number(process.env.SCALE_REAL_FACTOR ?? 4);
const INTERVAL = process.env.SCALE_REAL_INTERVAL ?? "30s";
const TIMEOUT_S = Number(process.env.SCALE_REAL_TIMEOUT_SECONDS ?? 1200);
const SETTLE_S = Number(process.env.SCALE_REAL_SETTLE_SECONDS ?? 600);
const CHECKS = Number(process.env.SCALE_REAL_CHECKS ?? 3);
const MIN_AVAILABLE_MIB = Number(process.env.SCALE_REAL_MIN_AVAILABLE_MIB ?? 4096);
const JOB = "scale-real";
/** Series Prometheus adds to every scrape (see above). */
const PER_SCRAPE = 5;

const seriesOfTarget = (i: number) => seriesOf(i) * FACTOR;
let served = 0;
let biggest = 0;
for (let i = 0; i < N; i++) {
  served += seriesOfTarget(i);
  biggest = Math.max(biggest, seriesOfTarget(i));
}
const expected = served + PER_SCRAPE * N;
/**
 * A target bigger than the budget would be split over shards (each keeping a hashmod share of
 * its series): the budget is at least the biggest target, so every target has one shard.
 */
const budget = Math.ceil(Math.max((expected * 1.1) / SHARDS, biggest + PER_SCRAPE) / 1000) * 1000;

interface ShardJson {
  id: number;
  series: number;
  prometheusUrl: string;
  targets: { labels: Record<string, string> }[];
}

async function getJson<T>(url: string, timeoutMs = 10_000): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Instances on each shard's Prometheus: active targets of this job, and those up. */
async function shardTargets(shards: readonly ShardJson[]) {
  return Promise.all(
    shards.map(async (s) => {
      const body = await getJson<{
        data: { activeTargets: { labels: Record<string, string>; health: string }[] };
      }>(`${s.prometheusUrl}/api/v1/targets?state=active`);
      const active = (body?.data.activeTargets ?? []).filter((t) => t.labels.job === JOB);
      return {
        id: s.id,
        answered: body !== undefined,
        instances: active.map((t) => t.labels.instance!),
        up: active.filter((t) => t.health === "up").length,
      };
    }),
  );
}

interface Checks {
  oneShardEach: boolean;
  /** Targets on no shard, on more than one, and not up. */
  unscraped: number;
  onSeveral: number;
  notUp: number;
  globalCount: number;
  globalCountExact: boolean;
  perShard: { id: number; targets: number; up: number; prometheusSeries: number }[];
}

async function check(globalPort: number, shards: readonly ShardJson[]): Promise<Checks> {
  const onShards = await shardTargets(shards);
  const where = new Map<string, number>();
  for (const s of onShards) for (const i of s.instances) where.set(i, (where.get(i) ?? 0) + 1);
  let unscraped = 0;
  let onSeveral = 0;
  for (let i = 0; i < N; i++) {
    const n = where.get(`t${i}`) ?? 0;
    if (n === 0) unscraped++;
    else if (n > 1) onSeveral++;
  }
  const notUp = onShards.reduce((n, s) => n + s.instances.length - s.up, 0);
  const perShard = await Promise.all(
    onShards.map(async (s) => {
      const url = shards.find((x) => x.id === s.id)!.prometheusUrl;
      const count = await instantValue(url, `count({job="${JOB}"})`, 60_000);
      return { id: s.id, targets: s.instances.length, up: s.up, prometheusSeries: count || 0 };
    }),
  );
  const globalCount = await instantValue(`http://127.0.0.1:${globalPort}`, 'count({__name__=~".+"})', 120_000);
  return {
    oneShardEach: unscraped === 0 && onSeveral === 0 && notUp === 0 && onShards.every((s) => s.answered),
    unscraped,
    onSeveral,
    notUp,
    globalCount,
    globalCountExact: globalCount === expected,
    perShard,
  };
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function main(): Promise<boolean> {
  const load0 = loadavg();
  const dir = mkdtempSync(join(tmpdir(), "promshard-bench-scale-real-"));
  const exporter = createServer((req, res) => {
    const i = indexOfPath(req.url);
    if (!(i >= 0 && i < N)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(exposition(seriesOfTarget(i)));
  });
  exporter.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => exporter.listen(0, "127.0.0.1", resolve));
  const port = (exporter.address() as { port: number }).port;
  let local: ReturnType<typeof startLocal> | undefined;
  let memoryWatch: NodeJS.Timeout | undefined;
  try {
    writeFileSync(
      join(dir, "targets.json"),
      JSON.stringify(
        Array.from({ length: N }, (_, i) => ({
          targets: [`127.0.0.1:${port}`],
          labels: { __metrics_path__: `/t/${i}`, instance: `t${i}` },
        })),
      ),
    );
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global:\n  scrape_interval: ${INTERVAL}\n  scrape_timeout: ${INTERVAL}\nscrape_configs:\n  - job_name: ${JOB}\n    file_sd_configs:\n      - files: ["targets.json"]\n`,
    );
    console.log(
      `${N} targets, ${served} series served (+${PER_SCRAPE} a scrape: ${expected}), biggest target ${biggest}; ` +
        `--shard.max-series ${budget} (~${SHARDS} shards), scrape interval ${INTERVAL}`,
    );
    const globalPort = await freePort();
    const apiPort = await freePort();
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    local = startLocal([
      `--config=${join(dir, "prometheus.yml")}`,
      `--shard.max-series=${budget}`,
      `--storage.path=${join(dir, "data")}`,
      `--listen=127.0.0.1:${apiPort}`,
      `--global.listen-port=${globalPort}`,
      "--log.level=warn",
    ]);
    const sampler = sampleTree(local.child.pid!);
    const treeRss = () => [...sampler.rows.values()].reduce((s, r) => s + r.lastRssMiB, 0);
    let peakTreeRss = 0;
    // freemem() is Linux's MemAvailable.
    const available0 = freemem() / 2 ** 20;
    let minAvailable = available0;
    let stoppedFor: string | undefined;
    // Each second, not between checks: a global count's peak (Thanos Query) lasts seconds.
    memoryWatch = setInterval(() => {
      peakTreeRss = Math.max(peakTreeRss, treeRss());
      minAvailable = Math.min(minAvailable, freemem() / 2 ** 20);
      if (minAvailable < MIN_AVAILABLE_MIB && stoppedFor === undefined) {
        stoppedFor = `the machine's available memory fell under ${MIN_AVAILABLE_MIB} MiB; stopped`;
        local!.child.kill("SIGTERM");
      }
    }, 1000);
    const watch = () => {
      if (stoppedFor !== undefined) throw new Error(stoppedFor);
      if (local!.child.exitCode !== null)
        throw new Error(`promshard local exited ${local!.child.exitCode}:\n${local!.stderr()}`);
      if (seconds() > TIMEOUT_S) throw new Error(`not settled after ${TIMEOUT_S} s`);
    };
    const shardsNow = async () =>
      (await getJson<{ shards: ShardJson[] }>(`http://127.0.0.1:${apiPort}/api/v1/shards`))?.shards ?? [];

    let assignedSeconds = Number.NaN;
    let scrapedSeconds = Number.NaN;
    while (Number.isNaN(scrapedSeconds)) {
      watch();
      if (Number.isNaN(assignedSeconds)) {
        const assigned = new Set((await shardsNow()).flatMap((s) => s.targets.map((t) => t.labels.instance)));
        if (assigned.size === N) {
          assignedSeconds = seconds();
          console.log(`every target assigned after ${round(assignedSeconds)} s`);
        }
      }
      const q = `count(count by (instance) (count_over_time(up{job="${JOB}"}[1h])))`;
      if ((await instantValue(`http://127.0.0.1:${globalPort}`, q, 30_000)) === N) {
        scrapedSeconds = seconds();
        console.log(`every target scraped once after ${round(scrapedSeconds)} s`);
      }
      await sleep(2_000);
    }

    const intervalMs = Number.parseFloat(INTERVAL) * (INTERVAL.endsWith("m") ? 60_000 : 1000);
    const settleBy = performance.now() + SETTLE_S * 1000;
    let shards: ShardJson[] = [];
    let checks: Checks;
    let held = 0;
    for (let attempt = 1; ; attempt++) {
      watch();
      shards = await shardsNow();
      checks = await check(globalPort, shards);
      console.log(
        `check ${attempt} at ${round(seconds())} s: ${checks.unscraped} targets on no shard, ${checks.onSeveral} on several, ` +
          `${checks.notUp} not up; global count ${checks.globalCount} (expected ${expected})`,
      );
      held = checks.oneShardEach && checks.globalCountExact ? held + 1 : 0;
      if (held >= CHECKS || performance.now() > settleBy) break;
      await sleep(intervalMs);
    }
    clearInterval(memoryWatch);
    sampler.stop();
    const checkedSeconds = seconds();

    const rows = [...sampler.rows.values()].filter((r) => r.role !== "").sort((a, b) => a.role.localeCompare(b.role));
    const coordinator = rows.find((r) => r.role.startsWith("coordinator"));
    const prometheus = rows.filter((r) => r.role.startsWith("prometheus"));
    const sum = (rs: readonly Row[]) => rs.reduce((s, r) => s + r.peakRssMiB, 0);
    const coordinatorSeries = shards.map((s) => s.series);
    const promSeries = checks.perShard.map((s) => s.prometheusSeries);
    const summary = {
      targets: N,
      seriesExpected: expected,
      budget,
      shardsUsed: shards.length,
      everyTargetAssignedSeconds: round(assignedSeconds),
      everyTargetScrapedOnceSeconds: round(scrapedSeconds),
      checkedAtSeconds: round(checkedSeconds),
      seriesPerShard: {
        coordinator: { min: Math.min(...coordinatorSeries), max: Math.max(...coordinatorSeries) },
        prometheus: { min: Math.min(...promSeries), max: Math.max(...promSeries) },
      },
      coordinator: {
        cpuSeconds: round(coordinator?.cpuSeconds ?? 0, 2),
        peakRssMiB: round(coordinator?.peakRssMiB ?? 0),
      },
      prometheusPeakRssMiB: {
        min: round(Math.min(...prometheus.map((r) => r.peakRssMiB))),
        max: round(Math.max(...prometheus.map((r) => r.peakRssMiB))),
      },
      treePeakRssMiB: round(peakTreeRss),
      availableMemoryFellMiB: round(available0 - minAvailable),
      processPeakRssSumMiB: round(sum(rows)),
    };
    console.log(
      `\n${N} targets, ${expected} series, --shard.max-series ${budget}, scrape interval ${INTERVAL}; load average ` +
        `${load0.map((l) => l.toFixed(2)).join(" ")} at the start, ${loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")} at the end`,
    );
    console.table({
      "every target assigned": `${summary.everyTargetAssignedSeconds} s`,
      "every target scraped once": `${summary.everyTargetScrapedOnceSeconds} s`,
      "shards used": `${summary.shardsUsed} (asked for ~${SHARDS})`,
      "series per shard (coordinator)": `${summary.seriesPerShard.coordinator.min}-${summary.seriesPerShard.coordinator.max} of ${budget}`,
      "series per shard (its Prometheus)": `${summary.seriesPerShard.prometheus.min}-${summary.seriesPerShard.prometheus.max} of ${budget}`,
      "coordinator CPU / peak RSS": `${summary.coordinator.cpuSeconds} s / ${summary.coordinator.peakRssMiB} MiB`,
      "Prometheus peak RSS": `${summary.prometheusPeakRssMiB.min}-${summary.prometheusPeakRssMiB.max} MiB`,
      "whole tree's peak RSS (at once)": `${summary.treePeakRssMiB} MiB`,
      "machine's available memory fell by": `${summary.availableMemoryFellMiB} MiB`,
    });
    console.table(
      shards.map((s) => {
        const on = checks.perShard.find((p) => p.id === s.id);
        return {
          shard: s.id,
          targets: on?.targets,
          up: on?.up,
          "series (coordinator)": s.series,
          "series (Prometheus)": on?.prometheusSeries,
          budget,
        };
      }),
    );
    console.table(
      rows.map((r) => ({ process: r.role, "CPU s": round(r.cpuSeconds, 2), "peak RSS MiB": round(r.peakRssMiB) })),
    );
    const ok = held >= CHECKS;
    console.log(`the checks held ${held} time(s) in a row, one scrape interval apart (${CHECKS} wanted)`);
    console.table([
      {
        check: "every target scraped by exactly one shard (each shard's Prometheus /api/v1/targets), up",
        result: `${N - checks.unscraped - checks.onSeveral} of ${N}; ${checks.unscraped} on none, ${checks.onSeveral} on several, ${checks.notUp} not up`,
        ok: checks.oneShardEach ? "yes" : "FAILED",
      },
      {
        check: 'global count: count({__name__=~".+"}) through the global view',
        result: `${checks.globalCount} (served ${served} + ${PER_SCRAPE}×${N} = ${expected})`,
        ok: checks.globalCountExact ? "yes" : "FAILED",
      },
    ]);
    const path = writeResults(`scale-real-${N}`, { ...summary, checks, processes: rows, ok });
    console.log(`results: ${path}`);
    return ok;
  } finally {
    clearInterval(memoryWatch);
    await stopLocal(local?.child);
    exporter.closeAllConnections();
    await new Promise((resolve) => exporter.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!(await main())) process.exitCode = 1;
