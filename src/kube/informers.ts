import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { type Backoff, backoffDelay } from "../util/backoff.ts";
import type { KubeClient } from "./client.ts";
import { clientNode } from "./client-node.ts";

/** One list+watch of one resource in one namespace with one selector pair. */
export interface Informer<T> {
  /** Every object, keyed `namespace/name` (or `name` for cluster-scoped resources). */
  get(key: string): T | undefined;
  list(): T[];
  /** Resolves once the first list has been applied. */
  readonly synced: Promise<void>;
  isSynced(): boolean;
  on(listener: InformerListener<T>): () => void;
}

export type InformerEvent = "add" | "update" | "delete";
export type InformerListener<T> = (event: InformerEvent, obj: T) => void;

export interface InformerSpec {
  /** API path of the collection, cluster-wide form: `/api/v1/pods`, `/apis/discovery.k8s.io/v1/endpointslices`. */
  readonly resource: string;
  /** "" for all namespaces or cluster-scoped resources. */
  readonly namespace: string;
  readonly labelSelector: string;
  readonly fieldSelector: string;
}

interface Entry {
  informer: Informer<KubernetesObject> & { stop(): void };
  refs: number;
}

const RESTART_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000 };

export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name ?? ""}` : (obj.metadata?.name ?? "");
}

/** `/api/v1/pods` in namespace `a` is `/api/v1/namespaces/a/pods`. */
export function namespacedPath(resource: string, namespace: string): string {
  if (namespace === "") return resource;
  const i = resource.lastIndexOf("/");
  return `${resource.slice(0, i)}/namespaces/${encodeURIComponent(namespace)}${resource.slice(i)}`;
}

/**
 * Informers shared by everyone asking for the same client, resource, namespace and selectors
 * (several jobs, or several roles, watching pods share one watch). client-node's ListWatch
 * relists on 410 Gone and reconnects after a closed watch; on any other error it stops, so
 * the pool restarts it with backoff and logs the error with the resource and namespace.
 */
export class InformerPool {
  readonly #entries = new Map<string, Entry>();
  readonly #log: Logger | undefined;
  readonly #watch: boolean;

  /** `watch: false` lists once and never watches: for one-shot runs such as `promshard targets`. */
  constructor(opts: { log?: Logger; watch?: boolean } = {}) {
    this.#log = opts.log;
    this.#watch = opts.watch ?? true;
  }

  acquire<T extends KubernetesObject>(client: KubeClient, spec: InformerSpec): Informer<T> & { release(): void } {
    const key = `${client.key} ${spec.resource} ${spec.namespace} ${spec.labelSelector} ${spec.fieldSelector}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = {
        informer: this.#watch ? startInformer(client, spec, this.#log) : listOnce(client, spec),
        refs: 0,
      };
      this.#entries.set(key, entry);
    }
    entry.refs++;
    const e = entry;
    let released = false;
    return {
      get: (k: string) => e.informer.get(k) as T | undefined,
      list: () => e.informer.list() as T[],
      synced: e.informer.synced,
      isSynced: () => e.informer.isSynced(),
      on: (l: InformerListener<T>) => e.informer.on(l as InformerListener<KubernetesObject>),
      release: () => {
        if (released) return;
        released = true;
        if (--e.refs === 0) {
          e.informer.stop();
          this.#entries.delete(key);
        }
      },
    };
  }

  /** Informers currently running, for metrics and tests. */
  get size(): number {
    return this.#entries.size;
  }

  stopAll(): void {
    for (const e of this.#entries.values()) e.informer.stop();
    this.#entries.clear();
  }
}

/** A snapshot: one list, no watch; `synced` rejects with the API's error. */
function listOnce(client: KubeClient, spec: InformerSpec): Informer<KubernetesObject> & { stop(): void } {
  const path = namespacedPath(spec.resource, spec.namespace);
  const objects = new Map<string, KubernetesObject>();
  let synced = false;
  const query: Record<string, string> = {};
  if (spec.labelSelector) query.labelSelector = spec.labelSelector;
  if (spec.fieldSelector) query.fieldSelector = spec.fieldSelector;
  const done = client.list<KubernetesObject>(path, query).then((list) => {
    for (const obj of list.items) objects.set(objectKey(obj), obj);
    synced = true;
  });
  done.catch(() => {});
  return {
    get: (k) => objects.get(k),
    list: () => [...objects.values()],
    synced: done,
    isSynced: () => synced,
    on: () => () => {},
    stop() {},
  };
}

function startInformer(
  client: KubeClient,
  spec: InformerSpec,
  log: Logger | undefined,
): Informer<KubernetesObject> & { stop(): void } {
  const path = namespacedPath(spec.resource, spec.namespace);
  const query: Record<string, string> = {};
  if (spec.labelSelector) query.labelSelector = spec.labelSelector;
  if (spec.fieldSelector) query.fieldSelector = spec.fieldSelector;
  const listeners = new Set<InformerListener<KubernetesObject>>();
  let synced = false;
  let failures = 0;
  let stopped = false;
  let markSynced: () => void = () => {};
  const syncedPromise = new Promise<void>((resolve) => {
    markSynced = resolve;
  });
  const { ListWatch, Watch } = clientNode();
  const lw = new ListWatch<KubernetesObject>(
    path,
    new Watch(client.config),
    async () => {
      const list = await client.list<KubernetesObject>(path, query);
      // Stopped while listing: fail, so that ListWatch opens no watch nobody would close.
      if (stopped) throw new PromshardError("internal_error", "informer stopped");
      // A list that worked ends the backoff (start() resolves on failures too).
      failures = 0;
      // ListWatch applies the list after this promise settles: mark synced after that.
      setImmediate(() => {
        if (!synced) {
          synced = true;
          markSynced();
        }
      });
      return list as never;
    },
    false,
    spec.labelSelector || undefined,
    spec.fieldSelector || undefined,
  );
  const emit = (event: InformerEvent) => (obj: KubernetesObject) => {
    for (const l of listeners) l(event, obj);
  };
  lw.on("add", emit("add"));
  lw.on("update", emit("update"));
  lw.on("delete", emit("delete"));
  const restart = async () => {
    if (stopped) return;
    try {
      await lw.start();
    } catch (err) {
      onError(err);
    }
  };
  const onError = (err: unknown) => {
    if (stopped) return;
    const delay = backoffDelay(RESTART_BACKOFF, ++failures);
    log?.warn(
      {
        err,
        resource: spec.resource,
        namespace: spec.namespace,
        retryInMs: delay,
      },
      "kubernetes list/watch failed; retrying",
    );
    setTimeout(restart, delay).unref();
  };
  lw.on("error", onError);
  void restart();
  return {
    get(k) {
      const slash = k.indexOf("/");
      return slash < 0 ? lw.get(k) : lw.get(k.slice(slash + 1), k.slice(0, slash));
    },
    list: () => [...lw.list()],
    synced: syncedPromise,
    isSynced: () => synced,
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopped = true;
      void lw.stop();
    },
  };
}
