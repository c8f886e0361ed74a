import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { PromshardError } from "../../src/errors.ts";
import type { Labels } from "../../src/prom/labels.ts";
import { parseRelabelConfig, parseRelabelConfigs, relabel } from "../../src/prom/relabel.ts";
import { dialectFor } from "../../src/prom/version.ts";

const v3 = dialectFor("3.16");
const v2 = dialectFor("2.42");

function run(labels: Labels, rules: object[], dialect = v3): Labels | null {
  const parsed = parseRelabelConfigs(rules, dialect, "relabel_configs");
  assert.deepEqual(parsed.errors, []);
  return relabel(labels, parsed.rules, dialect);
}

describe("relabel actions", () => {
  const cases: { name: string; in: Labels; rules: object[]; out: Labels | null; dialect?: typeof v2 }[] = [
    {
      name: "replace with defaults copies the source value",
      in: { a: "foo" },
      rules: [{ source_labels: ["a"], target_label: "b" }],
      out: { a: "foo", b: "foo" },
    },
    {
      name: "replace joins sources with the separator and expands groups",
      in: { a: "foo", b: "bar" },
      rules: [
        { source_labels: ["a", "b"], separator: "-", regex: "(f.*)-(b.*)", target_label: "c", replacement: "${2}_$1" },
      ],
      out: { a: "foo", b: "bar", c: "bar_foo" },
    },
    {
      name: "replace does nothing when the regex does not match",
      in: { a: "foo" },
      rules: [{ source_labels: ["a"], regex: "bar", target_label: "b", replacement: "x" }],
      out: { a: "foo" },
    },
    {
      name: "regex is anchored at both ends",
      in: { a: "xfoox" },
      rules: [{ source_labels: ["a"], regex: "foo", target_label: "b", replacement: "y" }],
      out: { a: "xfoox" },
    },
    {
      name: "an empty replacement deletes the target label",
      in: { a: "foo", b: "bar" },
      rules: [{ source_labels: ["a"], target_label: "b", replacement: "" }],
      out: { a: "foo" },
    },
    {
      name: "$1x names group 1x, which does not exist, so it expands to nothing",
      in: { a: "foo" },
      rules: [{ source_labels: ["a"], regex: "(.*)", target_label: "b", replacement: "$1x" }],
      out: { a: "foo" },
    },
    {
      name: "a missing source label reads as empty",
      in: { a: "foo" },
      rules: [{ source_labels: ["missing"], regex: "", target_label: "b", replacement: "was-empty" }],
      out: { a: "foo", b: "was-empty" },
    },
    {
      name: "a target label that expands to an invalid name leaves the set alone",
      in: { a: "1bad" },
      rules: [{ source_labels: ["a"], regex: "(.*)", target_label: "$1", replacement: "v" }],
      out: { a: "1bad" },
      dialect: v2,
    },
    {
      name: "Prometheus 3 accepts any UTF-8 target name after expansion",
      in: { a: "1bad.name" },
      rules: [{ source_labels: ["a"], regex: "(.*)", target_label: "$1", replacement: "v" }],
      out: { a: "1bad.name", "1bad.name": "v" },
    },
    {
      name: "keep keeps a match",
      in: { a: "foo" },
      rules: [{ action: "keep", source_labels: ["a"], regex: "f.*" }],
      out: { a: "foo" },
    },
    {
      name: "keep drops a miss",
      in: { a: "foo" },
      rules: [{ action: "keep", source_labels: ["a"], regex: "b.*" }],
      out: null,
    },
    {
      name: "drop drops a match",
      in: { a: "foo" },
      rules: [{ action: "drop", source_labels: ["a"], regex: "f.*" }],
      out: null,
    },
    {
      name: "action names are case-insensitive",
      in: { a: "foo" },
      rules: [{ action: "DROP", source_labels: ["a"], regex: "f.*" }],
      out: null,
    },
    {
      name: "keepequal keeps when the target label equals the source value",
      in: { a: "x", b: "x" },
      rules: [{ action: "keepequal", source_labels: ["a"], target_label: "b" }],
      out: { a: "x", b: "x" },
    },
    {
      name: "dropequal drops when the target label equals the source value",
      in: { a: "x", b: "x" },
      rules: [{ action: "dropequal", source_labels: ["a"], target_label: "b" }],
      out: null,
    },
    {
      name: "hashmod: md5, last 8 bytes big-endian, modulo",
      in: { a: "foo" },
      rules: [{ action: "hashmod", source_labels: ["a"], modulus: 1000, target_label: "h" }],
      // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; 0xedef654fccc4a4d8 % 1000
      out: { a: "foo", h: String(0xedef654fccc4a4d8n % 1000n) },
    },
    {
      name: "labelmap copies matching names through the replacement",
      in: { __meta_kubernetes_pod_label_app: "web", __meta_kubernetes_pod_label_tier: "fe", other: "x" },
      rules: [{ action: "labelmap", regex: "__meta_kubernetes_pod_label_(.+)" }],
      out: {
        __meta_kubernetes_pod_label_app: "web",
        __meta_kubernetes_pod_label_tier: "fe",
        app: "web",
        other: "x",
        tier: "fe",
      },
    },
    {
      name: "labelmap maps from the label set as it was before the rule",
      in: { a: "1", x_a: "2" },
      rules: [{ action: "labelmap", regex: "(.+)", replacement: "x_$1" }],
      out: { a: "1", x_a: "1", x_x_a: "2" },
    },
    {
      name: "labeldrop removes matching names",
      in: { a: "1", ab: "2", b: "3" },
      rules: [{ action: "labeldrop", regex: "a.*" }],
      out: { b: "3" },
    },
    {
      name: "labelkeep keeps only matching names",
      in: { a: "1", ab: "2", b: "3" },
      rules: [{ action: "labelkeep", regex: "a.*" }],
      out: { a: "1", ab: "2" },
    },
    {
      name: "lowercase follows Go's simple case mapping",
      in: { a: "ÄÖÜ İ ΣΑΣ" },
      rules: [{ action: "lowercase", source_labels: ["a"], target_label: "b" }],
      out: { a: "ÄÖÜ İ ΣΑΣ", b: "äöü i σασ" },
    },
    {
      name: "uppercase keeps ß (no single-code-point capital in Go's table)",
      in: { a: "straße ǆ" },
      rules: [{ action: "uppercase", source_labels: ["a"], target_label: "b" }],
      out: { a: "straße ǆ", b: "STRAßE Ǆ" },
    },
    {
      name: "Prometheus 3 regexes are dot-all",
      in: { a: "x\ny" },
      rules: [{ action: "keep", source_labels: ["a"], regex: "x.y" }],
      out: { a: "x\ny" },
    },
    {
      name: "Prometheus 2 regexes are not dot-all",
      in: { a: "x\ny" },
      rules: [{ action: "keep", source_labels: ["a"], regex: "x.y" }],
      out: null,
      dialect: v2,
    },
    {
      name: "Prometheus 2 deletes the unexpanded target label when the replacement is empty",
      in: { a: "foo", foo: "kept-in-2" },
      rules: [{ source_labels: ["a"], regex: "(.*)", target_label: "$1", replacement: "" }],
      out: { a: "foo", foo: "kept-in-2" },
      dialect: v2,
    },
    {
      name: "Prometheus 3 deletes the expanded target label when the replacement is empty",
      in: { a: "foo", foo: "gone-in-3" },
      rules: [{ source_labels: ["a"], regex: "(.*)", target_label: "$1", replacement: "" }],
      out: { a: "foo" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(run(c.in, c.rules, c.dialect ?? v3), c.out));
  }
});

describe("relabel config validation", () => {
  const bad: { rule: object; field: RegExp; dialect?: typeof v2 }[] = [
    { rule: { action: "bogus" }, field: /action: unknown relabel action "bogus"/ },
    {
      rule: { action: "hashmod", source_labels: ["a"], target_label: "h" },
      field: /modulus: hashmod needs a non-zero modulus/,
    },
    { rule: { source_labels: ["a"] }, field: /target_label: the replace action needs a target_label/ },
    {
      rule: { action: "lowercase", source_labels: ["a"], target_label: "b", replacement: "x" },
      field: /replacement cannot be set/,
    },
    {
      rule: { action: "keepequal", source_labels: ["a"], target_label: "b", regex: "x" },
      field: /takes only source_labels and target_label/,
    },
    { rule: { action: "labeldrop", source_labels: ["a"], regex: "x" }, field: /takes only regex/ },
    { rule: { action: "labelmap", regex: "(.*)", replacement: "1-bad" }, field: /not a valid label name/, dialect: v2 },
    { rule: { source_labels: ["a"], target_label: "bad-name" }, field: /not a valid target_label/, dialect: v2 },
    { rule: { source_labels: ["a"], regex: "a(b", target_label: "c" }, field: /regex/ },
    { rule: { source_labels: ["a"], target_label: "c", colour: "x" }, field: /colour: unknown field/ },
    { rule: { source_labels: ["bad-name"], target_label: "c" }, field: /source_labels\[0\]/, dialect: v2 },
  ];
  for (const b of bad) {
    it(`refuses ${JSON.stringify(b.rule)}`, () => {
      assert.throws(
        () => parseRelabelConfig(b.rule, b.dialect ?? v3, "scrape_configs[0].relabel_configs[0]"),
        (err: unknown) => {
          assert.ok(err instanceof PromshardError);
          assert.equal(err.code === "relabel_invalid" || err.code === "regex_invalid", true);
          assert.match(err.message, /^scrape_configs\[0\]\.relabel_configs\[0\]/);
          assert.match(err.message, b.field);
          return true;
        },
      );
    });
  }

  it("collects every bad rule of a list, not just the first", () => {
    const { rules, errors } = parseRelabelConfigs(
      [{ action: "x" }, { source_labels: ["a"], target_label: "b" }, {}],
      v3,
      "r",
    );
    // `{}` is a replace without target_label: refused too.
    assert.equal(rules.length, 1);
    assert.deepEqual(
      errors.map((e) => e.path),
      ["r[0].action", "r[2].target_label"],
    );
  });
});

describe("relabel properties", () => {
  const labelsArb = fc.dictionary(
    fc.constantFrom("a", "b", "c", "__meta_x", "__address__"),
    fc.string({ minLength: 1, maxLength: 6 }),
    {
      maxKeys: 5,
    },
  );

  it("never returns empty values and always sorts names", () => {
    fc.assert(
      fc.property(labelsArb, fc.constantFrom("a", "b"), fc.string({ maxLength: 4 }), (labels, target, replacement) => {
        const out = run(labels, [{ source_labels: ["c"], target_label: target, replacement }]);
        assert.ok(out);
        for (const v of Object.values(out)) assert.notEqual(v, "");
        assert.deepEqual(Object.keys(out), [...Object.keys(out)].sort());
      }),
    );
  });

  it("keep and drop with the same regex partition every label set", () => {
    fc.assert(
      fc.property(labelsArb, fc.constantFrom("(.*)", "", "a.*", "x|y"), (labels, regex) => {
        const keep = run(labels, [{ action: "keep", source_labels: ["a"], regex }]);
        const drop = run(labels, [{ action: "drop", source_labels: ["a"], regex }]);
        assert.equal(keep === null, drop !== null);
      }),
    );
  });

  it("hashmod always lands in [0, modulus)", () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 2 ** 40 }), (v, modulus) => {
        const out = run({ a: v }, [{ action: "hashmod", source_labels: ["a"], modulus, target_label: "h" }]);
        const h = Number(out?.h);
        assert.ok(h >= 0 && h < modulus && Number.isInteger(h));
      }),
    );
  });

  it("relabeling does not change its input", () => {
    fc.assert(
      fc.property(labelsArb, (labels) => {
        const copy = { ...labels };
        run(labels, [
          { action: "labelmap", regex: "(.*)", replacement: "x_$1" },
          { action: "labeldrop", regex: "a" },
        ]);
        assert.deepEqual({ ...labels }, copy);
      }),
    );
  });
});
