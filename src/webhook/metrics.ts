import { Counter, Gauge, Histogram, type Registry } from "../observability/metrics.ts";

/** The webhook's own metrics, on the process's registry (src/observability/metrics.ts). */
export function webhookMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: "promshard_webhook_admission_requests_total",
      help: "AdmissionReviews answered, by object kind, operation, result (injected, patched, unchanged, unsupported, refused, malformed, error) and dry run.",
      labelNames: ["kind", "operation", "result", "dry_run"] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: "promshard_webhook_admission_duration_seconds",
      help: "Time from receiving an AdmissionReview's body to sending the answer, by kind, operation and result.",
      labelNames: ["kind", "operation", "result"] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers: [registry],
    }),
    injections: new Counter({
      name: "promshard_webhook_injections_total",
      help: "Pods injected (dry runs excluded), by sidecar mode (native or container).",
      labelNames: ["mode"] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: "promshard_webhook_errors_total",
      help: "Requests not handled normally, by reason: malformed (400), too_large (413), unsupported_media_type (415), unsupported_object (allowed unchanged with a warning), internal (a bug; allowed unchanged).",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    certificateNotAfter: new Gauge({
      name: "promshard_webhook_certificate_not_after_timestamp_seconds",
      help: "When the serving certificate in use expires (Unix seconds).",
      registers: [registry],
    }),
    certificateReloads: new Counter({
      name: "promshard_webhook_certificate_reloads_total",
      help: "Serving certificate reloads from the files, by result (success, failure).",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
  };
}

export type WebhookMetrics = ReturnType<typeof webhookMetrics>;
