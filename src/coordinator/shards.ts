import type { AssignedTarget, AssignmentDelta, RejectedTarget } from "../contract/assignment.ts";

/**
 * What the control loop drives: each shard through a client (its sidecar), and the shards'
 * number through a scaler (a StatefulSet, or local processes). Events are what it tells.
 */

/** What the coordinator needs from a shard's sidecar runtime. */
export interface ShardRuntime {
  /** The sidecar answered and its Prometheus is ready. */
  readonly healthy: boolean;
  /** Version of the applied assignment; -1 when none. */
  readonly version: number;
  /** Target ids of the applied assignment. */
  readonly assigned: readonly string[];
  /** Per target: its last scrape as the shard's Prometheus reports it. */
  readonly targets: readonly TargetRuntime[];
  readonly headSeries: number | null;
  /** Prometheus rejected the generated config and runs the previous one (the sidecar says why). */
  readonly reloadError?: string | null;
  /** The shard's replica-group copies hold different assignments: push again, even if `assigned` matches. */
  readonly diverged?: boolean;
  /** Its sidecar applies deltas (every copy's, in a replica group). */
  readonly deltas?: boolean;
}

export interface TargetRuntime {
  readonly id: string;
  /** Scraped successfully (last scrape up). */
  readonly up: boolean;
  readonly series: number | null;
  readonly health?: string | null;
  readonly lastError?: string | null;
  readonly lastScrape?: string | null;
}

/** A shard's whole set, or a function that makes it (only when it is sent). */
export type WholeSet = readonly AssignedTarget[] | (() => readonly AssignedTarget[]);

export interface ShardClient {
  runtime(): Promise<ShardRuntime>;
  /**
   * Pushes `delta` when given, else (or when the sidecar refuses it: it does not hold the
   * delta's base) the whole set; resolves with the targets the sidecar left out (applied the rest).
   */
  assign(version: number, targets: WholeSet, delta?: AssignmentDelta): Promise<readonly RejectedTarget[] | undefined>;
}

/** Starts and stops shards: Kubernetes (StatefulSet /scale) or local processes. */
export interface Scaler {
  /** Reads the shard count (and restarts) again from where it is kept; called first in every round. */
  refresh?(): Promise<void>;
  /** Shards that exist now (ids 0..n-1). */
  current(): number;
  scaleTo(n: number): Promise<void>;
  /** Restarts of shard `id`'s processes so far (a kubelet's restartCount), when the scaler knows. */
  restarts?(id: number): number;
  /**
   * Makes a drained shard's data safe (uploaded, imported where the global view reads it) and
   * says whether it is. Called every round until true; a scaler without it has nothing to save.
   */
  dataSafe?(id: number): Promise<boolean>;
}

export interface CoordinatorEvent {
  readonly kind: "move" | "scale" | "shard" | "warning";
  readonly text: string;
  /** The shards a move starts between (the status page marks it on their plots). */
  readonly shards?: readonly number[];
}
