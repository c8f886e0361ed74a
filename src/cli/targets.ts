import { loadConfigFile } from "../config/load.ts";
import { discoverOnce, type OnceOptions } from "../discovery/once.ts";
import { PromshardError, PromshardErrors } from "../errors.ts";
import type { PromConfig } from "../prom/config.ts";
import { compareNames, type Labels } from "../prom/labels.ts";
import { type DroppedTarget, type Target, type TargetFailure, targetsForJob } from "../prom/targets.ts";
import {
  type Command,
  configFile,
  configFlag,
  dialectFromFlag,
  outputFlag,
  outputFormat,
  prometheusVersionFlag,
  type RunContext,
  UsageError,
} from "./command.ts";

/** The `/api/v1/targets` data shape, plus the targets Prometheus would refuse (it only logs those). */
export interface TargetsReport {
  activeTargets: { discoveredLabels: Labels; labels: Labels; scrapePool: string; scrapeUrl: string }[];
  droppedTargets: { discoveredLabels: Labels; scrapePool: string }[];
  failedTargets: { discoveredLabels: Labels; scrapePool: string; error: string }[];
  /** Per pool, how many discovered targets were duplicates that Prometheus scrapes once. */
  collapsedTargets: Record<string, number>;
}

/** Discovery plus relabeling for every job (or the named ones), in a stable order. */
export async function buildReport(
  config: PromConfig,
  jobs?: readonly string[],
  opts: OnceOptions = {},
): Promise<{ report: TargetsReport; errors: PromshardError[]; warnings: PromshardError[] }> {
  const active: Target[] = [];
  const dropped: DroppedTarget[] = [];
  const failed: TargetFailure[] = [];
  const errors: PromshardError[] = [];
  const warnings: PromshardError[] = [];
  const collapsed: Record<string, number> = {};
  for (const job of config.scrapeConfigs) {
    if (jobs && jobs.length > 0 && !jobs.includes(job.jobName)) continue;
    const found = await discoverOnce(job, { directory: config.directory, ...opts });
    errors.push(...found.errors);
    warnings.push(...found.unsupported);
    const set = targetsForJob(found.groups, job);
    active.push(...set.active);
    dropped.push(...set.dropped);
    failed.push(...set.failures);
    if (set.collapsed > 0) collapsed[job.jobName] = set.collapsed;
  }
  const byPoolThenLabels =
    <T extends { scrapePool: string }>(key: (t: T) => Labels) =>
    (a: T, b: T) =>
      compareNames(a.scrapePool, b.scrapePool) || compareNames(labelKey(key(a)), labelKey(key(b)));
  return {
    report: {
      activeTargets: active.sort(byPoolThenLabels((t) => t.labels)).map((t) => ({
        discoveredLabels: t.discoveredLabels,
        labels: t.labels,
        scrapePool: t.scrapePool,
        scrapeUrl: t.scrapeUrl,
      })),
      droppedTargets: dropped
        .sort(byPoolThenLabels((t) => t.discoveredLabels))
        .map((t) => ({ discoveredLabels: t.discoveredLabels, scrapePool: t.scrapePool })),
      failedTargets: failed.sort(byPoolThenLabels((t) => t.discoveredLabels)),
      collapsedTargets: collapsed,
    },
    errors,
    warnings,
  };
}

function labelKey(l: Labels): string {
  return Object.entries(l)
    .map(([k, v]) => `${k}\u0000${v}`)
    .join("\u0001");
}

function formatLabels(l: Labels): string {
  return `{${Object.entries(l)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ")}}`;
}

function table(report: TargetsReport): string {
  const rows: string[][] = [["POOL", "STATE", "URL / ERROR", "LABELS"]];
  for (const t of report.activeTargets) rows.push([t.scrapePool, "active", t.scrapeUrl, formatLabels(t.labels)]);
  for (const t of report.failedTargets) rows.push([t.scrapePool, "failed", t.error, formatLabels(t.discoveredLabels)]);
  for (const t of report.droppedTargets) rows.push([t.scrapePool, "dropped", "", formatLabels(t.discoveredLabels)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
  lines.push(
    "",
    `${report.activeTargets.length} active, ${report.droppedTargets.length} dropped, ${report.failedTargets.length} failed`,
  );
  return `${lines.join("\n")}\n`;
}

/** Prints every error on its own line; config errors list each problem. */
export function printErrors(stderr: RunContext["stderr"], errors: readonly PromshardError[], level = "error"): void {
  for (const e of errors) {
    const list = e instanceof PromshardErrors ? e.errors : [e];
    for (const one of list) stderr.write(`${level}: ${one.message}\n`);
  }
}

export const targetsCommand: Command = {
  name: "targets",
  summary:
    "Run service discovery and relabeling on a Prometheus config once and print the targets, in the shape of Prometheus's /api/v1/targets",
  flags: {
    ...configFlag,
    job: { type: "string", multiple: true, description: "Only this job", placeholder: "NAME" },
    kubeconfig: {
      type: "string",
      description:
        "kubeconfig for kubernetes_sd_configs that name neither api_server nor kubeconfig_file (default: in-cluster)",
      placeholder: "FILE",
    },
    ...outputFlag,
    ...prometheusVersionFlag,
  },
  async run(ctx) {
    const file = configFile(ctx.values);
    const output = outputFormat(ctx);
    const dialect = dialectFromFlag(ctx.values);
    let config: PromConfig;
    try {
      config = loadConfigFile(file, dialect);
    } catch (err) {
      if (!(err instanceof PromshardError)) throw err;
      printErrors(ctx.stderr, [err]);
      return 1;
    }
    const jobs = (ctx.values.job as string[] | undefined) ?? [];
    for (const j of jobs) {
      if (!config.scrapeConfigs.some((s) => s.jobName === j)) {
        throw new UsageError(`--job "${j}" is not a job in ${file}`);
      }
    }
    const kubeconfig = ctx.values.kubeconfig;
    const { report, errors, warnings } = await buildReport(
      config,
      jobs,
      typeof kubeconfig === "string" ? { kubeconfig } : {},
    );
    ctx.stdout.write(output === "json" ? `${JSON.stringify(report, null, 2)}\n` : table(report));
    printErrors(ctx.stderr, warnings, "warning");
    printErrors(ctx.stderr, errors);
    return errors.length > 0 ? 1 : 0;
  },
};
