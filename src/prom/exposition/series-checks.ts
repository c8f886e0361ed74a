/**
 * What the scrape loop does with each parsed series (scrape/scrape.go append): count it as
 * scraped, apply metric relabeling, drop labels with empty values, refuse missing or invalid
 * names and duplicate label names; count what is left.
 */
import type { Labels } from "../labels.ts";
import { formatOpenMetricsFloat, goParseFloat } from "./gofloat.ts";
import type { Scanner } from "./scanner.ts";
import * as tokens from "./tokens.ts";
import { validUtf8 } from "./utf8.ts";

// Module-local copies of the shared constants, for speed (see tokens.ts).
const { M_HISTOGRAM, M_SUMMARY, DQ, isMetricStart, latin1Eq } = tokens;

const LEGACY_METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LEGACY_LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * One series line parsed: it is a scraped sample. Then what scrape.go does after
 * sampleMutator: labels with an empty value are gone (labels.Builder), a dropped series is
 * not counted, a missing or invalid name or a duplicate label name fails the scrape.
 */
export function onSample(p: Scanner): void {
  p.samples++;
  if (p.cfg.metricRelabel === undefined && !p.nameQuoted && !p.anyQuotedLabel) {
    checkFast(p);
    p.series++;
    return;
  }
  checkSlow(p);
}

/** Unquoted names only: the lexer has already checked their charset. */
function checkFast(p: Scanner): void {
  const b = p.b;
  const offs = p.offs;
  const n = p.nOff;
  if (p.nameS !== p.recStart || !isMetricStart(b[p.nameS]!)) {
    // Leading blanks belong to the name in Prometheus (p.start is the line start).
    if (!p.cfg.utf8Names) p.fail("invalid metric name (blanks before it are part of it)", p.nameS);
  }
  for (let k = 0; k < n; k += 4) {
    const ns = offs[k]!;
    const ne = offs[k + 1]!;
    const len = ne - ns;
    if (offs[k + 3]! === offs[k + 2]!) continue; // empty value: the label is dropped
    if (len === 8 && latin1Eq(b, ns, "__name__")) {
      p.fail('duplicate label name "__name__"', ns);
    }
    for (let j = k + 4; j < n; j += 4) {
      if (offs[j + 1]! - offs[j]! !== len || offs[j + 3]! === offs[j + 2]!) continue;
      let same = true;
      for (let x = 0; x < len; x++) {
        if (b[ns + x] !== b[offs[j]! + x]) {
          same = false;
          break;
        }
      }
      if (same && !emptiedName(p, ns, len)) {
        p.fail(`duplicate label name ${JSON.stringify(p.latin1(ns, ne))}`, offs[j]!);
      }
    }
  }
  // A name given with an empty value anywhere is removed entirely; for __name__ that leaves none.
  for (let k = 0; k < n; k += 4) {
    const ns = offs[k]!;
    if (offs[k + 3]! === offs[k + 2]! && offs[k + 1]! - ns === 8 && latin1Eq(b, ns, "__name__")) {
      p.fail("series without a metric name (__name__ is empty)", ns);
    }
  }
}

/** Whether some label of this name has an empty value (labels.Builder then drops them all). */
function emptiedName(p: Scanner, ns: number, len: number): boolean {
  const b = p.b;
  const offs = p.offs;
  for (let k = 0; k < p.nOff; k += 4) {
    if (offs[k + 3]! !== offs[k + 2]! || offs[k + 1]! - offs[k]! !== len) continue;
    let same = true;
    for (let x = 0; x < len && same; x++) same = b[ns + x] === b[offs[k]! + x];
    if (same) return true;
  }
  return false;
}

function checkSlow(p: Scanner): void {
  const names: string[] = [];
  const values: string[] = [];
  // Quoted names are not checked by the parser; invalid UTF-8 in one fails IsValid later.
  let badName = p.nameQuoted && !validUtf8(p.b, p.nameS, p.nameE);
  names.push("__name__");
  values.push(p.nameQuoted ? unescapeLabel(p.decode(p.nameS, p.nameE)) : p.decode(p.nameS, p.nameE));
  const offs = p.offs;
  for (let k = 0; k < p.nOff; k += 4) {
    const raw = p.decode(offs[k]!, offs[k + 1]!);
    const quoted = p.b[offs[k]! - 1] === DQ;
    const name = quoted ? unescapeLabel(raw) : raw;
    if (quoted && !validUtf8(p.b, offs[k]!, offs[k + 1]!) && offs[k + 3]! > offs[k + 2]!) badName = true;
    let value = unescapeLabel(p.decode(offs[k + 2]!, offs[k + 3]!));
    if (p.v3) value = normalizeFloatLabel(p.mtype, name, value);
    names.push(name);
    values.push(value);
  }
  // labels.Builder drops every label whose name has an empty value somewhere.
  let emptied: Set<string> | undefined;
  for (let k = 0; k < names.length; k++) {
    if (values[k] !== "") continue;
    emptied ??= new Set();
    emptied.add(names[k]!);
  }
  const out: Record<string, string> = {};
  let dup: string | undefined;
  for (let k = 0; k < names.length; k++) {
    const name = names[k]!;
    if (emptied?.has(name)) continue;
    if (Object.hasOwn(out, name)) dup ??= name;
    else if (name === "__proto__")
      Object.defineProperty(out, name, { value: values[k], enumerable: true, writable: true, configurable: true });
    else out[name] = values[k]!;
  }
  let result: Labels | null = out;
  const relabel = p.cfg.metricRelabel;
  if (relabel !== undefined) {
    result = relabel(out);
    if (result === null || Object.keys(result).length === 0) return;
  }
  if (dup !== undefined) p.fail(`duplicate label name ${JSON.stringify(dup)}`, p.recStart);
  if (badName) p.fail("invalid metric or label name: not valid UTF-8", p.recStart);
  const name = result.__name__;
  if (name === undefined || name === "") {
    p.fail("series without a metric name (__name__ missing after relabeling)", p.recStart);
  }
  // Unchanged labels from unquoted names: the lexer already checked the charset.
  if (result === out && !p.nameQuoted && !p.anyQuotedLabel && isMetricStart(p.b[p.nameS]!)) {
    p.series++;
    return;
  }
  for (const [k, v] of Object.entries(result)) {
    if (v === "") continue;
    const ok = p.cfg.utf8Names
      ? k.length > 0 && k.isWellFormed() && (k !== "__name__" || v.isWellFormed())
      : LEGACY_LABEL.test(k) && (k !== "__name__" || LEGACY_METRIC.test(v));
    if (!ok || !v.isWellFormed()) p.fail(`invalid metric or label name in ${formatLabels(result)}`, p.recStart);
  }
  p.series++;
}

/** lvalReplacer: `\"`, `\\` and `\n`; any other escape stays as written. */
function unescapeLabel(s: string): string {
  if (!s.includes("\\")) return s;
  let out = "";
  for (let k = 0; k < s.length; k++) {
    const c = s[k];
    if (c === "\\" && k + 1 < s.length) {
      const d = s[k + 1];
      if (d === '"' || d === "\\") {
        out += d;
        k++;
        continue;
      }
      if (d === "n") {
        out += "\n";
        k++;
        continue;
      }
    }
    out += c;
  }
  return out;
}

/** 3.x normalizeFloatsInLabelValues: `le` of histograms and `quantile` of summaries. */
function normalizeFloatLabel(mtype: number, name: string, value: string): string {
  if ((mtype === M_SUMMARY && name === "quantile") || (mtype === M_HISTOGRAM && name === "le")) {
    const f = goParseFloat(value);
    if (f !== undefined) return formatOpenMetricsFloat(f);
  }
  return value;
}

function formatLabels(l: Labels): string {
  return `{${Object.entries(l)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ")}}`;
}
