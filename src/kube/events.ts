import type { Logger } from "pino";
import type { KubeApi } from "./api.ts";

export interface EventTarget {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/**
 * A Warning Event on an object, so that `kubectl describe` shows what promshard thinks of it.
 * Best effort: the same text is in the caller's log and status page, so a failure (RBAC
 * without `events` create) is logged and nothing more.
 */
export async function recordEvent(
  api: KubeApi,
  e: { object: EventTarget; reason: string; message: string; log: Logger },
): Promise<void> {
  const now = new Date().toISOString();
  const o = e.object;
  try {
    const res = await api.request<{ message?: string }>(
      "POST",
      `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/events`,
      {
        body: {
          metadata: { generateName: `${o.name}.`, namespace: o.namespace },
          involvedObject: { apiVersion: o.apiVersion, kind: o.kind, namespace: o.namespace, name: o.name, uid: o.uid },
          reason: e.reason,
          // The API refuses messages over 1 KiB.
          message: e.message.slice(0, 1024),
          type: "Warning",
          source: { component: "promshard-coordinator" },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      },
    );
    if (res.status >= 300)
      e.log.warn(
        { status: res.status, reason: res.body?.message, object: `${o.namespace}/${o.name}` },
        "cannot record a Kubernetes Event (RBAC needs events create)",
      );
  } catch (err) {
    e.log.warn({ err, object: `${o.namespace}/${o.name}` }, "cannot record a Kubernetes Event");
  }
}
