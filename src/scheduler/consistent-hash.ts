import { createHash } from "node:crypto";
import { registerStrategy, type ScheduleInput, type ScheduleResult, type Strategy } from "./strategy.ts";

/** murmur3's 32-bit finalizer: cheap, well mixed. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Rendezvous weight of a target (hashed once) on a shard. */
function weight(targetHash: number, shard: number): number {
  return fmix32(targetHash ^ Math.imul(shard + 1, 0x9e3779b9));
}

/**
 * Rendezvous hashing on target identity, ignoring series: for users who want no measurement.
 * The shard count stays what it is (within --shards.min/--shards.max); adding a shard moves
 * only the targets that now rank it highest.
 */
export const consistentHash: Strategy = {
  name: "consistent-hash",
  description: "rendezvous hashing of target identity over a fixed number of shards; no measurement",
  schedule(input: ScheduleInput): ScheduleResult {
    const n = Math.max(input.minShards, Math.min(input.maxShards, Math.max(1, input.shards.length)));
    const assignment: string[][] = Array.from({ length: n }, () => []);
    const from = new Map<string, number>();
    for (const s of input.shards) for (const id of s.targets) if (!from.has(id)) from.set(id, s.id);
    // A shard down past its grace takes nothing; its targets go to their next-ranked shard.
    const down = new Set(input.shards.filter((s) => s.unavailable).map((s) => s.id));
    let movedSeries = 0;
    // Parts of a split target take distinct shards: each its best-ranked one not taken by another part.
    const taken = new Map<string, Set<number>>();
    for (const t of input.targets) {
      const used = t.group === undefined ? undefined : (taken.get(t.group) ?? new Set<number>());
      const h = createHash("sha256").update(t.id).digest().readUInt32BE(0);
      let best = 0;
      let bestWeight = -1;
      for (let s = 0; s < n; s++) {
        if (down.has(s) && down.size < n) continue;
        if (used?.has(s) && used.size < n) continue;
        const w = weight(h, s);
        if (w > bestWeight) {
          best = s;
          bestWeight = w;
        }
      }
      assignment[best]!.push(t.id);
      if (used) taken.set(t.group!, used.add(best));
      const was = from.get(t.id);
      if (was !== undefined && was !== best) movedSeries += t.series;
    }
    for (const a of assignment) a.sort();
    return { assignment, desiredShards: n, movedSeries, warnings: [] };
  },
};

registerStrategy(consistentHash);
