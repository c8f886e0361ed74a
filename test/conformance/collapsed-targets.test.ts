/**
 * Discovered targets that relabel into one: which one's discoveredLabels Prometheus shows,
 * against `promshard targets` and the coordinator's target index (what /api/v1/targets shows
 * and what a shard is sent).
 *
 * Prometheus's scrapePool.sync keeps the first target of a label hash and calls
 * SetScrapeConfig with every later duplicate's discovered labels, so within one target group
 * the last one is shown. Across groups the order is the discovery manager's map order
 * (allGroups ranges over map[poolKey]map[source]*Group): random per process, so no one can
 * match it; promshard takes the last in config order, which is what 3.16 shows most often
 * (a small Go map rotates from a random start: 5 of 6 starts showed the last of four groups).
 * 2.42 shows discovered labels its relabeling overwrote (the known divergence in
 * targets-prometheus.test.ts), so only the final labels are compared there.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { dump } from "js-yaml";
import { buildReport } from "../../src/cli/targets.ts";
import { TargetIndex } from "../../src/coordinator/target-index.ts";
import { DiscoveryManager } from "../../src/discovery/manager.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { prometheusBinaries, type RunningPrometheus, startPrometheus, waitForTargets } from "../support/prometheus.ts";
import { NO_EGRESS_PROXY } from "./generate.ts";

/** Jobs whose single static group holds targets that relabel into one or two scrape targets. */
const JOBS = [
  {
    job_name: "all-into-one",
    static_configs: [{ targets: ["127.0.0.2:1", "127.0.0.3:1", "127.0.0.4:1"], labels: { env: "a" } }],
    relabel_configs: [{ target_label: "__address__", replacement: "127.0.0.1:1" }],
  },
  {
    job_name: "two-by-port",
    static_configs: [{ targets: ["127.0.0.2:80", "127.0.0.2:81", "127.0.0.3:80", "127.0.0.3:81"] }],
    relabel_configs: [
      { source_labels: ["__address__"], regex: "(.*):\\d+", replacement: "$1:9100", target_label: "__address__" },
    ],
  },
  {
    job_name: "dropped-between",
    static_configs: [{ targets: ["127.0.0.5:1", "127.0.0.6:1", "127.0.0.7:1"] }],
    relabel_configs: [
      { source_labels: ["__address__"], regex: "127.0.0.6:1", action: "drop" },
      { target_label: "__address__", replacement: "127.0.0.1:2" },
    ],
  },
].map((j) => ({ ...j, proxy_url: NO_EGRESS_PROXY }));

const key = (pool: string, labels: Record<string, string>) => `${pool} ${JSON.stringify(labels)}`;

for (const bin of prometheusBinaries()) {
  describe(`collapsed targets against Prometheus ${bin.version}`, () => {
    let prom: RunningPrometheus | undefined;
    after(() => prom?.stop());

    it("the discovered labels shown for each collapsed target are the last duplicate's, as Prometheus shows", {
      timeout: 60_000,
    }, async () => {
      const text = dump({ global: { scrape_interval: "1h" }, scrape_configs: JOBS });
      const config = parseConfig(text, { dialect: dialectFor(bin.version) });
      prom = await startPrometheus(bin, { config: text });
      const theirs = await waitForTargets(prom, (t) => t.activeTargets.length >= 4 && t.droppedTargets.length >= 1);
      const shown = (list: { scrapePool: string; labels: Record<string, string>; discoveredLabels: object }[]) =>
        new Map(list.map((t) => [key(t.scrapePool, t.labels), t.discoveredLabels]));
      const prometheus = shown(theirs.activeTargets);

      const ours = shown((await buildReport(config)).report.activeTargets);
      const discovery = new DiscoveryManager();
      discovery.apply(config);
      const index = new TargetIndex().build(config, discovery);
      discovery.stop();
      const coordinator = shown([...index.known.values()].map((k) => k.target));
      const sent = new Map(
        [...index.known.values()].map((k) => [key(k.target.scrapePool, k.target.labels), k.payload.labels.__address__]),
      );

      assert.deepEqual([...ours.keys()].sort(), [...prometheus.keys()].sort(), "the same scrape targets");
      assert.deepEqual([...coordinator.keys()].sort(), [...prometheus.keys()].sort(), "the same scrape targets");
      if (bin.major < 3) return;
      for (const [k, labels] of prometheus) {
        assert.deepEqual(ours.get(k), labels, `promshard targets, ${k}`);
        assert.deepEqual(coordinator.get(k), labels, `the coordinator, ${k}`);
        assert.equal(sent.get(k), (labels as Record<string, string>).__address__, `sent to the shard, ${k}`);
      }
    });
  });
}
