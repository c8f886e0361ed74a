/**
 * A split target in the contract and on the sidecar (pure): the assignment carries its part,
 * a bad split is left out naming the field, the target file marks the part, the generated job
 * gets the hashmod rules only while it holds a part, and the runtime reports the part's id.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dump, load } from "js-yaml";
import { type AssignedTarget, parseAssignment } from "../../src/contract/assignment.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { generateShardConfig, type ShardSettings, targetFiles } from "../../src/sidecar/generate.ts";
import { expectedTargets, mapTargets } from "../../src/sidecar/runtime.ts";

const config = parseConfig(dump({ scrape_configs: [{ job_name: "big", static_configs: [{ targets: ["x:1"] }] }] }), {
  dialect: dialectFor("2.42"),
});
const settings: ShardSettings = {
  shard: 1,
  replica: "0",
  shardLabel: "shard",
  replicaLabel: "replica",
  targetsDir: "/t",
  remoteWriteDropShard: true,
};
const whole: AssignedTarget = { job: "big", labels: { __address__: "x:1" } };
const part = (p: number, parts = 3, by = ["__name__", "pod"]): AssignedTarget => ({
  ...whole,
  split: { part: p, parts, by },
});

describe("a split target on the sidecar", () => {
  it("the assignment carries the split; a bad one is left out naming the field and the fix", () => {
    const ok = parseAssignment({ version: 1, targets: [part(1)] }, config);
    assert.deepEqual(ok.targets[0]!.split, { part: 1, parts: 3, by: ["__name__", "pod"] });
    const bad = [
      { part: 3, parts: 3, by: ["__name__"] },
      { part: 0, parts: 1, by: ["__name__"] },
      { part: 0, parts: 2, by: [] },
      { part: 0, parts: 2, by: ["a-b"] },
      { part: 0, parts: 2, by: ["__name__"], extra: 1 },
      "0/2",
    ];
    const r = parseAssignment({ version: 2, targets: bad.map((split) => ({ ...whole, split })) }, config);
    assert.equal(r.targets.length, 0);
    assert.equal(r.rejected.length, bad.length);
    for (const x of r.rejected) assert.match(x.problems[0]!, /^assignment\.targets\[\d\]\.split: /);
    assert.match(r.rejected[0]!.problems[0]!, /0 <= part < parts/);
    assert.match(r.rejected[3]!.problems[0]!, /"a-b" is not a valid label name for Prometheus 2\.42/);
    assert.match(r.rejected[4]!.problems[0]!, /unknown field "extra"/);
  });

  it("target file and generated job: rules only while the shard holds a part", () => {
    const plain = load(generateShardConfig(config, settings, [whole])) as { scrape_configs: Record<string, unknown>[] };
    assert.equal(plain.scrape_configs[0]!.metric_relabel_configs, undefined);
    assert.equal(generateShardConfig(config, settings, [whole]), generateShardConfig(config, settings));

    const doc = load(generateShardConfig(config, settings, [part(1)])) as { scrape_configs: Record<string, unknown>[] };
    const job = doc.scrape_configs[0]!;
    assert.deepEqual((job.relabel_configs as unknown[]).at(-1), {
      source_labels: ["__promshard_part"],
      regex: "(.+)",
      target_label: "promshard_part",
      replacement: "$1",
    });
    assert.deepEqual(job.metric_relabel_configs, [
      {
        action: "hashmod",
        source_labels: ["__name__", "pod"],
        modulus: 3,
        target_label: "__tmp_promshard_hash",
      },
      { action: "drop", source_labels: ["promshard_part", "__tmp_promshard_hash"], regex: "1/3;(?:0|2)" },
      { action: "labeldrop", regex: "promshard_part|__tmp_promshard_hash" },
    ]);
    const files = targetFiles(config, settings, [part(1)]);
    const [file] = [...files.values()].map((c) => JSON.parse(c) as { labels: Record<string, string> }[]);
    assert.deepEqual(file![0]!.labels, { __promshard_part: "1/3" });
  });

  it("the runtime reports a part under its part id, matched with the part label", () => {
    const e = expectedTargets(config, [part(2)])[0]!;
    if (e.kind !== "active") return assert.fail(`expected an active target, got ${e.kind}`);
    const [whole0] = expectedTargets(config, [whole]);
    assert.equal(e.id, `${(whole0 as { id: string }).id}#2/3`);
    const { targets } = mapTargets(
      [e],
      [
        {
          scrapePool: "big",
          labels: { ...e.labels },
          scrapeUrl: e.scrapeUrl,
          health: "up",
          lastScrape: "2026-01-01T00:00:00Z",
          lastScrapeDuration: 0.01,
          lastError: "",
        },
      ],
      [{ metric: { __name__: "scrape_samples_post_metric_relabeling", ...e.labels }, value: 1234 }],
    );
    assert.equal(e.labels.promshard_part, "2/3");
    assert.equal(targets[0]!.status, "scraped");
    assert.equal(targets[0]!.series, 1234);
  });
});
