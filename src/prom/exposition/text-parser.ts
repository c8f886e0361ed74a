/** PromParser (model/textparse/promparse.go): text format entries, 2.42 and 3.x label syntax. */
import { int64Overflows } from "./gofloat.ts";
import type { Lexer } from "./lexer.ts";
import * as tokens from "./tokens.ts";
import { validUtf8 } from "./utf8.ts";

// Module-local copies of the shared constants, for speed (see tokens.ts).
const {
  T_EOF,
  T_LINEBREAK,
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
} = tokens;

/** PromParser.Next: 0 at the end, 1 for a non-sample entry, 2 for a sample. */
export function nextText(p: Lexer): number {
  for (;;) {
    p.beginRecord();
    const t = p.nextTok();
    switch (t) {
      case T_MNAME: {
        p.nameS = p.recStart;
        p.nameE = p.i;
        let t2 = p.nextTok();
        if (t2 === T_BOPEN) {
          if (p.v3) parseLValsText3(p);
          else parseLValsText2(p);
          t2 = p.nextTok();
        }
        parseMetricSuffix(p, t2);
        return 2;
      }
      case T_LINEBREAK:
        continue;
      case T_EOF:
        return 0;
      case T_HELP:
      case T_TYPE: {
        const what = t === T_HELP ? "HELP" : "TYPE";
        const t2 = p.nextTok();
        if (t2 !== T_MNAME) p.failTok(`expected metric name after ${what}`, t2);
        const t3 = p.nextTok();
        if (t3 !== T_TEXT) p.failTok(`expected text in ${what}`, t3);
        const ts = p.i - p.start > 1 ? p.start + 1 : p.i;
        let mt = p.mtype;
        if (t === T_TYPE) mt = p.typeOf(ts, p.i, false);
        else if (!validUtf8(p.b, ts, p.i)) p.fail("HELP text is not valid UTF-8", ts);
        const t4 = p.nextTok();
        if (t4 !== T_LINEBREAK) p.failTok("expected a line break after the metadata", t4);
        p.mtype = mt;
        return 1;
      }
      case T_COMMENT: {
        const t2 = p.nextTok();
        if (t2 !== T_LINEBREAK) p.failTok("expected a line break after the comment", t2);
        return 1;
      }
      case T_BOPEN:
        // Only the 3.x lexer produces it here: `{"metric.name", a="b"} 1`.
        parseLValsText3(p);
        parseMetricSuffix(p, p.nextTok());
        return 2;
      default:
        p.failTok("expected a metric name, a comment or a blank line", t);
    }
  }
}

/** 2.42 parseLVals: names, `=`, values, optional commas (a trailing one too). */
function parseLValsText2(p: Lexer): void {
  let t = p.nextTok();
  for (;;) {
    if (t === T_BCLOSE) return;
    if (t !== T_LNAME) p.failTok("expected label name", t);
    p.pushOff(p.start, p.i);
    t = p.nextTok();
    if (t !== T_EQUAL) p.failTok('expected "=" after the label name', t);
    t = p.nextTok();
    if (t !== T_LVALUE) p.failTok("expected a quoted label value", t);
    p.labelValue();
    t = p.nextTok();
    if (t === T_COMMA) t = p.nextTok();
  }
}

/** 3.x parseLVals: also quoted names, and a lone quoted string as the metric name. */
function parseLValsText3(p: Lexer): void {
  let t = p.nextTok();
  for (;;) {
    let cs = p.start;
    let ce = p.i;
    let quoted = false;
    if (t === T_BCLOSE) return;
    if (t === T_QSTRING) quoted = true;
    else if (t !== T_LNAME) p.failTok("expected label name", t);
    t = p.nextTok();
    if (quoted && (t === T_COMMA || t === T_BCLOSE)) {
      p.setQuotedName(cs, ce);
      if (t === T_BCLOSE) return;
      t = p.nextTok();
      continue;
    }
    if (quoted) {
      cs++;
      ce--;
      p.anyQuotedLabel = true;
    }
    p.pushOff(cs, ce);
    if (t !== T_EQUAL) p.failTok('expected "=" after the label name', t);
    t = p.nextTok();
    if (t !== T_LVALUE) p.failTok("expected a quoted label value", t);
    p.labelValue();
    t = p.nextTok();
    if (t === T_COMMA) t = p.nextTok();
  }
}

function parseMetricSuffix(p: Lexer, t: number): void {
  if (p.nameS === -1) p.fail("metric name not set", p.recStart);
  if (t !== T_VALUE) p.failTok("expected a sample value after the metric", t);
  p.checkValue(p.start, p.i, p.start);
  const t2 = p.nextTok();
  if (t2 === T_LINEBREAK) return;
  if (t2 !== T_TIMESTAMP) p.failTok("expected a timestamp or the end of the line", t2);
  if (int64Overflows(p.b, p.start, p.i)) p.fail("timestamp out of int64 range", p.start);
  const t3 = p.nextTok();
  if (t3 !== T_LINEBREAK) p.failTok("expected the end of the line after the timestamp", t3);
}
