/**
 * Moves without gaps (DESIGN §6): the scheduler says where each target should be; what is
 * pushed to the shards lags behind it on purpose. A target that changes shard is added to
 * its new shard first and stays on its old one until the new shard reports a successful
 * scrape of it; only then does the old shard let it go. Pure: state in, pushes out.
 */

/** What a shard reports about the targets it has (from its sidecar's runtime). */
export interface ShardReport {
  /** Target ids the shard currently has in its applied assignment. */
  readonly assigned: readonly string[];
  /** Target ids the shard's Prometheus has scraped successfully since they were assigned. */
  readonly scraped: ReadonlySet<string>;
  /** False while the shard (sidecar or Prometheus) is down or unknown. */
  readonly healthy: boolean;
}

export interface MovePlan {
  /** The target ids to push to each shard (index = shard id). */
  readonly push: readonly (readonly string[])[];
  /** Targets held on two shards right now, old shard first. */
  readonly overlapping: readonly { readonly id: string; readonly from: number; readonly to: number }[];
}

/**
 * @param desired   the scheduler's assignment, shard id -> target ids
 * @param reports   what each shard has now (index = shard id; missing = a new shard)
 * @param live      every target that currently exists: anything else is removed everywhere
 * @param letGo     moves that took too long while the target is down everywhere: done once the
 *                  new shard is healthy and has the target (it scrapes it as soon as it is up)
 */
export function planMoves(
  desired: readonly (readonly string[])[],
  reports: readonly (ShardReport | undefined)[],
  live: { has(id: string): boolean },
  letGo: ReadonlySet<string> = new Set(),
): MovePlan {
  const shardCount = Math.max(desired.length, reports.length);
  const push: Set<string>[] = Array.from({ length: shardCount }, (_, i) => new Set(desired[i] ?? []));
  const target = new Map<string, number>();
  for (const [shard, ids] of desired.entries()) for (const id of ids) target.set(id, shard);
  const overlapping: { id: string; from: number; to: number }[] = [];

  for (const [from, report] of reports.entries()) {
    if (!report) continue;
    for (const id of report.assigned) {
      if (!live.has(id)) continue; // gone from discovery: gone everywhere
      const to = target.get(id);
      if (to === undefined || to === from) continue;
      const newShard = reports[to];
      // Keep it where it is scraped until the new shard has scraped it once. A dead new shard
      // never reports a scrape, so the old one keeps the target: nothing goes unscraped.
      const arrived =
        newShard?.healthy === true && (newShard.scraped.has(id) || (letGo.has(id) && newShard.assigned.includes(id)));
      if (!arrived) {
        push[from]!.add(id);
        overlapping.push({ id, from, to });
      }
    }
  }
  return { push: push.map((s) => [...s].sort()), overlapping };
}
