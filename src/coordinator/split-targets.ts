import type { ScrapeJob } from "../prom/config.ts";
import { parsePartId, partId } from "../scheduler/split.ts";
import type { ShardReport } from "./moves.ts";
import type { IndexedTarget, KnownTarget } from "./target-index.ts";

const NAME = "__name__";

/**
 * The coordinator's side of split targets (src/scheduler/split.ts): what the parts measure
 * adds up to the whole target's series, the labels its parts hash over, and the payload each
 * part is pushed with.
 */

/**
 * Each split target's series (after metric relabeling, as a whole target reports them) from
 * what its parts' shards measured: of the part counts reported (two while a split changes),
 * the one with most parts measured, scaled up for parts not measured yet.
 */
export function wholeFromParts(measured: ReadonlyMap<string, number>): Map<string, number> {
  const by = new Map<string, Map<number, { sum: number; n: number }>>();
  for (const [id, series] of measured) {
    const p = parsePartId(id);
    if (!p) continue;
    const counts = by.get(p.target) ?? new Map<number, { sum: number; n: number }>();
    const c = counts.get(p.parts) ?? { sum: 0, n: 0 };
    c.sum += series;
    c.n++;
    counts.set(p.parts, c);
    by.set(p.target, counts);
  }
  const out = new Map<string, number>();
  for (const [target, counts] of by) {
    const [parts, c] = [...counts].sort((a, b) => b[1].n - a[1].n || b[0] - a[0])[0]!;
    out.set(target, Math.round((c.sum * parts) / c.n));
  }
  return out;
}

/** Learns a target's label names with one exploring scrape (the coordinator's explore option). */
export type LearnNames = (target: IndexedTarget, job: ScrapeJob, names: Set<string>) => Promise<unknown>;

/**
 * The label names a split target's parts hash over. Learned once per target by an exploring
 * scrape that records the names of the series kept; every split target of a job hashes over
 * the union of its job's names, so that a shard's rules for one job are one hashmod per part
 * count. Until a target's names are known (or when the scrape fails) it hashes over `__name__`
 * alone: still every series on exactly one part, spread by metric name only.
 */
export class SplitLabels {
  readonly #names = new Map<string, ReadonlySet<string>>();

  /** Scrapes the split targets whose names are not known; the ones that fail are tried next round. */
  async learn(
    split: Iterable<string>,
    known: ReadonlyMap<string, KnownTarget>,
    learn: LearnNames,
    onError: (id: string, err: unknown) => void,
  ): Promise<void> {
    for (const id of this.#names.keys()) if (!known.has(id)) this.#names.delete(id);
    const missing = [...split].filter((id) => !this.#names.has(id) && known.has(id));
    await Promise.all(
      missing.map(async (id) => {
        const k = known.get(id)!;
        const names = new Set<string>();
        try {
          await learn(k.target, k.job, names);
          this.#names.set(id, names);
        } catch (err) {
          onError(id, err);
        }
      }),
    );
  }

  /** `__name__` first, then the sorted names every split target of each job shows, per job name. */
  byJob(split: Iterable<string>, known: ReadonlyMap<string, KnownTarget>): Map<string, readonly string[]> {
    const union = new Map<string, Set<string>>();
    for (const id of split) {
      const k = known.get(id);
      if (!k) continue;
      const names = union.get(k.job.jobName) ?? new Set<string>();
      for (const n of this.#names.get(id) ?? []) names.add(n);
      union.set(k.job.jobName, names);
    }
    const out = new Map<string, readonly string[]>();
    for (const [job, names] of union) {
      names.delete(NAME);
      out.set(job, [NAME, ...[...names].sort()]);
    }
    return out;
  }
}

/**
 * What the round plans and pushes: every whole target as it is, and for a split target one
 * entry per part, its payload carrying the split.
 */
export function itemsOf(
  known: ReadonlyMap<string, KnownTarget>,
  parts: ReadonlyMap<string, number>,
  byJob: ReadonlyMap<string, readonly string[]>,
): ReadonlyMap<string, KnownTarget> {
  // Without splits the items are the targets: the round's own map, not a copy of 100,000s.
  if (parts.size === 0) return known;
  const out = new Map<string, KnownTarget>();
  for (const [id, k] of known) {
    const n = parts.get(id);
    if (n === undefined) out.set(id, k);
    else for (let part = 0; part < n; part++) out.set(partId(id, part, n), itemOf(k, part, n, byJob));
  }
  return out;
}

function itemOf(
  k: KnownTarget,
  part: number,
  parts: number,
  byJob: ReadonlyMap<string, readonly string[]>,
): KnownTarget {
  const by = byJob.get(k.job.jobName) ?? [NAME];
  return { target: k.target, job: k.job, payload: { ...k.payload, split: { part, parts, by } } };
}

/**
 * What a shard holds of a live target that the round no longer plans (a split that began,
 * ended or changed its part count): it stays on that shard, with its payload, until every
 * item the round plans for the target has been scraped once, as a moved target stays on its
 * old shard (src/coordinator/moves.ts). Nothing goes unscraped meanwhile; the overlap is the
 * same series twice, one series at the global view's deduplication.
 */
export function handover(
  reports: readonly ShardReport[],
  items: ReadonlyMap<string, KnownTarget>,
  known: ReadonlyMap<string, KnownTarget>,
  byJob: ReadonlyMap<string, readonly string[]>,
): { keep: Map<number, string[]>; items: Map<string, KnownTarget> } {
  const keep = new Map<number, string[]>();
  const held = new Map<string, KnownTarget>();
  // Most rounds every assigned item is planned: nothing to hand over, nothing else to index.
  if (reports.every((r) => !r.healthy || r.assigned.every((id) => items.has(id)))) return { keep, items: held };
  const scraped = new Set<string>();
  for (const r of reports) if (r.healthy) for (const id of r.scraped) scraped.add(id);
  const planned = new Map<string, string[]>();
  for (const id of items.keys()) {
    const t = parsePartId(id)?.target ?? id;
    planned.set(t, [...(planned.get(t) ?? []), id]);
  }
  for (const [shard, r] of reports.entries()) {
    if (!r.healthy) continue;
    for (const id of r.assigned) {
      if (items.has(id)) continue;
      const p = parsePartId(id);
      const k = known.get(p?.target ?? id);
      if (!k || planned.get(p?.target ?? id)!.every((n) => scraped.has(n))) continue;
      keep.set(shard, [...(keep.get(shard) ?? []), id]);
      held.set(id, p ? itemOf(k, p.part, p.parts, byJob) : k);
    }
  }
  return { keep, items: held };
}
