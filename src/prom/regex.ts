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
import { RE2JS, RE2JSSyntaxException } from "re2js";
import { PromshardError } from "../errors.ts";
import { jsSubset } from "./regex-js.ts";
import { EngineRegex, fastPath, JsRegex, type PromRegex } from "./regex-match.ts";
import { type Flavor, GoRegexpError, rewriteClass, scanRegex } from "./regex-syntax.ts";
import type { PromDialect } from "./version.ts";

export type { PromRegex, RegexMatch } from "./regex-match.ts";

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

// ---------------------------------------------------------------------------------------------
// Compilation

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
  const js = scan.breakout ? null : jsSubset(source, flavor);
  if (js !== null && js.captures === ngroups) return new JsRegex(source, js.regexp, groupNames);
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
