import type { CoordinatorEvent } from "./shards.ts";

/** What the coordinator remembers of a shard between rounds (all of it can be lost safely). */
export interface ShardMemory {
  lastAssigned: readonly string[];
  wasHealthy: boolean;
  downSince: number | undefined;
  restartsSeen: number | undefined;
  crashes: number[];
  effectiveBudget: number;
  heldSeries: number;
  emptySince: number | undefined;
  retiringSince: number | undefined;
}

/** A crash-looping shard's budget becomes this share of what it held when it went down. */
const CRASH_BUDGET_SHARE = 0.8;

export function newShardMemory(budget: number): ShardMemory {
  return {
    lastAssigned: [],
    wasHealthy: false,
    downSince: undefined,
    restartsSeen: undefined,
    crashes: [],
    effectiveBudget: budget,
    heldSeries: 0,
    emptySince: undefined,
    retiringSince: undefined,
  };
}

export interface CrashPolicy {
  /** The configured budget, given back once a shard stayed up for a whole window. */
  readonly budget: number;
  /** Two restarts within this window make a crash loop. */
  readonly crashWindowMs: number;
}

/**
 * One round's look at a shard (DESIGN §6, failures without cascades): up/down transitions,
 * restarts (the scaler's count when it knows it, else a fall from healthy), and the crash
 * loop rule: two restarts within the window lower its effective budget to a share of the
 * series it held, a window without one gives the budget back. Updates `m`; returns what to tell.
 */
export function observeShard(
  m: ShardMemory,
  id: number,
  healthy: boolean,
  assigned: readonly string[],
  restarts: number | undefined,
  now: number,
  policy: CrashPolicy,
): CoordinatorEvent[] {
  const events: CoordinatorEvent[] = [];
  const window = policy.crashWindowMs;
  let crashed = 0;
  if (restarts !== undefined) {
    if (m.restartsSeen !== undefined && restarts > m.restartsSeen) crashed = restarts - m.restartsSeen;
    m.restartsSeen = restarts;
  }
  if (healthy) {
    if (m.downSince !== undefined)
      events.push({ kind: "shard", text: `shard ${id} is back after ${((now - m.downSince) / 1000).toFixed(1)}s` });
    m.downSince = undefined;
    m.lastAssigned = assigned;
  } else if (m.downSince === undefined) {
    m.downSince = now;
    // Without the scaler's restart count, going down is what a crash looks like from here.
    if (restarts === undefined && m.wasHealthy) crashed = 1;
    events.push({ kind: "shard", text: `shard ${id} is down; it keeps its targets for the grace period` });
  }
  m.wasHealthy = healthy;
  for (let i = 0; i < crashed; i++) m.crashes.push(now);
  m.crashes = m.crashes.filter((t) => now - t < window);
  if (crashed > 0 && m.crashes.length >= 2 && m.heldSeries > 0) {
    const lowered = Math.floor(m.heldSeries * CRASH_BUDGET_SHARE);
    if (lowered < m.effectiveBudget) {
      m.effectiveBudget = lowered;
      events.push({
        kind: "warning",
        text: `shard ${id} restarted ${m.crashes.length} times within ${window / 1000}s while holding ${m.heldSeries} series: its budget is lowered to ${lowered} until it stays up for that long`,
      });
    }
  } else if (m.crashes.length === 0 && m.effectiveBudget < policy.budget && healthy) {
    m.effectiveBudget = policy.budget;
    events.push({
      kind: "shard",
      text: `shard ${id} stayed up for ${window / 1000}s: its budget is ${policy.budget} again`,
    });
  }
  return events;
}
