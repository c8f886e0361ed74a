import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import type { KubeApi } from "../kube/api.ts";
import type { KubeClient } from "../kube/client.ts";
import { recordEvent } from "../kube/events.ts";
import type { Informer, InformerPool } from "../kube/informers.ts";
import { bucketServes } from "../thanos/store-blocks.ts";
import { parseAnnotations } from "../webhook/annotations.ts";
import { COORDINATOR_LABEL } from "../webhook/inject.ts";
import { flushShard } from "./shard-client.ts";
import type { CoordinatorEvent, Scaler } from "./shards.ts";

export interface StatefulSetObject extends KubernetesObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
  };
  spec?: {
    replicas?: number;
    serviceName?: string;
    selector?: { matchLabels?: Record<string, string> };
    template?: { metadata?: { annotations?: Record<string, string> } };
  };
}

interface PodObject extends KubernetesObject {
  status?: { containerStatuses?: { restartCount?: number }[]; initContainerStatuses?: { restartCount?: number }[] };
}

/** One replica group's shards: a StatefulSet, shard i its pod i. */
export interface ShardGroup {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** promshard.io/replica-group of its pod template (0 when absent). */
  readonly replicaGroup: number;
  /** The governing (headless) Service, which gives each pod a DNS name. */
  readonly serviceName: string | undefined;
  /** promshard.io/sidecar-port of its pod template, when set. */
  readonly sidecarPort: number | undefined;
  /** Its pods upload blocks to object storage (promshard.io/thanos-objstore-secret). */
  readonly upload: boolean;
  readonly podSelector: string;
}

/** A StatefulSet that names this coordinator but cannot be one of its replica groups. */
export interface UnusableStatefulSet {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly problem: string;
}

/** Which StatefulSets are this coordinator's shards. */
export interface ShardSelection {
  /** promshard.io/coordinator of its shards (the webhook labels their StatefulSets with it). */
  readonly coordinator: string;
  /** Where to look ("" for every namespace). */
  readonly namespace: string;
  /** The explicit override (--shards.statefulset): these StatefulSets, labelled or not. */
  readonly statefulSets?: readonly { readonly namespace: string; readonly name: string }[];
}

const INJECT = "promshard.io/inject";

/**
 * The replica groups among `objects` (pure). A StatefulSet is one when its pod template opts
 * in (`promshard.io/inject: "true"`; not asked of an explicit override), names no other
 * coordinator, has valid promshard annotations and a replica group no older StatefulSet has;
 * each other one is returned with what to do about it.
 */
export function readShardGroups(
  objects: readonly StatefulSetObject[],
  coordinator: string,
  explicit: boolean,
): { groups: ShardGroup[]; unusable: UnusableStatefulSet[] } {
  const groups: ShardGroup[] = [];
  const unusable: UnusableStatefulSet[] = [];
  // The older StatefulSet keeps a contested replica group: adding one must not take it from a
  // running one. Raw JSON: the timestamp is RFC 3339 text, which sorts as time.
  const created = (x: StatefulSetObject) =>
    String((x.metadata as { creationTimestamp?: unknown } | undefined)?.creationTimestamp ?? "");
  const sorted = [...objects].sort(
    (a, b) =>
      created(a).localeCompare(created(b)) ||
      `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace}/${b.metadata?.name}`),
  );
  for (const sts of sorted) {
    const namespace = sts.metadata?.namespace ?? "";
    const name = sts.metadata?.name ?? "";
    const uid = sts.metadata?.uid ?? "";
    const refuse = (problem: string) => unusable.push({ namespace, name, uid, problem });
    const annotations = sts.spec?.template?.metadata?.annotations ?? {};
    if (!explicit && annotations[INJECT] !== "true") {
      refuse(
        `its pod template does not carry ${INJECT}: "true", so its pods get no promshard sidecar; annotate the StatefulSet (kubectl annotate statefulset ${name} ${INJECT}=true) or remove its ${COORDINATOR_LABEL} label`,
      );
      continue;
    }
    const parsed = parseAnnotations(annotations, "spec.template.metadata");
    if (parsed.errors.length > 0) {
      refuse(`${parsed.errors.map((e) => e.message).join("; ")}; fix the annotation`);
      continue;
    }
    const a = parsed.value;
    if (a.coordinator !== undefined && a.coordinator !== coordinator) {
      refuse(
        `its pod template names coordinator "${a.coordinator}" in promshard.io/coordinator, and this coordinator is "${coordinator}"; its pods' sidecars are driven by the other one`,
      );
      continue;
    }
    const replicaGroup = a.replicaGroup ?? 0;
    const taken = groups.find((g) => g.replicaGroup === replicaGroup);
    if (taken) {
      refuse(
        `replica group ${replicaGroup} is already StatefulSet ${taken.namespace}/${taken.name}; give this one another promshard.io/replica-group (one StatefulSet per group)`,
      );
      continue;
    }
    groups.push({
      namespace,
      name,
      uid,
      replicaGroup,
      serviceName: sts.spec?.serviceName || undefined,
      sidecarPort: a.sidecarPort,
      upload: a.objstoreSecret !== undefined && a.thanos !== false,
      podSelector: Object.entries(sts.spec?.selector?.matchLabels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    });
  }
  groups.sort((x, y) => x.replicaGroup - y.replicaGroup);
  return { groups, unusable };
}

export interface StatefulSetScalerOptions {
  readonly api: KubeApi;
  readonly client: KubeClient;
  readonly pool: InformerPool;
  readonly selection: ShardSelection;
  readonly log: Logger;
  readonly onEvent?: (e: CoordinatorEvent) => void;
  /** Called with the replica groups after every refresh (the last good config's Secrets follow them). */
  readonly onGroups?: (groups: readonly ShardGroup[]) => Promise<void>;
  /** How a drained shard's data is confirmed in the bucket (dataSafe); without it, the coordinator waits. */
  readonly drain?: DrainCheck;
}

/** What dataSafe needs: the shards' sidecars, and optionally the Store Gateways to confirm with. */
export interface DrainCheck {
  readonly sidecarUrl: (g: ShardGroup, id: number) => string;
  readonly token: () => string;
  /** Store Gateways' HTTP URLs (--scale-down.store-url): the flushed blocks must be loaded there. */
  readonly storeUrls: readonly string[];
  /** Thanos Queries' HTTP URLs, `dns+` ones expanded each time (--scale-down.query-url): each must route to a gateway for them. */
  readonly queryUrls: readonly string[];
}

/**
 * The Kubernetes scaler: the shards are the pods of the coordinator's StatefulSets, one per
 * replica group, shard i the pod with ordinal i in each. StatefulSets are found by the
 * label the webhook sets (or named by --shards.statefulset) and watched with their pods
 * (informers). The count is read from and written to every group's `/scale` subresource
 * (so `kubectl scale` and an HPA-style owner see the same number): all groups scale together,
 * and a group that has fewer shards than the others (a new one) is brought up to them. Each
 * pod's container restarts feed the coordinator's crash-loop detection (summed over groups).
 * A drained shard goes once its data, head included, is in the bucket (dataSafe).
 */
export class StatefulSetScaler implements Scaler {
  readonly #o: StatefulSetScalerOptions;
  readonly #sets: (Informer<StatefulSetObject> & { release(): void })[] = [];
  readonly #pods = new Map<string, Informer<PodObject> & { release(): void }>();
  #groups: ShardGroup[] = [];
  #unusable: UnusableStatefulSet[] = [];
  /** Problems already told, by StatefulSet uid and text: each is told once, when it appears. */
  #told = new Set<string>();
  #replicas = 0;
  /** The last step said of each drained shard's flush. */
  readonly #drainSaid = new Map<number, string>();

  constructor(opts: StatefulSetScalerOptions) {
    this.#o = opts;
  }

  /** Starts the watches; resolves once the StatefulSets are listed. */
  async start(): Promise<void> {
    const { selection, pool, client } = this.#o;
    const specs = selection.statefulSets
      ? selection.statefulSets.map((s) => ({
          namespace: s.namespace,
          labelSelector: "",
          fieldSelector: `metadata.name=${s.name}`,
        }))
      : [
          {
            namespace: selection.namespace,
            labelSelector: `${COORDINATOR_LABEL}=${selection.coordinator}`,
            fieldSelector: "",
          },
        ];
    for (const s of specs)
      this.#sets.push(pool.acquire<StatefulSetObject>(client, { resource: "/apis/apps/v1/statefulsets", ...s }));
    await Promise.all(this.#sets.map((i) => i.synced));
  }

  stop(): void {
    for (const i of this.#sets.splice(0)) i.release();
    for (const i of this.#pods.values()) i.release();
    this.#pods.clear();
  }

  /** The replica groups found in the last refresh, by group number. */
  groups(): readonly ShardGroup[] {
    return this.#groups;
  }

  unusable(): readonly UnusableStatefulSet[] {
    return this.#unusable;
  }

  #scalePath(g: { namespace: string; name: string }): string {
    return `/apis/apps/v1/namespaces/${encodeURIComponent(g.namespace)}/statefulsets/${encodeURIComponent(g.name)}/scale`;
  }

  /** Reads the StatefulSets and their counts again, brings a lagging group up to the others; every round. */
  async refresh(): Promise<void> {
    const { groups, unusable } = readShardGroups(
      this.#sets.flatMap((i) => i.list()),
      this.#o.selection.coordinator,
      this.#o.selection.statefulSets !== undefined,
    );
    await this.#tell(unusable);
    this.#groups = groups;
    this.#unusable = unusable;
    this.#watchPods(groups);
    await this.#o.onGroups?.(groups);
    if (groups.length === 0) {
      this.#replicas = 0;
      return;
    }
    // From /scale, not the watch: a count the coordinator just wrote must not be read as older.
    const counts = await Promise.all(
      groups.map(async (g) => {
        const res = await this.#o.api.request<{ spec?: { replicas?: number }; message?: string }>(
          "GET",
          this.#scalePath(g),
        );
        if (res.status !== 200)
          throw new PromshardError(
            "kube_request_failed",
            `GET StatefulSet ${g.namespace}/${g.name}/scale: HTTP ${res.status}: ${res.body?.message ?? ""}${res.status === 403 ? "; the coordinator's RBAC must allow get and patch on statefulsets/scale" : ""}`,
          );
        return res.body.spec?.replicas ?? 0;
      }),
    );
    const n = Math.max(...counts);
    for (const [i, g] of groups.entries()) {
      if (counts[i] === n) continue;
      await this.#patchScale(g, n);
      this.#o.onEvent?.({
        kind: "scale",
        text: `replica group ${g.replicaGroup} (StatefulSet ${g.namespace}/${g.name}) had ${counts[i]} shards and the others ${n}: scaled to ${n}`,
      });
    }
    this.#replicas = n;
  }

  /** Tells each new problem once: an event, a log line, and a Kubernetes Event on the StatefulSet. */
  async #tell(unusable: readonly UnusableStatefulSet[]): Promise<void> {
    const now = new Set(unusable.map((u) => `${u.uid} ${u.problem}`));
    for (const u of unusable) {
      const key = `${u.uid} ${u.problem}`;
      if (this.#told.has(key)) continue;
      const text = `StatefulSet ${u.namespace}/${u.name} is not used as shards: ${u.problem}`;
      this.#o.log.warn(
        { statefulSet: `${u.namespace}/${u.name}`, problem: u.problem },
        "StatefulSet not used as shards",
      );
      this.#o.onEvent?.({ kind: "warning", text });
      await recordEvent(this.#o.api, {
        object: { apiVersion: "apps/v1", kind: "StatefulSet", namespace: u.namespace, name: u.name, uid: u.uid },
        reason: "PromshardUnusable",
        message: text,
        log: this.#o.log,
      });
    }
    this.#told = now;
  }

  #watchPods(groups: readonly ShardGroup[]): void {
    const want = new Map(groups.map((g) => [`${g.namespace} ${g.podSelector}`, g]));
    for (const [key, informer] of this.#pods)
      if (!want.has(key)) {
        informer.release();
        this.#pods.delete(key);
      }
    for (const [key, g] of want)
      if (!this.#pods.has(key))
        this.#pods.set(
          key,
          this.#o.pool.acquire<PodObject>(this.#o.client, {
            resource: "/api/v1/pods",
            namespace: g.namespace,
            labelSelector: g.podSelector,
            fieldSelector: "",
          }),
        );
  }

  current(): number {
    return this.#replicas;
  }

  /** Container restarts of shard `id`'s pods, summed over the replica groups. */
  restarts(id: number): number {
    let n = 0;
    for (const g of this.#groups) {
      const pod = this.#pods.get(`${g.namespace} ${g.podSelector}`)?.get(`${g.namespace}/${g.name}-${id}`);
      for (const c of [...(pod?.status?.containerStatuses ?? []), ...(pod?.status?.initContainerStatuses ?? [])])
        n += c.restartCount ?? 0;
    }
    return n;
  }

  async #patchScale(g: ShardGroup, n: number): Promise<void> {
    await this.#o.api.call("PATCH", this.#scalePath(g), {
      body: { spec: { replicas: n } },
      contentType: "application/merge-patch+json",
    });
  }

  async scaleTo(n: number): Promise<void> {
    if (this.#groups.length === 0)
      throw new PromshardError(
        "shard_set_invalid",
        `no shard StatefulSet: annotate a Prometheus StatefulSet with promshard.io/inject=true${this.#o.selection.coordinator === "promshard" ? "" : ` and promshard.io/coordinator=${this.#o.selection.coordinator}`}${this.#o.selection.namespace ? ` in namespace ${this.#o.selection.namespace}` : ""}, or name one with --shards.statefulset`,
      );
    await Promise.all(this.#groups.map((g) => this.#patchScale(g, n)));
    this.#replicas = n;
  }

  /**
   * Whether shard `id`'s data, head included, is in the bucket, in every replica group: each
   * pod's sidecar flushes its head for the Thanos sidecar to ship (src/sidecar/flush.ts); once
   * every copy is shipped, and the Store Gateways (when given) serve the flushed blocks to
   * every Query given (store-blocks.ts), each releases its head's copy. False while any step is pending (the coordinator asks again next
   * round), and while a group uploads nothing: its PVC, kept, is then the only copy, and the
   * coordinator waits --scale-down.wait as before.
   */
  async dataSafe(id: number): Promise<boolean> {
    const drain = this.#o.drain;
    if (!drain || this.#groups.length === 0) return false;
    const local = this.#groups.find((g) => !g.upload);
    if (local)
      return this.#drainStep(
        id,
        false,
        `replica group ${local.replicaGroup} (StatefulSet ${local.namespace}/${local.name}) uploads nothing, so its PVC is the only copy of the shard's data: it goes after --scale-down.wait`,
      );
    const urls = this.#groups.map((g) => drain.sidecarUrl(g, id));
    const token = drain.token();
    const reports = await Promise.all(urls.map((u) => flushShard(u, token, false)));
    if (reports.some((r) => r.state === "draining"))
      return this.#drainStep(id, false, "waiting for its targets' staleness markers before flushing its head");
    const blocks = reports.flatMap((r) => r.blocks);
    const unshipped = reports.flatMap((r) => r.unshipped);
    if (unshipped.length > 0)
      return this.#drainStep(
        id,
        false,
        `head flushed (${blocks.join(", ") || "empty"}); waiting for the Thanos sidecar to upload ${unshipped.join(", ")}`,
      );
    const awaited =
      drain.storeUrls.length > 0 ? await bucketServes(drain.storeUrls, drain.queryUrls, blocks) : undefined;
    if (awaited) return this.#drainStep(id, false, `uploaded; ${awaited}`);
    await Promise.all(urls.map((u) => flushShard(u, token, true)));
    return this.#drainStep(id, true, `its data is in the bucket (head: ${blocks.join(", ") || "empty"}); it can go`);
  }

  /** Tells each step of a drained shard's flush once, as it is reached. */
  #drainStep(id: number, safe: boolean, text: string): boolean {
    if (this.#drainSaid.get(id) !== text) {
      this.#drainSaid.set(id, text);
      this.#o.log.info({ shard: id, safe }, text);
      this.#o.onEvent?.({ kind: "scale", text: `shard ${id}: ${text}` });
    }
    if (safe) this.#drainSaid.delete(id);
    return safe;
  }
}
