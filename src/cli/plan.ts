import { request } from "undici";
import { loadConfigFile } from "../config/load.ts";
import {
  capacityPlan,
  exposedSeries,
  type Plan,
  type PlannedTarget,
  type SeriesSource,
} from "../coordinator/capacity-plan.ts";
import { exploreTarget, scrapeClientFor } from "../coordinator/explore.ts";
import { discoverOnce } from "../discovery/once.ts";
import { PromshardError } from "../errors.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import type { Labels } from "../prom/labels.ts";
import { type Target, targetsForJob } from "../prom/targets.ts";
import { getStrategy, strategyNames } from "../scheduler/index.ts";
import { budgetFlags } from "./budget-flags.ts";
import {
  type Command,
  configFile,
  configFlag,
  dialectFromFlag,
  outputFlag,
  outputFormat,
  prometheusVersionFlag,
  UsageError,
} from "./command.ts";
import { int, optional } from "./flag-values.ts";
import { printErrors } from "./targets.ts";

/**
 * `promshard plan`: capacity planning before anything changes. The coordinator's own pieces
 * (one pass of its discovery and relabeling, its explore, and capacityPlan: its scheduler
 * with splits on empty shards) run once, so the answer is where a fresh coordinator would put
 * every target.
 */

/** Measured series per target of a running coordinator (its /api/v1/targets), keyed by pool and labels. */
async function measuredBy(url: string): Promise<Map<string, number>> {
  const at = `${url.replace(/\/+$/, "")}/api/v1/targets?state=active`;
  let body: unknown;
  try {
    const res = await request(at, { signal: AbortSignal.timeout(10_000) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new PromshardError(
        "coordinator_request_failed",
        `--coordinator.url: GET /api/v1/targets returned HTTP ${res.statusCode}; give the address of a running promshard coordinator`,
      );
    }
    body = await res.body.json();
  } catch (err) {
    if (err instanceof PromshardError) throw err;
    throw new PromshardError(
      "coordinator_request_failed",
      `--coordinator.url: cannot read /api/v1/targets (${(err as Error).message}); is the coordinator running there?`,
      { cause: err },
    );
  }
  const active = (body as { data?: { activeTargets?: unknown } } | null)?.data?.activeTargets;
  if (!Array.isArray(active))
    throw new PromshardError(
      "coordinator_request_failed",
      "--coordinator.url: /api/v1/targets has no data.activeTargets; give the address of a promshard coordinator",
    );
  // A split target is listed once per part, each with the part's series.
  return exposedSeries(
    (active as { scrapePool?: unknown; labels?: unknown; series?: unknown }[]).flatMap((t) =>
      typeof t.scrapePool === "string" && typeof t.series === "number" && typeof t.labels === "object"
        ? [[keyOf(t.scrapePool, t.labels as Labels), t.series] as const]
        : [],
    ),
  );
}

function keyOf(pool: string, labels: Labels): string {
  return JSON.stringify([pool, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

export interface PlanOptions {
  readonly budget: number;
  readonly minShards: number;
  readonly maxShards: number;
  readonly scheduler: string;
  readonly kubeconfig?: string;
  readonly coordinatorUrl?: string;
  /** Scrape targets not measured by a coordinator once, as the coordinator explores them. */
  readonly explore: boolean;
  readonly defaultSeries: number;
}

/** Discovers, measures and schedules every target of `config` once. */
export async function plan(
  config: PromConfig,
  opts: PlanOptions,
): Promise<{ plan: Plan; errors: PromshardError[]; warnings: PromshardError[] }> {
  const strategy = getStrategy(opts.scheduler);
  if (!strategy) throw new UsageError(`--scheduler must be one of ${strategyNames().join(", ")}`);
  const errors: PromshardError[] = [];
  const warnings: PromshardError[] = [];
  const found: { target: Target; job: ScrapeJob }[] = [];
  for (const job of config.scrapeConfigs) {
    const d = await discoverOnce(job, {
      directory: config.directory,
      ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
    });
    errors.push(...d.errors);
    warnings.push(...d.unsupported);
    for (const target of targetsForJob(d.groups, job).active) found.push({ target, job });
  }
  const measured = opts.coordinatorUrl ? await measuredBy(opts.coordinatorUrl) : new Map<string, number>();
  const clients = new Map<ScrapeJob, ReturnType<typeof scrapeClientFor>>();
  const seriesOf = new Map<string, { series: number; source: SeriesSource }>();
  await Promise.all(
    found.map(async ({ target, job }) => {
      const m = measured.get(keyOf(target.scrapePool, target.labels));
      if (m !== undefined) return seriesOf.set(target.id, { series: m, source: "coordinator" });
      if (opts.explore) {
        const client = clients.get(job) ?? scrapeClientFor(job, config.directory);
        clients.set(job, client);
        try {
          const e = await exploreTarget(target, job, client);
          return seriesOf.set(target.id, { series: e.series, source: "explored" });
        } catch (err) {
          warnings.push(
            new PromshardError(
              "discovery_failed",
              `target ${target.scrapeUrl} (job ${job.jobName}): explore failed (${(err as Error).message}); planned with --series.default ${opts.defaultSeries}`,
            ),
          );
        }
      }
      return seriesOf.set(target.id, { series: opts.defaultSeries, source: "default" });
    }),
  );
  for (const c of clients.values()) await c.dispatcher.close();

  const p = capacityPlan(
    found.map(({ target }) => ({ target, ...seriesOf.get(target.id)! })),
    { budget: opts.budget, minShards: opts.minShards, maxShards: opts.maxShards, strategy },
  );
  return { plan: p, errors, warnings };
}

function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

const partOf = (t: PlannedTarget) =>
  t.parts ? (t.part === undefined ? `${t.parts} parts` : `${t.part}/${t.parts}`) : "";

function table(p: Plan): string {
  const lines = [
    `${p.targets} targets, ${p.totalSeries} series: ${p.shards} shard(s) of ${p.budget} series`,
    "",
    ...columns([
      ["SHARD", "SERIES", "JOB", "INSTANCE", "PART", "TARGET SERIES"],
      ...p.perShard.flatMap((s) =>
        s.targets.length === 0
          ? [[String(s.shard), String(s.series), "", "", "", ""]]
          : s.targets.map((t, i) => [
              i === 0 ? String(s.shard) : "",
              i === 0 ? String(s.series) : "",
              t.job,
              t.instance,
              partOf(t),
              `${t.series} (${t.source})`,
            ]),
      ),
    ]),
    "",
    "Largest targets:",
    ...columns([
      ["JOB", "INSTANCE", "SERIES", "SPLIT"],
      ...p.largest.map((t) => [t.job, t.instance, `${t.series} (${t.source})`, partOf(t)]),
    ]),
  ];
  for (const w of p.warnings) lines.push(`warning: ${w}`);
  return `${lines.join("\n")}\n`;
}

export const planCommand: Command = {
  name: "plan",
  summary:
    "Capacity planning: how many shards a budget needs, the series per shard, where each target would go and the largest targets (nothing is changed)",
  flags: {
    ...configFlag,
    ...budgetFlags,
    kubeconfig: {
      type: "string",
      description:
        "kubeconfig for kubernetes_sd_configs that name neither api_server nor kubeconfig_file (default: in-cluster)",
      placeholder: "FILE",
    },
    "coordinator.url": {
      type: "string",
      description:
        "A running coordinator (http://host:port) whose measured series per target to plan with; a what-if of another --shard.max-series on a running system",
      placeholder: "URL",
    },
    explore: {
      type: "boolean",
      description: "Scrape each target not measured by a coordinator once to count its series, as the coordinator does",
    },
    "series.default": {
      type: "string",
      description: "Series assumed for a target neither measured nor explored",
      default: "1000",
      placeholder: "N",
    },
    ...outputFlag,
    ...prometheusVersionFlag,
  },
  async run(ctx) {
    const file = configFile(ctx.values);
    const output = outputFormat(ctx);
    const coordinatorUrl = optional(ctx.values, "coordinator.url");
    if (coordinatorUrl !== undefined && !/^https?:\/\/[^/]+/.test(coordinatorUrl))
      throw new UsageError(`--coordinator.url must be an http:// or https:// URL, got "${coordinatorUrl}"`);
    const minShards = int(ctx.values, "shards.min", 1);
    const options: PlanOptions = {
      budget: int(ctx.values, "shard.max-series", 1),
      minShards,
      maxShards: int(ctx.values, "shards.max", minShards),
      scheduler: String(ctx.values.scheduler),
      explore: ctx.values.explore === true,
      defaultSeries: int(ctx.values, "series.default", 0),
      ...(typeof ctx.values.kubeconfig === "string" ? { kubeconfig: ctx.values.kubeconfig } : {}),
      ...(coordinatorUrl ? { coordinatorUrl } : {}),
    };
    const dialect = dialectFromFlag(ctx.values);
    let result: Awaited<ReturnType<typeof plan>>;
    try {
      result = await plan(loadConfigFile(file, dialect), options);
    } catch (err) {
      if (!(err instanceof PromshardError) || err instanceof UsageError) throw err;
      printErrors(ctx.stderr, [err]);
      return 1;
    }
    ctx.stdout.write(output === "json" ? `${JSON.stringify(result.plan, null, 2)}\n` : table(result.plan));
    printErrors(ctx.stderr, result.warnings, "warning");
    printErrors(ctx.stderr, result.errors);
    return result.errors.length > 0 ? 1 : 0;
  },
};
