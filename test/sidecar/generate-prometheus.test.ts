/**
 * The generated shard config against the real Prometheus, both versions: an unsharded
 * Prometheus runs the original config; two shards run the generated configs with the targets
 * split between them. The union of the shards' active targets must equal the unsharded
 * one's, label for label and URL for URL — every job has a `labelmap` of `__meta_(.+)`, so a
 * wrong or missing `__meta_filepath` (or any other discovered label) would show. Every
 * generated config must pass promtool.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { dump } from "js-yaml";
import { loadConfigFile } from "../../src/config/load.ts";
import type { AssignedTarget } from "../../src/contract/assignment.ts";
import { DiscoveryManager } from "../../src/discovery/manager.ts";
import { sdLabels } from "../../src/prom/targets.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { generateShardConfig, type ShardSettings, targetFiles } from "../../src/sidecar/generate.ts";
import { generateJobs } from "../conformance/generate.ts";
import {
  prometheusBinaries,
  promtoolCheckConfig,
  type RunningPrometheus,
  startPrometheus,
  waitForTargets,
} from "../support/prometheus.ts";

// Each file_sd entry costs each Prometheus an inotify instance (128 per user by default).
const JOBS = 30;

function write(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v,
  );
}

for (const bin of prometheusBinaries()) {
  describe(`sharded configs scrape what the original does (Prometheus ${bin.version})`, () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-shardgen-"));
    const running: RunningPrometheus[] = [];
    after(async () => {
      for (const p of running) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it(`${JOBS} generated jobs over two shards: the union equals the unsharded targets`, {
      timeout: 180_000,
    }, async () => {
      const dialect = dialectFor(bin.version);
      // The original setup: file_sd files (one job reads two files through a glob), static groups.
      const files: Record<string, string> = {};
      const jobs = generateJobs(JOBS, 7, bin.major).map((g, i) => {
        const job: Record<string, unknown> = { ...g.job };
        job.relabel_configs = [
          ...((job.relabel_configs as unknown[]) ?? []),
          { action: "labelmap", regex: "__meta_(.+)", replacement: "meta_$1" },
        ];
        const name = String(job.job_name);
        if (g.fileGroups.length > 0) {
          const half = Math.ceil(g.fileGroups.length / 2);
          files[`sd/${name}-a.json`] = JSON.stringify(g.fileGroups.slice(0, half));
          if (half < g.fileGroups.length) files[`sd/${name}-b.json`] = JSON.stringify(g.fileGroups.slice(half));
          job.file_sd_configs = [{ files: [i % 2 === 0 ? `sd/${name}-*.json` : `./sd/${name}-*.json`] }];
        }
        if (g.staticGroups.length > 0) job.static_configs = g.staticGroups;
        return job;
      });
      const original = dump({ global: { scrape_interval: "1h" }, scrape_configs: jobs }, { lineWidth: -1 });
      // The unsharded Prometheus's own directory is where discovery reads from, as a
      // coordinator reads the config and files Prometheus would.
      const unsharded = await startPrometheus(bin, { config: original, files });
      running.push(unsharded);
      const config = loadConfigFile(join(unsharded.dir, "prometheus.yml"), dialect);

      // What a coordinator would assign: every discovered target, split by position.
      const discovery = new DiscoveryManager();
      discovery.apply(config);
      await discovery.ready();
      const all: AssignedTarget[] = [];
      for (const job of config.scrapeConfigs) {
        for (const { sdIndex, groups } of discovery.groupsBySd(job.jobName)) {
          for (const g of groups)
            for (const t of g.targets) all.push({ job: job.jobName, labels: sdLabels(t, g.labels), sdIndex });
        }
      }
      discovery.stop();
      const shards = [0, 1].map((shard) => all.filter((_, i) => i % 2 === shard));

      const shardProms: RunningPrometheus[] = [];
      for (const [shard, assigned] of shards.entries()) {
        const shardDir = mkdtempSync(join(dir, `shard${shard}-`));
        const settings: ShardSettings = {
          shard,
          replica: "0",
          shardLabel: "shard",
          replicaLabel: "replica",
          targetsDir: join(shardDir, "targets"),
          remoteWriteDropShard: true,
        };
        const generated = generateShardConfig(config, settings);
        const targetFileContents = Object.fromEntries(
          [...targetFiles(config, settings, assigned)].map(([rel, content]) => [join("targets", rel), content]),
        );
        write(shardDir, { ...targetFileContents, "prometheus.yml": generated });
        const check = await promtoolCheckConfig(bin, join(shardDir, "prometheus.yml"), ["--syntax-only"]);
        assert.ok(check.ok, `promtool rejected the generated config:\n${check.output}`);
        const p = await startPrometheus(bin, { config: generated, files: targetFileContents });
        running.push(p);
        shardProms.push(p);
      }

      const count = (t: { activeTargets: unknown[] }) => t.activeTargets.length;
      // Let the unsharded one settle, then wait for the shards. 2.42 applies discovery in 5 s
      // steps, so a first look can see part of the set: it counts once it held for 6 s.
      let settled = await waitForTargets(unsharded, (t) => count(t) > 0, 30_000);
      for (let since = Date.now(), deadline = Date.now() + 60_000; Date.now() - since < 6_000; ) {
        assert.ok(Date.now() < deadline, `the unsharded targets did not settle in 60 s (${count(settled)} last)`);
        await new Promise((r) => setTimeout(r, 500));
        const now = await unsharded.targets();
        if (count(now) !== count(settled)) [settled, since] = [now, Date.now()];
      }
      const expected = settled.activeTargets.length;
      const got = await Promise.all(shardProms.map((p) => p.targets()));
      let total = got.reduce((n, t) => n + count(t), 0);
      for (let i = 0; i < 100 && total < expected; i++) {
        await new Promise((r) => setTimeout(r, 300));
        const again = await Promise.all(shardProms.map((p) => p.targets()));
        got.splice(0, got.length, ...again);
        total = got.reduce((n, t) => n + count(t), 0);
      }
      const key = (t: { scrapePool: string; labels: object; scrapeUrl: string }) =>
        canonical({ p: t.scrapePool, l: t.labels, u: t.scrapeUrl });
      const a = settled.activeTargets.map(key).sort();
      const b = got.flatMap((t) => t.activeTargets.map(key)).sort();
      assert.deepEqual(
        { onlySharded: b.filter((x) => !a.includes(x)), onlyUnsharded: a.filter((x) => !b.includes(x)) },
        { onlySharded: [], onlyUnsharded: [] },
      );
      assert.ok(expected > 50, `a meaningful comparison (${expected} targets)`);
    });
  });
}
