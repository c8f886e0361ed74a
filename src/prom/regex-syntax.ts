/**
 * Go's regexp syntax as far as promshard must rewrite it for re2js: the scanner that finds
 * capture groups and \p classes the way Go's parser tokenizes, and the Unicode class names
 * each Go release accepts (regex.ts compiles; regex-match.ts matches).
 */
import { GO_CATEGORIES, GO_CATEGORY_ALIASES, GO_SCRIPTS } from "./regex-classes-table.ts";

/**
 * What differs between the Go releases that build the supported Prometheus versions.
 * `modernGo` is Go ≥ 1.25 (Prometheus 3.x as promshard models it: `(?<name>…)` groups, Go 1.22;
 * canonical `\p{…}` names, aliases, `Cn`/`LC`/`ASCII`/`Assigned`, Go 1.25); otherwise Go 1.19
 * (Prometheus 2.x: Debian's 2.42 is built with it).
 */
export interface Flavor {
  readonly dotAll: boolean;
  readonly modernGo: boolean;
}

/** A compile error, worded as Go's `*syntax.Error`: "error parsing regexp: CODE: `EXPR`". */
export class GoRegexpError extends Error {
  readonly reason: string;
  constructor(code: string, expr: string) {
    const reason = `${code}: \`${expr}\``;
    super(`error parsing regexp: ${reason}`);
    this.reason = reason;
  }
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

export function scanRegex(re: string, prefixLength: number): Scan {
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
export function rewriteClass(t: ClassToken, flavor: Flavor): string | null {
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

/** Rune width (in UTF-16 units) at i, 0 at the end; as utf8.DecodeRuneInString's size. */
export function runeWidth(s: string, i: number): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
}
