/**
 * Relabel regular expressions with the semantics of Go's `regexp` package, as Prometheus
 * compiles them (`relabel.NewRegexp`): 2.x wraps the user's text in `^(?:…)$`, 3.x in
 * `^(?s:…)$`. The engine is re2js (a port of Go's regexp); this module adds what re2js does
 * differently from the Go that builds each Prometheus, Go's `Regexp.Expand` and
 * `ReplaceAllString` (re2js's replacement syntax is JavaScript's), and fast paths for the common
 * relabel regexes. test/prom/regex.test.ts checks all of it against Go itself.
 *
 * Go releases: 2.x is Go 1.19 (Debian's 2.42): no `(?<name>…)` (Go 1.22), `\p{…}` by exact
 * name, Unicode 13. 3.x is Go 1.25+ (3.16 is built with 1.26): `(?<name>…)`, `\p{…}` names
 * canonicalized with aliases, `Cn`/`LC`/`ASCII`/`Assigned`, and `C` including unassigned code
 * points. (Earlier 3.x releases built with Go 1.22–1.24 read `\p` names and `C` as 2.x does;
 * PromDialect does not tell them apart, so they get 3.16's rules.)
 *
 * Rewrites so that re2js reads the regex as Go does: `\p` names resolved per Go release (and
 * rejected as Go rejects them); duplicate group names (Go allows them) renamed for re2js while
 * `Expand` keeps Go's first-participating-group rule; `[:]` inside brackets (re2js misreads it as
 * a class name); `(?i)\p{LC}` outside brackets kept unfolded. Go's own error messages are kept,
 * including which error comes first.
 *
 * Strings: Go matches UTF-8 bytes, JS strings are UTF-16. re2js walks code points, so `.` and
 * classes take an astral character (an emoji) as one rune, as Go does. A JS string that is not
 * well-formed (a lone surrogate) has no UTF-8 form; inputs and templates are read as their
 * `toWellFormed()` form (each lone surrogate as U+FFFD, which is what Go sees for a label value
 * decoded from JSON), and a regex containing one is rejected as Go rejects invalid UTF-8.
 *
 * Known divergences (asserted in test/prom/regex.test.ts):
 * - Unicode tables: re2js carries Unicode 17 data; Go 1.21–1.26 Unicode 15.0, Go 1.19 Unicode
 *   13.0. `\p{…}` classes and `(?i)` folding (and letters in `$name` templates, read with the JS
 *   engine's tables) can differ for code points assigned after those versions.
 * - `(?i)` with `\p{LC}` (`\p{Cased_Letter}`, 3.x only) inside brackets: Go does not fold LC,
 *   re2js adds U+0345 (COMBINING GREEK YPOGEGRAMMENI).
 * - Size limit: Go rejects a regex whose program would exceed 3,355,443 instructions, re2js one
 *   above 1,398,101 ("expression too large"); regexes between the two are rejected here only.
 */
import { RE2JS, RE2JSSyntaxException, RE2Set } from "re2js";
import { PromshardError } from "../errors.ts";
import { GO_CATEGORIES, GO_CATEGORY_ALIASES, GO_SCRIPTS } from "./regex-classes-table.ts";
import type { PromDialect } from "./version.ts";

export interface RegexMatch {
  /** group i's text, or undefined when group i did not participate */
  readonly groups: readonly (string | undefined)[];
}

export interface PromRegex {
  /** Exactly what the user wrote (for config round-trip and messages). */
  readonly source: string;
  /** Full anchored match, as Prometheus's `Regexp.MatchString`. */
  matches(s: string): boolean;
  /** `FindStringSubmatchIndex` on the anchored regex, as texts. */
  match(s: string): RegexMatch | null;
  /**
   * Go's `Regexp.ExpandString(nil, template, src, match)`: `$1`, `${1}`, `$name`, `${name}`, `$$`;
   * longest-name rule (`$1x` is group "1x"); unknown or non-participating group -> empty;
   * malformed `$` kept literally.
   */
  expand(template: string, m: RegexMatch): string;
  /**
   * `Regexp.ReplaceAllString(s, repl)` as Prometheus's labelmap uses it (anchored regex: replaces
   * the whole string if it matches, else returns s).
   */
  replaceAll(s: string, template: string): string;
}

// ---------------------------------------------------------------------------------------------
// Public entry point and cache

const CACHE_LIMIT = 4096;
const cache = new Map<string, PromRegex>();

/**
 * Compiles a relabel regex the way the given Prometheus does. Throws
 * `PromshardError("regex_invalid")` quoting the regex and Go's reason; the error's `cause` is an
 * Error whose message is exactly what Go's `regexp.Compile` would return.
 */
export function compileRelabelRegex(source: string, dialect: PromDialect, path?: string): PromRegex {
  const flavor: Flavor = { dotAll: dialect.dotAll, modernGo: dialect.perlNamedGroups };
  const key = `${flavor.dotAll ? 1 : 0}${flavor.modernGo ? 1 : 0}${source}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let re: PromRegex;
  try {
    re = build(source, flavor);
  } catch (e) {
    if (e instanceof GoRegexpError) {
      throw new PromshardError("regex_invalid", `invalid regex ${JSON.stringify(source)}: ${e.reason}`, {
        path,
        cause: new Error(e.message),
      });
    }
    throw e;
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, re);
  return re;
}

/**
 * What differs between the Go releases that build the supported Prometheus versions.
 * `modernGo` is Go ≥ 1.25 (Prometheus 3.x as promshard models it: `(?<name>…)` groups, Go 1.22;
 * canonical `\p{…}` names, aliases, `Cn`/`LC`/`ASCII`/`Assigned`, Go 1.25); otherwise Go 1.19
 * (Prometheus 2.x: Debian's 2.42 is built with it).
 */
interface Flavor {
  readonly dotAll: boolean;
  readonly modernGo: boolean;
}

/** A compile error, worded as Go's `*syntax.Error`: "error parsing regexp: CODE: `EXPR`". */
class GoRegexpError extends Error {
  readonly reason: string;
  constructor(code: string, expr: string) {
    const reason = `${code}: \`${expr}\``;
    super(`error parsing regexp: ${reason}`);
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------------------------
// Compilation

/** An RE2 program as re2js exposes it through `RE2JS.prototype.re2()`. */
type Re2 = ReturnType<RE2JS["re2"]>;
const UNANCHORED: number = RE2Set.UNANCHORED;

function build(source: string, flavor: Flavor): PromRegex {
  if (!source.isWellFormed()) {
    // Go checks UTF-8 as it parses; a lone surrogate has no UTF-8 form.
    const at = firstIllFormed(source);
    throw new GoRegexpError("invalid UTF-8", source.slice(at).toWellFormed());
  }
  const fast = fastPath(source, flavor);
  if (fast !== null) return fast;

  const prefix = flavor.dotAll ? "^(?s:" : "^(?:";
  const full = `${prefix}${source})$`;
  const scan = scanRegex(full, prefix.length);
  const edits: Edit[] = [];

  // Errors Go reports that re2js would not. Go reports the first error its parser meets, so
  // such an error only wins if the text before it parses (see earlierEngineError).
  let problem: { at: number; error: GoRegexpError } | null = null;
  if (!flavor.modernGo) {
    // Go before 1.22 parses `(?<` as flags and fails at `<`.
    const angle = scan.captures.find((c) => c.syntax === "angle");
    if (angle !== undefined) {
      problem = { at: angle.nameStart - 3, error: new GoRegexpError("invalid or unsupported Perl syntax", "(?<") };
    }
  }
  for (const f of scan.fixes) {
    edits.push({ start: f.at, end: f.at + 1, text: "\\[" }); // the same literal [, to re2js too
    if (f.error !== null && (problem === null || f.at < problem.at)) problem = { at: f.at, error: f.error };
  }
  // \p{…} names as the Go in question resolves them.
  for (const t of scan.classes) {
    const written = full.slice(t.start, t.end);
    const text = rewriteClass(t, flavor);
    if (text === null) {
      if (problem === null || t.start < problem.at) {
        problem = { at: t.start, error: new GoRegexpError("invalid character class range", written) };
      }
      edits.push({ start: t.start, end: t.end, text: "\\p{Any}" }); // neutral stand-in
    } else if (text !== written) {
      edits.push({ start: t.start, end: t.end, text });
    }
  }

  // Go allows duplicate group names (Regexp.SubexpNames keeps both; Expand uses the first that
  // took part); re2js rejects them, so later duplicates get fresh names of the same length.
  const names: string[] = [""];
  const used = new Set<string>();
  for (const c of scan.captures) {
    names.push(c.name);
    if (c.name !== "") used.add(c.name);
  }
  const first = new Set<string>();
  for (const c of scan.captures) {
    if (c.name === "") continue;
    if (!first.has(c.name)) {
      first.add(c.name);
      continue;
    }
    if (!isValidCaptureName(c.name)) continue; // let the engine report it
    const fresh = freshName(c.name.length, used);
    used.add(fresh);
    edits.push({ start: c.nameStart, end: c.nameStart + c.name.length, text: fresh });
  }

  const rewritten = applyEdits(full, edits);
  if (problem !== null) throw earlierEngineError(full, problem.at, edits) ?? problem.error;
  const compiled = compileEngine(full, rewritten, edits);
  const re2 = compiled.re2();
  const ngroups = re2.numberOfCapturingGroups();
  let groupNames: readonly string[] = names;
  if (ngroups + 1 !== names.length) {
    // The scanner disagrees with the engine: trust the engine's names (no duplicates then).
    const byName = compiled.namedGroups();
    const fallback = new Array<string>(ngroups + 1).fill("");
    for (const [name, i] of Object.entries(byName)) fallback[i] = name;
    groupNames = fallback;
  }
  return new EngineRegex(source, re2, ngroups, groupNames, scan.breakout);
}

function compileEngine(full: string, rewritten: string, edits: readonly Edit[]): RE2JS {
  try {
    return RE2JS.compile(rewritten);
  } catch (e) {
    if (e instanceof RE2JSSyntaxException) {
      // re2js omits the expression for the size and depth limits; Go quotes the whole regex.
      throw new GoRegexpError(e.error, e.input === null ? full : originalText(e.input, full, rewritten, edits));
    }
    throw e;
  }
}

/**
 * The error Go's parser meets before it reaches position `at` of `full`, if any. The text before
 * `at` (with the edits before it) is parsed alone; its only acceptable complaints are the unclosed
 * groups and brackets that cutting it there leaves. If it fails, the same text followed by the
 * user's own rest gives the error as Go words it (the parser stops before the rest).
 */
function earlierEngineError(full: string, at: number, edits: readonly Edit[]): GoRegexpError | null {
  // Only the edits before `at` matter: Go stops before reaching the rest.
  const before = edits.filter((e) => e.end <= at);
  const text = applyEdits(full, before);
  let cut = at;
  for (const e of before) cut += e.text.length - (e.end - e.start);
  try {
    RE2JS.compile(text.slice(0, cut));
    return null;
  } catch (e) {
    if (!(e instanceof RE2JSSyntaxException)) throw e;
    if (e.error === "missing closing )" || e.error === "missing closing ]") return null;
  }
  try {
    compileEngine(full, text, before);
  } catch (e) {
    if (e instanceof GoRegexpError) return e;
    throw e;
  }
  return null;
}

/**
 * The user's spelling of the piece of the rewritten regex an engine error quotes (the whole
 * regex, the rest of it from the error, or the bad token), mapped back through the edits.
 */
function originalText(quoted: string, full: string, rewritten: string, edits: readonly Edit[]): string {
  if (quoted === rewritten) return full;
  if (edits.length === 0) return quoted;
  let start = rewritten.endsWith(quoted) ? rewritten.length - quoted.length : -1;
  if (start < 0) {
    // A token: where it occurs outside the edits (our rewrites are not what the user wrote).
    for (let at = rewritten.indexOf(quoted); at >= 0; at = rewritten.indexOf(quoted, at + 1)) {
      if (start < 0) start = at;
      if (!overlapsEdit(at, at + quoted.length, edits)) {
        start = at;
        break;
      }
    }
  }
  if (start < 0) return quoted;
  const end = originalPosition(start + quoted.length, edits);
  start = originalPosition(start, edits);
  return full.slice(start, end);
}

/** Whether [from, to) of the rewritten text overlaps the text of an edit. */
function overlapsEdit(from: number, to: number, edits: readonly Edit[]): boolean {
  let shift = 0;
  for (const e of edits) {
    const newStart = e.start + shift;
    const newEnd = newStart + e.text.length;
    if (from < newEnd && newStart < to) return true;
    shift += e.text.length - (e.end - e.start);
  }
  return false;
}

/** A position in the rewritten text as a position in the original (edits sorted, disjoint). */
function originalPosition(p: number, edits: readonly Edit[]): number {
  let shift = 0;
  for (const e of edits) {
    const newStart = e.start + shift;
    if (p < newStart) break;
    if (p < newStart + e.text.length) return e.start + Math.min(p - newStart, e.end - e.start);
    shift += e.text.length - (e.end - e.start);
  }
  return p - shift;
}

function firstIllFormed(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return s.length;
}

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

function applyEdits(s: string, edits: Edit[]): string {
  if (edits.length === 0) return s;
  edits.sort((a, b) => a.start - b.start);
  let out = "";
  let at = 0;
  for (const e of edits) {
    out += s.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + s.slice(at);
}

const NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";

function freshName(length: number, used: Set<string>): string {
  for (let len = Math.max(1, length); ; len++) {
    const limit = Math.min(NAME_CHARS.length ** len, 1e6);
    for (let k = 0; k < limit; k++) {
      let name = "";
      let n = k;
      for (let i = 0; i < len; i++) {
        name += NAME_CHARS[n % NAME_CHARS.length];
        n = Math.floor(n / NAME_CHARS.length);
      }
      if (!used.has(name)) return name;
    }
  }
}

function isValidCaptureName(name: string): boolean {
  return /^[A-Za-z0-9_]+$/.test(name);
}

// ---------------------------------------------------------------------------------------------
// Scanner: finds capture groups and \p classes the way Go's parser tokenizes. Exact for every
// regex Go accepts; on invalid regexes it only has to not crash (the engine reports the error).

interface CaptureToken {
  readonly syntax: "plain" | "P" | "angle";
  /** "" for an unnamed group. */
  readonly name: string;
  readonly nameStart: number;
}

interface ClassToken {
  readonly start: number;
  readonly end: number;
  /** +1 for \p, -1 for \P (before a `^` in the name). */
  readonly sign: 1 | -1;
  /** The name as written, `^` included. */
  readonly name: string;
  readonly inBrackets: boolean;
}

interface Scan {
  readonly captures: CaptureToken[];
  readonly classes: ClassToken[];
  /** Bracket texts re2js reads differently from Go (see scanClass), as Go reads them. */
  readonly fixes: { at: number; error: GoRegexpError | null }[];
  /** The user's text closes the `(?:` Prometheus opened (`a)|(b`): the regex is not anchored. */
  readonly breakout: boolean;
}

const FLAG_CHARS = new Set(["i", "m", "s", "U", "-"]);

function scanRegex(re: string, prefixLength: number): Scan {
  const captures: CaptureToken[] = [];
  const classes: ClassToken[] = [];
  const fixes: Scan["fixes"] = [];
  const n = re.length;
  const lastParen = n - 2;
  let depth = 0;
  let breakout = false;
  let i = 0;
  while (i < n) {
    const c = re[i];
    if (c === "(") {
      if (re.startsWith("(?P<", i) || (re.startsWith("(?<", i) && n - i > 3)) {
        const begin = re[i + 2] === "P" ? i + 4 : i + 3;
        const end = re.indexOf(">", i);
        const syntax = begin === i + 4 ? "P" : "angle";
        if (end < 0) {
          captures.push({ syntax, name: "", nameStart: begin }); // invalid anyway; Go 1.19 stops at `(?<`
          break;
        }
        captures.push({ syntax, name: re.slice(begin, end), nameStart: begin });
        depth++;
        i = end + 1;
      } else if (re.startsWith("(?", i)) {
        let j = i + 2;
        while (j < n && FLAG_CHARS.has(re[j] as string)) j++;
        if (re[j] === ":") depth++;
        i = j < n && (re[j] === ":" || re[j] === ")") ? j + 1 : j;
      } else {
        captures.push({ syntax: "plain", name: "", nameStart: i + 1 });
        depth++;
        i++;
      }
    } else if (c === ")") {
      depth--;
      if (depth <= 0 && i >= prefixLength && i < lastParen) breakout = true;
      i++;
    } else if (c === "\\") {
      const d = re[i + 1];
      if (d === "Q") {
        const e = re.indexOf("\\E", i + 2);
        i = e < 0 ? n : e + 2;
      } else if (d === "p" || d === "P") {
        const t = classToken(re, i, false);
        if (t === null) break;
        classes.push(t);
        i = t.end;
      } else {
        i += 2;
      }
    } else if (c === "[") {
      i = scanClass(re, i, classes, fixes);
    } else {
      i++;
    }
  }
  return { captures, classes, fixes, breakout };
}

/** Go's parseClass, from the `[` at `at`; returns the index after the closing `]`. */
function scanClass(re: string, at: number, classes: ClassToken[], fixes: Scan["fixes"]): number {
  const n = re.length;
  let j = at + 1;
  if (re[j] === "^") j++;
  let first = true;
  while (j < n && (re[j] !== "]" || first)) {
    first = false;
    if (re.startsWith("[:", j)) {
      // Go looks for the closing `:]` after the `[:`; re2js from the `:` on, so it reads `[:]`
      // as a (bad) class name where Go reads a literal `[` or a longer name.
      const e = re.indexOf(":]", j + 2);
      if (re[j + 2] === "]") {
        fixes.push({
          at: j,
          error: e < 0 ? null : new GoRegexpError("invalid character class range", re.slice(j, e + 2)),
        });
        if (e < 0) {
          j++; // a literal [
          continue;
        }
      }
      if (e >= 0) {
        j = e + 2; // [:alpha:] (or an error the engine reports)
        continue;
      }
    }
    if (re[j] === "\\" && (re[j + 1] === "p" || re[j + 1] === "P")) {
      const t = classToken(re, j, true);
      if (t === null) return n;
      classes.push(t);
      j = t.end;
      continue;
    }
    if (re[j] === "\\" && "dDsSwW".includes(re[j + 1] ?? "")) {
      j += 2;
      continue;
    }
    // A character or a range lo-hi; hi is a character too (`\p` there is an invalid escape).
    j = classChar(re, j);
    if (re[j] === "-" && j + 1 < n && re[j + 1] !== "]") j = classChar(re, j + 1);
  }
  return j + 1;
}

/** Go's parseClassChar: one character or escape at i; returns the index after it. */
function classChar(re: string, i: number): number {
  if (re[i] !== "\\") return i + runeWidth(re, i);
  const d = re[i + 1];
  if (d === "x") {
    if (re[i + 2] === "{") {
      const e = re.indexOf("}", i + 3);
      return e < 0 ? re.length : e + 1;
    }
    return i + 4;
  }
  if (d !== undefined && d >= "0" && d <= "7") {
    let k = i + 2;
    while (k < i + 4 && re[k] !== undefined && (re[k] as string) >= "0" && (re[k] as string) <= "7") k++;
    return k;
  }
  return i + 1 + Math.max(1, runeWidth(re, i + 1));
}

function classToken(re: string, at: number, inBrackets: boolean): ClassToken | null {
  const sign = re[at + 1] === "P" ? -1 : 1;
  if (re[at + 2] === "{") {
    const end = re.indexOf("}", at);
    if (end < 0) return null;
    return { start: at, end: end + 1, sign, name: re.slice(at + 3, end), inBrackets };
  }
  const cp = re.codePointAt(at + 2);
  if (cp === undefined) return null;
  const len = cp > 0xffff ? 2 : 1;
  return { start: at, end: at + 2 + len, sign, name: re.slice(at + 2, at + 2 + len), inBrackets };
}

// ---------------------------------------------------------------------------------------------
// Unicode class names (Go's regexp/syntax unicodeTable, per Go release)

// The names of the Go release Prometheus 3 is built with come from tools/gounicode
// (regex-classes-table.ts); Go 1.19's (Prometheus 2.42) are that release's minus what came since.
const GO_CATEGORIES_NEW = new Set(GO_CATEGORIES);
/** unicode.Categories keys in Go 1.19 (Unicode 13): Go 1.25 added Cn and LC. */
const GO_CATEGORIES_OLD = new Set(GO_CATEGORIES.filter((c) => c !== "Cn" && c !== "LC"));
const GO_SCRIPTS_NEW = new Set(GO_SCRIPTS);
/** Go 1.19 (Unicode 13.0) lacks the scripts of Unicode 14.0 and 15.0. */
const GO_SCRIPTS_OLD = new Set(
  GO_SCRIPTS.filter(
    (s) => !["Cypro_Minoan", "Old_Uyghur", "Tangsa", "Toto", "Vithkuqi", "Kawi", "Nag_Mundari"].includes(s),
  ),
);
/** unicode.CategoryAliases (Go 1.25+), keyed by canonical name. */
const GO_CATEGORY_ALIASES_CANONICAL = new Map(
  Object.entries(GO_CATEGORY_ALIASES).map(([alias, cat]) => [canonicalName(alias), cat]),
);

/**
 * Go 1.25's canonicalName: first letter upper case, the rest lower case (ASCII only), without
 * `_`, `-` and spaces. Note Go then looks the result up in maps keyed by the Unicode names, so
 * scripts with an underscore (`Old_Italic`) cannot be found in Go ≥ 1.25; we mirror that.
 */
function canonicalName(name: string): string {
  let out = "";
  let first = true;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c === 0x5f || c === 0x2d || c === 0x20) continue;
    if (first) {
      if (c >= 0x61 && c <= 0x7a) c -= 0x20;
      first = false;
    } else if (c >= 0x41 && c <= 0x5a) {
      c += 0x20;
    }
    out += String.fromCharCode(c);
  }
  return out;
}

/** The re2js table name for a Go class name, or null when that Go rejects the name. */
function resolveClassName(name: string, modernGo: boolean): string | null {
  if (!modernGo) {
    if (name === "Any" || GO_CATEGORIES_OLD.has(name) || GO_SCRIPTS_OLD.has(name)) return name;
    return null;
  }
  const canon = canonicalName(name);
  switch (canon) {
    case "Any":
    case "Assigned":
    case "Ascii":
      return canon; // re2js has these three special cases under these spellings
    case "Lc":
      return "LC";
  }
  if (GO_CATEGORIES_NEW.has(canon) || GO_SCRIPTS_NEW.has(canon)) return canon;
  return GO_CATEGORY_ALIASES_CANONICAL.get(canon) ?? null;
}

/** The text re2js should see for a \p token, or null when this Go rejects the name. */
function rewriteClass(t: ClassToken, flavor: Flavor): string | null {
  let sign = t.sign;
  let name = t.name;
  if (name.startsWith("^")) {
    sign = sign > 0 ? -1 : 1;
    name = name.slice(1);
  }
  const table = resolveClassName(name, flavor.modernGo);
  if (table === null) return null;
  const p = sign > 0 ? "p" : "P";
  if (!flavor.modernGo && table === "C") {
    // Go 1.19's C is Cc|Cf|Co|Cs; re2js's (like Go 1.25's) also holds the unassigned code points.
    const others = "\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}";
    if (t.inBrackets) return sign > 0 ? others : "\\P{C}\\p{Cn}";
    return sign > 0 ? `[${others}]` : `[^${others}]`;
  }
  if (table === "LC" && !t.inBrackets) {
    // Go has no fold table for LC, so (?i) does not widen it; re2js would add U+0345.
    return `(?-i:\\${p}{LC})`;
  }
  // Leave what re2js reads as Go does untouched (so errors quote the user's text).
  if (table === name) return `\\${t.sign > 0 ? "p" : "P"}${t.name.length === 1 ? t.name : `{${t.name}}`}`;
  return `\\${p}{${table}}`;
}

// ---------------------------------------------------------------------------------------------
// Matching

function wellFormed(s: string): string {
  return s.isWellFormed() ? s : s.toWellFormed();
}

/** Rune width (in UTF-16 units) at i, 0 at the end; as utf8.DecodeRuneInString's size. */
function runeWidth(s: string, i: number): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
}

abstract class BaseRegex implements PromRegex {
  readonly source: string;
  protected readonly names: readonly string[];

  constructor(source: string, names: readonly string[]) {
    this.source = source;
    this.names = names;
  }

  abstract matches(s: string): boolean;
  abstract match(s: string): RegexMatch | null;

  expand(template: string, m: RegexMatch): string {
    return expandGo(wellFormed(template), m.groups, this.names);
  }

  replaceAll(s: string, template: string): string {
    const src = wellFormed(s);
    const m = this.match(src);
    // Anchored: the only match is the whole string.
    return m === null ? src : this.expand(template, m);
  }
}

class EngineRegex extends BaseRegex {
  readonly #re2: Re2;
  readonly #ngroups: number;
  readonly #anchored: boolean;

  constructor(source: string, re2: Re2, ngroups: number, names: readonly string[], breakout: boolean) {
    super(source, names);
    this.#re2 = re2;
    this.#ngroups = ngroups;
    this.#anchored = !breakout;
  }

  matches(s: string): boolean {
    return this.#re2.match(wellFormed(s));
  }

  match(s: string): RegexMatch | null {
    const src = wellFormed(s);
    const idx = this.#at(src, 0);
    return idx === null ? null : { groups: texts(src, idx, this.#ngroups) };
  }

  override replaceAll(s: string, template: string): string {
    if (this.#anchored) return super.replaceAll(s, template);
    // Go's Regexp.replaceAll, for a regex whose text escaped Prometheus's anchors.
    const src = wellFormed(s);
    const tmpl = wellFormed(template);
    let out = "";
    let lastMatchEnd = 0;
    let searchPos = 0;
    while (searchPos <= src.length) {
      const a = this.#at(src, searchPos);
      if (a === null) break;
      const a0 = a[0] as number;
      const a1 = a[1] as number;
      out += src.slice(lastMatchEnd, a0);
      if (a1 > lastMatchEnd || a0 === 0) out += expandGo(tmpl, texts(src, a, this.#ngroups), this.names);
      lastMatchEnd = a1;
      const width = runeWidth(src, searchPos);
      if (searchPos + width > a1) searchPos += width;
      else if (searchPos + 1 > a1) searchPos++;
      else searchPos = a1;
    }
    return out + src.slice(lastMatchEnd);
  }

  #at(src: string, pos: number): number[] | null {
    if (pos === 0) return this.#re2.findSubmatchIndex(src) as number[] | null;
    const [ok, idx] = this.#re2.matchWithGroup(src, pos, src.length, UNANCHORED, this.#ngroups + 1) as [
      boolean,
      number[] | null,
    ];
    return ok && idx !== null ? idx : null;
  }
}

function texts(src: string, idx: readonly number[], ngroups: number): (string | undefined)[] {
  const groups = new Array<string | undefined>(ngroups + 1);
  for (let i = 0; i <= ngroups; i++) {
    const a = idx[2 * i];
    const b = idx[2 * i + 1];
    groups[i] = a === undefined || b === undefined || a < 0 ? undefined : src.slice(a, b);
  }
  return groups;
}

// ---------------------------------------------------------------------------------------------
// Fast paths: regexes whose Go meaning is plain string logic.

/** Characters that are literal in Go's syntax at the top level (everything but metacharacters). */
const LITERAL_RUN = /^[^\\.+*?()|[\]{}^$]*$/;
/** `P(.*)`, `P(.+)`, `P.*`, `P.+` with P literal. */
const DOT_TAIL = /^([^\\.+*?()|[\]{}^$]*)(?:\(\.([*+])\)|\.([*+]))$/;

function fastPath(source: string, flavor: Flavor): PromRegex | null {
  const dot = DOT_TAIL.exec(source);
  if (dot !== null) {
    const prefix = dot[1] as string;
    const capture = dot[2] !== undefined;
    const plus = (dot[2] ?? dot[3]) === "+";
    return new DotTailRegex(source, prefix, capture, plus, flavor.dotAll);
  }
  const alts = source.split("|");
  if (alts.every((a) => LITERAL_RUN.test(a))) return new LiteralRegex(source, alts);
  return null;
}

/** `^(?:a|b|…)$` with literal alternatives: matches exactly those strings; no groups. */
class LiteralRegex extends BaseRegex {
  readonly #alternatives: ReadonlySet<string>;

  constructor(source: string, alternatives: readonly string[]) {
    super(source, [""]);
    this.#alternatives = new Set(alternatives);
  }

  matches(s: string): boolean {
    return this.#alternatives.has(wellFormed(s));
  }

  match(s: string): RegexMatch | null {
    const src = wellFormed(s);
    return this.#alternatives.has(src) ? { groups: [src] } : null;
  }
}

/**
 * `^(?:P(.*))$` and friends: s must start with P, and the rest must be free of `\n` (unless
 * dot-all) and non-empty for `+`. The only way to match gives group 1 = the rest.
 */
class DotTailRegex extends BaseRegex {
  readonly #prefix: string;
  readonly #capture: boolean;
  readonly #plus: boolean;
  readonly #dotAll: boolean;

  constructor(source: string, prefix: string, capture: boolean, plus: boolean, dotAll: boolean) {
    super(source, capture ? ["", ""] : [""]);
    this.#prefix = prefix;
    this.#capture = capture;
    this.#plus = plus;
    this.#dotAll = dotAll;
  }

  #ok(src: string): boolean {
    const p = this.#prefix;
    if (p.length > 0 && !src.startsWith(p)) return false;
    if (this.#plus && src.length === p.length) return false;
    return this.#dotAll || src.indexOf("\n", p.length) < 0;
  }

  matches(s: string): boolean {
    return this.#ok(wellFormed(s));
  }

  match(s: string): RegexMatch | null {
    const src = wellFormed(s);
    if (!this.#ok(src)) return null;
    return { groups: this.#capture ? [src, src.slice(this.#prefix.length)] : [src] };
  }
}

// ---------------------------------------------------------------------------------------------
// Go's Regexp.expand

const NAME_RUNE = /^[\p{L}\p{Nd}_]$/u;

function isNameRune(cp: number): boolean {
  if (cp < 0x80) {
    return (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f;
  }
  return NAME_RUNE.test(String.fromCodePoint(cp));
}

function expandGo(template: string, groups: readonly (string | undefined)[], names: readonly string[]): string {
  let out = "";
  let i = 0;
  const n = template.length;
  for (;;) {
    const dollar = template.indexOf("$", i);
    if (dollar < 0) break;
    out += template.slice(i, dollar);
    i = dollar + 1;
    if (template.charCodeAt(i) === 0x24) {
      out += "$";
      i++;
      continue;
    }
    // extract(): a name of letters, digits and _, optionally in braces.
    let j = i;
    const brace = template.charCodeAt(j) === 0x7b;
    if (brace) j++;
    const nameStart = j;
    while (j < n) {
      const cp = template.codePointAt(j) as number;
      if (!isNameRune(cp)) break;
      j += cp > 0xffff ? 2 : 1;
    }
    if (j === nameStart || (brace && template.charCodeAt(j) !== 0x7d)) {
      out += "$"; // malformed: keep the $ as text
      continue;
    }
    const name = template.slice(nameStart, j);
    i = brace ? j + 1 : j;
    let num = 0;
    for (let k = 0; k < name.length; k++) {
      const c = name.charCodeAt(k);
      if (c < 0x30 || c > 0x39 || num >= 1e8) {
        num = -1;
        break;
      }
      num = num * 10 + (c - 0x30);
    }
    if (name.length > 1 && name.charCodeAt(0) === 0x30) num = -1;
    if (num >= 0) {
      const g = groups[num];
      if (g !== undefined) out += g;
    } else {
      for (let k = 0; k < names.length; k++) {
        if (names[k] === name && groups[k] !== undefined) {
          out += groups[k];
          break;
        }
      }
    }
  }
  return out + template.slice(i);
}
