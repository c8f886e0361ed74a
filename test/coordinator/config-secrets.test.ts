/**
 * A secret in an invalid config reaches none of the coordinator's outputs (the /-/reload
 * reply, /api/v1/status, /api/v1/events, the status page, its log) and none of the sidecar's
 * (/readyz, /api/v1/runtime, its log): both run in process over the same config file, the
 * sidecar without a Prometheus (nothing here needs one).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { loadConfigFile } from "../../src/config/load.ts";
import { Coordinator } from "../../src/coordinator/coordinator.ts";
import { coordinatorMetrics } from "../../src/coordinator/metrics.ts";
import { CoordinatorService } from "../../src/coordinator/service.ts";
import type { Scaler } from "../../src/coordinator/shards.ts";
import { DiscoveryManager } from "../../src/discovery/manager.ts";
import { createHttpApp, listen } from "../../src/observability/http.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { getStrategy } from "../../src/scheduler/index.ts";
import { Sidecar } from "../../src/sidecar/sidecar.ts";
import { sha256 } from "../../src/util/hash.ts";
import { type PromProxy, sidecarClient, startProxy, until } from "../fixtures/sidecar/harness.ts";
import { SECRET_CONFIGS, WHERE } from "../prom/secret-configs.ts";

const TOKEN = "sidecar-token-7";
const VALID = "scrape_configs:\n- job_name: j\n  static_configs: [{targets: ['127.0.0.1:9']}]\n";

/** A log destination whose lines the test reads back. */
function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (c) => {
    text += String(c);
  });
  return { stream, text: () => text };
}

describe("a secret in an invalid config reaches no output", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-config-secrets-"));
  const file = join(dir, "prometheus.yml");
  const dialect = dialectFor("3.16");
  const coordinatorLog = capture();
  const sidecarLog = capture();
  let coordinatorUrl = "";
  let proxy: PromProxy;
  let sidecar: Sidecar | undefined;
  const stops: (() => Promise<void>)[] = [];
  const secretOf = (i: number) => `Sx${i}Kq7Wz${i * 7919}Rt`;
  const configOf = (i: number) => {
    const s = secretOf(i);
    return SECRET_CONFIGS[i]![1](s, JSON.stringify(s));
  };

  before(async () => {
    writeFileSync(file, VALID);
    writeFileSync(join(dir, "token"), `${TOKEN}\n`);
    const config = loadConfigFile(file, dialect);
    const discovery = new DiscoveryManager();
    discovery.apply(config);
    const scaler: Scaler = { current: () => 0, async scaleTo() {} };
    const registry = createRegistry({ defaultMetrics: false });
    const metrics = coordinatorMetrics(registry);
    const log = createLogger({ component: "coordinator", level: "debug", destination: coordinatorLog.stream });
    const coordinator = new Coordinator(config, {
      discovery,
      strategy: getStrategy("series-balanced")!,
      scaler,
      shard: () => {
        throw new Error("no shard in this test");
      },
      explore: async () => 1,
      budget: 1000,
      minShards: 0,
      maxShards: 1,
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
      endpoint: () => ({ prometheusUrl: null }),
    });
    const app = createHttpApp({
      registry,
      log,
      readiness: () => service.readiness(),
      routes: (a) => service.routes(a),
    });
    const server = await listen(app, "127.0.0.1:0");
    stops.push(() => server.close());
    coordinatorUrl = server.url;
    proxy = await startProxy();
    await proxy.down();
  });
  after(async () => {
    await sidecar?.stop();
    for (const s of stops) await s();
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the coordinator: /-/reload reply, /api/v1/status, /api/v1/events, the status page, the log", async () => {
    for (let i = 0; i < SECRET_CONFIGS.length; i++) {
      const [name] = SECRET_CONFIGS[i]!;
      writeFileSync(file, configOf(i));
      const reload = await fetch(`${coordinatorUrl}/-/reload`, {
        method: "POST",
        headers: { "x-promshard-reload": "1" },
      });
      assert.equal(reload.status, 400, `${name}: the config is refused`);
      const outputs = {
        reload: await reload.text(),
        status: await (await fetch(`${coordinatorUrl}/api/v1/status`)).text(),
        events: await (await fetch(`${coordinatorUrl}/api/v1/events`)).text(),
        page: await (await fetch(`${coordinatorUrl}/`)).text(),
      };
      assert.match(outputs.status, WHERE, `${name}: status names it`);
      for (const [where, text] of Object.entries(outputs)) {
        assert.ok(!text.includes(secretOf(i)), `${name}: the secret is in ${where}:\n${text}`);
      }
    }
    assert.match(coordinatorLog.text(), /config invalid/, "the log has the failures");
    for (let i = 0; i < SECRET_CONFIGS.length; i++) {
      assert.ok(!coordinatorLog.text().includes(secretOf(i)), `${SECRET_CONFIGS[i]![0]}: the secret is in the log`);
    }
  });

  it("the sidecar: /readyz while it has no good config, /api/v1/runtime, the log", async () => {
    writeFileSync(file, configOf(0));
    sidecar = new Sidecar({
      configFile: file,
      prometheusUrl: proxy.url,
      outputDir: join(dir, "out"),
      stateDir: join(dir, "state"),
      listen: "127.0.0.1:0",
      tokenFile: join(dir, "token"),
      identity: { shard: 0, replica: "0" },
      prometheusVersion: "3.16",
      configCheckIntervalMs: 50,
      log: createLogger({ component: "sidecar", level: "debug", destination: sidecarLog.stream }),
    });
    await sidecar.start();
    const api = sidecarClient(sidecar.url, TOKEN);
    for (let i = 0; i < SECRET_CONFIGS.length; i++) {
      const [name] = SECRET_CONFIGS[i]!;
      const text = configOf(i);
      writeFileSync(file, text);
      const runtime = await until(`${name}: the sidecar reports the config`, async () => {
        const body = JSON.stringify((await api.call("GET", "/api/v1/runtime")).body);
        return body.includes(sha256(text)) && body;
      });
      const readyz = await fetch(`${sidecar.url}/readyz`);
      assert.equal(readyz.status, 503, `${name}: no good config yet`);
      const outputs = { runtime, readyz: await readyz.text() };
      assert.match(outputs.readyz, /no valid config generated yet: /);
      assert.match(outputs.readyz, WHERE);
      for (const [where, out] of Object.entries(outputs)) {
        assert.ok(!out.includes(secretOf(i)), `${name}: the secret is in ${where}:\n${out}`);
      }
    }
    assert.match(sidecarLog.text(), /config/, "the log has the failures");
    for (let i = 0; i < SECRET_CONFIGS.length; i++) {
      assert.ok(!sidecarLog.text().includes(secretOf(i)), `${SECRET_CONFIGS[i]![0]}: the secret is in the log`);
    }
  });
});
