/**
 * The helm binary for test/chart: PROMSHARD_HELM_BIN (the Makefile exports it; `make tools`
 * builds it, tools/helm.mk), and a run of it that never throws on a non-zero exit.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Cluster } from "./cluster.ts";
import { eventually } from "./eventually.ts";

export const HELM_VERSION = "4.3.2";
export const CHART_DIR = fileURLToPath(new URL("../../charts/promshard", import.meta.url));
const DEFAULT_BIN = join(homedir(), `.cache/promshard-tools/helm-${HELM_VERSION}/bin/helm`);

export function helmBinary(): string {
  const bin = process.env.PROMSHARD_HELM_BIN || DEFAULT_BIN;
  if (!existsSync(bin))
    throw new Error(
      `${bin} is missing; run \`make tools\` (tools/helm.mk builds helm ${HELM_VERSION}), or set PROMSHARD_HELM_BIN`,
    );
  return bin;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** One helm command; `env` adds to the process environment (KUBECONFIG, HELM_* directories). */
export function helm(args: readonly string[], env: Record<string, string> = {}, input?: string): Run {
  const r = spawnSync(helmBinary(), args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
    maxBuffer: 64 << 20,
    ...(input !== undefined ? { input } : {}),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A pod as the tests read it. */
export interface Pod {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { containers: { name: string }[]; initContainers?: { name: string }[] };
  status?: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}

export interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

export const podReady = (p: Pod): boolean =>
  p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

/**
 * One release of the chart in a test cluster (test/support/cluster.ts): helm run with the
 * cluster's kubeconfig and helm's own directories under the cluster's state dir, and what
 * test/chart/install.test.ts and bench/helm-install.bench.ts read back from it.
 */
export class Release {
  readonly #cluster: Cluster;
  readonly name: string;
  readonly namespace: string;

  constructor(cluster: Cluster, name: string, namespace: string) {
    this.#cluster = cluster;
    this.name = name;
    this.namespace = namespace;
  }

  /** The chart's full name (and the coordinator's name): <release>-promshard. */
  get fullname(): string {
    return `${this.name}-promshard`;
  }

  /** The chart's object names: <release>-promshard-<component>. */
  object(component: string): string {
    return `${this.fullname}-${component}`;
  }

  helm(args: readonly string[]): Run {
    const dir = this.#cluster.dir;
    return helm([...args, "-n", this.namespace], {
      KUBECONFIG: this.#cluster.kubeconfigPath,
      HELM_CACHE_HOME: `${dir}/helm-cache`,
      HELM_CONFIG_HOME: `${dir}/helm-config`,
      HELM_DATA_HOME: `${dir}/helm-data`,
    });
  }

  /** helm install/upgrade/uninstall…; throws with helm's output when it fails. */
  run(args: readonly string[]): string {
    const r = this.helm(args);
    if (r.status !== 0) throw new Error(`helm ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  async pods(namespace: string, selector: string): Promise<Pod[]> {
    const list = await this.#cluster.api<{ items: Pod[] }>(
      "GET",
      `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`,
    );
    return list.items;
  }

  /** Until every replica of the chart's Deployment `component` is ready and updated. */
  async deploymentReady(component: string, timeoutMs = 300_000): Promise<void> {
    const name = this.object(component);
    await eventually(
      `Deployment ${this.namespace}/${name} ready`,
      async () => {
        const d = await this.#cluster.api<{
          metadata: { generation: number };
          spec: { replicas: number };
          status: { readyReplicas?: number; updatedReplicas?: number; replicas?: number; observedGeneration?: number };
        }>("GET", `/apis/apps/v1/namespaces/${this.namespace}/deployments/${name}`);
        const s = d.status;
        return s.observedGeneration === d.metadata.generation &&
          s.readyReplicas === d.spec.replicas &&
          s.updatedReplicas === d.spec.replicas &&
          s.replicas === d.spec.replicas
          ? true
          : undefined;
      },
      timeoutMs,
    );
  }

  /**
   * An instant query at a ready Thanos Query pod; dedup=false shows every shard's copy, `time`
   * (Unix seconds) evaluates it then, `storeMatch` asks only the stores it matches (Thanos's
   * `storeMatch[]`, e.g. `{__address__=~"ps-promshard-store.*"}`: the Store Gateway alone).
   */
  async query(
    expr: string,
    opts: { dedup?: boolean; time?: number; storeMatch?: string } = {},
  ): Promise<QueryResult[]> {
    const [q] = (await this.pods(this.namespace, "app.kubernetes.io/component=query")).filter(podReady);
    if (!q?.status?.podIP) throw new Error("no ready Thanos Query pod");
    const params = new URLSearchParams({ query: expr });
    if (opts.dedup === false) params.set("dedup", "false");
    if (opts.time !== undefined) params.set("time", String(opts.time));
    if (opts.storeMatch !== undefined) params.set("storeMatch[]", opts.storeMatch);
    const res = await fetch(`http://${q.status.podIP}:9090/api/v1/query?${params}`, {
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { status: string; error?: string; data?: { result: QueryResult[] } };
    if (body.status !== "success") throw new Error(`${expr}: HTTP ${res.status}: ${body.error}`);
    return body.data?.result ?? [];
  }

  /** The shard index that scrapes each pod of `job` (up == 1), or a throw when one is scraped by two or none. */
  async placement(job: string, pods: readonly string[], time?: number): Promise<Map<string, string>> {
    const up = await this.query(`up{job="${job}"} == 1`, { dedup: false, time });
    const shards = new Map<string, Set<string>>();
    for (const r of up) {
      const pod = r.metric.pod ?? "";
      shards.set(pod, (shards.get(pod) ?? new Set()).add(r.metric.shard ?? "?"));
    }
    const out = new Map<string, string>();
    for (const pod of pods) {
      const s = [...(shards.get(pod) ?? [])];
      if (s.length !== 1) throw new Error(`${pod} is scraped by shards [${s.join(", ")}]`);
      out.set(pod, s[0] ?? "");
    }
    const extra = [...shards.keys()].filter((p) => !pods.includes(p));
    if (extra.length > 0) throw new Error(`scraped, not expected: ${extra.join(", ")}`);
    return out;
  }

  /** The replica count of a StatefulSet through its /scale, as the coordinator writes it. */
  async replicas(namespace: string, name: string): Promise<number> {
    const s = await this.#cluster.api<{ spec: { replicas?: number } }>(
      "GET",
      `/apis/apps/v1/namespaces/${namespace}/statefulsets/${name}/scale`,
    );
    return s.spec.replicas ?? 0;
  }
}

/**
 * Demo-exporter pods (the seed's targets: 10040 series, 10045 with Prometheus's scrape series)
 * annotated for the chart's default kubernetes-pods job, hardened like the chart's own pods.
 */
export async function createExporters(cluster: Cluster, namespace: string, names: readonly string[]): Promise<void> {
  for (const name of names)
    await cluster.api("POST", `/api/v1/namespaces/${namespace}/pods`, {
      body: {
        metadata: {
          name,
          labels: { app: "exporter" },
          annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "9100" },
        },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: "exporter",
              image: cluster.images.promshard,
              imagePullPolicy: "Never",
              args: ["demo-exporter", "--host", "0.0.0.0", "--port", "9100", "--series", "10040"],
              ports: [{ name: "http", containerPort: 9100 }],
              readinessProbe: { httpGet: { path: "/metrics", port: 9100 }, periodSeconds: 2 },
              resources: { requests: { cpu: "5m", memory: "32Mi" } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
            },
          ],
        },
      },
    });
}
