/** openmetricslex.l: the OpenMetrics 1.0 lexer of Prometheus 2.42 and 3.x, as functions over a Scanner. */
import type { Scanner } from "./scanner.ts";
import * as tokens from "./tokens.ts";

// Module-local copies of the shared constants, for speed (see tokens.ts).
const {
  S_INIT,
  S_COMMENT,
  S_META1,
  S_META2,
  S_LABELS,
  S_LVALUE,
  S_VALUE,
  S_TIMESTAMP,
  S_EXEMPLAR,
  S_EVALUE,
  S_ETIMESTAMP,
  T_INVALID,
  T_LINEBREAK,
  T_HELP,
  T_TYPE,
  T_UNIT,
  T_EOFWORD,
  T_TEXT,
  T_COMMENT,
  T_MNAME,
  T_QSTRING,
  T_BOPEN,
  T_BCLOSE,
  T_LNAME,
  T_LVALUE,
  T_COMMA,
  T_EQUAL,
  T_TIMESTAMP,
  T_VALUE,
  NL,
  SP,
  DQ,
  HASH,
  COMMA,
  EQ,
  LBRACE,
  RBRACE,
  C_M,
  C_MD,
  C_L,
  C_LD,
  CLASS,
} = tokens;

/** openmetricslex.l. */
export function lexOM(s: Scanner, c: number): number {
  for (;;) {
    switch (s.state) {
      case S_INIT:
        if ((CLASS[c]! & C_M) !== 0) {
          const b = s.b;
          const end = s.end;
          let i = s.i + 1;
          while (i < end && (CLASS[b[i]!]! & C_MD) !== 0) i++;
          s.i = i - 1;
          s.next();
          s.state = S_VALUE;
          return T_MNAME;
        }
        if (c === HASH) {
          if (s.next() !== SP) return T_INVALID;
          c = s.next();
          s.state = S_COMMENT;
          continue;
        }
        if (c === LBRACE && s.v3) {
          s.next();
          s.state = S_LABELS;
          return T_BOPEN;
        }
        return T_INVALID;
      case S_COMMENT:
        if (c === 0x45 /* E */) {
          if (s.word("OF")) {
            if (s.next() === NL) s.next();
            s.state = S_INIT;
            return T_EOFWORD;
          }
          return T_INVALID;
        }
        if (c === 0x48 /* H */) {
          if (s.word("ELP ")) {
            s.next();
            s.state = S_META1;
            return T_HELP;
          }
          return T_INVALID;
        }
        if (c === 0x54 /* T */) {
          if (s.word("YPE ")) {
            s.next();
            s.state = S_META1;
            return T_TYPE;
          }
          return T_INVALID;
        }
        if (c === 0x55 /* U */) {
          if (s.word("NIT ")) {
            s.next();
            s.state = S_META1;
            return T_UNIT;
          }
          return T_INVALID;
        }
        return T_INVALID;
      case S_META1:
        if ((CLASS[c]! & C_M) !== 0) {
          do c = s.next();
          while ((CLASS[c]! & C_MD) !== 0);
          s.state = S_META2;
          return T_MNAME;
        }
        if (c === DQ && s.v3) {
          if (!s.scanQuoted(false)) return T_INVALID;
          s.state = S_META2;
          return T_MNAME;
        }
        return T_INVALID;
      case S_META2:
        if (c !== SP) return T_INVALID;
        for (;;) {
          c = s.next();
          if (c === NL) {
            s.next();
            s.state = S_INIT;
            return T_TEXT;
          }
          if (c === 0) return T_INVALID;
        }
      case S_LABELS:
        // The same rules as in text-lexer.ts (bar blanks), kept inline for speed (see tokens.ts).
        if ((CLASS[c]! & C_L) !== 0) {
          const b = s.b;
          const end = s.end;
          let i = s.i + 1;
          while (i < end && (CLASS[b[i]!]! & C_LD) !== 0) i++;
          s.i = i - 1;
          s.next();
          return T_LNAME;
        }
        if (c === EQ) {
          s.next();
          s.state = S_LVALUE;
          return T_EQUAL;
        }
        if (c === COMMA) {
          s.next();
          return T_COMMA;
        }
        if (c === RBRACE) {
          s.next();
          s.state = S_VALUE;
          return T_BCLOSE;
        }
        if (c === DQ && s.v3) return s.scanQuoted(false) ? T_QSTRING : T_INVALID;
        return T_INVALID;
      case S_LVALUE:
        if (c === DQ) {
          if (!s.scanQuoted(true)) return T_INVALID;
          s.state = S_LABELS;
          return T_LVALUE;
        }
        return T_INVALID;
      case S_VALUE:
        if (c === SP) {
          c = s.next();
          if (c === 0 || c === NL || c === SP) return T_INVALID;
          omRun(s);
          s.state = S_TIMESTAMP;
          return T_VALUE;
        }
        if (c === LBRACE) {
          s.next();
          s.state = S_LABELS;
          return T_BOPEN;
        }
        return T_INVALID;
      case S_TIMESTAMP:
        if (c === NL) {
          s.next();
          s.state = S_INIT;
          return T_LINEBREAK;
        }
        if (c === SP) {
          c = s.next();
          if (c === HASH) {
            c = s.next();
            if (c === SP) {
              if (s.next() !== LBRACE) return T_INVALID;
              s.next();
              s.state = S_EXEMPLAR;
              return T_COMMENT;
            }
            if (c === 0 || c === NL) return T_TIMESTAMP;
            omRun(s);
            return T_TIMESTAMP;
          }
          if (c === 0 || c === NL || c === SP) return T_INVALID;
          omRun(s);
          return T_TIMESTAMP;
        }
        return T_INVALID;
      case S_EXEMPLAR:
        if ((CLASS[c]! & C_L) !== 0) {
          do c = s.next();
          while ((CLASS[c]! & C_LD) !== 0);
          return T_LNAME;
        }
        if (c === EQ) {
          s.next();
          s.state = S_EVALUE;
          return T_EQUAL;
        }
        if (c === COMMA) {
          s.next();
          return T_COMMA;
        }
        if (c === RBRACE) {
          s.next();
          s.state = S_EVALUE;
          return T_BCLOSE;
        }
        if (c === DQ && s.v3) return s.scanQuoted(true) ? T_QSTRING : T_INVALID;
        return T_INVALID;
      case S_EVALUE:
        if (c === SP) {
          c = s.next();
          if (c === 0 || c === NL || c === SP) return T_INVALID;
          omRun(s);
          s.state = S_ETIMESTAMP;
          return T_VALUE;
        }
        if (c === DQ) {
          if (!s.scanQuoted(true)) return T_INVALID;
          s.state = S_EXEMPLAR;
          return T_LVALUE;
        }
        return T_INVALID;
      case S_ETIMESTAMP:
        if (c === NL) {
          s.next();
          s.state = S_INIT;
          return T_LINEBREAK;
        }
        if (c === SP) {
          c = s.next();
          if (c === 0 || c === NL || c === SP) return T_INVALID;
          omRun(s);
          return T_TIMESTAMP;
        }
        return T_INVALID;
      default:
        return T_INVALID;
    }
  }
}

/** `[^ \n]+` continued: the current byte matched; consume the rest and one lookahead. */
function omRun(s: Scanner): void {
  const b = s.b;
  const end = s.end;
  let i = s.i + 1;
  for (; i < end; i++) {
    const d = b[i]!;
    if (d === SP || d === NL || d === 0) break;
  }
  s.i = i - 1;
  let c: number;
  do c = s.next();
  while (c !== 0 && c !== NL && c !== SP);
}
