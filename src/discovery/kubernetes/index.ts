/**
 * The pure part of Prometheus 3.16's kubernetes_sd_configs: Kubernetes objects in, target
 * groups out, with exactly the `__meta_kubernetes_*` labels and group sources Prometheus
 * produces. Watching is someone else's job; what it must know to match Prometheus:
 *
 * - A group's source identifies the object (`pod/<ns>/<name>`, `svc/<ns>/<name>`,
 *   `endpoints/<ns>/<name>`, `endpointslice/<ns>/<name>`, `node/<name>`,
 *   `ingress/<ns>/<name>`); a deleted object is sent as `emptyGroup(source)`.
 * - `nodeTargetGroup` may return null: then Prometheus sends nothing.
 * - Label values may be empty: Prometheus's groups keep them; target building drops them.
 * - When Prometheus rebuilds a group: on its object's own events; pods also on events of
 *   their node (attach_metadata.node), namespace updates (attach_metadata.namespace), and
 *   their ReplicaSet/Job; services and ingresses on namespace updates; Endpoints on the
 *   events of the same-named service, phase changes of pods in `endpointsIndexKeys().pods`,
 *   node events for `.nodes`, namespace updates; EndpointSlices on events of the service in
 *   `endpointSliceIndexKeys().service`, node events for `.nodes`, namespace updates (never on
 *   pod events).
 */

import { PromshardError } from "../../errors.ts";
import { KUBERNETES_ROLES, type KubernetesRole } from "../../prom/sd/kubernetes.ts";
import type { TargetGroup } from "../../prom/targets.ts";
import { endpointsTargetGroup, sourceForEndpoints } from "./endpoints.ts";
import { endpointSliceTargetGroup, sourceForEndpointSlice } from "./endpointslice.ts";
import { ingressTargetGroup, sourceForIngress } from "./ingress.ts";
import type {
  KubeEndpointSlice,
  KubeEndpoints,
  KubeIngress,
  KubeNode,
  KubePod,
  KubernetesContext,
  KubeService,
} from "./meta.ts";
import { nodeTargetGroup, sourceForNode } from "./node.ts";
import { podTargetGroup, sourceForPod } from "./pod.ts";
import { serviceTargetGroup, sourceForService } from "./service.ts";

export * from "./endpoints.ts";
export * from "./endpointslice.ts";
export * from "./ingress.ts";
export * from "./meta.ts";
export * from "./node.ts";
export * from "./pod.ts";
export * from "./service.ts";

export interface RoleObjects {
  pod: KubePod;
  service: KubeService;
  endpoints: KubeEndpoints;
  endpointslice: KubeEndpointSlice;
  node: KubeNode;
  ingress: KubeIngress;
}

/** A role outside KubernetesRole: only reachable from a caller that bypassed the config's check. */
function unknownRole(role: never): PromshardError {
  return new PromshardError(
    "config_invalid",
    `unknown Kubernetes SD role ${String(role)}; use one of ${KUBERNETES_ROLES.join(", ")}`,
  );
}

/** The group for one object of the role; null only for a node Prometheus would not send. */
export function targetGroupFor<R extends KubernetesRole>(
  role: R,
  obj: RoleObjects[R],
  ctx: KubernetesContext = {},
): TargetGroup | null {
  switch (role) {
    case "pod":
      return podTargetGroup(obj as KubePod, ctx);
    case "service":
      return serviceTargetGroup(obj as KubeService, ctx);
    case "endpoints":
      return endpointsTargetGroup(obj as KubeEndpoints, ctx);
    case "endpointslice":
      return endpointSliceTargetGroup(obj as KubeEndpointSlice, ctx);
    case "node":
      return nodeTargetGroup(obj as KubeNode);
    case "ingress":
      return ingressTargetGroup(obj as KubeIngress, ctx);
  }
  throw unknownRole(role);
}

/** The source of the role's group for an object (namespace is ignored for nodes). */
export function sourceFor(role: KubernetesRole, namespace: string, name: string): string {
  switch (role) {
    case "pod":
      return sourceForPod(namespace, name);
    case "service":
      return sourceForService(namespace, name);
    case "endpoints":
      return sourceForEndpoints(namespace, name);
    case "endpointslice":
      return sourceForEndpointSlice(namespace, name);
    case "node":
      return sourceForNode(name);
    case "ingress":
      return sourceForIngress(namespace, name);
  }
  throw unknownRole(role);
}
