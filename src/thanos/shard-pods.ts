/**
 * Shard pods (as the webhook injected them) seen as Thanos endpoints, pure: their shard
 * index, replica group, sidecar address and readiness, and the shard count their
 * StatefulSets ask for.
 */
import type { V1Container, V1Pod, V1StatefulSet } from "@kubernetes/client-node";
import { PREFIX } from "../webhook/annotations.ts";
import { POD_INDEX_LABEL, SIDECAR, SIDECAR_PORT_NAME, THANOS } from "../webhook/inject.ts";
import type { ShardReplica } from "./endpoint-choice.ts";
import type { WarmProbe } from "./warm.ts";

/** The Thanos sidecar's gRPC port: named `grpc`, or `thanos-grpc` where the pod had a `grpc` port already. */
const GRPC_PORT_NAMES = ["grpc", "thanos-grpc"];

/** The pod as an endpoint candidate, or undefined when it cannot be one yet (no IP, no sidecar port). */
export function shardReplicaOf(pod: V1Pod): ShardReplica | undefined {
  const ip = pod.status?.podIP;
  const index = ordinal(pod);
  const sidecar = pod.spec?.containers?.find((c) => c.name === THANOS);
  const port = sidecar?.ports?.find((p) => GRPC_PORT_NAMES.includes(p.name ?? ""))?.containerPort;
  if (!ip || index === undefined || port === undefined || !sidecar) return undefined;
  const group = Number(pod.metadata?.annotations?.[`${PREFIX}replica-group`] ?? "0");
  const ready =
    !pod.metadata?.deletionTimestamp &&
    pod.status?.phase === "Running" &&
    (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
  const host = ip.includes(":") ? `[${ip}]` : ip;
  const probe = warmProbe(pod, sidecar, host);
  return {
    index,
    group: Number.isInteger(group) && group >= 0 ? group : 0,
    address: `${host}:${port}`,
    ready,
    ...(probe ? { probe } : {}),
  };
}

/**
 * Where to ask whether the pod has scraped its assignment: its Prometheus as its Thanos sidecar
 * reaches it (`--prometheus.url`, a loopback host being the pod's IP from outside) and its
 * promshard sidecar's port. Nothing when the Thanos sidecar does not say.
 */
function warmProbe(pod: V1Pod, thanos: V1Container, host: string): WarmProbe | undefined {
  const args = [...(thanos.command ?? []), ...(thanos.args ?? [])];
  const i = args.findIndex((a) => a === "--prometheus.url" || a.startsWith("--prometheus.url="));
  const value = i < 0 ? undefined : args[i]!.includes("=") ? args[i]!.slice(args[i]!.indexOf("=") + 1) : args[i + 1];
  let url: URL;
  try {
    url = new URL(value ?? "");
  } catch {
    return undefined;
  }
  if (!["localhost", "127.0.0.1", "[::1]", "0.0.0.0", ""].includes(url.hostname)) return undefined;
  url.hostname = host;
  const sidecar = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
    (c) => c.name === SIDECAR,
  );
  const sidecarPort = sidecar?.ports?.find((p) => p.name === SIDECAR_PORT_NAME)?.containerPort;
  return {
    prometheus: url.href.replace(/\/+$/, ""),
    ...(sidecarPort !== undefined ? { sidecarMetrics: `http://${host}:${sidecarPort}/metrics` } : {}),
  };
}

/** The StatefulSet ordinal: the pod-index label (Kubernetes >= 1.28), else the name's last number. */
function ordinal(pod: V1Pod): number | undefined {
  const text = pod.metadata?.labels?.[POD_INDEX_LABEL] ?? /-(\d+)$/.exec(pod.metadata?.name ?? "")?.[1];
  const n = Number(text);
  return text !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * How many shard indices exist: the most replicas any StatefulSet owning one of the pods
 * asks for (replica groups scale together). Undefined while an owner is not known yet.
 */
export function shardCount(pods: readonly V1Pod[], statefulSets: readonly V1StatefulSet[]): number | undefined {
  let n = 0;
  for (const pod of pods) {
    const owner = pod.metadata?.ownerReferences?.find((o) => o.kind === "StatefulSet");
    if (!owner) continue;
    const sts = statefulSets.find((s) => s.metadata?.name === owner.name && s.metadata?.uid === owner.uid);
    if (!sts) return undefined;
    n = Math.max(n, sts.spec?.replicas ?? 1);
  }
  return n;
}
