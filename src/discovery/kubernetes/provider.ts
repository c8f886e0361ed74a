import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { KubeClient } from "../../kube/client.ts";
import { type Informer, type InformerPool, objectKey } from "../../kube/informers.ts";
import {
  type KubernetesRole,
  type KubernetesSdConfig,
  namespacesToWatch,
  selectorFor,
} from "../../prom/sd/kubernetes.ts";
import type { TargetGroup } from "../../prom/targets.ts";
import type { Provider } from "../provider.ts";
import { endpointsIndexKeys } from "./endpoints.ts";
import { endpointSliceIndexKeys } from "./endpointslice.ts";
import { type RoleObjects, sourceFor, targetGroupFor } from "./index.ts";
import { emptyGroup, type KubernetesContext } from "./meta.ts";

/** Collection paths, cluster-wide form. */
const RESOURCE = {
  pod: "/api/v1/pods",
  service: "/api/v1/services",
  endpoints: "/api/v1/endpoints",
  endpointslice: "/apis/discovery.k8s.io/v1/endpointslices",
  node: "/api/v1/nodes",
  ingress: "/apis/networking.k8s.io/v1/ingresses",
  namespace: "/api/v1/namespaces",
  replicaset: "/apis/apps/v1/replicasets",
  job: "/apis/batch/v1/jobs",
} as const;

type Obj = KubernetesObject & Record<string, unknown>;
type Lease = Informer<Obj> & { release(): void };

/** The informers of one namespace (or of the whole cluster for the node role). */
interface Scope {
  readonly namespace: string;
  readonly main: Lease;
  readonly pods?: Lease;
  readonly services?: Lease;
  readonly ctx: KubernetesContext;
}

/**
 * kubernetes_sd_configs for one entry: informers per namespace as Prometheus sets them up,
 * the pure builders for the groups, and the same rebuild triggers (a service change rebuilds
 * its endpoints, a node change the pods on it, …). Groups are sent only once every informer
 * has synced, so no group is built from half-filled lookups, and only when they changed.
 */
export class KubernetesDiscovery implements Provider {
  readonly #config: KubernetesSdConfig;
  readonly #client: KubeClient;
  readonly #pool: InformerPool;
  readonly #log: Logger | undefined;
  readonly #leases: Lease[] = [];
  /** Unsubscribes from informers, which other providers may share and keep running. */
  readonly #subscriptions: (() => void)[] = [];
  readonly #scopes: Scope[] = [];
  readonly #sent = new Map<string, string>();
  readonly #podPhases = new Map<string, string>();
  #pending = new Map<string, TargetGroup>();
  #flushScheduled = false;
  #onUpdate: ((groups: TargetGroup[]) => void) | undefined;
  #ready = false;
  readonly synced: Promise<void>;

  constructor(opts: {
    config: KubernetesSdConfig;
    client: KubeClient;
    pool: InformerPool;
    ownNamespace?: string | undefined;
    log?: Logger;
  }) {
    this.#config = opts.config;
    this.#client = opts.client;
    this.#pool = opts.pool;
    this.#log = opts.log;
    const role = opts.config.role;
    const attach = opts.config.attachMetadata;
    const cluster = (resource: string, selectorRole?: KubernetesRole) => this.#lease(resource, "", selectorRole);
    const nodes = attach.node || role === "node" ? cluster(RESOURCE.node, "node") : undefined;
    const namespaces = attach.namespace ? cluster(RESOURCE.namespace) : undefined;
    const scopeNamespaces = role === "node" ? [""] : namespacesToWatch(opts.config, opts.ownNamespace);
    for (const ns of scopeNamespaces) {
      const main = role === "node" ? nodes! : this.#lease(RESOURCE[role], ns, role);
      const needsPods = role === "endpoints" || role === "endpointslice";
      const pods = needsPods ? this.#lease(RESOURCE.pod, ns, "pod") : undefined;
      const services = needsPods ? this.#lease(RESOURCE.service, ns, "service") : undefined;
      const replicaSets = attach.deployment ? this.#lease(RESOURCE.replicaset, ns) : undefined;
      const jobs = attach.cronjob ? this.#lease(RESOURCE.job, ns) : undefined;
      const ctx: KubernetesContext = {
        attachMetadata: attach,
        ...(pods ? { pod: (n: string, name: string) => pods.get(`${n}/${name}`) as never } : {}),
        ...(services ? { service: (n: string, name: string) => services.get(`${n}/${name}`) as never } : {}),
        ...(nodes ? { node: (name: string) => nodes.get(name) as never } : {}),
        ...(namespaces ? { namespace: (name: string) => namespaces.get(name) as never } : {}),
        ...(replicaSets ? { replicaSet: (n: string, name: string) => replicaSets.get(`${n}/${name}`) as never } : {}),
        ...(jobs ? { job: (n: string, name: string) => jobs.get(`${n}/${name}`) as never } : {}),
      };
      const scope: Scope = { namespace: ns, main, ...(pods ? { pods } : {}), ...(services ? { services } : {}), ctx };
      this.#scopes.push(scope);
      this.#subscriptions.push(
        main.on((event, obj) => this.#onMain(scope, event, obj)),
        ...(pods ? [pods.on((event, obj) => this.#onPod(scope, event, obj))] : []),
        ...(services ? [services.on((_e, obj) => this.#onService(scope, obj))] : []),
        ...(replicaSets ? [replicaSets.on(() => this.#rebuildAll(scope))] : []),
        ...(jobs ? [jobs.on(() => this.#rebuildAll(scope))] : []),
      );
    }
    if (nodes) {
      this.#subscriptions.push(
        nodes.on((_e, obj) => {
          if (role !== "node") for (const s of this.#scopes) this.#onNode(s, obj);
        }),
      );
    }
    if (namespaces) {
      this.#subscriptions.push(
        namespaces.on((event, obj) => {
          if (event === "update") for (const s of this.#scopes) this.#rebuildAll(s, obj.metadata?.name);
        }),
      );
    }
    this.synced = Promise.all(this.#leases.map((l) => l.synced)).then(() => {
      this.#ready = true;
      for (const s of this.#scopes) this.#rebuildAll(s);
    });
  }

  /** Starts sending groups (all of them once synced, then changes). */
  start(onUpdate: (groups: TargetGroup[]) => void): void {
    this.#onUpdate = onUpdate;
    if (this.#ready) for (const s of this.#scopes) this.#rebuildAll(s);
  }

  /** Every current group: what a one-shot run needs. */
  groups(): TargetGroup[] {
    const out: TargetGroup[] = [];
    for (const s of this.#scopes) {
      for (const obj of s.main.list()) {
        const g = this.#build(s, obj);
        if (g) out.push(g);
      }
    }
    return out;
  }

  stop(): void {
    for (const unsubscribe of this.#subscriptions) unsubscribe();
    this.#subscriptions.length = 0;
    for (const l of this.#leases) l.release();
    this.#leases.length = 0;
    this.#onUpdate = undefined;
  }

  #lease(resource: string, namespace: string, selectorRole?: KubernetesRole): Lease {
    const sel = selectorRole ? selectorFor(this.#config, selectorRole) : { label: "", field: "" };
    const lease = this.#pool.acquire<Obj>(this.#client, {
      resource,
      namespace,
      labelSelector: sel.label,
      fieldSelector: sel.field,
    });
    this.#leases.push(lease);
    return lease;
  }

  #build(scope: Scope, obj: Obj): TargetGroup | null {
    try {
      return targetGroupFor(this.#config.role, obj as unknown as RoleObjects[KubernetesRole], scope.ctx);
    } catch (err) {
      this.#log?.error(
        { err, role: this.#config.role, object: objectKey(obj) },
        "cannot build a target group; the object is skipped until it changes",
      );
      return null;
    }
  }

  #emit(group: TargetGroup): void {
    // Before start() nothing is sent or remembered: start() sends every group then.
    if (!this.#ready || !this.#onUpdate) return;
    this.#pending.set(group.source, group);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const batch = [...this.#pending.values()].filter((g) => {
        const text = JSON.stringify(g);
        if (this.#sent.get(g.source) === text) return false;
        this.#sent.set(g.source, text);
        return true;
      });
      this.#pending = new Map();
      if (batch.length > 0) this.#onUpdate?.(batch);
    });
  }

  #onMain(scope: Scope, event: string, obj: Obj): void {
    if (event === "delete") {
      const m = obj.metadata;
      this.#emit(emptyGroup(sourceFor(this.#config.role, m?.namespace ?? "", m?.name ?? "")));
      return;
    }
    const g = this.#build(scope, obj);
    if (g) this.#emit(g);
  }

  #rebuildAll(scope: Scope, namespace?: string): void {
    for (const obj of scope.main.list()) {
      if (namespace !== undefined && obj.metadata?.namespace !== namespace) continue;
      const g = this.#build(scope, obj);
      if (g) this.#emit(g);
    }
  }

  #rebuildWhere(scope: Scope, pred: (obj: Obj) => boolean): void {
    for (const obj of scope.main.list()) {
      if (!pred(obj)) continue;
      const g = this.#build(scope, obj);
      if (g) this.#emit(g);
    }
  }

  /**
   * As Prometheus does: Endpoints rebuild when a pod they list changes phase (only on update);
   * EndpointSlices never rebuild on pod events. Other pod changes show at the next event of
   * the endpoints themselves, in Prometheus and here alike.
   */
  #onPod(scope: Scope, event: string, pod: Obj): void {
    if (this.#config.role !== "endpoints") return;
    const key = objectKey(pod);
    const phase = (pod as { status?: { phase?: string } }).status?.phase ?? "";
    const before = this.#podPhases.get(key);
    if (event === "delete") this.#podPhases.delete(key);
    else this.#podPhases.set(key, phase);
    if (event !== "update" || before === phase) return;
    this.#rebuildWhere(scope, (ep) => endpointsIndexKeys(ep as never).pods.includes(key));
  }

  #onService(scope: Scope, svc: Obj): void {
    const key = objectKey(svc);
    if (this.#config.role === "endpoints") this.#rebuildWhere(scope, (ep) => objectKey(ep) === key);
    else if (this.#config.role === "endpointslice") {
      this.#rebuildWhere(scope, (s) => endpointSliceIndexKeys(s as never).service === key);
    }
  }

  #onNode(scope: Scope, node: Obj): void {
    const name = node.metadata?.name ?? "";
    const role = this.#config.role;
    if (role === "pod")
      this.#rebuildWhere(scope, (p) => (p as { spec?: { nodeName?: string } }).spec?.nodeName === name);
    else if (role === "endpoints")
      this.#rebuildWhere(scope, (ep) => endpointsIndexKeys(ep as never).nodes.includes(name));
    else if (role === "endpointslice") {
      this.#rebuildWhere(scope, (s) => endpointSliceIndexKeys(s as never).nodes.includes(name));
    }
  }
}
