/**
 * Relabel regexes that V8's own engine may run with Go's meaning. re2js interprets an RE2
 * program per character; V8 compiles a regex to machine code and is about ten times faster on
 * the address rules every kubernetes-pods job carries (`(\d+);((([0-9]+?)(\.|$)){4})`). But V8
 * backtracks, so it is used only where backtracking cannot cost more than a linear pass and
 * cannot choose differently from Go:
 *
 * - The syntax is a subset whose JavaScript reading is Go's: literals, `.`, bracket classes of
 *   literals and ranges, `\d \D \w \W \s \S`, groups, alternation, the repetition operators,
 *   `$`. Classes are emitted as explicit code point ranges (`\s`, `.`, negation as Go reads
 *   them); anything else (flags, `\p`, `\b`, `^`, …) is left to re2js.
 * - The regex is deterministic: at every choice (a branch of `|`, another round of a repetition
 *   or what follows it) the next character, or the end of the text, picks at most one way. Then
 *   a wrong way fails at its first character, so a backtracker does O(regex) work per input
 *   character, and the string has at most one way to match, which both engines report.
 * - A repeated group never matches empty (JavaScript and Go end empty rounds differently), and
 *   a capture inside a repeated group is set on every round (JavaScript clears it at the start
 *   of each round, Go keeps the previous round's).
 *
 * test/prom/regex.test.ts runs these regexes against Go's regexp itself.
 */
import type { Flavor } from "./regex-syntax.ts";

/** Code point ranges [lo, hi], sorted, disjoint, not adjacent. */
type Ranges = readonly (readonly [number, number])[];

type Node =
  | { readonly k: "set"; readonly ranges: Ranges }
  | { readonly k: "end" }
  | { readonly k: "cat"; readonly subs: readonly Node[] }
  | { readonly k: "alt"; readonly subs: readonly Node[] }
  | { readonly k: "group"; readonly capture: boolean; readonly sub: Node }
  | {
      readonly k: "rep";
      readonly min: number;
      /** -1: no bound */
      readonly max: number;
      readonly lazy: boolean;
      readonly sub: Node;
    };

export interface JsSubset {
  /** `^(?:…)$` with flag u. */
  readonly regexp: RegExp;
  readonly captures: number;
}

/** The V8 regex with the same meaning as Prometheus's anchored `source`, or null. */
export function jsSubset(source: string, flavor: Flavor): JsSubset | null {
  let tree: Node;
  let captures: number;
  try {
    const p = new Parser(source, flavor);
    tree = p.parse();
    captures = p.captures;
  } catch (e) {
    if (e instanceof NotInSubset) return null;
    throw e;
  }
  if (!repeatsSafe(tree, [])) return null;
  if (!deterministic(tree, END_ONLY)) return null;
  return { regexp: new RegExp(`^(?:${emit(tree)})$`, "u"), captures };
}

class NotInSubset extends Error {}

// ---------------------------------------------------------------------------------------------
// Parsing (the input is a regex Go has accepted; anything unusual leaves the subset)

const MAX_RUNE = 0x10ffff;
const DIGIT: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** Go's `\s`: `[\t\n\f\r ]` (JavaScript's is Unicode's white space). */
const SPACE: Ranges = [
  [0x09, 0x0a],
  [0x0c, 0x0d],
  [0x20, 0x20],
];
const SIMPLE_ESCAPES: Record<string, number> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 };
const REPEAT = /^\{(\d+)(?:(,)(\d*))?\}/;

class Parser {
  #at = 0;
  captures = 0;
  readonly #s: string;
  readonly #flavor: Flavor;

  constructor(s: string, flavor: Flavor) {
    this.#s = s;
    this.#flavor = flavor;
  }

  parse(): Node {
    const n = this.#alternation();
    if (this.#at < this.#s.length) throw new NotInSubset(); // a `)` closing Prometheus's group
    return n;
  }

  #alternation(): Node {
    const subs = [this.#concatenation()];
    while (this.#s[this.#at] === "|") {
      this.#at++;
      subs.push(this.#concatenation());
    }
    return subs.length === 1 ? (subs[0] as Node) : { k: "alt", subs };
  }

  #concatenation(): Node {
    const subs: Node[] = [];
    for (;;) {
      const c = this.#s[this.#at];
      if (c === undefined || c === "|" || c === ")") break;
      subs.push(this.#repetition(this.#atom()));
    }
    return subs.length === 1 ? (subs[0] as Node) : { k: "cat", subs };
  }

  #repetition(atom: Node): Node {
    const c = this.#s[this.#at];
    let min: number;
    let max: number;
    if (c === "*" || c === "+" || c === "?") {
      this.#at++;
      [min, max] = c === "*" ? [0, -1] : c === "+" ? [1, -1] : [0, 1];
    } else if (c === "{") {
      const m = REPEAT.exec(this.#s.slice(this.#at));
      if (m === null) return atom; // a literal {, read by #atom next
      const [all, lo, comma, hi] = m as unknown as [string, string, string | undefined, string | undefined];
      if (/^0\d/.test(lo) || (hi !== undefined && /^0\d/.test(hi))) throw new NotInSubset();
      this.#at += all.length;
      min = Number(lo);
      max = comma === undefined ? min : hi === "" ? -1 : Number(hi);
    } else {
      return atom;
    }
    const lazy = this.#s[this.#at] === "?";
    if (lazy) this.#at++;
    const next = this.#s[this.#at];
    if (next === "*" || next === "+" || next === "?" || (next === "{" && REPEAT.test(this.#s.slice(this.#at)))) {
      throw new NotInSubset();
    }
    return { k: "rep", min, max, lazy, sub: atom };
  }

  #atom(): Node {
    const s = this.#s;
    const c = s[this.#at] as string;
    switch (c) {
      case "(":
        return this.#group();
      case "[":
        return { k: "set", ranges: this.#class() };
      case ".":
        this.#at++;
        return { k: "set", ranges: this.#flavor.dotAll ? [[0, MAX_RUNE]] : negate([[10, 10]]) };
      case "$":
        this.#at++;
        return { k: "end" };
      case "\\":
        return { k: "set", ranges: this.#escape() };
      case "^":
      case "*":
      case "+":
      case "?":
        throw new NotInSubset();
      default: {
        const cp = s.codePointAt(this.#at) as number;
        this.#at += cp > 0xffff ? 2 : 1;
        return { k: "set", ranges: [[cp, cp]] };
      }
    }
  }

  #group(): Node {
    const s = this.#s;
    this.#at++; // (
    let capture = true;
    if (s[this.#at] === "?") {
      const named = /^\?P?<[A-Za-z0-9_]+>/.exec(s.slice(this.#at));
      if (s.startsWith("?:", this.#at)) {
        capture = false;
        this.#at += 2;
      } else if (named !== null && (named[0][1] === "P" || this.#flavor.modernGo)) {
        this.#at += named[0].length;
      } else {
        throw new NotInSubset(); // flags
      }
    }
    if (capture) this.captures++;
    const sub = this.#alternation();
    if (s[this.#at] !== ")") throw new NotInSubset();
    this.#at++;
    return { k: "group", capture, sub };
  }

  /** A bracket class as Go reads it with Prometheus's flags (negation includes `\n`). */
  #class(): Ranges {
    const s = this.#s;
    this.#at++; // [
    const neg = s[this.#at] === "^";
    if (neg) this.#at++;
    const items: [number, number][] = [];
    let first = true;
    for (;;) {
      const c = s[this.#at];
      if (c === undefined) throw new NotInSubset();
      if (c === "]" && !first) break;
      first = false;
      if (c === "[" && s[this.#at + 1] === ":") throw new NotInSubset();
      if (c === "\\" && /^\\[dDwWsS]/.test(s.slice(this.#at))) {
        for (const [lo, hi] of this.#escape()) items.push([lo, hi]);
        continue;
      }
      const lo = this.#classChar();
      if (s[this.#at] === "-" && s[this.#at + 1] !== "]" && s[this.#at + 1] !== undefined) {
        this.#at++;
        const hi = this.#classChar();
        if (hi < lo) throw new NotInSubset();
        items.push([lo, hi]);
      } else {
        items.push([lo, lo]);
      }
    }
    this.#at++; // ]
    const ranges = normalize(items);
    return neg ? negate(ranges) : ranges;
  }

  #classChar(): number {
    const s = this.#s;
    if (s[this.#at] === "\\") {
      const r = this.#escape();
      const only = r[0];
      if (r.length !== 1 || only === undefined || only[0] !== only[1]) throw new NotInSubset();
      return only[0];
    }
    if (s[this.#at] === "[") throw new NotInSubset();
    const cp = s.codePointAt(this.#at) as number;
    this.#at += cp > 0xffff ? 2 : 1;
    return cp;
  }

  #escape(): Ranges {
    const c = this.#s[this.#at + 1];
    if (c === undefined) throw new NotInSubset();
    this.#at += 2;
    switch (c) {
      case "d":
        return DIGIT;
      case "D":
        return negate(DIGIT);
      case "w":
        return WORD;
      case "W":
        return negate(WORD);
      case "s":
        return SPACE;
      case "S":
        return negate(SPACE);
    }
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) return [[simple, simple]];
    // Go: a backslash before an ASCII character that is not a letter or digit is that character.
    const cp = c.charCodeAt(0);
    if (cp < 0x80 && !/[A-Za-z0-9]/.test(c)) return [[cp, cp]];
    throw new NotInSubset();
  }
}

function normalize(items: [number, number][]): Ranges {
  items.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of items) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function negate(r: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of r) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_RUNE) out.push([next, MAX_RUNE]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The checks

/** What may come next: characters, and (`end`) the end of the text. */
interface Next {
  readonly ranges: Ranges;
  readonly end: boolean;
}

const END_ONLY: Next = { ranges: [], end: true };
const NOTHING: Next = { ranges: [], end: false };

function union(a: Next, b: Next): Next {
  if (b.ranges.length === 0 && !b.end) return a;
  if (a.ranges.length === 0 && !a.end) return b;
  return { ranges: normalize([...a.ranges, ...b.ranges].map(([lo, hi]) => [lo, hi])), end: a.end || b.end };
}

function disjoint(a: Next, b: Next): boolean {
  if (a.end && b.end) return false;
  let i = 0;
  let j = 0;
  while (i < a.ranges.length && j < b.ranges.length) {
    const x = a.ranges[i] as readonly [number, number];
    const y = b.ranges[j] as readonly [number, number];
    if (x[1] < y[0]) i++;
    else if (y[1] < x[0]) j++;
    else return false;
  }
  return true;
}

/**
 * Whether n can match taking no character. `$` takes one (the end) when the choices are
 * checked, and none when a repeated group is (at the end, `($)*` would repeat empty rounds).
 */
function empty(n: Node, endIsEmpty: boolean): boolean {
  switch (n.k) {
    case "set":
      return false;
    case "end":
      return endIsEmpty;
    case "cat":
      return n.subs.every((s) => empty(s, endIsEmpty));
    case "alt":
      return n.subs.some((s) => empty(s, endIsEmpty));
    case "group":
      return empty(n.sub, endIsEmpty);
    case "rep":
      return n.min === 0 || empty(n.sub, endIsEmpty);
  }
}

const nullable = (n: Node) => empty(n, false);

function first(n: Node): Next {
  switch (n.k) {
    case "set":
      return { ranges: n.ranges, end: false };
    case "end":
      return END_ONLY;
    case "cat": {
      let acc = NOTHING;
      for (const s of n.subs) {
        acc = union(acc, first(s));
        if (!nullable(s)) break;
      }
      return acc;
    }
    case "alt":
      return n.subs.reduce((acc, s) => union(acc, first(s)), NOTHING);
    case "group":
    case "rep":
      return first(n.sub);
  }
}

/** Every choice in n is made by the next character or the end, given what follows n. */
function deterministic(n: Node, follow: Next): boolean {
  switch (n.k) {
    case "set":
    case "end":
      return true;
    case "group":
      return deterministic(n.sub, follow);
    case "cat": {
      let after = follow;
      for (let i = n.subs.length - 1; i >= 0; i--) {
        const s = n.subs[i] as Node;
        if (!deterministic(s, after)) return false;
        after = nullable(s) ? union(first(s), after) : first(s);
      }
      return true;
    }
    case "alt": {
      const ways: Next[] = [];
      for (const s of n.subs) {
        if (!deterministic(s, follow)) return false;
        const way = nullable(s) ? union(first(s), follow) : first(s);
        if (ways.some((w) => !disjoint(w, way))) return false;
        ways.push(way);
      }
      return true;
    }
    case "rep": {
      const again = n.max === -1 || n.max > 1;
      const body = first(n.sub);
      if (n.max !== n.min && !disjoint(body, follow)) return false;
      return deterministic(n.sub, again ? union(body, follow) : follow);
    }
  }
}

/**
 * No repeated group can match empty, and a capture inside a repetition that may run more than
 * once is set on every round of it (no `|` or optional part between them).
 */
function repeatsSafe(n: Node, optionalSince: boolean[]): boolean {
  switch (n.k) {
    case "set":
    case "end":
      return true;
    case "cat":
      return n.subs.every((s) => repeatsSafe(s, optionalSince));
    case "alt": {
      const inside = optionalSince.map(() => true);
      return n.subs.every((s) => repeatsSafe(s, inside));
    }
    case "group":
      if (n.capture && optionalSince.some((optional) => optional)) return false;
      return repeatsSafe(n.sub, optionalSince);
    case "rep": {
      if (n.max === 0 || empty(n.sub, true)) return false;
      const marks = n.min === 0 ? optionalSince.map(() => true) : optionalSince;
      // A new repetition that runs more than once starts its own record of optional parts.
      return repeatsSafe(n.sub, n.max === 1 ? marks : [...marks, false]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Emitting

function emit(n: Node): string {
  switch (n.k) {
    case "set":
      return emitSet(n.ranges);
    case "end":
      return "$";
    case "cat":
      return n.subs.map((s) => (s.k === "alt" ? `(?:${emit(s)})` : emit(s))).join("");
    case "alt":
      return n.subs.map(emit).join("|");
    case "group":
      return `${n.capture ? "(" : "(?:"}${emit(n.sub)})`;
    case "rep": {
      const op =
        n.max === -1
          ? n.min === 0
            ? "*"
            : n.min === 1
              ? "+"
              : `{${n.min},}`
          : n.min === n.max
            ? `{${n.min}}`
            : `{${n.min},${n.max}}`;
      const body = n.sub.k === "set" || n.sub.k === "group" ? emit(n.sub) : `(?:${emit(n.sub)})`;
      return `${body}${op}${n.lazy ? "?" : ""}`;
    }
  }
}

function emitSet(r: Ranges): string {
  let out = "[";
  for (const [lo, hi] of r) out += lo === hi ? cp(lo) : `${cp(lo)}-${cp(hi)}`;
  return `${out}]`;
}

function cp(c: number): string {
  return `\\u{${c.toString(16)}}`;
}
