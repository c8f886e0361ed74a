import type { AssignedTarget } from "../contract/assignment.ts";
import type { DiscoveryManager } from "../discovery/manager.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import { type Labels, labelsEqual, labelsFromMap } from "../prom/labels.ts";
import {
  type DroppedTarget,
  discoveredLabels,
  sdLabels,
  type Target,
  type TargetFailure,
  type TargetGroup,
  targetsFromGroup,
} from "../prom/targets.ts";

/**
 * A target as the loop schedules and shows it: without the labels after relabeling (Prometheus
 * shows the public ones; nothing here needs the rest), and with its discovered labels made
 * when shown. The three label sets stored per target were ~1 KB of the index's 1.5 KB a target
 * (issue 16).
 */
export type IndexedTarget = Omit<Target, "internalLabels">;

/** A target the loop schedules: built from its discovered labels, with what a sidecar is sent. */
export interface KnownTarget {
  readonly target: IndexedTarget;
  readonly job: ScrapeJob;
  readonly payload: AssignedTarget;
}

/**
 * A target with what discovery said about it (its own labels and its group's, which discovery
 * keeps anyway), from which its discovered labels and its payload are made when read.
 */
class Indexed implements IndexedTarget {
  readonly id: string;
  readonly labels: Labels;
  readonly scrapeUrl: string;
  readonly scrapeIntervalMs: number;
  readonly scrapeTimeoutMs: number;
  readonly job: ScrapeJob;
  readonly sd: Labels;
  readonly group: Labels;

  constructor(t: Target, job: ScrapeJob, sd: Labels, group: Labels) {
    this.id = t.id;
    this.labels = t.labels;
    this.scrapeUrl = t.scrapeUrl;
    this.scrapeIntervalMs = t.scrapeIntervalMs;
    this.scrapeTimeoutMs = t.scrapeTimeoutMs;
    this.job = job;
    this.sd = sd;
    this.group = group;
  }

  get scrapePool(): string {
    return this.job.jobName;
  }

  get discoveredLabels(): Labels {
    return labelsFromMap(discoveredLabels(this.sd, this.group, this.job));
  }
}

class Known implements KnownTarget {
  readonly target: Indexed;
  readonly #sdIndex: number;

  constructor(target: Indexed, sdIndex: number) {
    this.target = target;
    this.#sdIndex = sdIndex;
  }

  get job(): ScrapeJob {
    return this.target.job;
  }

  get payload(): AssignedTarget {
    const t = this.target;
    return { job: t.job.jobName, labels: sdLabels(t.sd, t.group), sdIndex: this.#sdIndex };
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

const NONE: readonly never[] = Object.freeze([]);

/**
 * One group's targets for one job, kept as long as the group is: a group of one target that
 * nothing dropped or refused (a pod, a node) as that target alone, else exact-size lists (a
 * list grown by push holds room for 17). The lists and their holder were ~250 bytes of a
 * one-target group (issue 16).
 */
function buildGroup(g: TargetGroup, job: ScrapeJob, sdIndex: number): Built | Known {
  const known: Known[] = [];
  const dropped: DroppedTarget[] = [];
  const failures: TargetFailure[] = [];
  for (const t of g.targets) {
    // One target at a time, to pair each built target with its own discovered labels.
    const set = targetsFromGroup({ source: g.source, targets: [t], labels: g.labels }, job);
    const active = set.active[0];
    if (active) known.push(new Known(new Indexed(active, job, t, g.labels), sdIndex));
    dropped.push(...set.dropped);
    failures.push(...set.failures);
  }
  if (known.length === 1 && dropped.length === 0 && failures.length === 0) return known[0]!;
  const exact = <T>(list: T[]): readonly T[] => (list.length === 0 ? NONE : list.slice());
  return { known: exact(known), dropped: exact(dropped), failures: exact(failures) };
}

/**
 * The targets of every job, from discovery through relabeling, with relabeling cached per
 * discovered group: discovery replaces a group object when the group changes, so a group
 * seen before is not relabeled again.
 */
export class TargetIndex {
  #built = new WeakMap<ScrapeJob, WeakMap<TargetGroup, Built | Known>>();
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
            built = buildGroup(g, job, sdIndex);
            byGroup.set(g, built);
          }
          // Prometheus scrapes duplicates once, showing the discovered labels of the last one its
          // scrape pool saw (scrapePool.sync calls SetScrapeConfig for each duplicate): the last
          // one is kept and sent, in the first one's place.
          if (built instanceof Known) known.set(built.target.id, built);
          else {
            dropped.push(...built.dropped);
            failures.push(...built.failures);
            for (const k of built.known) known.set(k.target.id, k);
          }
        }
      }
    }
    const set = { known, dropped, failures };
    this.#last = { config, groups, set };
    return set;
  }
}
