/**
 * Kubernetes label and field selector syntax, checked as apimachinery's labels.Parse and
 * fields.ParseSelector (v0.37, the version Prometheus 3.16 builds with) check it, with the
 * same error messages. Only validity is needed here: the API server does the matching.
 */
import { goQuote } from "../go-quote.ts";
import { compareNames } from "../labels.ts";

/** A parsed label selector requirement. */
export interface LabelRequirement {
  readonly key: string;
  readonly operator: "in" | "notin" | "=" | "==" | "!=" | "gt" | "lt" | "exists" | "!";
  readonly values: readonly string[];
}

/** fields.ParseSelector's terms: field, operator, unescaped value. */
export interface FieldRequirement {
  readonly field: string;
  readonly operator: "=" | "==" | "!=";
  readonly value: string;
}

export type SelectorResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

// ---------------------------------------------------------------------------------------
// Go formatting helpers

const utf8 = new TextEncoder();

function byteLength(s: string): number {
  return utf8.encode(s).length;
}

/** field.Invalid(path, value, detail).Error(). */
function invalid(path: string, value: string | readonly string[], detail: string): string {
  const shown = typeof value === "string" ? goQuote(value) : JSON.stringify(value);
  return `${path}: Invalid value: ${shown}${detail ? `: ${detail}` : ""}`;
}

/** utilerrors.NewAggregate(list).Error(), after ErrorList.ToAggregate's de-duplication. */
function aggregate(messages: readonly string[]): string | undefined {
  const unique = [...new Set(messages)];
  if (unique.length === 0) return undefined;
  return unique.length === 1 ? unique[0] : `[${unique.join(", ")}]`;
}

function regexError(msg: string, re: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${re}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(" or ")}regex used for validation is '${re}')`;
}

// ---------------------------------------------------------------------------------------
// Label keys and values (apimachinery api/validate/content)

const LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_RE = new RegExp(`^${LABEL_KEY_FMT}$`);
const LABEL_KEY_ERR =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT = `(${LABEL_KEY_FMT})?`;
const LABEL_VALUE_RE = new RegExp(`^${LABEL_VALUE_FMT}$`);
const LABEL_VALUE_ERR =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
const DNS1123_SUBDOMAIN_ERR =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

function isDns1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 253) errs.push("must be no more than 253 bytes");
  if (!DNS1123_SUBDOMAIN_RE.test(value))
    errs.push(regexError(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, "example.com"));
  return errs;
}

/** content.IsLabelKey: `[prefix/]name`, the prefix a DNS subdomain, the name at most 63 bytes. */
export function labelKeyErrors(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split("/");
  let name: string;
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push("prefix part must be non-empty");
    else for (const m of isDns1123Subdomain(prefix)) errs.push(`prefix part ${m}`);
  } else {
    return [
      `a valid label key ${regexError(LABEL_KEY_ERR, LABEL_KEY_FMT, "MyName", "my.name", "123-abc")} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push("name part must be non-empty");
  else if (byteLength(name) > 63) errs.push("name part must be no more than 63 bytes");
  if (!LABEL_KEY_RE.test(name))
    errs.push(`name part ${regexError(LABEL_KEY_ERR, LABEL_KEY_FMT, "MyName", "my.name", "123-abc")}`);
  return errs;
}

/** content.IsLabelValue: empty, or at most 63 bytes of `[-A-Za-z0-9_.]` starting and ending alphanumeric. */
export function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push("must be no more than 63 bytes");
  if (!LABEL_VALUE_RE.test(value))
    errs.push(regexError(LABEL_VALUE_ERR, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"));
  return errs;
}

// ---------------------------------------------------------------------------------------
// labels.Parse

const enum_ = {
  Error: 0,
  End: 1,
  ClosedPar: 2,
  Comma: 3,
  DoesNotExist: 4,
  DoubleEquals: 5,
  Equals: 6,
  GreaterThan: 7,
  Identifier: 8,
  In: 9,
  LessThan: 10,
  NotEquals: 11,
  NotIn: 12,
  OpenPar: 13,
} as const;
type Token = (typeof enum_)[keyof typeof enum_];
const T = enum_;

const STRING_TO_TOKEN: ReadonlyMap<string, Token> = new Map([
  [")", T.ClosedPar],
  [",", T.Comma],
  ["!", T.DoesNotExist],
  ["==", T.DoubleEquals],
  ["=", T.Equals],
  [">", T.GreaterThan],
  ["in", T.In],
  ["<", T.LessThan],
  ["!=", T.NotEquals],
  ["notin", T.NotIn],
  ["(", T.OpenPar],
]);

const isWhitespace = (ch: string) => ch === " " || ch === "\t" || ch === "\r" || ch === "\n";
const isSpecial = (ch: string) => "=!(),><".includes(ch) && ch.length === 1;

/** Tokenizes like apimachinery's Lexer (bytewise; a NUL ends the input). */
function lex(s: string): { tok: Token; lit: string }[] {
  let pos = 0;
  const read = (): string => (pos < s.length ? s[pos++]! : "\0");
  const items: { tok: Token; lit: string }[] = [];
  for (;;) {
    let ch = read();
    while (isWhitespace(ch)) ch = read();
    if (ch === "\0") {
      items.push({ tok: T.End, lit: "" });
      return items;
    }
    pos--;
    if (isSpecial(ch)) {
      let buffer = "";
      let last: { tok: Token; lit: string } | undefined;
      for (;;) {
        const c = read();
        if (c === "\0") break;
        if (isSpecial(c)) {
          buffer += c;
          const tok = STRING_TO_TOKEN.get(buffer);
          if (tok !== undefined) last = { tok, lit: buffer };
          else if (last) {
            pos--;
            break;
          }
        } else {
          pos--;
          break;
        }
      }
      items.push(last ?? { tok: T.Error, lit: `error expected: keyword found '${buffer}'` });
    } else {
      let buffer = "";
      for (;;) {
        const c = read();
        if (c === "\0") break;
        if (isSpecial(c) || isWhitespace(c)) {
          pos--;
          break;
        }
        buffer += c;
      }
      items.push({ tok: STRING_TO_TOKEN.get(buffer) ?? T.Identifier, lit: buffer });
    }
  }
}

const BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt";

class SelectorError extends Error {}

/** labels.Parse: the requirements of a label selector, sorted by key, or the parse error. */
export function parseLabelSelector(selector: string): SelectorResult<LabelRequirement[]> {
  const items = lex(selector);
  let position = 0;
  const asValue = (tok: Token): Token => (tok === T.In || tok === T.NotIn ? T.Identifier : tok);
  const lookahead = (values: boolean) => {
    const it = items[position]!;
    return { tok: values ? asValue(it.tok) : it.tok, lit: it.lit };
  };
  const consume = (values: boolean) => {
    const it = items[position++]!;
    return { tok: values ? asValue(it.tok) : it.tok, lit: it.lit };
  };
  const fail = (message: string): never => {
    throw new SelectorError(message);
  };

  const parseKeyAndInferOperator = (): { key: string; op: LabelRequirement["operator"] | "" } => {
    let op: LabelRequirement["operator"] | "" = "";
    let { tok, lit } = consume(true);
    if (tok === T.DoesNotExist) {
      op = "!";
      ({ tok, lit } = consume(true));
    }
    if (tok !== T.Identifier) fail(`found '${lit}', expected: identifier`);
    const errs = labelKeyErrors(lit);
    if (errs.length > 0) fail(invalid("<nil>", lit, errs.join("; ")));
    const next = lookahead(true).tok;
    if ((next === T.End || next === T.Comma) && op !== "!") op = "exists";
    return { key: lit, op };
  };

  const parseIdentifiersList = (): Set<string> => {
    const s = new Set<string>();
    for (;;) {
      const { tok, lit } = consume(true);
      if (tok === T.Identifier) {
        s.add(lit);
        const next = lookahead(true);
        if (next.tok === T.Comma) continue;
        if (next.tok === T.ClosedPar) return s;
        fail(`found '${next.lit}', expected: ',' or ')'`);
      } else if (tok === T.Comma) {
        if (s.size === 0) s.add("");
        const next = lookahead(true).tok;
        if (next === T.ClosedPar) {
          s.add("");
          return s;
        }
        if (next === T.Comma) s.add("");
      } else {
        fail(`found '${lit}', expected: ',', or identifier`);
      }
    }
  };

  const parseValues = (): Set<string> => {
    const open = consume(true);
    if (open.tok !== T.OpenPar) fail(`found '${open.lit}' expected: '('`);
    const { tok, lit } = lookahead(true);
    if (tok === T.Identifier || tok === T.Comma) {
      const s = parseIdentifiersList();
      if (consume(true).tok !== T.ClosedPar) fail(`found '${lit}', expected: ')'`);
      return s;
    }
    if (tok === T.ClosedPar) {
      consume(true);
      return new Set([""]);
    }
    return fail(`found '${lit}', expected: ',', ')' or identifier`);
  };

  const parseExactValue = (): Set<string> => {
    const next = lookahead(true).tok;
    if (next === T.End || next === T.Comma) return new Set([""]);
    const { tok, lit } = consume(true);
    if (tok === T.Identifier) return new Set([lit]);
    return fail(`found '${lit}', expected: identifier`);
  };

  const OPERATORS = new Map<Token, LabelRequirement["operator"]>([
    [T.In, "in"],
    [T.Equals, "="],
    [T.DoubleEquals, "=="],
    [T.GreaterThan, "gt"],
    [T.LessThan, "lt"],
    [T.NotIn, "notin"],
    [T.NotEquals, "!="],
  ]);

  const newRequirement = (key: string, op: LabelRequirement["operator"], values: string[]): LabelRequirement => {
    const errs: string[] = [];
    if ((op === "gt" || op === "lt") && values.length === 1 && !/^[+-]?\d+$/.test(values[0]!)) {
      errs.push(invalid("values[0]", values[0]!, "for 'Gt', 'Lt' operators, the value must be an integer"));
    }
    if ((op === "gt" || op === "lt") && values.length === 1 && /^[+-]?\d+$/.test(values[0]!)) {
      const n = BigInt(values[0]!);
      if (n > 9223372036854775807n || n < -9223372036854775808n) {
        errs.push(invalid("values[0]", values[0]!, "for 'Gt', 'Lt' operators, the value must be an integer"));
      }
    }
    values.forEach((v, i) => {
      const ve = labelValueErrors(v);
      if (ve.length > 0) errs.push(invalid(`values[${i}][${key}]`, v, ve.join("; ")));
    });
    const agg = aggregate(errs);
    if (agg !== undefined) fail(agg);
    return { key, operator: op, values };
  };

  const parseRequirement = (): LabelRequirement => {
    const { key, op } = parseKeyAndInferOperator();
    if (op === "exists" || op === "!") return newRequirement(key, op, []);
    const { tok, lit } = consume(false);
    const operator = OPERATORS.get(tok);
    if (operator === undefined) return fail(`found '${lit}', expected: ${BINARY_OPERATORS}`);
    const values = operator === "in" || operator === "notin" ? parseValues() : parseExactValue();
    return newRequirement(key, operator, [...values].sort(compareNames));
  };

  const requirements: LabelRequirement[] = [];
  try {
    for (;;) {
      const { tok, lit } = lookahead(true);
      if (tok === T.Identifier || tok === T.DoesNotExist) {
        let r: LabelRequirement;
        try {
          r = parseRequirement();
        } catch (err) {
          if (err instanceof SelectorError) fail(`unable to parse requirement: ${err.message}`);
          throw err;
        }
        requirements.push(r!);
        const after = consume(true);
        if (after.tok === T.End) break;
        if (after.tok === T.Comma) {
          const next = lookahead(true);
          if (next.tok !== T.Identifier && next.tok !== T.DoesNotExist) {
            fail(`found '${next.lit}', expected: identifier after ','`);
          }
        } else {
          fail(`found '${after.lit}', expected: ',' or 'end of string'`);
        }
      } else if (tok === T.End) {
        break;
      } else {
        fail(`found '${lit}', expected: !, identifier, or 'end of string'`);
      }
    }
  } catch (err) {
    if (err instanceof SelectorError) return { ok: false, error: err.message };
    throw err;
  }
  requirements.sort((a, b) => compareNames(a.key, b.key));
  return { ok: true, value: requirements };
}

// ---------------------------------------------------------------------------------------
// fields.ParseSelector

/** Splits on commas not escaped by a backslash; escapes stay in the terms. */
function splitTerms(selector: string): string[] {
  if (selector.length === 0) return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (inSlash) inSlash = false;
    else if (c === "\\") inSlash = true;
    else if (c === ",") {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms;
}

function unescapeValue(s: string): SelectorResult<string> {
  if (!/[\\,=]/.test(s)) return { ok: true, value: s };
  let v = "";
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c === "\\" || c === "," || c === "=") v += c;
      else return { ok: false, error: `invalid field selector: invalid escape sequence: \\${c}` };
      inSlash = false;
      continue;
    }
    if (c === "\\") inSlash = true;
    else if (c === "," || c === "=") {
      return { ok: false, error: `invalid field selector: unescaped character in value: ${c.codePointAt(0)}` };
    } else v += c;
  }
  if (inSlash) return { ok: false, error: "invalid field selector: invalid escape sequence: \\" };
  return { ok: true, value: v };
}

/** fields.ParseSelector: `field=value`, `field==value`, `field!=value` terms joined by commas. */
export function parseFieldSelector(selector: string): SelectorResult<FieldRequirement[]> {
  const parts = splitTerms(selector).sort(compareNames);
  const out: FieldRequirement[] = [];
  for (const part of parts) {
    if (part === "") continue;
    let split: { lhs: string; op: FieldRequirement["operator"]; rhs: string } | undefined;
    outer: for (let i = 0; i < part.length; i++) {
      for (const op of ["!=", "==", "="] as const) {
        if (part.startsWith(op, i)) {
          split = { lhs: part.slice(0, i), op, rhs: part.slice(i + op.length) };
          break outer;
        }
      }
    }
    if (!split) return { ok: false, error: `invalid selector: '${selector}'; can't understand '${part}'` };
    const value = unescapeValue(split.rhs);
    if (!value.ok) return value;
    out.push({ field: split.lhs, operator: split.op, value: value.value });
  }
  return { ok: true, value: out };
}
