/**
 * `promshard query-endpoints` with two replica groups: a real kube-apiserver holds two shard
 * StatefulSets (groups 0 and 1) and their pods (no kubelet: the test sets pod status as one
 * would); each pod's Prometheus 3.16 and Thanos sidecar run here on loopback; a real Thanos
 * Query reads the endpoint file the command writes. Every target's counter is read after a
 * random delay, so two groups' samples, interleaved, would show counter resets.
 *
 * - Query asks one group per shard index: no counter resets, the count exact.
 * - A pod being deleted is left before it stops: no query fails or undercounts across the failover
 *   (to the other group's pod once its Prometheus, asked as the pod spec says, has scraped every target).
 * - Restarted with no ready pod, the command keeps the index listed (strict), so queries fail
 *   loudly instead of answering without its series.
 * - Scaled to zero, the index leaves the file.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { load } from "js-yaml";
import { freePort } from "../../src/util/ports.ts";
import { eventually } from "../support/eventually.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";
import { type ThanosQuery, ThanosStack } from "../support/thanos.ts";
import { bins, type Shard, startJitteryCounters, startShard } from "./fixtures.ts";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const NS = "mon";
const TARGETS = 8;
const JITTER_MS = 300;

interface Endpoints {
  endpoints: { address: string; strict?: boolean }[];
}

describe("promshard query-endpoints: one replica group per shard index", { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  const stack = new ThanosStack();
  let query: ThanosQuery;
  const shards: Record<"a" | "b", Shard> = {} as never;
  let command: ChildProcess | undefined;
  let output = "";
  let metricsPort = 0;

  const endpointFile = () => load(readFileSync(query.endpointFile, "utf8")) as Endpoints;
  const podPath = (name: string) => `/api/v1/namespaces/${NS}/pods/${name}`;

  async function startCommand(): Promise<void> {
    command = spawn(
      process.execPath,
      [
        cli,
        "query-endpoints",
        `--kubeconfig=${cp.kubeconfigPath}`,
        `--namespace=${NS}`,
        `--file=${query.endpointFile}`,
        `--metrics.listen=127.0.0.1:${metricsPort}`,
        "--log.level=info",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    command.stdout!.on("data", (d) => (output += d));
    command.stderr!.on("data", (d) => (output += d));
    await eventually("query-endpoints ready", async () => {
      const r = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined);
      return r?.ok || undefined;
    });
  }

  async function stopCommand(): Promise<void> {
    const c = command;
    command = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    await exited;
  }

  async function createGroup(group: number, name: string, shard: Shard): Promise<void> {
    const sts = await cp.api<{ metadata: { uid: string } }>("POST", `/apis/apps/v1/namespaces/${NS}/statefulsets`, {
      body: {
        metadata: { name },
        spec: {
          replicas: 1,
          serviceName: name,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { containers: [{ name: "prometheus", image: "quay.io/prometheus/prometheus:v3.16.0" }] },
          },
        },
      },
    });
    const grpcPort = Number(shard.sidecar.grpcAddress.split(":")[1]);
    await cp.api("POST", `/api/v1/namespaces/${NS}/pods`, {
      body: {
        metadata: {
          name: `${name}-0`,
          labels: { app: name, "promshard.io/coordinator": "promshard", "apps.kubernetes.io/pod-index": "0" },
          annotations: { "promshard.io/replica-group": String(group) },
          // Holds the pod, deleting, until the test lets it go: what a graceful termination looks like.
          finalizers: ["promshard.io/test"],
          ownerReferences: [{ apiVersion: "apps/v1", kind: "StatefulSet", name, uid: sts.metadata.uid }],
        },
        spec: {
          containers: [
            { name: "prometheus", image: "quay.io/prometheus/prometheus:v3.16.0" },
            {
              name: "thanos-sidecar",
              image: "quay.io/thanos/thanos:v0.42.4",
              // Where the command asks whether this copy has scraped its targets before failing over to it.
              args: ["sidecar", `--prometheus.url=http://localhost:${shard.prom.port}`],
              ports: [{ name: "grpc", containerPort: grpcPort }],
            },
          ],
        },
      },
    });
    await cp.markPodReady(NS, `${name}-0`, "127.0.0.1");
  }

  before(async () => {
    cp = await startControlPlane();
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: NS } } });
    metricsPort = await freePort();
    const targets = await startJitteryCounters(stack, TARGETS, JITTER_MS);
    const bin = bins().at(-1)!;
    shards.a = await startShard(stack, bin, { shard: "0", replica: "0" }, targets);
    shards.b = await startShard(stack, bin, { shard: "0", replica: "1" }, targets);
    query = await stack.query({ name: "query", endpointInfoTimeout: "1s" });
    await createGroup(0, "prom-a", shards.a);
    await createGroup(1, "prom-b", shards.b);
    await startCommand();
  });

  after(async () => {
    await stopCommand();
    await stack.stop();
    await cp?.stop();
  });

  const withLogs = <T>(fn: () => Promise<T>) =>
    stack.withLogs(async () => {
      try {
        return await fn();
      } catch (err) {
        (err as Error).message += `\n--- query-endpoints ---\n${output.slice(-4000)}`;
        throw err;
      }
    });

  it("lists group 0's sidecar alone: the count is exact and no counter resets", () =>
    withLogs(async () => {
      assert.deepEqual(endpointFile().endpoints, [{ address: shards.a.sidecar.grpcAddress, strict: true }]);
      await eventually("the count through Query", async () =>
        (await query.value("count(ha_ms_total)")) === TARGETS ? true : undefined,
      );
      await sleep(15_000);
      const resets = await query.query("resets(ha_ms_total[1m])");
      assert.equal(resets.httpStatus, 200);
      const values = (resets.body.data?.result ?? []).map((r) => Number(r.value[1]));
      assert.equal(values.length, TARGETS);
      assert.deepEqual(values, Array(TARGETS).fill(0), "a counter of one group never goes down");
    }));

  it("a pod being deleted is left before it stops: no query fails or undercounts across the failover", () =>
    withLogs(async () => {
      const tally = { ok: 0, failed: [] as string[], wrong: [] as number[] };
      let polling = true;
      const poller = (async () => {
        while (polling) {
          try {
            const v = await query.value("count(ha_ms_total)");
            if (v === TARGETS) tally.ok++;
            else tally.wrong.push(v ?? 0);
          } catch (err) {
            tally.failed.push((err as Error).message.slice(0, 200));
          }
          await sleep(100);
        }
      })();
      const deleted = Date.now();
      await cp.api("DELETE", podPath("prom-a-0"));
      await eventually("the file names group 1", () =>
        endpointFile().endpoints[0]?.address === shards.b.sidecar.grpcAddress ? true : undefined,
      );
      const switched = Date.now() - deleted;
      // The grace period Kubernetes gives: Query has re-read the file and dropped group 0 by its end.
      await sleep(3_000);
      await shards.a.sidecar.stop();
      await shards.a.prom.stop();
      await cp.api("PATCH", podPath("prom-a-0"), {
        body: { metadata: { finalizers: null } },
        contentType: "application/merge-patch+json",
      });
      await sleep(3_000);
      polling = false;
      await poller;
      console.log(`failover: file switched ${switched} ms after the delete; ${tally.ok} queries exact`);
      assert.deepEqual(tally.failed, [], "no query failed");
      assert.deepEqual(tally.wrong, [], "no query undercounted");
      assert.ok(tally.ok > 20);
      assert.deepEqual(endpointFile().endpoints, [{ address: shards.b.sidecar.grpcAddress, strict: true }]);
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /^promshard_query_endpoints_failovers_total 1$/m);
    }));

  it("restarted while no pod of an index is ready, it keeps the index listed strict: queries fail, never undercount", () =>
    withLogs(async () => {
      await stopCommand();
      await cp.api("PUT", `${podPath("prom-b-0")}/status`, {
        body: {
          ...(await cp.api<object>("GET", podPath("prom-b-0"))),
          status: { phase: "Running", podIP: "127.0.0.1", conditions: [{ type: "Ready", status: "False" }] },
        },
      });
      await shards.b.sidecar.stop();
      await startCommand();
      assert.deepEqual(endpointFile().endpoints, [{ address: shards.b.sidecar.grpcAddress, strict: true }]);
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /^promshard_query_endpoints_unavailable_shards 1$/m);
      await sleep(2_500);
      const answer = await query.query("count(ha_ms_total)");
      assert.notEqual(answer.httpStatus, 200, `an error, not a smaller count: ${JSON.stringify(answer.body)}`);
    }));

  it("scaled to zero, the index leaves the file", () =>
    withLogs(async () => {
      for (const name of ["prom-a", "prom-b"]) {
        await cp.api("PATCH", `/apis/apps/v1/namespaces/${NS}/statefulsets/${name}`, {
          body: { spec: { replicas: 0 } },
          contentType: "application/merge-patch+json",
        });
      }
      await eventually("an empty endpoint file", () => (endpointFile().endpoints.length === 0 ? true : undefined));
    }));
});
