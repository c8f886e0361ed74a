/**
 * Config changes against the real Prometheus, both versions. A structural change of the
 * original config regenerates the shard config and reloads Prometheus once. A config that
 * fails promshard's validation changes nothing in Prometheus. A config promshard accepts but
 * Prometheus rejects (a broken rule file) is reported with Prometheus's own error, the
 * previous config is put back on disk and stays running, and the change is retried with
 * backoff until the rule file is fixed. Every generated config passes promtool.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dump, load } from "js-yaml";
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
  writeFiles,
} from "../fixtures/sidecar/harness.ts";
import {
  prometheusBinaries,
  promtoolCheckConfig,
  type RunningPrometheus,
  startPrometheus,
  waitForTargets,
} from "../support/prometheus.ts";

const TOKEN = "reload-token";
const GOOD_RULES = dump({ groups: [{ name: "g", rules: [{ record: "job:up:sum", expr: "sum by (job) (up)" }] }] });

for (const bin of prometheusBinaries()) {
  describe(`sidecar reloads Prometheus ${bin.version} only for config changes`, () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-sidecar-reload-"));
    const orig = join(dir, "orig");
    const out = join(dir, "out");
    let setup: Setup;
    let proxy: PromProxy;
    let sidecar: Sidecar | undefined;
    let prom: RunningPrometheus | undefined;

    before(async () => {
      setup = await startSetup(join(dir, "certs"));
      writeFiles(orig, setup.files);
      writeFileSync(join(dir, "token"), TOKEN);
      proxy = await startProxy();
    });
    after(async () => {
      await sidecar?.stop();
      await prom?.stop();
      await proxy?.close();
      await setup?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("reloads on structural changes, keeps the last good config on rejection and retries", {
      timeout: 180_000,
    }, async () => {
      const configFile = join(orig, "prometheus.yml");
      const original = load(readFileSync(configFile, "utf8")) as Record<string, unknown>;
      sidecar = new Sidecar({
        configFile,
        prometheusUrl: proxy.url,
        outputDir: out,
        stateDir: join(dir, "state"),
        listen: "127.0.0.1:0",
        tokenFile: join(dir, "token"),
        identity: { shard: 0, replica: "a" },
        prometheusVersion: bin.version,
        configCheckIntervalMs: 300,
        reloadBackoff: { initialMs: 200, maxMs: 1_000 },
        log: createLogger({ component: "sidecar", level: "silent" }),
      });
      await sidecar.start();
      const generated = join(out, "prometheus.yml");
      prom = await startPrometheus(bin, { config: "# not used\n", args: [`--config.file=${generated}`] });
      await proxy.setUpstream(prom.url);
      const api = sidecarClient(sidecar.url, TOKEN);
      await until("no reload pending", async () => (await api.runtime()).config.reload.state === "ok");
      const all = await discoverAll(configFile, dialectFor(bin.version));
      assert.equal((await api.assign(1, all)).status, 200);
      await waitForTargets(prom, (r) => r.activeTargets.length === 7, 30_000);
      const reloadsAtStart = proxy.reloads();

      // 1. A structural change: a new job with a rule file. One reload, and the new job is there.
      writeFileSync(join(orig, "rules.yml"), GOOD_RULES);
      const withJob = {
        ...original,
        rule_files: ["rules.yml"],
        scrape_configs: [
          ...(original.scrape_configs as unknown[]),
          { job_name: "extra", static_configs: [{ targets: [setup.exporters[0]!.address] }] },
        ],
      };
      writeFileSync(configFile, dump(withJob));
      await until("reloaded with the new job", async () => {
        const r = await api.runtime();
        return (
          r.config.reload.state === "ok" &&
          r.config.reload.appliedHash === r.config.generatedHash &&
          proxy.reloads() === reloadsAtStart + 1
        );
      });
      assert.match(readFileSync(generated, "utf8"), /job_name: extra/);
      const check = await promtoolCheckConfig(bin, generated);
      assert.ok(check.ok, check.output);
      const extra = { job: "extra", labels: { __address__: setup.exporters[0]!.address } };
      assert.equal((await api.assign(2, [...all, extra])).status, 200);
      await waitForTargets(
        prom,
        (r) => r.activeTargets.some((t) => t.scrapePool === "extra" && t.health === "up"),
        30_000,
      );
      const rules = await prom.api<{ groups: { name: string }[] }>("rules");
      assert.deepEqual(
        rules.groups.map((g) => g.name),
        ["g"],
        "the rule file resolves against the original config's directory",
      );

      // 2. A config that fails promshard's validation: nothing reaches Prometheus.
      const good = readFileSync(generated, "utf8");
      const reloadsBefore = proxy.reloads();
      writeFileSync(
        configFile,
        dump({ ...withJob, scrape_configs: [...withJob.scrape_configs, { job_name: "extra" }] }),
      );
      // The file is written in place, so the sidecar may first read half of it (a YAML error):
      // the error that counts is the one about the whole file.
      const invalid = await until("validation error reported", async () => {
        const r = await api.runtime();
        return !r.config.valid && /extra/.test(r.config.error?.message ?? "") && r;
      });
      assert.match(invalid.config.error?.message ?? "", /extra/);
      assert.equal(readFileSync(generated, "utf8"), good);
      assert.equal(proxy.reloads(), reloadsBefore);

      // 3. Valid for promshard, rejected by Prometheus: a broken rule file.
      writeFileSync(
        join(orig, "broken.yml"),
        "groups:\n  - name: bad\n    rules:\n      - record: x\n        expr: sum(\n",
      );
      writeFileSync(configFile, dump({ ...withJob, rule_files: ["rules.yml", "broken.yml"] }));
      const rejected = await until("rejection reported", async () => {
        const r = await api.runtime();
        return r.config.valid && r.config.reload.state === "failed" && r.config.reload.failures >= 2 && r;
      });
      // Prometheus's answer is all there is to say (its details go to its own log).
      assert.match(
        rejected.config.reload.lastError ?? "",
        /^Prometheus rejected the generated config: failed to reload config: /,
      );
      assert.notEqual(rejected.config.reload.appliedHash, rejected.config.generatedHash);
      assert.ok(rejected.config.reload.nextAttemptAt !== null, "a retry is scheduled");
      // Between attempts the previous good config is on disk (each retry puts the new one in
      // place only for the length of its POST /-/reload, so poll past one in flight).
      await until("the previous good config is back on disk", async () => readFileSync(generated, "utf8") === good);
      assert.ok(proxy.reloads() >= reloadsBefore + 2, "retried");
      const stillScraping = await prom.targets();
      assert.equal(stillScraping.activeTargets.length, 8, "Prometheus keeps running the good config");

      // Fixing the rule file is enough: the next retry succeeds.
      writeFileSync(join(orig, "broken.yml"), GOOD_RULES.replace("name: g", "name: fixed"));
      await until("retry succeeded", async () => {
        const r = await api.runtime();
        return r.config.reload.state === "ok" && r.config.reload.appliedHash === r.config.generatedHash;
      });
      assert.match(readFileSync(generated, "utf8"), /broken\.yml/);
      const after = await prom.api<{ groups: { name: string }[] }>("rules");
      assert.deepEqual(after.groups.map((g) => g.name).sort(), ["fixed", "g"]);
      const final = await promtoolCheckConfig(bin, generated);
      assert.ok(final.ok, final.output);
    });
  });
}
