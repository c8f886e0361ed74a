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
  /** With `partial`: the ids listed before that this report no longer has (asked with RUNTIME_REMOVALS_PARAM). */
  removed?: string[];
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
  /** With `partial`: the ids gone since the token asked with. */
  readonly removed: readonly string[];
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
    removed:
      body.partial === true && Array.isArray(body.removed)
        ? body.removed.filter((id): id is string => typeof id === "string")
        : [],
    targets,
  };
}

/**
 * A partial report applied to the list it follows: changed targets replaced in place, new ones
 * appended, removed ids dropped. The same array back when nothing changed: a round tells an
 * unchanged shard by identity (issue 16).
 */
export function mergeRuntimeTargets<T extends { readonly id: string }>(
  last: readonly T[],
  changed: readonly T[],
  removed: readonly string[],
): readonly T[] {
  if (changed.length === 0 && removed.length === 0) return last;
  const at = new Map<string, number>();
  for (let i = 0; i < last.length; i++) at.set(last[i]!.id, i);
  const next = [...last];
  for (const t of changed) {
    const i = at.get(t.id);
    if (i === undefined) at.set(t.id, next.push(t) - 1);
    else next[i] = t;
  }
  if (removed.length === 0) return next;
  const gone = new Set(removed);
  return next.filter((t) => !gone.has(t.id));
}

/** What a sidecar that answers `?since=` lists in its report's `features`. */
export const RUNTIME_SINCE_FEATURE = "runtime-since";

/**
 * The query parameter by which a client says it applies a partial report's `removed` list:
 * then a report after a new assignment is partial too (a push no longer makes the next
 * report whole); without it, any removal since the token answers whole, as before.
 */
export const RUNTIME_REMOVALS_PARAM = "removals";

/**
 * The sidecar's side of `GET /api/v1/runtime?since=<token>` (issue 16: a million targets' full
 * reports were 450 MB and 65 s of every round): each report carries a `token`; asked with the
 * last token it lists only the targets whose state (status, health, series, error) changed
 * since, `partial: true`, and in `removed` the ids it no longer lists. The token names this
 * process (a restarted sidecar answers whole), the config and dialect the ids follow (a new
 * one answers whole), and a generation. A target's `lastScrape` alone is no change: a client
 * that shows it asks for the whole report now and then. Pure bookkeeping; any number of
 * clients, none remembered.
 */
export class RuntimeChanges {
  readonly #epoch: string;
  #basis = "";
  #generation = 0;
  /** Tokens older than this answer whole: the removals before it are forgotten. */
  #floor = 0;
  /** Reports noted, to tell which known ids the current one lacks. */
  #reports = 0;
  readonly #seen = new Map<string, { state: string; generation: number; report: number }>();
  /** Ids no longer listed, by the generation that dropped them (bounded; see #floor). */
  readonly #removed = new Map<string, number>();

  constructor(epoch: string) {
    this.#epoch = epoch;
  }

  /**
   * Records this report's targets (those with an id) under `basis` (the config and dialect
   * the ids follow); returns the new token and, when `since` is a token of the same basis,
   * the targets changed after it and the ids removed after it. A client that does not take
   * removals (`removals` false) gets the whole report when there were any.
   */
  note<T extends Pick<RuntimeTarget, "id" | "status" | "health" | "series" | "lastError">>(
    basis: string,
    targets: readonly T[],
    since: string | undefined,
    removals = false,
  ): { token: string; changed: T[] | undefined; removed: string[] } {
    if (basis !== this.#basis) {
      this.#basis = basis;
      this.#seen.clear();
      this.#removed.clear();
      this.#floor = this.#generation + 1;
    }
    const next = this.#generation + 1;
    const report = ++this.#reports;
    const changed: { t: T; generation: number }[] = [];
    let any = false;
    let listed = 0;
    for (const t of targets) {
      if (t.id === null) continue;
      const state = `${t.status}\u0000${t.health}\u0000${t.series}\u0000${t.lastError}`;
      const had = this.#seen.get(t.id);
      if (had === undefined) listed++;
      else if (had.report !== report) {
        listed++;
        had.report = report;
      }
      if (had?.state !== state) {
        this.#seen.set(t.id, { state, generation: next, report });
        this.#removed.delete(t.id);
        any = true;
        changed.push({ t, generation: next });
      } else changed.push({ t, generation: had.generation });
    }
    if (this.#seen.size > listed) {
      for (const [id, s] of this.#seen)
        if (s.report !== report) {
          this.#seen.delete(id);
          this.#removed.set(id, next);
        }
      any = true;
      // A sidecar's assignments come and go for ever: past this, older tokens answer whole.
      if (this.#removed.size > Math.max(1024, 2 * this.#seen.size)) {
        this.#removed.clear();
        this.#floor = next;
      }
    }
    if (any) this.#generation = next;
    const prefix = `${this.#epoch}.${this.#basis}.`;
    const token = `${prefix}${this.#generation}`;
    const whole = { token, changed: undefined, removed: [] };
    if (since === undefined || !since.startsWith(prefix)) return whole;
    const from = Number(since.slice(prefix.length));
    if (!Number.isSafeInteger(from) || from > this.#generation || from < this.#floor) return whole;
    const removed: string[] = [];
    for (const [id, generation] of this.#removed) if (generation > from) removed.push(id);
    if (removed.length > 0 && !removals) return whole;
    return { token, changed: changed.filter((c) => c.generation > from).map((c) => c.t), removed };
  }
}
