import type { AssignedTarget } from "../contract/assignment.ts";
import type { DiscoveryManager } from "../discovery/manager.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import {
  type DroppedTarget,
  sdLabels,
  type Target,
  type TargetFailure,
  type TargetGroup,
  targetsFromGroup,
} from "../prom/targets.ts";

/** A target the loop schedules: built from its discovered labels, with what a sidecar is sent. */
export interface KnownTarget {
  readonly target: Target;
  readonly job: ScrapeJob;
  readonly payload: AssignedTarget;
}

interface Built {
  readonly known: readonly KnownTarget[];
  readonly dropped: readonly DroppedTarget[];
  readonly failures: readonly TargetFailure[];
}

export interface TargetSet {
  readonly known: Map<string, KnownTarget>;
  readonly dropped: DroppedTarget[];
  readonly failures: TargetFailure[];
}

/**
 * The targets of every job, from discovery through relabeling, with relabeling cached per
 * discovered group: discovery replaces a group object when the group changes, so a group
 * seen before is not relabeled again.
 */
export class TargetIndex {
  #built = new WeakMap<ScrapeJob, WeakMap<TargetGroup, Built>>();

  /** Forgets every cached result (the config changed). */
  reset(): void {
    this.#built = new WeakMap();
  }

  /** Every target discovery and relabeling produce now, by id; relabeling runs only for changed groups. */
  build(config: PromConfig, discovery: Pick<DiscoveryManager, "groupsBySd">): TargetSet {
    const known = new Map<string, KnownTarget>();
    const dropped: DroppedTarget[] = [];
    const failures: TargetFailure[] = [];
    for (const job of config.scrapeConfigs) {
      let byGroup = this.#built.get(job);
      if (!byGroup) {
        byGroup = new WeakMap();
        this.#built.set(job, byGroup);
      }
      for (const { sdIndex, groups } of discovery.groupsBySd(job.jobName)) {
        for (const g of groups) {
          let built = byGroup.get(g);
          if (!built) {
            const b = { known: [] as KnownTarget[], dropped: [] as DroppedTarget[], failures: [] as TargetFailure[] };
            for (const t of g.targets) {
              // One target at a time, to pair each built target with its own discovered labels.
              const set = targetsFromGroup({ source: g.source, targets: [t], labels: g.labels }, job);
              const active = set.active[0];
              if (active)
                b.known.push({
                  target: active,
                  job,
                  payload: { job: job.jobName, labels: sdLabels(t, g.labels), sdIndex },
                });
              b.dropped.push(...set.dropped);
              b.failures.push(...set.failures);
            }
            built = b;
            byGroup.set(g, b);
          }
          dropped.push(...built.dropped);
          failures.push(...built.failures);
          // Prometheus scrapes duplicates once: the first one seen keeps the place.
          for (const k of built.known) if (!known.has(k.target.id)) known.set(k.target.id, k);
        }
      }
    }
    return { known, dropped, failures };
  }
}
