/**
 * A brand-new shard pod started while the config file is broken: its state dir is empty, so
 * it runs the coordinator's last good config (--config.fallback-file, the Secret the webhook
 * mounts) and scrapes what that says, instead of nothing until someone fixes the file.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { dump, load } from "js-yaml";
import { createLogger } from "../../src/observability/log.ts";
import { Sidecar } from "../../src/sidecar/sidecar.ts";
import { type PromProxy, sidecarClient, startProxy, until } from "../fixtures/sidecar/harness.ts";

const TOKEN = "api-token-fallback";
const GOOD = {
  global: { scrape_interval: "15s" },
  scrape_configs: [{ job_name: "a", static_configs: [{ targets: ["10.0.0.1:9100"] }] }],
};
const BROKEN = { scrape_configs: [{ job_name: "a", scrape_interval: "nope", static_configs: [] }] };

describe("sidecar fallback config", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-sidecar-fallback-"));
  const sidecars: Sidecar[] = [];
  let proxy: PromProxy | undefined;
  after(async () => {
    for (const s of sidecars) await s.stop();
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (name: string, fallback: string | undefined) => {
    proxy ??= await startProxy();
    await proxy.down();
    const out = join(dir, name, "out");
    const s = new Sidecar({
      configFile: join(dir, "prometheus.yml"),
      prometheusUrl: proxy.url,
      outputDir: out,
      stateDir: join(dir, name, "state"),
      ...(fallback ? { fallbackConfigFile: fallback } : {}),
      listen: "127.0.0.1:0",
      tokenFile: join(dir, "token"),
      identity: { shard: 0, replica: "0" },
      prometheusVersion: "3.16",
      configCheckIntervalMs: 200,
      log: createLogger({ component: "sidecar", level: "silent" }),
    });
    sidecars.push(s);
    await s.start();
    return { s, out, api: sidecarClient(s.url, TOKEN) };
  };

  it("a new pod with a broken config file runs the coordinator's last good one, and takes the file once it is fixed", async () => {
    writeFileSync(join(dir, "token"), `${TOKEN}\n`);
    writeFileSync(join(dir, "prometheus.yml"), dump(BROKEN));
    const fallback = join(dir, "last-good", "prometheus.yml");
    mkdirSync(join(dir, "last-good"));
    writeFileSync(fallback, dump(GOOD));

    // Without the fallback (the old behaviour) a new pod has no config, and a push is refused.
    const bare = await start("bare", undefined);
    await until("the bare sidecar reports its broken config", async () => !(await bare.api.runtime()).config.valid);
    assert.equal((await bare.api.assign(1, [])).status, 503);

    const { out, api } = await start("new", fallback);
    await until("the shard config written", async () => readdirSync(out).includes("prometheus.yml"));
    const generated = load(readFileSync(join(out, "prometheus.yml"), "utf8")) as {
      scrape_configs: { job_name: string }[];
    };
    assert.deepEqual(
      generated.scrape_configs.map((j) => j.job_name),
      ["a"],
    );
    const rt = await api.runtime();
    assert.equal(rt.config.valid, false, "the broken file is still reported");
    assert.match(rt.config.error?.message ?? "", /scrape_interval/);
    // The coordinator's push applies against the fallback's jobs.
    const push = await api.assign(1, [{ job: "a", labels: { __address__: "10.0.0.1:9100" }, sdIndex: 0 }]);
    assert.equal(push.status, 200);

    writeFileSync(join(dir, "prometheus.yml"), dump(GOOD));
    await until("config valid again", async () => (await api.runtime()).config.valid);
  });

  it("a fallback that does not load either leaves the pod as without one", async () => {
    const bad = join(dir, "bad-fallback.yml");
    writeFileSync(bad, dump(BROKEN));
    writeFileSync(join(dir, "prometheus.yml"), dump(BROKEN));
    const { api, out } = await start("bad", bad);
    await until("it reports the broken config", async () => !(await api.runtime()).config.valid);
    assert.equal((await api.assign(1, [])).status, 503);
    assert.ok(
      !readdirSync(out).includes("prometheus.yml") ||
        !readFileSync(join(out, "prometheus.yml"), "utf8").includes("job_name: a"),
    );
  });
});
