import { PromshardError, PromshardErrors } from "../errors.ts";
import {
  boolField,
  describe,
  durationField,
  joinDir,
  Problems,
  parseLabelMap,
  stringField,
  unknownKeys,
} from "./config-fields.ts";
import { GLOBAL_V2, GLOBAL_V3, JOB_V2, JOB_V3, SD_V2, SD_V3, TOP_V2, TOP_V3 } from "./config-keys.ts";
import { validateScrapeValues, validateSections } from "./config-sections.ts";
import { formatDuration } from "./duration.ts";
import { redactUrl } from "./go-url.ts";
import { isObj, type Obj, parseYaml, StrictReader } from "./go-yaml.ts";
import { decodeHttpClient, HTTP_CLIENT_KEYS, HTTP_CLIENT_KEYS_V2, validateHttpClient } from "./http-client.ts";
import { ADDRESS, type Labels } from "./labels.ts";
import { parseRelabelConfigs, type RelabelRule } from "./relabel.ts";
import { parseFileSd } from "./sd/file.ts";
import { type KubernetesSdConfig, parseKubernetesSdConfig } from "./sd/kubernetes.ts";
import { parseStaticGroup } from "./sd/static.ts";
import type { TargetGroup } from "./target-group.ts";
import { type PromDialect, withLegacyNames } from "./version.ts";

export { joinDir } from "./config-fields.ts";
export { parseYaml } from "./go-yaml.ts";

/**
 * The Prometheus configuration as promshard needs it: typed views of what drives target
 * discovery and relabeling, next to the document as written (`raw`), so that everything we
 * do not model (remote_write, alerting, storage, HTTP client settings, unknown SD types)
 * survives a round trip untouched.
 */
export interface PromConfig {
  readonly dialect: PromDialect;
  /** Directory that relative paths in the file resolve against (the config file's own). */
  readonly directory: string;
  readonly global: GlobalConfig;
  readonly scrapeConfigs: readonly ScrapeJob[];
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface GlobalConfig {
  readonly scrapeIntervalMs: number;
  readonly scrapeTimeoutMs: number;
  readonly evaluationIntervalMs: number;
  readonly externalLabels: Labels;
  readonly metricNameValidationScheme: "utf8" | "legacy";
  /** As written, for the jobs that inherit it; undefined when unset. */
  readonly metricNameEscapingScheme: unknown;
  readonly scrapeNativeHistograms: boolean;
  readonly alwaysScrapeClassicHistograms: boolean;
  readonly convertClassicHistogramsToNhcb: boolean;
}

export type ServiceDiscovery =
  | { readonly mechanism: "static"; readonly index: number; readonly groups: readonly TargetGroup[] }
  | {
      readonly mechanism: "file";
      readonly index: number;
      /** Glob patterns, already resolved against the config's directory. */
      readonly files: readonly string[];
      readonly refreshIntervalMs: number;
    }
  | { readonly mechanism: "kubernetes"; readonly index: number; readonly kubernetes: KubernetesSdConfig }
  | { readonly mechanism: string; readonly index: number; readonly raw: unknown };

export interface ScrapeJob {
  readonly jobName: string;
  /** Position in scrape_configs, for messages. */
  readonly index: number;
  readonly scrapeIntervalMs: number;
  readonly scrapeTimeoutMs: number;
  readonly metricsPath: string;
  readonly scheme: string;
  readonly honorLabels: boolean;
  readonly honorTimestamps: boolean;
  readonly params: Readonly<Record<string, readonly string[]>>;
  readonly relabelConfigs: readonly RelabelRule[];
  readonly metricRelabelConfigs: readonly RelabelRule[];
  readonly serviceDiscovery: readonly ServiceDiscovery[];
  /** The dialect with this job's metric_name_validation_scheme applied. */
  readonly dialect: PromDialect;
  /** Prometheus 3 puts these into every target's discovered labels as "true"/"false". */
  readonly scrapeNativeHistograms: boolean;
  readonly alwaysScrapeClassicHistograms: boolean;
  readonly convertClassicHistogramsToNhcb: boolean;
  readonly raw: Readonly<Record<string, unknown>>;
}

const DEFAULT_SCRAPE_INTERVAL = 60_000;
const DEFAULT_SCRAPE_TIMEOUT = 10_000;
const DEFAULT_EVALUATION_INTERVAL = 60_000;

/**
 * Parses and validates a Prometheus configuration document as the given Prometheus version
 * would, filling in its defaults. Throws PromshardErrors with every problem found.
 */
export function parseConfig(
  text: string,
  opts: { dialect: PromDialect; source?: string; directory?: string },
): PromConfig {
  const source = opts.source ?? "prometheus.yml";
  let doc: unknown;
  try {
    doc = parseYaml(text, source) ?? {};
  } catch (err) {
    throw err instanceof PromshardError ? new PromshardErrors([err]) : err;
  }
  return buildConfig(doc, { dialect: opts.dialect, directory: opts.directory ?? ".", source });
}

export function buildConfig(
  doc: unknown,
  opts: { dialect: PromDialect; directory: string; source?: string },
): PromConfig {
  const { dialect } = opts;
  const p = new Problems();
  if (!isObj(doc)) {
    throw new PromshardErrors([
      new PromshardError("config_invalid", `the document must be a mapping, got ${describe(doc)}`, {
        path: opts.source ?? "config",
      }),
    ]);
  }
  unknownKeys(doc, dialect.major >= 3 ? TOP_V3 : TOP_V2, "", p);
  const global = parseGlobal(doc.global, dialect, p);

  const jobs: ScrapeJob[] = [];
  const rawJobs = doc.scrape_configs;
  if (rawJobs !== undefined && rawJobs !== null && !Array.isArray(rawJobs)) {
    p.add("scrape_configs", `must be a list of scrape configs, got ${describe(rawJobs)}`);
  } else if (Array.isArray(rawJobs)) {
    const seen = new Map<string, number>();
    rawJobs.forEach((raw, i) => {
      const job = parseJob(raw, i, global, dialect, opts.directory, p);
      if (!job) return;
      const first = seen.get(job.jobName);
      if (first !== undefined) {
        p.add(`scrape_configs[${i}].job_name`, `job "${job.jobName}" is already defined at scrape_configs[${first}]`);
        return;
      }
      seen.set(job.jobName, i);
      jobs.push(job);
    });
  }
  validateSections(doc, dialect, p);
  if (isObj(doc.alerting) && Array.isArray(doc.alerting.alertmanagers)) {
    // Alertmanager targets are checked as scrape targets are, relabeling or not.
    doc.alerting.alertmanagers.forEach((am, i) => {
      const at = `alerting.alertmanagers[${i}]`;
      if (isObj(am)) checkStaticAddresses(parseServiceDiscovery(am, at, dialect, opts.directory, p), at, p);
    });
  }
  if (p.list.length > 0) throw new PromshardErrors(p.list);
  return { dialect, directory: opts.directory, global, scrapeConfigs: jobs, raw: doc };
}

function validationScheme(obj: Obj, path: string, p: Problems, fallback: "utf8" | "legacy"): "utf8" | "legacy" {
  const v = obj.metric_name_validation_scheme;
  if (v === undefined || v === null || v === "") return fallback;
  if (v === "utf8" || v === "legacy") return v;
  p.add(`${path}.metric_name_validation_scheme`, `must be "utf8" or "legacy", got another ${describe(v)}`);
  return fallback;
}

function parseGlobal(raw: unknown, dialect: PromDialect, p: Problems): GlobalConfig {
  const g: Obj = isObj(raw) ? raw : {};
  if (raw !== undefined && raw !== null && !isObj(raw)) p.add("global", `must be a mapping, got ${describe(raw)}`);
  unknownKeys(g, dialect.major >= 3 ? GLOBAL_V3 : GLOBAL_V2, "global", p);
  const scrapeIntervalMs = durationField(g, "scrape_interval", "global", p) || DEFAULT_SCRAPE_INTERVAL;
  let scrapeTimeoutMs = durationField(g, "scrape_timeout", "global", p) ?? 0;
  if (scrapeTimeoutMs > scrapeIntervalMs) {
    p.add(
      "global.scrape_timeout",
      `global scrape_timeout ${formatDuration(scrapeTimeoutMs)} is greater than scrape_interval ${formatDuration(scrapeIntervalMs)}; lower the timeout or raise the interval`,
    );
  }
  if (scrapeTimeoutMs === 0) scrapeTimeoutMs = Math.min(DEFAULT_SCRAPE_TIMEOUT, scrapeIntervalMs);
  const scheme = dialect.major >= 3 ? validationScheme(g, "global", p, "utf8") : "legacy";
  validateScrapeValues(g, "global", dialect, { names: scheme }, p);
  const labelDialect = scheme === "legacy" ? withLegacyNames(dialect) : dialect;
  return {
    scrapeIntervalMs,
    scrapeTimeoutMs,
    evaluationIntervalMs: durationField(g, "evaluation_interval", "global", p) || DEFAULT_EVALUATION_INTERVAL,
    externalLabels: parseLabelMap(g.external_labels, labelDialect, "global.external_labels", p),
    metricNameValidationScheme: scheme,
    metricNameEscapingScheme: g.metric_name_escaping_scheme ?? undefined,
    scrapeNativeHistograms: boolField(g, "scrape_native_histograms", "global", p, false),
    alwaysScrapeClassicHistograms: boolField(g, "always_scrape_classic_histograms", "global", p, false),
    convertClassicHistogramsToNhcb: boolField(g, "convert_classic_histograms_to_nhcb", "global", p, false),
  };
}

function parseJob(
  raw: unknown,
  index: number,
  global: GlobalConfig,
  dialect: PromDialect,
  directory: string,
  p: Problems,
): ScrapeJob | undefined {
  const base = `scrape_configs[${index}]`;
  if (!isObj(raw)) {
    p.add(
      base,
      raw === null || raw === undefined
        ? "empty or null scrape config; remove it"
        : `must be a mapping, got ${describe(raw)}`,
    );
    return undefined;
  }
  const jobName = stringField(raw, "job_name", base, p, "");
  if (jobName === "") {
    p.add(`${base}.job_name`, "job_name is empty; every scrape config needs a unique job_name");
    return undefined;
  }
  const path = `${base} (job "${jobName}")`;
  const sdKeys = new Set((dialect.major >= 3 ? SD_V3 : SD_V2).map((n) => `${n}_sd_configs`).concat("static_configs"));
  unknownKeys(
    raw,
    [...(dialect.major >= 3 ? JOB_V3 : JOB_V2), ...(dialect.major >= 3 ? HTTP_CLIENT_KEYS : HTTP_CLIENT_KEYS_V2)],
    path,
    p,
    (k) => sdKeys.has(k),
  );

  const scheme3 = dialect.major >= 3 ? validationScheme(raw, path, p, global.metricNameValidationScheme) : "legacy";
  validateScrapeValues(
    raw,
    path,
    dialect,
    { names: scheme3, escaping: raw.metric_name_escaping_scheme ?? global.metricNameEscapingScheme },
    p,
  );
  const jobDialect = scheme3 === "legacy" ? withLegacyNames(dialect) : dialect;

  const scrapeIntervalMs = durationField(raw, "scrape_interval", path, p) || global.scrapeIntervalMs;
  let scrapeTimeoutMs = durationField(raw, "scrape_timeout", path, p) ?? 0;
  if (scrapeTimeoutMs > scrapeIntervalMs) {
    p.add(
      `${path}.scrape_timeout`,
      `scrape_timeout ${formatDuration(scrapeTimeoutMs)} is greater than scrape_interval ${formatDuration(scrapeIntervalMs)}; lower the timeout or raise the interval`,
    );
  }
  if (scrapeTimeoutMs === 0) scrapeTimeoutMs = Math.min(global.scrapeTimeoutMs, scrapeIntervalMs);

  const params = parseParams(raw.params, `${path}.params`, p);
  const relabel = parseRelabelConfigs(raw.relabel_configs, jobDialect, `${path}.relabel_configs`);
  const metricRelabel = parseRelabelConfigs(raw.metric_relabel_configs, jobDialect, `${path}.metric_relabel_configs`);
  p.addAll(relabel.errors);
  p.addAll(metricRelabel.errors);
  const reader = new StrictReader(p.list);
  validateHttpClient(decodeHttpClient(raw, path, reader), path, reader);

  const serviceDiscovery = parseServiceDiscovery(raw, path, jobDialect, directory, p);
  // Without relabeling the static address is the scrape address: Prometheus refuses URLs here.
  if (relabel.rules.length === 0) checkStaticAddresses(serviceDiscovery, path, p);

  return {
    jobName,
    index,
    scrapeIntervalMs,
    scrapeTimeoutMs,
    metricsPath: stringField(raw, "metrics_path", path, p, "/metrics"),
    scheme: stringField(raw, "scheme", path, p, "http"),
    honorLabels: boolField(raw, "honor_labels", path, p, false),
    honorTimestamps: boolField(raw, "honor_timestamps", path, p, true),
    params,
    relabelConfigs: relabel.rules,
    metricRelabelConfigs: metricRelabel.rules,
    serviceDiscovery,
    dialect: jobDialect,
    scrapeNativeHistograms: boolField(raw, "scrape_native_histograms", path, p, global.scrapeNativeHistograms),
    alwaysScrapeClassicHistograms: boolField(
      raw,
      "always_scrape_classic_histograms",
      path,
      p,
      global.alwaysScrapeClassicHistograms,
    ),
    convertClassicHistogramsToNhcb: boolField(
      raw,
      "convert_classic_histograms_to_nhcb",
      path,
      p,
      global.convertClassicHistogramsToNhcb,
    ),
    raw,
  };
}

function checkStaticAddresses(sds: readonly ServiceDiscovery[], path: string, p: Problems): void {
  for (const sd of sds) {
    if (sd.mechanism !== "static" || !("groups" in sd)) continue;
    for (const t of sd.groups.flatMap((g) => g.targets)) {
      const addr = t[ADDRESS] ?? "";
      if (addr.includes("/")) {
        p.add(
          `${path}.static_configs[${sd.index}].targets`,
          `"${redactUrl(addr)}" is not a valid hostname; give host:port, not a URL`,
        );
      }
    }
  }
}

function parseParams(raw: unknown, path: string, p: Problems): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (raw === undefined || raw === null) return out;
  if (!isObj(raw)) {
    p.add(path, `must be a mapping of parameter names to lists of values, got ${describe(raw)}`);
    return out;
  }
  for (const [k, v] of Object.entries(raw)) {
    if (v === null) {
      out[k] = [];
    } else if (Array.isArray(v) && v.every((x) => typeof x !== "object" || x === null)) {
      out[k] = v.map((x) => (x === null ? "" : String(x)));
    } else {
      // The value is not quoted back: params often carry API keys.
      p.add(`${path}.${k}`, `must be a list of values: write it as [value], not as a single ${describe(v)}`);
    }
  }
  return out;
}

function parseServiceDiscovery(
  raw: Obj,
  path: string,
  dialect: PromDialect,
  directory: string,
  p: Problems,
): ServiceDiscovery[] {
  const out: ServiceDiscovery[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const mechanism = key === "static_configs" ? "static" : key.endsWith("_sd_configs") ? key.slice(0, -11) : undefined;
    if (mechanism === undefined || value === undefined || value === null) continue;
    if (!Array.isArray(value)) {
      p.add(`${path}.${key}`, `must be a list, got ${describe(value)}`);
      continue;
    }
    value.forEach((item, i) => {
      const at = `${path}.${key}[${i}]`;
      if (!isObj(item)) {
        p.add(at, item === null ? "empty or null entry; remove it" : `must be a mapping, got ${describe(item)}`);
        return;
      }
      if (mechanism === "static") {
        out.push({ mechanism, index: i, groups: [parseStaticGroup(item, i, dialect, at, p)] });
      } else if (mechanism === "file") {
        const fsd = parseFileSd(item, directory, at, p);
        if (fsd) out.push({ mechanism, index: i, ...fsd });
      } else if (mechanism === "kubernetes") {
        const parsed = parseKubernetesSdConfig(item, at);
        p.addAll(parsed.errors);
        if (parsed.config) {
          const file = parsed.config.kubeconfigFile;
          const kubernetes = file ? { ...parsed.config, kubeconfigFile: joinDir(directory, file) } : parsed.config;
          out.push({ mechanism, index: i, kubernetes });
        }
      } else {
        out.push({ mechanism, index: i, raw: item });
      }
    });
  }
  return out;
}
