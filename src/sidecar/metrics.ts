import { Counter, Gauge, Histogram, type Registry } from "../observability/metrics.ts";

/** The sidecar's own metrics, on the process's registry. */
export function sidecarMetrics(registry: Registry, identity: { readonly shard: number; readonly replica: string }) {
  const info = new Gauge({
    name: "promshard_sidecar_info",
    help: "The shard and replica this sidecar serves (value 1).",
    labelNames: ["shard", "replica"] as const,
    registers: [registry],
  });
  info.set({ shard: String(identity.shard), replica: identity.replica }, 1);
  return {
    assignmentVersion: new Gauge({
      name: "promshard_sidecar_assignment_version",
      help: "Version of the applied assignment (-1: none yet).",
      registers: [registry],
    }),
    assignedTargets: new Gauge({
      name: "promshard_sidecar_assigned_targets",
      help: "Targets in the applied assignment.",
      registers: [registry],
    }),
    assignments: new Counter({
      name: "promshard_sidecar_assignments_total",
      help: "PUT /api/v1/assignment requests, by result (applied, partial: applied without the targets it could not use, invalid, conflict).",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    applySeconds: new Histogram({
      name: "promshard_sidecar_assignment_apply_seconds",
      help: "Time to validate, persist and write the target files of an assignment.",
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10],
      registers: [registry],
    }),
    filesWritten: new Counter({
      name: "promshard_sidecar_target_files_written_total",
      help: "Target files written because new or changed.",
      registers: [registry],
    }),
    filesRemoved: new Counter({
      name: "promshard_sidecar_target_files_removed_total",
      help: "Target files removed because no longer produced.",
      registers: [registry],
    }),
    configValid: new Gauge({
      name: "promshard_sidecar_config_valid",
      help: "1 when the original config passed validation at its last change, 0 when the previous good one is kept.",
      registers: [registry],
    }),
    configErrors: new Counter({
      name: "promshard_sidecar_config_errors_total",
      help: "Changes of the original config that failed validation.",
      registers: [registry],
    }),
    configLastSuccess: new Gauge({
      name: "promshard_sidecar_config_last_success_timestamp_seconds",
      help: "When the original config last passed validation.",
      registers: [registry],
    }),
    prometheusUp: new Gauge({
      name: "promshard_sidecar_prometheus_up",
      help: "1 when the shard's Prometheus answered the sidecar's last request.",
      registers: [registry],
    }),
  };
}
