/**
 * src/prom/regex.ts against Go's regexp: table-driven tests with Go's own answers, then a
 * differential property test that asks Go itself (tools/regexoracle, built here into
 * ~/.cache/promshard-tools) about thousands of generated regexes, inputs and templates.
 *
 * Env: REGEX_FUZZ_RUNS (cases per dialect, default 2500), REGEX_FUZZ_SEED (fast-check seed).
 */
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { PromshardError } from "../../src/errors.ts";
import { compileRelabelRegex, type PromRegex } from "../../src/prom/regex.ts";
import { jsSubset } from "../../src/prom/regex-js.ts";
import { JsRegex } from "../../src/prom/regex-match.ts";
import { dialectFor, type PromDialect } from "../../src/prom/version.ts";

const V2 = dialectFor("2.42");
const V3 = dialectFor("3.16");

interface Outcome {
  error: string | null;
  matches?: boolean;
  groups?: (string | null)[] | null;
  expand?: string | null;
  replaceAll?: string | null;
}

/** Everything our module says about (regex, input, template), in the oracle's shape. */
function ours(source: string, dialect: PromDialect, input: string, template: string): Outcome {
  let re: PromRegex;
  try {
    re = compileRelabelRegex(source, dialect, "test.regex");
  } catch (e) {
    assert.ok(e instanceof PromshardError, `unexpected ${String(e)}`);
    assert.equal(e.code, "regex_invalid");
    assert.equal(e.path, "test.regex");
    return { error: (e.cause as Error).message };
  }
  const m = re.match(input);
  return {
    error: null,
    matches: re.matches(input),
    groups: m === null ? null : m.groups.map((g) => g ?? null),
    expand: m === null ? null : re.expand(template, m),
    replaceAll: re.replaceAll(input, template),
  };
}

function compileError(source: string, dialect: PromDialect): string {
  const out = ours(source, dialect, "", "");
  assert.notEqual(out.error, null, `${JSON.stringify(source)} should not compile under ${dialect.version}`);
  return out.error as string;
}

// ---------------------------------------------------------------------------------------------
// Semantics, with the answers Go 1.26 gives (Go 1.19's where 2.x differs, marked).

describe("anchoring as relabel.NewRegexp", () => {
  test("2.x is ^(?:re)$, 3.x is ^(?s:re)$", () => {
    assert.equal(compileRelabelRegex("a.c", V2).matches("a\nc"), false);
    assert.equal(compileRelabelRegex("a.c", V3).matches("a\nc"), true);
    assert.equal(compileRelabelRegex("(?s)a.c", V2).matches("a\nc"), true);
    assert.equal(compileRelabelRegex("(?-s)a.c", V3).matches("a\nc"), false);
    // `.` excludes only \n, as in Go.
    assert.equal(compileRelabelRegex("a.c", V2).matches("a\rc"), true);
    assert.equal(compileRelabelRegex("a.c", V2).matches("a\u2028c"), true);
  });

  test("the whole string must match, alternation included", () => {
    for (const d of [V2, V3]) {
      assert.equal(compileRelabelRegex("foo", d).matches("foobar"), false);
      assert.equal(compileRelabelRegex("a|b", d).matches("ab"), false);
      assert.equal(compileRelabelRegex("a|b", d).matches("b"), true);
      assert.equal(compileRelabelRegex("", d).matches(""), true);
      assert.equal(compileRelabelRegex("", d).matches("x"), false);
      assert.equal(compileRelabelRegex("a|", d).matches(""), true);
    }
  });

  test("a regex that closes Prometheus's group is no longer anchored, as in Prometheus", () => {
    // ^(?s:a)|(b)$ — Go accepts it; MatchString searches, replaceAll replaces every match.
    const re = compileRelabelRegex("a)|(b", V3);
    assert.equal(re.matches("xbb"), true);
    assert.deepEqual(re.match("xbb")?.groups, ["b", "b"]);
    assert.equal(re.replaceAll("xbb", "[$1]"), "xb[b]");
    assert.equal(compileRelabelRegex("a)|(?m)(b", V2).replaceAll("xb\nb", "[$0]"), "x[b]\n[b]");
  });

  test("source is kept verbatim", () => {
    assert.equal(compileRelabelRegex("(.*)", V3).source, "(.*)");
    assert.equal(compileRelabelRegex(" a ", V3).source, " a ");
  });
});

describe("compile errors", () => {
  test("quote the regex and Go's reason, with the path", () => {
    assert.throws(
      () => compileRelabelRegex("a(b", V2, "scrape_configs[0].relabel_configs[1].regex"),
      (e: unknown) => {
        assert.ok(e instanceof PromshardError);
        assert.equal(e.code, "regex_invalid");
        assert.equal(e.path, "scrape_configs[0].relabel_configs[1].regex");
        assert.equal(
          e.message,
          'scrape_configs[0].relabel_configs[1].regex: invalid regex "a(b": missing closing ): `^(?:a(b)$`',
        );
        assert.equal((e.cause as Error).message, "error parsing regexp: missing closing ): `^(?:a(b)$`");
        return true;
      },
    );
  });

  // [regex, Go's error] for both dialects.
  const rejected: [string, string][] = [
    ["a{1001}", "invalid repeat count: `{1001}`"],
    ["(a{1000}){2}", "invalid repeat count: `{2}`"],
    ["x{2,1}", "invalid repeat count: `{2,1}`"],
    ["\\C", "invalid escape sequence: `\\C`"],
    ["\\Z", "invalid escape sequence: `\\Z`"],
    ["\\8", "invalid escape sequence: `\\8`"],
    ["\\1", "invalid escape sequence: `\\1`"],
    ["\\e", "invalid escape sequence: `\\e`"],
    ["\\x{110000}", "invalid escape sequence: `\\x{110000`"],
    ["a**", "invalid nested repetition operator: `**`"],
    ["a++", "invalid nested repetition operator: `++`"],
    ["a{2}{3}", "invalid nested repetition operator: `{2}{3}`"],
    ["*a", "missing argument to repetition operator: `*`"],
    ["(?=a)", "invalid or unsupported Perl syntax: `(?=`"],
    ["(?!a)", "invalid or unsupported Perl syntax: `(?!`"],
    ["(?P=n)", "invalid or unsupported Perl syntax: `(?P`"],
    ["(?P<>a)", "invalid named capture: `(?P<>`"],
    ["(?P<a-b>a)", "invalid named capture: `(?P<a-b>`"],
    ["[z-a]", "invalid character class range: `z-a`"],
    ["[[:foo:]]", "invalid character class range: `[:foo:]`"],
    ["[a-\\d]", "invalid escape sequence: `\\d`"],
    ["\\p{Foo}", "invalid character class range: `\\p{Foo}`"],
    ["\\p{Emoji}", "invalid character class range: `\\p{Emoji}`"],
    ["\\p{Garay}", "invalid character class range: `\\p{Garay}`"],
    ["\\p{L&}", "invalid character class range: `\\p{L&}`"],
  ];
  for (const [source, reason] of rejected) {
    test(`rejects ${source}`, () => {
      assert.equal(compileError(source, V2), `error parsing regexp: ${reason}`);
      assert.equal(compileError(source, V3), `error parsing regexp: ${reason}`);
    });
  }

  test("errors that quote the whole regex quote Prometheus's anchored form", () => {
    assert.equal(compileError("a)", V3), "error parsing regexp: unexpected ): `^(?s:a))$`");
    assert.equal(compileError("\\Qa.b", V2), "error parsing regexp: missing closing ): `^(?:\\Qa.b)$`");
    assert.equal(compileError("[]", V2), "error parsing regexp: missing closing ]: `[])$`");
  });

  test("lookbehinds are rejected (re2js only has them behind a flag)", () => {
    assert.equal(compileError("(?<=a)b", V3), "error parsing regexp: invalid named capture: `(?<=a)b)$`");
    assert.match(compileError("(?<!a)b", V2), /invalid or unsupported Perl syntax/);
  });

  test("a regex that is not well-formed UTF-16 is invalid UTF-8 to Go", () => {
    assert.equal(compileError("x\ud800y", V3), "error parsing regexp: invalid UTF-8: `\ufffdy`");
  });
});

describe("accepted syntax, as Go", () => {
  // [regex, input, groups] (groups null = no match), same in both dialects.
  const cases: [string, string, (string | null)[] | null][] = [
    ["\\pN", "1", ["1"]],
    ["\\p{Greek}+", "αβ", ["αβ"]],
    ["\\PL", "1", ["1"]],
    ["\\p{^Greek}", "a", ["a"]],
    ["(?U)(a+)(a*)", "aaa", ["aaa", "a", "aa"]],
    ["(a+?)(a*)", "aaa", ["aaa", "a", "aa"]],
    ["\\Qa.b\\E", "a.b", ["a.b"]],
    ["\\Qa.b\\E", "axb", null],
    ["a\\z", "a", ["a"]],
    ["\\Aa", "a", ["a"]],
    ["a|", "", [""]],
    ["|", "", [""]],
    ["[[:word:]]+", "a_1", ["a_1"]],
    ["[[:^alpha:]]", "1", ["1"]],
    ["[]a]", "]", ["]"]],
    ["[^]a]", "b", ["b"]],
    ["^*", "", [""]],
    ["\\b*", "", [""]],
    ["()+", "", ["", ""]],
    ["(|a)*", "aa", ["aa", "a"]],
    ["\\07", "\u0007", ["\u0007"]],
    ["\\a\\f\\t\\n\\r\\v", "\u0007\f\t\n\r\u000b", ["\u0007\f\t\n\r\u000b"]],
    ["\\x{1F600}", "😀", ["😀"]],
    ["x{1000}", "x".repeat(1000), ["x".repeat(1000)]],
    // \d, \w, \s and \b are ASCII-only in Go; [[:space:]] has \v, \s does not.
    ["\\d", "١", null],
    ["\\w", "é", null],
    ["\\s", "\u000b", null],
    ["[[:space:]]", "\u000b", ["\u000b"]],
    ["a\\b", "aé", null],
    // Case folding uses Unicode simple folding orbits.
    ["(?i)k", "\u212a", ["\u212a"]],
    ["(?i)s", "ſ", ["ſ"]],
    ["(?i)Σ", "ς", ["ς"]],
    ["(?i)ǅ", "ǆ", ["ǆ"]],
    ["(?i)[^k]", "\u212a", null],
    ["(?i)𐐀", "𐐨", ["𐐨"]],
    // Leftmost-first submatches, not leftmost-longest; a repeated group keeps its last match.
    ["(a|ab)(c|bcd)(d*)", "abcd", ["abcd", "a", "bcd", ""]],
    ["(?:(a)|b)+", "ab", ["ab", "a"]],
    ["(a*)*", "", ["", ""]],
    ["(a+)(b)?", "aa", ["aa", "aa", null]],
    ["([^:]+)(?::\\d+)?;(\\d+)", "10.0.0.1:8080;9090", ["10.0.0.1:8080;9090", "10.0.0.1", "9090"]],
    // Go accepts duplicate group names.
    ["(?P<n>a)(?P<n>b)", "ab", ["ab", "a", "b"]],
    ["(?P<1>x)(y)", "xy", ["xy", "x", "y"]],
  ];
  for (const [source, input, groups] of cases) {
    test(`${source} on ${JSON.stringify(input)}`, () => {
      for (const d of [V2, V3]) {
        const re = compileRelabelRegex(source, d);
        assert.deepEqual(
          re.match(input)?.groups.map((g) => g ?? null) ?? null,
          groups,
          `${d.version}: ${source} on ${input}`,
        );
        assert.equal(re.matches(input), groups !== null);
      }
    });
  }
});

describe("Go version differences between the dialects", () => {
  test("(?<name>…) needs Go 1.22: rejected for 2.x as Go 1.19 does, accepted for 3.x", () => {
    assert.equal(compileError("(?<x>a)", V2), "error parsing regexp: invalid or unsupported Perl syntax: `(?<`");
    assert.deepEqual(compileRelabelRegex("(?<x>a)", V3).match("a")?.groups, ["a", "a"]);
    // Not a group opener: escaped, in a class, quoted.
    assert.equal(compileRelabelRegex("\\(?<x>", V2).matches("<x>"), true);
    assert.equal(compileRelabelRegex("[(?<]+", V2).matches("(?<"), true);
    assert.equal(compileRelabelRegex("\\Q(?<\\E", V2).matches("(?<"), true);
    assert.equal(compileRelabelRegex("(?P<x>a)", V2).matches("a"), true);
  });

  test("\\p names: Go 1.25+ (3.x) canonicalizes and knows aliases; Go 1.19 (2.x) takes exact names", () => {
    const modernOnly = [
      "\\p{Letter}",
      "\\p{letter}",
      "\\pl",
      "\\p{latin}",
      "\\p{GREEK}",
      "\\p{L_u}",
      "\\p{^ greek}",
      "\\p{Cased_Letter}",
      "\\p{LC}",
      "\\p{Lc}",
      "\\p{Cn}",
      "\\p{Unassigned}",
      "\\p{ASCII}",
      "\\p{Assigned}",
      "\\p{digit}",
      "\\p{Kawi}",
    ];
    for (const re of modernOnly) {
      compileRelabelRegex(re, V3);
      assert.match(compileError(re, V2), /invalid character class range/, re);
    }
    // Go 1.25+ looks canonical names up in maps keyed "Old_Italic": scripts with _ became unusable.
    for (const re of ["\\p{Old_Italic}", "\\p{Nag_Mundari}", "\\p{Canadian_Aboriginal}"]) {
      assert.match(compileError(re, V3), /invalid character class range/, re);
    }
    compileRelabelRegex("\\p{Old_Italic}", V2);
    compileRelabelRegex("\\p{Canadian_Aboriginal}", V2);
    // Unicode 14/15 scripts are unknown to Go 1.19.
    assert.match(compileError("\\p{Vithkuqi}", V2), /invalid character class range/);
    compileRelabelRegex("\\p{Vithkuqi}", V3);
  });

  test("\\p{C}: Go 1.25+ includes unassigned code points, Go 1.19 does not", () => {
    const unassigned = "\u0378";
    assert.equal(compileRelabelRegex("\\p{C}", V3).matches(unassigned), true);
    assert.equal(compileRelabelRegex("\\p{C}", V2).matches(unassigned), false);
    assert.equal(compileRelabelRegex("\\P{C}", V2).matches(unassigned), true);
    assert.equal(compileRelabelRegex("[\\P{C}]", V2).matches(unassigned), true);
    assert.equal(compileRelabelRegex("[^\\P{C}x]", V2).matches(unassigned), false);
    assert.equal(compileRelabelRegex("[\\p{C}]", V2).matches("\u0000"), true);
    assert.equal(compileRelabelRegex("\\p{C}", V2).matches("\ue000"), true); // Co
    assert.equal(compileRelabelRegex("\\P{C}", V2).matches("a"), true);
  });

  test("(?i)\\p{LC} is not folded (Go has no fold table for LC)", () => {
    assert.equal(compileRelabelRegex("(?i)\\p{LC}", V3).matches("\u0345"), false);
    assert.equal(compileRelabelRegex("(?i)\\P{Cased_Letter}", V3).matches("\u0345"), true);
    assert.equal(compileRelabelRegex("(?i)\\p{L}", V3).matches("\u0345"), true);
  });
});

describe("UTF-16 strings against Go's UTF-8", () => {
  test("an astral character is one rune", () => {
    for (const d of [V2, V3]) {
      assert.deepEqual(compileRelabelRegex("(.)", d).match("😀")?.groups, ["😀", "😀"]);
      assert.equal(compileRelabelRegex("(.)(.)", d).matches("😀"), false);
      assert.equal(compileRelabelRegex("[^a]", d).matches("😀"), true);
      assert.equal(compileRelabelRegex("[😀-😂]", d).matches("😁"), true);
      assert.deepEqual(compileRelabelRegex("(.)x(.+)", d).match("😀x👍🏽")?.groups, ["😀x👍🏽", "😀", "👍🏽"]);
      assert.equal(compileRelabelRegex("(.{2})", d).matches("👍🏽"), true);
      assert.equal(compileRelabelRegex("(?:a)|(?:😀)", d).replaceAll("😀", "$0$0"), "😀😀");
    }
  });

  test("a lone surrogate in the input reads as U+FFFD, as Go reads a JSON-decoded label", () => {
    assert.deepEqual(compileRelabelRegex("(.)", V3).match("\ud800")?.groups, ["\ufffd", "\ufffd"]);
    assert.equal(compileRelabelRegex("\\x{FFFD}", V3).matches("\udc00"), true);
    assert.equal(compileRelabelRegex("a(.*)", V3).replaceAll("a\ud800", "$1"), "\ufffd");
  });
});

describe("expand as Go's Regexp.ExpandString", () => {
  // [regex, input, template, Go's result]
  const cases: [string, string, string, string][] = [
    ["(a)(b)?", "a", "$1|${1}|$2|$3|$0|${0}", "a|a|||a|a"],
    ["(a)", "a", "$1x|${1}x|$$1|$|${|${1|$-|$01|$ |x$", "|ax|$1|$|${|${1|$-||$ |x$"],
    ["(?P<name>a)(?P<n1>b)", "ab", "$name $n1 ${name}x $namex $n ${n1}", "a b ax   b"],
    ["(a)", "a", "$é|$_|$١|${}", "|||${}"],
    ["(?P<n>a)|(?P<n>b)", "b", "[$n]", "[b]"],
    ["(?P<n>a)?(?P<n>b)?", "", "[$n]", "[]"],
    ["(.*)", "x", "${1}_${2}", "x_"],
    ["(?P<1>x)(y)", "xy", "$1", "x"],
    ["()", "", "$1x$1", ""],
    ["(a)", "a", "$100000000|$99999999|$00", "||"],
    ["(a)", "a", "${1}😀$1", "a😀a"],
  ];
  test("group names are ASCII in Go's syntax, though $é is a name in templates", () => {
    assert.equal(compileError("(?P<é>a)", V3), "error parsing regexp: invalid named capture: `(?P<é>`");
  });
  for (const [source, input, template, want] of cases) {
    test(`${source} ${JSON.stringify(template)}`, () => {
      for (const d of [V2, V3]) {
        const re = compileRelabelRegex(source, d);
        const m = re.match(input);
        assert.ok(m);
        assert.equal(re.expand(template, m), want);
      }
    });
  }
});

describe("replaceAll as labelmap uses it", () => {
  test("replaces the whole name when the anchored regex matches, else keeps it", () => {
    for (const d of [V2, V3]) {
      const re = compileRelabelRegex("__meta_kubernetes_pod_label_(.+)", d);
      assert.equal(re.replaceAll("__meta_kubernetes_pod_label_app", "$1"), "app");
      assert.equal(re.replaceAll("__meta_kubernetes_pod_label_", "$1"), "__meta_kubernetes_pod_label_");
      assert.equal(re.replaceAll("job", "$1"), "job");
      assert.equal(compileRelabelRegex("(.*)", d).replaceAll("x", "${1}_$1"), "x_x");
      assert.equal(compileRelabelRegex("a(b)?", d).replaceAll("a", "[$1]"), "[]");
      assert.equal(compileRelabelRegex("a*", d).replaceAll("", "x"), "x");
    }
  });
});

describe("fast paths and cache", () => {
  test("(.*) and (.+) follow the dialect's dot", () => {
    assert.equal(compileRelabelRegex("(.*)", V2).matches("a\nb"), false);
    assert.deepEqual(compileRelabelRegex("(.*)", V3).match("a\nb")?.groups, ["a\nb", "a\nb"]);
    assert.equal(compileRelabelRegex("(.+)", V3).matches(""), false);
    assert.deepEqual(compileRelabelRegex("(.*)", V2).match("")?.groups, ["", ""]);
    assert.deepEqual(compileRelabelRegex("p_(.+)", V2).match("p_x")?.groups, ["p_x", "x"]);
    assert.equal(compileRelabelRegex("p_.*", V2).matches("p_x\n"), false);
    assert.deepEqual(compileRelabelRegex("p_.*", V3).match("p_x\n")?.groups, ["p_x\n"]);
  });

  test("literal alternations", () => {
    const re = compileRelabelRegex("kube-system|monitoring|", V2);
    assert.equal(re.matches("monitoring"), true);
    assert.equal(re.matches(""), true);
    assert.equal(re.matches("kube-system|monitoring"), false);
    assert.deepEqual(re.match("kube-system")?.groups, ["kube-system"]);
    assert.equal(re.replaceAll("kube-system", "<$0$1>"), "<kube-system>");
    assert.equal(compileRelabelRegex("true", V3).matches("True"), false);
  });

  test("compiled regexes are cached per source and dialect", () => {
    assert.equal(compileRelabelRegex("a(b)c", V2), compileRelabelRegex("a(b)c", dialectFor("2.53")));
    assert.notEqual(compileRelabelRegex("a(b)c", V2), compileRelabelRegex("a(b)c", V3));
  });
});

describe("regexes V8 runs (src/prom/regex-js.ts)", () => {
  test("the address rules of kubernetes-pods jobs run on V8 and answer as re2js did", () => {
    const re = compileRelabelRegex("(\\d+);((([0-9]+?)(\\.|$)){4})", V3);
    assert.ok(re instanceof JsRegex);
    assert.deepEqual(re.match("8080;10.1.2.3")?.groups, ["8080;10.1.2.3", "8080", "10.1.2.3", "3", "3", ""]);
    assert.equal(re.replaceAll("8080;10.1.2.3", "$2:$1"), "10.1.2.3:8080");
    assert.equal(re.matches("8080;10.1.2"), false);
    assert.equal(re.matches("8080;10.1.2.3.4"), false);
    assert.ok(compileRelabelRegex("(https?)", V2) instanceof JsRegex);
  });

  test("ambiguous regexes, which could backtrack without bound or choose unlike Go, stay on re2js", () => {
    for (const source of [
      "(a+)+b",
      "(a|a)*c",
      "(\\d+)*x",
      "a*a",
      "(a|ab)(c|bcd)",
      "(.*),(.*)",
      "([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4}",
      "(?:(a)|b){2}", // JavaScript clears group 1 on the second round, Go keeps it
      "(a?)+",
      "(?i)abc",
      "\\bx",
    ]) {
      assert.ok(!(compileRelabelRegex(source, V3) instanceof JsRegex), source);
    }
  });

  test("a deterministic regex on a long hostile value answers (linear in its length)", () => {
    const re = compileRelabelRegex("(\\d+);((([0-9]+?)(\\.|$)){4})", V3);
    assert.ok(re instanceof JsRegex);
    assert.equal(re.matches(`1;${"1.".repeat(200_000)}x`), false);
    assert.equal(re.matches(`1;${"1".repeat(400_000)}x`), false);
  });
});

// ---------------------------------------------------------------------------------------------
// Known divergences: re2js itself, not fixable in the wrapper. Each asserts our behaviour and,
// when Go is available, that Go still answers differently (so the record stays true).

const KNOWN_DIVERGENCES: { what: string; re: string; dialect: PromDialect; input: string; ours: Outcome }[] = [
  // Known divergence: Unicode tables. Pattern `\p{L}` (3.x), input U+10D50 (GARAY CAPITAL LETTER A,
  // new in Unicode 16): Go 1.26 (Unicode 15.0) no match, re2js (Unicode 17) match. Same for every
  // \p class and (?i) fold on code points assigned after Unicode 15.0 (3.x) / 13.0 (Go 1.19, 2.x).
  {
    what: "\\p{L} on a Unicode 16 letter",
    re: "\\p{L}",
    dialect: V3,
    input: "\u{10D50}",
    ours: { error: null, matches: true },
  },
  // Known divergence: pattern `(?i)ɤ` (3.x), input U+A7CB (its Unicode 16 capital): Go 1.26 no
  // match, re2js match.
  {
    what: "(?i) on a Unicode 16 case pair",
    re: "(?i)ɤ",
    dialect: V3,
    input: "\ua7cb",
    ours: { error: null, matches: true },
  },
  // Known divergence: pattern `(?i)[\p{LC}]` (3.x), input U+0345: Go 1.26 no match (it has no fold
  // table for LC), re2js match (its LC fold table holds U+0345). Outside brackets the wrapper
  // turns `\p{LC}` into `(?-i:\p{LC})`; inside brackets no re2js class can hold LC without the fold.
  {
    what: "(?i)[\\p{LC}] on U+0345",
    re: "(?i)[\\p{LC}]",
    dialect: V3,
    input: "\u0345",
    ours: { error: null, matches: true },
  },
  // Known divergence: pattern `(?:a{1400 times}){1000}`: Go compiles it (size limit 3,355,443
  // instructions), re2js rejects it "expression too large" (limit 1,398,101; not configurable).
  {
    what: "a 1.4M-instruction regex",
    re: `(?:${"a".repeat(1400)}){1000}`,
    dialect: V3,
    input: "",
    ours: { error: `error parsing regexp: expression too large: \`^(?s:(?:${"a".repeat(1400)}){1000})$\`` },
  },
];

describe("known divergences from Go (re2js)", () => {
  for (const k of KNOWN_DIVERGENCES) {
    test(k.what, () => {
      const got = ours(k.re, k.dialect, k.input, "");
      assert.equal(got.error, k.ours.error);
      if (k.ours.matches !== undefined) assert.equal(got.matches, k.ours.matches);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The Go oracle

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ORACLE_BIN = join(homedir(), ".cache", "promshard-tools", "regexoracle");

interface GoAnswer extends Outcome {
  names: string[] | null;
}

class Oracle {
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #waiting: { resolve: (a: GoAnswer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  #buffer = "";

  constructor(bin: string) {
    this.#proc = spawn(bin, [], { stdio: ["pipe", "pipe", "pipe"] });
    this.#proc.stdout.setEncoding("utf8");
    this.#proc.stdout.on("data", (chunk: string) => {
      this.#buffer += chunk;
      for (let nl = this.#buffer.indexOf("\n"); nl >= 0; nl = this.#buffer.indexOf("\n")) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        const w = this.#waiting.shift();
        if (w === undefined) continue;
        clearTimeout(w.timer);
        w.resolve(JSON.parse(line) as GoAnswer);
      }
    });
    let stderr = "";
    this.#proc.stderr.setEncoding("utf8");
    this.#proc.stderr.on("data", (chunk: string) => {
      stderr += chunk;
    });
    this.#proc.on("exit", (code) => this.#failAll(new Error(`regexoracle exited (${code}): ${stderr}`)));
    this.#proc.on("error", (e) => this.#failAll(e));
  }

  #failAll(e: Error): void {
    for (const w of this.#waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }

  ask(re: string, dotAll: boolean, input: string, template: string): Promise<GoAnswer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#failAll(new Error("regexoracle did not answer in 10s")), 10_000);
      this.#waiting.push({ resolve, reject, timer });
      this.#proc.stdin.write(`${JSON.stringify({ re, dotAll, input, template })}\n`);
    });
  }

  close(): void {
    this.#proc.stdin.end();
  }
}

function buildOracle(): string | null {
  try {
    execFileSync("go", ["build", "-o", ORACLE_BIN, "."], {
      cwd: join(ROOT, "tools", "regexoracle"),
      env: { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" },
      stdio: "pipe",
    });
    return ORACLE_BIN;
  } catch (e) {
    return `cannot build tools/regexoracle: ${String(e)}`;
  }
}

let oracle: Oracle | null = null;
let noOracle = "";

function goAnswerFor(answer: GoAnswer): Outcome {
  if (answer.error !== null) return { error: answer.error };
  return {
    error: null,
    matches: answer.matches ?? false,
    groups: answer.groups ?? null,
    expand: answer.expand ?? null,
    replaceAll: answer.replaceAll ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Generated regexes

/** Characters with the same properties and case folding in Unicode 13, 15 and 17. */
const ALPHABET = [..."abcxyzABKSkso019_- .:;/=,\n\t", ..."éÉßẞσΣςıİǅǆǄµÅåͅι中😀😁𐐀𐐨١\u212a\u017f\u0378\u2028"];
const META = new Set([..."\\.+*?()|[]{}^$"]);
/** \p names that mean the same to Go 1.19 and Go 1.26 (both dialects). */
const STABLE_CLASSES = [
  "L",
  "Lu",
  "Ll",
  "Lt",
  "Lm",
  "Lo",
  "N",
  "Nd",
  "P",
  "Po",
  "S",
  "Sm",
  "So",
  "Z",
  "Zs",
  "M",
  "Mn",
  "Cc",
  "Co",
  "Greek",
  "Latin",
  "Cyrillic",
  "Han",
  "Common",
  "Inherited",
  "Deseret",
  "Any",
];
/** Names whose meaning or validity is Go ≥ 1.25's (3.x only; some are invalid there too). */
const MODERN_CLASSES = [
  "Letter",
  "letter",
  "latin",
  "GREEK",
  "l",
  "lu",
  "Cn",
  "C",
  "Other",
  "ASCII",
  "ascii",
  "Assigned",
  "Uppercase_Letter",
  "Decimal_Number",
  "digit",
  "punct",
  "Old_Italic",
  "Nag_Mundari",
  "Emoji",
  "Garay",
  "Unknown",
  "White_Space",
  " Greek",
];
/** Names Go 1.19 rejects but re2js (or Go 1.26) accepts: 2.x must reject them. */
const LEGACY_INVALID_CLASSES = ["Cn", "LC", "Lc", "Letter", "l", "ASCII", "Assigned", "Kawi", "Emoji", "Garay"];
/** LC outside brackets only: inside brackets with (?i) is a known divergence. */
const LC_NAMES = ["LC", "Lc", "Cased_Letter"];

type Ast =
  | { k: "lit"; ch: string }
  | { k: "esc"; text: string; sample: string }
  | { k: "dot" }
  | { k: "perl"; text: string }
  | { k: "uni"; text: string; name: string }
  | { k: "class"; neg: boolean; items: ClassItem[] }
  | { k: "anchor"; text: string }
  | { k: "cat"; subs: Ast[] }
  | { k: "alt"; subs: Ast[] }
  | { k: "group"; open: string; named: "P" | "angle" | null; sub: Ast }
  | { k: "flags"; text: string }
  | { k: "rep"; op: string; lazy: boolean; min: number; max: number; sub: Ast }
  | { k: "quote"; text: string };

type ClassItem = { text: string; samples: string[]; uni?: string };

interface Gen {
  /** 3.x: allows MODERN_CLASSES and LC names. */
  readonly modern: boolean;
}

function escapeLiteral(ch: string): string {
  return META.has(ch) ? `\\${ch}` : ch;
}

function classItemArb(g: Gen): fc.Arbitrary<ClassItem> {
  const fixed = (...items: ClassItem[]) => fc.constantFrom(...items);
  const classChar = fc.constantFrom(...ALPHABET, "]", "-", "^", "[", "\\", "$");
  const escapeInClass = (c: string) => (c === "]" || c === "-" || c === "^" || c === "\\" ? `\\${c}` : c);
  const names = g.modern ? [...STABLE_CLASSES, ...MODERN_CLASSES] : [...STABLE_CLASSES, ...LEGACY_INVALID_CLASSES];
  return fc.oneof(
    { weight: 4, arbitrary: classChar.map((c) => ({ text: escapeInClass(c), samples: [c] })) },
    {
      weight: 2,
      arbitrary: fixed(
        { text: "a-z", samples: ["a", "m", "z"] },
        { text: "0-9", samples: ["0", "9"] },
        { text: "A-Z", samples: ["B", "K"] },
        { text: "α-ω", samples: ["σ", "ς"] },
        { text: "😀-😂", samples: ["😁"] },
        { text: "\\x00-\\x{10FFFF}", samples: ["x"] },
        { text: "a-\\x{FF}", samples: ["é"] },
      ),
    },
    {
      weight: 1,
      arbitrary: fixed(
        { text: "\\d", samples: ["5"] },
        { text: "\\w", samples: ["_"] },
        { text: "\\s", samples: [" "] },
        { text: "\\D", samples: ["a"] },
        { text: "\\W", samples: ["é"] },
        { text: "\\S", samples: ["x"] },
        { text: "[:alpha:]", samples: ["a"] },
        { text: "[:^digit:]", samples: ["a"] },
        { text: "[:word:]", samples: ["_"] },
        { text: "[:space:]", samples: ["\u000b"] },
        { text: "[:upper:]", samples: ["K"] },
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...names), fc.constantFrom("p", "P"), fc.boolean())
        .map(([name, p, braces]) => ({
          text: name.length === 1 && !braces ? `\\${p}${name}` : `\\${p}{${name}}`,
          samples: ["a", "σ", "1"],
          uni: name,
        })),
    },
  );
}

function astArb(g: Gen): fc.Arbitrary<Ast> {
  const names = g.modern
    ? [...STABLE_CLASSES, ...MODERN_CLASSES, ...LC_NAMES]
    : [...STABLE_CLASSES, ...LEGACY_INVALID_CLASSES];
  const { node } = fc.letrec<{ node: Ast; leaf: Ast }>((tie) => ({
    leaf: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...ALPHABET).map((ch): Ast => ({ k: "lit", ch })) },
      { weight: 3, arbitrary: fc.constantFrom(...META).map((ch): Ast => ({ k: "lit", ch })) },
      {
        weight: 1,
        arbitrary: fc.constantFrom<Ast>(
          { k: "esc", text: "\\n", sample: "\n" },
          { k: "esc", text: "\\t", sample: "\t" },
          { k: "esc", text: "\\x41", sample: "A" },
          { k: "esc", text: "\\x{1F600}", sample: "😀" },
          { k: "esc", text: "\\101", sample: "A" },
          { k: "esc", text: "\\.", sample: "." },
          { k: "esc", text: "\\-", sample: "-" },
        ),
      },
      { weight: 3, arbitrary: fc.constant<Ast>({ k: "dot" }) },
      {
        weight: 1,
        arbitrary: fc.constantFrom("\\d", "\\w", "\\s", "\\D", "\\W", "\\S").map((text): Ast => ({ k: "perl", text })),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom(...names), fc.constantFrom("p", "P", "p^"), fc.boolean())
          .map(([name, p, braces]): Ast => {
            const text =
              p === "p^" ? `\\p{^${name}}` : name.length === 1 && !braces ? `\\${p}${name}` : `\\${p}{${name}}`;
            return { k: "uni", text, name };
          }),
      },
      {
        weight: 3,
        arbitrary: fc
          .tuple(fc.boolean(), fc.array(classItemArb(g), { minLength: 1, maxLength: 4 }))
          .map(([neg, items]): Ast => ({ k: "class", neg, items })),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom("^", "$", "\\A", "\\z", "\\b", "\\B").map((text): Ast => ({ k: "anchor", text })),
      },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom("(?i)", "(?s)", "(?-s)", "(?U)", "(?m)", "(?i-s)", "(?is)", "(?-i)")
          .map((text): Ast => ({ k: "flags", text })),
      },
      {
        weight: 1,
        arbitrary: fc
          .array(fc.constantFrom(...ALPHABET, "\\", "(", ")", "["), { maxLength: 3 })
          .map((cs): Ast => ({ k: "quote", text: cs.join("") })),
      },
    ),
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      { weight: 5, arbitrary: tie("leaf") },
      {
        weight: 3,
        arbitrary: fc.array(tie("node"), { minLength: 2, maxLength: 4 }).map((subs): Ast => ({ k: "cat", subs })),
      },
      {
        weight: 2,
        arbitrary: fc
          .array(fc.oneof(tie("node"), fc.constant<Ast>({ k: "cat", subs: [] })), { minLength: 2, maxLength: 3 })
          .map((subs): Ast => ({ k: "alt", subs })),
      },
      {
        weight: 2,
        arbitrary: fc
          .tuple(
            fc.constantFrom(
              ["(", null],
              ["(?:", null],
              ["(?P<a>", "P"],
              ["(?P<n>", "P"],
              ["(?P<name>", "P"],
              ["(?P<x1>", "P"],
              ["(?P<1>", "P"],
              ["(?<n>", "angle"],
              ["(?<b>", "angle"],
              ["(?i:", null],
              ["(?s:", null],
              ["(?-s:", null],
              ["(?U:", null],
            ),
            tie("node"),
          )
          .map(
            ([[open, named], sub]): Ast => ({
              k: "group",
              open: open as string,
              named: named as "P" | "angle" | null,
              sub,
            }),
          ),
      },
      {
        weight: 3,
        arbitrary: repetition(tie("node"), [
          ["*", 0, -1],
          ["+", 1, -1],
          ["?", 0, 1],
          ["{2}", 2, 2],
          ["{0,2}", 0, 2],
          ["{1,}", 1, -1],
          ["{0}", 0, 0],
          ["{2,3}", 2, 3],
        ]),
      },
    ),
  }));
  return node;
}

/** A repetition of `sub` by one of the operators [text, min, max (-1: none)], greedy or lazy. */
function repetition(sub: fc.Arbitrary<Ast>, ops: [string, number, number][]): fc.Arbitrary<Ast> {
  return fc
    .tuple(fc.constantFrom(...ops), fc.boolean(), sub)
    .map(([[op, min, max], lazy, sub]): Ast => ({ k: "rep", op, lazy, min, max, sub }));
}

function render(a: Ast): string {
  switch (a.k) {
    case "lit":
      return escapeLiteral(a.ch);
    case "esc":
    case "perl":
    case "uni":
    case "anchor":
    case "flags":
      return a.text;
    case "dot":
      return ".";
    case "class":
      return `[${a.neg ? "^" : ""}${a.items.map((i) => i.text).join("")}]`;
    case "cat":
      return a.subs.map((s) => (s.k === "alt" ? `(?:${render(s)})` : render(s))).join("");
    case "alt":
      return a.subs.map(render).join("|");
    case "group":
      return `${a.open}${render(a.sub)})`;
    case "rep": {
      const sub =
        a.sub.k === "cat" || a.sub.k === "alt" || a.sub.k === "quote" ? `(?:${render(a.sub)})` : render(a.sub);
      return `${sub}${a.op}${a.lazy ? "?" : ""}`;
    }
    case "quote":
      return `\\Q${a.text}\\E`;
  }
}

function walk(a: Ast, visit: (a: Ast) => void): void {
  visit(a);
  if (a.k === "cat" || a.k === "alt") for (const s of a.subs) walk(s, visit);
  if (a.k === "group" || a.k === "rep") walk(a.sub, visit);
}

/** Go 1.19 (2.x) rejects this regex although Go 1.26 (the oracle) may accept it. */
function legacyRejects(a: Ast): boolean {
  let reject = false;
  walk(a, (n) => {
    if (n.k === "group" && n.named === "angle") reject = true;
    if (n.k === "uni" && LEGACY_INVALID_CLASSES.includes(n.name)) reject = true;
    if (n.k === "class" && n.items.some((i) => i.uni !== undefined && LEGACY_INVALID_CLASSES.includes(i.uni))) {
      reject = true;
    }
  });
  return reject;
}

/** A small deterministic PRNG for deriving inputs from a regex. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A string the regex probably matches (flags and classes are approximated). */
function sample(a: Ast, rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const flip = (s: string) => (rnd() < 0.3 ? (s.toUpperCase() === s ? s.toLowerCase() : s.toUpperCase()) : s);
  switch (a.k) {
    case "lit":
      return flip(a.ch);
    case "esc":
      return a.sample;
    case "dot":
      return pick(ALPHABET);
    case "perl":
      return ({ "\\d": "7", "\\w": "w", "\\s": " ", "\\D": "é", "\\W": "-", "\\S": "S" } as Record<string, string>)[
        a.text
      ] as string;
    case "uni":
      return pick(["a", "K", "σ", "中", "1", "١", ".", "😀", "\u0345", "\u0378", " "]);
    case "class":
      return a.neg ? pick(ALPHABET) : pick(pick(a.items).samples);
    case "anchor":
    case "flags":
      return "";
    case "cat":
      return a.subs.map((s) => sample(s, rnd)).join("");
    case "alt":
      return a.subs.length === 0 ? "" : sample(pick(a.subs), rnd);
    case "group":
      return sample(a.sub, rnd);
    case "rep": {
      const max = a.max < 0 ? a.min + 2 : a.max;
      const n = a.min + Math.floor(rnd() * (max - a.min + 1));
      let out = "";
      for (let i = 0; i < n; i++) out += sample(a.sub, rnd);
      return out;
    }
    case "quote":
      return a.text;
  }
}

function mutate(s: string, rnd: () => number): string {
  const cps = [...s];
  const r = rnd();
  const at = Math.floor(rnd() * (cps.length + 1));
  if (r < 0.4 && cps.length > 0) cps.splice(Math.min(at, cps.length - 1), 1);
  else if (r < 0.8) cps.splice(at, 0, ALPHABET[Math.floor(rnd() * ALPHABET.length)] as string);
  else cps.push("\n");
  return cps.join("");
}

/** Fragments that break the syntax, spliced into some regexes to compare the errors too. */
const JUNK = [
  "(",
  ")",
  "[",
  "*",
  "+",
  "?",
  "{2,1}",
  "\\",
  "\\8",
  "{1001}",
  "(?P<a",
  "(?x)",
  "[z-a]",
  "\\p{Foo}",
  "(?<=a)",
  "\\Q",
  "**",
  "(?P<n>a)",
  "|",
  "{",
  "}",
  "(?",
  "\\pZ",
  "[:]",
  "[[:]",
  "[[:]a:]]",
  "[a[:alpha:]-z]",
  "{,3}",
  "{3,2}",
  "x{0,1000}",
  "{1000,}",
  "{01}",
  "\\x{41}",
  "\\x{",
  "\\x4",
  "\\Q\\E",
  "\\E",
  "(?i)",
  "(?U)",
  "(?-)",
  "(?i-)",
  "(?:",
  "[^\\x00-\\x{10FFFF}]",
  "\\z",
  "\\0",
  "\\08",
  "\\177",
  "[\\d-z]",
  "[a-\\x{10FFFF}]",
  "\\pL",
  "\\p",
  "\\P{",
  "(?P<a>",
  "(?P<>",
  "(?P<a>)",
  "(?<a>",
];

const TEMPLATE_PIECES = [
  "$1",
  "${1}",
  "$0",
  "${0}",
  "$2",
  "$3",
  "$a",
  "${a}",
  "$n",
  "${n}",
  "$name",
  "${name}",
  "$x1",
  "$1x",
  "${1}x",
  "$$",
  "$",
  "${",
  "${1",
  "${}",
  "$01",
  "$-",
  "$ ",
  "$é",
  "$_",
  "$b",
  "lit",
  "-",
  ":",
  "é",
  "😀",
  "${a}b",
  "$a_b",
];

interface Case {
  source: string;
  /** Go 1.19 rejects the regex (a `(?<name>` group or a \p name it does not know). */
  legacyRejects: boolean;
  /** Junk `(?<…` spliced in: Go 1.19 and Go 1.26 both reject it where it opens a group, in other words. */
  junkAngle: boolean;
  input: string;
  template: string;
}

function caseArb(g: Gen): fc.Arbitrary<Case> {
  return fc
    .record({
      ast: astArb(g),
      seed: fc.integer(),
      inputKind: fc.constantFrom("derived", "derived", "derived", "mutated", "random"),
      random: fc.array(fc.constantFrom(...ALPHABET), { maxLength: 6 }).map((cs) => cs.join("")),
      junk: fc.option(fc.tuple(fc.constantFrom(...JUNK), fc.nat()), { freq: 8 }),
      template: fc.array(fc.constantFrom(...TEMPLATE_PIECES), { maxLength: 4 }).map((ps) => ps.join("")),
    })
    .map(({ ast, seed, inputKind, random, junk, template }) => {
      const rnd = prng(seed);
      let source = render(ast);
      const legacy = legacyRejects(ast);
      // Junk could break the very token Go 1.19 rejects, so such regexes get none.
      if (junk !== null && !legacy) {
        const cps = [...source];
        cps.splice(junk[1] % (cps.length + 1), 0, junk[0]);
        source = cps.join("");
      }
      const derived = sample(ast, rnd);
      const input = inputKind === "random" ? random : inputKind === "mutated" ? mutate(derived, rnd) : derived;
      return { source, legacyRejects: legacy, junkAngle: (junk?.[0] ?? "").includes("(?<"), input, template };
    });
}

/** Literal alternations and `P(.*)`-style regexes: the shapes the module answers without re2js. */
function fastCaseArb(): fc.Arbitrary<Case> {
  const lit = fc.array(fc.constantFrom(..."ab-_:/ é😀\n|"), { maxLength: 4 }).map((cs) => cs.join(""));
  return fc
    .tuple(
      fc.oneof(
        lit,
        fc.tuple(lit, fc.constantFrom("(.*)", "(.+)", ".*", ".+")).map(([p, t]) => p.replaceAll("|", "") + t),
      ),
      fc.array(fc.constantFrom(..."ab-_:/ é😀\n|"), { maxLength: 6 }).map((cs) => cs.join("")),
      fc.boolean(),
      fc.array(fc.constantFrom(...TEMPLATE_PIECES), { maxLength: 3 }).map((ps) => ps.join("")),
    )
    .map(([source, random, useSource, template]) => ({
      source,
      legacyRejects: false,
      junkAngle: false,
      input: useSource ? (source.split("|")[0] ?? "").replace(/\(?\.[*+]\)?$/, random) : random,
      template,
    }));
}

/** The subset V8 runs (src/prom/regex-js.ts), over few characters so that many are deterministic. */
function jsCaseArb(): fc.Arbitrary<Case> {
  const { node } = fc.letrec<{ node: Ast; leaf: Ast }>((tie) => ({
    leaf: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(..."ab1.;é😀\n ").map((ch): Ast => ({ k: "lit", ch })) },
      { weight: 2, arbitrary: fc.constantFrom<Ast>({ k: "dot" }, { k: "anchor", text: "$" }) },
      {
        weight: 2,
        arbitrary: fc.constantFrom("\\d", "\\w", "\\s", "\\D", "\\S").map((text): Ast => ({ k: "perl", text })),
      },
      {
        weight: 2,
        arbitrary: fc.constantFrom<Ast>(
          { k: "class", neg: false, items: [{ text: "ab", samples: ["a", "b"] }] },
          { k: "class", neg: true, items: [{ text: ";", samples: [";"] }] },
          { k: "class", neg: false, items: [{ text: "0-9", samples: ["0", "5"] }] },
          { k: "class", neg: false, items: [{ text: "\\d.", samples: ["3", "."] }] },
          { k: "class", neg: true, items: [{ text: "\\s\\d", samples: ["a"] }] },
        ),
      },
    ),
    node: fc.oneof(
      { weight: 4, arbitrary: tie("leaf") },
      {
        weight: 3,
        arbitrary: fc.array(tie("node"), { minLength: 2, maxLength: 4 }).map((subs): Ast => ({ k: "cat", subs })),
      },
      {
        weight: 1,
        arbitrary: fc.array(tie("node"), { minLength: 2, maxLength: 3 }).map((subs): Ast => ({ k: "alt", subs })),
      },
      {
        // Branches told apart by their first character: deterministic unless what follows overlaps.
        weight: 2,
        arbitrary: fc
          .shuffledSubarray([..."ab1; "], { minLength: 2, maxLength: 3 })
          .chain((firsts) =>
            fc.tuple(
              ...firsts.map((ch) =>
                fc
                  .option(tie("node"))
                  .map(
                    (rest): Ast => ({ k: "cat", subs: rest === null ? [{ k: "lit", ch }] : [{ k: "lit", ch }, rest] }),
                  ),
              ),
            ),
          )
          .map((subs): Ast => ({ k: "alt", subs })),
      },
      {
        weight: 2,
        arbitrary: fc
          .tuple(fc.constantFrom("(", "(", "(?:", "(?P<n>"), tie("node"))
          .map(([open, sub]): Ast => ({ k: "group", open, named: open === "(?P<n>" ? "P" : null, sub })),
      },
      {
        weight: 2,
        arbitrary: repetition(tie("node"), [
          ["*", 0, -1],
          ["+", 1, -1],
          ["?", 0, 1],
          ["{2}", 2, 2],
          ["{1,3}", 1, 3],
          ["{2,}", 2, -1],
        ]),
      },
    ),
  }));
  // Mostly regexes the subset takes, and not only single characters.
  const taken = node.filter((a) => {
    const source = render(a);
    return source.length >= 6 && jsSubset(source, { dotAll: true, modernGo: true }) !== null;
  });
  return fc
    .record({
      ast: fc.oneof({ weight: 4, arbitrary: taken }, { weight: 1, arbitrary: node }),
      seed: fc.integer(),
      mutated: fc.boolean(),
      template: fc.array(fc.constantFrom(...TEMPLATE_PIECES), { maxLength: 3 }).map((ps) => ps.join("")),
    })
    .map(({ ast, seed, mutated, template }) => {
      const rnd = prng(seed);
      const derived = sample(ast, rnd);
      return {
        source: render(ast),
        legacyRejects: false,
        junkAngle: false,
        input: mutated ? mutate(derived, rnd) : derived,
        template,
      };
    });
}

/** The \p names in a regex, tokenized roughly as Go does (enough for spliced-in junk). */
function classNames(source: string): string[] {
  const names: string[] = [];
  for (const m of source.matchAll(/\\(?:[pP](\{[^}]*\}|[^{])|.)/gsu)) {
    const t = m[1];
    if (t !== undefined) names.push((t.startsWith("{") ? t.slice(1, -1) : t).replace(/^\^/, ""));
  }
  return names;
}

/** A \p name Go 1.19 and Go 1.26 may read differently (anything not name-like is invalid to both). */
function versionSensitive(name: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_ -]*$/.test(name) && !STABLE_CLASSES.includes(name) && name !== "Foo";
}

function isOnV8(source: string, dialect: PromDialect): boolean {
  try {
    return compileRelabelRegex(source, dialect) instanceof JsRegex;
  } catch {
    return false;
  }
}

let skippedLegacy = 0;

async function differential(c: Case, dialect: PromDialect): Promise<void> {
  const got = ours(c.source, dialect, c.input, c.template);
  if (!dialect.perlNamedGroups && c.legacyRejects) {
    assert.notEqual(got.error, null, `Go 1.19 rejects ${JSON.stringify(c.source)}`);
    return;
  }
  if (!dialect.perlNamedGroups && classNames(c.source).some(versionSensitive)) {
    skippedLegacy++; // junk made a \p name whose validity Go 1.19 and the Go 1.26 oracle disagree on
    return;
  }
  const go = goAnswerFor(await (oracle as Oracle).ask(c.source, dialect.dotAll, c.input, c.template));
  if (!dialect.perlNamedGroups && c.junkAngle && go.error !== null) {
    assert.notEqual(got.error, null, `Go rejects ${JSON.stringify(c.source)}`);
    return;
  }
  assert.deepEqual(got, go, `regex ${JSON.stringify(c.source)} (${dialect.version}) on ${JSON.stringify(c.input)}`);
}

const RUNS = Number(process.env.REGEX_FUZZ_RUNS ?? 2500);
const SEED = process.env.REGEX_FUZZ_SEED === undefined ? undefined : Number(process.env.REGEX_FUZZ_SEED);

describe("differential against Go's regexp (tools/regexoracle)", () => {
  before(() => {
    const built = buildOracle();
    if (built === ORACLE_BIN && existsSync(ORACLE_BIN)) oracle = new Oracle(ORACLE_BIN);
    else noOracle = built ?? "no oracle";
  });
  after(() => oracle?.close());

  test("the oracle answers as Prometheus anchors", async () => {
    assert.ok(oracle !== null, `the Go regexp oracle could not be built (Go is needed for make test): ${noOracle}`);
    const a = await oracle.ask("a(b)", false, "ab", "[$1]");
    assert.deepEqual(a, {
      error: null,
      names: ["", ""],
      matches: true,
      groups: ["ab", "b"],
      expand: "[b]",
      replaceAll: "[b]",
    });
    assert.equal((await oracle.ask(".", false, "\n", "")).matches, false);
    assert.equal((await oracle.ask(".", true, "\n", "")).matches, true);
  });

  test("the documented divergences are still divergences", async () => {
    assert.ok(oracle !== null, `the Go regexp oracle could not be built (Go is needed for make test): ${noOracle}`);
    for (const k of KNOWN_DIVERGENCES) {
      const go = goAnswerFor(await oracle.ask(k.re, k.dialect.dotAll, k.input, ""));
      const got = ours(k.re, k.dialect, k.input, "");
      assert.notDeepEqual({ error: got.error, matches: got.matches }, { error: go.error, matches: go.matches }, k.what);
    }
  });

  for (const [name, dialect] of [
    ["3.x", V3],
    ["2.x", V2],
  ] as const) {
    test(`generated regexes, ${name} (${RUNS} cases)`, async () => {
      assert.ok(oracle !== null, `the Go regexp oracle could not be built (Go is needed for make test): ${noOracle}`);
      skippedLegacy = 0;
      await fc.assert(
        fc.asyncProperty(caseArb({ modern: dialect.perlNamedGroups }), (c) => differential(c, dialect)),
        { numRuns: RUNS, seed: SEED },
      );
      assert.ok(skippedLegacy < RUNS / 50, `${skippedLegacy} cases skipped`);
    });
  }

  test("fast-path shapes, both dialects (1000 cases)", async () => {
    assert.ok(oracle !== null, `the Go regexp oracle could not be built (Go is needed for make test): ${noOracle}`);
    await fc.assert(
      fc.asyncProperty(fastCaseArb(), fc.boolean(), (c, v3) => differential(c, v3 ? V3 : V2)),
      { numRuns: 1000, seed: SEED },
    );
  });

  test("the subset V8 runs, both dialects (2000 cases)", async () => {
    assert.ok(oracle !== null, `the Go regexp oracle could not be built (Go is needed for make test): ${noOracle}`);
    let onV8 = 0;
    await fc.assert(
      fc.asyncProperty(jsCaseArb(), fc.boolean(), async (c, v3) => {
        const dialect = v3 ? V3 : V2;
        if (isOnV8(c.source, dialect)) onV8++;
        await differential(c, dialect);
      }),
      { numRuns: 2000, seed: SEED },
    );
    assert.ok(onV8 > 1200, `only ${onV8} of 2000 generated regexes ran on V8`);
  });

  test("Go's own regexp test corpus (re2-search.txt), both dialects", async () => {
    assert.ok(oracle !== null, `the Go regexp oracle could not be built (Go is needed for make test): ${noOracle}`);
    const goroot = execFileSync("go", ["env", "GOROOT"], { encoding: "utf8" }).trim();
    const file = join(goroot, "src", "regexp", "testdata", "re2-search.txt");
    assert.ok(existsSync(file), `${file} not found: Go's source tree ships it; check the Go installation`);
    const { regexps, strings } = readSearchCorpus(readFileSync(file, "utf8"));
    let n = 0;
    for (const [re, inputs] of regexps) {
      for (const input of inputs) {
        for (const d of [V2, V3]) {
          const template = ["$1", "${2}x", "$0"][n % 3] as string;
          const go = goAnswerFor(await oracle.ask(re, d.dotAll, input, template));
          assert.deepEqual(
            ours(re, d, input, template),
            go,
            `${JSON.stringify(re)} (${d.version}) on ${JSON.stringify(input)}`,
          );
          n++;
        }
      }
    }
    assert.ok(n > 1000, `only ${n} corpus cases`);
    assert.ok(strings > 0);
  });
});

/** The (regexp, strings) pairs of Go's re2-search.txt, skipping byte strings JS cannot hold. */
function readSearchCorpus(text: string): { regexps: [string, string[]][]; strings: number } {
  const regexps: [string, string[]][] = [];
  let strings: string[] = [];
  let mode: "strings" | "regexps" | "" = "";
  let count = 0;
  for (const line of text.split("\n")) {
    if (line === "strings") {
      mode = "strings";
      strings = [];
      continue;
    }
    if (line === "regexps") {
      mode = "regexps";
      continue;
    }
    if (!line.startsWith('"')) continue;
    const s = unquoteGo(line);
    if (s === null) continue;
    if (mode === "strings") {
      strings.push(s);
      count++;
    } else if (mode === "regexps") {
      regexps.push([s, strings]);
    }
  }
  return { regexps, strings: count };
}

/** A Go double-quoted literal as text, or null when it holds bytes that are not UTF-8. */
function unquoteGo(q: string): string | null {
  let bytes = false;
  const hex = (v: number) => `\\u${v.toString(16).padStart(4, "0")}`;
  const json = q.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{3}|U[0-9a-fA-F]{8}|.)/g, (all, e: string) => {
    if (e.length === 3 && e[0] === "x") {
      const v = Number.parseInt(e.slice(1), 16);
      if (v >= 0x80) bytes = true;
      return hex(v);
    }
    if (/^[0-7]{3}$/.test(e)) {
      const v = Number.parseInt(e, 8);
      if (v >= 0x80) bytes = true;
      return hex(v);
    }
    if (e.length === 9 && e[0] === "U") {
      return [...String.fromCodePoint(Number.parseInt(e.slice(1), 16))].map((c) => hex(c.charCodeAt(0))).join("");
    }
    if (e === "a") return hex(7);
    if (e === "v") return hex(11);
    return all;
  });
  if (bytes) return null;
  try {
    return JSON.parse(json) as string;
  } catch {
    return null;
  }
}
