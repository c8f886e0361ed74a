/**
 * The reloader against a fake Prometheus whose answers the test chooses: a rejected config
 * puts the previous one back and is retried with backoff until accepted; an unreachable
 * Prometheus leaves the new file in place, and a Prometheus started after the write is
 * recognised without a reload.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createLogger } from "../../src/observability/log.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { PrometheusClient } from "../../src/sidecar/prometheus-client.ts";
import { Reloader } from "../../src/sidecar/reloader.ts";
import { until } from "../fixtures/sidecar/harness.ts";
import { freePort } from "../support/ports.ts";

const dir = mkdtempSync(join(tmpdir(), "promshard-reloader-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Answers /-/reload with `reply()` and /api/v1/status/runtimeinfo with its start time. */
async function fakePrometheus(port: number, reply: () => [number, string] | Promise<[number, string]>) {
  const startTime = new Date().toISOString();
  let reloads = 0;
  const server: Server = createServer(async (req, res) => {
    if (req.url === "/-/reload" && req.method === "POST") {
      reloads++;
      const [status, text] = await reply();
      return void res.writeHead(status).end(text);
    }
    if (req.url === "/api/v1/status/runtimeinfo") {
      return void res.end(
        JSON.stringify({
          status: "success",
          data: { startTime, reloadConfigSuccess: true, lastConfigTime: startTime },
        }),
      );
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    reloads: () => reloads,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("reloader", () => {
  const log = createLogger({ component: "test", level: "silent" });

  it("puts the previous config back when Prometheus rejects the new one, and retries", async () => {
    let accept = false;
    const path = join(dir, "a.yml");
    // The previous config loads (it did before); the new one only once accepted.
    const prom = await fakePrometheus(0, () =>
      accept || readFileSync(path, "utf8").startsWith("old")
        ? [200, ""]
        : [500, "failed to reload config: error loading rules: bad.yml: parse error"],
    );
    writeFileSync(path, "old: config\n");
    const registry = createRegistry({ defaultMetrics: false });
    const r = new Reloader({
      path,
      client: new PrometheusClient(prom.url),
      log,
      registry,
      backoff: { initialMs: 50, maxMs: 200 },
    });
    await r.init();
    await r.apply("old: config\n");
    assert.equal(prom.reloads(), 0, "the config on disk is the desired one: no reload");
    await r.apply("new: config\n");
    let s = r.status();
    assert.equal(s.state, "failed");
    assert.equal(
      s.lastError,
      "Prometheus rejected the generated config: failed to reload config: error loading rules: bad.yml: parse error; Prometheus runs the previous config again",
    );
    assert.equal(readFileSync(path, "utf8"), "old: config\n", "the previous config is back");
    assert.ok(!existsSync(`${path}.prev`));
    await until("retried", async () => prom.reloads() >= 5);
    assert.equal(readFileSync(path, "utf8"), "old: config\n");
    assert.match(await registry.metrics(), /promshard_sidecar_reloads_total\{result="rejected"\} [3-9]/);
    accept = true;
    await until("accepted", async () => r.status().state === "ok");
    s = r.status();
    assert.equal(readFileSync(path, "utf8"), "new: config\n");
    assert.equal(s.appliedHash, s.desiredHash);
    assert.equal(s.failures, 0);
    assert.ok(!existsSync(`${path}.prev`));
    await r.stop();
    await prom.close();
  });

  it("reports the retry as due while it runs, not a failure with nothing coming", async () => {
    const path = join(dir, "d.yml");
    let rejections = 0;
    let release: (() => void) | undefined;
    const prom = await fakePrometheus(0, async () => {
      if (!readFileSync(path, "utf8").startsWith("new")) return [200, ""];
      // The first retry's answer waits until the test has looked; every other answers at once.
      if (++rejections === 2) await new Promise<void>((r) => (release = r));
      return [500, "failed to reload config: bad rule file"];
    });
    writeFileSync(path, "old: config\n");
    const r = new Reloader({
      path,
      client: new PrometheusClient(prom.url),
      log,
      backoff: { initialMs: 50, maxMs: 50 },
    });
    await r.init();
    await r.apply("new: config\n");
    assert.equal(r.status().state, "failed");
    assert.ok(r.status().nextAttemptAt !== null, "a retry is scheduled");
    await until("the retry is in flight", async () => release !== undefined);
    try {
      const during = r.status();
      assert.equal(during.state, "failed");
      assert.ok(during.nextAttemptAt !== null, "the retry under way is reported");
      assert.ok(Date.parse(during.nextAttemptAt) <= Date.now(), "its due time is past: it runs");
    } finally {
      release?.();
    }
    await until("failed again, next retry due", async () => r.status().failures >= 2);
    assert.ok(r.status().nextAttemptAt !== null);
    await r.stop();
    assert.equal(r.status().nextAttemptAt, null, "stopped: nothing is coming");
    await prom.close();
  });

  it("after a rejection, makes Prometheus load the restored config: 2.42 applies the scrape jobs of a config it rejects", async () => {
    const path = join(dir, "c.yml");
    const loaded: string[] = [];
    // Reads the file at each reload, as Prometheus does; rejects the new one (its rule file is broken).
    const prom = await fakePrometheus(0, () => {
      const text = readFileSync(path, "utf8");
      loaded.push(text);
      return text.startsWith("new") ? [500, "error loading rules: bad.yml"] : [200, ""];
    });
    writeFileSync(path, "old: config\n");
    const r = new Reloader({
      path,
      client: new PrometheusClient(prom.url),
      log,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
    });
    await r.init();
    await r.apply("new: config\n");
    assert.deepEqual(loaded, ["new: config\n", "old: config\n"], "the restored file was loaded again");
    const s = r.status();
    assert.equal(s.state, "failed");
    assert.notEqual(s.appliedHash, s.desiredHash, "what runs is not the desired config");
    assert.match(
      s.lastError ?? "",
      /rejected the generated config: error loading rules: bad\.yml; Prometheus runs the previous config again/,
    );
    await r.stop();
    await prom.close();
  });

  it("keeps the new file when Prometheus is unreachable and sees it loaded at Prometheus's start", async () => {
    const port = await freePort();
    const path = join(dir, "b.yml");
    const r = new Reloader({
      path,
      client: new PrometheusClient(`http://127.0.0.1:${port}`),
      log,
      backoff: { initialMs: 50, maxMs: 100 },
    });
    await r.init();
    await r.apply("first: config\n");
    assert.equal(r.status().state, "pending");
    assert.match(r.status().lastError ?? "", /unreachable: ECONNREFUSED/);
    assert.equal(readFileSync(path, "utf8"), "first: config\n", "Prometheus reads it when it starts");
    await new Promise((res) => setTimeout(res, 20));
    const prom = await fakePrometheus(port, () => [200, ""]);
    await until("noticed", async () => r.status().state === "ok");
    assert.equal(prom.reloads(), 0, "started after the write: no reload needed");
    await r.stop();
    await prom.close();
  });
});
