import type { Logger } from "pino";
import { type AssignedTarget, diffAssignment, type RejectedTarget } from "../contract/assignment.ts";
import type { DiscoveryManager } from "../discovery/manager.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import type { DroppedTarget, TargetFailure } from "../prom/targets.ts";
import { parsePartId, type SplitResult, scheduleWithSplits, targetOf } from "../scheduler/split.ts";
import type { SchedShard, ScheduleResult, Strategy } from "../scheduler/strategy.ts";
import { type Backoff, backoffDelay } from "../util/backoff.ts";
import { EXPLORE_CONCURRENCY, growingParallel } from "./explore.ts";
import type { CoordinatorMetrics, LoopStep } from "./metrics.ts";
import { type MovePlan, planMoves, type ShardReport } from "./moves.ts";
import { newShardMemory, observeShard, type ShardMemory } from "./shard-health.ts";
import type { CoordinatorEvent, Scaler, ShardClient, ShardRuntime, TargetRuntime } from "./shards.ts";
import { handover, itemsOf, SplitLabels, wholeFromParts } from "./split-targets.ts";
import { type IndexedTarget, type KnownTarget, samePayload, TargetIndex } from "./target-index.ts";

export interface CoordinatorOptions {
  readonly discovery: DiscoveryManager;
  readonly strategy: Strategy;
  readonly scaler: Scaler;
  readonly shard: (id: number) => ShardClient;
  /**
   * Series a target has before anyone measured it; with `labelNames`, also the label names of
   * its series (for a target split over shards).
   */
  readonly explore: (target: IndexedTarget, job: ScrapeJob, labelNames?: Set<string>) => Promise<number>;
  readonly budget: number;
  readonly minShards: number;
  readonly maxShards: number;
  /** How long the highest shard must stay empty before it is removed. */
  readonly scaleDownDelayMs: number;
  /** Longest wait for a drained shard's data to be safe; after it the shard goes anyway, with a warning. */
  readonly scaleDownWaitMs?: number;
  /** How long a down shard keeps its targets (a restart is the common case) before they move. */
  readonly downGraceMs?: number;
  /** Two restarts within this window make a crash loop; a window without one restores the budget. */
  readonly crashWindowMs?: number;
  /** How long a move may wait for the new shard's first scrape while the target is down everywhere (default 2 min). */
  readonly moveTimeoutMs?: number;
  /** Series assumed for a target that could not be explored (it is still assigned). */
  readonly defaultSeries?: number;
  /** Most exploring scrapes at once (default 256); they start at 16 and grow while that pays. */
  readonly exploreConcurrency?: number;
  readonly metrics?: CoordinatorMetrics;
  readonly onEvent?: (e: CoordinatorEvent) => void;
  readonly log?: Logger;
  readonly now?: () => number;
}

export interface TargetStatus {
  readonly id: string;
  readonly job: string;
  readonly target: IndexedTarget;
  readonly series: number;
  /** Where the scheduler wants it. */
  readonly shard: number;
  /** What its shard's Prometheus says of its last scrape, when it has scraped it. */
  readonly runtime: TargetRuntime | undefined;
}

export interface ShardStatus {
  readonly id: number;
  readonly healthy: boolean;
  readonly budget: number;
  /** The budget the scheduler uses: lowered while the shard keeps restarting. */
  readonly effectiveBudget: number;
  readonly restarts: number;
  /** Milliseconds since epoch when it went down; null while up. */
  readonly downSince: number | null;
  readonly series: number;
  readonly targets: readonly TargetStatus[];
  /** Prometheus rejected the generated config (it runs the previous one); null or absent when not. */
  readonly reloadError?: string | null;
}

export interface TickResult {
  readonly schedule: ScheduleResult;
  readonly overlapping: number;
  readonly pushed: number[];
  readonly shards: readonly ShardStatus[];
  readonly dropped: readonly DroppedTarget[];
  readonly failures: readonly TargetFailure[];
}

/** What a round decides on: the targets (by identity), their series, each shard's state. */
interface RoundInputs {
  readonly known: ReadonlyMap<string, KnownTarget>;
  /** Each target's series, in the order of `known`. */
  readonly series: Float64Array;
  readonly shards: readonly {
    readonly healthy: boolean;
    readonly gone: boolean;
    readonly budget: number;
    readonly assigned: readonly string[];
  }[];
}

function sameInputs(a: RoundInputs, b: RoundInputs): boolean {
  if (a.known !== b.known || a.shards.length !== b.shards.length) return false;
  if (a.series !== b.series) for (let i = 0; i < a.series.length; i++) if (a.series[i] !== b.series[i]) return false;
  for (const [i, x] of a.shards.entries()) {
    const y = b.shards[i]!;
    if (x.healthy !== y.healthy || x.gone !== y.gone || x.budget !== y.budget) return false;
    if (x.assigned !== y.assigned) {
      if (x.assigned.length !== y.assigned.length) return false;
      for (let k = 0; k < x.assigned.length; k++) if (x.assigned[k] !== y.assigned[k]) return false;
    }
  }
  return true;
}

/**
 * What explore found of a target: its series, or the failures that left it on an estimate. A
 * success is only its number: an object a target was ~50 bytes of it at a million (issue 16).
 */
type Explored = number | ExploreFailure;

interface ExploreFailure {
  readonly series: number;
  readonly failures: number;
  readonly retryAt: number;
}

function seriesOf(e: Explored | undefined): number | undefined {
  return typeof e === "object" ? e.series : e;
}

const DEFAULT_GRACE_MS = 30_000;
const DEFAULT_CRASH_WINDOW_MS = 600_000;
const DEFAULT_SCALE_DOWN_WAIT_MS = 600_000;
const EXPLORE_RETRY: Backoff = { initialMs: 10_000, maxMs: 600_000 };
/**
 * Series Prometheus adds for every target beside what it exposes (up, scrape_duration_seconds,
 * scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added): a
 * shard's head holds them too, so budgets count them (the seed's 10040 + 5 = 10045).
 */
export const SCRAPE_SERIES = 5;

/**
 * The control loop (DESIGN §6): discovery and relabeling give the targets; series come from
 * the shards' own reports, else from one exploring scrape, else a default (a target is never
 * left unassigned for want of a measurement); the scheduler decides; moves are planned so
 * that nothing goes unscraped; changed assignments are pushed with a growing version; the
 * scaler follows, down only after the highest shards stayed empty for the delay and their
 * data is safe. A down shard keeps its targets for a grace period, then they move into room
 * that budgets allow; a shard that keeps restarting gets a lower effective budget. Nothing
 * here is state that cannot be rebuilt from the shards.
 */
/** Default bound of a move to a target that is down (DESIGN §6 moves; issue 14). */
const MOVE_TIMEOUT_MS = 120_000;

/** No rejected targets (one object, so that a round can tell it unchanged). */
const NONE: ReadonlySet<string> = new Set();

/** How long targets a shard left out are not pushed to it again (its config may catch up). */
const REJECTED_RETRY_MS = 60_000;

export class Coordinator {
  readonly #o: CoordinatorOptions;
  #config: PromConfig;
  #version = -1;
  readonly #explored = new Map<string, Explored>();
  readonly #memory = new Map<number, ShardMemory>();
  readonly #moving = new Map<string, { from: number; to: number; since: number; stuck?: boolean }>();
  /** Moves let go this round because they timed out (for their event). */
  #letGo = new Set<string>();
  /** Where the last round sent each target. */
  readonly #desired = new Map<string, number>();
  readonly #index = new TargetIndex();
  /**
   * Per shard, the targets its sidecar left out of the last push (a job its config does not
   * have yet) and when: not pushed again each round, but again after REJECTED_RETRY_MS, when
   * the shard's config may have caught up.
   */
  readonly #rejected = new Map<number, { ids: ReadonlySet<string>; key: string; at: number }>();
  /** The last reload error each shard reported (null: none). */
  readonly #reloadErrors = new Map<number, string | null>();
  readonly #splitLabels = new SplitLabels();
  /**
   * Per shard, what it holds as this coordinator last sent it (without what it left out), at
   * which version: the base of the next delta. Unknown after a failed push or a restart, and
   * then the next push is the whole set.
   */
  readonly #sent = new Map<number, { version: number; items: ReadonlyMap<string, KnownTarget> }>();
  /** Per shard, the lists the last push check found equal: the same lists need no check. */
  readonly #checked = new Map<
    number,
    { assigned: readonly string[]; ids: readonly string[]; fresh: ReadonlySet<string> }
  >();
  /** The last measurements and the shards' target lists they were read from. */
  #lastMeasured: { from: readonly (readonly TargetRuntime[])[]; measured: ReadonlyMap<string, number> } | undefined;
  /** Set when explore found nothing due and nothing failing, for these targets and measurements. */
  #exploreIdle: { known: ReadonlyMap<string, KnownTarget>; measured: ReadonlyMap<string, number> } | undefined;
  /** The last round's inputs and what it decided, for a steady round to reuse. */
  #round:
    | {
        inputs: RoundInputs;
        measured: ReadonlyMap<string, number>;
        /** Series per shard as pushed. */
        totals: readonly number[];
        schedule: SplitResult;
        items: ReadonlyMap<string, KnownTarget>;
        plan: MovePlan;
        handedOver: number;
        /** It pushed nothing and moved nothing: the same inputs give the same decisions. */
        settled: boolean;
      }
    | undefined;
  /** A split target's label names could not be learned this round. */
  #learning = false;
  /** Parts per split target in the last round (for the events when that changes). */
  #parts: ReadonlyMap<string, number> = new Map();

  constructor(config: PromConfig, opts: CoordinatorOptions) {
    this.#config = config;
    this.#o = opts;
  }

  /** Drops what it remembers of shards and moves (a new leader starts from the shards' reports). */
  forget(): void {
    this.#memory.clear();
    this.#moving.clear();
    this.#desired.clear();
    this.#sent.clear();
    this.#round = undefined;
    this.#lastMeasured = undefined;
    this.#exploreIdle = undefined;
    this.#checked.clear();
  }

  setConfig(config: PromConfig): void {
    this.#config = config;
    this.#index.reset();
    this.#round = undefined;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  #event(
    kind: CoordinatorEvent["kind"],
    text: string,
    fields: Record<string, unknown> = {},
    shards?: readonly number[],
  ): void {
    this.#o.log?.[kind === "warning" ? "warn" : "info"]({ event: kind, ...fields }, text);
    this.#o.onEvent?.(shards ? { kind, text, shards } : { kind, text });
  }

  async #step<T>(step: LoopStep, fn: () => Promise<T> | T): Promise<T> {
    const end = this.#o.metrics?.stepSeconds.startTimer({ step });
    try {
      return await fn();
    } finally {
      end?.();
    }
  }

  #memoryOf(id: number): ShardMemory {
    let m = this.#memory.get(id);
    if (!m) {
      m = newShardMemory(this.#o.budget);
      this.#memory.set(id, m);
    }
    return m;
  }

  async #runtimes(count: number): Promise<ShardRuntime[]> {
    const o = this.#o;
    return Promise.all(
      Array.from({ length: count }, (_, i) =>
        o
          .shard(i)
          .runtime()
          .catch((err: unknown): ShardRuntime => {
            o.metrics?.runtimeErrors.inc({ shard: String(i) });
            o.log?.warn({ shard: i, err }, "shard runtime unavailable");
            return { healthy: false, version: -1, assigned: [], targets: [], headSeries: null };
          }),
      ),
    );
  }

  /** Health transitions, restarts and the effective budget of each shard. */
  #observe(runtimes: readonly ShardRuntime[], now: number): void {
    const policy = { budget: this.#o.budget, crashWindowMs: this.#o.crashWindowMs ?? DEFAULT_CRASH_WINDOW_MS };
    for (const [id, r] of runtimes.entries())
      for (const e of observeShard(
        this.#memoryOf(id),
        id,
        r.healthy,
        r.assigned,
        this.#o.scaler.restarts?.(id),
        now,
        policy,
      ))
        this.#event(e.kind, e.text, { shard: id });
  }

  /** Explores the targets no shard measured that are due; returns how many it explored. */
  async #explore(
    known: ReadonlyMap<string, KnownTarget>,
    measured: ReadonlyMap<string, number>,
    now: number,
  ): Promise<number> {
    const o = this.#o;
    // Nothing was due last round, none was failing, and neither the targets nor the
    // measurements changed: nothing is due now (a steady round does not look at every target).
    const idle = this.#exploreIdle;
    if (idle?.known === known && idle.measured === measured) return 0;
    // The same target set as the last round's has no target that left.
    if (known !== this.#round?.inputs.known)
      for (const id of this.#explored.keys()) if (!known.has(id)) this.#explored.delete(id);
    const due: KnownTarget[] = [];
    let failing = false;
    for (const k of known.values()) {
      if (measured.has(k.target.id)) continue;
      const e = this.#explored.get(k.target.id);
      if (typeof e === "object") failing = true;
      if (e === undefined || (typeof e === "object" && now >= e.retryAt)) due.push(k);
    }
    this.#exploreIdle = due.length === 0 && !failing ? { known, measured } : undefined;
    await growingParallel(due, o.exploreConcurrency ?? EXPLORE_CONCURRENCY, async ({ target, job }) => {
      const prev = this.#explored.get(target.id);
      try {
        const series = await o.explore(target, job);
        this.#explored.set(target.id, series);
        o.metrics?.explores.inc({ result: "ok" });
      } catch (err) {
        const failures = (typeof prev === "object" ? prev.failures : 0) + 1;
        const backoff = backoffDelay(EXPLORE_RETRY, failures);
        this.#explored.set(target.id, {
          series: seriesOf(prev) ?? o.defaultSeries ?? 1000,
          failures,
          retryAt: now + backoff,
        });
        o.metrics?.explores.inc({ result: "error" });
        o.log?.warn(
          { target: target.scrapeUrl, err, retryInMs: backoff },
          "explore failed; assigning with the default estimate",
        );
      }
    });
    return due.length;
  }

  async tick(): Promise<TickResult> {
    const o = this.#o;
    const now = this.#now();
    const { known, dropped, failures } = await this.#step("targets", () =>
      this.#index.build(this.#config, o.discovery),
    );
    await this.#step("runtime", () => o.scaler.refresh?.());
    const shardCount = o.scaler.current();
    const runtimes = await this.#step("runtime", () => this.#runtimes(shardCount));
    // A restarted coordinator continues the shards' version sequence and moves nothing.
    for (const r of runtimes) this.#version = Math.max(this.#version, r.version);
    this.#observe(runtimes, now);
    this.#noteReloads(runtimes);

    const measured = this.#measured(runtimes);
    const explored = await this.#step("explore", () => this.#explore(known, measured, now));
    const whole = (id: string) =>
      (measured.get(id) ?? seriesOf(this.#explored.get(id)) ?? o.defaultSeries ?? 1000) + SCRAPE_SERIES;

    const last = this.#round;
    // The same targets, measurements and explores give the same series.
    const sameSeries = last?.inputs.known === known && last.measured === measured && explored === 0;
    const inputs = this.#inputs(known, runtimes, sameSeries ? last.inputs.series : whole, now);
    // A steady round (the last one moved and pushed nothing, and nothing it decided on changed)
    // decides the same again: its schedule and plan are reused, not recomputed over every target.
    const steady = last?.settled === true && this.#moving.size === 0 && sameInputs(last.inputs, inputs);
    const schedule = steady
      ? last.schedule
      : await this.#step("schedule", () => this.#schedule(runtimes, known, whole, now));
    if (!steady) for (const w of schedule.warnings) this.#event("warning", w);
    const planned = steady ? last.items : await this.#step("explore", () => this.#items(known, schedule.parts, whole));
    // A part counts what its shard measured, else its share of the whole.
    const series = (id: string) => {
      const p = parsePartId(id);
      if (!p) return whole(id);
      const m = measured.get(id);
      return m === undefined ? Math.ceil(whole(p.target) / p.parts) : m + SCRAPE_SERIES;
    };
    if (!steady) {
      this.#desired.clear();
      for (const [id, ids] of schedule.assignment.entries()) for (const t of ids) this.#desired.set(t, id);
    }

    const reports: ShardReport[] = runtimes.map((r, id) => {
      let scraped: Set<string> | undefined;
      return {
        assigned: r.healthy ? r.assigned : this.#memoryOf(id).lastAssigned,
        // Made when a plan needs it: a steady round does not.
        get scraped() {
          if (!scraped) {
            scraped = new Set();
            for (const t of r.targets) if (t.up) scraped.add(t.id);
          }
          return scraped;
        },
        healthy: r.healthy,
      };
    });
    const { plan, items, handedOver } = steady
      ? last
      : await this.#step("plan", () => {
          this.#letGo = this.#timedOutMoves(runtimes, now);
          const held = handover(reports, planned, known, this.#splitLabels.byJob(schedule.parts.keys(), known));
          const items = held.items.size === 0 ? planned : new Map([...planned, ...held.items]);
          // Over every shard that reports: a shard past the new count may still hold a part.
          const desired = Array.from({ length: Math.max(schedule.assignment.length, reports.length) }, (_, i) => [
            ...(schedule.assignment[i] ?? []),
            ...(held.keep.get(i) ?? []),
          ]);
          const plan = planMoves(desired, reports, items, this.#letGo);
          this.#trackMoves(plan.overlapping, items, series);
          return { plan, items, handedOver: held.items.size };
        });
    o.metrics?.overlapping.set(plan.overlapping.length);

    const pushed = await this.#step("push", async () => {
      // New shards first: a target moves only to a shard that exists.
      if (schedule.desiredShards > shardCount) await this.#scale(schedule.desiredShards, shardCount);
      return this.#push(plan.push, runtimes, items);
    });
    const totals = steady && sameSeries ? last.totals : plan.push.map((ids) => ids.reduce((n, t) => n + series(t), 0));
    const shards = this.#status(plan.push, totals, runtimes, items, series);
    await this.#step("scale", () => this.#scaleDown(plan.push, reports, schedule.desiredShards, now));
    this.#record(known.size, schedule.desiredShards, shards);
    this.#round = {
      inputs,
      measured,
      totals,
      schedule,
      items,
      plan,
      handedOver,
      settled:
        pushed.length === 0 &&
        plan.overlapping.length === 0 &&
        handedOver === 0 &&
        this.#letGo.size === 0 &&
        !this.#learning,
    };
    return { schedule, overlapping: plan.overlapping.length, pushed, shards, dropped, failures };
  }

  /**
   * Each target's series as its shard measured it, and a split target's whole from its parts.
   * With partial reports a shard whose targets did not change hands over the same list: then
   * the last round's map is the answer.
   */
  #measured(runtimes: readonly ShardRuntime[]): ReadonlyMap<string, number> {
    const last = this.#lastMeasured;
    if (last?.from.length === runtimes.length && runtimes.every((r, i) => r.targets === last.from[i]))
      return last.measured;
    const measured = new Map<string, number>();
    for (const r of runtimes) for (const t of r.targets) if (t.up && t.series !== null) measured.set(t.id, t.series);
    for (const [id, n] of wholeFromParts(measured)) if (!measured.has(id)) measured.set(id, n);
    this.#lastMeasured = { from: runtimes.map((r) => r.targets), measured };
    return measured;
  }

  /** What a round decides on, in a form the next round compares with its own. */
  #inputs(
    known: ReadonlyMap<string, KnownTarget>,
    runtimes: readonly ShardRuntime[],
    series: ((id: string) => number) | Float64Array,
    now: number,
  ): RoundInputs {
    let perTarget: Float64Array;
    if (series instanceof Float64Array) perTarget = series;
    else {
      perTarget = new Float64Array(known.size);
      let i = 0;
      for (const id of known.keys()) perTarget[i++] = series(id);
    }
    const grace = this.#o.downGraceMs ?? DEFAULT_GRACE_MS;
    return {
      known,
      series: perTarget,
      shards: runtimes.map((r, id) => {
        const mem = this.#memoryOf(id);
        return {
          healthy: r.healthy,
          gone: mem.downSince !== undefined && now - mem.downSince >= grace,
          budget: mem.effectiveBudget,
          assigned: r.healthy ? r.assigned : mem.lastAssigned,
        };
      }),
    };
  }

  /**
   * The scheduler's input: every live target with its series, every shard with its effective
   * budget and what it holds. A shard down past its grace holds nothing (its targets go where
   * budgets have room); a target held by two shards (a move in flight, or a shard back with a
   * stale assignment) counts where it was last sent, so neither undoes the decision.
   */
  #schedule(
    runtimes: readonly ShardRuntime[],
    live: ReadonlyMap<string, KnownTarget>,
    series: (id: string) => number,
    now: number,
  ): SplitResult {
    const o = this.#o;
    const grace = o.downGraceMs ?? DEFAULT_GRACE_MS;
    const gone = (id: number) => {
      const down = this.#memoryOf(id).downSince;
      return down !== undefined && now - down >= grace;
    };
    const held = runtimes.map((r, id) =>
      gone(id) ? [] : (r.healthy ? r.assigned : this.#memoryOf(id).lastAssigned).filter((t) => live.has(targetOf(t))),
    );
    // The first holder of each target; every holder only of the few held twice (moves in flight).
    const first = new Map<string, number>();
    const holders = new Map<string, number[]>();
    for (const [id, ts] of held.entries())
      for (const t of ts) {
        const f = first.get(t);
        if (f === undefined) first.set(t, id);
        else holders.set(t, [...(holders.get(t) ?? [f]), id]);
      }
    const owner = (t: string) => {
      const ids = holders.get(t);
      if (!ids) return first.get(t);
      const sent = this.#desired.get(t);
      return sent !== undefined && ids.includes(sent) ? sent : ids[0];
    };
    const shards: SchedShard[] = runtimes.map((_, id) => ({
      id,
      budget: this.#memoryOf(id).effectiveBudget,
      targets: held[id]!.filter((t) => owner(t) === id),
      ...(gone(id) ? { unavailable: true } : {}),
    }));
    return scheduleWithSplits(o.strategy, {
      targets: Array.from(live.keys(), (id) => ({ id, series: series(id) })),
      shards,
      budget: o.budget,
      minShards: o.minShards,
      maxShards: o.maxShards,
    });
  }

  /**
   * The round's items: whole targets, and the parts of split targets with their payloads. A
   * split (or a change of its part count) is an event; the label names a new split target
   * hashes over are learned first.
   */
  async #items(
    known: ReadonlyMap<string, KnownTarget>,
    parts: ReadonlyMap<string, number>,
    series: (id: string) => number,
  ): Promise<ReadonlyMap<string, KnownTarget>> {
    const o = this.#o;
    this.#learning = false;
    await this.#splitLabels.learn(
      parts.keys(),
      known,
      (target, job, names) => o.explore(target, job, names),
      (id, err) => {
        // Tried again next round: that round is not a steady one.
        this.#learning = true;
        o.log?.warn({ target: id, err }, "cannot learn a split target's label names; its parts hash over __name__");
      },
    );
    for (const [id, n] of parts)
      if (this.#parts.get(id) !== n) {
        const k = known.get(id)!;
        this.#event(
          "scale",
          `${k.job.jobName}/${k.target.labels.instance ?? id} (${series(id)} series) is split over ${n} shards (was ${this.#parts.get(id) ?? 1})`,
          { target: id, parts: n },
        );
      }
    for (const id of this.#parts.keys())
      if (!parts.has(id) && known.has(id)) this.#event("scale", `target ${id} fits one shard again`, { target: id });
    this.#parts = parts;
    return itemsOf(known, parts, this.#splitLabels.byJob(parts.keys(), known));
  }

  /**
   * Sends each shard whose set changed its new set, with a growing version: what changed since
   * the set it holds when its sidecar takes deltas and holds what this coordinator last sent
   * it, else the whole set. Returns the shards pushed to.
   */
  async #push(
    push: readonly (readonly string[])[],
    runtimes: readonly ShardRuntime[],
    known: ReadonlyMap<string, KnownTarget>,
  ): Promise<number[]> {
    const o = this.#o;
    const out: number[] = [];
    for (const [i, ids] of push.entries()) {
      if (i >= o.scaler.current()) continue;
      const before = runtimes[i];
      // A down shard is pushed to once it answers again (it keeps its last assignment on disk).
      if (i < runtimes.length && !before?.healthy) continue;
      const left = this.#rejected.get(i);
      const fresh = left && this.#now() - left.at < REJECTED_RETRY_MS ? left.ids : NONE;
      // The same lists as the last round found equal (a steady round's) are equal still.
      const checked = this.#checked.get(i);
      if (
        before &&
        !before.diverged &&
        checked?.assigned === before.assigned &&
        checked.ids === ids &&
        checked.fresh === fresh
      )
        continue;
      const expect = ids.filter((id) => !fresh.has(id));
      // A Set: thousands of targets per shard make a list's includes() quadratic (issue 16).
      const has = new Set(before?.assigned);
      if (before && !before.diverged && has.size === expect.length && expect.every((id) => has.has(id))) {
        this.#checked.set(i, { assigned: before.assigned, ids, fresh });
        continue;
      }
      this.#checked.delete(i);
      this.#version++;
      const next = new Map<string, KnownTarget>();
      for (const id of ids) next.set(id, known.get(id)!);
      const sent = this.#sent.get(i);
      // A delta only from a base the shard shows it holds: the version this coordinator sent,
      // and every target of it reported (a job gone from the shard's config hides some).
      const delta =
        before?.deltas &&
        !before.diverged &&
        sent?.version === before.version &&
        sent.items.size === has.size &&
        [...has].every((id) => sent.items.has(id))
          ? {
              version: this.#version,
              base: sent.version,
              count: next.size,
              ...diffAssignment(sent.items, next, samePayload, (k) => k.payload),
            }
          : undefined;
      let whole: AssignedTarget[] | undefined;
      try {
        const rejected =
          (await o
            .shard(i)
            .assign(this.#version, () => (whole ??= ids.map((id) => ({ id, ...known.get(id)!.payload }))), delta)) ??
          [];
        this.#noteRejected(i, ids, rejected, known);
        for (const r of rejected) next.delete(r.id ?? ids[r.index] ?? "");
        this.#sent.set(i, { version: this.#version, items: next });
        out.push(i);
        o.metrics?.pushes.inc({ result: rejected.length > 0 ? "partial" : "ok" });
      } catch (err) {
        // The push may have been applied with its answer lost (a kept-alive connection the
        // sidecar closed, a timeout): the next report's version tells, and only when it is
        // this one (with every target reported) is it the next delta's base, else the whole set.
        this.#sent.set(i, { version: this.#version, items: next });
        o.metrics?.pushes.inc({ result: "error" });
        o.log?.warn({ shard: i, err }, "assignment push failed; retried next round");
      }
    }
    return out;
  }

  /** One warning event per shard and distinct reload error; one when it runs the generated config again. */
  #noteReloads(runtimes: readonly ShardRuntime[]): void {
    for (const [id, r] of runtimes.entries()) {
      if (!r.healthy) continue;
      const now = r.reloadError ?? null;
      const had = this.#reloadErrors.get(id) ?? null;
      if (now === had) continue;
      this.#reloadErrors.set(id, now);
      this.#o.metrics?.reloadFailing.set({ shard: String(id) }, now === null ? 0 : 1);
      if (now !== null) this.#event("warning", `shard ${id}: ${now}`, { shard: id });
      else this.#event("shard", `shard ${id}: Prometheus runs the generated config again`, { shard: id });
    }
  }

  /** Remembers what shard `i` left out; an event when that set changes, not every round. */
  #noteRejected(
    i: number,
    ids: readonly string[],
    rejected: readonly RejectedTarget[],
    known: ReadonlyMap<string, KnownTarget>,
  ): void {
    const left = rejected.flatMap((r) => {
      const id = r.id ?? ids[r.index];
      return id === undefined ? [] : [id];
    });
    if (left.length === 0) {
      this.#rejected.delete(i);
      return;
    }
    const key = [...left].sort().join(",");
    const had = this.#rejected.get(i);
    this.#rejected.set(i, { ids: new Set(left), key, at: this.#now() });
    if (had?.key === key) return;
    const first = rejected[0]!;
    const k = known.get(first.id ?? ids[first.index] ?? "");
    this.#event(
      "warning",
      `shard ${i} left out ${left.length} of ${ids.length} assigned targets (first: ${k ? k.job.jobName : (first.job ?? "?")}: ${first.problems[0] ?? "no reason"}); the rest is applied`,
      { shard: i, rejected: rejected.slice(0, 10) },
    );
  }

  /**
   * What each shard holds after this round, for the API and the status page. Each shard's
   * target list is made when something reads it (an API call), not every round (issue 16).
   */
  #status(
    push: readonly (readonly string[])[],
    totals: readonly number[],
    runtimes: readonly ShardRuntime[],
    known: ReadonlyMap<string, KnownTarget>,
    series: (id: string) => number,
  ): ShardStatus[] {
    const o = this.#o;
    let scrapes: Map<string, TargetRuntime> | undefined;
    // A target listed by two shards (a move in flight) shows the copy that has a health.
    const scrapeOf = (id: string) => {
      if (!scrapes) {
        scrapes = new Map();
        for (const r of runtimes) for (const t of r.targets) if (t.health || !scrapes.has(t.id)) scrapes.set(t.id, t);
      }
      return scrapes.get(id);
    };
    return push.map((ids, id) => {
      const mem = this.#memoryOf(id);
      const total = totals[id]!;
      if (runtimes[id]?.healthy) mem.heldSeries = total;
      let targets: TargetStatus[] | undefined;
      return {
        id,
        healthy: runtimes[id]?.healthy ?? false,
        budget: o.budget,
        effectiveBudget: mem.effectiveBudget,
        restarts: o.scaler.restarts?.(id) ?? mem.crashes.length,
        downSince: mem.downSince ?? null,
        reloadError: runtimes[id]?.reloadError ?? null,
        series: total,
        get targets(): readonly TargetStatus[] {
          targets ??= ids.map((t) => {
            const k = known.get(t)!;
            return { id: t, job: k.job.jobName, target: k.target, series: series(t), shard: id, runtime: scrapeOf(t) };
          });
          return targets;
        },
      };
    });
  }

  #record(targets: number, desiredShards: number, shards: readonly ShardStatus[]): void {
    const m = this.#o.metrics;
    if (!m) return;
    m.targets.set(targets);
    m.shards.set(this.#o.scaler.current());
    m.desiredShards.set(desiredShards);
    m.shardSeries.reset();
    m.shardBudget.reset();
    m.shardUp.reset();
    for (const s of shards) {
      m.shardSeries.set({ shard: String(s.id) }, s.series);
      m.shardBudget.set({ shard: String(s.id) }, s.effectiveBudget);
      m.shardUp.set({ shard: String(s.id) }, s.healthy ? 1 : 0);
    }
  }

  #trackMoves(
    overlapping: readonly { id: string; from: number; to: number }[],
    known: ReadonlyMap<string, KnownTarget>,
    series: (id: string) => number,
  ): void {
    const now = new Set<string>();
    const name = (id: string) => {
      const k = known.get(id);
      return k ? `${k.job.jobName}/${k.target.labels.instance ?? id}` : id;
    };
    for (const { id, from, to } of overlapping) {
      now.add(id);
      if (this.#moving.has(id)) continue;
      this.#moving.set(id, { from, to, since: this.#now() });
      this.#o.metrics?.moves.inc();
      this.#o.metrics?.movedSeries.inc(series(id));
      this.#event(
        "move",
        `${name(id)} (${series(id)} series) moves from shard ${from} to shard ${to}`,
        { target: id, from, to },
        [from, to],
      );
    }
    for (const [id, { from, to }] of this.#moving) {
      if (now.has(id)) continue;
      this.#moving.delete(id);
      if (!known.has(id)) continue;
      if (this.#letGo.has(id))
        this.#event(
          "warning",
          `${name(id)} is down on both shard ${from} and shard ${to} after ${Math.round((this.#o.moveTimeoutMs ?? MOVE_TIMEOUT_MS) / 1000)} s of moving; shard ${from} let it go, shard ${to} scrapes it when it is back`,
          { target: id, from, to },
        );
      else
        this.#event("move", `${name(id)} is scraped by shard ${to}; shard ${from} let it go`, { target: id, from, to });
    }
  }

  /**
   * Moves that ran longer than moveTimeoutMs while no shard scrapes the target successfully (it
   * is down): the old shard would otherwise hold it for ever and never drain. A target the old
   * shard still scrapes stays there (a gap would follow), with one warning that the move is stuck.
   */
  #timedOutMoves(runtimes: readonly ShardRuntime[], now: number): Set<string> {
    const out = new Set<string>();
    const timeout = this.#o.moveTimeoutMs ?? MOVE_TIMEOUT_MS;
    for (const [id, m] of this.#moving) {
      if (now - m.since < timeout) continue;
      const oldUp = runtimes[m.from]?.targets.some((t) => t.id === id && t.up) === true;
      if (!oldUp) out.add(id);
      else if (!m.stuck) {
        m.stuck = true;
        this.#event(
          "warning",
          `target ${id} has not been scraped by shard ${m.to} for ${Math.round(timeout / 1000)} s although shard ${m.from} scrapes it; it stays on shard ${m.from} until shard ${m.to} does`,
          { target: id, from: m.from, to: m.to },
        );
      }
    }
    return out;
  }

  async #scale(n: number, from: number): Promise<void> {
    await this.#o.scaler.scaleTo(n);
    this.#o.metrics?.scalings.inc({ direction: n > from ? "up" : "down" });
    this.#event("scale", `shards ${from} → ${n}`, { from, to: n });
  }

  /**
   * Down only for the highest shards, once nothing is pushed to them and they have been empty
   * for the delay, and only as far down as their data is safe (or the wait is over).
   */
  async #scaleDown(
    push: readonly (readonly string[])[],
    reports: readonly ShardReport[],
    desired: number,
    now: number,
  ): Promise<void> {
    const o = this.#o;
    const count = o.scaler.current();
    const floor = Math.max(o.minShards, desired);
    const ready: number[] = [];
    for (let id = count - 1; id >= 0; id--) {
      const mem = this.#memoryOf(id);
      const empty = id >= floor && (push[id]?.length ?? 0) === 0 && (reports[id]?.assigned.length ?? 0) === 0;
      if (!empty) {
        for (let j = id; j >= 0; j--) this.#memoryOf(j).emptySince = this.#memoryOf(j).retiringSince = undefined;
        break;
      }
      mem.emptySince ??= now;
      if (now - mem.emptySince < o.scaleDownDelayMs) break;
      ready.push(id);
    }
    if (ready.length === 0) return;
    for (const id of ready) this.#memoryOf(id).retiringSince ??= now;
    const wait = o.scaleDownWaitMs ?? DEFAULT_SCALE_DOWN_WAIT_MS;
    // Every ready shard saves its data at once; they go from the top while it is safe.
    const safe = await Promise.all(
      ready.map((id) =>
        o.scaler.dataSafe
          ? o.scaler.dataSafe(id).catch((err: Error) => {
              // Said each round: the shard stays until this works or the wait is over.
              o.log?.warn({ shard: id, err }, "cannot make the drained shard's data safe yet");
              return false;
            })
          : true,
      ),
    );
    let keep = count;
    for (const [i, id] of ready.entries()) {
      if (!safe[i] && now - this.#memoryOf(id).retiringSince! < wait) break;
      if (!safe[i])
        this.#event(
          "warning",
          `shard ${id}: its data was not confirmed safe within ${wait / 1000}s; stopping it anyway`,
          {
            shard: id,
          },
        );
      keep = id;
    }
    if (keep === count) return;
    for (let id = keep; id < count; id++) {
      this.#memory.delete(id);
      this.#sent.delete(id);
      this.#checked.delete(id);
    }
    await this.#scale(keep, count);
  }
}
