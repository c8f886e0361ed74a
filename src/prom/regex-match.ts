/**
 * Matching with Go's semantics: the PromRegex implementations (re2js-backed, and fast paths for
 * regexes whose Go meaning is plain string logic) and Go's Regexp.Expand for replacements.
 */
import { type RE2JS, RE2Set } from "re2js";
import { type Flavor, runeWidth } from "./regex-syntax.ts";

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

/** An RE2 program as re2js exposes it through `RE2JS.prototype.re2()`. */
type Re2 = ReturnType<RE2JS["re2"]>;
const UNANCHORED: number = RE2Set.UNANCHORED;

// ---------------------------------------------------------------------------------------------
// Matching

function wellFormed(s: string): string {
  return s.isWellFormed() ? s : s.toWellFormed();
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

  /** Templates come from the config (a rule's target_label and replacement): a handful per regex. */
  #templates = new Map<string, Template>();

  expand(template: string, m: RegexMatch): string {
    return expandTemplate(this.template(template), m.groups);
  }

  protected template(template: string): Template {
    let t = this.#templates.get(template);
    if (t === undefined) {
      if (this.#templates.size >= 8) this.#templates.clear();
      t = compileTemplate(wellFormed(template), this.names);
      this.#templates.set(template, t);
    }
    return t;
  }

  replaceAll(s: string, template: string): string {
    const src = wellFormed(s);
    const m = this.match(src);
    // Anchored: the only match is the whole string.
    return m === null ? src : this.expand(template, m);
  }
}

export class EngineRegex extends BaseRegex {
  readonly #re2: Re2;
  readonly #ngroups: number;
  readonly #anchored: boolean;

  constructor(source: string, re2: Re2, ngroups: number, names: readonly string[], breakout: boolean) {
    super(source, names);
    this.#re2 = re2;
    this.#ngroups = ngroups;
    this.#anchored = !breakout;
  }

  /** An absent label reads as "": asked of most rules for most targets, answered once. */
  #empty: RegexMatch | null | undefined;

  matches(s: string): boolean {
    if (s === "") return this.#matchEmpty() !== null;
    return this.#re2.match(wellFormed(s));
  }

  match(s: string): RegexMatch | null {
    if (s === "") return this.#matchEmpty();
    const src = wellFormed(s);
    const idx = this.#at(src, 0);
    return idx === null ? null : { groups: texts(src, idx, this.#ngroups) };
  }

  #matchEmpty(): RegexMatch | null {
    if (this.#empty === undefined) {
      const idx = this.#at("", 0);
      this.#empty = idx === null ? null : Object.freeze({ groups: Object.freeze(texts("", idx, this.#ngroups)) });
    }
    return this.#empty;
  }

  override replaceAll(s: string, template: string): string {
    if (this.#anchored) return super.replaceAll(s, template);
    // Go's Regexp.replaceAll, for a regex whose text escaped Prometheus's anchors.
    const src = wellFormed(s);
    const tmpl = this.template(template);
    let out = "";
    let lastMatchEnd = 0;
    let searchPos = 0;
    while (searchPos <= src.length) {
      const a = this.#at(src, searchPos);
      if (a === null) break;
      const a0 = a[0] as number;
      const a1 = a[1] as number;
      out += src.slice(lastMatchEnd, a0);
      if (a1 > lastMatchEnd || a0 === 0) out += expandTemplate(tmpl, texts(src, a, this.#ngroups));
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

/** A regex V8 runs with Go's meaning (regex-js.ts says when that holds). */
export class JsRegex extends BaseRegex {
  readonly #re: RegExp;

  constructor(source: string, re: RegExp, names: readonly string[]) {
    super(source, names);
    this.#re = re;
  }

  matches(s: string): boolean {
    return this.#re.test(wellFormed(s));
  }

  match(s: string): RegexMatch | null {
    const m = this.#re.exec(wellFormed(s));
    return m === null ? null : { groups: m.slice() };
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

export function fastPath(source: string, flavor: Flavor): PromRegex | null {
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

  /** Whether some alternative has U+FFFD, the only character an ill-formed input can turn into. */
  readonly #replacementChar: boolean;

  constructor(source: string, alternatives: readonly string[]) {
    super(source, [""]);
    this.#alternatives = new Set(alternatives);
    this.#replacementChar = alternatives.some((a) => a.includes("\uFFFD"));
  }

  matches(s: string): boolean {
    if (!this.#replacementChar) return this.#alternatives.has(s) && s.isWellFormed();
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

  /** Without U+FFFD in the prefix, a raw string that lacks it cannot gain it by being made well-formed. */
  readonly #rawReject: boolean;

  constructor(source: string, prefix: string, capture: boolean, plus: boolean, dotAll: boolean) {
    super(source, capture ? ["", ""] : [""]);
    this.#prefix = prefix;
    this.#capture = capture;
    this.#plus = plus;
    this.#dotAll = dotAll;
    this.#rawReject = prefix.length > 0 && !prefix.includes("\uFFFD");
  }

  #ok(src: string): boolean {
    return hasPrefix(src, this.#prefix) && this.#tailOk(src);
  }

  #tailOk(src: string): boolean {
    const n = this.#prefix.length;
    if (this.#plus && src.length === n) return false;
    return this.#dotAll || src.indexOf("\n", n) < 0;
  }

  /** The well-formed input when it matches, else null; a well-formed input is compared once. */
  #source(s: string): string | null {
    if (this.#rawReject) {
      if (!hasPrefix(s, this.#prefix)) return null;
      if (s.isWellFormed()) return this.#tailOk(s) ? s : null;
    }
    const src = wellFormed(s);
    return this.#ok(src) ? src : null;
  }

  matches(s: string): boolean {
    return this.#source(s) !== null;
  }

  match(s: string): RegexMatch | null {
    const src = this.#source(s);
    if (src === null) return null;
    return { groups: this.#capture ? [src, src.slice(this.#prefix.length)] : [src] };
  }
}

/**
 * startsWith, from the prefix's end: label names share long beginnings (`__meta_kubernetes_pod_`),
 * so most misses show at once, and V8's builtin startsWith costs more than this loop.
 */
function hasPrefix(s: string, p: string): boolean {
  if (s.length < p.length) return false;
  for (let i = p.length - 1; i >= 0; i--) if (s.charCodeAt(i) !== p.charCodeAt(i)) return false;
  return true;
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

/**
 * A template cut at its `$` references: literal text, a group's index, or for a name the indices
 * of the groups so named (Go allows repeats; the first that took part is used).
 */
type Template = readonly (string | number | readonly number[])[];

/** Go's Regexp.expand, with the parsing done once per template. */
function compileTemplate(template: string, names: readonly string[]): Template {
  const parts: (string | number | readonly number[])[] = [];
  let text = "";
  let i = 0;
  const n = template.length;
  for (;;) {
    const dollar = template.indexOf("$", i);
    if (dollar < 0) break;
    text += template.slice(i, dollar);
    i = dollar + 1;
    if (template.charCodeAt(i) === 0x24) {
      text += "$";
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
      text += "$"; // malformed: keep the $ as text
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
    if (text !== "") parts.push(text);
    text = "";
    if (num >= 0) parts.push(num);
    else parts.push(names.flatMap((n, k) => (n === name ? [k] : [])));
  }
  text += template.slice(i);
  if (text !== "") parts.push(text);
  return parts;
}

function expandTemplate(t: Template, groups: readonly (string | undefined)[]): string {
  let out = "";
  for (const p of t) {
    if (typeof p === "string") out += p;
    else if (typeof p === "number") out += groups[p] ?? "";
    else {
      for (const k of p) {
        const g = groups[k];
        if (g !== undefined) {
          out += g;
          break;
        }
      }
    }
  }
  return out;
}
