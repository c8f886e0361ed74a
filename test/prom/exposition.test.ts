import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import fc from "fast-check";
import { PromshardError } from "../../src/errors.ts";
import {
  countSeries,
  createSeriesCounter,
  type ExpositionFormat,
  formatFromContentType,
  type SeriesCount,
  type SeriesCounterOptions,
} from "../../src/prom/exposition/index.ts";
import type { Labels } from "../../src/prom/labels.ts";
import { dialectFor, withLegacyNames } from "../../src/prom/version.ts";

const V2 = dialectFor("2.42");
const V3 = dialectFor("3.16");
const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/exposition/${name}`, import.meta.url), "utf8");

type Case = [name: string, body: string, v2: number | RegExp, v3?: number | RegExp];

/** Runs one table: a number is the sample count (no relabel: series equals it), a RegExp the error. */
function table(format: ExpositionFormat, cases: Case[]): void {
  for (const [name, body, v2, v3 = v2] of cases) {
    for (const [dialect, want] of [
      [V2, v2],
      [V3, v3],
    ] as const) {
      test(`${name} (${dialect.version})`, () => {
        if (typeof want === "number") {
          assert.deepEqual(countSeries(body, { format, dialect }), { samples: want, series: want });
        } else {
          assert.throws(
            () => countSeries(body, { format, dialect }),
            (e: unknown) => e instanceof PromshardError && e.code === "exposition_invalid" && want.test(e.message),
          );
        }
      });
    }
  }
}

describe("text format 0.0.4", () => {
  table("text", [
    ["empty body", "", 0],
    ["blank lines only", "\n\n  \n\t\n", 0],
    ["one sample, no final newline", "a 1", 1],
    ["labels, trailing comma, blanks around tokens", 'a{ x = "1" , y="2", } 1\n', 1],
    ["labels without commas", 'a{x="1" y="2"} 1\n', 1],
    ["empty braces", "a{} 1\n", 1],
    ["timestamp", "a 1 1700000000000\n", 1],
    ["negative timestamp is not digits", "a 1 -5\n", /line 1, column 5: expected a timestamp/],
    ["timestamp overflowing int64", "a 1 9223372036854775808\n", /timestamp out of int64 range/],
    ["largest int64 timestamp", "a 1 9223372036854775807\n", 1],
    ["NaN, Inf, -Inf, +Inf, Infinity", "a NaN\nb Inf\nc -Inf\nd +Inf\ne -infinity\n", 5],
    ["+nan is not a float", "a +nan\n", /invalid float/],
    ["value overflow", "a 1e309\n", /out of float64 range/],
    ["value underflow is fine", "a 1e-400\n", 1],
    ["hex float needs p, refused", "a 0x1p3\n", /unsupported character/],
    ["underscore refused", "a 1_000\n", /unsupported character/],
    ["missing value", "a\n", /expected a sample value/],
    ["missing value after labels", 'a{b="c"}\n', /expected a sample value/],
    ["HELP with escapes", "# HELP a some \\\\ help \\n text\na 1\n", 1],
    ["HELP without text", "# HELP a\na 1\n", 1],
    ["HELP text in UTF-8", "# HELP a ü \\ ☃\na 1\n", 1],
    ["TYPE untyped", "# TYPE a untyped\na 1\n", 1],
    ["TYPE unknown is OpenMetrics only", "# TYPE a unknown\n", /invalid metric type "unknown"/],
    ["TYPE with two blanks", "# TYPE a  counter\n", /invalid metric type " counter"/],
    ["TYPE without type", "# TYPE a\n", /invalid metric type ""/],
    ["comment lines", "# anything\n#x\n#\t\ta b c\na 1\n", 1],
    ["label value escapes (unknown ones kept)", 'a{b="\\"\\\\\\n\\q"} 1\n', 1],
    ["raw newline inside a label value", 'a{b="x\ny"} 1\n', 1],
    ["backslash before a newline in a value", 'a{b="x\\\ny"} 1\n', /expected a quoted label value/],
    ["unterminated label value", 'a{b="x} 1\n', /expected a quoted label value/],
    ["invalid label name", 'a{1b="x"} 1\n', /expected label name/],
    ["label name with a dot (quoted needed)", 'a{b.c="x"} 1\n', /expected "="/],
    ["missing equals", 'a{b "x"} 1\n', /expected "=" after the label name/],
    ["missing label value", "a{b=} 1\n", /expected a quoted label value/],
    ["duplicate label name", 'a{b="1",b="2"} 1\n', /duplicate label name "b"/],
    ["duplicate emptied by an empty value is fine", 'a{b="1",b="",b="2"} 1\n', 1],
    ["__name__ as a label duplicates the name", 'a{__name__="b"} 1\n', /duplicate label name "__name__"/],
    ["blanks before the metric name", "  a 1\n", /invalid metric name/, 1],
    ["quoted UTF-8 metric name", '{"my.metric", a="b"} 1\n', /expected a metric name/, 1],
    ["quoted UTF-8 label name", 'a{"läbel.x"="v"} 1\n', /expected label name/, 1],
    ["metric name twice", 'a{"b"} 1\n', /expected label name/, /metric name already set/],
    ["no metric name", '{a="b"} 1\n', /expected a metric name/, /metric name not set/],
    ["a NUL at a line start ends the input", "a 1\n\0garbage {{{\n", 1],
    ["a NUL inside a label value is skipped", 'a{b="x\0y"} 1\n', 1],
    ["stray brace", "a 1 }\n", /expected a timestamp or the end of the line/],
    ["garbage line", "!!!\n", /line 1, column 1: expected a metric name/],
  ]);

  test("invalid UTF-8 in HELP text and label values is rejected, in names of 3.x it fails the scrape", () => {
    const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
    for (const dialect of [V2, V3]) {
      assert.throws(
        () => countSeries(bytes("# HELP a \xff\n"), { format: "text", dialect }),
        /HELP text is not valid UTF-8/,
      );
      assert.throws(
        () => countSeries(bytes('a{b="\xc3("} 1\n'), { format: "text", dialect }),
        /label value is not valid UTF-8/,
      );
    }
    assert.throws(() => countSeries(bytes('{"\xff"} 1\n'), { format: "text" }), /invalid metric or label name/);
  });

  test("histograms and summaries: each bucket, _sum and _count line is a sample", () => {
    assert.deepEqual(countSeries(fixture("histogram.txt"), { format: "text" }), { samples: 15, series: 15 });
  });

  test("duplicate series in one scrape count every time (2.42 and 3.16)", () => {
    for (const dialect of [V2, V3]) {
      assert.deepEqual(countSeries(fixture("duplicates.txt"), { format: "text", dialect }), { samples: 6, series: 6 });
    }
  });

  test("3.x with metric_name_validation_scheme: legacy rejects UTF-8 names after parsing them", () => {
    assert.throws(
      () => countSeries('{"my.metric"} 1\n', { format: "text", dialect: withLegacyNames(V3) }),
      /invalid metric or label name/,
    );
    assert.throws(() => countSeries(" a 1\n", { format: "text", dialect: withLegacyNames(V3) }), /invalid metric name/);
  });

  test("error positions count lines and characters across chunks", () => {
    const c = createSeriesCounter({ format: "text", source: "http://t/metrics" });
    c.write("ok 1\n# HELP x é\nbad{");
    assert.throws(
      () => {
        c.write('é="1"} 1\n');
        c.end();
      },
      (e: unknown) =>
        e instanceof PromshardError &&
        e.path === "http://t/metrics" &&
        /line 3, column 5: expected label name/.test(e.message),
    );
  });
});

describe("OpenMetrics 1.0", () => {
  table("openmetrics", [
    ["empty body (3.x skips parsing an empty scrape)", "", /does not end with # EOF/, 0],
    ["only # EOF", "# EOF\n", 0],
    ["# EOF without newline", "a 1\n# EOF", 1],
    ["missing # EOF", "a 1\n", /data does not end with # EOF/],
    ["data after # EOF", "# EOF\na 1\n", /unexpected data after # EOF/],
    ["blank line", "a 1\n\n# EOF\n", /expected a metric name/],
    ["plain comment", "# hello\n# EOF\n", /expected a metric name, # HELP/],
    ["two blanks before value", "a  1\n# EOF\n", /expected a sample value/],
    ["tab before value", "a\t1\n# EOF\n", /expected a sample value/],
    ["float timestamp", "a 1 1520879607.789\n# EOF\n", 1],
    ["negative timestamp", "a 1 -1\n# EOF\n", 1],
    ["NaN timestamp", "a 1 NaN\n# EOF\n", /invalid timestamp/],
    ["exemplar on _total", 'a_total 1 # {t="x"} 1\n# EOF\n', 1],
    ["exemplar with timestamp", 'a_total 1 1 # {t="x"} 1 123.5\n# EOF\n', 1],
    ["exemplar on a gauge", 'a 1 # {t="x"} 1\n# EOF\n', /only _total and _bucket/, 1],
    ["exemplar without value", 'a_total 1 # {t="x"}\n# EOF\n', /expected an exemplar value/],
    [
      "exemplar with a quoted-name-only entry",
      'a_total 1 # {"x"} 1\n# EOF\n',
      /expected label name or closing brace/,
      /expected label name/,
    ],
    [
      "stuff after the value (3.x has no check here)",
      "a 1 # x\na 2\n# EOF\n",
      /expected a timestamp or an exemplar/,
      /expected a metric name/,
    ],
    ["trailing comma", 'a{b="1",} 1\n# EOF\n', /expected label name/, 1],
    ["blank inside braces", 'a{b="1", c="2"} 1\n# EOF\n', /expected label name/, /expected label name/],
    ["raw newline in a label value", 'a{b="x\ny"} 1\n# EOF\n', /expected a quoted label value/],
    [
      "TYPE info, stateset, gaugehistogram, unknown",
      "# TYPE a info\n# TYPE b stateset\n# TYPE c gaugehistogram\n# TYPE d unknown\n# EOF\n",
      0,
    ],
    ["TYPE untyped is text-format only", "# TYPE a untyped\n# EOF\n", /invalid metric type "untyped"/],
    ["UNIT must be a suffix", "# UNIT a_seconds bytes\n# EOF\n", /unit is not a suffix/],
    ["UNIT suffix ok", "# UNIT a_seconds seconds\n# EOF\n", 0],
    ["HELP needs a blank and text", "# HELP a\n# EOF\n", /expected text in HELP/],
    ["quoted metric name", '{"a.b"} 1\n# EOF\n', /expected a metric name/, 1],
  ]);

  test("_created, info, stateset and gaugehistogram lines are all samples", () => {
    for (const dialect of [V2, V3]) {
      assert.deepEqual(countSeries(fixture("openmetrics.txt"), { format: "openmetrics", dialect }), {
        samples: 25,
        series: 25,
      });
    }
  });

  test("3.x created-timestamp-zero-ingestion: _created of counters, histograms, summaries are not samples", () => {
    assert.deepEqual(countSeries(fixture("openmetrics.txt"), { format: "openmetrics", skipCreatedSeries: true }), {
      samples: 21,
      series: 21,
    });
    // A gauge's _created stays a sample.
    assert.deepEqual(
      countSeries("# TYPE g gauge\ng_created 1\n# EOF\n", { format: "openmetrics", skipCreatedSeries: true }),
      {
        samples: 1,
        series: 1,
      },
    );
    assert.throws(
      () => createSeriesCounter({ format: "openmetrics", dialect: V2, skipCreatedSeries: true }),
      PromshardError,
    );
  });
});

describe("metric relabeling", () => {
  test("dropped samples leave scrape_samples_post_metric_relabeling", () => {
    const drop = (l: Labels): Labels | null =>
      /^go_.*$/.test(l.__name__ ?? "") || /^5..$/.test(l.code ?? "") ? null : l;
    assert.deepEqual(countSeries(fixture("relabel.txt"), { format: "text", metricRelabel: drop }), {
      samples: 9,
      series: 2,
    });
  });

  test("the labels handed over: unescaped, empty values gone, le/quantile normalised in 3.x", () => {
    const seen = (body: string, opts: Partial<SeriesCounterOptions> = {}): Labels[] => {
      const out: Labels[] = [];
      countSeries(body, {
        format: "text",
        ...opts,
        metricRelabel: (l) => {
          out.push(l);
          return l;
        },
      });
      return out;
    };
    assert.deepEqual(seen('a{x="q\\"\\n\\\\",e=""} 1\n'), [{ __name__: "a", x: 'q"\n\\' }]);
    const h = '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="0.50"} 1\n# TYPE s summary\ns{quantile="1e-3"} 1\n';
    assert.deepEqual(seen(h), [
      { __name__: "h_bucket", le: "1.0" },
      { __name__: "h_bucket", le: "0.5" },
      { __name__: "s", quantile: "0.001" },
    ]);
    assert.deepEqual(seen(h, { dialect: V2 }), [
      { __name__: "h_bucket", le: "1" },
      { __name__: "h_bucket", le: "0.50" },
      { __name__: "s", quantile: "1e-3" },
    ]);
    assert.deepEqual(seen('{"my.metric","a.b"="c"} 1\n'), [{ __name__: "my.metric", "a.b": "c" }]);
  });

  test("relabeling that removes __name__ or returns an empty set", () => {
    assert.throws(
      () => countSeries("a 1\n", { format: "text", metricRelabel: () => ({ x: "y" }) }),
      /without a metric name/,
    );
    assert.deepEqual(countSeries("a 1\n", { format: "text", metricRelabel: () => ({}) }), { samples: 1, series: 0 });
    // A duplicate label name fails the scrape only if the series is kept.
    assert.deepEqual(countSeries('a{b="1",b="2"} 1\n', { format: "text", metricRelabel: () => null }), {
      samples: 1,
      series: 0,
    });
  });
});

describe("formatFromContentType", () => {
  const cases: [string | undefined, ExpositionFormat | RegExp, ExpositionFormat | RegExp][] = [
    [undefined, "text", /no Content-Type/],
    ["", "text", /no Content-Type/],
    ["text/plain; version=0.0.4; charset=utf-8", "text", "text"],
    ["TEXT/PLAIN", "text", "text"],
    ["application/openmetrics-text; version=1.0.0; charset=utf-8", "openmetrics", "openmetrics"],
    ["application/openmetrics-text; version=0.0.1", "openmetrics", "openmetrics"],
    ["application/openmetrics-text; version=2.0.0", "openmetrics", /OpenMetrics 2.0/],
    ["application/json", "text", /unsupported Content-Type/],
    ["text/html; charset", "text", /unparsable Content-Type/],
    ["application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily", /protobuf/, /protobuf/],
  ];
  for (const [ct, v2, v3] of cases) {
    test(`${JSON.stringify(ct)}`, () => {
      for (const [dialect, want] of [
        [V2, v2],
        [V3, v3],
      ] as const) {
        if (typeof want === "string") assert.equal(formatFromContentType(ct, { dialect }), want);
        else assert.throws(() => formatFromContentType(ct, { dialect }), want);
      }
    });
  }
  test("3.x fallback_scrape_protocol", () => {
    assert.equal(formatFromContentType(undefined, { fallback: "openmetrics" }), "openmetrics");
    assert.equal(formatFromContentType("application/json", { fallback: "text" }), "text");
  });
});

describe("properties", () => {
  const samples = [
    fixture("basic.txt"),
    fixture("histogram.txt"),
    fixture("duplicates.txt"),
    'a{b="ü ☃ 𝄞",c="x\ny"} 1\n{"mé.tric"} 2\n# HELP é 𝄞\n',
    "a 1\n\0after a NUL\n",
  ];
  const omSamples = [fixture("openmetrics.txt"), 'a_total{b="𝄞"} 1 # {t="ü"} 1 1.5\n# EOF'];

  function splitCount(bytes: Uint8Array, cuts: number[], opts: SeriesCounterOptions): SeriesCount | string {
    try {
      const c = createSeriesCounter(opts);
      let at = 0;
      for (const cut of [...new Set(cuts)].sort((x, y) => x - y)) {
        c.write(bytes.subarray(at, cut));
        at = cut;
      }
      c.write(bytes.subarray(at));
      return c.end();
    } catch (e) {
      assert.ok(e instanceof PromshardError, String(e));
      return "error";
    }
  }

  test("any split of the input counts the same as the whole (bytes and strings)", () => {
    const enc = new TextEncoder();
    const inputs = [
      ...samples.map((s) => ({ s, format: "text" as const })),
      ...omSamples.map((s) => ({ s, format: "openmetrics" as const })),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...inputs),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.constantFrom(V2, V3),
        fc.boolean(),
        ({ s, format }, rawCuts, dialect, relabel) => {
          const bytes = enc.encode(s);
          const opts: SeriesCounterOptions = {
            format,
            dialect,
            ...(relabel ? { metricRelabel: (l: Labels) => (l.__name__?.startsWith("a") ? null : l) } : {}),
          };
          const whole = splitCount(bytes, [], opts);
          const cuts = rawCuts.map((c) => c % (bytes.length + 1));
          assert.deepEqual(splitCount(bytes, cuts, opts), whole);
          // String chunks, cut between UTF-16 code units (even inside a surrogate pair).
          const c = createSeriesCounter(opts);
          let at = 0;
          try {
            for (const cut of [...new Set(rawCuts.map((x) => x % (s.length + 1)))].sort((x, y) => x - y)) {
              c.write(s.slice(at, cut));
              at = cut;
            }
            c.write(s.slice(at));
            assert.deepEqual(c.end(), whole);
          } catch (e) {
            assert.ok(e instanceof PromshardError);
            assert.equal(whole, "error");
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test("random splits of random near-valid input agree too", () => {
    const alphabet = [
      "a",
      "_total",
      "{",
      "}",
      '"',
      "=",
      ",",
      " ",
      "\t",
      "\n",
      "#",
      " HELP ",
      " TYPE ",
      "1",
      "\\",
      "\0",
      "é",
      "# EOF\n",
    ];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...alphabet), { maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.constantFrom<ExpositionFormat>("text", "openmetrics"),
        fc.constantFrom(V2, V3),
        (parts, rawCuts, format, dialect) => {
          const bytes = new TextEncoder().encode(parts.join(""));
          const opts = { format, dialect };
          assert.deepEqual(
            splitCount(
              bytes,
              rawCuts.map((c) => c % (bytes.length + 1)),
              opts,
            ),
            splitCount(bytes, [], opts),
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("random bytes never throw anything but PromshardError", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom<ExpositionFormat>("text", "openmetrics"),
        fc.constantFrom(V2, V3),
        fc.boolean(),
        (bytes, format, dialect, relabel) => {
          try {
            const r = countSeries(bytes, { format, dialect, ...(relabel ? { metricRelabel: (l: Labels) => l } : {}) });
            assert.ok(r.samples >= r.series && r.series >= 0);
          } catch (e) {
            assert.ok(e instanceof PromshardError && e.code === "exposition_invalid", String(e));
            assert.match(e.message, /^line \d+, column \d+: /);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  test("maxLineBytes bounds one entry, whole or streamed", () => {
    const long = `a{b="${"x".repeat(2000)}"} 1\n`;
    assert.throws(() => countSeries(long, { format: "text", maxLineBytes: 1000 }), /longer than 1000 bytes/);
    const c = createSeriesCounter({ format: "text", maxLineBytes: 1000 });
    assert.throws(() => {
      for (let k = 0; k < long.length; k += 100) c.write(long.slice(k, k + 100));
      c.end();
    }, /longer than 1000 bytes/);
    assert.deepEqual(countSeries(long, { format: "text", maxLineBytes: 5000 }), { samples: 1, series: 1 });
  });
});
