/**
 * `promshard coordinator` against a real kube-apiserver 1.37: it reads and scales the shard
 * StatefulSet through its /scale subresource and reads the pods' restart counts. There is no
 * kubelet, so this test plays the StatefulSet controller and the kubelet: for each ordinal
 * below spec.replicas it runs a real promshard sidecar and a real Prometheus, each on its own
 * loopback address 127.0.1.<ordinal> (what the pod DNS name would give), and a Pod object
 * whose status carries the restart count. The seed's experiment must come out: 3 shards of 2
 * targets; then a shrink scales the StatefulSet down again.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type DemoExporter, startDemoExporter } from "../../src/demo/exporter.ts";
import { freePort } from "../../src/util/ports.ts";
import { eventually } from "../support/eventually.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";
import { prometheusBinaries } from "../support/prometheus.ts";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const NS = "monitoring";
const STS = "shards";
const prometheus = prometheusBinaries().at(-1)!;

interface Shard {
  processes: ChildProcess[];
}

const stop = async (p: ChildProcess) => {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await exited;
};

describe("promshard coordinator with a real kube-apiserver", { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  const dir = mkdtempSync(join(tmpdir(), "promshard-coord-kube-"));
  const exporters: DemoExporter[] = [];
  const shards = new Map<number, Shard>();
  const replicasRunning: ChildProcess[] = [];
  let output = "";
  let kubelet: NodeJS.Timeout | undefined;
  let ports: { sidecar: number; prometheus: number; api: number };

  before(async () => {
    cp = await startControlPlane();
    ports = { sidecar: await freePort(), prometheus: await freePort(), api: await freePort() };
  });
  after(async () => {
    clearInterval(kubelet);
    for (const c of replicasRunning) await stop(c);
    for (const s of shards.values()) for (const p of s.processes) await stop(p);
    for (const e of exporters) await e.close();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const stsPath = `/apis/apps/v1/namespaces/${NS}/statefulsets/${STS}`;
  const replicas = async () => (await cp.api<{ spec: { replicas: number } }>("GET", stsPath)).spec.replicas;

  /** Starts a shard's sidecar and Prometheus on 127.0.1.<ordinal>, and its Pod object. */
  async function startShard(i: number): Promise<void> {
    const host = `127.0.1.${i}`;
    const shardDir = join(dir, `shard-${i}`);
    for (const d of ["out", "state", "tsdb"]) mkdirSync(join(shardDir, d), { recursive: true });
    const sidecar = spawn(
      process.execPath,
      [
        cli,
        "sidecar",
        "--config.file",
        join(dir, "prometheus.yml"),
        "--prometheus.url",
        `http://${host}:${ports.prometheus}`,
        "--output.dir",
        join(shardDir, "out"),
        "--state.dir",
        join(shardDir, "state"),
        "--listen",
        `${host}:${ports.sidecar}`,
        "--api.token-file",
        join(dir, "token"),
        "--shard.pod-name",
        `${STS}-${i}`,
        "--log.level",
        "warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    sidecar.stderr!.on("data", (d) => (output += `[sidecar ${i}] ${d}`));
    const config = join(shardDir, "out", "prometheus.yml");
    await eventually(`shard ${i}'s generated config`, () => existsSync(config) || undefined);
    const prom = spawn(
      prometheus.bin,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(shardDir, "tsdb")}`,
        `--web.listen-address=${host}:${ports.prometheus}`,
        "--web.enable-lifecycle",
        "--scrape.discovery-reload-interval=1s",
      ],
      { stdio: "ignore" },
    );
    shards.set(i, { processes: [sidecar, prom] });
    await cp.api("POST", `/api/v1/namespaces/${NS}/pods`, {
      body: {
        metadata: { name: `${STS}-${i}`, labels: { app: STS } },
        spec: { containers: [{ name: "prometheus", image: "prom/prometheus" }] },
      },
    });
  }

  async function stopShard(i: number): Promise<void> {
    const s = shards.get(i)!;
    shards.delete(i);
    for (const p of s.processes) await stop(p);
    await cp.request("DELETE", `/api/v1/namespaces/${NS}/pods/${STS}-${i}`);
  }

  /** A coordinator replica with its API on `port`. */
  function startCoordinator(port: number): ChildProcess {
    const c = spawn(
      process.execPath,
      [
        cli,
        "coordinator",
        "--config",
        join(dir, "prometheus.yml"),
        "--shards.statefulset",
        `${NS}/${STS}`,
        "--kubeconfig",
        cp.kubeconfigPath,
        "--sidecar.token-file",
        join(dir, "token"),
        "--shards.url-template",
        "http://127.0.1.{ordinal}:{port}",
        "--sidecar.port",
        String(ports.sidecar),
        "--prometheus.port",
        String(ports.prometheus),
        "--listen",
        `127.0.0.1:${port}`,
        "--interval",
        "1s",
        "--scale-down.delay",
        "2s",
        "--scale-down.wait",
        "3s",
        "--prometheus.version",
        prometheus.version,
        "--log.level",
        "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    c.stdout!.on("data", (d) => (output += d));
    c.stderr!.on("data", (d) => (output += d));
    replicasRunning.push(c);
    return c;
  }

  const shardsApi = async () =>
    (await (await fetch(`http://127.0.0.1:${ports.api}/api/v1/shards`)).json()) as {
      shards: {
        id: number;
        series: number;
        ready: boolean;
        restarts: number;
        targets: unknown[];
        prometheusUrl: string;
      }[];
    };

  it("scales the StatefulSet to the seed's 3 shards of 2 targets, then back down", async () => {
    for (let i = 0; i < 6; i++) exporters.push(await startDemoExporter({ series: 10040 }));
    const targetsFile = join(dir, "targets.json");
    const writeTargets = (n: number) =>
      writeFileSync(
        targetsFile,
        JSON.stringify([{ targets: exporters.slice(0, n).map((e) => `127.0.0.1:${e.port}`) }]),
      );
    writeTargets(6);
    writeFileSync(
      join(dir, "prometheus.yml"),
      "global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: demo\n  file_sd_configs: [{files: [targets.json]}]\n",
    );
    writeFileSync(join(dir, "token"), "kube-test-token\n");
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: NS } } });
    await cp.api("POST", `/api/v1/namespaces/${NS}/services`, {
      body: { metadata: { name: STS }, spec: { clusterIP: "None", selector: { app: STS }, ports: [{ port: 9095 }] } },
    });
    await cp.api("POST", `/apis/apps/v1/namespaces/${NS}/statefulsets`, {
      body: {
        metadata: { name: STS },
        spec: {
          replicas: 1,
          serviceName: STS,
          selector: { matchLabels: { app: STS } },
          template: {
            metadata: { labels: { app: STS } },
            spec: { containers: [{ name: "prometheus", image: "prom/prometheus" }] },
          },
        },
      },
    });

    // The kubelet's part: shard processes follow spec.replicas.
    let busy = false;
    kubelet = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        const want = await replicas();
        for (let i = 0; i < want; i++) if (!shards.has(i)) await startShard(i);
        for (const i of [...shards.keys()]) if (i >= want) await stopShard(i);
      } catch (err) {
        output += `[kubelet] ${(err as Error).message}\n`;
      } finally {
        busy = false;
      }
    }, 200);

    startCoordinator(ports.api);

    const seed = await eventually(
      "3 ready shards of 2 targets",
      async () => {
        const s = await shardsApi();
        return s.shards.length === 3 && s.shards.every((x) => x.ready && x.targets.length === 2) ? s : undefined;
      },
      120_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${output}`));
    assert.equal(await replicas(), 3, "the StatefulSet was scaled through /scale");
    assert.equal(seed.shards[1]!.prometheusUrl, `http://127.0.1.1:${ports.prometheus}`);

    // Each target is scraped by exactly one shard's Prometheus.
    await eventually("each target up on exactly one shard", async () => {
      const seen: string[] = [];
      for (const s of seed.shards) {
        const r = (await (
          await fetch(`${s.prometheusUrl}/api/v1/query?query=${encodeURIComponent('up{job="demo"} == 1')}`)
        ).json()) as { data: { result: { metric: { instance: string } }[] } };
        seen.push(...r.data.result.map((x) => x.metric.instance));
      }
      return seen.length === 6 && new Set(seen).size === 6 ? true : undefined;
    });

    // A pod's restarts reach the coordinator from its status.
    await cp.api("PUT", `/api/v1/namespaces/${NS}/pods/${STS}-2/status`, {
      body: {
        ...(await cp.api<Record<string, unknown>>("GET", `/api/v1/namespaces/${NS}/pods/${STS}-2`)),
        status: {
          containerStatuses: [
            {
              name: "prometheus",
              image: "prom/prometheus",
              imageID: "",
              ready: true,
              restartCount: 1,
              started: true,
              state: { running: {} },
            },
          ],
        },
      },
    });
    // Failover (S6): a second replica stands by; the leader is killed; the standby takes
    // over when the lease expires and moves no target.
    const standbyPort = await freePort();
    startCoordinator(standbyPort);
    const readyz = async (port: number) =>
      (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status;
    await eventually("the standby answers 503 on /readyz", async () =>
      (await readyz(standbyPort)) === 503 ? true : undefined,
    );
    const placement = async (port: number) => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/api/v1/shards`)).json()) as {
        shards: { targets: { labels: { instance: string } }[] }[];
      };
      return body.shards.map((x) => x.targets.map((t) => t.labels.instance).sort());
    };
    const before = await placement(ports.api);
    const leader = replicasRunning[0]!;
    const killed = Date.now();
    leader.kill("SIGKILL");
    await eventually("the standby leads", async () => ((await readyz(standbyPort)) === 200 ? true : undefined), 40_000);
    const tookMs = Date.now() - killed;
    assert.deepEqual(await placement(standbyPort), before, "no target changed shard");
    assert.ok(tookMs < 30_000, `failover took ${tookMs} ms`);
    ports.api = standbyPort;

    await eventually("shard 2's restart count", async () =>
      (await shardsApi()).shards[2]?.restarts === 1 ? true : undefined,
    );

    writeTargets(2);
    await eventually(
      "the StatefulSet back at 1 replica",
      async () => ((await replicas()) === 1 && (await shardsApi()).shards.length === 1 ? true : undefined),
      60_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${output}`));
    const after1 = await shardsApi();
    assert.equal(after1.shards[0]!.targets.length, 2);
  });
});
