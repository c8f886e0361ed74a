/**
 * What the promshard sidecar costs, measured on real processes (`node src/cli.ts sidecar`,
 * Prometheus 3.16, the demo exporter):
 *
 * 1. PUT /api/v1/assignment of 10,000 targets across 20 jobs (10 static_configs jobs, 10
 *    file_sd jobs whose files carry ~20 `__meta_kubernetes_*` labels per target; the
 *    assignment is what a coordinator discovers from that config). The PUT returns once the
 *    target files are written, so its round trip is the time to the files; after every PUT
 *    (untimed) the target directory is read back and compared with targetFiles(). Runs
 *    alternate between two disjoint assignments (every file changes), then between two that
 *    differ in 1% of the targets; the baseline is a re-PUT that changes nothing.
 *    Then HOLD_PUTS more whole-set PUTs (A<->B) in a row, with the sidecar's RSS after the
 *    first and the last and its peak: memory must level off, not climb with each push.
 * 2. The sidecar process at rest beside a real Prometheus 3.16 scraping 300 targets on a demo
 *    exporter: CPU (utime+stime from /proc/<pid>/stat) over REST_SECONDS, and VmRSS.
 * 3. One 10,000-series scrape, direct (baseline) and through an HTTP forward proxy in a child
 *    process, as Kvass routes every scrape through its sidecar (Prometheus's proxy_url): a
 *    plain pass-through, and one that also counts the series while streaming
 *    (createSeriesCounter), which is the work Kvass's proxy adds. Latency per scrape and the
 *    proxy's CPU per scrape (its process.cpuUsage delta over the timed scrapes).
 *
 * PUTS=20 HOLD_PUTS=300 REST_SECONDS=20 SCRAPE_SECONDS=8 node bench/run.ts sidecar (the defaults).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { dump } from "js-yaml";
import { loadConfigFile } from "../src/config/load.ts";
import type { AssignedTarget } from "../src/contract/assignment.ts";
import { startDemoExporter } from "../src/demo/exporter.ts";
import { createSeriesCounter, formatFromContentType, type SeriesCounter } from "../src/prom/exposition/index.ts";
import { dialectFor } from "../src/prom/version.ts";
import { type ShardSettings, targetFiles } from "../src/sidecar/generate.ts";
import { SIDECAR_NODE_FLAGS } from "../src/sidecar/node-flags.ts";
import { freePort } from "../src/util/ports.ts";
import { discoverAll, startProxy } from "../test/fixtures/sidecar/harness.ts";
import { prometheusBinaries, startPrometheus, waitForTargets } from "../test/support/prometheus.ts";
import { type Measurement, measure, printTable, writeResults } from "./lib.ts";

const SELF = fileURLToPath(import.meta.url);
const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const TOKEN = "bench-token-0123456789";
const PROM_VERSION = "3.16";
const dialect = dialectFor(PROM_VERSION);

const TARGETS = 10_000;
const JOBS = 20;
const PER_JOB = TARGETS / JOBS;
/** 1% of the targets: moved out and replaced by as many others. */
const CHURN = TARGETS / 100;
const RACKS = 10;
const PUTS = Number(process.env.PUTS ?? 20);
/** Whole-set pushes in a row for the memory line (the issue saw 178 -> 519 MiB over ~60). */
const HOLD_PUTS = Number(process.env.HOLD_PUTS ?? 300);
/** The memory goal: RSS after the last of HOLD_PUTS pushes at most this much above the first's. */
const HOLD_GROWTH_GOAL = 1.2;
const REST_TARGETS = 300;
const REST_SERIES = 200;
const REST_SECONDS = Number(process.env.REST_SECONDS ?? 20);
const SCRAPE_SERIES = 10_000;
const SCRAPE_SECONDS = Number(process.env.SCRAPE_SECONDS ?? 8);

// ---------------------------------------------------------------- small helpers

type Row = Measurement & Record<string, unknown>;

/** A Measurement from samples taken outside measure(). */
function summarize(name: string, times: number[]): Row {
  const s = [...times].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  const mid = s.length >> 1;
  return {
    name,
    runs: s.length,
    medianMs: s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2,
    p99Ms: at(0.99),
    meanMs: s.reduce((a, b) => a + b, 0) / s.length,
    minMs: s[0]!,
    maxMs: s[s.length - 1]!,
  };
}

const median = (xs: number[]) => summarize("", xs).medianMs;
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user+system) and resident memory of a process, from /proc. */
function procSample(pid: number): { cpuSeconds: number; rssMiB: number; at: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after "pid (comm) " start at field 3 (state); utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { cpuSeconds: ticks / CLK_TCK, rssMiB: rss ? Number(rss[1]) / 1024 : Number.NaN, at: performance.now() };
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

interface Child {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `node <args>`; resolves with the first stdout match of `ready` (or at once without one). */
async function startNode(args: string[], ready?: RegExp): Promise<Child & { match: RegExpExecArray | null }> {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = signal ? `killed by ${signal}` : `exited with status ${code}`;
      children.delete(child);
      resolve();
    }),
  );
  const stop = async () => {
    if (exited !== undefined) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exit;
    clearTimeout(killer);
  };
  const match = await new Promise<RegExpExecArray | null>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${args.join(" ")}: not ready in 30 s\n${out}`)), 30_000);
    const check = () => {
      const m = ready?.exec(out) ?? null;
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      check();
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      out += s;
    });
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`node ${args.join(" ")} ${exited}\n${out}`));
    });
    if (!ready) {
      clearTimeout(timer);
      resolve(null);
    }
  });
  if (child.pid === undefined) throw new Error(`node ${args.join(" ")}: no pid`);
  return { child, pid: child.pid, match, output: () => out, stop };
}

interface SidecarProcess extends Child {
  readonly url: string;
  readonly outputDir: string;
}

/** `promshard sidecar` as a child process; resolves once /readyz answers 200. */
async function startSidecar(dir: string, configFile: string, prometheusUrl: string): Promise<SidecarProcess> {
  writeFileSync(join(dir, "token"), `${TOKEN}\n`);
  const port = await freePort();
  const outputDir = join(dir, "out");
  const c = await startNode([
    ...SIDECAR_NODE_FLAGS,
    CLI,
    "sidecar",
    `--config.file=${configFile}`,
    `--output.dir=${outputDir}`,
    `--state.dir=${join(dir, "state")}`,
    `--api.token-file=${join(dir, "token")}`,
    `--listen=127.0.0.1:${port}`,
    `--prometheus.url=${prometheusUrl}`,
    `--prometheus.version=${PROM_VERSION}`,
    "--shard=0",
    "--log.level=warn",
  ]);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (c.child.exitCode !== null || c.child.signalCode !== null) throw new Error(`sidecar exited:\n${c.output()}`);
    const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`sidecar not ready in 30 s:\n${c.output()}`);
    await sleep(50);
  }
  return { ...c, url, outputDir };
}

/** PUT /api/v1/assignment with the targets already serialized; the round trip in ms. */
async function put(sidecar: SidecarProcess, version: number, targetsJson: string) {
  const body = `{"version":${version},"targets":${targetsJson}}`;
  const t0 = performance.now();
  const res = await fetch(`${sidecar.url}/api/v1/assignment`, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`PUT version ${version}: HTTP ${res.status}: ${text.slice(0, 2000)}`);
  const reply = JSON.parse(text) as {
    version: number;
    files: { written: number; removed: number; unchanged: number };
    durationMs: number;
  };
  return { ms, reply, bytes: body.length };
}

// ---------------------------------------------------------------- 1. assignment PUT -> target files

const jobName = (j: number) => `job-${String(j).padStart(2, "0")}`;
const isFileJob = (j: number) => j >= JOBS / 2;
/** Per job: PER_JOB targets of assignment A, PER_JOB of B, and CHURN/JOBS spares for the 1% change. */
const POOL_PER_JOB = 2 * PER_JOB + CHURN / JOBS;
/** Pool member n of job j: a distinct pod IP (10.<j>.x.y) on port 9100. */
const podIp = (j: number, n: number) => `10.${j}.${n >> 8}.${n & 255}`;
const address = (j: number, n: number) => `${podIp(j, n)}:9100`;

/** The labels a Kubernetes-pod inventory writes per target into file_sd files. */
function podLabels(j: number, n: number): Record<string, string> {
  const ns = `team-${(j * 7 + n) % 40}`;
  const app = `svc-${j}-${n % 25}`;
  return {
    __meta_kubernetes_namespace: ns,
    __meta_kubernetes_pod_name: `${app}-7f9c6d5b8-${n.toString(36).padStart(5, "0")}`,
    __meta_kubernetes_pod_ip: podIp(j, n),
    __meta_kubernetes_pod_node_name: `node-${(j * 31 + n) % 120}`,
    __meta_kubernetes_pod_host_ip: `192.168.${(n % 120) >> 8}.${n % 120}`,
    __meta_kubernetes_pod_phase: "Running",
    __meta_kubernetes_pod_ready: "true",
    __meta_kubernetes_pod_uid: `0f5e${(j * 10_000 + n).toString(16).padStart(8, "0")}-1c2d-4e5f-8a9b-0c1d2e3f4a5b`,
    __meta_kubernetes_pod_controller_kind: "ReplicaSet",
    __meta_kubernetes_pod_controller_name: `${app}-7f9c6d5b8`,
    __meta_kubernetes_pod_container_name: "app",
    __meta_kubernetes_pod_container_image: `registry.example.com/${app}:1.${n % 7}.0`,
    __meta_kubernetes_pod_container_port_name: "metrics",
    __meta_kubernetes_pod_container_port_number: "9100",
    __meta_kubernetes_pod_container_port_protocol: "TCP",
    __meta_kubernetes_pod_label_app: app,
    __meta_kubernetes_pod_labelpresent_app: "true",
    __meta_kubernetes_pod_label_pod_template_hash: "7f9c6d5b8",
    __meta_kubernetes_pod_annotation_prometheus_io_scrape: "true",
    __meta_kubernetes_pod_annotationpresent_prometheus_io_scrape: "true",
  };
}

/** The original config and its file_sd files, under `dir`; returns the config's path. */
function writeOriginalConfig(dir: string): string {
  const scrapeConfigs = Array.from({ length: JOBS }, (_, j) => {
    const job: Record<string, unknown> = { job_name: jobName(j), scrape_interval: "30s", scrape_timeout: "10s" };
    if (isFileJob(j)) {
      job.file_sd_configs = [{ files: [`sd/${jobName(j)}/*.json`], refresh_interval: "1m" }];
      for (let r = 0; r < RACKS; r++) {
        const groups = [];
        for (let n = r; n < POOL_PER_JOB; n += RACKS)
          groups.push({ targets: [address(j, n)], labels: podLabels(j, n) });
        mkdirSync(join(dir, "sd", jobName(j)), { recursive: true });
        writeFileSync(join(dir, "sd", jobName(j), `rack-${r}.json`), JSON.stringify(groups));
      }
      job.relabel_configs = [
        { source_labels: ["__meta_kubernetes_pod_phase"], regex: "Pending|Succeeded|Failed", action: "drop" },
        { action: "labelmap", regex: "__meta_kubernetes_pod_label_(.+)" },
        { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
        { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
        { source_labels: ["__meta_kubernetes_pod_node_name"], target_label: "node" },
        { action: "labeldrop", regex: "pod_template_hash" },
      ];
    } else {
      job.static_configs = Array.from({ length: RACKS }, (_, r) => ({
        targets: Array.from({ length: Math.ceil((POOL_PER_JOB - r) / RACKS) }, (_, k) => address(j, r + k * RACKS)),
        labels: { datacenter: `dc-${j % 3}`, rack: `rack-${r}`, env: "prod", team: `team-${j}` },
      }));
      job.relabel_configs = [{ source_labels: ["__address__"], regex: "([^:]+):.*", target_label: "host" }];
    }
    return job;
  });
  const path = join(dir, "prometheus.yml");
  writeFileSync(
    path,
    dump({ global: { scrape_interval: "30s", external_labels: { cluster: "bench" } }, scrape_configs: scrapeConfigs }),
  );
  return path;
}

/** Job and pool index of a discovered target. */
function poolIndex(t: AssignedTarget): { j: number; n: number } {
  const m = /^10\.(\d+)\.(\d+)\.(\d+):9100$/.exec(t.labels.__address__ ?? "");
  if (!m) throw new Error(`unexpected target ${JSON.stringify(t.labels)}`);
  return { j: Number(m[1]), n: Number(m[2]) * 256 + Number(m[3]) };
}

/** Reads every target file back; throws unless the directory holds exactly `expected`. Returns the file count. */
function verifyFiles(targetsDir: string, expected: ReadonlyMap<string, string>, what: string): number {
  const found = new Map<string, string>();
  for (const job of readdirSync(targetsDir)) {
    for (const f of readdirSync(join(targetsDir, job)))
      found.set(`${job}/${f}`, readFileSync(join(targetsDir, job, f), "utf8"));
  }
  const problems: string[] = [];
  for (const [rel, content] of expected) {
    if (!found.has(rel)) problems.push(`${rel} missing`);
    else if (found.get(rel) !== content) problems.push(`${rel} differs`);
  }
  for (const rel of found.keys()) if (!expected.has(rel)) problems.push(`${rel} not expected`);
  if (problems.length > 0) throw new Error(`${what}: target files wrong: ${problems.slice(0, 10).join("; ")}`);
  return found.size;
}

async function benchAssignment() {
  const dir = mkdtempSync(join(tmpdir(), "promshard-bench-sidecar-put-"));
  let sidecar: SidecarProcess | undefined;
  try {
    const configFile = writeOriginalConfig(dir);
    const discovered = await discoverAll(configFile, dialect);
    if (discovered.length !== JOBS * POOL_PER_JOB) {
      throw new Error(`discovered ${discovered.length} targets, expected ${JOBS * POOL_PER_JOB}`);
    }
    // A: pool members 0..PER_JOB-1 of every job; B: the next PER_JOB (disjoint); A1: A with
    // CHURN/JOBS per job swapped for the spares, spread over the racks.
    const spareFrom = 2 * PER_JOB;
    const churnEvery = PER_JOB / (CHURN / JOBS);
    const a = discovered.filter((t) => poolIndex(t).n < PER_JOB);
    const b = discovered.filter((t) => {
      const { n } = poolIndex(t);
      return n >= PER_JOB && n < spareFrom;
    });
    const a1 = discovered.filter((t) => {
      const { n } = poolIndex(t);
      return n < PER_JOB ? n % churnEvery !== 0 : n >= spareFrom;
    });
    for (const [name, set] of [
      ["A", a],
      ["B", b],
      ["A1", a1],
    ] as const) {
      if (set.length !== TARGETS) throw new Error(`assignment ${name} has ${set.length} targets, not ${TARGETS}`);
    }
    const labelsPerTarget = (jobs: (j: number) => boolean) => {
      const ts = a.filter((t) => jobs(poolIndex(t).j));
      return round(ts.reduce((s, t) => s + Object.keys(t.labels).length, 0) / ts.length);
    };

    // Nothing listens at the Prometheus URL: this part is the sidecar alone (as a stopped
    // Prometheus; file writes never wait for it).
    sidecar = await startSidecar(dir, configFile, `http://127.0.0.1:${await freePort()}`);
    const startRss = procSample(sidecar.pid).rssMiB;
    const targetsDir = join(sidecar.outputDir, "targets");
    const config = loadConfigFile(configFile, dialect);
    const settings: ShardSettings = {
      shard: 0,
      replica: "0",
      shardLabel: "shard",
      replicaLabel: "replica",
      targetsDir,
      remoteWriteDropShard: true,
      refreshInterval: "30s",
    };
    const sets = { A: a, B: b, A1: a1 };
    const json = Object.fromEntries(Object.entries(sets).map(([k, v]) => [k, JSON.stringify(v)])) as Record<
      keyof typeof sets,
      string
    >;
    const expected = Object.fromEntries(
      Object.entries(sets).map(([k, v]) => [k, targetFiles(config, settings, v)]),
    ) as Record<keyof typeof sets, Map<string, string>>;

    let version = 0;
    let files = 0;
    let bodyBytes = 0;
    /** PUTs `sequence` (cycled) `runs` times after `warmup` untimed ones, verifying the files after each. */
    const series = async (name: string, sequence: (keyof typeof sets)[], runs: number, warmup: number) => {
      const times: number[] = [];
      const server: number[] = [];
      const written: number[] = [];
      for (let i = 0; i < warmup + runs; i++) {
        const which = sequence[i % sequence.length]!;
        const r = await put(sidecar!, ++version, json[which]);
        if (r.reply.version !== version) throw new Error(`PUT answered version ${r.reply.version}, sent ${version}`);
        files = verifyFiles(targetsDir, expected[which], `${name}, PUT ${i} (${which})`);
        bodyBytes = Math.max(bodyBytes, r.bytes);
        if (i < warmup) continue;
        times.push(r.ms);
        server.push(r.reply.durationMs);
        written.push(r.reply.files.written + r.reply.files.removed);
      }
      return {
        ...summarize(name, times),
        "sidecar apply ms": round(median(server)),
        "files changed": median(written),
        "files on disk": files,
      };
    };

    await put(sidecar, ++version, json.A);
    verifyFiles(targetsDir, expected.A, "first PUT");
    const rows = [
      await series("re-PUT, nothing changed (baseline)", ["A"], PUTS, 2),
      await series("PUT, all 10,000 targets change (A<->B)", ["B", "A"], PUTS, 2),
      await series(`PUT, 1% change (${CHURN} out, ${CHURN} in)`, ["A1", "A"], PUTS, 2),
    ];
    const rest = procSample(sidecar.pid);
    let peak = rest.rssMiB;
    let afterFirst = Number.NaN;
    for (let i = 0; i < HOLD_PUTS; i++) {
      await put(sidecar, ++version, json[i % 2 === 0 ? "B" : "A"]);
      const rss = procSample(sidecar.pid).rssMiB;
      if (i === 0) afterFirst = rss;
      peak = Math.max(peak, rss);
    }
    verifyFiles(targetsDir, expected[HOLD_PUTS % 2 === 1 ? "B" : "A"], `after ${HOLD_PUTS} pushes`);
    const afterLast = procSample(sidecar.pid).rssMiB;
    return {
      rows,
      hold: {
        pushes: HOLD_PUTS,
        rssMiBAfterFirst: round(afterFirst),
        rssMiBAfterLast: round(afterLast),
        peakRssMiB: round(peak),
        growth: round(afterLast / afterFirst, 2),
        goal: HOLD_GROWTH_GOAL,
      },
      targets: TARGETS,
      jobs: JOBS,
      bodyMiB: round(bodyBytes / 2 ** 20, 2),
      labelsPerTarget: { fileSdJobs: labelsPerTarget(isFileJob), staticJobs: labelsPerTarget((j) => !isFileJob(j)) },
      files,
      sidecarRssMiBAtStart: round(startRss),
      sidecarRssMiBAfterPuts: round(rest.rssMiB),
    };
  } finally {
    await sidecar?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- 2. the sidecar at rest beside Prometheus

async function benchRest() {
  const bin = prometheusBinaries().find((b) => b.version.startsWith(`${PROM_VERSION}.`));
  if (!bin) throw new Error(`no Prometheus ${PROM_VERSION} among ${prometheusBinaries().map((b) => b.bin)}`);
  const dir = mkdtempSync(join(tmpdir(), "promshard-bench-sidecar-rest-"));
  const exporter = await startDemoExporter({ series: REST_SERIES });
  const target = `127.0.0.1:${exporter.port}`;
  // The sidecar talks to Prometheus through this (it starts before Prometheus, as in a pod).
  const promProxy = await startProxy();
  let sidecar: SidecarProcess | undefined;
  let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
  try {
    // Two jobs (static and file_sd) over the one exporter; distinct labels make distinct targets.
    const half = REST_TARGETS / 2;
    mkdirSync(join(dir, "sd"), { recursive: true });
    writeFileSync(
      join(dir, "sd", "pods.json"),
      JSON.stringify(
        Array.from({ length: half }, (_, n) => ({ targets: [target], labels: { ...podLabels(0, n), slot: `f${n}` } })),
      ),
    );
    const configFile = join(dir, "prometheus.yml");
    writeFileSync(
      configFile,
      dump({
        global: { scrape_interval: "5s", scrape_timeout: "4s" },
        scrape_configs: [
          {
            job_name: "static",
            static_configs: Array.from({ length: half }, (_, n) => ({ targets: [target], labels: { slot: `s${n}` } })),
          },
          {
            job_name: "pods",
            file_sd_configs: [{ files: ["sd/*.json"] }],
            relabel_configs: [
              { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
              { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
            ],
          },
        ],
      }),
    );
    sidecar = await startSidecar(dir, configFile, promProxy.url);
    const generated = join(sidecar.outputDir, "prometheus.yml");
    prom = await startPrometheus(bin, { config: "# not used\n", args: [`--config.file=${generated}`] });
    await promProxy.setUpstream(prom.url);
    const all = await discoverAll(configFile, dialect);
    const r = await put(sidecar, 1, JSON.stringify(all));
    if (r.reply.version !== 1) throw new Error("the assignment was not applied");
    await waitForTargets(
      prom,
      (t) => t.activeTargets.length === REST_TARGETS && t.activeTargets.every((x) => x.health === "up"),
      60_000,
    );
    const scrapes = async () => {
      const body = await (await fetch(exporter.url)).text();
      return Number(/^demo_scrapes_total (\d+)$/m.exec(body)?.[1]);
    };
    await sleep(2_000); // Let the PUT's garbage go.
    const scrapes0 = await scrapes();
    const s0 = procSample(sidecar.pid);
    const p0 = procSample(prom.pid);
    await sleep(REST_SECONDS * 1000);
    const s1 = procSample(sidecar.pid);
    const p1 = procSample(prom.pid);
    const scraped = (await scrapes()) - scrapes0 - 1;
    const seconds = (s1.at - s0.at) / 1000;
    const cpu = (a: typeof s0, b: typeof s0) => round((100 * (b.cpuSeconds - a.cpuSeconds)) / seconds, 2);
    const up = await prom.targets();
    if (up.activeTargets.filter((t) => t.health === "up").length !== REST_TARGETS) {
      throw new Error("not every target stayed up while at rest");
    }
    return {
      prometheus: bin.version,
      targets: REST_TARGETS,
      seriesPerTarget: REST_SERIES,
      scrapeInterval: "5s",
      seconds: round(seconds),
      scrapesDuringWindow: scraped,
      table: {
        "promshard sidecar": {
          "CPU % of a core": cpu(s0, s1),
          "CPU s": round(s1.cpuSeconds - s0.cpuSeconds, 2),
          "RSS MiB before": round(s0.rssMiB),
          "RSS MiB after": round(s1.rssMiB),
        },
        "Prometheus (for scale)": {
          "CPU % of a core": cpu(p0, p1),
          "CPU s": round(p1.cpuSeconds - p0.cpuSeconds, 2),
          "RSS MiB before": round(p0.rssMiB),
          "RSS MiB after": round(p1.rssMiB),
        },
      },
    };
  } finally {
    await sidecar?.stop();
    await prom?.stop();
    await promProxy.close();
    await exporter.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- 3. the scrape path, with and without a proxy

/** Prometheus 3.16's scrape request headers (default scrape_protocols, no native histograms). */
const SCRAPE_HEADERS = {
  accept:
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
  "accept-encoding": "gzip",
  "user-agent": "Prometheus/3.16.0",
  "x-prometheus-scrape-timeout-seconds": "10",
};

/**
 * The proxy child (`--scrape-proxy pipe|count`): an HTTP forward proxy, as Prometheus's
 * proxy_url uses it (the request line carries the target's absolute URL). It streams the
 * target's body to the client; with `count` it also feeds every chunk to a series counter.
 * `GET /-/stats` reports its CPU time and what it counted.
 */
async function runScrapeProxy(count: boolean): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let scrapes = 0;
  let errors = 0;
  let series = -1;
  let samples = -1;
  const server = createServer((req, res) => {
    if (req.url === "/-/stats") {
      const cpu = process.cpuUsage();
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ cpuMicros: cpu.user + cpu.system, scrapes, errors, series, samples }));
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end("send the target's absolute URL, as to an HTTP proxy\n");
      return;
    }
    const { "proxy-connection": _pc, "proxy-authorization": _pa, ...headers } = req.headers;
    const out = request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: req.method,
        headers: { ...headers, host: target.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        if (!count) {
          up.on("end", () => scrapes++);
          return;
        }
        let counter: SeriesCounter | undefined;
        try {
          const format = formatFromContentType(up.headers["content-type"], { dialect });
          counter = createSeriesCounter({ format, dialect, source: target.href });
        } catch {
          errors++;
        }
        up.on("data", (chunk: Buffer) => {
          try {
            counter?.write(chunk);
          } catch {
            errors++;
            counter = undefined;
          }
        });
        up.on("end", () => {
          scrapes++;
          if (!counter) return;
          try {
            ({ series, samples } = counter.end());
          } catch {
            errors++;
          }
        });
      },
    );
    out.on("error", (err) => {
      errors++;
      if (!res.headersSent) res.writeHead(502);
      res.end(`${err.message}\n`);
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.stdout.write(`listening on port ${(server.address() as AddressInfo).port}\n`);
  await new Promise((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  server.closeAllConnections();
  server.close();
  agent.destroy();
}

interface ProxyStats {
  cpuMicros: number;
  scrapes: number;
  errors: number;
  series: number;
  samples: number;
}

async function benchScrape() {
  const exporter = await startNode(
    [CLI, "demo-exporter", `--series=${SCRAPE_SERIES}`, "--port=0"],
    /serving \d+ series at (http:\/\/127\.0\.0\.1:(\d+)\/metrics)/,
  );
  const proxies: Child[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const metricsUrl = exporter.match![1]!;
    const exporterPort = Number(exporter.match![2]);
    const startProxyChild = async (mode: "pipe" | "count") => {
      const c = await startNode([...process.execArgv, SELF, "--scrape-proxy", mode], /listening on port (\d+)/);
      proxies.push(c);
      return { ...c, port: Number(c.match![1]) };
    };
    const pipe = await startProxyChild("pipe");
    const counting = await startProxyChild("count");
    const stats = async (port: number) =>
      (await (await fetch(`http://127.0.0.1:${port}/-/stats`)).json()) as ProxyStats;

    /** One scrape as Prometheus makes it: GET, read the whole body; through `proxyPort` as proxy_url when given. */
    const scrape = (proxyPort?: number) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          {
            agent,
            host: "127.0.0.1",
            port: proxyPort ?? exporterPort,
            path: proxyPort === undefined ? "/metrics" : metricsUrl,
            headers: SCRAPE_HEADERS,
          },
          (res) => {
            let bytes = 0;
            res.on("data", (c: Buffer) => {
              bytes += c.length;
            });
            res.on("end", () =>
              res.statusCode === 200 ? resolve(bytes) : reject(new Error(`scrape: HTTP ${res.statusCode}`)),
            );
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end();
      });

    const bodyBytes = await scrape();
    const run = async (name: string, proxyPort?: number) => {
      const warmUntil = performance.now() + 1_000;
      while (performance.now() < warmUntil) await scrape(proxyPort);
      const before = proxyPort === undefined ? undefined : await stats(proxyPort);
      const e0 = procSample(exporter.pid);
      const m = await measure(name, () => scrape(proxyPort), { durationMs: SCRAPE_SECONDS * 1000, warmup: 0 });
      const e1 = procSample(exporter.pid);
      const after = proxyPort === undefined ? undefined : await stats(proxyPort);
      const proxyMs = before && after ? (after.cpuMicros - before.cpuMicros) / 1000 / m.runs : 0;
      if (after && (after.errors > 0 || after.scrapes - before!.scrapes !== m.runs)) {
        throw new Error(
          `${name}: proxy saw ${after.scrapes - before!.scrapes} scrapes for ${m.runs}, errors ${after.errors}`,
        );
      }
      return {
        row: {
          ...m,
          "proxy CPU ms/scrape": proxyPort === undefined ? "— (none)" : round(proxyMs, 3),
          "exporter CPU ms/scrape": round(((e1.cpuSeconds - e0.cpuSeconds) * 1000) / m.runs, 3),
        } as Row,
        proxyMs,
        after,
      };
    };
    const direct = await run("direct GET /metrics (baseline)");
    const piped = await run("via proxy, pass-through only", pipe.port);
    const counted = await run("via proxy counting series (Kvass)", counting.port);
    if (counted.after?.series !== SCRAPE_SERIES) {
      throw new Error(`the counting proxy counted ${counted.after?.series} series, not ${SCRAPE_SERIES}`);
    }
    return {
      series: SCRAPE_SERIES,
      bodyKiB: round(bodyBytes / 1024),
      countedSeries: counted.after.series,
      rows: [direct.row, piped.row, counted.row],
      proxyCpuMsPerScrape: { passThrough: piped.proxyMs, counting: counted.proxyMs },
    };
  } finally {
    agent.destroy();
    for (const p of proxies) await p.stop();
    await exporter.stop();
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  console.log(`1. PUT /api/v1/assignment: ${TARGETS} targets, ${JOBS} jobs, ${PUTS} timed PUTs per row`);
  const assignment = await benchAssignment();
  printTable(assignment.rows, "re-PUT, nothing changed (baseline)");
  console.log(
    `body ${assignment.bodyMiB} MiB; labels per target: file_sd jobs ${assignment.labelsPerTarget.fileSdJobs}, ` +
      `static jobs ${assignment.labelsPerTarget.staticJobs}; ${assignment.files} target files verified after every PUT; ` +
      `sidecar RSS ${assignment.sidecarRssMiBAtStart} MiB at start, ${assignment.sidecarRssMiBAfterPuts} MiB after the PUTs. ` +
      `p99 of ${PUTS} runs is their maximum.`,
  );

  const h = assignment.hold;
  console.log(
    `${h.pushes} whole-set pushes of ${assignment.bodyMiB} MiB in a row: sidecar RSS ${h.rssMiBAfterFirst} MiB after the first, ` +
      `${h.rssMiBAfterLast} MiB after the last (peak ${h.peakRssMiB} MiB): ${h.growth}× (goal ≤ ${h.goal}×)` +
      `${h.growth > h.goal ? " OVER GOAL" : ""}`,
  );

  console.log(
    `\n2. the sidecar at rest: Prometheus ${PROM_VERSION} scraping ${REST_TARGETS} targets every 5s, ${REST_SECONDS} s window`,
  );
  const rest = await benchRest();
  console.table(rest.table);
  console.log(`${rest.scrapesDuringWindow} scrapes in ${rest.seconds} s, none of them through the sidecar`);

  console.log(`\n3. one ${SCRAPE_SERIES}-series scrape, direct and through a proxy, ~${SCRAPE_SECONDS} s each`);
  const scrape = await benchScrape();
  printTable(scrape.rows, "direct GET /metrics (baseline)");
  const [d, , c] = scrape.rows as [Row, Row, Row];
  const coresPer1000 = (scrape.proxyCpuMsPerScrape.counting * 1000) / 30 / 1000;
  console.log(
    `body ${scrape.bodyKiB} KiB, ${scrape.countedSeries} series counted by the proxy. A Kvass-style proxy adds ` +
      `${round(c.medianMs - d.medianMs, 2)} ms median latency and ${round(scrape.proxyCpuMsPerScrape.counting, 2)} ms CPU per scrape: ` +
      `${round(coresPer1000, 2)} cores per 1000 such targets at a 30s interval; promshard's sidecar is not on this path.`,
  );
  const path = writeResults("sidecar", { assignment, rest, scrape });
  console.log(`results: ${path}`);
}

if (process.argv[2] === "--scrape-proxy") await runScrapeProxy(process.argv[3] === "count");
else await main();
