import { type AssignedTarget, partId } from "../contract/assignment.ts";
import type { RuntimeTarget, UnmappedTarget } from "../contract/runtime-report.ts";
import type { PromConfig } from "../prom/config.ts";
import { ADDRESS, type Labels } from "../prom/labels.ts";
import { targetsFromGroup } from "../prom/targets.ts";
import { PART_LABEL } from "./generate.ts";
import type { PromActiveTarget, PrometheusClient, PromSample } from "./prometheus-client.ts";

/**
 * What Prometheus should show for one assigned target, computed with promshard's own
 * relabeling from the labels the coordinator sent: the generated job restores the original
 * discovered labels before the user's rules, so Prometheus's final labels are exactly these.
 */
export type ExpectedTarget =
  | {
      readonly kind: "active";
      readonly target: AssignedTarget;
      /** Target identity: hash of job and every final label, as the coordinator computes it. */
      readonly id: string;
      readonly scrapePool: string;
      readonly labels: Labels;
      readonly scrapeUrl: string;
    }
  | { readonly kind: "dropped"; readonly target: AssignedTarget }
  | { readonly kind: "invalid"; readonly target: AssignedTarget; readonly error: string }
  | { readonly kind: "unknown_job"; readonly target: AssignedTarget };

export function expectedTargets(config: PromConfig, targets: readonly AssignedTarget[]): ExpectedTarget[] {
  const jobs = new Map(config.scrapeConfigs.map((j) => [j.jobName, j]));
  return targets.map((target): ExpectedTarget => {
    const job = jobs.get(target.job);
    if (!job) return { kind: "unknown_job", target };
    const set = targetsFromGroup({ source: "", targets: [target.labels], labels: {} }, job);
    const active = set.active[0];
    if (active) {
      const split = target.split;
      // A part is a target of its own, with the part label the generated job adds after the user's rules.
      return {
        kind: "active",
        target,
        id: split ? partId(active.id, split.part, split.parts) : active.id,
        scrapePool: active.scrapePool,
        labels: split ? { ...active.labels, [PART_LABEL]: `${split.part}/${split.parts}` } : active.labels,
        scrapeUrl: active.scrapeUrl,
      };
    }
    const failure = set.failures[0];
    if (failure) return { kind: "invalid", target, error: failure.error };
    return { kind: "dropped", target };
  });
}

export interface TargetMapping {
  readonly targets: RuntimeTarget[];
  readonly unmapped: UnmappedTarget[];
}

/** A label set as a string key; the order of names does not matter. */
function labelKey(l: Labels): string {
  return JSON.stringify(
    Object.keys(l)
      .sort()
      .map((n) => [n, l[n]]),
  );
}

const NEVER = "0001-01-01T00:00:00Z";
function scrapeTime(s: string): string | null {
  return s === "" || s.startsWith("0001-01-01") || s === NEVER ? null : s;
}

/**
 * Maps Prometheus's active targets onto the expected ones by scrape pool and final labels,
 * with the scrape URL deciding between targets whose public labels are equal (they differ in
 * a `__`-label such as the path). Every assigned target gets a row; every Prometheus target
 * that matches none is listed in `unmapped`, never dropped.
 */
export function mapTargets(
  expected: readonly ExpectedTarget[],
  active: readonly PromActiveTarget[] | undefined,
  samples: readonly PromSample[] | undefined,
): TargetMapping {
  const byKey = new Map<string, PromActiveTarget[]>();
  for (const t of active ?? []) {
    const key = `${t.scrapePool}\u0000${labelKey(t.labels)}`;
    const list = byKey.get(key);
    if (list) list.push(t);
    else byKey.set(key, [t]);
  }
  const series = new Map<string, number>();
  for (const s of samples ?? []) {
    const { __name__: _, ...labels } = s.metric;
    series.set(labelKey(labels), s.value);
  }
  const seriesOf = (labels: Labels) => series.get(labelKey(labels)) ?? null;
  const used = new Set<PromActiveTarget>();

  const targets = expected.map((e): RuntimeTarget => {
    const base = {
      job: e.target.job,
      address: e.target.labels[ADDRESS] ?? "",
      ...(e.target.sdIndex !== undefined ? { sdIndex: e.target.sdIndex } : {}),
    };
    const none = {
      health: null,
      lastScrape: null,
      lastScrapeDurationSeconds: null,
      lastError: null,
      series: null,
    };
    if (e.kind !== "active") {
      const reason =
        e.kind === "invalid"
          ? e.error
          : e.kind === "dropped"
            ? "the job's relabel_configs drop this target"
            : `job "${e.target.job}" is not in the shard's current config`;
      return { ...base, id: null, status: e.kind, labels: null, scrapeUrl: null, ...none, reason };
    }
    const known = { id: e.id, labels: e.labels, scrapeUrl: e.scrapeUrl };
    if (active === undefined) return { ...base, ...known, status: "unknown", ...none };
    const candidates = byKey.get(`${e.scrapePool}\u0000${labelKey(e.labels)}`) ?? [];
    const match =
      candidates.length === 1 ? candidates[0] : (candidates.find((c) => c.scrapeUrl === e.scrapeUrl) ?? candidates[0]);
    if (!match) {
      return { ...base, ...known, status: "missing", ...none, reason: "Prometheus does not list this target" };
    }
    used.add(match);
    return {
      ...base,
      ...known,
      status: "scraped",
      health: match.health,
      lastScrape: scrapeTime(match.lastScrape),
      lastScrapeDurationSeconds: scrapeTime(match.lastScrape) === null ? null : match.lastScrapeDuration,
      lastError: match.lastError === "" ? null : match.lastError,
      series: seriesOf(match.labels),
    };
  });
  const unmapped = (active ?? [])
    .filter((t) => !used.has(t))
    .map(
      (t): UnmappedTarget => ({
        scrapePool: t.scrapePool,
        labels: t.labels,
        scrapeUrl: t.scrapeUrl,
        health: t.health,
        lastScrape: scrapeTime(t.lastScrape),
        lastError: t.lastError === "" ? null : t.lastError,
        series: seriesOf(t.labels),
      }),
    );
  return { targets, unmapped };
}

/** What the sidecar could read from its Prometheus at one moment. */
export interface PrometheusView {
  /** Answered at all. */
  readonly up: boolean;
  /** /-/ready said 200 (false while it replays its WAL, for example). */
  readonly ready: boolean;
  /** Why it is not up or a read failed, in words for the operator. */
  readonly error: string | null;
  readonly headSeries: number | null;
  readonly active: PromActiveTarget[] | undefined;
  readonly samples: PromSample[] | undefined;
  readonly checkedAt: string;
}

/** Reads health, head series, active targets and per-target series; never throws. */
export async function readPrometheus(client: PrometheusClient): Promise<PrometheusView> {
  const checkedAt = new Date().toISOString();
  let ready: boolean;
  try {
    ready = await client.ready();
  } catch (err) {
    return {
      up: false,
      ready: false,
      error: (err as Error).message,
      headSeries: null,
      active: undefined,
      samples: undefined,
      checkedAt,
    };
  }
  if (!ready) {
    return {
      up: true,
      ready: false,
      error: `Prometheus at ${client.url} is starting (/-/ready is not 200 yet)`,
      headSeries: null,
      active: undefined,
      samples: undefined,
      checkedAt,
    };
  }
  const [head, active, samples] = await Promise.allSettled([
    client.ownMetric("prometheus_tsdb_head_series"),
    client.activeTargets(),
    client.vector("scrape_samples_post_metric_relabeling"),
  ]);
  const errors = [head, active, samples]
    .filter((r): r is PromiseRejectedResult => r.status === "rejected")
    .map((r) => (r.reason as Error).message);
  return {
    up: true,
    ready: true,
    error: errors.length > 0 ? errors.join("; ") : null,
    headSeries: head.status === "fulfilled" ? (head.value ?? null) : null,
    active: active.status === "fulfilled" ? active.value : undefined,
    samples: samples.status === "fulfilled" ? samples.value : undefined,
    checkedAt,
  };
}
