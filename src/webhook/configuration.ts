/**
 * The MutatingWebhookConfiguration that sends promshard its reviews, as the Helm chart and the
 * tests install it. Choices, each for not wedging a cluster:
 * - failurePolicy Ignore: a webhook that is down or slow never blocks pod creation (an
 *   uninjected Prometheus starts unsharded, and the pod's missing promshard.io/status says so);
 * - namespaceSelector `promshard.io/inject: enabled`: only labelled namespaces are sent at all,
 *   and for pods a matchCondition (Kubernetes >= 1.30; older servers drop the field) sends only
 *   pods that carry promshard.io/inject;
 * - sideEffects None, so `kubectl --dry-run=server` and dryRun requests are sent too;
 * - reinvocationPolicy IfNeeded: called again after other webhooks change the pod (a no-op
 *   for an injected pod, but a pod that another webhook opted in later is injected);
 * - a short timeout: the API server's own request must finish well within its 30 s.
 */
import { ADMISSION_PATH } from "./server.ts";

export const NAMESPACE_LABEL = "promshard.io/inject";
export const NAMESPACE_LABEL_VALUE = "enabled";

export type ClientConfig =
  | { url: string; caBundle?: string }
  | { service: { name: string; namespace: string; port?: number; path?: string }; caBundle?: string };

export interface ConfigurationOptions {
  name?: string;
  /** Where the API server sends reviews: a Service (in a cluster) or a URL (a webhook outside it). */
  clientConfig: ClientConfig;
  failurePolicy?: "Ignore" | "Fail";
  timeoutSeconds?: number;
  /** The pods matchCondition (default on). */
  matchConditions?: boolean;
}

export function webhookConfiguration(opts: ConfigurationOptions) {
  const common = {
    clientConfig: opts.clientConfig,
    namespaceSelector: { matchLabels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } },
    failurePolicy: opts.failurePolicy ?? "Ignore",
    matchPolicy: "Equivalent",
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    reinvocationPolicy: "IfNeeded",
    timeoutSeconds: opts.timeoutSeconds ?? 5,
  };
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: opts.name ?? "promshard", labels: { "app.kubernetes.io/name": "promshard" } },
    webhooks: [
      {
        name: "pods.promshard.io",
        ...common,
        rules: [
          { operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" },
        ],
        ...(opts.matchConditions === false
          ? {}
          : {
              matchConditions: [
                {
                  name: "opted-in",
                  expression: `has(object.metadata.annotations) && '${NAMESPACE_LABEL}' in object.metadata.annotations`,
                },
              ],
            }),
      },
      {
        name: "statefulsets.promshard.io",
        ...common,
        rules: [
          {
            operations: ["CREATE", "UPDATE"],
            apiGroups: ["apps"],
            apiVersions: ["v1"],
            resources: ["statefulsets"],
            scope: "Namespaced",
          },
        ],
      },
    ],
  };
}

/** `https://host:port/mutate` for a webhook outside the cluster (local runs, tests). */
export function urlClientConfig(base: string): ClientConfig {
  return { url: `${base.replace(/\/+$/, "")}${ADMISSION_PATH}` };
}
