/**
 * A byte-level re-implementation of the Prometheus text (0.0.4) and OpenMetrics 1.0 parsers
 * (model/textparse in Prometheus 2.42 and 3.16), reproducing what they accept and reject,
 * token for token, including the quirks of their golex scanners: no backtracking after a
 * partial match, NUL bytes skipped inside label values / HELP text / comments, a NUL at the
 * start of a text line ending the scrape, and so on. It counts samples the way the scrape
 * loop does (scrape/scrape.go `append`): every series line is one sample of
 * `scrape_samples_scraped`; those left after metric relabeling are
 * `scrape_samples_post_metric_relabeling` (duplicates included).
 *
 * Input arrives in chunks. A record (one entry, usually one line; label values may span lines
 * in the text format) is parsed from its first byte; when the data ends inside it, the parser
 * rewinds to the record's start and waits for more, so chunks may split anything.
 */
import { PromshardError } from "../../errors.ts";
import type { Labels } from "../labels.ts";
import {
  checkPromFloat,
  FLOAT_NONFINITE,
  FLOAT_OK,
  FLOAT_RANGE,
  FLOAT_UNSUPPORTED,
  formatOpenMetricsFloat,
  goParseFloat,
  int64Overflows,
} from "./gofloat.ts";
import { validUtf8 } from "./utf8.ts";

// Lexer start conditions (the %x states of promlex.l / openmetricslex.l).
const S_INIT = 0;
const S_COMMENT = 1;
const S_META1 = 2;
const S_META2 = 3;
const S_LABELS = 4;
const S_LVALUE = 5;
const S_VALUE = 6;
const S_TIMESTAMP = 7;
const S_EXEMPLAR = 8;
const S_EVALUE = 9;
const S_ETIMESTAMP = 10;

// Tokens.
const T_INVALID = -1;
const T_EOF = 0;
const T_LINEBREAK = 1;
const T_WS = 2;
const T_HELP = 3;
const T_TYPE = 4;
const T_UNIT = 5;
const T_EOFWORD = 6;
const T_TEXT = 7;
const T_COMMENT = 8;
const T_MNAME = 9;
const T_QSTRING = 10;
const T_BOPEN = 11;
const T_BCLOSE = 12;
const T_LNAME = 13;
const T_LVALUE = 14;
const T_COMMA = 15;
const T_EQUAL = 16;
const T_TIMESTAMP = 17;
const T_VALUE = 18;

const TOKEN_NAMES = [
  "EOF",
  "LINEBREAK",
  "WHITESPACE",
  "HELP",
  "TYPE",
  "UNIT",
  "EOFWORD",
  "TEXT",
  "COMMENT",
  "MNAME",
  "QSTRING",
  "BOPEN",
  "BCLOSE",
  "LNAME",
  "LVALUE",
  "COMMA",
  "EQUAL",
  "TIMESTAMP",
  "VALUE",
];

// Metric types, as far as counting needs them.
const M_UNKNOWN = 0;
const M_COUNTER = 1;
const M_GAUGE = 2;
const M_HISTOGRAM = 3;
const M_SUMMARY = 4;
const M_GAUGEHISTOGRAM = 5;
const M_INFO = 6;
const M_STATESET = 7;

const NL = 0x0a;
const TAB = 0x09;
const SP = 0x20;
const DQ = 0x22;
const HASH = 0x23;
const COMMA = 0x2c;
const EQ = 0x3d;
const BSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

// Character classes, one table lookup each.
const C_M = 1; // [a-zA-Z_:]
const C_MD = 2; // [a-zA-Z_:0-9]
const C_L = 4; // [a-zA-Z_]
const C_LD = 8; // [a-zA-Z_0-9]
const C_DIGIT = 16;
const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const alpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
  const digit = c >= 0x30 && c <= 0x39;
  let k = 0;
  if (alpha || c === 0x3a) k |= C_M | C_MD;
  if (digit) k |= C_MD | C_LD | C_DIGIT;
  if (alpha) k |= C_L | C_LD;
  CLASS[c] = k;
}

/** Thrown (never escapes) when a record runs past the data received so far. */
const NEED_MORE: unique symbol = Symbol("need more input");

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

const LEGACY_METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LEGACY_LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const INTERN_SIZE = 4096;
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

export class ExpositionParser {
  // Lexer.
  private b: Uint8Array = new Uint8Array(0);
  private end = 0;
  private final = false;
  private i = 0;
  private start = 0;
  private state = S_INIT;
  // Record checkpoint: where to resume when a record is incomplete.
  private ckI = 0;
  private ckState = S_INIT;
  // Current record.
  private recStart = 0;
  private nameS = -1;
  private nameE = -1;
  private nameQuoted = false;
  private offs = new Int32Array(64);
  private nOff = 0;
  private anyQuotedLabel = false;
  /** Set by scanQuoted when a quoted token had a byte >= 0x80 (only then is UTF-8 checked). */
  private nonAscii = false;
  private readonly intern: (string | undefined)[] = new Array(INTERN_SIZE);
  private mtype = M_UNKNOWN;
  private done = false;

  // Counts.
  samples = 0;
  series = 0;

  // Where b[0] sits in the whole input, for line numbers.
  private baseLine = 1;
  private baseCol = 1;

  private readonly om: boolean;
  private readonly v3: boolean;
  private readonly cfg: ParserConfig;

  constructor(cfg: ParserConfig) {
    this.cfg = cfg;
    this.om = cfg.openMetrics;
    this.v3 = cfg.v3;
  }

  get finished(): boolean {
    return this.done;
  }

  /**
   * Parses b[from:end] (b[0:from] is already consumed). Returns the offset of the first byte
   * not consumed: the start of an incomplete record, or `end`.
   */
  feed(b: Uint8Array, from: number, end: number, final: boolean): number {
    this.b = b;
    this.i = from;
    this.end = end;
    this.final = final;
    this.ckI = from;
    this.ckState = this.state;
    if (this.done) return end;
    const max = this.cfg.maxLineBytes;
    for (;;) {
      let r: number;
      try {
        r = this.om ? this.nextOM() : this.nextText();
      } catch (e) {
        if (e !== NEED_MORE) throw e;
        this.i = this.ckI;
        this.state = this.ckState;
        if (end - this.ckI > max) this.tooLong(this.ckI);
        return this.ckI;
      }
      if (this.i - this.recStart > max) this.tooLong(this.recStart);
      if (r === 0) {
        this.done = true;
        return end;
      }
      if (r === 2) this.onSample();
      this.ckI = this.i;
      this.ckState = this.state;
    }
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

  // ---------------------------------------------------------------- lexer

  private atEnd(): number {
    if (!this.final) throw NEED_MORE;
    this.i = this.end;
    return 0;
  }

  /** The scanners' `next()`: advance, and skip NULs inside label values, HELP text and comments. */
  private next(): number {
    const i = ++this.i;
    if (i >= this.end) return this.atEnd();
    const c = this.b[i]!;
    if (c !== 0) return c;
    const st = this.state;
    if (st !== S_LVALUE && st !== S_META2 && st !== S_COMMENT) return 0;
    return this.skipNuls();
  }

  private skipNuls(): number {
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

  private lex(): number {
    if (this.i >= this.end) {
      if (this.final) return T_EOF;
      throw NEED_MORE;
    }
    this.start = this.i;
    this.nonAscii = false;
    return this.om ? this.lexOM(this.b[this.i]!) : this.lexText(this.b[this.i]!);
  }

  private ws(): number {
    let c: number;
    do c = this.next();
    while (c === TAB || c === SP);
    return T_WS;
  }

  /**
   * `"(\\.|[^\\"])*"`: on success the closing quote and one lookahead are consumed. `noNL`
   * for the OpenMetrics label/exemplar values, which exclude raw newlines.
   */
  private scanQuoted(noNL: boolean): boolean {
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

  /** promlex.l. */
  private lexText(c: number): number {
    for (;;) {
      switch (this.state) {
        case S_INIT:
          if (c === HASH) {
            c = this.next();
            if (c === TAB || c === SP) {
              do c = this.next();
              while (c === TAB || c === SP);
              this.state = S_COMMENT;
              continue;
            }
            return this.consumeComment();
          }
          if ((CLASS[c]! & C_M) !== 0) {
            const b = this.b;
            const end = this.end;
            let i = this.i + 1;
            while (i < end && (CLASS[b[i]!]! & C_MD) !== 0) i++;
            this.i = i - 1;
            this.next();
            this.state = S_VALUE;
            return T_MNAME;
          }
          if (c === NL) {
            this.next();
            return T_LINEBREAK;
          }
          if (c === TAB || c === SP) return this.ws();
          if (c === 0) {
            this.next();
            return T_EOF;
          }
          if (c === LBRACE && this.v3) {
            this.next();
            this.state = S_LABELS;
            return T_BOPEN;
          }
          return T_INVALID;
        case S_COMMENT:
          if (c === 0x48 /* H */) {
            if (this.next() === 0x45 && this.next() === 0x4c && this.next() === 0x50) {
              c = this.next();
              if (c === TAB || c === SP) {
                do c = this.next();
                while (c === TAB || c === SP);
                this.state = S_META1;
                return T_HELP;
              }
            }
            return this.consumeComment();
          }
          if (c === 0x54 /* T */) {
            if (this.next() === 0x59 && this.next() === 0x50 && this.next() === 0x45) {
              c = this.next();
              if (c === TAB || c === SP) {
                do c = this.next();
                while (c === TAB || c === SP);
                this.state = S_META1;
                return T_TYPE;
              }
            }
            return this.consumeComment();
          }
          if (c === TAB || c === SP) return this.ws();
          return this.consumeComment();
        case S_META1:
          if (c === DQ && this.v3) {
            if (!this.scanQuoted(false)) return T_INVALID;
            this.state = S_META2;
            return T_MNAME;
          }
          if ((CLASS[c]! & C_M) !== 0) {
            do c = this.next();
            while ((CLASS[c]! & C_MD) !== 0);
            this.state = S_META2;
            return T_MNAME;
          }
          if (c === TAB || c === SP) return this.ws();
          return T_INVALID;
        case S_META2:
          // `[ \t]+` and `[^\n]*` compete; the longer wins, whitespace on a tie.
          if (c === TAB || c === SP) {
            do c = this.next();
            while (c === TAB || c === SP);
            if (c === 0 || c === NL) return T_WS;
          } else if (c === 0 || c === NL) {
            this.state = S_INIT;
            return T_TEXT;
          }
          do c = this.next();
          while (c !== 0 && c !== NL);
          this.state = S_INIT;
          return T_TEXT;
        case S_LABELS:
          if ((CLASS[c]! & C_L) !== 0) {
            const b = this.b;
            const end = this.end;
            let i = this.i + 1;
            while (i < end && (CLASS[b[i]!]! & C_LD) !== 0) i++;
            this.i = i - 1;
            this.next();
            return T_LNAME;
          }
          if (c === EQ) {
            this.next();
            this.state = S_LVALUE;
            return T_EQUAL;
          }
          if (c === COMMA) {
            this.next();
            return T_COMMA;
          }
          if (c === RBRACE) {
            this.next();
            this.state = S_VALUE;
            return T_BCLOSE;
          }
          if (c === TAB || c === SP) return this.ws();
          if (c === DQ && this.v3) return this.scanQuoted(false) ? T_QSTRING : T_INVALID;
          return T_INVALID;
        case S_LVALUE:
          if (c === DQ) {
            if (!this.scanQuoted(false)) return T_INVALID;
            this.state = S_LABELS;
            return T_LVALUE;
          }
          if (c === TAB || c === SP) return this.ws();
          return T_INVALID;
        case S_VALUE:
          if (c === TAB || c === SP) return this.ws();
          if (c === LBRACE) {
            this.next();
            this.state = S_LABELS;
            return T_BOPEN;
          }
          if (c !== 0 && c !== NL) {
            const b = this.b;
            const end = this.end;
            let i = this.i + 1;
            for (; i < end; i++) {
              const d = b[i]!;
              if (d === SP || d === LBRACE || d <= NL) break;
            }
            this.i = i - 1;
            do c = this.next();
            while (c !== 0 && c !== TAB && c !== NL && c !== SP && c !== LBRACE);
            this.state = S_TIMESTAMP;
            return T_VALUE;
          }
          return T_INVALID;
        case S_TIMESTAMP:
          if (c === NL) {
            this.next();
            this.state = S_INIT;
            return T_LINEBREAK;
          }
          if (c === TAB || c === SP) return this.ws();
          if ((CLASS[c]! & C_DIGIT) !== 0) {
            do c = this.next();
            while ((CLASS[c]! & C_DIGIT) !== 0);
            return T_TIMESTAMP;
          }
          return T_INVALID;
        default:
          return T_INVALID;
      }
    }
  }

  /** `consumeComment`: to the end of the line; a NUL it reads (not skips) ends the input. */
  private consumeComment(): number {
    const b = this.b;
    const end = this.end;
    let i = this.i;
    if (i >= end) {
      this.atEnd();
      return T_EOF;
    }
    let c = b[i]!;
    for (;;) {
      if (c === NL) {
        this.i = i;
        this.state = S_INIT;
        return T_COMMENT;
      }
      if (c === 0) {
        this.i = i;
        return T_EOF;
      }
      const k = b.indexOf(NL, i + 1);
      let j = i + 1;
      const stop = k === -1 || k > end ? end : k;
      // NULs are skipped only in the sComment state; in sInit (a `#` not followed by a blank) they end the input.
      if (this.state !== S_COMMENT) {
        while (j < stop && b[j] !== 0) j++;
      } else {
        j = stop;
      }
      if (j >= end) {
        this.i = end - 1;
        this.next();
        return T_EOF;
      }
      i = j;
      c = b[i]!;
    }
  }

  /** openmetricslex.l. */
  private lexOM(c: number): number {
    for (;;) {
      switch (this.state) {
        case S_INIT:
          if ((CLASS[c]! & C_M) !== 0) {
            const b = this.b;
            const end = this.end;
            let i = this.i + 1;
            while (i < end && (CLASS[b[i]!]! & C_MD) !== 0) i++;
            this.i = i - 1;
            this.next();
            this.state = S_VALUE;
            return T_MNAME;
          }
          if (c === HASH) {
            if (this.next() !== SP) return T_INVALID;
            c = this.next();
            this.state = S_COMMENT;
            continue;
          }
          if (c === LBRACE && this.v3) {
            this.next();
            this.state = S_LABELS;
            return T_BOPEN;
          }
          return T_INVALID;
        case S_COMMENT:
          if (c === 0x45 /* E */) {
            if (this.next() === 0x4f && this.next() === 0x46) {
              if (this.next() === NL) this.next();
              this.state = S_INIT;
              return T_EOFWORD;
            }
            return T_INVALID;
          }
          if (c === 0x48 /* H */) {
            if (this.next() === 0x45 && this.next() === 0x4c && this.next() === 0x50 && this.next() === SP) {
              this.next();
              this.state = S_META1;
              return T_HELP;
            }
            return T_INVALID;
          }
          if (c === 0x54 /* T */) {
            if (this.next() === 0x59 && this.next() === 0x50 && this.next() === 0x45 && this.next() === SP) {
              this.next();
              this.state = S_META1;
              return T_TYPE;
            }
            return T_INVALID;
          }
          if (c === 0x55 /* U */) {
            if (this.next() === 0x4e && this.next() === 0x49 && this.next() === 0x54 && this.next() === SP) {
              this.next();
              this.state = S_META1;
              return T_UNIT;
            }
            return T_INVALID;
          }
          return T_INVALID;
        case S_META1:
          if ((CLASS[c]! & C_M) !== 0) {
            do c = this.next();
            while ((CLASS[c]! & C_MD) !== 0);
            this.state = S_META2;
            return T_MNAME;
          }
          if (c === DQ && this.v3) {
            if (!this.scanQuoted(false)) return T_INVALID;
            this.state = S_META2;
            return T_MNAME;
          }
          return T_INVALID;
        case S_META2:
          if (c !== SP) return T_INVALID;
          for (;;) {
            c = this.next();
            if (c === NL) {
              this.next();
              this.state = S_INIT;
              return T_TEXT;
            }
            if (c === 0) return T_INVALID;
          }
        case S_LABELS:
          if ((CLASS[c]! & C_L) !== 0) {
            const b = this.b;
            const end = this.end;
            let i = this.i + 1;
            while (i < end && (CLASS[b[i]!]! & C_LD) !== 0) i++;
            this.i = i - 1;
            this.next();
            return T_LNAME;
          }
          if (c === EQ) {
            this.next();
            this.state = S_LVALUE;
            return T_EQUAL;
          }
          if (c === COMMA) {
            this.next();
            return T_COMMA;
          }
          if (c === RBRACE) {
            this.next();
            this.state = S_VALUE;
            return T_BCLOSE;
          }
          if (c === DQ && this.v3) return this.scanQuoted(false) ? T_QSTRING : T_INVALID;
          return T_INVALID;
        case S_LVALUE:
          if (c === DQ) {
            if (!this.scanQuoted(true)) return T_INVALID;
            this.state = S_LABELS;
            return T_LVALUE;
          }
          return T_INVALID;
        case S_VALUE:
          if (c === SP) {
            c = this.next();
            if (c === 0 || c === NL || c === SP) return T_INVALID;
            this.omRun();
            this.state = S_TIMESTAMP;
            return T_VALUE;
          }
          if (c === LBRACE) {
            this.next();
            this.state = S_LABELS;
            return T_BOPEN;
          }
          return T_INVALID;
        case S_TIMESTAMP:
          if (c === NL) {
            this.next();
            this.state = S_INIT;
            return T_LINEBREAK;
          }
          if (c === SP) {
            c = this.next();
            if (c === HASH) {
              c = this.next();
              if (c === SP) {
                if (this.next() !== LBRACE) return T_INVALID;
                this.next();
                this.state = S_EXEMPLAR;
                return T_COMMENT;
              }
              if (c === 0 || c === NL) return T_TIMESTAMP;
              this.omRun();
              return T_TIMESTAMP;
            }
            if (c === 0 || c === NL || c === SP) return T_INVALID;
            this.omRun();
            return T_TIMESTAMP;
          }
          return T_INVALID;
        case S_EXEMPLAR:
          if ((CLASS[c]! & C_L) !== 0) {
            do c = this.next();
            while ((CLASS[c]! & C_LD) !== 0);
            return T_LNAME;
          }
          if (c === EQ) {
            this.next();
            this.state = S_EVALUE;
            return T_EQUAL;
          }
          if (c === COMMA) {
            this.next();
            return T_COMMA;
          }
          if (c === RBRACE) {
            this.next();
            this.state = S_EVALUE;
            return T_BCLOSE;
          }
          if (c === DQ && this.v3) return this.scanQuoted(true) ? T_QSTRING : T_INVALID;
          return T_INVALID;
        case S_EVALUE:
          if (c === SP) {
            c = this.next();
            if (c === 0 || c === NL || c === SP) return T_INVALID;
            this.omRun();
            this.state = S_ETIMESTAMP;
            return T_VALUE;
          }
          if (c === DQ) {
            if (!this.scanQuoted(true)) return T_INVALID;
            this.state = S_EXEMPLAR;
            return T_LVALUE;
          }
          return T_INVALID;
        case S_ETIMESTAMP:
          if (c === NL) {
            this.next();
            this.state = S_INIT;
            return T_LINEBREAK;
          }
          if (c === SP) {
            c = this.next();
            if (c === 0 || c === NL || c === SP) return T_INVALID;
            this.omRun();
            return T_TIMESTAMP;
          }
          return T_INVALID;
        default:
          return T_INVALID;
      }
    }
  }

  /** `[^ \n]+` continued: the current byte matched; consume the rest and one lookahead. */
  private omRun(): void {
    const b = this.b;
    const end = this.end;
    let i = this.i + 1;
    for (; i < end; i++) {
      const d = b[i]!;
      if (d === SP || d === NL || d === 0) break;
    }
    this.i = i - 1;
    let c: number;
    do c = this.next();
    while (c !== 0 && c !== NL && c !== SP);
  }

  // ---------------------------------------------------------------- text parser

  private nextTok(): number {
    for (;;) {
      const t = this.lex();
      if (t !== T_WS) return t;
    }
  }

  private resetRecord(): void {
    this.recStart = this.i;
    this.nameS = -1;
    this.nameE = -1;
    this.nameQuoted = false;
    this.nOff = 0;
    this.anyQuotedLabel = false;
  }

  /** PromParser.Next: 0 at the end, 1 for a non-sample entry, 2 for a sample. */
  private nextText(): number {
    for (;;) {
      this.ckI = this.i;
      this.ckState = this.state;
      this.resetRecord();
      const t = this.nextTok();
      switch (t) {
        case T_MNAME: {
          this.nameS = this.recStart;
          this.nameE = this.i;
          let t2 = this.nextTok();
          if (t2 === T_BOPEN) {
            if (this.v3) this.parseLValsText3();
            else this.parseLValsText2();
            t2 = this.nextTok();
          }
          this.parseMetricSuffix(t2);
          return 2;
        }
        case T_LINEBREAK:
          continue;
        case T_EOF:
          return 0;
        case T_HELP:
        case T_TYPE: {
          const what = t === T_HELP ? "HELP" : "TYPE";
          const t2 = this.nextTok();
          if (t2 !== T_MNAME) this.failTok(`expected metric name after ${what}`, t2);
          const t3 = this.nextTok();
          if (t3 !== T_TEXT) this.failTok(`expected text in ${what}`, t3);
          const ts = this.i - this.start > 1 ? this.start + 1 : this.i;
          let mt = this.mtype;
          if (t === T_TYPE) mt = this.typeOf(ts, this.i, false);
          else if (!validUtf8(this.b, ts, this.i)) this.fail("HELP text is not valid UTF-8", ts);
          const t4 = this.nextTok();
          if (t4 !== T_LINEBREAK) this.failTok("expected a line break after the metadata", t4);
          this.mtype = mt;
          return 1;
        }
        case T_COMMENT: {
          const t2 = this.nextTok();
          if (t2 !== T_LINEBREAK) this.failTok("expected a line break after the comment", t2);
          return 1;
        }
        case T_BOPEN:
          // Only the 3.x lexer produces it here: `{"metric.name", a="b"} 1`.
          this.parseLValsText3();
          this.parseMetricSuffix(this.nextTok());
          return 2;
        default:
          this.failTok("expected a metric name, a comment or a blank line", t);
      }
    }
  }

  private pushOff(a: number, b: number): void {
    if (this.nOff + 2 > this.offs.length) {
      const n = new Int32Array(this.offs.length * 2);
      n.set(this.offs);
      this.offs = n;
    }
    this.offs[this.nOff++] = a;
    this.offs[this.nOff++] = b;
  }

  private labelValue(): void {
    const s = this.start;
    const e = this.i;
    if (this.nonAscii && !validUtf8(this.b, s, e)) this.fail("label value is not valid UTF-8", s);
    this.pushOff(s + 1, e - 1);
  }

  /** 2.42 parseLVals: names, `=`, values, optional commas (a trailing one too). */
  private parseLValsText2(): void {
    let t = this.nextTok();
    for (;;) {
      if (t === T_BCLOSE) return;
      if (t !== T_LNAME) this.failTok("expected label name", t);
      this.pushOff(this.start, this.i);
      t = this.nextTok();
      if (t !== T_EQUAL) this.failTok('expected "=" after the label name', t);
      t = this.nextTok();
      if (t !== T_LVALUE) this.failTok("expected a quoted label value", t);
      this.labelValue();
      t = this.nextTok();
      if (t === T_COMMA) t = this.nextTok();
    }
  }

  /** 3.x parseLVals: also quoted names, and a lone quoted string as the metric name. */
  private parseLValsText3(): void {
    let t = this.nextTok();
    for (;;) {
      let cs = this.start;
      let ce = this.i;
      let quoted = false;
      if (t === T_BCLOSE) return;
      if (t === T_QSTRING) quoted = true;
      else if (t !== T_LNAME) this.failTok("expected label name", t);
      t = this.nextTok();
      if (quoted && (t === T_COMMA || t === T_BCLOSE)) {
        if (this.nameS !== -1) this.fail("metric name already set", cs);
        this.nameS = cs + 1;
        this.nameE = ce - 1;
        this.nameQuoted = true;
        if (t === T_BCLOSE) return;
        t = this.nextTok();
        continue;
      }
      if (quoted) {
        cs++;
        ce--;
        this.anyQuotedLabel = true;
      }
      this.pushOff(cs, ce);
      if (t !== T_EQUAL) this.failTok('expected "=" after the label name', t);
      t = this.nextTok();
      if (t !== T_LVALUE) this.failTok("expected a quoted label value", t);
      this.labelValue();
      t = this.nextTok();
      if (t === T_COMMA) t = this.nextTok();
    }
  }

  private parseMetricSuffix(t: number): void {
    if (this.nameS === -1) this.fail("metric name not set", this.recStart);
    if (t !== T_VALUE) this.failTok("expected a sample value after the metric", t);
    this.checkValue(this.start, this.i, this.start);
    const t2 = this.nextTok();
    if (t2 === T_LINEBREAK) return;
    if (t2 !== T_TIMESTAMP) this.failTok("expected a timestamp or the end of the line", t2);
    if (int64Overflows(this.b, this.start, this.i)) this.fail("timestamp out of int64 range", this.start);
    const t3 = this.nextTok();
    if (t3 !== T_LINEBREAK) this.failTok("expected the end of the line after the timestamp", t3);
  }

  private checkValue(s: number, e: number, at: number): number {
    const r = checkPromFloat(this.b, s, e);
    if (r === FLOAT_OK || r === FLOAT_NONFINITE) return r;
    const v = this.latin1(s, e);
    if (r === FLOAT_UNSUPPORTED) this.fail(`unsupported character in float ${JSON.stringify(v)}`, at);
    if (r === FLOAT_RANGE) this.fail(`value ${JSON.stringify(v)} is out of float64 range`, at);
    return this.fail(`invalid float ${JSON.stringify(v)}`, at);
  }

  private typeOf(s: number, e: number, om: boolean): number {
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

  // ---------------------------------------------------------------- OpenMetrics parser

  /** OpenMetricsParser.Next. */
  private nextOM(): number {
    for (;;) {
      this.ckI = this.i;
      this.ckState = this.state;
      this.resetRecord();
      const t = this.lex();
      switch (t) {
        case T_MNAME: {
          this.nameS = this.recStart;
          this.nameE = this.i;
          let t2 = this.lex();
          if (t2 === T_BOPEN) {
            if (this.v3) this.parseLValsOM3(false);
            else this.parseLValsOM2();
            t2 = this.lex();
          }
          this.seriesEndOfLine(t2);
          if (this.skipCreated()) continue;
          return 2;
        }
        case T_EOFWORD:
          if (this.lex() !== T_EOF) this.fail("unexpected data after # EOF", this.i);
          return 0;
        case T_EOF:
          return this.fail("data does not end with # EOF", this.i);
        case T_HELP:
        case T_TYPE:
        case T_UNIT: {
          const what = t === T_HELP ? "HELP" : t === T_TYPE ? "TYPE" : "UNIT";
          const t2 = this.lex();
          if (t2 !== T_MNAME) this.failTok(`expected metric name after ${what}`, t2);
          let ms = this.start;
          let me = this.i;
          if (this.b[ms] === DQ && this.b[me - 1] === DQ) {
            ms++;
            me--;
          }
          const t3 = this.lex();
          if (t3 !== T_TEXT) this.failTok(`expected text in ${what}`, t3);
          const ts = this.i - this.start > 1 ? this.start + 1 : this.i;
          const te = this.i - this.start > 1 ? this.i - 1 : this.i;
          if (t === T_TYPE) this.mtype = this.typeOf(ts, te, true);
          else if (t === T_HELP) {
            if (!validUtf8(this.b, ts, te)) this.fail("HELP text is not valid UTF-8", ts);
          } else if (te > ts) {
            const n = te - ts;
            let ok = me - ms >= n + 1 && this.b[me - n - 1] === 0x5f;
            for (let k = 0; ok && k < n; k++) ok = this.b[me - n + k] === this.b[ts + k];
            if (!ok) this.fail("unit is not a suffix of the metric name", ts);
          }
          return 1;
        }
        case T_BOPEN:
          this.parseLValsOM3(false);
          this.seriesEndOfLine(this.lex());
          if (this.skipCreated()) continue;
          return 2;
        default:
          this.failTok("expected a metric name, # HELP, # TYPE, # UNIT or # EOF", t);
      }
    }
  }

  private skipCreated(): boolean {
    if (!this.cfg.skipCreatedSeries) return false;
    const m = this.mtype;
    if (m !== M_COUNTER && m !== M_SUMMARY && m !== M_HISTOGRAM) return false;
    const e = this.nameE;
    if (e - this.nameS < 8) return false;
    const b = this.b;
    return (
      b[e - 8] === 0x5f &&
      b[e - 7] === 0x63 &&
      b[e - 6] === 0x72 &&
      b[e - 5] === 0x65 &&
      b[e - 4] === 0x61 &&
      b[e - 3] === 0x74 &&
      b[e - 2] === 0x65 &&
      b[e - 1] === 0x64
    );
  }

  /** 2.42: no leading or doubled commas, no trailing comma. */
  private parseLValsOM2(exemplar = false): void {
    let first = true;
    for (;;) {
      let t = this.lex();
      if (t === T_BCLOSE) return;
      if (t === T_COMMA) {
        if (first) this.failTok("expected label name or closing brace", t);
        t = this.lex();
        if (t !== T_LNAME) this.failTok("expected label name", t);
      } else if (t === T_LNAME) {
        if (!first) this.failTok("expected comma", t);
      } else {
        this.failTok(first ? "expected label name or closing brace" : "expected comma or closing brace", t);
      }
      first = false;
      if (!exemplar) this.pushOff(this.start, this.i);
      if (this.lex() !== T_EQUAL) this.failTok('expected "=" after the label name', T_INVALID);
      const t2 = this.lex();
      if (t2 !== T_LVALUE) this.failTok("expected a quoted label value", t2);
      if (exemplar) {
        if (!validUtf8(this.b, this.start, this.i)) this.fail("label value is not valid UTF-8", this.start);
      } else this.labelValue();
    }
  }

  /** 3.x: quoted names, a lone quoted metric name, trailing comma allowed. */
  private parseLValsOM3(exemplar: boolean): void {
    let t = this.lex();
    for (;;) {
      let cs = this.start;
      let ce = this.i;
      let quoted = false;
      if (t === T_BCLOSE) return;
      if (t === T_QSTRING) quoted = true;
      else if (t !== T_LNAME) this.failTok("expected label name", t);
      t = this.lex();
      if (quoted && (t === T_COMMA || t === T_BCLOSE)) {
        if (exemplar) this.failTok("expected label name", t);
        if (this.nameS !== -1) this.fail("metric name already set", cs);
        this.nameS = cs + 1;
        this.nameE = ce - 1;
        this.nameQuoted = true;
        if (t === T_BCLOSE) return;
        t = this.lex();
        continue;
      }
      if (quoted) {
        cs++;
        ce--;
        if (!exemplar) this.anyQuotedLabel = true;
      }
      if (!exemplar) this.pushOff(cs, ce);
      if (t !== T_EQUAL) this.failTok('expected "=" after the label name', t);
      t = this.lex();
      if (t !== T_LVALUE) this.failTok("expected a quoted label value", t);
      if (exemplar) {
        if (!validUtf8(this.b, this.start, this.i)) this.fail("label value is not valid UTF-8", this.start);
      } else this.labelValue();
      t = this.lex();
      if (t === T_COMMA) t = this.lex();
      else if (t !== T_BCLOSE) this.failTok("expected comma or closing brace", t);
    }
  }

  private omFloat(what: string, t: number, after: string): void {
    if (t !== T_VALUE) this.failTok(`expected ${what} after ${after}`, t);
    this.checkValue(this.start + 1, this.i, this.start);
  }

  private omTimestamp(what: string): void {
    if (this.checkValue(this.start + 1, this.i, this.start) === FLOAT_NONFINITE) {
      this.fail(`invalid ${what}: must be finite`, this.start);
    }
  }

  private seriesEndOfLine(t: number): void {
    if (this.nameS === -1) this.fail("metric name not set", this.recStart);
    this.omFloat("a sample value", t, "the metric");
    const t2 = this.lex();
    switch (t2) {
      case T_LINEBREAK:
        return;
      case T_EOF:
        this.fail("data does not end with # EOF", this.i);
        return;
      case T_COMMENT:
        this.parseExemplar();
        return;
      case T_TIMESTAMP: {
        this.omTimestamp("timestamp");
        const t3 = this.lex();
        if (t3 === T_LINEBREAK) return;
        if (t3 === T_COMMENT) {
          this.parseExemplar();
          return;
        }
        this.failTok("expected the end of the line or an exemplar after the timestamp", t3);
        return;
      }
      default:
        // Prometheus 3.x has no default branch here: whatever follows is left to the next entry.
        if (!this.v3) this.failTok("expected a timestamp or an exemplar", t2);
    }
  }

  private parseExemplar(): void {
    if (!this.v3) {
      const b = this.b;
      const e = this.nameE;
      const n = e - this.nameS;
      const total = n >= 6 && latin1Eq(b, e - 6, "_total");
      const bucket = n >= 7 && latin1Eq(b, e - 7, "_bucket");
      if (!total && !bucket) this.fail("only _total and _bucket series can have exemplars", this.start);
      this.parseLValsOM2(true);
    } else {
      this.parseLValsOM3(true);
    }
    this.omFloat("an exemplar value", this.lex(), "the exemplar labels");
    const t2 = this.lex();
    if (t2 === T_LINEBREAK) return;
    if (t2 === T_EOF) this.fail("data does not end with # EOF", this.i);
    if (t2 !== T_TIMESTAMP) this.failTok("expected an exemplar timestamp or the end of the line", t2);
    this.omTimestamp("exemplar timestamp");
    const t3 = this.lex();
    if (t3 !== T_LINEBREAK) this.failTok("expected the end of the line after the exemplar timestamp", t3);
  }

  // ---------------------------------------------------------------- counting

  /**
   * One series line parsed: it is a scraped sample. Then what scrape.go does after
   * sampleMutator: labels with an empty value are gone (labels.Builder), a dropped series is
   * not counted, a missing or invalid name or a duplicate label name fails the scrape.
   */
  private onSample(): void {
    this.samples++;
    if (this.cfg.metricRelabel === undefined && !this.nameQuoted && !this.anyQuotedLabel) {
      this.checkFast();
      this.series++;
      return;
    }
    this.checkSlow();
  }

  /** Unquoted names only: the lexer has already checked their charset. */
  private checkFast(): void {
    const b = this.b;
    const offs = this.offs;
    const n = this.nOff;
    if (this.nameS !== this.recStart || !isMetricStart(b[this.nameS]!)) {
      // Leading blanks belong to the name in Prometheus (p.start is the line start).
      if (!this.cfg.utf8Names) this.fail("invalid metric name (blanks before it are part of it)", this.nameS);
    }
    for (let k = 0; k < n; k += 4) {
      const ns = offs[k]!;
      const ne = offs[k + 1]!;
      const len = ne - ns;
      if (offs[k + 3]! === offs[k + 2]!) continue; // empty value: the label is dropped
      if (len === 8 && latin1Eq(b, ns, "__name__")) {
        this.fail('duplicate label name "__name__"', ns);
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
        if (same && !this.emptiedName(ns, len)) {
          this.fail(`duplicate label name ${JSON.stringify(this.latin1(ns, ne))}`, offs[j]!);
        }
      }
    }
    // A name given with an empty value anywhere is removed entirely; for __name__ that leaves none.
    for (let k = 0; k < n; k += 4) {
      const ns = offs[k]!;
      if (offs[k + 3]! === offs[k + 2]! && offs[k + 1]! - ns === 8 && latin1Eq(b, ns, "__name__")) {
        this.fail("series without a metric name (__name__ is empty)", ns);
      }
    }
  }

  /** Whether some label of this name has an empty value (labels.Builder then drops them all). */
  private emptiedName(ns: number, len: number): boolean {
    const b = this.b;
    const offs = this.offs;
    for (let k = 0; k < this.nOff; k += 4) {
      if (offs[k + 3]! !== offs[k + 2]! || offs[k + 1]! - offs[k]! !== len) continue;
      let same = true;
      for (let x = 0; x < len && same; x++) same = b[ns + x] === b[offs[k]! + x];
      if (same) return true;
    }
    return false;
  }

  private checkSlow(): void {
    const names: string[] = [];
    const values: string[] = [];
    // Quoted names are not checked by the parser; invalid UTF-8 in one fails IsValid later.
    let badName = this.nameQuoted && !validUtf8(this.b, this.nameS, this.nameE);
    names.push("__name__");
    values.push(
      this.nameQuoted ? unescapeLabel(this.decode(this.nameS, this.nameE)) : this.decode(this.nameS, this.nameE),
    );
    const offs = this.offs;
    for (let k = 0; k < this.nOff; k += 4) {
      const raw = this.decode(offs[k]!, offs[k + 1]!);
      const quoted = this.b[offs[k]! - 1] === DQ;
      const name = quoted ? unescapeLabel(raw) : raw;
      if (quoted && !validUtf8(this.b, offs[k]!, offs[k + 1]!) && offs[k + 3]! > offs[k + 2]!) badName = true;
      let value = unescapeLabel(this.decode(offs[k + 2]!, offs[k + 3]!));
      if (this.v3) value = normalizeFloatLabel(this.mtype, name, value);
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
    const relabel = this.cfg.metricRelabel;
    if (relabel !== undefined) {
      result = relabel(out);
      if (result === null || Object.keys(result).length === 0) return;
    }
    if (dup !== undefined) this.fail(`duplicate label name ${JSON.stringify(dup)}`, this.recStart);
    if (badName) this.fail("invalid metric or label name: not valid UTF-8", this.recStart);
    const name = result.__name__;
    if (name === undefined || name === "") {
      this.fail("series without a metric name (__name__ missing after relabeling)", this.recStart);
    }
    // Unchanged labels from unquoted names: the lexer already checked the charset.
    if (result === out && !this.nameQuoted && !this.anyQuotedLabel && isMetricStart(this.b[this.nameS]!)) {
      this.series++;
      return;
    }
    for (const [k, v] of Object.entries(result)) {
      if (v === "") continue;
      const ok = this.cfg.utf8Names
        ? k.length > 0 && k.isWellFormed() && (k !== "__name__" || v.isWellFormed())
        : LEGACY_LABEL.test(k) && (k !== "__name__" || LEGACY_METRIC.test(v));
      if (!ok || !v.isWellFormed()) this.fail(`invalid metric or label name in ${formatLabels(result)}`, this.recStart);
    }
    this.series++;
  }

  // ---------------------------------------------------------------- helpers

  private latin1(s: number, e: number): string {
    let out = "";
    for (let k = s; k < e && k - s < 200; k++) out += String.fromCharCode(this.b[k]!);
    return out;
  }

  /** UTF-8 decode; short ASCII strings come from a small cache (names and values repeat a lot). */
  private decode(s: number, e: number): string {
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

  private tooLong(at: number): never {
    return this.fail(`entry longer than ${this.cfg.maxLineBytes} bytes (maxLineBytes)`, at);
  }

  private failTok(expected: string, t: number): never {
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

function isMetricStart(c: number): boolean {
  return (CLASS[c]! & C_M) !== 0;
}

function latin1Eq(b: Uint8Array, at: number, s: string): boolean {
  for (let k = 0; k < s.length; k++) if (b[at + k] !== s.charCodeAt(k)) return false;
  return true;
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
