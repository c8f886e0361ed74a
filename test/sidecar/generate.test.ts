import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { load } from "js-yaml";
import { parseConfig } from "../../src/prom/config.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { generateShardConfig, type ShardSettings } from "../../src/sidecar/generate.ts";

const config = parseConfig(
  `
global: {external_labels: {cluster: eu}}
remote_write: [{url: "http://receiver/api/v1/write"}]
scrape_configs: [{job_name: a, static_configs: [{targets: ["h:1"]}]}]
`,
  { dialect: dialectFor("3.16"), directory: "/etc/prometheus" },
);

const base: ShardSettings = {
  shard: 2,
  replica: "1",
  shardLabel: "shard",
  replicaLabel: "replica",
  targetsDir: "/out/targets",
  remoteWriteDropShard: true,
};

type Doc = {
  global: { external_labels?: Record<string, string> };
  remote_write: { write_relabel_configs?: Record<string, unknown>[] }[];
};
const generate = (s: Partial<ShardSettings>) => load(generateShardConfig(config, { ...base, ...s })) as Doc;

describe("generateShardConfig external labels", () => {
  it("adds shard and replica beside the user's labels; remote write drops the shard", () => {
    const doc = generate({});
    assert.deepEqual(doc.global.external_labels, { cluster: "eu", shard: "2", replica: "1" });
    assert.deepEqual(doc.remote_write[0]!.write_relabel_configs, [{ action: "labeldrop", regex: "shard" }]);
  });

  it("moves the replica to the receiver's HA label name", () => {
    const doc = generate({ remoteWriteReplicaLabel: "__replica__" });
    assert.deepEqual(doc.remote_write[0]!.write_relabel_configs, [
      { source_labels: ["replica"], target_label: "__replica__" },
      { action: "labeldrop", regex: "replica" },
      { action: "labeldrop", regex: "shard" },
    ]);
  });

  it('leaves out a label whose name is "" and adds no rule for it', () => {
    const doc = generate({ shardLabel: "", replicaLabel: "", remoteWriteReplicaLabel: "__replica__" });
    assert.deepEqual(doc.global.external_labels, { cluster: "eu" });
    assert.equal(doc.remote_write[0]!.write_relabel_configs, undefined);
  });

  it("refuses a user external label that promshard sets, naming the field", () => {
    assert.throws(() => generate({ shardLabel: "cluster" }), /global\.external_labels\.cluster/);
  });
});
