/**
 * `GET /api/v1/runtime?since=<token>` (src/contract/runtime-report.ts, RuntimeChanges): a
 * report asked with the last token lists only the targets whose state changed; a token of
 * another process, assignment or config, or one from the future, gets the whole report.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RuntimeChanges, type RuntimeTarget } from "../../src/contract/runtime-report.ts";

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

  it("answers whole for a token of another process, assignment or config, or from the future", () => {
    const c = new RuntimeChanges("p1");
    const { token } = c.note("v1", [t("a", 1)], undefined);
    assert.equal(new RuntimeChanges("p2").note("v1", [t("a", 1)], token).changed, undefined, "restarted");
    assert.equal(c.note("v2", [t("a", 1)], token).changed, undefined, "another assignment");
    const again = c.note("v2", [t("a", 1)], undefined).token;
    assert.equal(c.note("v2", [t("a", 1)], again.replace(/\d+$/, "99")).changed, undefined, "future");
    assert.equal(c.note("v2", [t("a", 1)], "garbage").changed, undefined);
    assert.deepEqual(c.note("v2", [t("a", 1)], again).changed, []);
  });
});
