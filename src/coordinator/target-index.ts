import type { AssignedTarget } from "../contract/assignment.ts";
import type { DiscoveryManager } from "../discovery/manager.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import { type Labels, labelsEqual } from "../prom/labels.ts";
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

/**
 * A known target whose payload is made when it is pushed, from the discovered labels that
 * discovery keeps anyway: a sorted copy per target, kept for every target, was ~15% of the
 * coordinator's memory at 100,000 targets (issue 16).
 */
class Known implements KnownTarget {
  readonly target: Target;
  readonly job: ScrapeJob;
  readonly #discovered: Labels;
  readonly #group: Labels;
  readonly #sdIndex: number;

  constructor(target: Target, job: ScrapeJob, discovered: Labels, group: Labels, sdIndex: number) {
    this.target = target;
    this.job = job;
    this.#discovered = discovered;
    this.#group = group;
    this.#sdIndex = sdIndex;
  }

  get payload(): AssignedTarget {
    return { job: this.job.jobName, labels: sdLabels(this.#discovered, this.#group), sdIndex: this.#sdIndex };
  }
}

/**
 * Whether two known targets send the same payload: the same object (its group did not change),
 * else compared. A delta push carries only the targets for which this is false.
 */
export function samePayload(a: KnownTarget, b: KnownTarget): boolean {
  if (a === b) return true;
  const x = a.payload;
  const y = b.payload;
  return (
    x.job === y.job &&
    x.sdIndex === y.sdIndex &&
    labelsEqual(x.labels, y.labels) &&
    x.split?.part === y.split?.part &&
    x.split?.parts === y.split?.parts &&
    x.split?.by.join("\u0000") === y.split?.by.join("\u0000")
  );
}

interface Built {
  readonly known: readonly KnownTarget[];
  readonly dropped: readonly DroppedTarget[];
  readonly failures: readonly TargetFailure[];
}

export interface TargetSet {
  readonly known: ReadonlyMap<string, KnownTarget>;
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
  /** The last result and the group objects it was built from, in order. */
  #last: { config: PromConfig; groups: TargetGroup[]; set: TargetSet } | undefined;

  /** Forgets every cached result (the config changed). */
  reset(): void {
    this.#built = new WeakMap();
    this.#last = undefined;
  }

  /**
   * Every target discovery and relabeling produce now, by id; relabeling runs only for changed
   * groups. While no group changed it is the same object as the last time, so that a round can
   * tell unchanged targets by identity and skip what depends only on them (issue 16).
   */
  build(config: PromConfig, discovery: Pick<DiscoveryManager, "groupsBySd">): TargetSet {
    const groups: TargetGroup[] = [];
    const sds = config.scrapeConfigs.map((job) => discovery.groupsBySd(job.jobName));
    for (const bySd of sds) for (const { groups: gs } of bySd) for (const g of gs) groups.push(g);
    const last = this.#last;
    if (last?.config === config && last.groups.length === groups.length && last.groups.every((g, i) => g === groups[i]))
      return last.set;
    const known = new Map<string, KnownTarget>();
    const dropped: DroppedTarget[] = [];
    const failures: TargetFailure[] = [];
    for (const [j, job] of config.scrapeConfigs.entries()) {
      let byGroup = this.#built.get(job);
      if (!byGroup) {
        byGroup = new WeakMap();
        this.#built.set(job, byGroup);
      }
      for (const { sdIndex, groups } of sds[j]!) {
        for (const g of groups) {
          let built = byGroup.get(g);
          if (!built) {
            const b = { known: [] as KnownTarget[], dropped: [] as DroppedTarget[], failures: [] as TargetFailure[] };
            for (const t of g.targets) {
              // One target at a time, to pair each built target with its own discovered labels.
              const set = targetsFromGroup({ source: g.source, targets: [t], labels: g.labels }, job);
              const active = set.active[0];
              if (active) b.known.push(new Known(active, job, t, g.labels, sdIndex));
              b.dropped.push(...set.dropped);
              b.failures.push(...set.failures);
            }
            built = b;
            byGroup.set(g, b);
          }
          dropped.push(...built.dropped);
          failures.push(...built.failures);
          // Prometheus scrapes duplicates once, showing the discovered labels of the last one its
          // scrape pool saw (scrapePool.sync calls SetScrapeConfig for each duplicate): the last
          // one is kept and sent, in the first one's place.
          for (const k of built.known) known.set(k.target.id, k);
        }
      }
    }
    const set = { known, dropped, failures };
    this.#last = { config, groups, set };
    return set;
  }
}
