/**
 * `GET /api/v1/runtime?since=<token>` (src/contract/runtime-report.ts, RuntimeChanges): a
 * report asked with the last token lists only the targets whose state changed and, for a
 * client that applies them, the ids gone; a token of another process or config, one from the
 * future or one older than the removals kept, gets the whole report. A client applying every
 * partial report to its list (mergeRuntimeTargets) always holds the whole report.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { mergeRuntimeTargets, RuntimeChanges, type RuntimeTarget } from "../../src/contract/runtime-report.ts";

type T = Pick<RuntimeTarget, "id" | "status" | "health" | "series" | "lastError">;
const t = (id: string | null, series: number, health: T["health"] = "up"): T => ({
  id,
  status: "scraped",
  health,
  series,
  lastError: null,
});

describe("runtime report changes since a token", () => {
  it("lists only what changed after the token, nothing when nothing did", () => {
    const c = new RuntimeChanges("p1");
    const first = c.note("v1", [t("a", 10), t("b", 20), t(null, 0)], undefined);
    assert.equal(first.changed, undefined, "no token: the whole report");
    const same = c.note("v1", [t("a", 10), t("b", 20)], first.token);
    assert.deepEqual(same.changed, []);
    assert.equal(same.token, first.token, "nothing changed: the same token");
    const grew = c.note("v1", [t("a", 10), t("b", 25)], same.token);
    assert.deepEqual(
      grew.changed?.map((x) => x.id),
      ["b"],
    );
    const down = c.note("v1", [t("a", 10, "down"), t("b", 25)], first.token);
    assert.deepEqual(
      down.changed?.map((x) => x.id),
      ["a", "b"],
      "from an older token, everything changed since it",
    );
  });

  it("answers whole for a token of another process or config, or from the future", () => {
    const c = new RuntimeChanges("p1");
    const { token } = c.note("v1", [t("a", 1)], undefined);
    assert.equal(new RuntimeChanges("p2").note("v1", [t("a", 1)], token).changed, undefined, "restarted");
    assert.equal(c.note("v2", [t("a", 1)], token).changed, undefined, "another config");
    const again = c.note("v2", [t("a", 1)], undefined).token;
    assert.equal(c.note("v2", [t("a", 1)], again.replace(/\d+$/, "99")).changed, undefined, "future");
    assert.equal(c.note("v2", [t("a", 1)], "garbage").changed, undefined);
    assert.deepEqual(c.note("v2", [t("a", 1)], again).changed, []);
  });

  it("names the ids gone to a client that applies removals; whole to one that does not", () => {
    const c = new RuntimeChanges("p1");
    const first = c.note("v1", [t("a", 1), t("b", 2)], undefined).token;
    const pushed = c.note("v1", [t("b", 2), t("c", 3)], first, true);
    assert.deepEqual(
      pushed.changed?.map((x) => x.id),
      ["c"],
    );
    assert.deepEqual(pushed.removed, ["a"]);
    assert.equal(c.note("v1", [t("b", 2), t("c", 3)], first).changed, undefined, "no removals asked: whole");
    const back = c.note("v1", [t("a", 1), t("b", 2), t("c", 3)], pushed.token, true);
    assert.deepEqual(
      back.changed?.map((x) => x.id),
      ["a"],
      "an id that comes back is new again",
    );
    assert.deepEqual(back.removed, []);
    assert.deepEqual(c.note("v1", [t("a", 1), t("b", 2), t("c", 3)], first, true).removed, [], "a is back");
  });

  it("forgets old removals past a bound: tokens from before answer whole", () => {
    const c = new RuntimeChanges("p1");
    const first = c.note("v1", [t("keep", 1)], undefined).token;
    let token = first;
    for (let round = 0; round < 3; round++) {
      const many = Array.from({ length: 700 }, (_, i) => t(`r${round}-${i}`, 1));
      token = c.note("v1", [t("keep", 1), ...many], token, true).token;
      token = c.note("v1", [t("keep", 1)], token, true).token;
    }
    assert.equal(c.note("v1", [t("keep", 1)], first, true).changed, undefined, "too old: whole");
    assert.deepEqual(c.note("v1", [t("keep", 1)], token, true).changed, []);
  });

  it("a client merging every partial report holds the whole report (property)", () => {
    const ids = fc.constantFrom("a", "b", "c", "d", "e", "f");
    const report = fc.uniqueArray(fc.record({ id: ids, series: fc.integer({ min: 0, max: 3 }) }), {
      selector: (x) => x.id,
      maxLength: 6,
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(report, fc.boolean()), { minLength: 1, maxLength: 12 }), (reports) => {
        const c = new RuntimeChanges("p");
        let token: string | undefined;
        let held: readonly (T & { id: string })[] = [];
        for (const [r, reset] of reports) {
          const targets = r.map((x) => ({ ...t(x.id, x.series), id: x.id }));
          const answer = c.note("v", targets, reset ? undefined : token, true);
          token = answer.token;
          held = answer.changed === undefined ? targets : mergeRuntimeTargets(held, answer.changed, answer.removed);
          const view = (ts: readonly T[]) => ts.map((x) => `${x.id}:${x.series}`).sort();
          assert.deepEqual(view(held), view(targets));
        }
      }),
    );
  });
});

describe("merging a partial report", () => {
  it("replaces, appends and drops; the same list back when nothing changed", () => {
    const last = [
      { id: "a", v: 1 },
      { id: "b", v: 1 },
    ];
    assert.equal(mergeRuntimeTargets(last, [], []), last);
    assert.deepEqual(
      mergeRuntimeTargets(
        last,
        [
          { id: "b", v: 2 },
          { id: "c", v: 1 },
        ],
        ["a"],
      ),
      [
        { id: "b", v: 2 },
        { id: "c", v: 1 },
      ],
    );
  });
});
