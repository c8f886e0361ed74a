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
  return Object.freeze(Object.fromEntries(sortNames(Object.keys(labels)).map((n) => [n, labels[n]!])));
}

/**
 * A label builder's result: the names in Go's order, frozen. Object.fromEntries, not one
 * assignment per label: it makes `__proto__` (a valid label name) a label, not the prototype,
 * and an object given more than ~16 properties one by one becomes a V8 hash table, three
 * times the memory (a target's ~22 discovered labels, kept for every target, were most of the
 * coordinator's memory at 100,000 targets; issue 16).
 */
export function labelsFromMap(lb: ReadonlyMap<string, string>): Labels {
  return Object.freeze(Object.fromEntries(sortedNames(lb).map((n) => [n, lb.get(n)!])));
}

/**
 * The map's names in Go's order. Targets of one job mostly carry the same names in the same
 * order (one discovery role, the same rules), before and after relabeling: the last few
 * orders seen are checked first.
 */
const recentOrders: { names: string[]; sorted: string[] }[] = [];
function sortedNames(lb: ReadonlyMap<string, string>): readonly string[] {
  for (const o of recentOrders) {
    if (o.names.length !== lb.size) continue;
    let i = 0;
    for (const n of lb.keys()) {
      if (n !== o.names[i]) break;
      i++;
    }
    if (i === o.names.length) return o.sorted;
  }
  const names = [...lb.keys()];
  const order = { names, sorted: sortNames([...names]) };
  if (recentOrders.length >= 4) recentOrders.pop();
  recentOrders.unshift(order);
  return order.sorted;
}

/** Code units at or above U+D800 are where UTF-16 order and code-point order can part. */
const BEYOND_BMP_ORDER = /[\uD800-\uFFFF]/;

/**
 * Sorts in place in Go's byte order. JavaScript's default sort compares UTF-16 code units,
 * which agrees with UTF-8 byte order unless a surrogate meets a code unit above U+DFFF; only
 * then the slower code-point comparison runs.
 */
export function sortNames(names: string[]): string[] {
  names.sort();
  for (const n of names) {
    if (!isPlain(n)) return names.sort(compareNames);
  }
  return names;
}

/** Label names come from a small vocabulary: remember which ones need no code-point care. */
const plainNames = new Map<string, boolean>();
function isPlain(name: string): boolean {
  let plain = plainNames.get(name);
  if (plain === undefined) {
    plain = !BEYOND_BMP_ORDER.test(name);
    if (plainNames.size > 100_000) plainNames.clear();
    plainNames.set(name, plain);
  }
  return plain;
}

/** Go compares strings bytewise; for UTF-16 strings that is code-point order. */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  if (isPlain(a) && isPlain(b)) return a < b ? -1 : 1;
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
