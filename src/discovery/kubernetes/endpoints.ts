import { ADDRESS } from "../../prom/labels.ts";
import type { TargetGroup } from "../../prom/targets.ts";
import {
  type Attach,
  addNamespaceLabels,
  addNodeLabels,
  addObjectMetaLabels,
  formatBool,
  formatPortUint,
  group,
  joinHostPort,
  type KubeEndpoints,
  type KubePod,
  type KubernetesContext,
  type LabelDraft,
  META_K8S,
  NAMESPACE_LABEL,
  resolveAttach,
} from "./meta.ts";
import {
  POD_CONTAINER_IMAGE,
  POD_CONTAINER_INIT,
  POD_CONTAINER_NAME,
  POD_CONTAINER_PORT_NAME,
  POD_CONTAINER_PORT_NUMBER,
  POD_CONTAINER_PORT_PROTOCOL,
  podContainers,
  podLabels,
} from "./pod.ts";
import { serviceLabels } from "./service.ts";

export const ENDPOINT_NODE_NAME = `${META_K8S}endpoint_node_name`;
export const ENDPOINT_HOSTNAME = `${META_K8S}endpoint_hostname`;
export const ENDPOINT_READY = `${META_K8S}endpoint_ready`;
export const ENDPOINT_PORT_NAME = `${META_K8S}endpoint_port_name`;
export const ENDPOINT_PORT_PROTOCOL = `${META_K8S}endpoint_port_protocol`;
export const ENDPOINT_ADDRESS_TARGET_KIND = `${META_K8S}endpoint_address_target_kind`;
export const ENDPOINT_ADDRESS_TARGET_NAME = `${META_K8S}endpoint_address_target_name`;

/** The group source Prometheus uses for an Endpoints object: `endpoints/<namespace>/<name>`. */
export function sourceForEndpoints(namespace: string, name: string): string {
  return `endpoints/${namespace}/${name}`;
}

type Subset = NonNullable<NonNullable<KubeEndpoints["subsets"]>[number]>;
type Address = NonNullable<NonNullable<Subset["addresses"]>[number]>;
type Port = NonNullable<NonNullable<Subset["ports"]>[number]>;
type ObjectRef = Address["targetRef"];

/** The pod an address points at (targetRef kind Pod), from the pod lookup. */
export function resolvePodRef(ref: ObjectRef, ctx: KubernetesContext): KubePod | undefined {
  if (ref?.kind !== "Pod" || !ctx.pod) return undefined;
  return ctx.pod(ref.namespace ?? "", ref.name ?? "");
}

/** The pods behind a group's targets, each with the endpoint port numbers that covered its container ports. */
export type SeenPods = Map<string, { pod: KubePod; ports: (number | undefined)[] }>;

/**
 * Adds a target whose address may point at a pod (`ref`), as both endpoint roles do: a known
 * pod adds its labels and, from the last container (regular then init) with a port of
 * `portNumber`, the container labels, and is remembered in `seen`. The container port
 * protocol label holds `protocol`, or the container port's own when it is undefined.
 */
export function addPodTarget(
  target: LabelDraft,
  ref: ObjectRef,
  port: { readonly portNumber: number | undefined; readonly protocol: string | undefined },
  ctx: KubernetesContext,
  attach: Attach,
  seen: SeenPods,
  targets: LabelDraft[],
): void {
  const pod = resolvePodRef(ref, ctx);
  if (!pod) {
    targets.push(target);
    return;
  }
  const key = `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
  let entry = seen.get(key);
  if (!entry) {
    entry = { pod, ports: [] };
    seen.set(key, entry);
  }
  Object.assign(target, podLabels(pod, attach));
  const { portNumber } = port;
  if (portNumber !== undefined) {
    // The first matching port of each container; a later container overrides an earlier one.
    for (const { container: c, init } of podContainers(pod)) {
      for (const cport of c.ports ?? []) {
        if (portNumber !== (cport?.containerPort ?? 0)) continue;
        target[POD_CONTAINER_NAME] = c.name ?? "";
        target[POD_CONTAINER_IMAGE] = c.image ?? "";
        target[POD_CONTAINER_PORT_NAME] = cport?.name ?? "";
        target[POD_CONTAINER_PORT_NUMBER] = formatPortUint(portNumber);
        target[POD_CONTAINER_PORT_PROTOCOL] = port.protocol ?? cport?.protocol ?? "";
        target[POD_CONTAINER_INIT] = formatBool(init);
        break;
      }
    }
  }
  entry.ports.push(portNumber);
  targets.push(target);
}

/**
 * Targets for the container ports of the pods seen behind addresses that no endpoint port
 * covered (by number), each with the pod labels; pods without an IP are skipped. Prometheus
 * walks its pods map in random order; this uses the order the pods were first seen.
 */
export function extraPodTargets(seen: SeenPods, attach: Attach): LabelDraft[] {
  const out: LabelDraft[] = [];
  for (const { pod, ports } of seen.values()) {
    const podIP = pod.status?.podIP ?? "";
    if (podIP === "") continue;
    for (const { container: c, init } of podContainers(pod)) {
      for (const cport of c.ports ?? []) {
        const number = cport?.containerPort ?? 0;
        if (ports.some((p) => p !== undefined && p === number)) continue;
        const port = formatPortUint(number);
        out.push({
          [ADDRESS]: joinHostPort(podIP, port),
          [POD_CONTAINER_NAME]: c.name ?? "",
          [POD_CONTAINER_IMAGE]: c.image ?? "",
          [POD_CONTAINER_PORT_NAME]: cport?.name ?? "",
          [POD_CONTAINER_PORT_NUMBER]: port,
          [POD_CONTAINER_PORT_PROTOCOL]: cport?.protocol ?? "",
          [POD_CONTAINER_INIT]: formatBool(init),
          ...podLabels(pod, attach),
        });
      }
    }
  }
  return out;
}

/**
 * The target group of one Endpoints object, as Prometheus's endpoints role builds it.
 *
 * Group labels: namespace, the endpoints' name/labels/annotations, and when the service of
 * the same name is known its name/labels/annotations (`serviceLabels`); with
 * attach_metadata.namespace the namespace's labels and annotations.
 *
 * Targets: per subset, per port, one target per ready address (`endpoint_ready="true"`),
 * then one per not-ready address (`"false"`) — an address in both lists yields two targets.
 * A target whose address points at a known pod gets the pod labels and, from the last
 * container (regular then init) with a port of the endpoint port's number, the container
 * labels; the container port protocol label holds the *endpoint* port's protocol. With
 * attach_metadata.node, the node of `nodeName` (or of a Node targetRef) adds node labels.
 * Then every container port of those pods not covered by an endpoint port becomes a target.
 */
export function endpointsTargetGroup(ep: KubeEndpoints, ctx: KubernetesContext = {}): TargetGroup {
  const namespace = ep.metadata?.namespace ?? "";
  const name = ep.metadata?.name ?? "";
  const attach = resolveAttach(ctx, { node: true, pod: true });

  const labels: LabelDraft = { [NAMESPACE_LABEL]: namespace };
  const svc = ctx.service?.(namespace, name);
  if (svc) Object.assign(labels, serviceLabels(svc));
  addObjectMetaLabels(labels, ep.metadata, "endpoints");
  addNamespaceLabels(labels, attach, namespace);

  const targets: LabelDraft[] = [];
  const seen: SeenPods = new Map();

  const add = (addr: Address, port: Port, ready: string) => {
    const portNumber = port.port ?? 0;
    const target: LabelDraft = {
      [ADDRESS]: joinHostPort(addr.ip ?? "", formatPortUint(portNumber)),
      [ENDPOINT_PORT_NAME]: port.name ?? "",
      [ENDPOINT_PORT_PROTOCOL]: port.protocol ?? "",
      [ENDPOINT_READY]: ready,
    };
    const ref = addr.targetRef;
    if (ref) {
      target[ENDPOINT_ADDRESS_TARGET_KIND] = ref.kind ?? "";
      target[ENDPOINT_ADDRESS_TARGET_NAME] = ref.name ?? "";
    }
    if (addr.nodeName !== null && addr.nodeName !== undefined) target[ENDPOINT_NODE_NAME] = addr.nodeName;
    if ((addr.hostname ?? "") !== "") target[ENDPOINT_HOSTNAME] = addr.hostname ?? "";

    if (addr.nodeName !== null && addr.nodeName !== undefined) addNodeLabels(target, attach, addr.nodeName);
    else if (ref && ref.kind === "Node") addNodeLabels(target, attach, ref.name ?? "");

    addPodTarget(target, ref, { portNumber, protocol: port.protocol ?? "" }, ctx, attach, seen, targets);
  };

  for (const ss of ep.subsets ?? []) {
    if (!ss) continue;
    for (const port of ss.ports ?? []) {
      for (const addr of ss.addresses ?? []) add(addr ?? {}, port ?? {}, "true");
      for (const addr of ss.notReadyAddresses ?? []) add(addr ?? {}, port ?? {}, "false");
    }
  }
  targets.push(...extraPodTargets(seen, attach));
  return group(sourceForEndpoints(namespace, name), targets, labels);
}

/**
 * Prometheus's endpoints indexes, which decide which Endpoints it rebuilds on other
 * objects' events: `pods` (namespace/name of Pod targetRefs of ready addresses; rebuilt
 * when such a pod's phase changes) and `nodes` (with attach_metadata.node: nodeName of
 * Pod-targeted ready addresses and names of Node targetRefs; rebuilt on node events).
 * Addresses without a targetRef are in neither.
 */
export function endpointsIndexKeys(ep: KubeEndpoints): { pods: string[]; nodes: string[] } {
  const pods: string[] = [];
  const nodes: string[] = [];
  for (const ss of ep.subsets ?? []) {
    for (const addr of ss?.addresses ?? []) {
      const ref = addr?.targetRef;
      if (!ref) continue;
      if (ref.kind === "Pod") {
        pods.push(`${ref.namespace ?? ""}/${ref.name ?? ""}`);
        if (addr.nodeName !== null && addr.nodeName !== undefined) nodes.push(addr.nodeName);
      } else if (ref.kind === "Node") {
        nodes.push(ref.name ?? "");
      }
    }
  }
  return { pods, nodes };
}
