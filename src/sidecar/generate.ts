import { createHash } from "node:crypto";
import { posix } from "node:path";
import { dump } from "js-yaml";
import type { AssignedTarget } from "../contract/assignment.ts";
import { globElementToRegExp } from "../discovery/file.ts";
import { PromshardError } from "../errors.ts";
import { joinDir, type PromConfig, type ScrapeJob } from "../prom/config.ts";
import { ADDRESS } from "../prom/labels.ts";

/** Who this shard is, and how its config is laid out on disk. */
export interface ShardSettings {
  readonly shard: number;
  readonly replica: string;
  /** External label names (DESIGN §5): `shard` and `replica` unless configured; "" leaves one out. */
  readonly shardLabel: string;
  readonly replicaLabel: string;
  /** Absolute directory, as Prometheus sees it, holding the per-job target files. */
  readonly targetsDir: string;
  /** Drop the shard label from remote-written series, so a moved target keeps one identity. */
  readonly remoteWriteDropShard: boolean;
  /** If set, remote-written series carry the replica under this name instead (e.g. `__replica__`). */
  readonly remoteWriteReplicaLabel?: string | undefined;
  /**
   * refresh_interval of the generated file_sd entries. Prometheus watches each with its own
   * inotify instance, and Linux allows 128 per user by default (shared by every container of
   * that user on a node): past that, this interval is how soon a change is read.
   */
  readonly refreshInterval?: string | undefined;
}

/** Where a job's targets go: its directory and, per original file_sd entry, how to restore `__meta_filepath`. */
interface JobLayout {
  readonly dir: string;
  /** Per file_sd entry (index k): the original pattern, joined to the config directory. */
  readonly filePatterns: readonly string[];
  /** For each SD entry of the job, its index among the file_sd entries, or -1. */
  readonly fileIndex: readonly number[];
}

export const FILEPATH_LABEL = "__meta_filepath";
/** Targets whose discovery was not file_sd. */
const OTHER_FILE = "sd.json";

/** A file-system-safe, collision-free directory name per job. */
export function jobDirName(job: string): string {
  const slug = job.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 60);
  return `${slug}-${createHash("sha256").update(job).digest("hex").slice(0, 8)}`;
}

function layoutOf(job: ScrapeJob, settings: ShardSettings): JobLayout {
  const filePatterns: string[] = [];
  const fileIndex: number[] = [];
  for (const sd of job.serviceDiscovery) {
    if (!("files" in sd)) {
      fileIndex.push(-1);
      continue;
    }
    // One entry may list several patterns; each gets its own k, in order.
    fileIndex.push(filePatterns.length);
    filePatterns.push(...sd.files);
  }
  return { dir: posix.join(settings.targetsDir, jobDirName(job.jobName)), filePatterns, fileIndex };
}

/** Which file_sd pattern (k) a target came from: by its SD entry when known, else by its path. */
function patternIndex(layout: JobLayout, t: AssignedTarget, filepath: string): number {
  const byPath = (from: number, to: number) => {
    for (let k = from; k < to; k++) {
      const p = layout.filePatterns[k]!;
      if (
        posix.dirname(p) === posix.dirname(filepath) &&
        globElementToRegExp(posix.basename(p)).test(posix.basename(filepath))
      ) {
        return k;
      }
    }
    return -1;
  };
  if (t.sdIndex === undefined) return byPath(0, layout.filePatterns.length);
  const first = layout.fileIndex[t.sdIndex] ?? -1;
  if (first < 0) return -1;
  const next = layout.fileIndex.slice(t.sdIndex + 1).find((i) => i >= 0) ?? layout.filePatterns.length;
  // Within the entry, match by file name only: directories may be mounted elsewhere.
  for (let k = first; k < next; k++) {
    if (globElementToRegExp(posix.basename(layout.filePatterns[k]!)).test(posix.basename(filepath))) return k;
  }
  return first;
}

/** Go regexp quoting (regexp.QuoteMeta). */
function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");
}

/**
 * The relabel rules that go first in every sharded job. Prometheus's file SD sets
 * `__meta_filepath` to our target file; the user's rules must see what their own discovery
 * produced, so each rule puts back the original path (targets from the user's file_sd entry
 * k live in `f<k>_<original name>.json`) or removes the label (targets from any other SD).
 */
function filepathRules(layout: JobLayout): Record<string, unknown>[] {
  const rules: Record<string, unknown>[] = layout.filePatterns.map((pattern, k) => {
    const dir = posix.dirname(pattern);
    return {
      source_labels: [FILEPATH_LABEL],
      regex: `${quoteMeta(layout.dir)}/f${k}_(.+)\\.json`,
      target_label: FILEPATH_LABEL,
      replacement: dir === "." ? "${1}" : `${dir.replace(/\$/g, "$$$$")}/\${1}`,
    };
  });
  rules.push({
    source_labels: [FILEPATH_LABEL],
    regex: quoteMeta(`${layout.dir}/${OTHER_FILE}`),
    target_label: FILEPATH_LABEL,
    replacement: "",
  });
  return rules;
}

/** A `__` label no series carries (Prometheus drops those) but that the target's hash includes. */
export const SHARD_OFFSET_LABEL = "__promshard_shard";

/**
 * Prometheus places a target's scrapes in the interval by its hash and a seed from the host
 * name and external labels. Two shards on one host without external labels (local mode)
 * would scrape a moving target at the same millisecond, and a remote-write receiver refuses
 * the second, differing sample of a timestamp ("duplicate sample"), with all the others sent
 * along. This label, set after the user's rules, makes the hash differ per shard.
 */
function shardOffsetRule(shard: number): Record<string, unknown> {
  return { target_label: SHARD_OFFSET_LABEL, replacement: String(shard) };
}

/** The target-file label that says which part of a split target a shard keeps (`part/parts`). */
export const PART_FILE_LABEL = "__promshard_part";
/**
 * The same, as a label of the target: every part is a target of its own in Prometheus, so its
 * `up` and scrape_* series carry it (`sum by (instance)` of scrape_samples_post_metric_relabeling
 * is the whole target's); the kept series lose it again, and are the same series whichever
 * shard keeps them.
 */
export const PART_LABEL = "promshard_part";
const HASH_LABEL = "__tmp_promshard_hash";

/** `part/parts`, the part label's value. */
function partValue(t: AssignedTarget): string | undefined {
  return t.split ? `${t.split.part}/${t.split.parts}` : undefined;
}

/**
 * The rules a job gets for the split targets this shard holds (none when it holds none, so an
 * unsplit job's config is what it always was): the part label becomes a target label, and
 * after the user's metric_relabel_configs a hashmod over the split's labels drops every series
 * that belongs to another part. One hashmod per (parts, by) the job's targets use here.
 */
function splitRules(targets: readonly AssignedTarget[]): { relabel: object[]; metric: object[] } {
  const groups = new Map<string, { parts: number; by: readonly string[]; mine: Set<number> }>();
  for (const t of targets) {
    if (!t.split) continue;
    const key = JSON.stringify([t.split.parts, t.split.by]);
    const g = groups.get(key) ?? { parts: t.split.parts, by: t.split.by, mine: new Set<number>() };
    g.mine.add(t.split.part);
    groups.set(key, g);
  }
  if (groups.size === 0) return { relabel: [], metric: [] };
  const metric: object[] = [];
  for (const key of [...groups.keys()].sort()) {
    const g = groups.get(key)!;
    const others = (i: number) =>
      Array.from({ length: g.parts }, (_, j) => j)
        .filter((j) => j !== i)
        .join("|");
    const drop = [...g.mine]
      .sort((a, b) => a - b)
      .map((i) => `${i}/${g.parts};(?:${others(i)})`)
      .join("|");
    metric.push(
      { action: "hashmod", source_labels: [...g.by], modulus: g.parts, target_label: HASH_LABEL },
      { action: "drop", source_labels: [PART_LABEL, HASH_LABEL], regex: drop },
    );
  }
  metric.push({ action: "labeldrop", regex: `${PART_LABEL}|${HASH_LABEL}` });
  return {
    relabel: [{ source_labels: [PART_FILE_LABEL], regex: "(.+)", target_label: PART_LABEL, replacement: "$1" }],
    metric,
  };
}

/** Keys whose values are file paths, resolved against the original config's directory. */
const PATH_KEYS = new Set([
  "ca_file",
  "cert_file",
  "key_file",
  "bearer_token_file",
  "password_file",
  "username_file",
  "credentials_file",
  "client_secret_file",
  "kubeconfig_file",
  "query_log_file",
  "scrape_failure_log_file",
]);
const PATH_LIST_KEYS = new Set(["rule_files", "scrape_config_files", "files"]);

/** A deep copy with every relative path made absolute, as Prometheus's SetDirectory does. */
function absolutize(value: unknown, dir: string, key = ""): unknown {
  if (Array.isArray(value)) {
    return PATH_LIST_KEYS.has(key)
      ? value.map((v) => (typeof v === "string" ? joinDir(dir, v) : v))
      : value.map((v) => absolutize(v, dir));
  }
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, absolutize(v, dir, k)]));
  }
  if (typeof value === "string" && PATH_KEYS.has(key)) return joinDir(dir, value);
  return value;
}

function isSdKey(key: string): boolean {
  return key === "static_configs" || key.endsWith("_sd_configs");
}

/**
 * The Prometheus config a shard runs (DESIGN §5): the user's config with external labels
 * for shard and replica, and each job's discovery replaced by one file_sd entry over the
 * job's target directory. It depends on the original config and the shard settings, and on
 * the assignment only through the parts of split targets it holds (`targets`): moving whole
 * targets never needs a reload.
 */
export function generateShardConfig(
  config: PromConfig,
  settings: ShardSettings,
  targets: readonly AssignedTarget[] = [],
): string {
  const doc = absolutize(config.raw, config.directory) as Record<string, unknown>;
  const global = { ...((doc.global as Record<string, unknown> | undefined) ?? {}) };
  const external = { ...((global.external_labels as Record<string, unknown> | undefined) ?? {}) };
  for (const name of [settings.shardLabel, settings.replicaLabel]) {
    if (name !== "" && Object.hasOwn(external, name)) {
      throw new PromshardError(
        "config_invalid",
        `external label "${name}" is set by the config, and promshard uses it to tell shards apart; remove it from global.external_labels or choose another name with --shard.label/--replica.label`,
        { path: `global.external_labels.${name}` },
      );
    }
  }
  // An empty name leaves the label out (local mode: its global Prometheus merges a moved
  // target's series from two shards only when their label sets are identical).
  if (settings.shardLabel) external[settings.shardLabel] = String(settings.shard);
  if (settings.replicaLabel) external[settings.replicaLabel] = settings.replica;
  if (Object.keys(external).length > 0) global.external_labels = external;
  doc.global = global;

  const rawJobs = (doc.scrape_configs as Record<string, unknown>[] | undefined) ?? [];
  doc.scrape_configs = config.scrapeConfigs.map((job) => {
    const raw = rawJobs[job.index] as Record<string, unknown>;
    const layout = layoutOf(job, settings);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) if (!isSdKey(k)) out[k] = v;
    out.file_sd_configs = [{ files: [`${layout.dir}/*.json`], refresh_interval: settings.refreshInterval ?? "30s" }];
    const split = splitRules(targets.filter((t) => t.job === job.jobName));
    out.relabel_configs = [
      ...filepathRules(layout),
      ...((raw.relabel_configs as unknown[] | undefined) ?? []),
      shardOffsetRule(settings.shard),
      ...split.relabel,
    ];
    if (split.metric.length > 0)
      out.metric_relabel_configs = [...((raw.metric_relabel_configs as unknown[] | undefined) ?? []), ...split.metric];
    return out;
  });

  const remoteWrite = doc.remote_write as Record<string, unknown>[] | undefined;
  if (Array.isArray(remoteWrite)) {
    doc.remote_write = remoteWrite.map((rw) => {
      const extra: Record<string, unknown>[] = [];
      if (settings.remoteWriteReplicaLabel && settings.replicaLabel) {
        extra.push({ source_labels: [settings.replicaLabel], target_label: settings.remoteWriteReplicaLabel });
        extra.push({ action: "labeldrop", regex: quoteMeta(settings.replicaLabel) });
      }
      if (settings.remoteWriteDropShard && settings.shardLabel)
        extra.push({ action: "labeldrop", regex: quoteMeta(settings.shardLabel) });
      if (extra.length === 0) return rw;
      return {
        ...rw,
        write_relabel_configs: [...((rw.write_relabel_configs as unknown[] | undefined) ?? []), ...extra],
      };
    });
  }
  return `# Generated by promshard for shard ${settings.shard}, replica ${settings.replica}. Do not edit:\n# the sidecar rewrites it from the original config.\n${dump(doc, { lineWidth: -1, noRefs: true })}`;
}

/**
 * The target files of every job for one assignment: path (relative to targetsDir) to
 * content. Every job gets its `sd.json`, empty when nothing is assigned, so that Prometheus's
 * job list stays the same; file_sd targets go to the file named after their original file.
 */
export function targetFiles(
  config: PromConfig,
  settings: ShardSettings,
  targets: readonly AssignedTarget[],
): Map<string, string> {
  const byJob = new Map<string, AssignedTarget[]>();
  for (const t of targets) byJob.set(t.job, [...(byJob.get(t.job) ?? []), t]);
  const files = new Map<string, { targets: string[]; labels: Record<string, string> }[]>();
  for (const job of config.scrapeConfigs) {
    const layout = layoutOf(job, settings);
    const jobDir = jobDirName(job.jobName);
    files.set(`${jobDir}/${OTHER_FILE}`, []);
    for (const t of byJob.get(job.jobName) ?? []) {
      const { [ADDRESS]: address, [FILEPATH_LABEL]: filepath, ...rest } = t.labels;
      const k = filepath === undefined ? -1 : patternIndex(layout, t, filepath);
      const name = k < 0 ? OTHER_FILE : `f${k}_${posix.basename(filepath!)}.json`;
      const part = partValue(t);
      const labels = {
        ...rest,
        ...(k < 0 && filepath !== undefined ? { [FILEPATH_LABEL]: filepath } : {}),
        ...(part ? { [PART_FILE_LABEL]: part } : {}),
      };
      const key = `${jobDir}/${name}`;
      if (!files.has(key)) files.set(key, []);
      files.get(key)!.push({ targets: [address ?? ""], labels });
    }
  }
  const out = new Map<string, string>();
  for (const [path, groups] of files) {
    groups.sort((a, b) => (a.targets[0]! < b.targets[0]! ? -1 : a.targets[0]! > b.targets[0]! ? 1 : 0));
    out.set(path, `${JSON.stringify(groups, null, 1)}\n`);
  }
  return out;
}
