/** OpenMetricsParser (model/textparse/openmetricsparse.go): entries, exemplars, `# EOF`, _created lines. */
import { FLOAT_NONFINITE } from "./gofloat.ts";
import type { Lexer } from "./lexer.ts";
import * as tokens from "./tokens.ts";
import { validUtf8 } from "./utf8.ts";

// Module-local copies of the shared constants, for speed (see tokens.ts).
const {
  T_INVALID,
  T_EOF,
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
  M_COUNTER,
  M_HISTOGRAM,
  M_SUMMARY,
  DQ,
  latin1Eq,
} = tokens;

/** OpenMetricsParser.Next. */
export function nextOM(p: Lexer): number {
  for (;;) {
    p.beginRecord();
    const t = p.lex();
    switch (t) {
      case T_MNAME: {
        p.nameS = p.recStart;
        p.nameE = p.i;
        let t2 = p.lex();
        if (t2 === T_BOPEN) {
          if (p.v3) parseLValsOM3(p, false);
          else parseLValsOM2(p);
          t2 = p.lex();
        }
        seriesEndOfLine(p, t2);
        if (skipCreated(p)) continue;
        return 2;
      }
      case T_EOFWORD:
        if (p.lex() !== T_EOF) p.fail("unexpected data after # EOF", p.i);
        return 0;
      case T_EOF:
        return p.fail("data does not end with # EOF", p.i);
      case T_HELP:
      case T_TYPE:
      case T_UNIT: {
        const what = t === T_HELP ? "HELP" : t === T_TYPE ? "TYPE" : "UNIT";
        const t2 = p.lex();
        if (t2 !== T_MNAME) p.failTok(`expected metric name after ${what}`, t2);
        let ms = p.start;
        let me = p.i;
        if (p.b[ms] === DQ && p.b[me - 1] === DQ) {
          ms++;
          me--;
        }
        const t3 = p.lex();
        if (t3 !== T_TEXT) p.failTok(`expected text in ${what}`, t3);
        const ts = p.i - p.start > 1 ? p.start + 1 : p.i;
        const te = p.i - p.start > 1 ? p.i - 1 : p.i;
        if (t === T_TYPE) p.mtype = p.typeOf(ts, te, true);
        else if (t === T_HELP) {
          if (!validUtf8(p.b, ts, te)) p.fail("HELP text is not valid UTF-8", ts);
        } else if (te > ts) {
          const n = te - ts;
          let ok = me - ms >= n + 1 && p.b[me - n - 1] === 0x5f;
          for (let k = 0; ok && k < n; k++) ok = p.b[me - n + k] === p.b[ts + k];
          if (!ok) p.fail("unit is not a suffix of the metric name", ts);
        }
        return 1;
      }
      case T_BOPEN:
        parseLValsOM3(p, false);
        seriesEndOfLine(p, p.lex());
        if (skipCreated(p)) continue;
        return 2;
      default:
        p.failTok("expected a metric name, # HELP, # TYPE, # UNIT or # EOF", t);
    }
  }
}

function skipCreated(p: Lexer): boolean {
  if (!p.cfg.skipCreatedSeries) return false;
  const m = p.mtype;
  if (m !== M_COUNTER && m !== M_SUMMARY && m !== M_HISTOGRAM) return false;
  const e = p.nameE;
  if (e - p.nameS < 8) return false;
  const b = p.b;
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
function parseLValsOM2(p: Lexer, exemplar = false): void {
  let first = true;
  for (;;) {
    let t = p.lex();
    if (t === T_BCLOSE) return;
    if (t === T_COMMA) {
      if (first) p.failTok("expected label name or closing brace", t);
      t = p.lex();
      if (t !== T_LNAME) p.failTok("expected label name", t);
    } else if (t === T_LNAME) {
      if (!first) p.failTok("expected comma", t);
    } else {
      p.failTok(first ? "expected label name or closing brace" : "expected comma or closing brace", t);
    }
    first = false;
    if (!exemplar) p.pushOff(p.start, p.i);
    if (p.lex() !== T_EQUAL) p.failTok('expected "=" after the label name', T_INVALID);
    const t2 = p.lex();
    if (t2 !== T_LVALUE) p.failTok("expected a quoted label value", t2);
    if (exemplar) {
      if (!validUtf8(p.b, p.start, p.i)) p.fail("label value is not valid UTF-8", p.start);
    } else p.labelValue();
  }
}

/** 3.x: quoted names, a lone quoted metric name, trailing comma allowed. */
function parseLValsOM3(p: Lexer, exemplar: boolean): void {
  let t = p.lex();
  for (;;) {
    let cs = p.start;
    let ce = p.i;
    let quoted = false;
    if (t === T_BCLOSE) return;
    if (t === T_QSTRING) quoted = true;
    else if (t !== T_LNAME) p.failTok("expected label name", t);
    t = p.lex();
    if (quoted && (t === T_COMMA || t === T_BCLOSE)) {
      if (exemplar) p.failTok("expected label name", t);
      p.setQuotedName(cs, ce);
      if (t === T_BCLOSE) return;
      t = p.lex();
      continue;
    }
    if (quoted) {
      cs++;
      ce--;
      if (!exemplar) p.anyQuotedLabel = true;
    }
    if (!exemplar) p.pushOff(cs, ce);
    if (t !== T_EQUAL) p.failTok('expected "=" after the label name', t);
    t = p.lex();
    if (t !== T_LVALUE) p.failTok("expected a quoted label value", t);
    if (exemplar) {
      if (!validUtf8(p.b, p.start, p.i)) p.fail("label value is not valid UTF-8", p.start);
    } else p.labelValue();
    t = p.lex();
    if (t === T_COMMA) t = p.lex();
    else if (t !== T_BCLOSE) p.failTok("expected comma or closing brace", t);
  }
}

function omFloat(p: Lexer, what: string, t: number, after: string): void {
  if (t !== T_VALUE) p.failTok(`expected ${what} after ${after}`, t);
  p.checkValue(p.start + 1, p.i, p.start);
}

function omTimestamp(p: Lexer, what: string): void {
  if (p.checkValue(p.start + 1, p.i, p.start) === FLOAT_NONFINITE) {
    p.fail(`invalid ${what}: must be finite`, p.start);
  }
}

function seriesEndOfLine(p: Lexer, t: number): void {
  if (p.nameS === -1) p.fail("metric name not set", p.recStart);
  omFloat(p, "a sample value", t, "the metric");
  const t2 = p.lex();
  switch (t2) {
    case T_LINEBREAK:
      return;
    case T_EOF:
      p.fail("data does not end with # EOF", p.i);
      return;
    case T_COMMENT:
      parseExemplar(p);
      return;
    case T_TIMESTAMP: {
      omTimestamp(p, "timestamp");
      const t3 = p.lex();
      if (t3 === T_LINEBREAK) return;
      if (t3 === T_COMMENT) {
        parseExemplar(p);
        return;
      }
      p.failTok("expected the end of the line or an exemplar after the timestamp", t3);
      return;
    }
    default:
      // Prometheus 3.x has no default branch here: whatever follows is left to the next entry.
      if (!p.v3) p.failTok("expected a timestamp or an exemplar", t2);
  }
}

function parseExemplar(p: Lexer): void {
  if (!p.v3) {
    const b = p.b;
    const e = p.nameE;
    const n = e - p.nameS;
    const total = n >= 6 && latin1Eq(b, e - 6, "_total");
    const bucket = n >= 7 && latin1Eq(b, e - 7, "_bucket");
    if (!total && !bucket) p.fail("only _total and _bucket series can have exemplars", p.start);
    parseLValsOM2(p, true);
  } else {
    parseLValsOM3(p, true);
  }
  omFloat(p, "an exemplar value", p.lex(), "the exemplar labels");
  const t2 = p.lex();
  if (t2 === T_LINEBREAK) return;
  if (t2 === T_EOF) p.fail("data does not end with # EOF", p.i);
  if (t2 !== T_TIMESTAMP) p.failTok("expected an exemplar timestamp or the end of the line", t2);
  omTimestamp(p, "exemplar timestamp");
  const t3 = p.lex();
  if (t3 !== T_LINEBREAK) p.failTok("expected the end of the line after the exemplar timestamp", t3);
}
