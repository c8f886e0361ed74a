/**
 * The state one exposition parse works on: the input received so far and the position in it,
 * the lexer state, the record being parsed and the counts; and the primitives every lexer and
 * parser uses (advance a byte as the golex scanners do, quoted strings, record offsets, value
 * checks, decoding, errors with line and column). The lexers (text-lexer.ts, om-lexer.ts),
 * parsers (text-parser.ts, om-parser.ts) and series checks (series-checks.ts) are functions
 * over this state; its fields are theirs to read and write, nobody else's.
 */
import { PromshardError } from "../../errors.ts";
import type { Labels } from "../labels.ts";
import { checkPromFloat, FLOAT_NONFINITE, FLOAT_OK, FLOAT_RANGE, FLOAT_UNSUPPORTED } from "./gofloat.ts";
import * as tokens from "./tokens.ts";
import { validUtf8 } from "./utf8.ts";

// Module-local copies of the shared constants, for speed (see tokens.ts).
const {
  S_INIT,
  S_COMMENT,
  S_META2,
  S_LVALUE,
  T_INVALID,
  T_EOF,
  T_WS,
  TOKEN_NAMES,
  M_UNKNOWN,
  M_COUNTER,
  M_GAUGE,
  M_HISTOGRAM,
  M_SUMMARY,
  M_GAUGEHISTOGRAM,
  M_INFO,
  M_STATESET,
  NL,
  TAB,
  SP,
  DQ,
  BSLASH,
  NEED_MORE,
} = tokens;

export interface ParserConfig {
  openMetrics: boolean;
  /** Prometheus 3.x syntax (quoted UTF-8 names, OpenMetrics leniencies). */
  v3: boolean;
  /** Name validation after relabeling: UTF-8 (3.x default) or legacy charset. */
  utf8Names: boolean;
  /** 3.x with created-timestamp-zero-ingestion or st-storage: OM `_created` lines are not samples. */
  skipCreatedSeries: boolean;
  metricRelabel: ((labels: Labels) => Labels | null) | undefined;
  maxLineBytes: number;
  source: string | undefined;
}

const INTERN_SIZE = 4096;
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

export class Scanner {
  // Lexer.
  b: Uint8Array = new Uint8Array(0);
  end = 0;
  final = false;
  i = 0;
  start = 0;
  state = S_INIT;
  // Record checkpoint: where to resume when a record is incomplete.
  ckI = 0;
  ckState = S_INIT;
  // Current record.
  recStart = 0;
  nameS = -1;
  nameE = -1;
  nameQuoted = false;
  offs = new Int32Array(64);
  nOff = 0;
  anyQuotedLabel = false;
  /** Set by scanQuoted when a quoted token had a byte >= 0x80 (only then is UTF-8 checked). */
  nonAscii = false;
  readonly intern: (string | undefined)[] = new Array(INTERN_SIZE);
  mtype = M_UNKNOWN;
  done = false;

  // Counts.
  samples = 0;
  series = 0;

  // Where b[0] sits in the whole input, for line numbers.
  baseLine = 1;
  baseCol = 1;

  readonly om: boolean;
  readonly v3: boolean;
  readonly cfg: ParserConfig;

  constructor(cfg: ParserConfig) {
    this.cfg = cfg;
    this.om = cfg.openMetrics;
    this.v3 = cfg.v3;
  }

  /** Bytes b[0:n] are dropped by the caller; keep line numbers right. */
  discard(b: Uint8Array, n: number): void {
    let k = b.indexOf(NL);
    let last = -1;
    while (k !== -1 && k < n) {
      this.baseLine++;
      last = k;
      k = b.indexOf(NL, k + 1);
    }
    if (last === -1) this.baseCol += columnWidth(b, 0, n);
    else this.baseCol = 1 + columnWidth(b, last + 1, n);
  }

  atEnd(): number {
    if (!this.final) throw NEED_MORE;
    this.i = this.end;
    return 0;
  }

  /** The scanners' `next()`: advance, and skip NULs inside label values, HELP text and comments. */
  next(): number {
    const i = ++this.i;
    if (i >= this.end) return this.atEnd();
    const c = this.b[i]!;
    if (c !== 0) return c;
    const st = this.state;
    if (st !== S_LVALUE && st !== S_META2 && st !== S_COMMENT) return 0;
    return this.skipNuls();
  }

  skipNuls(): number {
    const b = this.b;
    let i = this.i;
    while (b[i] === 0) {
      i++;
      if (i >= this.end) {
        this.i = i;
        return this.atEnd();
      }
    }
    this.i = i;
    return b[i]!;
  }

  ws(): number {
    let c: number;
    do c = this.next();
    while (c === TAB || c === SP);
    return T_WS;
  }

  /** `{"name", …}`: a lone quoted string (quotes at s and e-1) is the metric name, given once. */
  setQuotedName(s: number, e: number): void {
    if (this.nameS !== -1) this.fail("metric name already set", s);
    this.nameS = s + 1;
    this.nameE = e - 1;
    this.nameQuoted = true;
  }

  /** A literal rule's remaining bytes: each is consumed while it matches (no backtracking). */
  word(w: string): boolean {
    for (let k = 0; k < w.length; k++) if (this.next() !== w.charCodeAt(k)) return false;
    return true;
  }

  /**
   * `"(\\.|[^\\"])*"`: on success the closing quote and one lookahead are consumed. `noNL`
   * for the OpenMetrics label/exemplar values, which exclude raw newlines.
   */
  scanQuoted(noNL: boolean): boolean {
    const b = this.b;
    const end = this.end;
    let i = this.i + 1;
    for (;;) {
      while (i < end) {
        const c = b[i]!;
        if (c === DQ || c === BSLASH || c <= NL || c >= 0x80) break;
        i++;
      }
      this.i = i - 1;
      let c = this.next();
      if (c >= 0x80) {
        this.nonAscii = true;
        i = this.i + 1;
        continue;
      }
      if (c === DQ) {
        this.next();
        return true;
      }
      if (c === BSLASH) {
        c = this.next();
        if (c === 0 || c === NL) return false;
        if (c >= 0x80) this.nonAscii = true;
      } else if (c === 0 || (noNL && c === NL)) {
        return false;
      }
      i = this.i + 1;
    }
  }

  /** A new record starts here: the checkpoint to resume from, and nothing of it read yet. */
  beginRecord(): void {
    this.ckI = this.i;
    this.ckState = this.state;
    this.recStart = this.i;
    this.nameS = -1;
    this.nameE = -1;
    this.nameQuoted = false;
    this.nOff = 0;
    this.anyQuotedLabel = false;
  }

  pushOff(a: number, b: number): void {
    if (this.nOff + 2 > this.offs.length) {
      const n = new Int32Array(this.offs.length * 2);
      n.set(this.offs);
      this.offs = n;
    }
    this.offs[this.nOff++] = a;
    this.offs[this.nOff++] = b;
  }

  labelValue(): void {
    const s = this.start;
    const e = this.i;
    if (this.nonAscii && !validUtf8(this.b, s, e)) this.fail("label value is not valid UTF-8", s);
    this.pushOff(s + 1, e - 1);
  }

  checkValue(s: number, e: number, at: number): number {
    const r = checkPromFloat(this.b, s, e);
    if (r === FLOAT_OK || r === FLOAT_NONFINITE) return r;
    const v = this.latin1(s, e);
    if (r === FLOAT_UNSUPPORTED) this.fail(`unsupported character in float ${JSON.stringify(v)}`, at);
    if (r === FLOAT_RANGE) this.fail(`value ${JSON.stringify(v)} is out of float64 range`, at);
    return this.fail(`invalid float ${JSON.stringify(v)}`, at);
  }

  typeOf(s: number, e: number, om: boolean): number {
    const t = this.latin1(s, e);
    switch (t) {
      case "counter":
        return M_COUNTER;
      case "gauge":
        return M_GAUGE;
      case "histogram":
        return M_HISTOGRAM;
      case "summary":
        return M_SUMMARY;
      case "untyped":
        if (!om) return M_UNKNOWN;
        break;
      case "unknown":
        if (om) return M_UNKNOWN;
        break;
      case "gaugehistogram":
        if (om) return M_GAUGEHISTOGRAM;
        break;
      case "info":
        if (om) return M_INFO;
        break;
      case "stateset":
        if (om) return M_STATESET;
        break;
    }
    return this.fail(`invalid metric type ${JSON.stringify(this.decode(s, e))}`, s);
  }

  latin1(s: number, e: number): string {
    let out = "";
    for (let k = s; k < e && k - s < 200; k++) out += String.fromCharCode(this.b[k]!);
    return out;
  }

  /** UTF-8 decode; short ASCII strings come from a small cache (names and values repeat a lot). */
  decode(s: number, e: number): string {
    const b = this.b;
    const n = e - s;
    if (n > 48) return utf8Decoder.decode(b.subarray(s, e));
    let h = n;
    for (let k = s; k < e; k++) {
      const c = b[k]!;
      if (c >= 0x80) return utf8Decoder.decode(b.subarray(s, e));
      h = Math.imul(h ^ c, 0x01000193);
    }
    const slot = (h ^ (h >>> 15)) & (INTERN_SIZE - 1);
    const hit = this.intern[slot];
    if (hit !== undefined && hit.length === n) {
      let same = true;
      for (let k = 0; k < n; k++) {
        if (hit.charCodeAt(k) !== b[s + k]) {
          same = false;
          break;
        }
      }
      if (same) return hit;
    }
    const str = n === 0 ? "" : String.fromCharCode.apply(null, b.subarray(s, e) as unknown as number[]);
    this.intern[slot] = str;
    return str;
  }

  tooLong(at: number): never {
    return this.fail(`entry longer than ${this.cfg.maxLineBytes} bytes (maxLineBytes)`, at);
  }

  failTok(expected: string, t: number): never {
    const s = Math.min(this.start, this.end);
    const e = Math.min(Math.max(this.i, s), this.end);
    let got: string;
    if (t === T_EOF || s >= this.end) got = "end of input";
    else if (e === s) got = JSON.stringify(String.fromCharCode(this.b[s]!));
    else got = JSON.stringify(this.decode(s, Math.min(e, s + 40)));
    const kind = t === T_INVALID ? "" : ` (${TOKEN_NAMES[t] ?? "?"})`;
    return this.fail(`${expected}, got ${got}${kind}`, s);
  }

  /** Throws exposition_invalid with the line and column (in characters) of b[at]. */
  fail(message: string, at: number): never {
    const b = this.b;
    const pos = Math.max(0, Math.min(at, this.end));
    let line = this.baseLine;
    let lineStart = 0;
    let k = b.indexOf(NL);
    while (k !== -1 && k < pos) {
      line++;
      lineStart = k + 1;
      k = b.indexOf(NL, k + 1);
    }
    const col = (line === this.baseLine ? this.baseCol : 1) + columnWidth(b, lineStart, pos);
    throw new PromshardError(
      "exposition_invalid",
      `line ${line}, column ${col}: ${message} (${this.om ? "OpenMetrics" : "text format"})`,
      this.cfg.source === undefined ? undefined : { path: this.cfg.source },
    );
  }
}

function columnWidth(b: Uint8Array, s: number, e: number): number {
  let n = 0;
  for (let k = s; k < e; k++) if ((b[k]! & 0xc0) !== 0x80) n++;
  return n;
}
