/**
 * Hostile input against each listener, in bounded time (issue 14): the webhook, the sidecar's
 * API and the coordinator's API take random and oversized bodies, wrong content types and
 * methods, slow clients and many connections; each stays up (a normal request answers during
 * the slow-client flood), answers no 5xx, keeps its memory bounded, and neither answers nor
 * logs a credential. The figures are printed (requests tried, 5xx, peak RSS).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import { dump } from "js-yaml";
import { loadConfigFile } from "../../src/config/load.ts";
import { Coordinator } from "../../src/coordinator/coordinator.ts";
import { CoordinatorService } from "../../src/coordinator/service.ts";
import type { Scaler } from "../../src/coordinator/shards.ts";
import { DiscoveryManager } from "../../src/discovery/manager.ts";
import { createHttpApp, listen } from "../../src/observability/http.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { getStrategy } from "../../src/scheduler/index.ts";
import { Sidecar } from "../../src/sidecar/sidecar.ts";
import { FakeShard } from "../coordinator/fake-shards.ts";
import { startProxy } from "../fixtures/sidecar/harness.ts";
import { fixture, podReview, startTestWebhook } from "../webhook/support.ts";
import { type HostileFigures, hostileRun } from "./support.ts";

const DURATION_MS = Number(process.env.PROMSHARD_HOSTILE_MS ?? 6000);
/** Peak RSS allowed for the test process (all three listeners live in it, plus the attackers). */
const MAX_RSS_MB = 600;
const SIDECAR_TOKEN = "hostile-sidecar-token-0123456789";
const RELOAD_TOKEN = "hostile-reload-token-abcdef012";
const PASSWORD = "hostile-pw-9876543210";

const dir = mkdtempSync(join(tmpdir(), "promshard-hostile-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const CONFIG = {
  scrape_configs: [
    {
      job_name: "a",
      basic_auth: { username: "u", password: PASSWORD },
      static_configs: [{ targets: ["10.0.0.1:9100", "10.0.0.2:9100"] }],
    },
  ],
};

function logSink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  let size = 0;
  return {
    stream: new Writable({
      write(chunk, _e, cb) {
        size += chunk.length;
        // Keep what a credential check needs without the sink itself growing without bound.
        if (size < 64 * 1024 * 1024) chunks.push(String(chunk));
        cb();
      },
    }),
    text: () => chunks.join(""),
  };
}

function report(name: string, f: HostileFigures): void {
  console.log(`hostile ${name}: ${JSON.stringify(f)}`);
}

function assertFigures(name: string, f: HostileFigures, secrets: string[], answers: string[], logs: string) {
  report(name, f);
  assert.ok(f.tried > 100, `${name}: ${f.tried} requests tried`);
  assert.equal(f.status5xx, 0, `${name}: no 5xx`);
  assert.ok(f.healthyDuringSlowMs < 5000, `${name}: answered in ${f.healthyDuringSlowMs} ms during the slow clients`);
  assert.ok(f.peakRssMb < MAX_RSS_MB, `${name}: peak RSS ${f.peakRssMb} MB`);
  for (const s of secrets) {
    assert.ok(!answers.some((a) => a.includes(s)), `${name}: no answer holds ${s.slice(0, 8)}…`);
    assert.ok(!logs.includes(s), `${name}: no log line holds ${s.slice(0, 8)}…`);
  }
}

describe("hostile input", { timeout: 120_000 }, () => {
  it("the sidecar's API", async () => {
    const configFile = join(dir, "sidecar.yml");
    writeFileSync(configFile, dump(CONFIG));
    writeFileSync(join(dir, "token"), SIDECAR_TOKEN);
    const proxy = await startProxy();
    await proxy.down();
    const logs = logSink();
    const sidecar = new Sidecar({
      configFile,
      prometheusUrl: proxy.url,
      outputDir: join(dir, "out"),
      stateDir: join(dir, "state"),
      listen: "127.0.0.1:0",
      tokenFile: join(dir, "token"),
      identity: { shard: 0, replica: "0" },
      prometheusVersion: "3.16",
      bodyLimit: 1024 * 1024,
      log: createLogger({ component: "sidecar", level: "debug", destination: logs.stream }),
    });
    await sidecar.start();
    const answers: string[] = [];
    const auth = { authorization: `Bearer ${SIDECAR_TOKEN}` };
    try {
      const f = await hostileRun({
        url: sidecar.url,
        routes: [
          { method: "PUT", path: "/api/v1/assignment", headers: auth },
          { method: "PUT", path: "/api/v1/assignment" },
          { method: "PUT", path: "/api/v1/assignment", headers: { authorization: "Bearer wrong" } },
          { method: "GET", path: "/api/v1/runtime", headers: auth },
          { method: "GET", path: "/metrics" },
          { method: "POST", path: "/nope%00%ff" },
        ],
        oversized: 4 * 1024 * 1024,
        durationMs: DURATION_MS,
        healthPath: "/healthz",
        onAnswer: (t) => answers.push(t),
      });
      assertFigures("sidecar", f, [SIDECAR_TOKEN, PASSWORD], answers, logs.text());
      assert.equal((await fetch(`${sidecar.url}/readyz`)).status, 200, "still ready");
    } finally {
      await sidecar.stop();
      await proxy.close();
    }
  });

  it("the coordinator's API", async () => {
    const file = join(dir, "coordinator.yml");
    writeFileSync(file, dump(CONFIG));
    const dialect = dialectFor("3.16");
    const config = loadConfigFile(file, dialect);
    const discovery = new DiscoveryManager();
    discovery.apply(config);
    const shards: FakeShard[] = [];
    const series = new Map<string, number>();
    const scaler: Scaler = {
      current: () => shards.length,
      async scaleTo(n) {
        while (shards.length < n) shards.push(new FakeShard(series));
        shards.length = n;
      },
    };
    const logs = logSink();
    const log = createLogger({ component: "coordinator", level: "debug", destination: logs.stream });
    const registry = createRegistry({ defaultMetrics: false });
    const coordinator = new Coordinator(config, {
      discovery,
      strategy: getStrategy("series-balanced")!,
      scaler,
      shard: (i) => shards[i]!,
      explore: async () => 100,
      budget: 30_000,
      minShards: 1,
      maxShards: 2,
      scaleDownDelayMs: 60_000,
      log,
    });
    const service = new CoordinatorService({
      coordinator,
      discovery,
      configFile: file,
      dialect,
      intervalMs: 60_000,
      log,
      endpoint: () => ({ prometheusUrl: null }),
      reloadAuth: (t) => (t === RELOAD_TOKEN ? { ok: true } : { ok: false, reason: "" }),
    });
    const app = createHttpApp({
      registry,
      log,
      readiness: () => service.readiness(),
      routes: (a) => service.routes(a),
    });
    const server = await listen(app, "127.0.0.1:0");
    await service.round();
    const answers: string[] = [];
    try {
      const f = await hostileRun({
        url: server.url,
        routes: [
          {
            method: "POST",
            path: "/-/reload",
            headers: { authorization: `Bearer ${RELOAD_TOKEN}`, "x-promshard-reload": "1" },
          },
          { method: "POST", path: "/-/reload" },
          { method: "GET", path: "/api/v1/status" },
          { method: "GET", path: "/api/v1/targets?state=%ff%00" },
          { method: "GET", path: "/api/v1/shards" },
          { method: "GET", path: "/api/v1/events" },
          { method: "GET", path: "/" },
        ],
        oversized: 4 * 1024 * 1024,
        durationMs: DURATION_MS,
        healthPath: "/healthz",
        onAnswer: (t) => answers.push(t),
      });
      assertFigures("coordinator", f, [RELOAD_TOKEN, PASSWORD], answers, logs.text());
    } finally {
      await service.stop();
      await server.close();
      discovery.stop();
    }
  });

  it("the webhook", async () => {
    const logs = logSink();
    const wh = await startTestWebhook({
      bodyLimit: 1024 * 1024,
      log: createLogger({ component: "webhook", level: "debug", destination: logs.stream }),
    });
    const answers: string[] = [];
    // One valid review among the random ones, so that injection runs too.
    const valid = JSON.stringify(podReview(fixture("seed")));
    try {
      const f = await hostileRun({
        url: wh.server.url,
        dispatcher: wh.agent,
        routes: [
          { method: "POST", path: "/mutate" },
          { method: "POST", path: "/mutate?timeout=10s" },
          { method: "GET", path: "/mutate" },
        ],
        oversized: 4 * 1024 * 1024,
        durationMs: DURATION_MS,
        // The admission port serves only /mutate (probes are on the metrics port): a GET answers 405.
        healthPath: "/mutate",
        onAnswer: (t) => answers.push(t),
      });
      const ok = await wh.post(valid, { raw: true });
      assert.equal(ok.status, 200, "still injecting");
      const key = (await import("node:fs")).readFileSync(wh.keyFile, "utf8");
      const keyBody = key.split("\n")[5]!;
      assertFigures("webhook", f, [keyBody, "PRIVATE KEY"], answers, logs.text());
    } finally {
      await wh.close();
    }
  });
});
