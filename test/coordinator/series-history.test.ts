/**
 * The status page's history stays bounded: one point per step per shard whatever the rate of
 * rounds, nothing older than the window, shards scaled away forgotten after a window, marks
 * capped; and what it returns is what was recorded, oldest first.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeriesHistory } from "../../src/coordinator/series-history.ts";

const HOUR = 3_600_000;
const T0 = 1_800_000_000_000; // a multiple of 10 s

describe("SeriesHistory", () => {
  it("keeps one point per 10 s step (the latest of the step) over the last hour, 361 at most", () => {
    const h = new SeriesHistory();
    // Two hours of rounds every second: 7200 samples.
    for (let s = 0; s < 7200; s++) h.record(T0 + s * 1000, [{ id: 0, series: s }]);
    const now = T0 + 7199 * 1000;
    const points = h.shard(0, now);
    assert.equal(points.length, 361, "every step of the last hour, both ends included");
    assert.equal(points[0]!.at, now - HOUR);
    for (let i = 1; i < points.length; i++) assert.equal(points[i]!.at - points[i - 1]!.at, 10_000, "one per step");
    // The last sample of each step: second 9 of every ten.
    assert.deepEqual(points.at(-1), { at: now, value: 7199 });
    assert.deepEqual(points.at(-2), { at: now - 10_000, value: 7189 });
  });

  it("a ring never holds more than the window's steps, however long it runs", () => {
    const h = new SeriesHistory({ windowMs: 60_000, stepMs: 10_000 });
    for (let s = 0; s < 1000; s++) h.record(T0 + s * 10_000, [{ id: 3, series: s }]);
    const now = T0 + 999 * 10_000;
    assert.deepEqual(
      h.shard(3, now).map((p) => p.value),
      [993, 994, 995, 996, 997, 998, 999],
    );
  });

  it("forgets a shard not recorded for a whole window; an unknown shard has no points", () => {
    const h = new SeriesHistory({ windowMs: 60_000, stepMs: 10_000 });
    h.record(T0, [
      { id: 0, series: 1 },
      { id: 1, series: 2 },
    ]);
    h.record(T0 + 30_000, [{ id: 0, series: 1 }]);
    assert.equal(h.shardCount, 2);
    h.record(T0 + 60_000, [{ id: 0, series: 1 }]);
    assert.equal(h.shardCount, 2, "shard 1's last point is exactly a window old");
    h.record(T0 + 70_000, [{ id: 0, series: 1 }]);
    assert.equal(h.shardCount, 1);
    assert.deepEqual(h.shard(1, T0 + 70_000), []);
    assert.deepEqual(h.shard(9, T0), []);
  });

  it("records the global count apart from the shards", () => {
    const h = new SeriesHistory();
    h.recordGlobal(T0, 60_270);
    h.recordGlobal(T0 + 5_000, 60_275);
    h.recordGlobal(T0 + 20_000, 60_280);
    assert.deepEqual(h.global(T0 + 20_000), [
      { at: T0 + 5_000, value: 60_275 },
      { at: T0 + 20_000, value: 60_280 },
    ]);
    assert.deepEqual(h.shard(0, T0 + 20_000), []);
  });

  it("marks a move on its shards and a scaling on every shard, within the window, at most maxMarks", () => {
    const h = new SeriesHistory({ windowMs: HOUR, maxMarks: 3 });
    h.mark({ at: T0, kind: "scale", text: "shards 1 → 2" });
    h.mark({ at: T0 + 1000, kind: "move", text: "a moves from shard 0 to shard 1", shards: [0, 1] });
    h.mark({ at: T0 + 2000, kind: "move", text: "b moves from shard 1 to shard 2", shards: [1, 2] });
    assert.deepEqual(
      h.marks(0, T0 + 2000).map((m) => m.text),
      ["shards 1 → 2", "a moves from shard 0 to shard 1"],
    );
    assert.deepEqual(
      h.marks(2, T0 + 2000).map((m) => m.text),
      ["shards 1 → 2", "b moves from shard 1 to shard 2"],
    );
    assert.deepEqual(
      h.marks(0, T0 + HOUR + 500).map((m) => m.text),
      ["a moves from shard 0 to shard 1"],
    );
    h.mark({ at: T0 + 3000, kind: "scale", text: "shards 2 → 3" });
    assert.deepEqual(
      h.marks(1, T0 + 3000).map((m) => m.text),
      ["a moves from shard 0 to shard 1", "b moves from shard 1 to shard 2", "shards 2 → 3"],
      "the oldest mark dropped past maxMarks",
    );
  });
});
