/**
 * Kubernetes discovery at cluster scale, against a real kube-apiserver (test/support/kube.ts):
 * PODS pods across NAMESPACES namespaces, each Running with an IP, two container ports, the
 * prometheus.io annotations and a ReplicaSet owner. Measured for a pod-role KubernetesDiscovery:
 *
 * - first full sync: from construction to `synced`, and to the first onUpdate that completes
 *   every pod's group (all namespaces: one list+watch; and the 100 namespaces listed by name:
 *   100 lists+watches);
 * - this process's memory (RSS, heap used) after sync, against a baseline taken just before;
 * - a pod label patch to its updated group arriving at onUpdate, over CHANGES changes.
 *
 * Setup (the control plane, then a POST and a status PATCH per pod, in parallel with bounded
 * concurrency) is timed and reported too. `PODS=2000 node bench/run.ts discovery` for a smaller run.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { KubernetesDiscovery } from "../src/discovery/kubernetes/provider.ts";
import { kubeClientFor } from "../src/kube/client.ts";
import { InformerPool } from "../src/kube/informers.ts";
import { parseKubernetesSdConfig } from "../src/prom/sd/kubernetes.ts";
import type { TargetGroup } from "../src/prom/targets.ts";
import { startControlPlane } from "../test/support/kube.ts";
import { type Measurement, measure, printTable, writeResults } from "./lib.ts";

const PODS = Number(process.env.PODS ?? 10_000);
const NAMESPACES = Math.min(100, PODS);
const CONCURRENCY = 48;
const CHANGES = 50;
const SYNC_RUNS = 5;
const NAMESPACED_SYNC_RUNS = 3;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const MiB = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
function memory() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rssMiB: MiB(m.rss), heapUsedMiB: MiB(m.heapUsed), externalMiB: MiB(m.external) };
}

/** A Measurement from samples taken outside measure(). */
function summarize(name: string, times: number[]): Measurement & Record<string, unknown> {
  const s = [...times].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  const mid = s.length >> 1;
  return {
    name,
    runs: s.length,
    medianMs: s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2,
    p99Ms: at(0.99),
    meanMs: s.reduce((a, b) => a + b, 0) / s.length,
    minMs: s[0]!,
    maxMs: s[s.length - 1]!,
  };
}

const nsName = (i: number) => `team-${i}`;
const podName = (i: number) => `web-${i % 300}-7f9c6d5b8-${i.toString(36).padStart(5, "0")}`;
const podNs = (i: number) => nsName(i % NAMESPACES);
const podIp = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

const started = performance.now();
const cp = await startControlPlane();
const controlPlaneMs = performance.now() - started;

try {
  // ---- setup: namespaces, then pods (POST + status PATCH each) with bounded concurrency
  const setupStart = performance.now();
  const parallel = async (count: number, work: (i: number) => Promise<unknown>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, count) }, async () => {
        while (next < count) await work(next++);
      }),
    );
  };
  await parallel(NAMESPACES, (i) =>
    cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: nsName(i), labels: { team: nsName(i) } } } }),
  );
  let lastReport = performance.now();
  let done = 0;
  await parallel(PODS, async (i) => {
    const ns = podNs(i);
    const name = podName(i);
    const app = `web-${i % 300}`;
    await cp.api("POST", `/api/v1/namespaces/${ns}/pods`, {
      body: {
        metadata: {
          name,
          labels: { app, "pod-template-hash": "7f9c6d5b8" },
          annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "9100" },
          ownerReferences: [
            {
              apiVersion: "apps/v1",
              kind: "ReplicaSet",
              name: `${app}-7f9c6d5b8`,
              uid: "0f5e0000-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
              controller: true,
            },
          ],
        },
        spec: {
          nodeName: `node-${i % 50}`,
          containers: [
            {
              name: "app",
              image: "example/web:1.2.3",
              ports: [
                { name: "http", containerPort: 8080, protocol: "TCP" },
                { name: "metrics", containerPort: 9100, protocol: "TCP" },
              ],
            },
          ],
        },
      },
    });
    await cp.api("PATCH", `/api/v1/namespaces/${ns}/pods/${name}/status`, {
      contentType: "application/merge-patch+json",
      body: {
        status: {
          phase: "Running",
          podIP: podIp(i),
          podIPs: [{ ip: podIp(i) }],
          hostIP: `192.168.${(i % 50) >> 8}.${i % 50}`,
          conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z" }],
        },
      },
    });
    done++;
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      const s = (lastReport - setupStart) / 1000;
      console.log(`  ${done}/${PODS} pods after ${s.toFixed(0)} s (${Math.round(done / s)} pods/s)`);
    }
  });
  const setupMs = performance.now() - setupStart;
  console.log(
    `control plane ${(controlPlaneMs / 1000).toFixed(1)} s; ${PODS} pods in ${NAMESPACES} namespaces created in ` +
      `${(setupMs / 1000).toFixed(1)} s (${Math.round(PODS / (setupMs / 1000))} pods/s, ${Math.round((2 * PODS) / (setupMs / 1000))} writes/s, concurrency ${CONCURRENCY})`,
  );

  // ---- the discovery
  const client = kubeClientFor({ kubeconfigFile: cp.kubeconfigPath });
  const config = (raw: Record<string, unknown>) => {
    const { config, errors } = parseKubernetesSdConfig(raw, "kubernetes_sd_configs[0]");
    if (!config) throw new Error(errors.map((e) => e.message).join("; "));
    return config;
  };
  const allNamespaces = config({ role: "pod" });
  const listedNamespaces = config({
    role: "pod",
    namespaces: { names: Array.from({ length: NAMESPACES }, (_, i) => nsName(i)) },
  });

  interface Run {
    d: KubernetesDiscovery;
    pool: InformerPool;
    syncedMs: number;
    firstFullMs: number;
    latest: Map<string, TargetGroup>;
    waitFor(source: string, pred: (g: TargetGroup) => boolean): Promise<number>;
    stop(): void;
  }

  /** Starts a discovery; resolves once every pod's group has arrived. */
  const run = async (cfg: ReturnType<typeof config>): Promise<Run> => {
    const pool = new InformerPool();
    const latest = new Map<string, TargetGroup>();
    let wake: (() => void)[] = [];
    let full: (() => void) | undefined;
    const fullyArrived = new Promise<number>((resolve) => {
      full = () => resolve(performance.now());
    });
    const t0 = performance.now();
    const d = new KubernetesDiscovery({ config: cfg, client, pool });
    d.start((groups) => {
      for (const g of groups) latest.set(g.source, g);
      if (latest.size >= PODS) full?.();
      const w = wake;
      wake = [];
      for (const f of w) f();
    });
    await d.synced;
    const syncedMs = performance.now() - t0;
    const firstFullMs = (await fullyArrived) - t0;
    const nonEmpty = [...latest.values()].filter((g) => g.targets.length > 0).length;
    if (nonEmpty !== PODS) throw new Error(`expected ${PODS} groups with targets, got ${nonEmpty}`);
    return {
      d,
      pool,
      syncedMs,
      firstFullMs,
      latest,
      async waitFor(source, pred) {
        for (;;) {
          const g = latest.get(source);
          if (g && pred(g)) return performance.now();
          await new Promise<void>((r) => wake.push(r));
        }
      },
      stop() {
        d.stop();
        pool.stopAll();
      },
    };
  };

  const baseline = memory();
  const kept = await run(allNamespaces);
  const afterSync = memory();
  const syncMs = [kept.syncedMs];
  const fullMs = [kept.firstFullMs];
  console.log(
    `first sync: synced ${kept.syncedMs.toFixed(0)} ms, all ${PODS} groups ${kept.firstFullMs.toFixed(0)} ms; ` +
      `memory ${JSON.stringify(baseline)} -> ${JSON.stringify(afterSync)}`,
  );

  // ---- a label patch to its group, one at a time
  let rev = 0;
  const rtts: number[] = [];
  const latency = await measure(
    "pod label patch -> updated group",
    async () => {
      rev++;
      const i = Math.floor(Math.random() * PODS);
      const ns = podNs(i);
      const name = podName(i);
      const value = `r${rev}`;
      const t0 = performance.now();
      await cp.api("PATCH", `/api/v1/namespaces/${ns}/pods/${name}`, {
        contentType: "application/merge-patch+json",
        body: { metadata: { labels: { "bench-rev": value } } },
      });
      rtts.push(performance.now() - t0);
      await kept.waitFor(`pod/${ns}/${name}`, (g) => g.labels.__meta_kubernetes_pod_label_bench_rev === value);
    },
    { iterations: CHANGES, warmup: 5 },
  );
  const rtt = summarize("(the PATCH request alone)", rtts.slice(5));
  kept.stop();

  // ---- more first syncs, each with a fresh pool (fresh lists and watches)
  for (let r = 1; r < SYNC_RUNS; r++) {
    const x = await run(allNamespaces);
    syncMs.push(x.syncedMs);
    fullMs.push(x.firstFullMs);
    x.stop();
  }
  const nsSyncMs: number[] = [];
  const nsFullMs: number[] = [];
  for (let r = 0; r < NAMESPACED_SYNC_RUNS; r++) {
    const x = await run(listedNamespaces);
    nsSyncMs.push(x.syncedMs);
    nsFullMs.push(x.firstFullMs);
    x.stop();
  }

  const rows = [
    summarize("start -> synced (all namespaces, 1 list+watch)", syncMs),
    summarize(`start -> all ${PODS} groups at onUpdate (same)`, fullMs),
    summarize(`start -> synced (${NAMESPACES} namespaces listed: ${NAMESPACES} lists+watches)`, nsSyncMs),
    summarize(`start -> all ${PODS} groups at onUpdate (same)`, nsFullMs),
    { ...latency },
    rtt,
  ];
  printTable(rows);
  const memoryRows = {
    "before discovery": baseline,
    [`after sync (${PODS} pods)`]: afterSync,
    delta: {
      rssMiB: Math.round((afterSync.rssMiB - baseline.rssMiB) * 10) / 10,
      heapUsedMiB: Math.round((afterSync.heapUsedMiB - baseline.heapUsedMiB) * 10) / 10,
      externalMiB: Math.round((afterSync.externalMiB - baseline.externalMiB) * 10) / 10,
    },
  };
  console.table(memoryRows);
  console.log(
    `${PODS} pods, ${NAMESPACES} namespaces; setup ${(setupMs / 1000).toFixed(1)} s; ` +
      `label patch -> group: median ${latency.medianMs.toFixed(1)} ms, p99 ${latency.p99Ms.toFixed(1)} ms over ${latency.runs} changes`,
  );
  writeResults("discovery", {
    pods: PODS,
    namespaces: NAMESPACES,
    setup: { controlPlaneMs, podsMs: setupMs, concurrency: CONCURRENCY, podsPerSecond: PODS / (setupMs / 1000) },
    rows,
    memory: memoryRows,
  });
} finally {
  await cp.stop();
}
