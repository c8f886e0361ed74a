/**
 * The harness of the `promshard local` acceptance tests (DESIGN §8): real Prometheus
 * processes, demo exporters, scaled-down timings. One `Scenario` per describe block owns a
 * temp dir, the targets file (file_sd), the user's config, the exporters and other servers,
 * the `promshard local` child (started again with the same flags after a SIGKILL) and any
 * extra Prometheus (a remote-write receiver, an unsharded twin); `close()` in after() stops
 * all of it, including shard processes a SIGKILLed `promshard local` left behind.
 *
 * The checks every scenario shares live here once:
 * - `waitSteady`: the API's assignment and what each shard's Prometheus really scrapes agree,
 *   every target exactly once, every shard ready and within budget, held for a while.
 * - `checkNoGaps`, the gap checker: every sample timestamp a target has in a Prometheus
 *   (the global endpoint, or a remote-write receiver), over the whole scenario, merged over
 *   all series returned (a target may sit on two shards during a move); no hole longer than
 *   1.5 scrape intervals, present from its first appearance (and no later than the test saw
 *   it scraped, so history lost later shows) to the end.
 * - `BudgetWatch`: /api/v1/shards polled every 500 ms, any shard over its budget recorded.
 *
 * Timings: scrape_interval 2 s (one missed scrape is a hole of >= 4 s, well above the 3 s
 * limit, and a 2-CPU machine running a dozen Prometheus keeps up), control loop 1 s.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type DemoExporter, startDemoExporter } from "../../src/demo/exporter.ts";
import { freePort } from "../support/ports.ts";
import {
  type PrometheusBinary,
  prometheusBinaries,
  type RunningPrometheus,
  type StartOptions,
  startPrometheus,
} from "../support/prometheus.ts";

export const SCRAPE_INTERVAL_MS = 2000;
export const BUDGET = 30_000;
/** Series a demo exporter exposes; Prometheus adds its 5 scrape series (up, scrape_*). */
export const DEMO_EXPOSED = 10_040;
export const SERIES_PER_TARGET = DEMO_EXPOSED + 5;
export const JOB = "demo";
/** The gap checker's limit: one missed scrape makes a hole of two intervals. */
export const MAX_GAP_MS = 1.5 * SCRAPE_INTERVAL_MS;

const CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

// ---------------------------------------------------------------------------------------------
// Which Prometheus versions a scenario runs against.

/**
 * The e2e suite should stay well under ~10 minutes. Measured on a 2-CPU machine: these files
 * take about 8 minutes with everything against 3.16 and S2+S3 also against 2.42; everything
 * against both would take about 13 (2.42's fixed 5 s file-SD throttle makes each of its
 * moves and scale-ups slower). So "every" (S2 and S3: growth, moves down and scale-down,
 * where the versions differ most) runs against each binary of prometheusBinaries(), and
 * "newest" (S4, S5, S6, S8, S9, bad inputs) against the newest only.
 * PROMSHARD_E2E_EVERY_VERSION=1 runs everything against every binary (S5 cannot pass on
 * 2.42: it clamps --scrape.discovery-reload-interval to 5 s, so a restarted 2.42 scrapes
 * its targets no sooner than 5 s after it is ready).
 */
export function e2eBinaries(scope: "every" | "newest"): PrometheusBinary[] {
  const all = prometheusBinaries();
  if (scope === "every" || process.env.PROMSHARD_E2E_EVERY_VERSION === "1") return all;
  const rank = (b: PrometheusBinary) => b.version.split(".").reduce((n, part) => n * 1000 + Number(part), 0);
  return [all.reduce((a, b) => (rank(b) > rank(a) ? b : a))];
}

/** "2.42" for 2.42.0: what --prometheus.version takes. */
export function majorMinor(bin: PrometheusBinary): string {
  return bin.version.split(".").slice(0, 2).join(".");
}

// ---------------------------------------------------------------------------------------------
// HTTP and PromQL.

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** GET a JSON document; throws (HttpError for a status other than 2xx) with the start of the body. */
export async function getJson<T>(url: string, timeoutMs = 10_000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new HttpError(res.status, `GET ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`GET ${url}: not JSON: ${text.slice(0, 300)}`);
  }
}

export interface Series {
  metric: Record<string, string>;
  /** Instant vector: one [seconds, value]. */
  value?: [number, string];
  /** Range vector: [seconds, value] pairs. */
  values?: [number, string][];
}

/** An instant query (`time` in ms since the epoch, default now); the vector's or matrix's series. */
export async function query(promUrl: string, expr: string, timeMs?: number): Promise<Series[]> {
  const params = new URLSearchParams({ query: expr });
  if (timeMs !== undefined) params.set("time", (timeMs / 1000).toFixed(3));
  const body = await getJson<{ status: string; error?: string; data?: { resultType: string; result: Series[] } }>(
    `${promUrl}/api/v1/query?${params}`,
    30_000,
  );
  if (body.status !== "success" || !body.data) throw new Error(`${expr} at ${promUrl}: ${body.error ?? "no data"}`);
  if (body.data.resultType !== "vector" && body.data.resultType !== "matrix")
    throw new Error(`${expr} at ${promUrl}: a ${body.data.resultType}, not a vector or matrix`);
  return body.data.result;
}

/** The one value of an aggregation such as count(...); undefined when the result is empty. */
export async function queryValue(promUrl: string, expr: string): Promise<number | undefined> {
  const [first] = await query(promUrl, expr);
  return first?.value ? Number(first.value[1]) : undefined;
}

/** Every series of the demo job, each counted once: exact on the global endpoint even during a move. */
export const COUNT_DEMO = `count({__name__=~".+", job="${JOB}"})`;

/** Thrown inside an `until` poll when waiting longer cannot help (the process under test is gone). */
export class GiveUp extends Error {}

/**
 * Polls `fn` every `everyMs` until it returns a value (not undefined); a throw means "not
 * yet" and its message is kept, except GiveUp, which ends the wait at once. On timeout the
 * error names `what` and says the last reason.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  opts: { timeoutMs: number; everyMs?: number; context?: () => string },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = "returned nothing";
  for (;;) {
    try {
      const got = await fn();
      if (got !== undefined) return got;
      last = "returned nothing";
    } catch (err) {
      if (err instanceof GiveUp) throw new Error(`${what}: ${err.message}`, { cause: err });
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const extra = opts.context ? `\n${opts.context()}` : "";
      throw new Error(`${what}: not within ${opts.timeoutMs} ms; last: ${last}${extra}`);
    }
    await sleep(opts.everyMs ?? 500);
  }
}

// ---------------------------------------------------------------------------------------------
// promshard local's API.

export interface ShardTarget {
  job: string;
  labels: Record<string, string>;
  series: number;
}

export interface Shard {
  id: number;
  budget: number;
  effectiveBudget: number;
  series: number;
  ready: boolean;
  restarts: number;
  prometheusUrl: string;
  pids: { sidecar: number; prometheus: number };
  targets: ShardTarget[];
}

export interface CoordinatorTarget {
  discoveredLabels: Record<string, string>;
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
  lastScrape: string;
  shard: number;
}

export interface LocalEvent {
  at: string;
  kind: "move" | "scale" | "warning" | "config" | "shard";
  text: string;
}

export interface LocalStatus {
  config: { lastReloadSuccessful: boolean; error: string | null };
}

/** instance -> shard id, from the API's assignment (a target listed twice keeps every id). */
export function assignmentOf(shards: readonly Shard[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const s of shards)
    for (const t of s.targets) {
      const instance = t.labels.instance ?? "?";
      out.set(instance, [...(out.get(instance) ?? []), s.id]);
    }
  return out;
}

/** A shard's process ids; fails clearly when the API does not report them. */
export function pidsOf(shard: Shard): { sidecar: number; prometheus: number } {
  const pids = shard.pids as Shard["pids"] | undefined;
  assert.ok(
    pids && Number.isInteger(pids.sidecar) && Number.isInteger(pids.prometheus),
    `/api/v1/shards gives no pids for shard ${shard.id}: ${JSON.stringify(shard).slice(0, 300)}`,
  );
  return pids;
}

/** One line per shard, for assertion messages. */
export function describeShards(shards: readonly Shard[]): string {
  return shards
    .map(
      (s) =>
        `shard ${s.id}: ${s.ready ? "ready" : "NOT READY"}, ${s.series}/${s.budget} series` +
        ` (effective ${s.effectiveBudget}), restarts ${s.restarts}, pids ${JSON.stringify(s.pids)}, ` +
        `targets [${s.targets.map((t) => `${t.labels.instance}=${t.series}`).join(", ")}]`,
    )
    .join("\n");
}

/** The `promshard local` child process: started, SIGKILLed, started again with the same flags. */
export class PromshardLocal {
  readonly url: string;
  readonly dataDir: string;
  readonly globalUrl: string;
  /**
   * instance -> when this test first saw it up on a shard (an upper bound of a sample's
   * time): the gap checker then requires its first sample no later than that, so history
   * lost later (say with a drained shard) cannot pass for a target still on its way in.
   */
  readonly seenUp = new Map<string, number>();
  readonly #args: string[];
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #output: string[] = [];
  #starts = 0;

  constructor(opts: { port: number; globalPort: number; dataDir: string; args: string[] }) {
    this.url = `http://127.0.0.1:${opts.port}`;
    this.dataDir = opts.dataDir;
    this.globalUrl = `http://127.0.0.1:${opts.globalPort}`;
    this.#args = opts.args;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Starts the process and waits until /api/v1/shards answers. */
  async start(timeoutMs = 60_000): Promise<void> {
    assert.ok(!this.running, "promshard local is already running");
    this.#starts++;
    this.#output.push(`--- start #${this.#starts}: promshard ${this.#args.join(" ")}\n`);
    const child = spawn(process.execPath, [CLI, ...this.#args], { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    this.#exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        this.#output.push(`--- exited: ${signal ?? `status ${code}`}\n`);
        resolve();
      }),
    );
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding("utf8");
      stream.on("data", (s: string) => {
        this.#output.push(s);
        if (this.#output.length > 2000) this.#output.splice(0, 1000);
      });
    }
    await until("promshard local answers /api/v1/shards", () => this.shards(), {
      timeoutMs,
      context: () => this.tail(),
    });
  }

  /**
   * Sends a signal and waits for the exit, with SIGKILL after `graceMs`; true when the
   * process exited by itself. SIGHUP only reloads and does not wait.
   */
  async signal(signal: NodeJS.Signals, graceMs = 60_000, opts: { againAfterMs?: number } = {}): Promise<boolean> {
    const child = this.#child;
    if (!child || !this.running) return true;
    child.kill(signal);
    // A second one while the first is handled (two at once would merge into one).
    if (opts.againAfterMs !== undefined) setTimeout(() => child.kill(signal), opts.againAfterMs);
    if (signal === "SIGHUP") return true;
    let killed = false;
    const killer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, graceMs);
    await this.#exited;
    clearTimeout(killer);
    return !killed;
  }

  /**
   * The last lines of everything the process(es) printed, then of every shard's sidecar and
   * Prometheus log and the global endpoint's, for failure messages: a shard that cannot
   * start says why in its own log, not in promshard local's.
   */
  tail(lines = 60): string {
    const own = `promshard local output (tail):\n${lastLines(this.#output.join(""), lines)}`;
    return [own, ...componentLogs(this.dataDir, 15)].join("\n");
  }

  /** GET from its API; GiveUp when the process is not running or has no such endpoint (waiting cannot help). */
  async #get<T>(path: string): Promise<T> {
    if (!this.running) throw new GiveUp(`promshard local is not running\n${this.tail()}`);
    try {
      return await getJson<T>(`${this.url}${path}`);
    } catch (err) {
      throw err instanceof HttpError && err.status === 404 ? new GiveUp(err.message) : err;
    }
  }

  async shards(): Promise<Shard[]> {
    return (await this.#get<{ shards: Shard[] }>("/api/v1/shards")).shards;
  }

  async targets(): Promise<CoordinatorTarget[]> {
    const body = await this.#get<{ status: string; data: { activeTargets: CoordinatorTarget[] } }>("/api/v1/targets");
    assert.equal(body.status, "success", `/api/v1/targets: ${JSON.stringify(body).slice(0, 300)}`);
    return body.data.activeTargets;
  }

  async events(): Promise<LocalEvent[]> {
    return (await this.#get<{ events: LocalEvent[] }>("/api/v1/events")).events;
  }

  async status(): Promise<LocalStatus> {
    return this.#get<LocalStatus>("/api/v1/status");
  }
}

// ---------------------------------------------------------------------------------------------
// The scenario: everything one describe block starts.

export interface ConfigOptions {
  remoteWriteUrls?: string[];
  ruleFiles?: string[];
  /** YAML list items (already indented for the job) appended as the job's relabel_configs. */
  relabelConfigs?: string;
}

export interface LocalOptions {
  /** Flags besides the common ones (config, budget, data dir, binary, ports, interval, version, log level). */
  flags?: string[];
}

// Every scenario's dir, so that an exit of the test process however it ends leaves no process behind.
const openDirs = new Set<string>();
process.once("exit", () => {
  for (const dir of openDirs) for (const pid of processesUnder(dir)) kill(pid, "SIGKILL");
});

function kill(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process with this id exists (a zombie counts). */
export function alive(pid: number): boolean {
  return kill(pid, 0);
}

/**
 * Pids of the processes whose command line names `dir`: this scenario's own descendants
 * (shards, sidecars, the global Prometheus), found even when `promshard local` was SIGKILLed
 * and left them. The dir is a fresh mkdtemp, so nothing else matches.
 */
export function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(dir)) out.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

export class Scenario {
  readonly dir: string;
  readonly bin: PrometheusBinary;
  readonly configPath: string;
  readonly targetsPath: string;
  local: PromshardLocal | undefined;
  readonly #exporters = new Map<string, DemoExporter>();
  /** instance -> when it was added to the targets file. */
  readonly #since = new Map<string, number>();
  readonly #listed: string[] = [];
  readonly #closers: (() => Promise<void>)[] = [];

  constructor(name: string, bin: PrometheusBinary) {
    this.bin = bin;
    this.dir = mkdtempSync(join(tmpdir(), `promshard-e2e-${name}-`));
    openDirs.add(this.dir);
    this.configPath = join(this.dir, "prometheus.yml");
    this.targetsPath = join(this.dir, "targets.json");
    this.#writeTargets();
  }

  /** Writes a file atomically (temp + rename): file watchers never see half a file. */
  writeFile(path: string, content: string): void {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, content);
    renameSync(tmp, path);
  }

  /** The user's Prometheus config: one job over the targets file, scrape_interval 2 s. */
  configText(opts: ConfigOptions = {}): string {
    const lines = [
      "global:",
      `  scrape_interval: ${SCRAPE_INTERVAL_MS / 1000}s`,
      `  evaluation_interval: ${SCRAPE_INTERVAL_MS / 1000}s`,
      "scrape_configs:",
      `- job_name: ${JOB}`,
      `  file_sd_configs: [{files: ['${this.targetsPath}']}]`,
    ];
    if (opts.relabelConfigs) lines.push("  relabel_configs:", opts.relabelConfigs.trimEnd());
    if (opts.remoteWriteUrls?.length) lines.push("remote_write:", ...opts.remoteWriteUrls.map((u) => `- url: '${u}'`));
    if (opts.ruleFiles?.length) lines.push("rule_files:", ...opts.ruleFiles.map((f) => `- '${f}'`));
    return `${lines.join("\n")}\n`;
  }

  writeConfig(opts: ConfigOptions = {}): void {
    this.writeFile(this.configPath, this.configText(opts));
  }

  #writeTargets(): void {
    this.writeFile(this.targetsPath, JSON.stringify([{ targets: this.#listed }]));
  }

  /** Adds addresses (instances) to the targets file and notes when. */
  addTargets(instances: readonly string[]): void {
    const now = Date.now();
    for (const i of instances) {
      if (this.#listed.includes(i)) continue;
      this.#listed.push(i);
      this.#since.set(i, now);
    }
    this.#writeTargets();
  }

  removeTargets(instances: readonly string[]): void {
    for (const i of instances) {
      const at = this.#listed.indexOf(i);
      if (at >= 0) this.#listed.splice(at, 1);
    }
    this.#writeTargets();
  }

  /** Starts `n` demo exporters of DEMO_EXPOSED series and adds them to the targets file. */
  async addDemoTargets(n: number): Promise<string[]> {
    const added: string[] = [];
    for (let i = 0; i < n; i++) {
      const e = await startDemoExporter({ series: DEMO_EXPOSED });
      const instance = `127.0.0.1:${e.port}`;
      this.#exporters.set(instance, e);
      this.#closers.push(() => e.close());
      added.push(instance);
    }
    this.addTargets(added);
    return added;
  }

  exporter(instance: string): DemoExporter {
    const e = this.#exporters.get(instance);
    assert.ok(e, `no demo exporter at ${instance}`);
    return e;
  }

  /** Demo targets currently in the file. */
  demoInstances(): string[] {
    return this.#listed.filter((i) => this.#exporters.has(i));
  }

  since(instance: string): number {
    const at = this.#since.get(instance);
    assert.ok(at !== undefined, `${instance} was never added`);
    return at;
  }

  /**
   * For the gap checker: each instance with the time it was added (or `from`, when later:
   * then its first sample must come within MAX_GAP_MS of `from`) and the time the test first
   * saw it scraped (when within the checked period).
   */
  gapTargets(instances: readonly string[] = this.demoInstances(), from = 0): GapTarget[] {
    return instances.map((instance) => {
      const added = this.since(instance);
      const since = Math.max(added, from);
      const seenUp = this.local?.seenUp.get(instance);
      return {
        instance,
        since,
        ...(seenUp === undefined || seenUp < since ? {} : { seenUp }),
        // Already there before the checked period: scraped from its very start.
        ...(from > added ? { firstWithinMs: MAX_GAP_MS } : {}),
      };
    });
  }

  /** An HTTP target answering 200 with text that is not the exposition format. */
  async startGarbageTarget(): Promise<string> {
    const server: Server = createHttpServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" }).end("<html>this is {not} an exposition\n");
    });
    const port = await listenOn(server);
    this.#closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    return `127.0.0.1:${port}`;
  }

  /** A target that accepts connections and never answers. */
  async startHangingTarget(): Promise<string> {
    const sockets = new Set<Socket>();
    const server: TcpServer = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    });
    const port = await listenOn(server);
    this.#closers.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return `127.0.0.1:${port}`;
  }

  /** Another real Prometheus (a remote-write receiver, an unsharded twin), stopped by close(). */
  async startPrometheus(opts: StartOptions): Promise<RunningPrometheus> {
    const p = await startPrometheus(this.bin, opts);
    this.#closers.push(() => p.stop());
    return p;
  }

  /**
   * Starts `promshard local` over this scenario's config with the budget, a 1 s control loop,
   * this scenario's binary and version, and `opts.flags`; the ports and flags are kept, so
   * `restartLocal()` starts it again exactly so (as after a crash).
   */
  async startLocal(opts: LocalOptions = {}): Promise<PromshardLocal> {
    assert.ok(!this.local, "startLocal once per scenario; restartLocal() starts it again");
    const [port, globalPort] = [await freePort(), await freePort()];
    const dataDir = join(this.dir, "data");
    const args = [
      "local",
      "--config",
      this.configPath,
      "--shard.max-series",
      String(BUDGET),
      "--storage.path",
      dataDir,
      "--prometheus.bin",
      this.bin.bin,
      "--listen",
      `127.0.0.1:${port}`,
      "--global.listen-port",
      String(globalPort),
      "--interval",
      "1s",
      "--prometheus.version",
      majorMinor(this.bin),
      "--log.level",
      "warn",
      ...(opts.flags ?? []),
    ];
    this.local = new PromshardLocal({ port, globalPort, dataDir, args });
    await this.local.start();
    return this.local;
  }

  /**
   * The common start: `targets` demo targets, the config (with `config`), `promshard local`
   * (with `local`), and the steady state on `targets / 2` shards (2 per 30000-series shard).
   */
  async startSteady(
    targets: number,
    opts: { config?: ConfigOptions; local?: LocalOptions } = {},
  ): Promise<{ local: PromshardLocal; shards: Shard[] }> {
    const instances = await this.addDemoTargets(targets);
    this.writeConfig(opts.config);
    const local = await this.startLocal(opts.local);
    const shards = await waitSteady(local, { instances, shards: Math.ceil(targets / 2), timeoutMs: 120_000 });
    return { local, shards };
  }

  /**
   * Sets a demo target's exposed series and waits until /api/v1/shards reports the new
   * count for it, so that what follows sees the coordinator react. The coordinator counts
   * scrape_samples_post_metric_relabeling (the exposed series) or that plus the 5 scrape
   * series Prometheus adds; either is accepted.
   */
  async growTarget(instance: string, exposed: number, timeoutMs = 60_000): Promise<void> {
    const local = this.requireLocal();
    this.exporter(instance).series = exposed;
    await until(
      `the coordinator sees ${instance} at ${exposed} (+5) series`,
      async () => {
        const seen = (await local.shards()).flatMap((sh) => sh.targets).find((x) => x.labels.instance === instance);
        if (seen?.series !== exposed && seen?.series !== exposed + 5) throw new Error(`it reports ${seen?.series}`);
        return true;
      },
      { timeoutMs, context: () => local.tail() },
    );
  }

  /** The running `promshard local`; fails at once when an earlier step did not start it. */
  requireLocal(): PromshardLocal {
    assert.ok(this.local?.running, "promshard local is not running: an earlier step failed");
    return this.local;
  }

  async restartLocal(): Promise<PromshardLocal> {
    assert.ok(this.local, "startLocal first");
    await this.local.start();
    return this.local;
  }

  /** SIGTERM (twice: a second during the shutdown) to `promshard local`; asserts that no process it started (shards, sidecars, global endpoint) is left. */
  async stopLocalLeavingNothing(opts: { twice?: boolean } = {}): Promise<void> {
    const local = this.requireLocal();
    const exited = await local.signal("SIGTERM", 30_000, opts.twice ? { againAfterMs: 30 } : {});
    const deadline = Date.now() + 10_000;
    while (processesUnder(this.dir).length > 0 && Date.now() < deadline) await sleep(200);
    const left = processesUnder(this.dir).map((pid) => `${pid} ${readCmdline(pid).slice(0, 200)}`);
    assert.ok(
      exited && left.length === 0,
      `${exited ? "exited on SIGTERM" : "did not exit within 30 s of SIGTERM (then SIGKILLed)"}; ` +
        `${left.length} process(es) left:\n${left.join("\n")}\n${local.tail()}`,
    );
  }

  /**
   * Stops everything: `promshard local` with SIGTERM (it stops its shards and global
   * endpoint), then whatever process of this scenario is still there (left by a SIGKILL, or
   * by a shutdown that forgot one; those are reported on stderr), servers, other Prometheus.
   */
  async close(): Promise<void> {
    await this.local?.signal("SIGTERM");
    const left = processesUnder(this.dir);
    if (left.length > 0) {
      process.stderr.write(
        `e2e ${this.dir}: ${left.length} process(es) still running after promshard local stopped: ${left
          .map((pid) => `${pid} ${readCmdline(pid).slice(0, 160)}`)
          .join("; ")}\n`,
      );
      for (const pid of left) kill(pid, "SIGKILL");
    }
    for (const close of this.#closers.reverse()) await close().catch(() => {});
    openDirs.delete(this.dir);
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

/** The tail of each component log under a `promshard local` data dir: shard-<i>/{sidecar,prometheus}.log, global/prometheus.log. */
function componentLogs(dataDir: string, lines: number): string[] {
  let dirs: string[];
  try {
    dirs = readdirSync(dataDir).filter((d) => d.startsWith("shard-") || d === "global");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const d of dirs.sort((a, b) => a.localeCompare(b, "en", { numeric: true })))
    for (const name of ["sidecar.log", "prometheus.log"]) {
      let text: string;
      try {
        text = readFileSync(join(dataDir, d, name), "utf8");
      } catch {
        continue;
      }
      out.push(`${d}/${name} (tail):\n${lastLines(text, lines)}`);
    }
  return out;
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function listenOn(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      resolve(typeof a === "object" && a !== null ? a.port : 0);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Who scrapes what, and the steady state.

/** instance -> ids of the shards whose own Prometheus has `up == 1` for it right now. */
export async function scrapedBy(shards: readonly Shard[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const s of shards) {
    for (const r of await query(s.prometheusUrl, `up{job="${JOB}"} == 1`)) {
      const instance = r.metric.instance ?? "?";
      out.set(instance, [...(out.get(instance) ?? []), s.id]);
    }
  }
  return out;
}

export interface SteadyOptions {
  /** The demo instances that must be scraped, each by exactly one shard; nothing else may be up. */
  instances: readonly string[];
  /** The number of shards, when the scenario knows it. */
  shards?: number;
  timeoutMs: number;
  /** How long the state must hold unchanged to count as steady (default two scrape intervals). */
  holdMs?: number;
}

/**
 * Waits for the steady state: /api/v1/shards lists `shards` shards (if given), all ready and
 * at most at budget, each target on exactly one shard, and the shards' own Prometheus agree:
 * each of `instances` has `up == 1` on exactly the shard the API names, nothing else is up;
 * the same assignment again after `holdMs`. Returns the shards.
 */
export async function waitSteady(local: PromshardLocal, opts: SteadyOptions): Promise<Shard[]> {
  const expected = [...opts.instances].sort();
  const check = async (): Promise<{ shards: Shard[]; key: string }> => {
    const shards = await local.shards();
    const summary = () => `\n${describeShards(shards)}`;
    if (opts.shards !== undefined && shards.length !== opts.shards)
      throw new Error(`${shards.length} shards, want ${opts.shards}${summary()}`);
    const notReady = shards.filter((s) => !s.ready).map((s) => s.id);
    if (notReady.length > 0) throw new Error(`shards ${notReady} not ready${summary()}`);
    const over = shards.filter((s) => s.series > s.budget).map((s) => `${s.id} (${s.series}/${s.budget})`);
    if (over.length > 0) throw new Error(`shards over budget: ${over.join(", ")}${summary()}`);
    const api = assignmentOf(shards);
    const twice = [...api].filter(([, ids]) => ids.length > 1);
    if (twice.length > 0) throw new Error(`on two shards in the API: ${JSON.stringify(twice)}${summary()}`);
    const missing = expected.filter((i) => !api.has(i));
    if (missing.length > 0) throw new Error(`not assigned: ${missing}${summary()}`);
    const scraped = await scrapedBy(shards);
    const seenAt = Date.now();
    const problems: string[] = [];
    for (const i of expected) {
      const by = scraped.get(i) ?? [];
      if (by.length !== 1) problems.push(`${i} up on shards [${by}]`);
      else if (by[0] !== api.get(i)![0]) problems.push(`${i} up on shard ${by[0]} but assigned to ${api.get(i)![0]}`);
    }
    for (const [i, by] of scraped) if (!expected.includes(i)) problems.push(`${i} should not be up (shards [${by}])`);
    if (problems.length > 0) throw new Error(`${problems.join("; ")}${summary()}`);
    for (const i of expected) if (!local.seenUp.has(i)) local.seenUp.set(i, seenAt);
    return { shards, key: JSON.stringify(expected.map((i) => [i, api.get(i)])) };
  };
  let last = "";
  return until(
    "steady state",
    async () => {
      const first = await check();
      last = first.key;
      await sleep(opts.holdMs ?? 2 * SCRAPE_INTERVAL_MS);
      const again = await check();
      if (again.key !== first.key) throw new Error(`assignment changed while holding: ${first.key} -> ${again.key}`);
      return again.shards;
    },
    { timeoutMs: opts.timeoutMs, everyMs: 500, context: () => `last assignment: ${last}\n${local.tail()}` },
  );
}

/** Waits until the global endpoint (or any Prometheus) counts exactly `want` demo series. */
export async function waitForCount(promUrl: string, want: number, timeoutMs: number): Promise<number> {
  let got: number | undefined;
  return until(
    `${COUNT_DEMO} == ${want} at ${promUrl}`,
    async () => {
      got = await queryValue(promUrl, COUNT_DEMO);
      if (got !== want) throw new Error(`count is ${got}`);
      return got;
    },
    { timeoutMs, everyMs: 1000 },
  );
}

// ---------------------------------------------------------------------------------------------
// The gap checker.

export interface GapTarget {
  instance: string;
  /** When the target appeared (was added to the targets file), ms since the epoch. */
  since: number;
  /** When the test saw it scraped (PromshardLocal.seenUp): its first sample is no later. */
  seenUp?: number;
  /** Longest time from `since` to the first sample, if not GapOptions.firstScrapeWithinMs. */
  firstWithinMs?: number;
}

export interface GapOptions {
  /** End of the checked period (default: now). */
  end?: number;
  /** Metrics whose samples are checked; `up` and the exporter's own counter by default. */
  metrics?: readonly string[];
  /** Longest time from a target's appearance to its first sample (default 60 s). */
  firstScrapeWithinMs?: number;
  /** How long to wait for the newest samples to arrive (remote write lags; default 30 s). */
  tailWaitMs?: number;
}

export interface GapRow {
  instance: string;
  metric: string;
  samples: number;
  /** Series the selector returned (2 when a target's series differ per shard, e.g. by a label). */
  series: number;
  firstAfterSinceMs: number | null;
  /** First sample minus the time the test saw the target up (> 0: history before that is missing). */
  firstAfterSeenUpMs: number | null;
  maxGapMs: number;
  maxGapAt: string | null;
  endAfterLastMs: number | null;
  ok: boolean;
}

/** Sample timestamps (ms) of `metric` for one instance over [since, end], merged over every series returned. */
async function sampleTimes(
  promUrl: string,
  metric: string,
  t: GapTarget,
  end: number,
): Promise<{ times: number[]; series: number }> {
  const rangeS = Math.ceil((end - t.since) / 1000) + 5;
  const result = await query(promUrl, `${metric}{job="${JOB}",instance="${t.instance}"}[${rangeS}s]`, end);
  const times = new Set<number>();
  for (const s of result) for (const [ts] of s.values ?? []) times.add(Math.round(ts * 1000));
  return { times: [...times].sort((a, b) => a - b), series: result.length };
}

function gapRow(
  t: GapTarget,
  metric: string,
  times: number[],
  series: number,
  end: number,
  firstWithin: number,
): GapRow {
  let maxGapMs = 0;
  let maxGapAt: string | null = null;
  for (let i = 1; i < times.length; i++) {
    const gap = times[i]! - times[i - 1]!;
    if (gap > maxGapMs) {
      maxGapMs = gap;
      maxGapAt = new Date(times[i - 1]!).toISOString();
    }
  }
  const first = times[0];
  const last = times.at(-1);
  const firstAfterSinceMs = first === undefined ? null : first - t.since;
  const firstAfterSeenUpMs = first === undefined || t.seenUp === undefined ? null : first - t.seenUp;
  const endAfterLastMs = last === undefined ? null : end - last;
  const ok =
    times.length > 0 &&
    maxGapMs <= MAX_GAP_MS &&
    firstAfterSinceMs! <= (t.firstWithinMs ?? firstWithin) &&
    (firstAfterSeenUpMs === null || firstAfterSeenUpMs <= 0) &&
    endAfterLastMs! <= MAX_GAP_MS;
  return {
    instance: t.instance,
    metric,
    samples: times.length,
    series,
    firstAfterSinceMs,
    firstAfterSeenUpMs,
    maxGapMs,
    maxGapAt,
    endAfterLastMs,
    ok,
  };
}

export function formatGaps(rows: readonly GapRow[]): string {
  return rows
    .map(
      (r) =>
        `${r.ok ? "ok  " : "FAIL"} ${r.instance} ${r.metric}: max gap ${r.maxGapMs} ms` +
        `${r.maxGapAt ? ` after ${r.maxGapAt}` : ""}, ${r.samples} samples in ${r.series} series, ` +
        `first ${r.firstAfterSinceMs ?? "-"} ms after appearing` +
        (r.firstAfterSeenUpMs !== null && r.firstAfterSeenUpMs > 0
          ? ` and ${r.firstAfterSeenUpMs} ms after the test saw it up (history lost)`
          : "") +
        `, last ${r.endAfterLastMs ?? "-"} ms before the end`,
    )
    .join("\n");
}

/**
 * The gap checker. For every target, at `end`, a range selector over its whole life
 * (`up{job,instance}[Ns]`, the exporter's counter likewise) on `promUrl`: all timestamps of
 * all series returned, sorted; asserts that none is more than MAX_GAP_MS (1.5 scrape
 * intervals) after the one before, that the first comes within `firstScrapeWithinMs` of the
 * target's appearance and no later than the test first saw it up (`seenUp`), and the last
 * within MAX_GAP_MS of the end. The assertion message
 * lists the max gap of every target. Returns the rows for a report.
 */
export async function checkNoGaps(
  promUrl: string,
  targets: readonly GapTarget[],
  opts: GapOptions = {},
): Promise<GapRow[]> {
  const end = opts.end ?? Date.now();
  const metrics = opts.metrics ?? ["up", "demo_scrapes_total"];
  const firstWithin = opts.firstScrapeWithinMs ?? 60_000;
  const rowsNow = () =>
    Promise.all(
      targets.flatMap((t) =>
        metrics.map(async (m) => {
          const { times, series } = await sampleTimes(promUrl, m, t, end);
          return gapRow(t, m, times, series, end, firstWithin);
        }),
      ),
    );
  // The newest samples may still be on their way (remote write); history does not change.
  let rows = await rowsNow();
  const deadline = Date.now() + (opts.tailWaitMs ?? 30_000);
  while (rows.some((r) => r.endAfterLastMs === null || r.endAfterLastMs > MAX_GAP_MS) && Date.now() < deadline) {
    await sleep(1000);
    rows = await rowsNow();
  }
  assert.ok(
    rows.every((r) => r.ok),
    `gaps at ${promUrl} between ${new Date(Math.min(...targets.map((t) => t.since))).toISOString()} and ` +
      `${new Date(end).toISOString()} (limit ${MAX_GAP_MS} ms; scrape interval ${SCRAPE_INTERVAL_MS} ms):\n${formatGaps(rows)}`,
  );
  return rows;
}

/** The largest gap per instance over its metrics, for a one-line report. */
export function maxGapsByInstance(rows: readonly GapRow[]): string {
  const by = new Map<string, number>();
  for (const r of rows) by.set(r.instance, Math.max(by.get(r.instance) ?? 0, r.maxGapMs));
  return [...by].map(([i, g]) => `${i}: ${g} ms`).join(", ");
}

// ---------------------------------------------------------------------------------------------
// Budget watch.

/**
 * Polls /api/v1/shards every 500 ms in the background and records every shard seen over its
 * budget (series > budget), with the time and the shards at that moment.
 */
export class BudgetWatch {
  readonly violations: string[] = [];
  polls = 0;
  unanswered = 0;
  #stopped = false;
  readonly #loop: Promise<void>;

  constructor(local: () => PromshardLocal, everyMs = 500) {
    this.#loop = this.#run(local, everyMs);
  }

  async #run(local: () => PromshardLocal, everyMs: number): Promise<void> {
    while (!this.#stopped) {
      try {
        const shards = await local().shards();
        this.polls++;
        for (const s of shards)
          if (s.series > s.budget)
            this.violations.push(
              `${new Date().toISOString()} shard ${s.id}: ${s.series} > ${s.budget}\n${describeShards(shards)}`,
            );
      } catch {
        this.unanswered++;
      }
      // Unref'd: a test that fails before stopping the watch must not keep the process alive.
      await sleep(everyMs, undefined, { ref: false });
    }
  }

  /** Stops polling and asserts that no shard was ever seen over its budget. */
  async stopAndAssert(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    assert.ok(this.polls > 0, "the budget watch never got an answer from /api/v1/shards");
    assert.ok(
      this.violations.length === 0,
      `${this.violations.length} times in ${this.polls} polls a shard was over budget; the first:\n` +
        this.violations.slice(0, 3).join("\n"),
    );
  }
}
