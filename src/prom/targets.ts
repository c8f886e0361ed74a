import { hash } from "node:crypto";
import type { ScrapeJob } from "./config.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { redactUrl } from "./go-url.ts";
import {
  ADDRESS,
  INSTANCE,
  isValidLabelValue,
  JOB,
  type Labels,
  labelsFromMap,
  META_PREFIX,
  METRICS_PATH,
  PARAM_PREFIX,
  RESERVED_PREFIX,
  SCHEME,
  SCRAPE_INTERVAL,
  SCRAPE_TIMEOUT,
  sortNames,
} from "./labels.ts";
import { applyRules } from "./relabel.ts";
import type { TargetGroup } from "./target-group.ts";

export type { TargetGroup } from "./target-group.ts";

/** A target Prometheus would scrape, in the shape of its `/api/v1/targets` entries. */
export interface Target {
  /** Hash of job and every final label (reserved ones too): stable across restarts and shards. */
  readonly id: string;
  readonly scrapePool: string;
  readonly discoveredLabels: Labels;
  /** Public labels, the ones the target's series carry. */
  readonly labels: Labels;
  /** Every label after relabeling, `__address__`, `__scheme__`, `__param_*` … included. */
  readonly internalLabels: Labels;
  readonly scrapeUrl: string;
  readonly scrapeIntervalMs: number;
  readonly scrapeTimeoutMs: number;
}

export interface DroppedTarget {
  readonly scrapePool: string;
  readonly discoveredLabels: Labels;
}

/** A target Prometheus refuses (no address, bad interval …): it logs these; we report them. */
export interface TargetFailure {
  readonly scrapePool: string;
  readonly discoveredLabels: Labels;
  readonly error: string;
}

export interface TargetSet {
  readonly active: Target[];
  readonly dropped: DroppedTarget[];
  readonly failures: TargetFailure[];
  /** Discovered targets that relabeled into one already seen: Prometheus scrapes each once. */
  readonly collapsed: number;
}

const NATIVE_HISTOGRAM_LABELS = [
  ["__convert_classic_histograms_to_nhcb__", "convertClassicHistogramsToNhcb"],
  ["__always_scrape_classic_histograms__", "alwaysScrapeClassicHistograms"],
  ["__scrape_native_histograms__", "scrapeNativeHistograms"],
] as const;

/**
 * What service discovery said about one target: its labels over its group's, empty values
 * dropped. This is what a shard's file_sd file must carry so that the shard's Prometheus
 * rebuilds exactly the same discovered labels.
 */
export function sdLabels(target: Labels, group: Labels): Labels {
  const lb = new Map<string, string>();
  for (const n in group) if (group[n] !== "" && !Object.hasOwn(target, n)) lb.set(n, group[n]!);
  for (const n in target) if (target[n] !== "") lb.set(n, target[n]!);
  return labelsFromMap(lb);
}

/**
 * The labels a target has before relabeling, as Prometheus's scrape target building makes
 * them: target labels over group labels, then job, interval, timeout, path and scheme where
 * unset, then `__param_*` from the job's params. Empty values count as absent (both
 * versions' label builders drop them); 2.x lets params override discovered `__param_*`
 * labels, 3.x the reverse.
 */
export function discoveredLabels(target: Labels, group: Labels, job: ScrapeJob): Map<string, string> {
  const v3 = job.dialect.major >= 3;
  const lb = new Map<string, string>();
  for (const n in target) setOrDelete(lb, n, target[n]!);
  // hasOwn: `in` would also see Object.prototype's names (a label may be called constructor).
  for (const n in group) if (!Object.hasOwn(target, n)) setOrDelete(lb, n, group[n]!);

  for (const [n, v] of jobDefaults(job)) if (!lb.get(n)) setOrDelete(lb, n, v);

  for (const k of Object.keys(job.params)) {
    const values = job.params[k]!;
    const name = PARAM_PREFIX + k;
    if (values.length > 0 && (!v3 || !lb.get(name))) setOrDelete(lb, name, values[0]!);
  }
  return lb;
}

/** A job's default labels, made once per job (a config load makes new jobs). */
const defaultsByJob = new WeakMap<ScrapeJob, readonly (readonly [string, string])[]>();
function jobDefaults(job: ScrapeJob): readonly (readonly [string, string])[] {
  let defaults = defaultsByJob.get(job);
  if (defaults === undefined) {
    const list: [string, string][] = [
      [JOB, job.jobName],
      [SCRAPE_INTERVAL, formatDuration(job.scrapeIntervalMs)],
      [SCRAPE_TIMEOUT, formatDuration(job.scrapeTimeoutMs)],
      [METRICS_PATH, job.metricsPath],
      [SCHEME, job.scheme],
    ];
    if (job.dialect.major >= 3) for (const [name, key] of NATIVE_HISTOGRAM_LABELS) list.push([name, String(job[key])]);
    defaults = list;
    defaultsByJob.set(job, defaults);
  }
  return defaults;
}

function setOrDelete(lb: Map<string, string>, n: string, v: string): void {
  if (v === "") lb.delete(n);
  else lb.set(n, v);
}

/** The public labels of a sorted set: those not starting with `__`, order kept. */
function publicLabels(all: Labels): Labels {
  const out: Record<string, string> = {};
  for (const n in all) if (!n.startsWith(RESERVED_PREFIX)) out[n] = all[n]!;
  return Object.freeze(out);
}

/**
 * Builds the targets of one group for one job exactly as Prometheus's PopulateLabels and
 * TargetsFromGroup do, including its dedup of identical targets within a scrape pool.
 */
export function targetsFromGroup(group: TargetGroup, job: ScrapeJob, into?: TargetSet): TargetSet {
  const out = into ?? { active: [], dropped: [], failures: [], collapsed: 0 };
  for (const t of group.targets) {
    const lb = discoveredLabels(t, group.labels, job);
    const discovered = labelsFromMap(lb);
    const result = populate(lb, job);
    if (result === null) out.dropped.push({ scrapePool: job.jobName, discoveredLabels: discovered });
    else if (typeof result === "string") {
      // A refused target's address goes into messages and APIs: its password does not.
      const address = discovered[ADDRESS];
      const shown =
        address === undefined ? discovered : Object.freeze({ ...discovered, [ADDRESS]: redactUrl(address) });
      out.failures.push({ scrapePool: job.jobName, discoveredLabels: shown, error: result });
    } else out.active.push({ ...result, discoveredLabels: discovered });
  }
  return out;
}

/** All groups of one job, with Prometheus's collapse of duplicate targets applied. */
export function targetsForJob(groups: Iterable<TargetGroup>, job: ScrapeJob): TargetSet {
  const all: TargetSet = { active: [], dropped: [], failures: [], collapsed: 0 };
  for (const g of groups) targetsFromGroup(g, job, all);
  const active = dedupe(all.active);
  return { ...all, active, collapsed: all.active.length - active.length };
}

/**
 * A scrape pool keeps one target per label-set hash and shows the discovered labels of the
 * last duplicate it saw. Prometheus walks groups in map order, so which one that is across
 * groups is its own chance; within the given order, the last one wins here.
 */
function dedupe(active: Target[]): Target[] {
  const byId = new Map<string, Target>();
  for (const t of active) {
    const prev = byId.get(t.id);
    byId.set(t.id, prev ? { ...prev, discoveredLabels: t.discoveredLabels } : t);
  }
  return [...byId.values()];
}

type Populated = Omit<Target, "discoveredLabels">;

/** Relabels and finishes one target: null when dropped, a message when Prometheus would refuse it. */
function populate(lb: Map<string, string>, job: ScrapeJob): Populated | null | string {
  if (!applyRules(lb, job.relabelConfigs, job.dialect)) return null;
  let addr = lb.get(ADDRESS) ?? "";
  if (addr === "") return "no address";

  if (job.dialect.major < 3) {
    const withPort = defaultPort(addr, lb.get(SCHEME) ?? "", job.scheme);
    if (typeof withPort === "object") return withPort.error;
    if (withPort !== addr) {
      addr = withPort;
      lb.set(ADDRESS, addr);
    }
  }
  if (addr.includes("/")) return `"${redactUrl(addr)}" is not a valid hostname`;

  const interval = lb.get(SCRAPE_INTERVAL) ?? "";
  const intervalMs = parseDuration(interval);
  if (typeof intervalMs === "object") return `error parsing scrape interval: ${intervalMs.error}`;
  if (intervalMs === 0) return "scrape interval cannot be 0";
  const timeout = lb.get(SCRAPE_TIMEOUT) ?? "";
  const timeoutMs = parseDuration(timeout);
  if (typeof timeoutMs === "object") return `error parsing scrape timeout: ${timeoutMs.error}`;
  if (timeoutMs === 0) return "scrape timeout cannot be 0";
  if (timeoutMs > intervalMs) {
    return `scrape timeout cannot be greater than scrape interval ("${timeout}" > "${interval}")`;
  }
  if (job.dialect.major >= 3) {
    for (const [name] of NATIVE_HISTOGRAM_LABELS) {
      const v = lb.get(name);
      if (v !== undefined && v !== "" && !GO_BOOLS.has(v))
        return `error parsing ${name}: invalid syntax; write true or false`;
    }
  }

  for (const n of lb.keys()) if (n.startsWith(META_PREFIX)) lb.delete(n);
  if (!lb.get(INSTANCE)) lb.set(INSTANCE, addr);
  for (const [n, v] of lb) {
    if (!isValidLabelValue(v)) return `invalid label value for "${n}": not valid UTF-8`;
  }

  const internalLabels = labelsFromMap(lb);
  return {
    id: targetId(job.jobName, internalLabels),
    scrapePool: job.jobName,
    labels: publicLabels(internalLabels),
    internalLabels,
    scrapeUrl: scrapeUrl(internalLabels, job.params),
    scrapeIntervalMs: intervalMs,
    scrapeTimeoutMs: timeoutMs,
  };
}

/** strconv.ParseBool's accepted spellings. */
const GO_BOOLS = new Set(["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"]);

/**
 * Prometheus 2.x appends the scheme's default port to an address without one, when adding
 * a port makes it a valid host:port (net.SplitHostPort's rules); 3.0 stopped doing this.
 */
function defaultPort(addr: string, scheme: string, jobScheme: string): string | { error: string } {
  if (splitHostPort(addr)) return addr;
  if (!splitHostPort(`${addr}:1234`)) return addr;
  if (scheme === "http" || scheme === "") return `${addr}:80`;
  if (scheme === "https") return `${addr}:443`;
  return { error: `invalid scheme: "${jobScheme}"` };
}

/** Whether Go's net.SplitHostPort accepts the address. */
export function splitHostPort(s: string): boolean {
  const i = s.lastIndexOf(":");
  if (i < 0) return false;
  let j = 0;
  let k = 0;
  if (s[0] === "[") {
    const end = s.indexOf("]");
    // No "]", "]" at the end (no port), or "]" not right before the last colon.
    if (end < 0 || end + 1 !== i) return false;
    j = 1;
    k = end + 1;
  } else if (s.slice(0, i).includes(":")) {
    return false;
  }
  return !s.slice(j).includes("[") && !s.slice(k).includes("]");
}

export function targetId(job: string, labels: Labels): string {
  let text = job;
  for (const n in labels) text += `\xff${n}\xfe${labels[n]}`;
  return hash("sha256", text, "hex").slice(0, 16);
}

/** Target.URL(): params from the job, first value overridden by `__param_*` labels. */
export function scrapeUrl(labels: Labels, jobParams: Readonly<Record<string, readonly string[]>>): string {
  const params = new Map<string, string[]>();
  for (const k of Object.keys(jobParams)) params.set(k, [...jobParams[k]!]);
  for (const n in labels) {
    if (!n.startsWith(PARAM_PREFIX)) continue;
    const key = n.slice(PARAM_PREFIX.length);
    const vs = params.get(key);
    if (vs && vs.length > 0) vs[0] = labels[n]!;
    else params.set(key, [labels[n]!]);
  }
  const query = sortNames([...params.keys()])
    .flatMap((k) => params.get(k)!.map((v) => `${goEscape(k, "query")}=${goEscape(v, "query")}`))
    .join("&");
  const scheme = labels[SCHEME] ?? "";
  const host = labels[ADDRESS] ?? "";
  let path = labels[METRICS_PATH] ?? "";
  path = path === "*" ? "*" : goEscape(path, "path");
  // Joined rather than appended: a string built by += is a tree of pieces until read, several
  // times the bytes of the URL it spells, and the coordinator keeps one per target (issue 16).
  const url: string[] = scheme ? [`${scheme}:`] : [];
  if (scheme || host) {
    if (host || path) url.push("//");
    url.push(goEscape(host, "host"));
  }
  if (path !== "" && path[0] !== "/" && host !== "") url.push("/");
  url.push(path);
  if (query !== "") url.push(`?${query}`);
  return url.join("");
}

const HOST_SAFE = new Set("!$&'()*+,;=:[]<>\"");

/** net/url's escape for the host, path and query-component modes (non-ASCII bytes always escaped). */
function goEscape(s: string, mode: "host" | "path" | "query"): string {
  let i = 0;
  while (i < s.length && !shouldEscape(s.charCodeAt(i), s[i]!, mode)) i++;
  if (i === s.length) return s;
  const out: string[] = [];
  for (const byte of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(byte);
    if (!shouldEscape(byte, c, mode)) out.push(c);
    else if (c === " " && mode === "query") out.push("+");
    else out.push(`%${byte.toString(16).toUpperCase().padStart(2, "0")}`);
  }
  return out.join("");
}

function shouldEscape(byte: number, c: string, mode: "host" | "path" | "query"): boolean {
  if ((byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39)) return false;
  if (mode === "host" && HOST_SAFE.has(c)) return false;
  if (c === "-" || c === "_" || c === "." || c === "~") return false;
  // Reserved characters: a path keeps all but "?", a query component escapes them all.
  if ("$&+,/:;=?@".includes(c)) return mode === "path" ? c === "?" : true;
  return true;
}
