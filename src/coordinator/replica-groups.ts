import type { RejectedTarget } from "../contract/assignment.ts";
import type { ShardClient, ShardRuntime, TargetRuntime } from "./shards.ts";

/**
 * HA replica groups (DESIGN §3): shard index i exists once per group (one StatefulSet per
 * group, its pod i), every copy with the same assignment. The coordinator sees one shard per
 * index through the client below; Thanos Query makes the copies one series by the `replica`
 * external label. Unlike Kvass, whose replicas each get their own distribution, ours are
 * identical per index, so any one copy answers for all.
 */

/**
 * One shard index's runtime from its groups' answers (undefined: that group's pod did not
 * answer). The index is healthy while any copy is: it is down only when every group's pod
 * is. A target counts as scraped only when every healthy copy scrapes it, so a move is
 * complete (the old shard lets go) in every group at once and no group has a hole.
 * `diverged` says the healthy copies hold different assignments (one came back with an old
 * one, or none): the coordinator then pushes again to all.
 */
export function mergeReplicaRuntimes(answers: readonly (ShardRuntime | undefined)[]): ShardRuntime {
  const healthy = answers.filter((r): r is ShardRuntime => r?.healthy === true);
  const answered = answers.filter((r): r is ShardRuntime => r !== undefined);
  const version = Math.max(-1, ...answered.map((r) => r.version));
  if (healthy.length === 0)
    return { healthy: false, version, assigned: answered[0]?.assigned ?? [], targets: [], headSeries: null };
  const [first, ...rest] = healthy as [ShardRuntime, ...ShardRuntime[]];
  const same = (a: readonly string[], b: readonly string[]) => {
    if (a.length !== b.length) return false;
    const s = new Set(a);
    return b.every((x) => s.has(x));
  };
  const diverged = rest.some((r) => r.version !== first.version || !same(r.assigned, first.assigned));
  const deltas = healthy.every((r) => r.deltas === true);
  const byId = new Map<string, TargetRuntime[]>();
  for (const r of healthy)
    for (const t of r.targets) {
      const list = byId.get(t.id) ?? [];
      list.push(t);
      byId.set(t.id, list);
    }
  const targets: TargetRuntime[] = [];
  for (const copies of byId.values()) {
    const down = copies.find((t) => !t.up);
    const up = copies.length === healthy.length && down === undefined;
    const series = copies.map((t) => t.series).filter((s): s is number => s !== null);
    // The copy that is not up says why; else the first.
    targets.push({ ...(down ?? copies[0]!), up, series: series.length > 0 ? Math.max(...series) : null });
  }
  const heads = healthy.map((r) => r.headSeries).filter((s): s is number => s !== null);
  return {
    healthy: true,
    version,
    assigned: first.assigned,
    targets,
    headSeries: heads.length > 0 ? Math.max(...heads) : null,
    reloadError: healthy.find((r) => r.reloadError)?.reloadError ?? null,
    ...(diverged ? { diverged } : {}),
    ...(deltas ? { deltas } : {}),
  };
}

/**
 * Asks every copy at once. runtime() fails only when no copy answered (the coordinator then
 * logs the first error); assign() pushes to every copy and fails only when none took it:
 * a copy that was down gets the set when it answers again (its runtime diverges). A delta
 * goes to every copy; each that does not hold its base gets the whole set instead.
 */
export function replicatedShardClient(copies: readonly ShardClient[]): ShardClient {
  /** The last answers and their merge: the same answers (lists by identity) merge the same (issue 16). */
  let last: { answers: (ShardRuntime | undefined)[]; merged: ShardRuntime } | undefined;
  return {
    async runtime(): Promise<ShardRuntime> {
      const settled = await Promise.allSettled(copies.map((c) => c.runtime()));
      const answers = settled.map((s) => (s.status === "fulfilled" ? s.value : undefined));
      if (answers.every((a) => a === undefined)) throw (settled[0] as PromiseRejectedResult).reason;
      if (last?.answers.every((a, i) => sameRuntime(a, answers[i]))) return last.merged;
      last = { answers, merged: mergeReplicaRuntimes(answers) };
      return last.merged;
    },
    async assign(version, targets, delta): Promise<readonly RejectedTarget[] | undefined> {
      const settled = await Promise.allSettled(copies.map((c) => c.assign(version, targets, delta)));
      const took = settled.filter((s) => s.status === "fulfilled");
      if (took.length === 0) throw (settled[0] as PromiseRejectedResult).reason;
      // Every copy runs the same config, so a target one leaves out, all do; said once, by id
      // where the push gave one (one copy may have taken the delta, another the whole set).
      const rejected = new Map<string | number, RejectedTarget>();
      for (const s of took)
        for (const r of s.value ?? []) if (!rejected.has(r.id ?? r.index)) rejected.set(r.id ?? r.index, r);
      return [...rejected.values()];
    },
  };
}

function sameRuntime(a: ShardRuntime | undefined, b: ShardRuntime | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.targets === b.targets &&
    a.assigned === b.assigned &&
    a.healthy === b.healthy &&
    a.version === b.version &&
    a.headSeries === b.headSeries &&
    a.reloadError === b.reloadError &&
    a.deltas === b.deltas
  );
}
