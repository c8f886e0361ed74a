import type { TargetGroup } from "../prom/targets.ts";

/**
 * A source of target groups (one service-discovery config entry). A group with no targets
 * removes what its source sent before, as in Prometheus.
 */
export interface Provider {
  /** Starts sending groups: all of them first, then changes. */
  start(onUpdate: (groups: TargetGroup[]) => void): void;
  /** Resolves once the first complete set has been sent (or can be: lists synced). */
  readonly synced: Promise<void>;
  stop(): void;
}

/** static_configs: the groups, once. */
export class StaticDiscovery implements Provider {
  readonly synced = Promise.resolve();
  readonly #groups: readonly TargetGroup[];

  constructor(groups: readonly TargetGroup[]) {
    this.#groups = groups;
  }

  start(onUpdate: (groups: TargetGroup[]) => void): void {
    if (this.#groups.length > 0) onUpdate([...this.#groups]);
  }

  stop(): void {}
}
