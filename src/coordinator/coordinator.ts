import type { Logger } from "pino";
import type { DiscoveryManager } from "../discovery/manager.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import { sdLabels, type Target, targetsFromGroup } from "../prom/targets.ts";
import type { ScheduleResult, Strategy } from "../scheduler/strategy.ts";
import type { AssignedTarget } from "../sidecar/generate.ts";
import { planMoves, type ShardReport } from "./moves.ts";

/** What the coordinator needs from a shard's sidecar runtime. */
export interface ShardRuntime {
  /** The sidecar answered and its Prometheus is ready. */
  readonly healthy: boolean;
  /** Version of the applied assignment; -1 when none. */
  readonly version: number;
  /** Target ids of the applied assignment. */
  readonly assigned: readonly string[];
  /** Per target: its last scrape's series and whether it has been scraped successfully. */
  readonly targets: readonly { readonly id: string; readonly up: boolean; readonly series: number | null }[];
  readonly headSeries: number | null;
}

export interface ShardClient {
  runtime(): Promise<ShardRuntime>;
  assign(version: number, targets: readonly AssignedTarget[]): Promise<void>;
}

/** Starts and stops shards: Kubernetes (StatefulSet /scale) or local processes. */
export interface Scaler {
  /** Shards that exist now (ids 0..n-1). */
  current(): number;
  scaleTo(n: number): Promise<void>;
}

export interface CoordinatorOptions {
  readonly discovery: DiscoveryManager;
  readonly strategy: Strategy;
  readonly scaler: Scaler;
  readonly shard: (id: number) => ShardClient;
  /** Series a target has before anyone measured it. */
  readonly explore: (target: Target, job: ScrapeJob) => Promise<number>;
  readonly budget: number;
  readonly minShards: number;
  readonly maxShards: number;
  /** How long the highest shard must stay empty before it is removed. */
  readonly scaleDownDelayMs: number;
  /** Series assumed for a target that could not be explored (it is still assigned). */
  readonly defaultSeries?: number;
  /** Exploring scrapes at once (default 16). */
  readonly exploreConcurrency?: number;
  readonly log?: Logger;
  readonly now?: () => number;
}

export interface ShardStatus {
  readonly id: number;
  readonly healthy: boolean;
  readonly budget: number;
  readonly series: number;
  readonly targets: readonly {
    readonly id: string;
    readonly job: string;
    readonly labels: Target["labels"];
    readonly series: number;
  }[];
}

export interface TickResult {
  readonly schedule: ScheduleResult;
  readonly overlapping: number;
  readonly pushed: number[];
  readonly shards: readonly ShardStatus[];
}

interface Known {
  readonly target: Target;
  readonly job: ScrapeJob;
  readonly payload: AssignedTarget;
}

/**
 * The control loop (DESIGN §6): discovery and relabeling give the targets; series come from
 * the shards' own reports, else from one exploring scrape, else a default (a target is never
 * left unassigned for want of a measurement); the scheduler decides; moves are planned so
 * that nothing goes unscraped; changed assignments are pushed with a growing version; the
 * scaler follows, down only after the highest shard has stayed empty for the delay. Nothing
 * here is state that cannot be rebuilt from the shards.
 */
export class Coordinator {
  readonly #o: CoordinatorOptions;
  #config: PromConfig;
  #version = -1;
  readonly #explored = new Map<string, number>();
  #emptySince: number | undefined;

  constructor(config: PromConfig, opts: CoordinatorOptions) {
    this.#config = config;
    this.#o = opts;
  }

  setConfig(config: PromConfig): void {
    this.#config = config;
  }

  /** Every target discovery and relabeling produce now, by id. */
  #targets(): Map<string, Known> {
    const out = new Map<string, Known>();
    for (const job of this.#config.scrapeConfigs) {
      for (const { sdIndex, groups } of this.#o.discovery.groupsBySd(job.jobName)) {
        for (const g of groups) {
          for (const t of g.targets) {
            const built = targetsFromGroup({ source: g.source, targets: [t], labels: g.labels }, job).active[0];
            if (!built || out.has(built.id)) continue;
            out.set(built.id, {
              target: built,
              job,
              payload: { job: job.jobName, labels: sdLabels(t, g.labels), sdIndex },
            });
          }
        }
      }
    }
    return out;
  }

  async tick(): Promise<TickResult> {
    const o = this.#o;
    const known = this.#targets();
    const shardCount = o.scaler.current();
    const runtimes = await Promise.all(
      Array.from({ length: shardCount }, (_, i) =>
        o
          .shard(i)
          .runtime()
          .catch((err: unknown): ShardRuntime => {
            o.log?.warn({ shard: i, err: (err as Error).message }, "shard runtime unavailable");
            return { healthy: false, version: -1, assigned: [], targets: [], headSeries: null };
          }),
      ),
    );
    // A restarted coordinator continues the shards' version sequence and moves nothing.
    for (const r of runtimes) this.#version = Math.max(this.#version, r.version);

    const measured = new Map<string, number>();
    for (const r of runtimes) for (const t of r.targets) if (t.up && t.series !== null) measured.set(t.id, t.series);
    // Explore what no shard has measured yet, a bounded number at a time.
    const unmeasured = [...known.values()].filter(
      ({ target }) => !measured.has(target.id) && !this.#explored.has(target.id),
    );
    await inParallel(unmeasured, o.exploreConcurrency ?? 16, async ({ target, job }) => {
      try {
        this.#explored.set(target.id, await o.explore(target, job));
      } catch (err) {
        o.log?.warn(
          { target: target.scrapeUrl, err: (err as Error).message },
          "explore failed; assigning with the default estimate",
        );
        this.#explored.set(target.id, o.defaultSeries ?? 1000);
      }
    });
    const series = (id: string) => measured.get(id) ?? this.#explored.get(id) ?? o.defaultSeries ?? 1000;

    const live = new Set(known.keys());
    const schedule = o.strategy.schedule({
      targets: [...live].map((id) => ({ id, series: series(id) })),
      shards: runtimes.map((r, id) => ({ id, budget: o.budget, targets: r.assigned.filter((t) => live.has(t)) })),
      budget: o.budget,
      minShards: o.minShards,
      maxShards: o.maxShards,
    });
    for (const w of schedule.warnings) o.log?.warn({ warning: w }, "scheduler");

    // New shards first: a target moves only to a shard that exists.
    if (schedule.desiredShards > shardCount) await o.scaler.scaleTo(schedule.desiredShards);
    const reports: ShardReport[] = runtimes.map((r) => ({
      assigned: r.assigned,
      scraped: new Set(r.targets.filter((t) => t.up).map((t) => t.id)),
      healthy: r.healthy,
    }));
    const plan = planMoves(schedule.assignment, reports, live);
    const pushed: number[] = [];
    for (const [i, ids] of plan.push.entries()) {
      if (i >= o.scaler.current()) continue;
      const before = runtimes[i];
      const same =
        before?.healthy && before.assigned.length === ids.length && ids.every((id) => before.assigned.includes(id));
      if (same) continue;
      this.#version++;
      try {
        await o.shard(i).assign(
          this.#version,
          ids.map((id) => known.get(id)!.payload),
        );
        pushed.push(i);
      } catch (err) {
        o.log?.warn({ shard: i, err: (err as Error).message }, "assignment push failed; retried next tick");
      }
    }

    // Down only for the highest shard, once nothing is pushed to it, after the delay.
    const now = (o.now ?? Date.now)();
    const top = o.scaler.current() - 1;
    if (
      top >= o.minShards &&
      top >= schedule.desiredShards &&
      (plan.push[top]?.length ?? 0) === 0 &&
      runtimes[top]?.assigned.length === 0
    ) {
      this.#emptySince ??= now;
      if (now - this.#emptySince >= o.scaleDownDelayMs) {
        await o.scaler.scaleTo(top);
        this.#emptySince = undefined;
      }
    } else this.#emptySince = undefined;

    const shards: ShardStatus[] = plan.push.map((ids, id) => ({
      id,
      healthy: runtimes[id]?.healthy ?? false,
      budget: o.budget,
      series: ids.reduce((n, t) => n + series(t), 0),
      targets: ids.map((t) => ({
        id: t,
        job: known.get(t)!.job.jobName,
        labels: known.get(t)!.target.labels,
        series: series(t),
      })),
    }));
    return { schedule, overlapping: plan.overlapping.length, pushed, shards };
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
