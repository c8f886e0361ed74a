import type { PromDialect } from "./version.ts";

/**
 * A label set as Prometheus sees it: names to values, no duplicates. Plain frozen objects
 * keep JSON output, equality checks and tests simple; relabeling works on a Map and
 * converts once at the end.
 */
export type Labels = Readonly<Record<string, string>>;

export const ADDRESS = "__address__";
export const SCHEME = "__scheme__";
export const METRICS_PATH = "__metrics_path__";
export const SCRAPE_INTERVAL = "__scrape_interval__";
export const SCRAPE_TIMEOUT = "__scrape_timeout__";
export const PARAM_PREFIX = "__param_";
export const META_PREFIX = "__meta_";
export const RESERVED_PREFIX = "__";
export const JOB = "job";
export const INSTANCE = "instance";
export const METRIC_NAME = "__name__";

const LEGACY_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Prometheus 2.x names, and 3.x names under `metric_name_validation_scheme: legacy`. */
export function isLegacyLabelName(name: string): boolean {
  return LEGACY_NAME.test(name);
}

/** A label name valid for the given Prometheus: legacy charset, or any non-empty UTF-8. */
export function isValidLabelName(name: string, dialect: PromDialect): boolean {
  return dialect.utf8Names ? name.length > 0 && name.isWellFormed() : LEGACY_NAME.test(name);
}

/** Label values are any valid UTF-8; JavaScript strings fail only on lone surrogates. */
export function isValidLabelValue(value: string): boolean {
  return value.isWellFormed();
}

/** The same labels with keys in byte order (Prometheus sorts label sets that way). */
export function sortLabels(labels: Labels): Labels {
  const names = Object.keys(labels).sort(compareNames);
  const out: Record<string, string> = {};
  for (const n of names) out[n] = labels[n]!;
  return Object.freeze(out);
}

/** Go compares strings bytewise; for UTF-16 strings that is code-point order. */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

export function labelsEqual(a: Labels, b: Labels): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
