import { ADDRESS } from "../../prom/labels.ts";
import type { TargetGroup } from "../../prom/targets.ts";
import {
  addNamespaceLabels,
  addObjectMetaLabels,
  group,
  type KubeIngress,
  type KubernetesContext,
  type LabelDraft,
  META_K8S,
  NAMESPACE_LABEL,
  resolveAttach,
} from "./meta.ts";

export const INGRESS_SCHEME = `${META_K8S}ingress_scheme`;
export const INGRESS_HOST = `${META_K8S}ingress_host`;
export const INGRESS_PATH = `${META_K8S}ingress_path`;
export const INGRESS_CLASS_NAME = `${META_K8S}ingress_class_name`;

/** The group source Prometheus uses for an ingress: `ingress/<namespace>/<name>`. */
export function sourceForIngress(namespace: string, name: string): string {
  return `ingress/${namespace}/${name}`;
}

/** A TLS host entry matches a rule host when equal, or as `*.rest` when the rest matches label by label. */
export function matchesHostnamePattern(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  const p = pattern.split(".");
  const h = host.split(".");
  if (p[0] !== "*" || p.length !== h.length) return false;
  for (let i = 1; i < p.length; i++) if (p[i] !== h[i]) return false;
  return true;
}

/**
 * The target group of one ingress: per rule, one target per HTTP path (a rule without an
 * `http` block counts as the single path "/", an `http` block with no paths as none; an
 * empty path is "/"), addressed at the rule's host (no port; possibly empty). The scheme is
 * https when any TLS host matches the rule host, else http. Group labels: namespace,
 * ingress class name (when spec.ingressClassName is set), name, labels, annotations.
 */
export function ingressTargetGroup(ing: KubeIngress, ctx: KubernetesContext = {}): TargetGroup {
  const namespace = ing.metadata?.namespace ?? "";
  const labels: LabelDraft = { [NAMESPACE_LABEL]: namespace };
  const cls = ing.spec?.ingressClassName;
  if (cls !== null && cls !== undefined) labels[INGRESS_CLASS_NAME] = cls;
  addObjectMetaLabels(labels, ing.metadata, "ingress");
  addNamespaceLabels(labels, resolveAttach(ctx, {}), namespace);

  const tlsHosts: string[] = [];
  for (const tls of ing.spec?.tls ?? []) for (const h of tls?.hosts ?? []) tlsHosts.push(h ?? "");

  const targets: LabelDraft[] = [];
  for (const rule of ing.spec?.rules ?? []) {
    const host = rule?.host ?? "";
    const http = rule?.http;
    const paths = http ? (http.paths ?? []).map((p) => p?.path || "/") : ["/"];
    const scheme = tlsHosts.some((pattern) => matchesHostnamePattern(pattern, host)) ? "https" : "http";
    for (const path of paths) {
      targets.push({ [ADDRESS]: host, [INGRESS_SCHEME]: scheme, [INGRESS_HOST]: host, [INGRESS_PATH]: path });
    }
  }
  return group(sourceForIngress(namespace, ing.metadata?.name ?? ""), targets, labels);
}
