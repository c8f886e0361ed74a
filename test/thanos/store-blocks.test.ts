/**
 * When Thanos Query routes to a Store Gateway for a drained shard's blocks (store-blocks.ts):
 * read from `/api/v1/stores` answers shaped as Thanos v0.42 writes them. The step it guards is
 * run against real Query and Store Gateway in test/coordinator/statefulset-drain.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { expandDnsUrls, type LoadedBlock, unrouted } from "../../src/thanos/store-blocks.ts";

const block: LoadedBlock = {
  ulid: "01JAAAAAAAAAAAAAAAAAAAAAAA",
  minTime: 1_000,
  maxTime: 9_000,
  labels: { shard: "5", replica: "0" },
};
const other: LoadedBlock = { ...block, ulid: "01JBBBBBBBBBBBBBBBBBBBBBBB", labels: { shard: "4", replica: "0" } };

/** A Query's answer with these Store Gateway entries (and a sidecar that would match, which must not count). */
function stores(...store: object[]) {
  const sidecar = { name: "shard-5:10901", minTime: 0, maxTime: 9e15, labelSets: [{ shard: "5", replica: "0" }] };
  return { status: "success", data: { store, sidecar: [sidecar] } };
}

describe("unrouted: the blocks a Query sends no query to a Store Gateway for", () => {
  it("a gateway Query last saw empty (Thanos's empty range: MaxInt64 to MinInt64) routes nothing", () => {
    // As JSON.parse reads Thanos's 64-bit limits: rounded, in the same order.
    const empty = JSON.parse(
      '{"name":"store:10901","minTime":9223372036854775807,"maxTime":-9223372036854775808,"labelSets":[]}',
    );
    assert.deepEqual(unrouted(stores(empty), [block, other]), [block.ulid, other.ulid]);
    assert.deepEqual(unrouted(stores(), [block]), [block.ulid], "no gateway at all");
  });

  it("routed once a gateway's range holds the block and one of its label sets carries the block's labels", () => {
    const seen = {
      name: "store:10901",
      lastError: null,
      minTime: 500,
      maxTime: 9_000,
      labelSets: [
        { replica: "0", shard: "4" },
        { replica: "0", shard: "5", extra: "x" },
      ],
    };
    assert.deepEqual(unrouted(stores(seen), [block, other]), []);
  });

  it("not while the range ends before the block's end, starts after its start, or no label set matches", () => {
    const base = { name: "store:10901", minTime: 500, maxTime: 9_000, labelSets: [{ replica: "0", shard: "5" }] };
    assert.deepEqual(unrouted(stores({ ...base, maxTime: 8_999 }), [block]), [block.ulid], "an older range");
    assert.deepEqual(unrouted(stores({ ...base, minTime: 1_001 }), [block]), [block.ulid]);
    assert.deepEqual(unrouted(stores(base), [other]), [other.ulid], "shard 4's labels are not advertised");
    assert.deepEqual(unrouted(stores({ ...base, labelSets: null }), [block]), [block.ulid]);
  });

  it("a gateway counts when any one of several does (a sharded set splits the blocks)", () => {
    const a = { name: "store-0:10901", minTime: 0, maxTime: 9_000, labelSets: [{ replica: "0", shard: "5" }] };
    const b = { name: "store-1:10901", minTime: 0, maxTime: 9_000, labelSets: [{ replica: "0", shard: "4" }] };
    assert.deepEqual(unrouted(stores(a, b), [block, other]), []);
  });

  it("an answer of another shape routes nothing, without a throw", () => {
    for (const answer of [null, {}, { data: null }, { data: { store: [null, 3] } }, "text"])
      assert.deepEqual(unrouted(answer, [block]), [block.ulid]);
  });
});

describe("expandDnsUrls", () => {
  it("keeps plain URLs and turns a dns+ one into a URL per address of its host", async () => {
    const urls = await expandDnsUrls(["http://query:9090", "dns+http://localhost:9090/prefix"]);
    assert.equal(urls[0], "http://query:9090");
    const expanded = urls.slice(1);
    assert.ok(expanded.length >= 1, "localhost resolves");
    for (const u of expanded) assert.match(u, /^http:\/\/(127\.0\.0\.1|\[::1\]):9090\/prefix$/);
  });
});
