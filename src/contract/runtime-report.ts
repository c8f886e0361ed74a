import { PromshardError } from "../errors.ts";
import type { Labels } from "../prom/labels.ts";

/**
 * The coordinator <-> sidecar contract, the other side: what a sidecar reports about its
 * shard (`GET /api/v1/runtime`). The sidecar builds it; the coordinator reads it with
 * `parseRuntimeReport`, which checks the parts the control loop relies on.
 */

/** Where the coordinator GETs a shard's runtime report. */
export const RUNTIME_PATH = "/api/v1/runtime";

export type ReloadState =
  /** Prometheus runs the generated config (or found it on disk at start). */
  | "ok"
  /** Written, but Prometheus could not be asked yet (unreachable); retried, and it reads the file at start anyway. */
  | "pending"
  /** Prometheus rejected it; the previous config is back on disk and running; retried with backoff. */
  | "failed";

export interface ReloadStatus {
  readonly state: ReloadState;
  /** sha256 of the config the sidecar wants Prometheus to run. */
  readonly desiredHash: string | null;
  /** sha256 of the config Prometheus last accepted from us (or found on disk at start). */
  readonly appliedHash: string | null;
  readonly lastSuccess: string | null;
  /** Prometheus's reason for the last failure, or why it could not be asked. */
  readonly lastError: string | null;
  /** Failed attempts since the last success. */
  readonly failures: number;
  /** When the retry after a failure is due; in the past while it runs; null when none is. */
  readonly nextAttemptAt: string | null;
}

/**
 * One assigned target as the runtime report shows it.
 * - `scraped`: Prometheus has it; `health`, `lastScrape`, `lastError` and `series` are its own.
 * - `missing`: Prometheus does not show it (not picked up yet, or a real mismatch).
 * - `dropped`: the job's relabel_configs drop it, in Prometheus as in promshard.
 * - `invalid`: relabeling leaves a target Prometheus refuses (`reason`).
 * - `unknown_job`: its job is not in the shard's current config.
 * - `unknown`: Prometheus cannot be asked.
 */
export interface RuntimeTarget {
  readonly job: string;
  readonly address: string;
  readonly sdIndex?: number;
  readonly id: string | null;
  readonly status: "scraped" | "missing" | "dropped" | "invalid" | "unknown_job" | "unknown";
  readonly labels: Labels | null;
  readonly scrapeUrl: string | null;
  readonly health: "up" | "down" | "unknown" | null;
  readonly lastScrape: string | null;
  readonly lastScrapeDurationSeconds: number | null;
  readonly lastError: string | null;
  /** scrape_samples_post_metric_relabeling of its last scrape. */
  readonly series: number | null;
  readonly reason?: string;
}

/** A target Prometheus scrapes that matches no assigned target. */
export interface UnmappedTarget {
  readonly scrapePool: string;
  readonly labels: Labels;
  readonly scrapeUrl: string;
  readonly health: "up" | "down" | "unknown";
  readonly lastScrape: string | null;
  readonly lastError: string | null;
  readonly series: number | null;
}

/** The original config's validation failure, while the previous good config stays in use. */
export interface ConfigProblem {
  readonly message: string;
  /** Every problem found, one line each. */
  readonly problems: readonly string[];
  readonly since: string;
  /** sha256 of the failing file, null when it could not be read. */
  readonly hash: string | null;
}

/** `GET /api/v1/runtime`. */
export type RuntimeReport = {
  shard: { shard: number; replica: string; podName: string | null; shardLabel: string; replicaLabel: string };
  prometheus: {
    url: string;
    up: boolean;
    ready: boolean;
    status: "down" | "starting" | "ready";
    error: string | null;
    version: string | null;
    dialect: string;
    versionSource: "flag" | "prometheus" | "default";
    headSeries: number | null;
    checkedAt: string;
  };
  config: {
    file: string;
    valid: boolean;
    hash: string | null;
    generatedHash: string | null;
    loadedAt: string | null;
    error: ConfigProblem | null;
    reload: ReloadStatus;
  };
  assignment: { version: number; appliedAt: string; targets: number } | null;
  summary: Record<string, number>;
  targets: RuntimeTarget[];
  unmappedTargets: UnmappedTarget[];
};

/** The part of a runtime report the coordinator acts on, checked. */
export interface ShardReport {
  /** Prometheus answers /-/ready. */
  readonly ready: boolean;
  readonly headSeries: number | null;
  /** The applied assignment's version; -1 before the first. */
  readonly version: number;
  /**
   * Why Prometheus does not run the generated config (it rejected it; the sidecar put the
   * previous one back), or null while it runs it: disk, Prometheus and the coordinator agree.
   */
  readonly reloadError: string | null;
  /** Every assigned target Prometheus shows with an identity, as the sidecar maps it. */
  readonly targets: readonly {
    readonly id: string;
    readonly health: string | null;
    readonly series: number | null;
    readonly lastError: string | null;
    readonly lastScrape: string | null;
  }[];
}

const strOrNull = (v: unknown) => (typeof v === "string" ? v : null);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads a decoded runtime report; throws runtime_report_invalid when its shape is not one. */
export function parseRuntimeReport(body: unknown, from: string): ShardReport {
  if (!isObject(body) || !Array.isArray(body.targets))
    throw new PromshardError("runtime_report_invalid", "malformed runtime report: no targets list", { path: from });
  const prometheus = isObject(body.prometheus) ? body.prometheus : {};
  const assignment = isObject(body.assignment) ? body.assignment : {};
  const config = isObject(body.config) ? body.config : {};
  const reload = isObject(config.reload) ? config.reload : {};
  // A loop, not filter/flatMap: thousands of targets per shard, every round (issue 16).
  const targets: ShardReport["targets"][number][] = [];
  for (const t of body.targets as unknown[])
    if (isObject(t) && typeof t.id === "string")
      targets.push({
        id: t.id,
        health: strOrNull(t.health),
        series: typeof t.series === "number" ? t.series : null,
        lastError: strOrNull(t.lastError),
        lastScrape: strOrNull(t.lastScrape),
      });
  return {
    reloadError: reload.state === "failed" ? (strOrNull(reload.lastError) ?? "the reload failed") : null,
    ready: prometheus.ready === true,
    headSeries: typeof prometheus.headSeries === "number" ? prometheus.headSeries : null,
    version: typeof assignment.version === "number" ? assignment.version : -1,
    targets,
  };
}
