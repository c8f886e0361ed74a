/**
 * In-memory shards and a coordinator over them, for the control-loop unit tests. Each fake
 * shard "scrapes" what it was assigned when told to, so moves, scale-up and scale-down play
 * out round by round.
 */
import assert from "node:assert/strict";
import {
  type AssignedTarget,
  type AssignmentDelta,
  applyAssignmentDelta,
  parsePartId,
  type RejectedTarget,
} from "../../src/contract/assignment.ts";
import { Coordinator, type CoordinatorOptions } from "../../src/coordinator/coordinator.ts";
import type { CoordinatorEvent, Scaler, ShardClient, ShardRuntime, WholeSet } from "../../src/coordinator/shards.ts";
import { DiscoveryManager } from "../../src/discovery/manager.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { getStrategy } from "../../src/scheduler/index.ts";

export class FakeShard implements ShardClient {
  down = false;
  assigned: string[] = [];
  scraped = new Set<string>();
  version = -1;
  readonly series: Map<string, number>;
  constructor(series: Map<string, number>) {
    this.series = series;
  }
  /** A part keeps its share of the target's series. */
  seriesOf(id: string): number {
    const p = parsePartId(id);
    return p ? Math.ceil(this.series.get(p.target)! / p.parts) : this.series.get(id)!;
  }
  async runtime(): Promise<ShardRuntime> {
    if (this.down) throw new Error("connect ECONNREFUSED");
    return {
      healthy: true,
      version: this.version,
      assigned: this.assigned,
      targets: this.assigned.map((id) => ({
        id,
        up: this.scraped.has(id),
        health: this.scraped.has(id) ? "up" : unreachable.has(id) ? "down" : "unknown",
        series: this.scraped.has(id) ? this.seriesOf(id) : null,
      })),
      headSeries: null,
      reloadError: this.reloadError,
      deltas: this.deltas,
    };
  }
  /** What the sidecar says when Prometheus rejected the generated config. */
  reloadError: string | null = null;
  /** Addresses this shard's sidecar leaves out of a push (as for a job its config lacks). */
  refuse = new Set<string>();
  pushes = 0;
  /** Pushes that came as deltas (the rest were whole sets). */
  deltaPushes = 0;
  /** Whether it takes deltas (false: a sidecar from before them). */
  deltas = true;
  /** The held set, as a sidecar keeps it. */
  held: AssignedTarget[] = [];
  async assign(version: number, targets: WholeSet, delta?: AssignmentDelta): Promise<RejectedTarget[]> {
    if (this.down) throw new Error("connect ECONNREFUSED");
    assert.ok(version > this.version, "versions only grow");
    const refused = (t: AssignedTarget) => this.refuse.has(t.labels.__address__!);
    const reject = (t: AssignedTarget, index: number): RejectedTarget => ({
      index,
      ...(t.id === undefined ? {} : { id: t.id }),
      job: "demo",
      address: t.labels.__address__!,
      problems: ["not a job of this shard"],
    });
    let rejected: RejectedTarget[];
    if (delta && this.deltas && delta.base === this.version) {
      const set = Object.entries(delta.set).flatMap(([job, list]) => list.map((t) => ({ ...t, job })));
      rejected = set.flatMap((t, i) => (refused(t) ? [reject(t, i)] : []));
      this.held = applyAssignmentDelta(this.held, {
        ...delta,
        set: set.filter((t) => !refused(t)),
        rejected,
      });
      this.deltaPushes++;
    } else {
      const whole = typeof targets === "function" ? targets() : targets;
      rejected = whole.flatMap((t, i) => (refused(t) ? [reject(t, i)] : []));
      this.held = whole.filter((t) => !refused(t));
    }
    this.version = version;
    this.pushes++;
    this.assigned = this.held.map((t) => t.id!);
    this.scraped = new Set([...this.scraped].filter((id) => this.assigned.includes(id)));
    return rejected;
  }
  scrape() {
    if (this.down) return;
    for (const id of this.assigned) if (!unreachable.has(id)) this.scraped.add(id);
  }
}

export const idOf = new Map<string, string>();
/** Target ids no fake shard can scrape (the target is down); tests clear it when done. */
export const unreachable = new Set<string>();

export function setup(
  addresses: string[],
  seriesOf: (addr: string) => number,
  extra: Partial<CoordinatorOptions> & { dataSafe?: (id: number) => Promise<boolean> } = {},
) {
  const config = parseConfig(
    `scrape_configs:\n- job_name: demo\n  static_configs: [{targets: ${JSON.stringify(addresses)}}]\n`,
    {
      dialect: dialectFor("3.16"),
    },
  );
  const discovery = new DiscoveryManager();
  discovery.apply(config);
  const series = new Map<string, number>();
  const shards: FakeShard[] = [];
  const restarts: number[] = [];
  const scaler: Scaler & { history: number[]; restarts: (id: number) => number } = {
    history: [],
    current: () => shards.length,
    restarts: (id) => restarts[id] ?? 0,
    ...(extra.dataSafe ? { dataSafe: extra.dataSafe } : {}),
    async scaleTo(n) {
      this.history.push(n);
      while (shards.length < n) shards.push(new FakeShard(series));
      shards.length = n;
    },
  };
  let now = 0;
  const coordinator = new Coordinator(config, {
    discovery,
    strategy: getStrategy("series-balanced")!,
    scaler,
    shard: (i) => shards[i]!,
    explore: async (t) => {
      idOf.set(t.labels.instance!, t.id);
      series.set(t.id, seriesOf(t.labels.instance!));
      return series.get(t.id)!;
    },
    budget: 30_000,
    minShards: 1,
    maxShards: 20,
    scaleDownDelayMs: 1000,
    now: () => now,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  const events: CoordinatorEvent[] = [];
  /** One round; `beforeScrape` runs between the coordinator's round and the shards' scrapes. */
  const tick = async (beforeScrape: () => void = () => {}) => {
    const r = await coordinator.tick();
    beforeScrape();
    for (const s of shards) s.scrape();
    now += 600;
    return r;
  };
  return { coordinator, discovery, shards, scaler, tick, config, restarts, events };
}
