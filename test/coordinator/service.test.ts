/**
 * The coordinator service: config reloads that keep the last good config, and the HTTP API
 * (/api/v1/targets in Prometheus's shape plus the shard, /api/v1/status, /-/reload), over
 * in-memory shards; and the shard client against sidecars that answer garbage, 500 or nothing.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadConfigFile } from "../../src/config/load.ts";
import { Coordinator } from "../../src/coordinator/coordinator.ts";
import { coordinatorMetrics } from "../../src/coordinator/metrics.ts";
import { CoordinatorService, type CoordinatorServiceOptions } from "../../src/coordinator/service.ts";
import { httpShardClient } from "../../src/coordinator/shard-client.ts";
import type { Scaler } from "../../src/coordinator/shards.ts";
import { DiscoveryManager } from "../../src/discovery/manager.ts";
import { createHttpApp, listen } from "../../src/observability/http.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { getStrategy } from "../../src/scheduler/index.ts";
import { FakeShard, idOf } from "./fake-shards.ts";

const dialect = dialectFor("3.16");
const configText = (targets: string[], regex = "keep-.*") => `
global: {scrape_interval: 5s}
scrape_configs:
- job_name: demo
  static_configs: [{targets: ${JSON.stringify(targets)}}]
  relabel_configs: [{source_labels: [__address__], regex: '${regex}', action: keep}]
`;

describe("coordinator service", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-service-"));
  const file = join(dir, "prometheus.yml");
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stops) await s();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(extra: Partial<CoordinatorServiceOptions> = {}) {
    writeFileSync(file, configText(["keep-a:1", "keep-b:1", "drop-c:1"]));
    const config = loadConfigFile(file, dialect);
    const discovery = new DiscoveryManager();
    discovery.apply(config);
    const series = new Map<string, number>();
    const shards: FakeShard[] = [];
    const scaler: Scaler = {
      current: () => shards.length,
      async scaleTo(n) {
        while (shards.length < n) shards.push(new FakeShard(series));
        shards.length = n;
      },
    };
    const registry = createRegistry({ defaultMetrics: false });
    const metrics = coordinatorMetrics(registry);
    const log = createLogger({ component: "test", level: "silent" });
    const coordinator = new Coordinator(config, {
      discovery,
      strategy: getStrategy("series-balanced")!,
      scaler,
      shard: (i) => shards[i]!,
      explore: async (t) => {
        idOf.set(t.labels.instance!, t.id);
        series.set(t.id, 20_000);
        return 20_000;
      },
      budget: 30_000,
      minShards: 1,
      maxShards: 5,
      scaleDownDelayMs: 60_000,
      metrics,
    });
    const service = new CoordinatorService({
      coordinator,
      discovery,
      configFile: file,
      dialect,
      intervalMs: 1000,
      metrics,
      log,
      endpoint: (id) => ({ prometheusUrl: `http://shard-${id}:9090` }),
      ...extra,
    });
    const app = createHttpApp({
      registry,
      log,
      readiness: () => service.readiness(),
      routes: (a) => service.routes(a),
    });
    const server = await listen(app, "127.0.0.1:0");
    stops.push(() => server.close());
    const round = async () => {
      await service.round();
      for (const s of shards) s.scrape();
    };
    // biome-ignore lint/suspicious/noExplicitAny: the tests walk the API's JSON freely
    const get = async (path: string) => (await fetch(`${server.url}${path}`)).json() as Promise<Record<string, any>>;
    return { round, get, server, shards, registry };
  }

  it("serves /api/v1/targets in Prometheus's shape, with the shard of each target", async () => {
    const { round, get } = await start();
    for (let i = 0; i < 3; i++) await round();
    const body = await get("/api/v1/targets");
    assert.equal(body.status, "success");
    const active = body.data.activeTargets as { labels: { instance: string }; shard: number; scrapePool: string }[];
    assert.deepEqual(active.map((t) => t.labels.instance).sort(), ["keep-a:1", "keep-b:1"]);
    assert.deepEqual(active.map((t) => t.shard).sort(), [0, 1], "20000 + 20000 > 30000: two shards");
    for (const t of body.data.activeTargets) {
      assert.equal(t.scrapePool, "demo");
      assert.equal(t.scrapeUrl, `http://${t.labels.instance}/metrics`);
      assert.equal(t.health, "up");
      assert.equal(t.scrapeInterval, "5s");
    }
    assert.deepEqual(
      body.data.droppedTargets.map(
        (d: { discoveredLabels: { __address__: string } }) => d.discoveredLabels.__address__,
      ),
      ["drop-c:1"],
    );
    const onlyDropped = await get("/api/v1/targets?state=dropped");
    assert.equal(onlyDropped.data.activeTargets.length, 0);
    const shards = await get("/api/v1/shards");
    assert.equal(shards.shards[0].prometheusUrl, "http://shard-0:9090");
  });

  it("a shard that is down is named in /api/v1/status and on the status page (the global view is incomplete)", async () => {
    const { round, get, server, shards } = await start();
    for (let i = 0; i < 3; i++) await round();
    assert.deepEqual((await get("/api/v1/status")).missingShards, []);
    shards[1]!.down = true;
    await round();
    assert.deepEqual((await get("/api/v1/status")).missingShards, [1]);
    const page = await (await fetch(`${server.url}/`)).text();
    assert.match(page, /The global view is incomplete: shard 1 is down, and global queries fail until it is back/);
    shards[1]!.down = false;
    await round();
    assert.deepEqual((await get("/api/v1/status")).missingShards, []);
  });

  it("asks the global view for its count only once the status page was viewed, then shows it", async () => {
    const queries: string[] = [];
    const global = createServer((req, res) => {
      queries.push(req.url ?? "");
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result: [{ value: [0, "40010"] }] } }));
    });
    await new Promise<void>((r) => global.listen(0, "127.0.0.1", r));
    stops.push(() => new Promise((r) => global.close(() => r())));
    const { round, server } = await start({
      globalQueryUrl: `http://127.0.0.1:${(global.address() as AddressInfo).port}`,
    });
    for (let i = 0; i < 3; i++) await round();
    // A count is asked beside the round: time for one to arrive on loopback.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(queries.length, 0, "nobody looked: no query");
    await (await fetch(`${server.url}/`)).text();
    for (let i = 0; i < 50 && queries.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(queries.length, 1, "the page's view asked once");
    assert.match(
      decodeURIComponent(queries[0]!),
      /^\/api\/v1\/query\?query=sum\(scrape_samples_post_metric_relabeling\)/,
    );
    await round();
    assert.equal(queries.length, 1, "once per plot step (10 s), not per round");
    for (let i = 0; i < 50; i++) {
      if ((await (await fetch(`${server.url}/`)).text()).includes('<span class="count">40010</span>')) break;
      assert.notEqual(i, 49, "the page shows the count");
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  it("an invalid config is reported and the last good one keeps running; a fixed one loads", async () => {
    const { round, get, registry } = await start();
    for (let i = 0; i < 3; i++) await round();
    writeFileSync(file, configText(["keep-a:1", "keep-b:1", "keep-d:1"], "keep-(.*"));
    await round();
    const status = await get("/api/v1/status");
    assert.equal(status.config.lastReloadSuccessful, false);
    assert.match(status.config.problems[0].path, /relabel_configs\[0\]\.regex/);
    assert.match(status.config.error, /regex/);
    const targets = await get("/api/v1/targets");
    assert.equal(targets.data.activeTargets.length, 2, "still the last good config's targets");
    assert.match(await registry.metrics(), /promshard_coordinator_config_last_reload_successful 0/);
    const events = await get("/api/v1/events");
    assert.ok(events.events.some((e: { text: string }) => /keeping the last good one/.test(e.text)));

    writeFileSync(file, configText(["keep-a:1", "keep-b:1", "keep-d:1"]));
    await round();
    assert.equal((await get("/api/v1/status")).config.lastReloadSuccessful, true);
    assert.equal((await get("/api/v1/targets")).data.activeTargets.length, 3);
    assert.match(await registry.metrics(), /promshard_coordinator_config_last_reload_successful 1/);
  });

  it("POST /-/reload answers 400 with the problems for an invalid config", async () => {
    const { round, server } = await start();
    await round();
    writeFileSync(file, "scrape_configs: [{job_name: x, scrape_interval: nope}]\n");
    const res = await fetch(`${server.url}/-/reload`, { method: "POST", headers: { "x-promshard-reload": "1" } });
    assert.equal(res.status, 400);
    assert.match(JSON.stringify(await res.json()), /scrape_interval/);
  });

  it("POST /-/reload refuses what a page of another site can send: a form, text/plain, no Content-Type", async () => {
    const { round, server } = await start();
    await round();
    writeFileSync(file, "scrape_configs: [{job_name: x, scrape_interval: nope}]\n");
    for (const headers of [
      {},
      { "content-type": "text/plain" },
      { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" },
      { "content-type": "multipart/form-data; boundary=x" },
    ] as Record<string, string>[]) {
      const res = await fetch(`${server.url}/-/reload`, { method: "POST", headers, body: "x=1" });
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.match(((await res.json()) as { error: string }).error, /X-Promshard-Reload/);
    }
    const status = await (await fetch(`${server.url}/api/v1/status`)).json();
    assert.equal((status as { config: { lastReloadSuccessful: boolean } }).config.lastReloadSuccessful, true);
    assert.notEqual((await fetch(`${server.url}/-/reload`)).status, 200, "GET never reloads");
    const json = await fetch(`${server.url}/-/reload`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(json.status, 400, "a JSON POST is deliberate: the invalid config is reported");
  });

  it("with a reload token, POST /-/reload wants it; read-only endpoints stay open", async () => {
    const { round, server } = await start({
      reloadAuth: (t) => (t === "reload-secret" ? { ok: true } : { ok: false, reason: "" }),
    });
    await round();
    const post = (headers: Record<string, string>) =>
      fetch(`${server.url}/-/reload`, { method: "POST", headers: { "x-promshard-reload": "1", ...headers } });
    const none = await post({});
    assert.equal(none.status, 401);
    const wrong = await post({ authorization: "Bearer nope" });
    assert.equal(wrong.status, 403);
    assert.doesNotMatch(await wrong.text(), /reload-secret|nope/);
    assert.equal((await post({ authorization: "Bearer reload-secret" })).status, 200);
    for (const path of ["/api/v1/status", "/api/v1/shards", "/api/v1/targets", "/"])
      assert.equal((await fetch(`${server.url}${path}`)).status, 200, path);
  });
});

describe("shard client against a broken sidecar", () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.closeAllConnections();
    for (const s of servers) s.close();
  });
  const serve = async (handler: Parameters<typeof createServer>[1]) => {
    const s = createServer(handler);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  };

  it("garbage, 500 and silence are errors naming the sidecar; the coordinator counts the shard down", async () => {
    const garbage = await serve((_q, res) => res.end("<html>not json</html>"));
    const wrongShape = await serve((_q, res) => res.end('{"targets": "no"}'));
    const failing = await serve((_q, res) => {
      res.statusCode = 500;
      res.end("boom");
    });
    const silent = await serve(() => undefined);
    await assert.rejects(httpShardClient(garbage, "t").runtime(), (e: Error) => e.message.includes(garbage));
    await assert.rejects(httpShardClient(wrongShape, "t").runtime(), /malformed runtime report/);
    await assert.rejects(httpShardClient(failing, "t").runtime(), /HTTP 500: boom/);
    await assert.rejects(httpShardClient(silent, "t", 300).runtime(), /timeout|aborted/i);
    await assert.rejects(httpShardClient(failing, "t").assign(1, []), /HTTP 500/);

    const urls = [garbage, failing, silent];
    const discovery = new DiscoveryManager();
    const config = parseConfig('scrape_configs: [{job_name: j, static_configs: [{targets: ["a:1"]}]}]', { dialect });
    discovery.apply(config);
    const coordinator = new Coordinator(config, {
      discovery,
      strategy: getStrategy("series-balanced")!,
      scaler: { current: () => 3, scaleTo: async () => undefined },
      shard: (i) => httpShardClient(urls[i]!, "t", 300),
      explore: async () => 10,
      budget: 100,
      minShards: 3,
      maxShards: 3,
      scaleDownDelayMs: 1000,
    });
    const r = await coordinator.tick();
    assert.deepEqual(
      r.shards.map((s) => s.healthy),
      [false, false, false],
    );
    assert.equal(r.shards.flatMap((s) => s.targets).length, 1, "the target is still placed");
  });
});
