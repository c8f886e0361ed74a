import { goToLower } from "../../prom/gocase.ts";
import { ADDRESS } from "../../prom/labels.ts";
import type { TargetGroup } from "../../prom/targets.ts";
import {
  type Attach,
  addNamespaceLabels,
  addNodeLabels,
  addObjectMetaLabels,
  controllerOf,
  emptyGroup,
  formatBool,
  formatPortUint,
  group,
  joinHostPort,
  type KubePod,
  type KubernetesContext,
  type LabelDraft,
  META_K8S,
  NAMESPACE_LABEL,
  resolveAttach,
} from "./meta.ts";

export const POD_IP = `${META_K8S}pod_ip`;
export const POD_CONTAINER_NAME = `${META_K8S}pod_container_name`;
export const POD_CONTAINER_ID = `${META_K8S}pod_container_id`;
export const POD_CONTAINER_IMAGE = `${META_K8S}pod_container_image`;
export const POD_CONTAINER_PORT_NAME = `${META_K8S}pod_container_port_name`;
export const POD_CONTAINER_PORT_NUMBER = `${META_K8S}pod_container_port_number`;
export const POD_CONTAINER_PORT_PROTOCOL = `${META_K8S}pod_container_port_protocol`;
export const POD_CONTAINER_INIT = `${META_K8S}pod_container_init`;
export const POD_READY = `${META_K8S}pod_ready`;
export const POD_PHASE = `${META_K8S}pod_phase`;
export const POD_NODE_NAME = `${META_K8S}pod_node_name`;
export const POD_HOST_IP = `${META_K8S}pod_host_ip`;
export const POD_UID = `${META_K8S}pod_uid`;
export const POD_CONTROLLER_KIND = `${META_K8S}pod_controller_kind`;
export const POD_CONTROLLER_NAME = `${META_K8S}pod_controller_name`;
export const POD_DEPLOYMENT_NAME = `${META_K8S}pod_deployment_name`;
export const POD_JOB_NAME = `${META_K8S}pod_job_name`;
export const POD_CRONJOB_NAME = `${META_K8S}pod_cronjob_name`;

/** The group source Prometheus uses for a pod: `pod/<namespace>/<name>`. */
export function sourceForPod(namespace: string, name: string): string {
  return `pod/${namespace}/${name}`;
}

type Container = NonNullable<NonNullable<NonNullable<KubePod["spec"]>["containers"]>[number]>;

/** Regular containers, then init containers, each with whether it is an init container. */
export function podContainers(pod: KubePod): { container: Container; init: boolean }[] {
  const out: { container: Container; init: boolean }[] = [];
  for (const c of pod.spec?.containers ?? []) out.push({ container: c ?? {}, init: false });
  for (const c of pod.spec?.initContainers ?? []) out.push({ container: c ?? {}, init: true });
  return out;
}

/** `pod_ready`: the Ready condition's status in lower case, "unknown" without one. */
function podReady(pod: KubePod): string {
  for (const cond of pod.status?.conditions ?? []) {
    if (cond?.type === "Ready") return goToLower(cond.status ?? "");
  }
  return "unknown";
}

/**
 * The pod labels shared by the pod, endpoints and endpointslice roles (Prometheus's
 * podLabels): IP, ready, phase, node, host IP, UID, name, labels, annotations, the
 * controller, and with attach_metadata the deployment, job and cronjob names.
 */
export function podLabels(pod: KubePod, attach: Attach): LabelDraft {
  const ls: LabelDraft = {
    [POD_IP]: pod.status?.podIP ?? "",
    [POD_READY]: podReady(pod),
    [POD_PHASE]: pod.status?.phase ?? "",
    [POD_NODE_NAME]: pod.spec?.nodeName ?? "",
    [POD_HOST_IP]: pod.status?.hostIP ?? "",
    [POD_UID]: pod.metadata?.uid ?? "",
  };
  addObjectMetaLabels(ls, pod.metadata, "pod");

  const owner = controllerOf(pod.metadata);
  if (owner) {
    const kind = owner.kind ?? "";
    const name = owner.name ?? "";
    if (kind !== "") ls[POD_CONTROLLER_KIND] = kind;
    if (name !== "") ls[POD_CONTROLLER_NAME] = name;
    const namespace = pod.metadata?.namespace ?? "";
    if (kind === "ReplicaSet" && attach.replicaSet) {
      const rsOwner = controllerOf(attach.replicaSet(namespace, name)?.metadata);
      if (rsOwner?.kind === "Deployment") ls[POD_DEPLOYMENT_NAME] = rsOwner.name ?? "";
    } else if (kind === "Job") {
      if (attach.job) ls[POD_JOB_NAME] = name;
      if (attach.cronJob) {
        const jobOwner = controllerOf(attach.cronJob(namespace, name)?.metadata);
        if (jobOwner?.kind === "CronJob") ls[POD_CRONJOB_NAME] = jobOwner.name ?? "";
      }
    }
  }
  return ls;
}

function containerId(pod: KubePod, name: string, init: boolean): string {
  const statuses = (init ? pod.status?.initContainerStatuses : pod.status?.containerStatuses) ?? [];
  for (const s of statuses) if ((s?.name ?? "") === name) return s?.containerID ?? "";
  return "";
}

/**
 * The target group of one pod, as Prometheus's pod role builds it: one target per
 * container port (`<podIP>:<port>`), one port-less target (`<podIP>`) per container
 * without ports, init containers included. A pod without an IP yields an empty group, as
 * does (with `attach_metadata.node`) a pod whose node the node lookup does not know —
 * Prometheus drops those because its node informer filters nodes by the node selector.
 */
export function podTargetGroup(pod: KubePod, ctx: KubernetesContext = {}): TargetGroup {
  const namespace = pod.metadata?.namespace ?? "";
  const source = sourceForPod(namespace, pod.metadata?.name ?? "");
  const podIP = pod.status?.podIP ?? "";
  if (podIP === "") return emptyGroup(source);

  const attach = resolveAttach(ctx, { node: true, pod: true });
  const nodeName = pod.spec?.nodeName ?? "";
  if (attach.node && !attach.node(nodeName)) return emptyGroup(source);

  const labels = podLabels(pod, attach);
  labels[NAMESPACE_LABEL] = namespace;
  addNodeLabels(labels, attach, nodeName);
  addNamespaceLabels(labels, attach, namespace);

  const targets: LabelDraft[] = [];
  for (const { container: c, init } of podContainers(pod)) {
    const name = c.name ?? "";
    const common: LabelDraft = {
      [POD_CONTAINER_NAME]: name,
      [POD_CONTAINER_ID]: containerId(pod, name, init),
      [POD_CONTAINER_IMAGE]: c.image ?? "",
      [POD_CONTAINER_INIT]: formatBool(init),
    };
    const ports = c.ports ?? [];
    if (ports.length === 0) {
      targets.push({ [ADDRESS]: podIP, ...common });
      continue;
    }
    for (const p of ports) {
      const port = formatPortUint(p?.containerPort);
      targets.push({
        [ADDRESS]: joinHostPort(podIP, port),
        ...common,
        [POD_CONTAINER_PORT_NUMBER]: port,
        [POD_CONTAINER_PORT_NAME]: p?.name ?? "",
        [POD_CONTAINER_PORT_PROTOCOL]: p?.protocol ?? "",
      });
    }
  }
  return group(source, targets, labels);
}
