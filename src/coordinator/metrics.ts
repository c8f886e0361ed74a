import { Counter, Gauge, Histogram, type Registry } from "../observability/metrics.ts";

/** Steps of one control-loop round, the `step` label of the duration histogram. */
export type LoopStep = "targets" | "runtime" | "explore" | "schedule" | "plan" | "push" | "scale";

/** The coordinator's own metrics: each loop step's duration, counts and errors. */
export function coordinatorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    stepSeconds: new Histogram({
      name: "promshard_coordinator_step_duration_seconds",
      help: "Duration of each control-loop step.",
      labelNames: ["step"] as const,
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 30],
      registers,
    }),
    ticks: new Counter({
      name: "promshard_coordinator_loop_runs_total",
      help: "Control-loop rounds, by result (ok, error).",
      labelNames: ["result"] as const,
      registers,
    }),
    targets: new Gauge({
      name: "promshard_coordinator_targets",
      help: "Targets discovery and relabeling give.",
      registers,
    }),
    shards: new Gauge({ name: "promshard_coordinator_shards", help: "Shards that exist now.", registers }),
    desiredShards: new Gauge({
      name: "promshard_coordinator_desired_shards",
      help: "Shards the scheduler asks for.",
      registers,
    }),
    shardSeries: new Gauge({
      name: "promshard_coordinator_shard_series",
      help: "Series assigned to each shard.",
      labelNames: ["shard"] as const,
      registers,
    }),
    shardBudget: new Gauge({
      name: "promshard_coordinator_shard_effective_budget",
      help: "Each shard's budget, lowered while it keeps restarting.",
      labelNames: ["shard"] as const,
      registers,
    }),
    shardUp: new Gauge({
      name: "promshard_coordinator_shard_up",
      help: "1 when the shard's sidecar answered and its Prometheus is ready.",
      labelNames: ["shard"] as const,
      registers,
    }),
    explores: new Counter({
      name: "promshard_coordinator_explores_total",
      help: "Exploring scrapes of unmeasured targets, by result (ok, error).",
      labelNames: ["result"] as const,
      registers,
    }),
    runtimeErrors: new Counter({
      name: "promshard_coordinator_runtime_errors_total",
      help: "Failed reads of a shard's runtime report.",
      labelNames: ["shard"] as const,
      registers,
    }),
    reloadFailing: new Gauge({
      name: "promshard_coordinator_shard_config_reload_failing",
      help: "1 while a shard's Prometheus rejected the generated config and runs the previous one.",
      labelNames: ["shard"] as const,
      registers,
    }),
    pushes: new Counter({
      name: "promshard_coordinator_assignment_pushes_total",
      help: "Assignments pushed to sidecars, by result (ok, partial: applied without targets the sidecar left out, error).",
      labelNames: ["result"] as const,
      registers,
    }),
    overlapping: new Gauge({
      name: "promshard_coordinator_overlapping_targets",
      help: "Targets held by two shards while they move (added to the new one, not yet scraped there).",
      registers,
    }),
    moves: new Counter({
      name: "promshard_coordinator_moves_total",
      help: "Targets the scheduler moved from one shard to another.",
      registers,
    }),
    movedSeries: new Counter({
      name: "promshard_coordinator_moved_series_total",
      help: "Series of the targets moved between shards.",
      registers,
    }),
    scalings: new Counter({
      name: "promshard_coordinator_scalings_total",
      help: "Scale operations, by direction (up, down).",
      labelNames: ["direction"] as const,
      registers,
    }),
    configReloads: new Counter({
      name: "promshard_coordinator_config_reloads_total",
      help: "Loads of the Prometheus config, by result (ok, error).",
      labelNames: ["result"] as const,
      registers,
    }),
    configReloadOk: new Gauge({
      name: "promshard_coordinator_config_last_reload_successful",
      help: "1 when the last load of the config succeeded; 0 while the last good one is kept.",
      registers,
    }),
  };
}

export type CoordinatorMetrics = ReturnType<typeof coordinatorMetrics>;
