import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type PrometheusBinary,
  prometheusBinaries,
  promtoolCheckConfig,
  type RunningPrometheus,
  startPrometheus,
  waitForTargets,
} from "./prometheus.ts";

const config = ({ port }: { port: number }) => `
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:${port}"]
  - job_name: files
    file_sd_configs:
      - files: ["sd/*.json"]
    relabel_configs:
      - source_labels: [__address__]
        regex: ".*:19"
        action: drop
`;

const sd = (addresses: string[]) => JSON.stringify([{ targets: addresses, labels: { team: "a" } }]);

/** Processes whose command line mentions `needle` (Prometheus and its watchdog both name the dir). */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle)) found.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

for (const bin of prometheusBinaries()) {
  describe(`Prometheus ${bin.version} (${bin.bin})`, () => {
    let p: RunningPrometheus;
    before(async () => {
      p = await startPrometheus(bin, { config, files: { "sd/a.json": sd(["127.0.0.1:9", "127.0.0.1:19"]) } });
    });
    after(() => p?.stop());

    it("lists the static and file_sd targets with their final labels, and the dropped one", async (t) => {
      const started = Date.now();
      const got = await waitForTargets(p, (tg) => tg.activeTargets.length === 2 && tg.droppedTargets.length === 1);
      t.diagnostic(`targets visible ${Date.now() - started} ms after ready`);
      const labels = got.activeTargets.map((a) => a.labels).sort((a, b) => (a.job ?? "").localeCompare(b.job ?? ""));
      assert.deepEqual(labels, [
        { instance: "127.0.0.1:9", job: "files", team: "a" },
        { instance: `127.0.0.1:${p.port}`, job: "prometheus" },
      ]);
      const dropped = got.droppedTargets[0]!;
      assert.equal(dropped.discoveredLabels.__address__, "127.0.0.1:19");
      assert.equal(dropped.discoveredLabels.__meta_filepath, join(p.dir, "sd/a.json"));
      if (bin.major >= 3) {
        assert.equal(dropped.scrapePool, "files");
        assert.deepEqual(got.droppedTargetCounts, { files: 1, prometheus: 0 });
      } else {
        assert.equal(got.droppedTargetCounts, undefined);
      }
    });

    it("scrapes itself and answers queries", async () => {
      await waitForTargets(p, (tg) => tg.activeTargets.some((a) => a.scrapePool === "prometheus" && a.health === "up"));
      const up = await p.query('up{job="prometheus"}');
      assert.equal(up.resultType, "vector");
      assert.deepEqual(
        up.result.map((s) => s.metric),
        [{ __name__: "up", instance: `127.0.0.1:${p.port}`, job: "prometheus" }],
      );
      await assert.rejects(p.query("sum("), /bad_data/);
    });

    it("follows a file_sd change", async (t) => {
      const started = Date.now();
      await p.writeFile("sd/a.json", sd(["127.0.0.1:9", "127.0.0.1:29"]));
      await waitForTargets(p, (tg) => tg.activeTargets.some((a) => a.labels.instance === "127.0.0.1:29"));
      t.diagnostic(`file_sd change visible after ${Date.now() - started} ms`);
    });

    it("reload applies a good config and rejects a bad one with Prometheus's message", async () => {
      await p.writeFile(
        "prometheus.yml",
        config({ port: p.port }).replace("scrape_interval: 1s", "scrape_interval: 2s"),
      );
      await p.reload();
      await p.writeFile("prometheus.yml", "scrape_configs: [{job_name: x, scrape_interval: nope}]");
      await assert.rejects(p.reload(), /nope/);
    });

    it("promtool passes a good config and fails a bad one with a message", async () => {
      const good = join(p.dir, "good.yml");
      writeFileSync(good, config({ port: 9090 }));
      assert.deepEqual(await promtoolCheckConfig(bin, good).then((r) => r.ok), true);
      const bad = join(p.dir, "bad.yml");
      writeFileSync(bad, config({ port: 9090 }).replace('regex: ".*:19"', 'regex: "(19"'));
      const res = await promtoolCheckConfig(bin, bad);
      assert.equal(res.ok, false);
      assert.match(res.output, /error parsing regexp: missing closing \)/);
    });

    it("stop leaves no process and no directory behind", async () => {
      const { pid, dir } = p;
      assert.ok(processesMentioning(dir).length >= 1);
      await p.stop();
      assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
      assert.throws(() => process.kill(-pid, 0), { code: "ESRCH" });
      assert.deepEqual(processesMentioning(dir), []);
      assert.equal(existsSync(dir), false);
      await p.stop(); // idempotent
    });
  });
}

describe("prometheusBinaries", () => {
  it("throws, naming make setup and make tools, when a listed binary is missing", () => {
    const saved = process.env.PROMSHARD_PROMETHEUS_BINS;
    process.env.PROMSHARD_PROMETHEUS_BINS = "/nonexistent/prometheus";
    try {
      assert.throws(() => prometheusBinaries(), /\/nonexistent\/prometheus is missing.*make setup.*make tools/);
    } finally {
      if (saved === undefined) delete process.env.PROMSHARD_PROMETHEUS_BINS;
      else process.env.PROMSHARD_PROMETHEUS_BINS = saved;
    }
  });

  it("reads the version from --version", () => {
    for (const b of prometheusBinaries() satisfies PrometheusBinary[]) {
      assert.match(b.version, /^\d+\.\d+\.\d+$/);
      assert.equal(b.major, Number(b.version.split(".")[0]));
    }
  });
});
