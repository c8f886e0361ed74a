import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { labelKeyErrors, parseFieldSelector, parseLabelSelector } from "../../src/prom/sd/selectors.ts";

// Expected messages are what Prometheus 3.16 reports for these selectors (apimachinery v0.37's
// labels.Parse and fields.ParseSelector), checked by loading each through SDConfig.UnmarshalYAML.

describe("parseLabelSelector", () => {
  const cases: [string, string | undefined][] = [
    ["", undefined],
    ["app", undefined],
    ["!app", undefined],
    ["app=web", undefined],
    ["app==web", undefined],
    ["app!=web", undefined],
    ["app in (a,b)", undefined],
    ["app notin (a)", undefined],
    ["app in ()", undefined],
    ["app in (a,,b)", undefined],
    ["app in (,)", undefined],
    ["x>5", undefined],
    [
      "x<-5",
      "unable to parse requirement: values[0][x]: Invalid value: \"-5\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    ],
    [
      "x>a",
      "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
    ],
    [
      "x>",
      "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer",
    ],
    ["a=", undefined],
    ["a,b", undefined],
    ["a,", "found '', expected: identifier after ','"],
    [",a", "found ',', expected: !, identifier, or 'end of string'"],
    ["a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"],
    ["a=(", "unable to parse requirement: found '(', expected: identifier"],
    ["a in b", "unable to parse requirement: found 'b' expected: '('"],
    ["a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"],
    [
      "a/b/c",
      "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ],
    ["/a", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'],
    [
      "a/",
      "unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ],
    [
      "-a",
      "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ],
    [
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      'unable to parse requirement: <nil>: Invalid value: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": name part must be no more than 63 bytes',
    ],
    ["example.com/app=v", undefined],
    [
      "Example.com/app",
      "unable to parse requirement: <nil>: Invalid value: \"Example.com/app\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ],
    ["a=b c", "found 'c', expected: ',' or 'end of string'"],
    ["a=b=c", "found '=', expected: ',' or 'end of string'"],
    ["in", undefined],
    ["notin=x", undefined],
    ["a in (in,notin)", undefined],
    ["a!", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"],
    ["a=!", "unable to parse requirement: found '!', expected: identifier"],
    ["a>>1", "unable to parse requirement: found '>', expected: identifier"],
    ["!a=b", "found '=', expected: ',' or 'end of string'"],
    [
      "a=-b",
      "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    ],
    ["a in (b", "unable to parse requirement: found '', expected: ',' or ')'"],
    [
      "x>99999999999999999999",
      "unable to parse requirement: values[0]: Invalid value: \"99999999999999999999\": for 'Gt', 'Lt' operators, the value must be an integer",
    ],
    [
      "é=a",
      "unable to parse requirement: <nil>: Invalid value: \"é\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ],
    [
      "a=é",
      "unable to parse requirement: values[0][a]: Invalid value: \"é\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    ],
    ["a\u0000b=c", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"],
  ];
  for (const [selector, want] of cases) {
    it(JSON.stringify(selector), () => {
      const r = parseLabelSelector(selector);
      assert.equal(r.ok ? undefined : r.error, want);
    });
  }

  it("returns requirements sorted by key, values sorted and de-duplicated", () => {
    const r = parseLabelSelector("z in (b,a,b), !y, x, w>3, v notin (), u==1");
    assert.deepEqual(r, {
      ok: true,
      value: [
        { key: "u", operator: "==", values: ["1"] },
        { key: "v", operator: "notin", values: [""] },
        { key: "w", operator: "gt", values: ["3"] },
        { key: "x", operator: "exists", values: [] },
        { key: "y", operator: "!", values: [] },
        { key: "z", operator: "in", values: ["a", "b"] },
      ],
    });
  });

  it("validates label keys like content.IsLabelKey", () => {
    assert.deepEqual(labelKeyErrors("example.com/name"), []);
    assert.deepEqual(labelKeyErrors("a/b/c").length, 1);
    assert.deepEqual(labelKeyErrors("/x"), ["prefix part must be non-empty"]);
  });
});

describe("parseFieldSelector", () => {
  const cases: [string, string | undefined][] = [
    ["", undefined],
    ["a=b", undefined],
    ["a==b", undefined],
    ["a!=b", undefined],
    ["a", "invalid selector: 'a'; can't understand 'a'"],
    ["a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"],
    ["a=b=c", "invalid field selector: unescaped character in value: 61"],
    ["a=b,c=d\\,e", undefined],
    ["a=\\x", "invalid field selector: invalid escape sequence: \\x"],
    ["a=b\\", "invalid field selector: invalid escape sequence: \\"],
    ["=b", undefined],
    ["a=", undefined],
    [",,", undefined],
    ["metadata.name=x,status.phase!=Running", undefined],
    ["a=b\\,c,d", "invalid selector: 'a=b\\,c,d'; can't understand 'd'"],
    ["a\\=b=c", "invalid field selector: unescaped character in value: 61"],
    ["a!b", "invalid selector: 'a!b'; can't understand 'a!b'"],
    ["a=é,b", "invalid selector: 'a=é,b'; can't understand 'b'"],
  ];
  for (const [selector, want] of cases) {
    it(JSON.stringify(selector), () => {
      const r = parseFieldSelector(selector);
      assert.equal(r.ok ? undefined : r.error, want);
    });
  }

  it("unescapes values and sorts terms", () => {
    assert.deepEqual(parseFieldSelector("status.phase!=Running,metadata.name=a\\,b"), {
      ok: true,
      value: [
        { field: "metadata.name", operator: "=", value: "a,b" },
        { field: "status.phase", operator: "!=", value: "Running" },
      ],
    });
  });
});
