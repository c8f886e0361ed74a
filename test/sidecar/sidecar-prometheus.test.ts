/**
 * The sidecar against the real Prometheus, both versions: Prometheus runs the sidecar's
 * output; the coordinator's part is played by this test (every target discovered from the
 * original config, PUT to the sidecar). The shard must scrape exactly the assigned targets
 * with the labels and URLs an unsharded Prometheus on the original config has (different
 * paths, job and per-target params, basic auth with a password file, TLS with a CA file,
 * file SD with a labelmap of __meta_*), pick up moves in and out without any reload, and
 * report each target's health and series as Prometheus measures them. Every generated config
 * passes promtool. The time from PUT to Prometheus showing the change is measured and printed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { AssignedTarget } from "../../src/contract/assignment.ts";
import { createLogger } from "../../src/observability/log.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { Sidecar } from "../../src/sidecar/sidecar.ts";
import {
  discoverAll,
  type PromProxy,
  type Setup,
  sidecarClient,
  startProxy,
  startSetup,
  until,
} from "../fixtures/sidecar/harness.ts";
import {
  type ActiveTarget,
  prometheusBinaries,
  promtoolCheckConfig,
  type RunningPrometheus,
  startPrometheus,
  waitForTargets,
} from "../support/prometheus.ts";

const TOKEN = "test-token-0123456789";

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v,
  );
}
const key = (t: ActiveTarget) => canonical({ p: t.scrapePool, l: t.labels, u: t.scrapeUrl });

/** putMs: the PUT's round trip (the files are written when it returns); ms: until Prometheus lists the change. */
const measured: { version: string; change: string; putMs: number; ms: number }[] = [];

for (const bin of prometheusBinaries()) {
  describe(`sidecar drives Prometheus ${bin.version}`, () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-sidecar-"));
    let setup: Setup;
    let unsharded: RunningPrometheus;
    let proxy: PromProxy;
    let sidecar: Sidecar | undefined;
    let shard: RunningPrometheus | undefined;

    before(async () => {
      setup = await startSetup(join(dir, "certs"));
      const { "prometheus.yml": config, ...files } = setup.files;
      unsharded = await startPrometheus(bin, { config: config!, files });
      proxy = await startProxy();
    });
    after(async () => {
      await sidecar?.stop();
      await shard?.stop();
      await unsharded?.stop();
      await proxy?.close();
      await setup?.close();
      rmSync(dir, { recursive: true, force: true });
      if (measured.length > 0 && bin === prometheusBinaries().at(-1)) {
        console.log("time from PUT /api/v1/assignment to Prometheus listing the change (no reload):");
        console.table(measured);
      }
    });

    it("scrapes exactly the assigned targets, as the unsharded one does, and moves them without a reload", {
      timeout: 240_000,
    }, async (t) => {
      // The sidecar reads the config the unsharded Prometheus runs, as a coordinator does.
      const configFile = join(unsharded.dir, "prometheus.yml");
      const out = join(dir, "out");
      const tokenFile = join(dir, "token");
      writeFileSync(tokenFile, `${TOKEN}\n`);
      sidecar = new Sidecar({
        configFile,
        prometheusUrl: proxy.url,
        outputDir: out,
        stateDir: join(dir, "state"),
        listen: "127.0.0.1:0",
        tokenFile,
        identity: { shard: 0, replica: "0" },
        configCheckIntervalMs: 500,
        log: createLogger({ component: "sidecar", level: "warn" }),
      });
      // As in a pod: the sidecar writes the config before Prometheus starts.
      await sidecar.start();
      const generated = join(out, "prometheus.yml");
      const check = await promtoolCheckConfig(bin, generated);
      assert.ok(check.ok, `promtool rejected the generated config:\n${check.output}`);
      shard = await startPrometheus(bin, { config: "# not used\n", args: [`--config.file=${generated}`] });
      await proxy.setUpstream(shard.url);
      const api = sidecarClient(sidecar.url, TOKEN);
      const loadedAt = (await shard.api<{ lastConfigTime: string }>("status/runtimeinfo")).lastConfigTime;

      // Every job is in Prometheus's config from the start, with no targets.
      const empty = await api.runtime();
      assert.equal(empty.assignment, null);
      assert.deepEqual((await shard.targets()).activeTargets, []);

      const all = await discoverAll(configFile, dialectFor(bin.version));
      assert.equal(all.length, 8, "6 exporters, a dead target and one that relabeling drops");
      const want = await waitForTargets(unsharded, (r) => r.activeTargets.length === 7, 30_000);
      const wantKeys = want.activeTargets.map(key).sort();

      const change = async (name: string, version: number, targets: AssignedTarget[], expected: string[]) => {
        // Let discovery go idle first, as between a coordinator's rare moves.
        await new Promise((r) => setTimeout(r, 6_000));
        const start = performance.now();
        const res = await api.assign(version, targets);
        const putMs = Math.round((performance.now() - start) * 10) / 10;
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.version, version);
        await waitForTargets(shard!, (r) => canonical(r.activeTargets.map(key).sort()) === canonical(expected), 30_000);
        const ms = Math.round(performance.now() - start);
        measured.push({ version: bin.version, change: name, putMs, ms });
        t.diagnostic(
          `${name}: files written ${putMs} ms, Prometheus ${bin.version} listed the change ${ms} ms after the PUT`,
        );
      };

      await change("assign all 8 targets", 1, all, wantKeys);
      const got = await shard.targets();
      assert.deepEqual(got.activeTargets.map(key).sort(), wantKeys, "same pools, labels and URLs as unsharded");

      // Runtime: Prometheus's own view of each assigned target, mapped back exactly.
      const rt = await until(
        "every live target scraped and counted",
        async () => {
          const r = await api.runtime();
          return (
            r.summary.up === 6 &&
            r.summary.down === 1 &&
            r.targets.every((x) => x.series !== null || x.status === "dropped") &&
            r
          );
        },
        30_000,
      );
      assert.equal(rt.prometheus.status, "ready");
      assert.ok(rt.prometheus.version?.startsWith(bin.version), `${rt.prometheus.version} is ${bin.version}`);
      assert.equal(rt.prometheus.versionSource, "prometheus");
      assert.ok((rt.prometheus.headSeries ?? 0) >= 72, `head series ${rt.prometheus.headSeries}`);
      assert.equal(rt.assignment?.version, 1);
      assert.deepEqual(rt.unmappedTargets, []);
      assert.equal(rt.summary.dropped, 1);
      for (const e of setup.exporters) {
        const row = rt.targets.find((x) => x.address === e.address);
        assert.ok(row, `runtime lists ${e.name}`);
        assert.equal(row.status, "scraped", e.name);
        assert.equal(row.health, "up", `${e.name}: ${row.lastError}`);
        assert.equal(row.series, e.series, `${e.name}: series after metric relabeling`);
        assert.ok(row.lastScrape !== null && row.id !== null);
      }
      const dead = rt.targets.find((x) => x.address === setup.deadAddress)!;
      assert.equal(dead.health, "down");
      assert.match(dead.lastError ?? "", /refused/);
      assert.equal(rt.targets.find((x) => x.status === "dropped")?.address, "127.0.0.1:9");

      // Move the file-SD and TLS targets out, then back in.
      const keep = (x: AssignedTarget) => x.job !== "paths" && x.job !== "tls";
      const subsetKeys = want.activeTargets
        .filter((x) => x.scrapePool !== "paths" && x.scrapePool !== "tls")
        .map(key)
        .sort();
      await change("move 3 targets out", 2, all.filter(keep), subsetKeys);
      const moved = await api.runtime();
      assert.equal(moved.summary.assigned, 5);
      assert.deepEqual(moved.unmappedTargets, []);
      await change("move 3 targets in", 3, all, wantKeys);
      await change("move all 8 out", 4, [], []);
      await change("move all 8 in", 5, all, wantKeys);

      // No reload for any of it: not one POST /-/reload, and Prometheus's config time unchanged.
      assert.equal(proxy.reloads(), 0);
      assert.equal((await shard.api<{ lastConfigTime: string }>("status/runtimeinfo")).lastConfigTime, loadedAt);
      const again = await promtoolCheckConfig(bin, generated);
      assert.ok(again.ok, again.output);
      assert.match(readFileSync(generated, "utf8"), /shard: '0'/);
    });
  });
}
