/**
 * Delta pushes (src/contract/assignment.ts): the coordinator's diff and the sidecar's apply are
 * pure; applying the diff of two sets to the first gives the second (a property over random
 * sets), and a delta not made from the held set is refused with `assignment_base_mismatch`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  type AssignedTarget,
  applyAssignmentDelta,
  diffAssignment,
  type ParsedDelta,
  parseAssignmentDelta,
} from "../../src/contract/assignment.ts";
import { PromshardError, PromshardErrors } from "../../src/errors.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { dialectFor } from "../../src/prom/version.ts";

const config = parseConfig(
  `scrape_configs:
- job_name: a
  file_sd_configs: [{files: [/tmp/none-*.json]}]
- job_name: b
  file_sd_configs: [{files: [/tmp/none-*.json]}]
- job_name: __proto__
  file_sd_configs: [{files: [/tmp/none-*.json]}]
`,
  { dialect: dialectFor("3.16") },
);

const t = (id: string, job = "a", extra: Record<string, string> = {}): AssignedTarget => ({
  id,
  job,
  labels: { __address__: `${id}:9100`, ...extra },
  sdIndex: 0,
});
const byId = (ts: readonly AssignedTarget[]) => new Map(ts.map((x) => [x.id!, x]));
const same = (x: AssignedTarget, y: AssignedTarget) => JSON.stringify(x) === JSON.stringify(y);

/** The delta from `base` to `next` as the sidecar reads it off the wire. */
function delta(base: readonly AssignedTarget[], next: readonly AssignedTarget[], version = 2, from = 1): ParsedDelta {
  const changes = diffAssignment(byId(base), byId(next), same, (x) => x);
  const body = JSON.parse(JSON.stringify({ version, base: from, count: next.length, ...changes }));
  return parseAssignmentDelta(body, config);
}

const mismatch = (e: unknown) => e instanceof PromshardError && e.code === "assignment_base_mismatch";

describe("assignment delta", () => {
  it("carries only what was added, removed or changed, per job", () => {
    const base = [t("1"), t("2"), t("3", "b")];
    const next = [t("1"), t("3", "b", { zone: "z" }), t("4", "b")];
    const changes = diffAssignment(byId(base), byId(next), same, (x) => x);
    assert.deepEqual(changes.remove, ["2"]);
    assert.deepEqual(Object.keys(changes.set), ["b"]);
    assert.deepEqual(
      changes.set.b!.map((x) => x.id),
      ["3", "4"],
    );
    assert.ok(!("job" in changes.set.b![0]!), "the job is the key, not repeated per target");
  });

  it("keeps the held order, a changed target in its place, new ones last", () => {
    const base = [t("1"), t("2"), t("3")];
    const next = [t("3"), t("2", "a", { v: "2" }), t("5"), t("1")];
    const out = applyAssignmentDelta(base, delta(base, next));
    assert.deepEqual(
      out.map((x) => x.id),
      ["1", "2", "3", "5"],
    );
    assert.equal(out[1]!.labels.v, "2");
  });

  it("a job named __proto__ stays a job", () => {
    const base = [t("1")];
    const next = [t("1"), t("2", "__proto__")];
    const changes = diffAssignment(byId(base), byId(next), same, (x) => x);
    assert.ok(Object.hasOwn(changes.set, "__proto__"));
    const out = applyAssignmentDelta(base, delta(base, next));
    assert.deepEqual(
      out.map((x) => [x.id, x.job]),
      [
        ["1", "a"],
        ["2", "__proto__"],
      ],
    );
  });

  it("refuses a delta not made from the held set: base_mismatch, never a partial apply", () => {
    const base = [t("1"), t("2")];
    const d = delta(base, [t("1")]);
    assert.throws(() => applyAssignmentDelta([t("1"), t("3")], d), mismatch, "removes a target not held");
    assert.throws(() => applyAssignmentDelta([t("1"), t("2"), t("3")], d), mismatch, "counts differ");
    const { id: _, ...noId } = t("1");
    assert.throws(() => applyAssignmentDelta([noId, t("2")], d), mismatch, "a set pushed without ids");
    assert.throws(() => applyAssignmentDelta([t("1"), t("2")], { ...d, remove: ["2", "9"] }), /send the whole set/);
  });

  it("a target the sidecar leaves out is not held after the delta, as after a whole set", () => {
    const base = [t("1"), t("2")];
    const bad = { ...t("2"), labels: { __address__: "x:1", v: 1 as unknown as string } };
    const next = [t("1"), bad, t("3", "nope")];
    const d = delta(base, next);
    assert.deepEqual(
      d.rejected.map((r) => [r.id, r.job]),
      [
        ["2", "a"],
        ["3", "nope"],
      ],
    );
    assert.deepEqual(
      applyAssignmentDelta(base, d).map((x) => x.id),
      ["1"],
    );
  });

  it("a malformed delta is refused whole, each problem naming its field", () => {
    const bad = (body: unknown, field: RegExp) =>
      assert.throws(
        () => parseAssignmentDelta(body, config),
        (e) => e instanceof PromshardErrors && e.errors.some((x) => field.test(x.message)),
        JSON.stringify(body),
      );
    const ok = { version: 3, base: 2, count: 1, set: {}, remove: [] };
    assert.equal(parseAssignmentDelta(ok, config).version, 3);
    bad("x", /^delta: must be a JSON object/);
    bad({ ...ok, extra: 1 }, /^delta\.extra: unknown field/);
    bad({ ...ok, version: 2 }, /^delta\.version: must be greater than base/);
    bad({ ...ok, base: -1 }, /^delta\.base: must be a non-negative integer/);
    bad({ ...ok, count: "1" }, /^delta\.count: must be a non-negative integer/);
    bad({ ...ok, set: [] }, /^delta\.set: must be an object of job names/);
    bad({ ...ok, set: { a: {} } }, /^delta\.set\."a": must be an object/);
    bad({ ...ok, set: { a: [{ labels: { __address__: "x:1" } }] } }, /^delta\.set\."a"\[0\]\.id: every target/);
    bad({ ...ok, remove: [1] }, /^delta\.remove: must be a list of target ids/);
  });

  it("property: applying the diff of two sets to the first gives the second", () => {
    const label = fc.constantFrom("x", "y", "z");
    const target = fc.record({
      id: fc.integer({ min: 0, max: 40 }).map(String),
      job: fc.constantFrom("a", "b", "__proto__"),
      labels: fc.record({ __address__: fc.constantFrom("h:1", "h:2"), zone: label }, { requiredKeys: ["__address__"] }),
      sdIndex: fc.constant(0),
      split: fc.option(
        fc.record({ part: fc.constantFrom(0, 1), parts: fc.constant(2), by: fc.constant(["__name__"]) }),
        { nil: undefined },
      ),
    });
    const set = fc
      .uniqueArray(target, { selector: (x) => x.id, maxLength: 30 })
      .map((ts) => ts.map((x) => JSON.parse(JSON.stringify(x)) as AssignedTarget));
    fc.assert(
      fc.property(set, set, (base, next) => {
        const out = applyAssignmentDelta(base, delta(base, next));
        assert.deepEqual(byId(out), byId(next));
        assert.equal(out.length, next.length);
      }),
      { numRuns: 500 },
    );
  });
});
