/** promlex.l: the text format (0.0.4) lexer of Prometheus 2.42 and 3.x, as functions over a Scanner. */
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
  T_INVALID,
  T_EOF,
  T_LINEBREAK,
  T_WS,
  T_HELP,
  T_TYPE,
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
  TAB,
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
  C_DIGIT,
  CLASS,
} = tokens;

/** promlex.l. */
export function lexText(s: Scanner, c: number): number {
  for (;;) {
    switch (s.state) {
      case S_INIT:
        if (c === HASH) {
          c = s.next();
          if (c === TAB || c === SP) {
            do c = s.next();
            while (c === TAB || c === SP);
            s.state = S_COMMENT;
            continue;
          }
          return consumeComment(s);
        }
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
        if (c === NL) {
          s.next();
          return T_LINEBREAK;
        }
        if (c === TAB || c === SP) return s.ws();
        if (c === 0) {
          s.next();
          return T_EOF;
        }
        if (c === LBRACE && s.v3) {
          s.next();
          s.state = S_LABELS;
          return T_BOPEN;
        }
        return T_INVALID;
      case S_COMMENT:
        if (c === 0x48 /* H */) {
          if (s.word("ELP")) {
            c = s.next();
            if (c === TAB || c === SP) {
              do c = s.next();
              while (c === TAB || c === SP);
              s.state = S_META1;
              return T_HELP;
            }
          }
          return consumeComment(s);
        }
        if (c === 0x54 /* T */) {
          if (s.word("YPE")) {
            c = s.next();
            if (c === TAB || c === SP) {
              do c = s.next();
              while (c === TAB || c === SP);
              s.state = S_META1;
              return T_TYPE;
            }
          }
          return consumeComment(s);
        }
        if (c === TAB || c === SP) return s.ws();
        return consumeComment(s);
      case S_META1:
        if (c === DQ && s.v3) {
          if (!s.scanQuoted(false)) return T_INVALID;
          s.state = S_META2;
          return T_MNAME;
        }
        if ((CLASS[c]! & C_M) !== 0) {
          do c = s.next();
          while ((CLASS[c]! & C_MD) !== 0);
          s.state = S_META2;
          return T_MNAME;
        }
        if (c === TAB || c === SP) return s.ws();
        return T_INVALID;
      case S_META2:
        // `[ \t]+` and `[^\n]*` compete; the longer wins, whitespace on a tie.
        if (c === TAB || c === SP) {
          do c = s.next();
          while (c === TAB || c === SP);
          if (c === 0 || c === NL) return T_WS;
        } else if (c === 0 || c === NL) {
          s.state = S_INIT;
          return T_TEXT;
        }
        do c = s.next();
        while (c !== 0 && c !== NL);
        s.state = S_INIT;
        return T_TEXT;
      case S_LABELS:
        // The same rules as in om-lexer.ts (bar blanks), kept inline for speed (see tokens.ts).
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
        if (c === TAB || c === SP) return s.ws();
        if (c === DQ && s.v3) return s.scanQuoted(false) ? T_QSTRING : T_INVALID;
        return T_INVALID;
      case S_LVALUE:
        if (c === DQ) {
          if (!s.scanQuoted(false)) return T_INVALID;
          s.state = S_LABELS;
          return T_LVALUE;
        }
        if (c === TAB || c === SP) return s.ws();
        return T_INVALID;
      case S_VALUE:
        if (c === TAB || c === SP) return s.ws();
        if (c === LBRACE) {
          s.next();
          s.state = S_LABELS;
          return T_BOPEN;
        }
        if (c !== 0 && c !== NL) {
          const b = s.b;
          const end = s.end;
          let i = s.i + 1;
          for (; i < end; i++) {
            const d = b[i]!;
            if (d === SP || d === LBRACE || d <= NL) break;
          }
          s.i = i - 1;
          do c = s.next();
          while (c !== 0 && c !== TAB && c !== NL && c !== SP && c !== LBRACE);
          s.state = S_TIMESTAMP;
          return T_VALUE;
        }
        return T_INVALID;
      case S_TIMESTAMP:
        if (c === NL) {
          s.next();
          s.state = S_INIT;
          return T_LINEBREAK;
        }
        if (c === TAB || c === SP) return s.ws();
        if ((CLASS[c]! & C_DIGIT) !== 0) {
          do c = s.next();
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
function consumeComment(s: Scanner): number {
  const b = s.b;
  const end = s.end;
  let i = s.i;
  if (i >= end) {
    s.atEnd();
    return T_EOF;
  }
  let c = b[i]!;
  for (;;) {
    if (c === NL) {
      s.i = i;
      s.state = S_INIT;
      return T_COMMENT;
    }
    if (c === 0) {
      s.i = i;
      return T_EOF;
    }
    const k = b.indexOf(NL, i + 1);
    let j = i + 1;
    const stop = k === -1 || k > end ? end : k;
    // NULs are skipped only in the sComment state; in sInit (a `#` not followed by a blank) they end the input.
    if (s.state !== S_COMMENT) {
      while (j < stop && b[j] !== 0) j++;
    } else {
      j = stop;
    }
    if (j >= end) {
      s.i = end - 1;
      s.next();
      return T_EOF;
    }
    i = j;
    c = b[i]!;
  }
}
