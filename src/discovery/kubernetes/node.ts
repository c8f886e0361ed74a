import { goToLower } from "../../prom/gocase.ts";
import { ADDRESS, INSTANCE } from "../../prom/labels.ts";
import type { TargetGroup } from "../../prom/targets.ts";
import {
  addObjectMetaLabels,
  formatPortInt,
  group,
  joinHostPort,
  type KubeNode,
  type LabelDraft,
  META_K8S,
  sanitizeLabelName,
} from "./meta.ts";

export const NODE_PROVIDER_ID = `${META_K8S}node_provider_id`;
const NODE_CONDITION_PREFIX = `${META_K8S}node_condition_`;
const NODE_ADDRESS_PREFIX = `${META_K8S}node_address_`;

/** The group source Prometheus uses for a node: `node/<name>`. */
export function sourceForNode(name: string): string {
  return `node/${name}`;
}

/** Address types in the order Prometheus picks the target address from. */
const ADDRESS_PRIORITY = ["InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS", "LegacyHostIP", "Hostname"];

/**
 * The target group of one node: a single target at `<address>:<kubelet port>` with
 * `instance` set to the node name and `node_address_<type>` holding the first address of
 * each type. The address is the first of the first type present in the order InternalIP,
 * InternalDNS, ExternalIP, ExternalDNS, LegacyHostIP, Hostname. Group labels: provider ID,
 * `node_condition_<type>` (lower-cased status) per condition, name, labels, annotations.
 *
 * Returns null for a node with none of those address types: Prometheus then sends nothing
 * at all, so a group sent earlier for the node stays as it was.
 */
export function nodeTargetGroup(node: KubeNode): TargetGroup | null {
  const labels: LabelDraft = { [NODE_PROVIDER_ID]: node.spec?.providerID ?? "" };
  for (const cond of node.status?.conditions ?? []) {
    const type = goToLower(cond?.type ?? "");
    labels[NODE_CONDITION_PREFIX + sanitizeLabelName(type)] = goToLower(cond?.status ?? "");
  }
  addObjectMetaLabels(labels, node.metadata, "node");

  const byType = new Map<string, string[]>();
  for (const a of node.status?.addresses ?? []) {
    const type = a?.type ?? "";
    const list = byType.get(type);
    if (list) list.push(a?.address ?? "");
    else byType.set(type, [a?.address ?? ""]);
  }
  const chosen = ADDRESS_PRIORITY.find((t) => byType.has(t));
  if (chosen === undefined) return null;

  const name = node.metadata?.name ?? "";
  const port = formatPortInt(node.status?.daemonEndpoints?.kubeletEndpoint?.Port);
  const target: LabelDraft = {
    [ADDRESS]: joinHostPort(byType.get(chosen)![0]!, port),
    [INSTANCE]: name,
  };
  for (const [type, addresses] of byType) target[sanitizeLabelName(NODE_ADDRESS_PREFIX + type)] = addresses[0]!;
  return group(sourceForNode(name), [target], labels);
}
