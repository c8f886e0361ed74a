/**
 * A split target against the real Prometheus, both versions: three shards run the generated
 * configs, each holding one part of one target of 3 × 1000 series. Every series the target
 * exposes must be kept by exactly one shard, with its own labels (no part or hash label
 * left on it); each part's `up` and scrape_* series carry the part label, and the parts'
 * scrape_samples_post_metric_relabeling add up to the whole. The parts are the same series
 * on 2.42 and 3.16 (a fleet mid-upgrade splits the same way), and promtool accepts every config.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfigFile } from "../../src/config/load.ts";
import type { AssignedTarget } from "../../src/contract/assignment.ts";
import { type DemoExporter, startDemoExporter } from "../../src/demo/exporter.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { generateShardConfig, type ShardSettings, targetFiles } from "../../src/sidecar/generate.ts";
import {
  prometheusBinaries,
  promtoolCheckConfig,
  type RunningPrometheus,
  startPrometheus,
} from "../support/prometheus.ts";

const SERIES = 3000;
const PARTS = 3;

function write(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
}

/** Per version: each kept series (its labels as a key) and the part that kept it. */
const partitions = new Map<string, Map<string, number>>();

describe("a target split over three shards, on the real Prometheus", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-split-"));
  const running: RunningPrometheus[] = [];
  let exporter: DemoExporter;
  before(async () => {
    exporter = await startDemoExporter({ series: SERIES });
  });
  after(async () => {
    for (const p of running) await p.stop();
    await exporter.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const bin of prometheusBinaries()) {
    it(`Prometheus ${bin.version}: every series on exactly one part, parts' up and scrape_* labelled`, {
      timeout: 120_000,
    }, async () => {
      const original = join(dir, `original-${bin.version}.yml`);
      writeFileSync(
        original,
        [
          "global: {scrape_interval: 1s, scrape_timeout: 1s}",
          "scrape_configs:",
          "  - job_name: demo",
          "    metric_relabel_configs: [{source_labels: [__name__], regex: demo_unused, action: drop}]",
          `    static_configs: [{targets: ["127.0.0.1:${exporter.port}"], labels: {team: a}}]`,
          "",
        ].join("\n"),
      );
      const config = loadConfigFile(original, dialectFor(bin.version));
      const shards: RunningPrometheus[] = [];
      for (let part = 0; part < PARTS; part++) {
        const shardDir = mkdtempSync(join(dir, `shard${part}-`));
        const settings: ShardSettings = {
          shard: part,
          replica: "0",
          shardLabel: "shard",
          replicaLabel: "replica",
          targetsDir: join(shardDir, "targets"),
          remoteWriteDropShard: true,
          refreshInterval: "1s",
        };
        const assigned: AssignedTarget[] = [
          {
            job: "demo",
            labels: { __address__: `127.0.0.1:${exporter.port}`, team: "a" },
            sdIndex: 0,
            split: { part, parts: PARTS, by: ["__name__", "i", "instance", "job", "team"] },
          },
        ];
        const generated = generateShardConfig(config, settings, assigned);
        write(shardDir, {
          ...Object.fromEntries([...targetFiles(config, settings, assigned)].map(([r, c]) => [join("targets", r), c])),
          "prometheus.yml": generated,
        });
        const check = await promtoolCheckConfig(bin, join(shardDir, "prometheus.yml"), ["--syntax-only"]);
        assert.ok(check.ok, `promtool rejected the generated config:\n${check.output}`);
        const p = await startPrometheus(bin, { config: generated });
        running.push(p);
        shards.push(p);
      }

      // Every shard has scraped once (its part's counts are in).
      const posts = async () =>
        Promise.all(
          shards.map(async (p) => {
            const r = await p.query("scrape_samples_post_metric_relabeling");
            assert.equal(r.resultType, "vector");
            return r.result as { metric: Record<string, string>; value: [number, string] }[];
          }),
        );
      let seen = await posts();
      for (let i = 0; i < 150 && seen.some((r) => r.length === 0); i++) {
        await new Promise((r) => setTimeout(r, 200));
        seen = await posts();
      }
      for (const [part, r] of seen.entries()) {
        assert.equal(r.length, 1, `shard ${part} scraped its part once`);
        assert.equal(r[0]!.metric.promshard_part, `${part}/${PARTS}`, "the part's scrape series carry the part label");
      }
      const kept = seen.map((r) => Number(r[0]!.value[1]));
      assert.equal(
        kept.reduce((a, b) => a + b, 0),
        SERIES,
        `the parts keep ${kept.join(" + ")} series, the target exposes ${SERIES}`,
      );
      for (const n of kept) assert.ok(n > SERIES / PARTS / 2, `a part keeps a fair share (${kept.join(", ")})`);

      const byPart = new Map<string, number>();
      for (const [part, p] of shards.entries()) {
        const up = await p.query("up");
        assert.equal(up.resultType, "vector");
        assert.deepEqual(
          (up.result as { metric: Record<string, string> }[]).map((s) => s.metric.promshard_part),
          [`${part}/${PARTS}`],
        );
        const series = await p.api<Record<string, string>[]>(
          `series?match[]=${encodeURIComponent('{__name__=~"demo_.*"}')}`,
        );
        for (const s of series) {
          assert.equal(s.promshard_part, undefined, "kept series lose the part label");
          assert.ok(!Object.keys(s).some((n) => n.startsWith("__tmp")), "no hash label is stored");
          assert.equal(s.team, "a");
          const key = JSON.stringify(Object.entries(s).sort());
          assert.equal(byPart.get(key), undefined, `${key} kept by parts ${byPart.get(key)} and ${part}`);
          byPart.set(key, part);
        }
      }
      assert.equal(byPart.size, SERIES, "every exposed series is kept by one part");
      partitions.set(bin.version, byPart);
      for (const p of shards) await p.stop();
    });
  }

  it("2.42 and 3.16 keep each series on the same part", () => {
    const [a, b] = [...partitions.values()];
    assert.ok(
      a && b,
      `both Prometheus versions must have run (PROMSHARD_PROMETHEUS_BINS); ran: ${[...partitions.keys()]}`,
    );
    assert.deepEqual([...a].sort(), [...b].sort());
  });
});
