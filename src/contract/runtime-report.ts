import { PromshardError } from "../errors.ts";
import type { Labels } from "../prom/labels.ts";
import { ASSIGNMENT_DELTA_FEATURE } from "./assignment.ts";

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
  /** What this sidecar takes beyond the first contract (ASSIGNMENT_DELTA_FEATURE, …); absent before there was any. */
  features?: string[];
  /** Ask with `?since=<token>` for the targets changed after this report (RuntimeChanges). */
  token?: string;
  /** `targets` lists only what changed since the token asked with (RuntimeChanges); the rest is as it was. */
  partial?: boolean;
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
  /** The sidecar applies deltas (PATCH /api/v1/assignment); an older one takes whole sets only. */
  readonly deltas: boolean;
  /** The token to ask the next report with (`?since=`); null from a sidecar before them. */
  readonly token: string | null;
  /** `targets` are only the ones changed since the token asked with. */
  readonly partial: boolean;
  /**
   * Why Prometheus does not run the generated config (it rejected it; the sidecar put the
   * previous one back), or null while it runs it: disk, Prometheus and the coordinator agree.
   */
  readonly reloadError: string | null;
  /** Every assigned target Prometheus shows with an identity, as the sidecar maps it. */
  readonly targets: readonly {
    readonly id: string;
    /** Its last scrape succeeded (health "up"). */
    readonly up: boolean;
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
        up: t.health === "up",
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
    deltas: Array.isArray(body.features) && body.features.includes(ASSIGNMENT_DELTA_FEATURE),
    token: strOrNull(body.token),
    partial: body.partial === true,
    targets,
  };
}

/** What a sidecar that answers `?since=` lists in its report's `features`. */
export const RUNTIME_SINCE_FEATURE = "runtime-since";

/**
 * The sidecar's side of `GET /api/v1/runtime?since=<token>` (issue 16: a million targets' full
 * reports were 450 MB and 65 s of every round): each report carries a `token`; asked with the
 * last token it lists only the targets whose state (status, health, series, error) changed
 * since, `partial: true`. The token names this process (a restarted sidecar answers whole),
 * the applied assignment and config (a new one answers whole: ids may differ), and a
 * generation. A target's `lastScrape` alone is no change: a client that shows it asks for the
 * whole report now and then. Pure bookkeeping; any number of clients, none remembered.
 */
export class RuntimeChanges {
  readonly #epoch: string;
  #basis = "";
  #generation = 0;
  readonly #seen = new Map<string, { state: string; generation: number }>();

  constructor(epoch: string) {
    this.#epoch = epoch;
  }

  /**
   * Records this report's targets (those with an id) under `basis` (the assignment version
   * and config hash); returns the new token and, when `since` is a token of the same basis,
   * the targets changed after it.
   */
  note<T extends Pick<RuntimeTarget, "id" | "status" | "health" | "series" | "lastError">>(
    basis: string,
    targets: readonly T[],
    since: string | undefined,
  ): { token: string; changed: T[] | undefined } {
    if (basis !== this.#basis) {
      this.#basis = basis;
      this.#seen.clear();
    }
    const next = this.#generation + 1;
    const changed: { t: T; generation: number }[] = [];
    let any = false;
    for (const t of targets) {
      if (t.id === null) continue;
      const state = `${t.status}\u0000${t.health}\u0000${t.series}\u0000${t.lastError}`;
      const had = this.#seen.get(t.id);
      if (had?.state !== state) {
        this.#seen.set(t.id, { state, generation: next });
        any = true;
        changed.push({ t, generation: next });
      } else changed.push({ t, generation: had.generation });
    }
    if (any) this.#generation = next;
    const prefix = `${this.#epoch}.${this.#basis}.`;
    const token = `${prefix}${this.#generation}`;
    if (since === undefined || !since.startsWith(prefix)) return { token, changed: undefined };
    const from = Number(since.slice(prefix.length));
    if (!Number.isSafeInteger(from) || from > this.#generation) return { token, changed: undefined };
    return { token, changed: changed.filter((c) => c.generation > from).map((c) => c.t) };
  }
}
