import { PromshardError } from "../errors.ts";
import type { KubeApi } from "../kube/api.ts";
import type { Scaler } from "./shards.ts";

interface StatefulSet {
  spec?: { replicas?: number; serviceName?: string; selector?: { matchLabels?: Record<string, string> } };
}

interface Pod {
  metadata?: { name?: string };
  status?: { containerStatuses?: { restartCount?: number }[]; initContainerStatuses?: { restartCount?: number }[] };
}

/**
 * The Kubernetes scaler: the shards are the pods of one StatefulSet, shard i its ordinal i.
 * The count is read from and written to the `/scale` subresource (so an HPA-style owner or
 * `kubectl scale` sees the same number), and each pod's container restarts feed the
 * coordinator's crash-loop detection. Scaling down keeps the pods' volumes (the
 * StatefulSet's PVC retention decides); whether their blocks were uploaded is not checked
 * here, so the coordinator waits `--scale-down.wait` before removing a drained shard.
 */
export class StatefulSetScaler implements Scaler {
  readonly #api: KubeApi;
  readonly namespace: string;
  readonly name: string;
  #replicas = 0;
  #serviceName: string | undefined;
  #restarts = new Map<number, number>();

  constructor(api: KubeApi, namespace: string, name: string) {
    this.#api = api;
    this.namespace = namespace;
    this.name = name;
  }

  get #path(): string {
    return `/apis/apps/v1/namespaces/${encodeURIComponent(this.namespace)}/statefulsets/${encodeURIComponent(this.name)}`;
  }

  /** The StatefulSet's governing (headless) Service, which gives each pod a DNS name. */
  get serviceName(): string | undefined {
    return this.#serviceName;
  }

  /** Reads the replica count and the pods' restart counts; called at the start of every round. */
  async refresh(): Promise<void> {
    const res = await this.#api.request<StatefulSet & { message?: string }>("GET", this.#path);
    if (res.status === 404)
      throw new PromshardError(
        "kube_request_failed",
        `StatefulSet ${this.namespace}/${this.name} does not exist; create the shard StatefulSet (the Helm chart does) or fix --shards.statefulset`,
      );
    if (res.status !== 200)
      throw new PromshardError(
        "kube_request_failed",
        `GET StatefulSet ${this.namespace}/${this.name}: HTTP ${res.status}: ${res.body?.message ?? ""}`,
      );
    const sts = res.body;
    this.#replicas = sts.spec?.replicas ?? 1;
    this.#serviceName = sts.spec?.serviceName || undefined;
    const selector = Object.entries(sts.spec?.selector?.matchLabels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const pods = await this.#api.call<{ items: Pod[] }>(
      "GET",
      `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods?labelSelector=${encodeURIComponent(selector)}`,
    );
    const restarts = new Map<number, number>();
    const prefix = `${this.name}-`;
    for (const pod of pods.items) {
      const name = pod.metadata?.name ?? "";
      const ordinal = Number(name.slice(prefix.length));
      if (!name.startsWith(prefix) || !Number.isSafeInteger(ordinal)) continue;
      const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
      restarts.set(
        ordinal,
        statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0),
      );
    }
    this.#restarts = restarts;
  }

  current(): number {
    return this.#replicas;
  }

  restarts(id: number): number {
    return this.#restarts.get(id) ?? 0;
  }

  async scaleTo(n: number): Promise<void> {
    await this.#api.call("PATCH", `${this.#path}/scale`, {
      body: { spec: { replicas: n } },
      contentType: "application/merge-patch+json",
    });
    this.#replicas = n;
  }

  /** Nothing confirms an upload yet: false, so the coordinator waits --scale-down.wait. */
  async dataSafe(): Promise<boolean> {
    return false;
  }
}
