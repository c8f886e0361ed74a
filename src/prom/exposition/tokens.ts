/**
 * The vocabulary the exposition lexers and parsers share: lexer states (the %x start
 * conditions of promlex.l and openmetricslex.l), tokens, metric types, bytes and the
 * character-class table.
 *
 * Importers take them as `import * as tokens` and copy what they use into module constants
 * (`const { NL, T_WS } = tokens;`): V8 folds a module's own constants into optimized code but
 * loads an imported binding, with its initialization check, on every use — in the lexers'
 * loops that cost ~20 % of parse time (bench/parser.bench.ts). For the same reason the lexers
 * scan name runs and the label state inline rather than through a shared method (~4-6 %).
 */

// Lexer start conditions (the %x states of promlex.l / openmetricslex.l).
export const S_INIT = 0;
export const S_COMMENT = 1;
export const S_META1 = 2;
export const S_META2 = 3;
export const S_LABELS = 4;
export const S_LVALUE = 5;
export const S_VALUE = 6;
export const S_TIMESTAMP = 7;
export const S_EXEMPLAR = 8;
export const S_EVALUE = 9;
export const S_ETIMESTAMP = 10;

// Tokens.
export const T_INVALID = -1;
export const T_EOF = 0;
export const T_LINEBREAK = 1;
export const T_WS = 2;
export const T_HELP = 3;
export const T_TYPE = 4;
export const T_UNIT = 5;
export const T_EOFWORD = 6;
export const T_TEXT = 7;
export const T_COMMENT = 8;
export const T_MNAME = 9;
export const T_QSTRING = 10;
export const T_BOPEN = 11;
export const T_BCLOSE = 12;
export const T_LNAME = 13;
export const T_LVALUE = 14;
export const T_COMMA = 15;
export const T_EQUAL = 16;
export const T_TIMESTAMP = 17;
export const T_VALUE = 18;

export const TOKEN_NAMES = [
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
export const M_UNKNOWN = 0;
export const M_COUNTER = 1;
export const M_GAUGE = 2;
export const M_HISTOGRAM = 3;
export const M_SUMMARY = 4;
export const M_GAUGEHISTOGRAM = 5;
export const M_INFO = 6;
export const M_STATESET = 7;

export const NL = 0x0a;
export const TAB = 0x09;
export const SP = 0x20;
export const DQ = 0x22;
export const HASH = 0x23;
export const COMMA = 0x2c;
export const EQ = 0x3d;
export const BSLASH = 0x5c;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;

// Character classes, one table lookup each.
export const C_M = 1; // [a-zA-Z_:]
export const C_MD = 2; // [a-zA-Z_:0-9]
export const C_L = 4; // [a-zA-Z_]
export const C_LD = 8; // [a-zA-Z_0-9]
export const C_DIGIT = 16;
export const CLASS = new Uint8Array(256);
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
export const NEED_MORE: unique symbol = Symbol("need more input");

export function isMetricStart(c: number): boolean {
  return (CLASS[c]! & C_M) !== 0;
}

export function latin1Eq(b: Uint8Array, at: number, s: string): boolean {
  for (let k = 0; k < s.length; k++) if (b[at + k] !== s.charCodeAt(k)) return false;
  return true;
}
