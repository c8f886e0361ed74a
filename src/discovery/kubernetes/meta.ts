import type {
  V1EndpointSlice,
  V1Endpoints,
  V1Ingress,
  V1Job,
  V1Namespace,
  V1Node,
  V1ObjectMeta,
  V1OwnerReference,
  V1Pod,
  V1ReplicaSet,
  V1Service,
} from "@kubernetes/client-node";
import { PromshardError } from "../../errors.ts";
import { type Labels, sortLabels } from "../../prom/labels.ts";
import type { AttachMetadata } from "../../prom/sd/kubernetes.ts";
import type { TargetGroup } from "../../prom/targets.ts";

/**
 * Kubernetes objects as the builders read them: the `@kubernetes/client-node` types with
 * every field optional and nullable, because objects arrive as decoded JSON and Prometheus
 * (Go) reads a missing field as its zero value. Real client objects fit these types as they are.
 */
export type Loose<T> = T extends Date
  ? T
  : T extends readonly (infer U)[]
    ? readonly Loose<U>[]
    : T extends object
      ? { [K in keyof T]?: Loose<T[K]> | null }
      : T;

export type KubePod = Loose<V1Pod>;
export type KubeService = Loose<V1Service>;
export type KubeEndpoints = Loose<V1Endpoints>;
export type KubeEndpointSlice = Loose<V1EndpointSlice>;
export type KubeNode = Loose<V1Node>;
export type KubeIngress = Loose<V1Ingress>;
export type KubeNamespace = Loose<V1Namespace>;
export type KubeReplicaSet = Loose<V1ReplicaSet>;
export type KubeJob = Loose<V1Job>;
export type KubeObjectMeta = Loose<V1ObjectMeta>;
export type KubeOwnerReference = Loose<V1OwnerReference>;

/**
 * What a builder may look up besides the object it builds from: the informer stores of
 * Prometheus. Each lookup must answer from the same (selector-filtered) set of objects
 * Prometheus would watch: pods and services with the `pod`/`service` selectors of the
 * config, nodes with the `node` selector, namespaces, ReplicaSets and Jobs unfiltered.
 * A lookup that finds nothing returns undefined.
 */
export interface KubernetesLookups {
  /**
   * Pods by namespace and name (endpoints, endpointslice roles); absent means none known.
   * Prometheus watches pods in the config's namespaces only, so a targetRef into another
   * namespace (or with an empty namespace) must find nothing.
   */
  readonly pod?: (namespace: string, name: string) => KubePod | undefined;
  /** Services by namespace and name (endpoints, endpointslice roles); absent means none known. */
  readonly service?: (namespace: string, name: string) => KubeService | undefined;
  /** Nodes by name; required with `attachMetadata.node`. */
  readonly node?: (name: string) => KubeNode | undefined;
  /** Namespaces by name; required with `attachMetadata.namespace`. */
  readonly namespace?: (name: string) => KubeNamespace | undefined;
  /** ReplicaSets by namespace and name; required with `attachMetadata.deployment`. */
  readonly replicaSet?: (namespace: string, name: string) => KubeReplicaSet | undefined;
  /** Jobs by namespace and name; required with `attachMetadata.cronjob`. */
  readonly job?: (namespace: string, name: string) => KubeJob | undefined;
}

export interface KubernetesContext extends KubernetesLookups {
  /** The config's `attach_metadata`; absent fields are false. */
  readonly attachMetadata?: Partial<AttachMetadata>;
}

export const META_K8S = "__meta_kubernetes_";
export const NAMESPACE_LABEL = `${META_K8S}namespace`;
export const PRESENT = "true";

/** Mutable label set under construction; frozen and sorted by `finish`. */
export type LabelDraft = Record<string, string>;

/** strutil.SanitizeLabelName: every character outside `[a-zA-Z0-9_]` (per code point) becomes `_`. */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/gu, "_");
}

/** net.JoinHostPort: brackets a host that contains a colon. */
export function joinHostPort(host: string, port: string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** strconv.FormatUint(uint64(int32)): what Prometheus does with pod and endpoint port numbers. */
export function formatPortUint(port: number | null | undefined): string {
  const n = Math.trunc(port ?? 0);
  return n >= 0 ? String(n) : BigInt.asUintN(64, BigInt(n)).toString();
}

/** strconv.FormatInt(int64(int32)): service ports and the kubelet port. */
export function formatPortInt(port: number | null | undefined): string {
  return String(Math.trunc(port ?? 0));
}

/** Go's strconv.FormatBool. */
export function formatBool(b: boolean): string {
  return b ? "true" : "false";
}

/**
 * `<role>_label_<name>`, `<role>_labelpresent_<name>`, `<role>_annotation_<name>` and
 * `<role>_annotationpresent_<name>` for every label and annotation. Two keys that sanitize
 * alike collide; Prometheus keeps whichever its map iteration visits last (random), this
 * keeps the one last in byte order of the original keys.
 */
export function addLabelsAndAnnotations(ls: LabelDraft, meta: KubeObjectMeta | null | undefined, resource: string) {
  const add = (map: Readonly<Record<string, string | null | undefined>> | null | undefined, kind: string) => {
    if (!map) return;
    for (const k of Object.keys(map).sort()) {
      const ln = sanitizeLabelName(k);
      ls[`${META_K8S}${resource}_${kind}_${ln}`] = map[k] ?? "";
      ls[`${META_K8S}${resource}_${kind}present_${ln}`] = PRESENT;
    }
  };
  add(meta?.labels, "label");
  add(meta?.annotations, "annotation");
}

/** `<role>_name` plus the object's labels and annotations (addObjectMetaLabels). */
export function addObjectMetaLabels(ls: LabelDraft, meta: KubeObjectMeta | null | undefined, resource: string) {
  ls[`${META_K8S}${resource}_name`] = meta?.name ?? "";
  addLabelsAndAnnotations(ls, meta, resource);
}

/** Which metadata a context attaches, with the lookups each one needs checked. */
export interface Attach {
  readonly node: ((name: string) => KubeNode | undefined) | undefined;
  readonly namespace: ((name: string) => KubeNamespace | undefined) | undefined;
  readonly replicaSet: ((namespace: string, name: string) => KubeReplicaSet | undefined) | undefined;
  readonly job: boolean;
  readonly cronJob: ((namespace: string, name: string) => KubeJob | undefined) | undefined;
}

function needs<F>(
  enabled: boolean | undefined,
  lookup: F | undefined,
  what: string,
  lookupName: string,
): F | undefined {
  if (!enabled) return undefined;
  if (!lookup) {
    throw new PromshardError(
      "discovery_failed",
      `attach_metadata.${what} is on but the context has no ${lookupName} lookup`,
    );
  }
  return lookup;
}

/**
 * Resolves `attachMetadata` against the lookups. Prometheus only consults the stores of
 * the informers it runs, which exist exactly when the option is on; so must we.
 */
export function resolveAttach(ctx: KubernetesContext, roles: { node?: boolean; pod?: boolean }): Attach {
  const a = ctx.attachMetadata ?? {};
  return {
    node: roles.node ? needs(a.node, ctx.node, "node", "node") : undefined,
    namespace: needs(a.namespace, ctx.namespace, "namespace", "namespace"),
    replicaSet: roles.pod ? needs(a.deployment, ctx.replicaSet, "deployment", "replicaSet") : undefined,
    job: roles.pod ? a.job === true : false,
    cronJob: roles.pod ? needs(a.cronjob, ctx.job, "cronjob", "job") : undefined,
  };
}

/** addNodeLabels: the node's name, labels and annotations, when the node is known. */
export function addNodeLabels(ls: LabelDraft, attach: Attach, nodeName: string | null | undefined): void {
  if (!attach.node || nodeName === null || nodeName === undefined) return;
  const node = attach.node(nodeName);
  if (node) addObjectMetaLabels(ls, node.metadata, "node");
}

/** addNamespaceLabels: the namespace's labels and annotations (not its name), when known. */
export function addNamespaceLabels(ls: LabelDraft, attach: Attach, namespace: string): void {
  if (!attach.namespace) return;
  const ns = attach.namespace(namespace);
  if (ns) addLabelsAndAnnotations(ls, ns.metadata, "namespace");
}

/** metav1.GetControllerOf: the first owner reference with `controller: true`. */
export function controllerOf(meta: KubeObjectMeta | null | undefined): KubeOwnerReference | undefined {
  for (const ref of meta?.ownerReferences ?? []) {
    if (ref?.controller === true) return ref;
  }
  return undefined;
}

export function finish(ls: LabelDraft): Labels {
  return sortLabels(ls);
}

export function group(source: string, targets: LabelDraft[], labels: LabelDraft): TargetGroup {
  return Object.freeze({
    source,
    targets: Object.freeze(targets.map(finish)),
    labels: finish(labels),
  });
}

/** What Prometheus sends for a deleted object, or one it cannot target: no targets, no labels. */
export function emptyGroup(source: string): TargetGroup {
  return Object.freeze({ source, targets: Object.freeze([]), labels: Object.freeze({}) });
}
