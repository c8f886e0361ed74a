/**
 * A target three times a shard's budget, end to end with real processes: `promshard local`
 * with a 10,000-series budget, one demo target of 30,000 series and one of 2,000. Before
 * issue 16 the giant got a shard of its own and overflowed it; now it is split over
 * k = 4 shards (parts of 90 % of budget at most), each keeping a disjoint quarter through
 * the hashmod its generated job adds. Checked on each shard's own Prometheus (no shard over
 * its budget, the shards' series add up to the target's: none kept twice) and at the global
 * view on Thanos Query (every series present once; `up` once per part, each with its
 * `promshard_part`; the parts' scrape_samples_post_metric_relabeling add up to the whole).
 * Then the target shrinks to fit one shard and grows again: the split ends and begins again
 * with every series counted once and no gap in the target's samples at the global view (the
 * old items stay until the new ones have been scraped).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  checkNoGaps,
  e2eBinaries,
  JOB,
  maxGapsByInstance,
  type PromshardLocal,
  query,
  queryValue,
  Scenario,
  type Shard,
  until,
} from "./harness.ts";

const BUDGET = 10_000;
const GIANT = 3 * BUDGET;
const SMALL = 2_000;
const PARTS = 4;
const DEMO = `{job="${JOB}", __name__=~"demo_.*"}`;

/** Parts of the giant per shard, from /api/v1/shards. */
function partsOf(shards: readonly Shard[], instance: string): { shard: number; part?: number; parts?: number }[] {
  return shards.flatMap((sh) =>
    sh.targets
      .filter((t) => t.labels.instance === instance)
      .map((t) => ({ shard: sh.id, ...(t as { part?: number; parts?: number }) })),
  );
}

/** Waits until the global view counts `want` demo series and /api/v1/shards shows `parts` items of the giant. */
async function settle(local: PromshardLocal, giant: string, parts: number, want: number): Promise<Shard[]> {
  return until(
    `the giant in ${parts} item(s), ${want} series at the global view`,
    async () => {
      const all = await local.shards();
      const p = partsOf(all, giant);
      if (p.length !== parts || (parts > 1 && p.some((x) => x.parts !== parts)))
        throw new Error(`items ${JSON.stringify(p)} on ${all.length} shards`);
      if (new Set(p.map((x) => x.shard)).size !== parts)
        throw new Error(`two parts share a shard: ${JSON.stringify(p)}`);
      const n = await queryValue(local.globalUrl, `count(${DEMO})`);
      if (n !== want) throw new Error(`the global view counts ${n}`);
      for (const sh of all) {
        const kept = await queryValue(sh.prometheusUrl, `count(${DEMO})`);
        if (sh.targets.length > 0 && !kept) throw new Error(`shard ${sh.id} has no series yet`);
      }
      return all;
    },
    { timeoutMs: 180_000, everyMs: 1000, context: () => local.tail() },
  );
}

for (const bin of e2eBinaries("newest")) {
  describe(`a target of 3 × budget split over shards (Prometheus ${bin.version})`, () => {
    const s = new Scenario("split", bin);
    after(() => s.close());

    it("4 parts on 4 shards, none over budget, every series once at Thanos Query", { timeout: 300_000 }, async () => {
      const [giant, small] = await s.addDemoTargets(2);
      s.exporter(giant!).series = GIANT;
      s.exporter(small!).series = SMALL;
      s.writeConfig();
      const local = await s.startLocal({ flags: ["--shard.max-series", String(BUDGET)] });

      const shards = await settle(local, giant!, PARTS, GIANT + SMALL);

      // Each shard's own Prometheus: within budget; together every series of both targets, none twice.
      let total = 0;
      for (const sh of shards) {
        const head = (await queryValue(sh.prometheusUrl, `count({job="${JOB}"})`)) ?? 0;
        assert.ok(head <= BUDGET, `shard ${sh.id} holds ${head} series, over its budget of ${BUDGET}`);
        assert.ok(sh.series <= sh.budget, `the coordinator plans ${sh.series} on shard ${sh.id}`);
        total += (await queryValue(sh.prometheusUrl, `count(${DEMO})`)) ?? 0;
      }
      assert.equal(total, GIANT + SMALL, "the shards keep every series once");

      const global = local.globalUrl;
      const perSeries = await queryValue(global, `count(count by (__name__, i, instance) (${DEMO}) > 1)`);
      assert.equal(perSeries, undefined, "no series twice at the global view");

      const ups = await query(global, `up{job="${JOB}", instance="${giant}"}`);
      assert.deepEqual(
        ups.map((u) => u.metric.promshard_part).sort(),
        Array.from({ length: PARTS }, (_, i) => `${i}/${PARTS}`),
        "one up per part, each with its part label",
      );
      assert.ok(ups.every((u) => u.value?.[1] === "1"));
      const kept = await queryValue(global, `sum(scrape_samples_post_metric_relabeling{instance="${giant}"})`);
      assert.equal(kept, GIANT, "the parts' kept samples add up to the target's");
      const scraped = await queryValue(global, `sum(scrape_samples_scraped{instance="${giant}"})`);
      assert.equal(scraped, PARTS * GIANT, "each part scrapes the whole target");
      // The scrape cost of a split, as a bench line: k scrapes of the whole exposition.
      const seconds = await query(global, `scrape_duration_seconds{instance="${giant}"}`);
      process.stdout.write(
        `split-bench: target ${GIANT} series, budget ${BUDGET}: ${PARTS} parts, ${PARTS} scrapes per interval ` +
          `(${PARTS * GIANT} samples parsed for ${GIANT} kept), scrape durations ${seconds
            .map((x) => `${Number(x.value?.[1]).toFixed(3)} s`)
            .join(", ")}\n`,
      );
    });

    it("shrinks to fit one shard and grows again: the split ends and begins without a gap", {
      timeout: 400_000,
    }, async () => {
      const local = s.requireLocal();
      const [giant] = s.demoInstances();
      const from = Date.now();
      s.exporter(giant!).series = 6_000;
      await settle(local, giant!, 1, 6_000 + SMALL);
      s.exporter(giant!).series = GIANT;
      const shards = await settle(local, giant!, PARTS, GIANT + SMALL);
      for (const sh of shards)
        assert.ok(sh.series <= sh.budget, `the coordinator plans ${sh.series} on shard ${sh.id}`);
      const rows = await checkNoGaps(local.globalUrl, s.gapTargets([giant!], from), {
        metrics: ["demo_scrapes_total"],
      });
      process.stdout.write(`split e2e: largest gap through merge and split: ${maxGapsByInstance(rows)}\n`);
    });
  });
}
