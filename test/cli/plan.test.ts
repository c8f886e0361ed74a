/**
 * `promshard plan` against a real kube-apiserver: pods (no kubelet; the test sets their status
 * as one would, with a loopback podIP) whose container ports are demo exporters on loopback.
 * The command discovers them with kubernetes_sd_configs, explores each once and schedules them
 * with the coordinator's scheduler: a target of 3 × the budget is split, no shard is over
 * budget, and a what-if with a larger budget needs fewer shards. An Endpoints object (addresses
 * of TEST-NET-1, which nothing here contacts) is discovered through role endpoints and planned
 * with --series.default alone, with no --explore: nothing is scraped.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Plan } from "../../src/coordinator/capacity-plan.ts";
import { type DemoExporter, startDemoExporter } from "../../src/demo/exporter.ts";
import { freePort } from "../../src/util/ports.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const NS = "plan";
const BUDGET = 10_000;
const SIZES = { giant: 3 * BUDGET, a: 4_000, b: 3_000 };
/** TEST-NET-1 (RFC 5737): documentation addresses, never scraped here. */
const ENDPOINTS = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14"];

async function promshard(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  return { code, stdout, stderr };
}

describe("promshard plan over kubernetes_sd_configs (real kube-apiserver)", { timeout: 240_000 }, () => {
  let cp: ControlPlane;
  let dir: string;
  let config: string;
  let endpointsConfig: string;
  const exporters: DemoExporter[] = [];

  before(async () => {
    cp = await startControlPlane();
    dir = mkdtempSync(join(tmpdir(), "promshard-plan-"));
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: NS } } });
    for (const [name, series] of Object.entries(SIZES)) {
      const e = await startDemoExporter({ series, host: "127.0.0.1" });
      exporters.push(e);
      await cp.api("POST", `/api/v1/namespaces/${NS}/pods`, {
        body: {
          metadata: { name, labels: { app: "demo" } },
          spec: { containers: [{ name: "demo", image: "demo", ports: [{ containerPort: e.port, name: "metrics" }] }] },
        },
      });
      await cp.markPodReady(NS, name, "127.0.0.1");
    }
    await cp.api("POST", `/api/v1/namespaces/${NS}/services`, {
      body: { metadata: { name: "web" }, spec: { ports: [{ name: "metrics", port: 9100 }] } },
    });
    await cp.api("POST", `/api/v1/namespaces/${NS}/endpoints`, {
      body: {
        metadata: { name: "web" },
        subsets: [
          {
            addresses: ENDPOINTS.map((ip) => ({ ip })),
            ports: [{ name: "metrics", port: 9100 }],
          },
        ],
      },
    });
    endpointsConfig = join(dir, "endpoints.yml");
    writeFileSync(
      endpointsConfig,
      `scrape_configs:
- job_name: web
  kubernetes_sd_configs: [{role: endpoints, namespaces: {names: [${NS}]}}]
  relabel_configs:
  - {source_labels: [__meta_kubernetes_service_name], regex: web, action: keep}
  - {source_labels: [__meta_kubernetes_service_name], target_label: service}
`,
    );
    config = join(dir, "prometheus.yml");
    writeFileSync(
      config,
      `scrape_configs:
- job_name: pods
  kubernetes_sd_configs: [{role: pod, namespaces: {names: [${NS}]}}]
  relabel_configs:
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
`,
    );
  });

  after(async () => {
    for (const e of exporters) await e.close();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = async (...flags: string[]) => {
    const r = await promshard(
      "plan",
      `--config=${config}`,
      `--kubeconfig=${cp.kubeconfigPath}`,
      "--explore",
      "--output=json",
      ...flags,
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Plan;
  };

  it("splits the target of 3 × budget, every shard within budget, every target placed", async () => {
    const p = await run(`--shard.max-series=${BUDGET}`);
    assert.equal(p.targets, 3);
    // Each target: its exposition plus the 5 series Prometheus adds per scrape.
    assert.equal(p.totalSeries, SIZES.giant + SIZES.a + SIZES.b + 15);
    const giant = p.largest[0]!;
    assert.equal(giant.series, SIZES.giant + 5);
    assert.equal(giant.source, "explored");
    assert.equal(giant.parts, 4, "ceil(30005 / (0.9 × 10000)) parts");
    const parts = p.perShard.flatMap((s) => s.targets.filter((t) => t.parts).map((t) => `${s.shard}:${t.part}`));
    assert.equal(parts.length, 4);
    assert.equal(new Set(parts.map((x) => x.split(":")[0])).size, 4, "one part per shard");
    for (const s of p.perShard) assert.ok(s.series <= BUDGET, `shard ${s.shard} plans ${s.series}`);
    const whole = p.perShard.flatMap((s) => s.targets.filter((t) => !t.parts).map((t) => t.series)).sort();
    assert.deepEqual(whole, [SIZES.b + 5, SIZES.a + 5]);
    assert.equal(p.shards, p.perShard.length);
  });

  it("a what-if of a larger budget needs one shard; the table names the shard, series and targets", async () => {
    const p = await run("--shard.max-series=50000");
    assert.equal(p.shards, 1);
    assert.equal(p.largest[0]!.parts, undefined);
    const r = await promshard(
      "plan",
      `--config=${config}`,
      `--kubeconfig=${cp.kubeconfigPath}`,
      "--explore",
      "--output=table",
      "--shard.max-series=50000",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^3 targets, 37015 series: 1 shard\(s\) of 50000 series/);
    assert.match(r.stdout, /Largest targets:/);
    assert.match(r.stdout, /pods\s+127\.0\.0\.1:\d+\s+30005 \(explored\)/);
  });

  it("a coordinator that does not answer is a clear error, exit 1", async () => {
    const port = await freePort();
    const r = await promshard(
      "plan",
      `--config=${config}`,
      `--kubeconfig=${cp.kubeconfigPath}`,
      `--coordinator.url=http://127.0.0.1:${port}`,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--coordinator\.url: cannot read \/api\/v1\/targets .*is the coordinator running there\?/);
  });

  it("plans role endpoints targets with --series.default when nothing is explored", async () => {
    const r = await promshard(
      "plan",
      `--config=${endpointsConfig}`,
      `--kubeconfig=${cp.kubeconfigPath}`,
      "--series.default=4000",
      "--shard.max-series=10000",
      "--output=json",
    );
    assert.equal(r.code, 0, r.stderr);
    const p = JSON.parse(r.stdout) as Plan;
    assert.equal(p.targets, ENDPOINTS.length);
    assert.deepEqual(
      p.largest.map((t) => t.instance).sort(),
      ENDPOINTS.map((ip) => `${ip}:9100`),
    );
    for (const t of p.largest) assert.deepEqual([t.job, t.series, t.source], ["web", 4_005, "default"]);
    // Two targets of 4005 fit a 10000 budget, three do not.
    assert.equal(p.shards, 3);
    assert.deepEqual(p.perShard.map((s) => s.targets.length).sort(), [1, 2, 2]);
  });
});
