/**
 * What each process of a running promshard costs, in the seed's case: 6 demo exporters of
 * 10045 series (10040 + Prometheus's 5 per scrape), `--shard.max-series 30000`, so 3 shards of
 * 2 targets. `promshard local` is started through the ./promshard launcher, as a user runs it
 * (with the Node flags and compile cache the launcher sets), with its real Prometheus shards and
 * Thanos parts.
 *
 * Every process of its tree is read from /proc each second: CPU seconds (utime+stime since
 * the process started, so start-up counts) and peak VmRSS. `promshard local` is one process
 * with the coordinator in it, so its row is the coordinator's (plus the supervision of the
 * shards'). Also: time from the start to every target scraped once (the global view answers
 * `up` for all 6 instances). And, before the run, what loading each mode's modules costs
 * (`promshard <mode> --help`): the share of Kvass's whole run a process has spent before it
 * does anything, where a new import shows first.
 *
 * Kvass (github.com/tkestack/kvass) is the baseline. It cannot be built here: the Go module
 * proxy this machine reaches answers 403 "This module version is not available" for
 * github.com/tkestack/kvass (its version list and v0.3.1), so the figures printed beside ours
 * are the ones measured earlier on this machine with Kvass v0.3.1 (issue 16), labelled so.
 *
 * FOOTPRINT_SECONDS=300 node bench/run.ts footprint (the default); 60 for a quick look.
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type DemoExporter, startDemoExporter } from "../src/demo/exporter.ts";
import { freePort } from "../src/util/ports.ts";
import { writeResults } from "./lib.ts";
import { instantValue, LAUNCHER, type Row, sampleTree, startLocal, stopLocal } from "./local-run.ts";

const SECONDS = Number(process.env.FOOTPRINT_SECONDS ?? 300);
const TARGETS = 6;
const SERIES = 10_040;
const MAX_SERIES = 30_000;
/**
 * The steady state starts this long after every target was scraped once (first assignments,
 * reloads and the first explores are over by then): CPU from there on is what the processes
 * cost when nothing changes, per minute.
 */
const STEADY_AFTER_SECONDS = 30;

/** Kvass v0.3.1 in the same case, 300 s, measured earlier on this machine (issue 16); not run here. */
const KVASS_REFERENCE = {
  coordinator: { cpuSeconds: 0.25, peakRssMiB: 56 },
  sidecar: { cpuSeconds: 0.36, peakRssMiB: 54 },
  all: { cpuSeconds: 3.85, rssMiB: 498 },
  everyTargetScrapedSeconds: 35,
};

/**
 * Printed by each Node process at exit when imported through NODE_OPTIONS: its CPU seconds and
 * peak RSS (MiB). No spaces or double quotes, which NODE_OPTIONS would split or unquote.
 */
const EXIT_USAGE =
  "data:text/javascript,process.on('exit',()=>process.stderr.write('\\nUSAGE'+JSON.stringify(((u)=>" +
  "({cpu:(u.userCPUTime+u.systemCPUTime)/1e6,rss:u.maxRSS/1024}))(process.resourceUsage()))))";

/**
 * What loading a mode costs before it does anything: `promshard <mode> --help` through the
 * launcher loads the mode's modules (the command and everything it imports) and exits. Run
 * twice, the first filling the launcher's compile cache (keyed by content) as a user's first
 * start does; the second is the figure of every later start.
 */
function startCost(mode: string): { cpuSeconds: number; peakRssMiB: number } {
  let usage = "";
  for (let i = 0; i < 2; i++) {
    const r = spawnSync(LAUNCHER, [mode, "--help"], {
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${EXIT_USAGE}` },
    });
    usage = /USAGE(\{.*\})/.exec(r.stderr)?.[1] ?? "";
    if (r.status !== 0 || usage === "") throw new Error(`promshard ${mode} --help: exit ${r.status}: ${r.stderr}`);
  }
  const u = JSON.parse(usage) as { cpu: number; rss: number };
  return { cpuSeconds: u.cpu, peakRssMiB: u.rss };
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const load0 = loadavg();
  const dir = mkdtempSync(join(tmpdir(), "promshard-bench-footprint-"));
  const exporters: DemoExporter[] = [];
  let local: ChildProcess | undefined;
  try {
    for (let i = 0; i < TARGETS; i++) exporters.push(await startDemoExporter({ series: SERIES, host: "127.0.0.1" }));
    writeFileSync(
      join(dir, "targets.json"),
      JSON.stringify([{ targets: exporters.map((e) => `127.0.0.1:${e.port}`) }]),
    );
    writeFileSync(
      join(dir, "prometheus.yml"),
      'global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: demo\n    file_sd_configs:\n      - files: ["targets.json"]\n',
    );
    const start = { coordinator: startCost("local"), sidecar: startCost("sidecar") };
    const globalPort = await freePort();
    const started = performance.now();
    const run = startLocal([
      `--config=${join(dir, "prometheus.yml")}`,
      `--shard.max-series=${MAX_SERIES}`,
      `--storage.path=${join(dir, "data")}`,
      `--listen=127.0.0.1:${await freePort()}`,
      `--global.listen-port=${globalPort}`,
      "--log.level=warn",
    ]);
    local = run.child;
    const sampler = sampleTree(local.pid!);
    let everyScrapedSeconds = Number.NaN;
    let steadyAt = Number.NaN;
    const end = started + SECONDS * 1000;
    while (performance.now() < end) {
      if (local.exitCode !== null) throw new Error(`promshard local exited ${local.exitCode}:\n${run.stderr()}`);
      if (
        Number.isNaN(everyScrapedSeconds) &&
        (await instantValue(`http://127.0.0.1:${globalPort}`, 'count(count_over_time(up{job="demo"}[10m]))')) ===
          TARGETS
      )
        everyScrapedSeconds = (performance.now() - started) / 1000;
      if (
        Number.isNaN(steadyAt) &&
        performance.now() - started >= (everyScrapedSeconds + STEADY_AFTER_SECONDS) * 1000
      ) {
        sampler.steady();
        steadyAt = performance.now();
      }
      await sleep(Number.isNaN(everyScrapedSeconds) ? 250 : 1000);
    }
    sampler.stop();
    const steadyMinutes = (performance.now() - steadyAt) / 60_000;
    // Short-lived helpers (the launcher's version check) are in the sums; a pid never read is not.
    const rows = [...sampler.rows.values()].filter((r) => r.role !== "").sort((a, b) => a.role.localeCompare(b.role));
    const total = (pick: (r: Row) => boolean) =>
      rows
        .filter(pick)
        .reduce((s, r) => ({ cpu: s.cpu + r.cpuSeconds, rss: s.rss + r.peakRssMiB }), { cpu: 0, rss: 0 });
    const promshardOwn = (r: Row) => r.role.startsWith("coordinator") || r.role.startsWith("sidecar");
    const kvassFor = (r: Row) =>
      r.role.startsWith("coordinator")
        ? KVASS_REFERENCE.coordinator
        : r.role.startsWith("sidecar")
          ? KVASS_REFERENCE.sidecar
          : undefined;
    console.log(
      `${TARGETS} targets × ${SERIES + 5} series, --shard.max-series ${MAX_SERIES}, ${SECONDS} s; ` +
        `load average ${load0.map((l) => l.toFixed(2)).join(" ")} at the start, ${loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")} at the end`,
    );
    console.table(
      rows.map((r) => {
        const k = kvassFor(r);
        return {
          process: r.role,
          "CPU s": round(r.cpuSeconds),
          "steady CPU s/min":
            r.cpuAtSteady === undefined || !(steadyMinutes > 0)
              ? ""
              : round((r.cpuSeconds - r.cpuAtSteady) / steadyMinutes, 3),
          "peak RSS MiB": round(r.peakRssMiB, 1),
          "RSS MiB at end": round(r.lastRssMiB, 1),
          "Kvass v0.3.1 (reference)": k ? `${k.cpuSeconds} s / ${k.peakRssMiB} MiB` : "",
          goal: k ? (r.cpuSeconds <= k.cpuSeconds && r.peakRssMiB <= k.peakRssMiB ? "met" : "OVER") : "",
        };
      }),
    );
    console.table(
      (["coordinator", "sidecar"] as const).map((role) => {
        const k = KVASS_REFERENCE[role];
        return {
          "loading the modules of": role === "coordinator" ? "promshard local" : "promshard sidecar",
          "CPU s": round(start[role].cpuSeconds, 3),
          "peak RSS MiB": round(start[role].peakRssMiB, 1),
          "Kvass v0.3.1's whole run (reference)": `${k.cpuSeconds} s / ${k.peakRssMiB} MiB`,
          "share of it": `${Math.round((100 * start[role].cpuSeconds) / k.cpuSeconds)} % / ${Math.round((100 * start[role].peakRssMiB) / k.peakRssMiB)} %`,
        };
      }),
    );
    const own = total(promshardOwn);
    const all = total(() => true);
    // Kvass's total (498 MiB) leaves no room for Thanos (~70 MiB a process here): its coordinator
    // (56), 3 sidecars (~160) and 3 Prometheus (~280). The same processes of ours, beside it.
    const likeKvass = total((r) => !r.role.startsWith("thanos"));
    const sidecars = rows.filter((r) => r.role.startsWith("sidecar")).length;
    const kvassOwn = {
      cpu: KVASS_REFERENCE.coordinator.cpuSeconds + sidecars * KVASS_REFERENCE.sidecar.cpuSeconds,
      rss: KVASS_REFERENCE.coordinator.peakRssMiB + sidecars * KVASS_REFERENCE.sidecar.peakRssMiB,
    };
    const line = (
      what: string,
      ours: { cpu: number; rss: number },
      kvass: { cpu: number; rss: number } | undefined,
    ) => ({
      what,
      "CPU s": round(ours.cpu),
      "peak RSS MiB (summed)": round(ours.rss, 1),
      "Kvass v0.3.1 (reference)": kvass ? `${round(kvass.cpu)} s / ${kvass.rss} MiB` : "",
      goal: kvass ? (ours.cpu < kvass.cpu && ours.rss < kvass.rss ? "met" : "OVER") : "",
    });
    console.table([
      line(`coordinator + ${sidecars} sidecars`, own, kvassOwn),
      line("with the Prometheus shards (what Kvass's total counts)", likeKvass, {
        cpu: KVASS_REFERENCE.all.cpuSeconds,
        rss: KVASS_REFERENCE.all.rssMiB,
      }),
      line("all processes, Thanos included", all, undefined),
    ]);
    console.log(
      `Every target scraped once after ${round(everyScrapedSeconds, 1)} s (Kvass reference: ` +
        `${KVASS_REFERENCE.everyTargetScrapedSeconds} s; goal: faster): ` +
        `${everyScrapedSeconds < KVASS_REFERENCE.everyTargetScrapedSeconds ? "met" : "OVER"}. ` +
        "Kvass was not run here: the Go module proxy answers 403 for github.com/tkestack/kvass.",
    );
    const path = writeResults("footprint", {
      seconds: SECONDS,
      loadAverage: { start: load0, end: loadavg() },
      everyTargetScrapedSeconds: everyScrapedSeconds,
      steadyMinutes,
      processes: rows,
      promshardOwn: own,
      withoutThanos: likeKvass,
      all,
      startCost: start,
      kvassReference: KVASS_REFERENCE,
    });
    console.log(`results: ${path}`);
  } finally {
    await stopLocal(local);
    await Promise.all(exporters.map((e) => e.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
