import { ADDRESS } from "../../prom/labels.ts";
import type { TargetGroup } from "../../prom/targets.ts";
import { addPodTarget, extraPodTargets, type SeenPods } from "./endpoints.ts";
import {
  addNamespaceLabels,
  addNodeLabels,
  addObjectMetaLabels,
  formatBool,
  formatPortUint,
  group,
  joinHostPort,
  type KubeEndpointSlice,
  type KubernetesContext,
  type KubeService,
  type LabelDraft,
  META_K8S,
  NAMESPACE_LABEL,
  PRESENT,
  resolveAttach,
  sanitizeLabelName,
} from "./meta.ts";
import { serviceLabels } from "./service.ts";

const ES = `${META_K8S}endpointslice_`;
export const ENDPOINTSLICE_ADDRESS_TYPE = `${ES}address_type`;
export const ENDPOINTSLICE_PORT_NAME = `${ES}port_name`;
export const ENDPOINTSLICE_PORT_PROTOCOL = `${ES}port_protocol`;
export const ENDPOINTSLICE_PORT = `${ES}port`;
export const ENDPOINTSLICE_PORT_APP_PROTOCOL = `${ES}port_app_protocol`;
export const ENDPOINTSLICE_CONDITIONS_READY = `${ES}endpoint_conditions_ready`;
export const ENDPOINTSLICE_CONDITIONS_SERVING = `${ES}endpoint_conditions_serving`;
export const ENDPOINTSLICE_CONDITIONS_TERMINATING = `${ES}endpoint_conditions_terminating`;
export const ENDPOINTSLICE_ZONE = `${ES}endpoint_zone`;
export const ENDPOINTSLICE_HOSTNAME = `${ES}endpoint_hostname`;
export const ENDPOINTSLICE_NODE_NAME = `${ES}endpoint_node_name`;
export const ENDPOINTSLICE_ADDRESS_TARGET_KIND = `${ES}address_target_kind`;
export const ENDPOINTSLICE_ADDRESS_TARGET_NAME = `${ES}address_target_name`;
const TOPOLOGY_PREFIX = `${ES}endpoint_topology_`;
const TOPOLOGY_PRESENT_PREFIX = `${ES}endpoint_topology_present_`;

/** The label naming an EndpointSlice's service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** The group source Prometheus uses for an EndpointSlice: `endpointslice/<namespace>/<name>`. */
export function sourceForEndpointSlice(namespace: string, name: string): string {
  return `endpointslice/${namespace}/${name}`;
}

/**
 * Whether the slice is the secondary-family slice of a dual-stack service (policy
 * PreferDualStack or RequireDualStack, address type not the first of ipFamilies):
 * Prometheus 3.16 gives such a slice no targets, as they would repeat the primary's.
 */
function nonPrimaryIPFamilySlice(svc: KubeService | undefined, slice: KubeEndpointSlice): boolean {
  const policy = svc?.spec?.ipFamilyPolicy;
  if (policy !== "PreferDualStack" && policy !== "RequireDualStack") return false;
  const families = svc?.spec?.ipFamilies ?? [];
  if (families.length === 0) return false;
  return (slice.addressType ?? "") !== (families[0] ?? "");
}

type Endpoint = NonNullable<NonNullable<KubeEndpointSlice["endpoints"]>[number]>;
type Port = NonNullable<NonNullable<KubeEndpointSlice["ports"]>[number]>;

const present = <T>(v: T | null | undefined): v is T => v !== null && v !== undefined;

/**
 * The target group of one EndpointSlice, as Prometheus's endpointslice role builds it.
 *
 * Group labels: namespace, address type, the slice's name/labels/annotations, the labels of
 * the service named by its `kubernetes.io/service-name` label when known, and with
 * attach_metadata.namespace the namespace's labels and annotations.
 *
 * Targets: per endpoint, per port, per address; `<address>:<port>`, or the bare address for a
 * port without a number. Pointer fields (port name, protocol, app protocol, conditions,
 * hostname, node name, zone) yield labels only when set. Pod-backed targets get the pod
 * and container labels (the container port protocol label holds the *container* port's
 * protocol here), and the uncovered container ports of those pods become extra targets.
 */
export function endpointSliceTargetGroup(slice: KubeEndpointSlice, ctx: KubernetesContext = {}): TargetGroup {
  const namespace = slice.metadata?.namespace ?? "";
  const source = sourceForEndpointSlice(namespace, slice.metadata?.name ?? "");
  const attach = resolveAttach(ctx, { node: true, pod: true });

  const labels: LabelDraft = {
    [NAMESPACE_LABEL]: namespace,
    [ENDPOINTSLICE_ADDRESS_TYPE]: slice.addressType ?? "",
  };
  addObjectMetaLabels(labels, slice.metadata, "endpointslice");
  const serviceName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  const svc = present(serviceName) ? ctx.service?.(namespace, serviceName) : undefined;
  if (svc) Object.assign(labels, serviceLabels(svc));
  addNamespaceLabels(labels, attach, namespace);

  if (nonPrimaryIPFamilySlice(svc, slice)) return group(source, [], labels);

  const targets: LabelDraft[] = [];
  const seen: SeenPods = new Map();

  const add = (addr: string, ep: Endpoint, port: Port) => {
    const portNumber = present(port.port) ? port.port : undefined;
    const target: LabelDraft = {
      [ADDRESS]: portNumber === undefined ? addr : joinHostPort(addr, formatPortUint(portNumber)),
    };
    if (present(port.name)) target[ENDPOINTSLICE_PORT_NAME] = port.name;
    if (present(port.protocol)) target[ENDPOINTSLICE_PORT_PROTOCOL] = port.protocol;
    if (portNumber !== undefined) target[ENDPOINTSLICE_PORT] = formatPortUint(portNumber);
    if (present(port.appProtocol)) target[ENDPOINTSLICE_PORT_APP_PROTOCOL] = port.appProtocol;
    const cond = ep.conditions;
    if (present(cond?.ready)) target[ENDPOINTSLICE_CONDITIONS_READY] = formatBool(cond.ready);
    if (present(cond?.serving)) target[ENDPOINTSLICE_CONDITIONS_SERVING] = formatBool(cond.serving);
    if (present(cond?.terminating)) target[ENDPOINTSLICE_CONDITIONS_TERMINATING] = formatBool(cond.terminating);
    if (present(ep.hostname)) target[ENDPOINTSLICE_HOSTNAME] = ep.hostname;
    const ref = ep.targetRef;
    if (ref) {
      target[ENDPOINTSLICE_ADDRESS_TARGET_KIND] = ref.kind ?? "";
      target[ENDPOINTSLICE_ADDRESS_TARGET_NAME] = ref.name ?? "";
    }
    if (present(ep.nodeName)) target[ENDPOINTSLICE_NODE_NAME] = ep.nodeName;
    if (present(ep.zone)) target[ENDPOINTSLICE_ZONE] = ep.zone;
    const topology = ep.deprecatedTopology ?? {};
    for (const k of Object.keys(topology).sort()) {
      const ln = sanitizeLabelName(k);
      target[TOPOLOGY_PREFIX + ln] = topology[k] ?? "";
      target[TOPOLOGY_PRESENT_PREFIX + ln] = PRESENT;
    }

    if (ref && ref.kind === "Node") addNodeLabels(target, attach, ref.name ?? "");
    else addNodeLabels(target, attach, ep.nodeName);

    addPodTarget(target, ref, { portNumber, protocol: undefined }, ctx, attach, seen, targets);
  };

  for (const ep of slice.endpoints ?? []) {
    for (const port of slice.ports ?? []) {
      for (const addr of ep?.addresses ?? []) add(addr ?? "", ep ?? {}, port ?? {});
    }
  }
  targets.push(...extraPodTargets(seen, attach));
  return group(source, targets, labels);
}

/**
 * Prometheus's endpointslice indexes: `service` (namespace/name from the service-name
 * label; the slice is rebuilt on that service's events) and `nodes` (with
 * attach_metadata.node: nodeName of Pod-targeted endpoints and names of Node targetRefs).
 * The endpointslice role is not rebuilt on pod events.
 */
export function endpointSliceIndexKeys(slice: KubeEndpointSlice): { service: string | undefined; nodes: string[] } {
  const name = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  const nodes: string[] = [];
  for (const ep of slice.endpoints ?? []) {
    const ref = ep?.targetRef;
    if (!ref) continue;
    if (ref.kind === "Pod") {
      if (present(ep.nodeName)) nodes.push(ep.nodeName);
    } else if (ref.kind === "Node") nodes.push(ref.name ?? "");
  }
  return { service: present(name) ? `${slice.metadata?.namespace ?? ""}/${name}` : undefined, nodes };
}
