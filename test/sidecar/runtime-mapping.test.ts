/**
 * Mapping Prometheus's targets back to assigned ones (pure): by scrape pool and final labels
 * computed with promshard's relabeling, the scrape URL deciding between equal label sets;
 * every assigned target gets a row with a status, every Prometheus target that maps to
 * nothing is listed, never dropped.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dump } from "js-yaml";
import type { AssignedTarget } from "../../src/contract/assignment.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { dialectFor } from "../../src/prom/version.ts";
import type { PromActiveTarget, PromSample } from "../../src/sidecar/prometheus-client.ts";
import { expectedTargets, mapTargets } from "../../src/sidecar/runtime.ts";

const config = parseConfig(
  dump({
    scrape_configs: [
      {
        job_name: "node",
        static_configs: [{ targets: ["x:1"] }],
        relabel_configs: [
          { action: "labelmap", regex: "__meta_(.+)" },
          { source_labels: ["drop"], regex: "yes", action: "drop" },
          { source_labels: ["path"], regex: "(.+)", target_label: "__metrics_path__" },
          { action: "labeldrop", regex: "path" },
        ],
      },
    ],
  }),
  { dialect: dialectFor("3.16") },
);

const t = (labels: Record<string, string>, job = "node"): AssignedTarget => ({ job, labels });
const prom = (
  labels: Record<string, string>,
  scrapeUrl: string,
  extra: Partial<PromActiveTarget> = {},
): PromActiveTarget => ({
  scrapePool: "node",
  labels,
  scrapeUrl,
  health: "up",
  lastScrape: "2026-01-01T00:00:00Z",
  lastScrapeDuration: 0.01,
  lastError: "",
  ...extra,
});

describe("runtime target mapping", () => {
  const assigned = [
    t({ __address__: "a:1", __meta_zone: "z1" }),
    t({ __address__: "b:1", path: "/one" }),
    t({ __address__: "b:1", path: "/two" }),
    t({ __address__: "c:1" }),
    t({ __address__: "d:1", drop: "yes" }),
    t({ __address__: "bad/host:1" }),
    t({ __address__: "e:1" }, "gone"),
  ];
  const expected = expectedTargets(config, assigned);

  it("computes the final labels Prometheus will show", () => {
    assert.deepEqual(
      expected.map((e) => e.kind),
      ["active", "active", "active", "active", "dropped", "invalid", "unknown_job"],
    );
    const first = expected[0]!;
    assert.ok(first.kind === "active");
    assert.deepEqual(first.labels, { instance: "a:1", job: "node", zone: "z1" });
    assert.equal(first.scrapeUrl, "http://a:1/metrics");
  });

  it("maps by pool and labels, the URL deciding between equal label sets", () => {
    const active = [
      prom({ instance: "a:1", job: "node", zone: "z1" }, "http://a:1/metrics"),
      // Same public labels, told apart by the path only; listed in the other order.
      prom({ instance: "b:1", job: "node" }, "http://b:1/two", { health: "down", lastError: "HTTP 500" }),
      prom({ instance: "b:1", job: "node" }, "http://b:1/one", {
        lastScrape: "0001-01-01T00:00:00Z",
        health: "unknown",
      }),
      prom({ instance: "z:1", job: "node" }, "http://z:1/metrics"),
    ];
    const samples: PromSample[] = [
      {
        metric: { __name__: "scrape_samples_post_metric_relabeling", instance: "a:1", job: "node", zone: "z1" },
        value: 42,
      },
      { metric: { __name__: "scrape_samples_post_metric_relabeling", instance: "z:1", job: "node" }, value: 7 },
    ];
    const { targets, unmapped } = mapTargets(expected, active, samples);
    assert.deepEqual(
      targets.map((r) => [r.address, r.status, r.health, r.series]),
      [
        ["a:1", "scraped", "up", 42],
        ["b:1", "scraped", "unknown", null],
        ["b:1", "scraped", "down", null],
        ["c:1", "missing", null, null],
        ["d:1", "dropped", null, null],
        ["bad/host:1", "invalid", null, null],
        ["e:1", "unknown_job", null, null],
      ],
    );
    assert.equal(targets[1]!.scrapeUrl, "http://b:1/one");
    assert.equal(targets[1]!.lastScrape, null, "never scraped yet");
    assert.equal(targets[2]!.lastError, "HTTP 500");
    assert.match(targets[5]!.reason ?? "", /not a valid hostname/);
    assert.match(targets[6]!.reason ?? "", /"gone" is not in the shard's current config/);
    assert.equal(targets[0]!.id, (expected[0] as { id: string }).id);
    assert.deepEqual(unmapped, [
      {
        scrapePool: "node",
        labels: { instance: "z:1", job: "node" },
        scrapeUrl: "http://z:1/metrics",
        health: "up",
        lastScrape: "2026-01-01T00:00:00Z",
        lastError: null,
        series: 7,
      },
    ]);
  });

  it("reports every target as unknown when Prometheus could not be asked", () => {
    const { targets, unmapped } = mapTargets(expected, undefined, undefined);
    assert.deepEqual(
      targets.map((r) => r.status),
      ["unknown", "unknown", "unknown", "unknown", "dropped", "invalid", "unknown_job"],
    );
    assert.deepEqual(unmapped, []);
  });
});
