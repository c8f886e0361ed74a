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
