import { ADDRESS } from "../../prom/labels.ts";
import type { TargetGroup } from "../../prom/targets.ts";
import {
  addNamespaceLabels,
  addObjectMetaLabels,
  formatPortInt,
  group,
  joinHostPort,
  type KubernetesContext,
  type KubeService,
  type LabelDraft,
  META_K8S,
  NAMESPACE_LABEL,
  resolveAttach,
} from "./meta.ts";

export const SERVICE_PORT_NAME = `${META_K8S}service_port_name`;
export const SERVICE_PORT_NUMBER = `${META_K8S}service_port_number`;
export const SERVICE_PORT_PROTOCOL = `${META_K8S}service_port_protocol`;
export const SERVICE_CLUSTER_IP = `${META_K8S}service_cluster_ip`;
export const SERVICE_LOADBALANCER_IP = `${META_K8S}service_loadbalancer_ip`;
export const SERVICE_EXTERNAL_NAME = `${META_K8S}service_external_name`;
export const SERVICE_TYPE = `${META_K8S}service_type`;

/** The group source Prometheus uses for a service: `svc/<namespace>/<name>` (not "service/"). */
export function sourceForService(namespace: string, name: string): string {
  return `svc/${namespace}/${name}`;
}

/**
 * Namespace, service name, labels and annotations: the service labels, which the endpoints
 * and endpointslice roles attach to their groups too (ports, type and IPs they do not).
 */
export function serviceLabels(svc: KubeService): LabelDraft {
  const ls: LabelDraft = { [NAMESPACE_LABEL]: svc.metadata?.namespace ?? "" };
  addObjectMetaLabels(ls, svc.metadata, "service");
  return ls;
}

/** Status ingress IPs joined by commas; the deprecated spec.loadBalancerIP without any. */
function loadBalancerIPs(svc: KubeService): string {
  const ips: string[] = [];
  for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
    const ip = ing?.ip ?? "";
    if (ip !== "") ips.push(ip);
  }
  return ips.length > 0 ? ips.join(",") : (svc.spec?.loadBalancerIP ?? "");
}

/**
 * The target group of one service: one target per service port, addressed
 * `<name>.<namespace>.svc:<port>`. ExternalName services carry the external name instead of
 * the cluster IP; LoadBalancer services also carry the load balancer IPs.
 */
export function serviceTargetGroup(svc: KubeService, ctx: KubernetesContext = {}): TargetGroup {
  const namespace = svc.metadata?.namespace ?? "";
  const name = svc.metadata?.name ?? "";
  const labels = serviceLabels(svc);
  addNamespaceLabels(labels, resolveAttach(ctx, {}), namespace);

  const type = svc.spec?.type ?? "";
  const targets: LabelDraft[] = [];
  for (const p of svc.spec?.ports ?? []) {
    const port = formatPortInt(p?.port);
    const t: LabelDraft = {
      [ADDRESS]: joinHostPort(`${name}.${namespace}.svc`, port),
      [SERVICE_PORT_NAME]: p?.name ?? "",
      [SERVICE_PORT_NUMBER]: port,
      [SERVICE_PORT_PROTOCOL]: p?.protocol ?? "",
      [SERVICE_TYPE]: type,
    };
    if (type === "ExternalName") t[SERVICE_EXTERNAL_NAME] = svc.spec?.externalName ?? "";
    else t[SERVICE_CLUSTER_IP] = svc.spec?.clusterIP ?? "";
    if (type === "LoadBalancer") t[SERVICE_LOADBALANCER_IP] = loadBalancerIPs(svc);
    targets.push(t);
  }
  return group(sourceForService(namespace, name), targets, labels);
}
