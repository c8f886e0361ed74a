/** HA replica groups: one shard index over its copies (src/coordinator/replica-groups.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeReplicaRuntimes, replicatedShardClient } from "../../src/coordinator/replica-groups.ts";
import type { ShardClient, ShardRuntime } from "../../src/coordinator/shards.ts";
import { PromshardError } from "../../src/errors.ts";

const rt = (o: Partial<ShardRuntime> & { up?: string[]; down?: string[] } = {}): ShardRuntime => ({
  healthy: o.healthy ?? true,
  version: o.version ?? 3,
  assigned: o.assigned ?? ["a", "b"],
  targets: [
    ...(o.up ?? ["a", "b"]).map((id) => ({ id, up: true, series: 10, health: "up" })),
    ...(o.down ?? []).map((id) => ({ id, up: false, series: null, health: "down", lastError: "refused" })),
  ],
  headSeries: o.headSeries ?? 20,
});

describe("replica groups: one shard index over its copies", () => {
  it("an index is down only when every copy is", () => {
    assert.equal(mergeReplicaRuntimes([rt(), undefined]).healthy, true);
    assert.equal(mergeReplicaRuntimes([rt({ healthy: false }), rt()]).healthy, true);
    assert.equal(mergeReplicaRuntimes([rt({ healthy: false }), undefined]).healthy, false);
    // The version sequence continues from the highest copy, healthy or not.
    assert.equal(mergeReplicaRuntimes([rt({ healthy: false, version: 9 }), undefined]).version, 9);
  });

  it("a target is scraped only when every healthy copy scrapes it (no copy has a hole after a move)", () => {
    const m = mergeReplicaRuntimes([rt(), rt({ up: ["a"], down: ["b"] })]);
    assert.deepEqual(
      m.targets.map((t) => [t.id, t.up]),
      [
        ["a", true],
        ["b", false],
      ],
    );
    assert.equal(m.targets.find((t) => t.id === "b")?.lastError, "refused", "the copy that is down says why");
    // A target one copy does not even have yet is not scraped.
    const partial = mergeReplicaRuntimes([rt({ up: ["a", "b", "c"] }), rt()]);
    assert.equal(partial.targets.find((t) => t.id === "c")?.up, false);
    // A copy that is down does not hold the others back.
    assert.ok(mergeReplicaRuntimes([rt(), rt({ healthy: false, up: [] })]).targets.every((t) => t.up));
  });

  it("copies with different assignments are diverged, so the coordinator pushes again", () => {
    assert.equal(mergeReplicaRuntimes([rt(), rt()]).diverged, undefined);
    // A new pod of group 1 with no assignment yet: the first copy's set matches, yet it must be pushed.
    const m = mergeReplicaRuntimes([rt(), rt({ version: -1, assigned: [], up: [] })]);
    assert.equal(m.diverged, true);
    assert.deepEqual(m.assigned, ["a", "b"]);
    assert.equal(mergeReplicaRuntimes([rt(), rt({ version: 2 })]).diverged, true);
  });

  it("pushes to every copy, fails only when none took it, and reports what was left out once", async () => {
    const pushed: string[] = [];
    const copy = (name: string, fail = false): ShardClient => ({
      runtime: async () => {
        if (fail) throw new PromshardError("sidecar_request_failed", `${name} unreachable`);
        return rt();
      },
      assign: async () => {
        if (fail) throw new PromshardError("sidecar_request_failed", `${name} unreachable`);
        pushed.push(name);
        return [{ index: 1, job: "demo", address: "a:1", problems: ["no such job"] }];
      },
    });
    const c = replicatedShardClient([copy("g0"), copy("g1"), copy("g2", true)]);
    assert.deepEqual(await c.assign(4, []), [{ index: 1, job: "demo", address: "a:1", problems: ["no such job"] }]);
    assert.deepEqual(pushed.sort(), ["g0", "g1"]);
    assert.equal((await c.runtime()).healthy, true);
    const none = replicatedShardClient([copy("x", true), copy("y", true)]);
    await assert.rejects(none.runtime(), /x unreachable/);
    await assert.rejects(none.assign(1, []), /x unreachable/);
  });

  it("takes deltas only when every copy does, and merges the same answers into the same lists", async () => {
    const a = { ...rt(), deltas: true };
    const b = { ...rt(), deltas: true };
    let second: ShardRuntime = b;
    const c = replicatedShardClient([
      { runtime: async () => a, assign: async () => [] },
      { runtime: async () => second, assign: async () => [] },
    ]);
    const first = await c.runtime();
    assert.equal(first.deltas, true);
    assert.equal(await c.runtime(), first, "the same answers: the same merge");
    second = rt();
    const mixed = await c.runtime();
    assert.notEqual(mixed, first);
    assert.equal(mixed.deltas, undefined, "a copy from before deltas: whole sets for the group");
  });
});
