/**
 * The real Prometheus and promtool for tests. Every binary listed in PROMSHARD_PROMETHEUS_BINS
 * (the Makefile exports it) is found here; tests loop over `prometheusBinaries()` so each
 * behaviour is checked against each version.
 *
 * Facts measured against Debian's 2.42.0 and 3.16.0 (built from v0.316.0) that shape this file:
 * - Target updates pass two throttles. The discovery manager's sender: 2.42 a fixed 5 s
 *   ticker; 3.16 a backoff from 100 ms up to 5 s, back to 100 ms after 5 s without a send.
 *   Then the scrape manager's reloader: a 5 s ticker whose tick then waits for the next
 *   update, so the first update after >= 5 s idle passes at once and only updates in quick
 *   succession (and the very first, at start) wait for a tick. The hidden flag
 *   `--scrape.discovery-reload-interval` sets that ticker: 2.42 clamps it to >= 5 s, 3.16
 *   takes it as given, so we pass 100ms. Measured (targets polled every 100 ms):
 *     start: ready after 40-65 ms (2.42) / 140-150 ms (3.16); targets listed 5.05 s after
 *       ready on 2.42 (nothing shortens it), 5.0 s on 3.16 by default, 0.1 s with 100ms.
 *     file_sd edit (fsnotify) after >= 9 s idle: 2.42 0.1-5 s (its discovery tick),
 *       3.16 0.11 s. Edits 0-6 s apart: 2.42 0.1-5 s; 3.16 0.1-3.8 s (discovery backoff,
 *       no flag for it), 0.1-5.1 s with the default 5s reload interval.
 *   So tests on 2.42 wait ~5 s per change they observe; waitForTargets defaults to 30 s.
 * - file_sd watches with inotify (one instance per file_sd config). When the machine's
 *   fs.inotify.max_user_instances (128) is used up, Prometheus logs "Error adding file
 *   watcher … too many open files" and only re-reads files every refresh_interval (5m);
 *   waitForTargets names this when it times out.
 * - `--web.listen-address=127.0.0.1:0` works on both (the port is only in the log line
 *   `msg="Listening on" address=…`), but a config that scrapes Prometheus itself needs the
 *   port first, so we pick one with freePort() and retry on "address already in use".
 * - /api/v1/targets: 2.42 lists every dropped target (discoveredLabels only). 3.16 adds
 *   `scrapePool` to each dropped target and `droppedTargetCounts` per pool, and lists all
 *   dropped targets unless `keep_dropped_targets` (default 0 = unlimited) caps the list.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./ports.ts";
import { spawnTracked } from "./processes.ts";

export interface PrometheusBinary {
  bin: string;
  promtool: string;
  /** From `prometheus --version`, without build metadata: "2.42.0" for Debian's "2.42.0+ds". */
  version: string;
  major: number;
}

export interface ActiveTarget {
  discoveredLabels: Record<string, string>;
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  globalUrl: string;
  lastError: string;
  lastScrape: string;
  lastScrapeDuration: number;
  health: "up" | "down" | "unknown";
  scrapeInterval: string;
  scrapeTimeout: string;
}

export interface DroppedTarget {
  discoveredLabels: Record<string, string>;
  /** 3.x only. */
  scrapePool?: string;
}

export interface TargetsResponse {
  activeTargets: ActiveTarget[];
  droppedTargets: DroppedTarget[];
  /** 3.x only: dropped targets per pool, counted even past `keep_dropped_targets`. */
  droppedTargetCounts?: Record<string, number>;
}

export type QueryResult =
  | { resultType: "vector"; result: { metric: Record<string, string>; value: [number, string] }[] }
  | { resultType: "matrix"; result: { metric: Record<string, string>; values: [number, string][] }[] }
  | { resultType: "scalar" | "string"; result: [number, string] };

export interface RunningPrometheus {
  readonly bin: PrometheusBinary;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The temp dir holding prometheus.yml, the extra files and data/; removed on stop. */
  readonly dir: string;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** GET /api/v1/<path> (may carry a query string); returns `.data`, throws with Prometheus's error. */
  api<T>(path: string): Promise<T>;
  targets(params?: { scrapePool?: string; state?: "active" | "dropped" | "any" }): Promise<TargetsResponse>;
  query(expr: string): Promise<QueryResult>;
  /** Writes a file under `dir` atomically (temp file + rename), so file_sd never reads half a file. */
  writeFile(relPath: string, content: string): Promise<void>;
  /** POST /-/reload; throws with Prometheus's message when the new config is rejected. */
  reload(): Promise<void>;
  /** SIGTERM to the process group (SIGKILL after 10 s), then removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** prometheus.yml; a function gets the port first, for configs that scrape Prometheus itself. */
  config: string | ((at: { port: number; url: string }) => string);
  /** Extra files by path relative to the temp dir (relative paths in the config resolve there too). */
  files?: Record<string, string>;
  /** Extra flags as `--name=value`; one named like a default flag replaces it. */
  args?: string[];
  readyTimeoutMs?: number;
}

const DEFAULT_BINS = [
  "/usr/bin/prometheus",
  join(homedir(), ".cache/promshard-tools/prometheus-3.16.0/bin/prometheus"),
];
const described = new Map<string, PrometheusBinary>();

export function prometheusBinaries(): PrometheusBinary[] {
  const listed = (process.env.PROMSHARD_PROMETHEUS_BINS ?? "").split(":").filter((s) => s !== "");
  return (listed.length > 0 ? listed : DEFAULT_BINS).map(describeBinary);
}

function describeBinary(bin: string): PrometheusBinary {
  const cached = described.get(bin);
  if (cached) return cached;
  const promtool = join(dirname(bin), "promtool");
  for (const file of [bin, promtool]) {
    if (!existsSync(file)) {
      throw new Error(
        `${file} is missing (PROMSHARD_PROMETHEUS_BINS lists ${bin}); run \`make setup\` for Debian's 2.42 in /usr/bin ` +
          "and `make tools` for Prometheus 3 in ~/.cache/promshard-tools, or set PROMSHARD_PROMETHEUS_BINS to binaries you have",
      );
    }
  }
  const out = execFileSync(bin, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const m = /version (\d+)\.(\d+)\.(\d+)/.exec(out);
  if (!m) throw new Error(`${bin} --version printed no version: ${out.slice(0, 200)}`);
  const info = { bin, promtool, version: `${m[1]}.${m[2]}.${m[3]}`, major: Number(m[1]) };
  described.set(bin, info);
  return info;
}

/** `promtool check config <path>`: ok is the exit status, output is stdout and stderr together. */
export function promtoolCheckConfig(
  bin: PrometheusBinary,
  configPath: string,
  extraArgs: string[] = [],
): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(bin.promtool, ["check", "config", ...extraArgs, configPath], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ ok: err === null, output: `${stdout}${stderr}` }),
    );
  });
}

export async function startPrometheus(bin: PrometheusBinary, opts: StartOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), "promshard-prom-"));
  try {
    for (const [rel, content] of Object.entries(opts.files ?? {})) await writeAtomic(dir, rel, content);
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const config = typeof opts.config === "function" ? opts.config({ port, url }) : opts.config;
      await writeAtomic(dir, "prometheus.yml", config);
      const started = await launch(bin, dir, port, opts);
      if (started.ok) return started.running;
      if (attempt < 5 && /address already in use/.test(started.log)) continue;
      throw new Error(`Prometheus ${bin.version} (${bin.bin}) did not become ready: ${started.reason}\n${started.log}`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

type Launch = { ok: true; running: RunningPrometheus } | { ok: false; reason: string; log: string };

async function launch(bin: PrometheusBinary, dir: string, port: number, opts: StartOptions): Promise<Launch> {
  const url = `http://127.0.0.1:${port}`;
  const defaults = [
    `--config.file=${join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--web.enable-lifecycle",
    // 3.x takes this hidden flag as given (default 5s); 2.42 clamps it to 5s. See the top of the file.
    "--scrape.discovery-reload-interval=100ms",
  ];
  // Kingpin rejects most repeated flags ("flag 'x' cannot be repeated"), so a flag in opts.args replaces its default.
  const flagName = (arg: string) => arg.split("=")[0];
  const given = new Set((opts.args ?? []).map(flagName));
  const args = [...defaults.filter((a) => !given.has(flagName(a))), ...(opts.args ?? [])];
  // Its own process group, killed with the test process however that ends; `dir` is kept
  // until stop(), as a retry on another port reuses it.
  const proc = spawnTracked(bin.bin, args, { cwd: dir, dir });
  const logs = proc.logs;
  const pid = proc.pid;
  if (pid <= 0) {
    await proc.exited;
    return { ok: false, reason: proc.exitStatus() ?? "no pid", log: logs() };
  }
  const halt = () => proc.halt();
  const stop = () => proc.stop();
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    const exitStatus = proc.exitStatus();
    if (exitStatus !== undefined) {
      await halt();
      return { ok: false, reason: exitStatus, log: logs() };
    }
    if (Date.now() > deadline) {
      const log = logs();
      await halt();
      return { ok: false, reason: `no 200 from ${url}/-/ready within ${opts.readyTimeoutMs ?? 30_000} ms`, log };
    }
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ready && proc.exitStatus() === undefined) break;
    await sleep(25);
  }

  const api = async <T>(path: string): Promise<T> => {
    const target = `${url}/api/v1/${path.replace(/^\//, "")}`;
    const res = await fetch(target, { signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let body: { status?: string; data?: T; errorType?: string; error?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`GET ${target}: HTTP ${res.status}: ${text.slice(0, 500)}`);
    }
    if (body.status !== "success") {
      throw new Error(`GET ${target}: HTTP ${res.status}: ${body.errorType ?? "error"}: ${body.error ?? text}`);
    }
    return body.data as T;
  };

  return {
    ok: true,
    running: {
      bin,
      url,
      port,
      pid,
      dir,
      logs,
      api,
      targets: (params = {}) => {
        const q = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
        return api<TargetsResponse>(q.size > 0 ? `targets?${q}` : "targets");
      },
      query: (expr) => api<QueryResult>(`query?query=${encodeURIComponent(expr)}`),
      writeFile: (relPath, content) => writeAtomic(dir, relPath, content),
      reload: async () => {
        const res = await fetch(`${url}/-/reload`, { method: "POST", signal: AbortSignal.timeout(30_000) });
        if (!res.ok) throw new Error(`POST ${url}/-/reload: HTTP ${res.status}: ${(await res.text()).trim()}`);
      },
      stop,
    },
  };
}

async function writeAtomic(dir: string, relPath: string, content: string): Promise<void> {
  const path = join(dir, relPath);
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  await writeFile(tmp, content);
  await rename(tmp, path);
}

/**
 * Polls /api/v1/targets until `pred` holds (returns true; a throw, e.g. from assert, counts as
 * not yet and its message is reported) or `timeoutMs` passes (default 30 s: 2.42 needs ~5 s
 * per change, see the top of the file). Throws with the last targets and log tail.
 */
export async function waitForTargets(
  p: RunningPrometheus,
  pred: (t: TargetsResponse) => boolean,
  timeoutMs = 30_000,
): Promise<TargetsResponse> {
  const deadline = Date.now() + timeoutMs;
  let last: TargetsResponse | undefined;
  let lastProblem = "";
  for (;;) {
    try {
      last = await p.targets();
      if (pred(last)) return last;
      lastProblem = "predicate returned false";
    } catch (err) {
      lastProblem = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  const json = JSON.stringify(last, null, 1) ?? "none";
  const log = p.logs();
  const tail = log.trimEnd().split("\n").slice(-30).join("\n");
  const hint = /Error adding file watcher/.test(log)
    ? "\nhint: Prometheus could not watch the file_sd files (is fs.inotify.max_user_instances used up?), " +
      "so it re-reads them only every refresh_interval"
    : "";
  throw new Error(
    `targets of Prometheus ${p.bin.version} at ${p.url} did not match within ${timeoutMs} ms (${lastProblem})${hint}\n` +
      `last targets: ${json.length > 6000 ? `${json.slice(0, 6000)}…` : json}\nlog tail:\n${tail}`,
  );
}
