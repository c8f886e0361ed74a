/**
 * S1, the seed's experiment, end to end with real processes: `promshard local` with the real
 * Prometheus, six demo targets of 10045 series each (10040 exposed + Prometheus's 5 scrape
 * series) and a 30000-series budget: exactly 3 shards with 2 targets each, each target
 * scraped by exactly one shard, and the global endpoint counting 6 × 10045 series.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { isRunning } from "../../src/coordinator/process.ts";
import { type DemoExporter, startDemoExporter } from "../../src/demo/exporter.ts";
import { freePort } from "../../src/util/ports.ts";
import { prometheusBinaries } from "../support/prometheus.ts";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url);
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** After a failure: SIGKILL what promshard local left running (it runs shards detached). */
function killLeftovers(dataDir: string): void {
  const pids: number[] = [];
  try {
    const saved = JSON.parse(readFileSync(join(dataDir, "shards.json"), "utf8")) as {
      pids: { sidecar?: number; prometheus?: number };
    }[];
    for (const s of saved) pids.push(s.pids.sidecar ?? 0, s.pids.prometheus ?? 0);
  } catch {
    // stopped cleanly: no shards.json
  }
  try {
    pids.push(Number(readFileSync(join(dataDir, "global", "pid"), "utf8")));
  } catch {
    // never started
  }
  // Only processes whose command line names this data directory: a pid may have been reused.
  for (const pid of pids.filter((p) => p > 0 && isRunning(p, dataDir))) process.kill(pid, "SIGKILL");
}

interface Shards {
  shards: {
    id: number;
    series: number;
    ready: boolean;
    prometheusUrl: string;
    targets: { labels: Record<string, string> }[];
  }[];
}

for (const bin of prometheusBinaries()) {
  describe(`S1 with promshard local and Prometheus ${bin.version}`, () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-s1-"));
    const exporters: DemoExporter[] = [];
    let local: ChildProcess | undefined;
    let output = "";
    let port = 0;
    let globalPort = 0;
    after(async () => {
      if (local && local.exitCode === null) {
        const exited = new Promise((r) => local!.once("exit", r));
        local.kill("SIGTERM");
        await exited;
      }
      killLeftovers(join(dir, "data"));
      for (const e of exporters) await e.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("6 targets of 10045 series, budget 30000: 3 shards of 2 targets; global count 6 × 10045", {
      timeout: 180_000,
    }, async () => {
      for (let i = 0; i < 6; i++) exporters.push(await startDemoExporter({ series: 10040 }));
      writeFileSync(
        join(dir, "targets.json"),
        JSON.stringify([{ targets: exporters.map((e) => `127.0.0.1:${e.port}`) }]),
      );
      writeFileSync(
        join(dir, "prometheus.yml"),
        "global:\n  scrape_interval: 2s\nscrape_configs:\n- job_name: demo\n  file_sd_configs: [{files: [targets.json]}]\n",
      );
      [port, globalPort] = [await freePort(), await freePort()];
      local = spawn(
        process.execPath,
        [
          cli,
          "local",
          "--config",
          join(dir, "prometheus.yml"),
          "--max-series",
          "30000",
          "--data-dir",
          join(dir, "data"),
          "--prometheus-bin",
          bin.bin,
          "--listen",
          `127.0.0.1:${port}`,
          "--global.listen-port",
          String(globalPort),
          "--interval",
          "1s",
          "--prometheus-version",
          bin.version,
          "--log.level",
          "warn",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      local.stdout!.on("data", (d) => (output += d));
      local.stderr!.on("data", (d) => (output += d));

      let shards: Shards | undefined;
      for (let i = 0; i < 120 && local.exitCode === null; i++) {
        shards = await getJson<Shards>(`http://127.0.0.1:${port}/api/v1/shards`);
        if (shards && shards.shards.length === 3 && shards.shards.every((s) => s.targets.length === 2)) break;
        await sleep(1000);
      }
      assert.ok(shards, `no answer from promshard local:\n${output}`);
      assert.deepEqual(
        shards.shards.map((s) => s.targets.length),
        [2, 2, 2],
        `${JSON.stringify(shards.shards.map((s) => ({ id: s.id, series: s.series, n: s.targets.length })))}\n${output}`,
      );

      // Each target is scraped by exactly one shard's Prometheus.
      const scrapedBy = new Map<string, number>();
      for (let i = 0; i < 60; i++) {
        scrapedBy.clear();
        for (const s of shards.shards) {
          const r = await getJson<{ data: { result: { metric: { instance: string }; value: [number, string] }[] } }>(
            `${s.prometheusUrl}/api/v1/query?query=${encodeURIComponent('up{job="demo"} == 1')}`,
          );
          for (const x of r?.data.result ?? [])
            scrapedBy.set(x.metric.instance, (scrapedBy.get(x.metric.instance) ?? 0) + 1);
        }
        if (scrapedBy.size === 6 && [...scrapedBy.values()].every((n) => n === 1)) break;
        await sleep(1000);
      }
      assert.equal(scrapedBy.size, 6, `every target up on some shard: ${JSON.stringify([...scrapedBy])}`);
      assert.ok(
        [...scrapedBy.values()].every((n) => n === 1),
        "no target on two shards",
      );

      let count = 0;
      for (let i = 0; i < 60 && count !== 6 * 10045; i++) {
        const r = await getJson<{ data: { result: { value: [number, string] }[] } }>(
          `http://127.0.0.1:${globalPort}/api/v1/query?query=${encodeURIComponent('count({__name__=~".+", job="demo"})')}`,
        );
        count = Number(r?.data.result[0]?.value[1] ?? 0);
        if (count !== 6 * 10045) await sleep(1000);
      }
      assert.equal(count, 6 * 10045);
    });

    it("SIGTERM twice (a process group and the process): every shard process is stopped", {
      timeout: 60_000,
    }, async () => {
      const body = await getJson<{ shards: { pids: { sidecar: number; prometheus: number } }[] }>(
        `http://127.0.0.1:${port}/api/v1/shards`,
      );
      const pids = (body?.shards ?? []).flatMap((s) => [s.pids.sidecar, s.pids.prometheus]);
      assert.equal(pids.length, 6);
      const exited = new Promise((r) => local!.once("exit", r));
      local!.kill("SIGTERM");
      // The second one arrives while the first is being handled (two at once would merge).
      await sleep(30);
      local!.kill("SIGTERM");
      await exited;
      const alive = pids.filter((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      });
      assert.deepEqual(alive, [], "no shard process outlives promshard local");
    });
  });
}
