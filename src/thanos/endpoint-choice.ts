/**
 * Which Thanos sidecar Query asks for each shard index, when replica groups run the same
 * shard index twice or more (pure).
 *
 * Listing every group's sidecar and deduplicating over `replica` fails twice over
 * (docs/thanos.md, "HA replica groups", measured with thanos 0.42.4):
 * - `chain` dedup (which moves need, see args.ts) interleaves the groups' samples, whose
 *   timestamps differ by the groups' scrape phases; a counter then seems to go down
 *   whenever one group's scrape started earlier but was read later, and `rate` sees a reset;
 * - with strict endpoints and partial responses off, one group's pod down fails every query.
 * So Query gets one sidecar per shard index, strict: the group it asked before while that
 * pod stays ready (no flapping), else the ready pod of the lowest group that is warm (has
 * scraped its assignment: a failover). Until one is, the index keeps its sidecar listed,
 * being deleted or gone: a pod that has not scraped yet would answer with fewer series, a
 * wrong number without an error, where the one it replaces answers or fails loudly. A shard
 * index whose every pod is down keeps its last sidecar listed, so queries fail loudly instead
 * of answering without its series; an index that never had a ready pod has no data yet and is
 * listed non-strict (Query skips it until it answers). Indices at or above the shard count
 * (scaled down: their data is in the bucket first) are dropped.
 */
import type { Endpoint } from "./files.ts";
import type { WarmProbe } from "./warm.ts";

/** One shard pod as Query's endpoint file needs it. */
export interface ShardReplica {
  /** Shard index: the pod's ordinal in its StatefulSet. */
  readonly index: number;
  /** Replica group (promshard.io/replica-group; 0 when absent). */
  readonly group: number;
  /** host:port of its Thanos sidecar's gRPC StoreAPI. */
  readonly address: string;
  /** Ready and not being deleted. */
  readonly ready: boolean;
  /** How to tell whether it has scraped its assignment (warm.ts); absent: nothing to ask, taken as warm. */
  readonly probe?: WarmProbe;
}

export interface EndpointChoice {
  readonly endpoints: Endpoint[];
  /** Per shard index that has been served: the address listed for it (the next call's `previous`). */
  readonly chosen: ReadonlyMap<number, string>;
  /** Indices whose address changed from one served pod to another. */
  readonly failovers: readonly number[];
  /** Indices that were served and have no ready pod now: queries touching them fail. */
  readonly unavailable: readonly number[];
  /** Indices whose chosen pod is not ready, with ready pods not known to be warm: ask those, then choose again. */
  readonly waiting: readonly { index: number; candidates: readonly ShardReplica[] }[];
}

export function chooseEndpoints(
  replicas: readonly ShardReplica[],
  shards: number,
  previous: ReadonlyMap<number, string>,
  extra: readonly Endpoint[] = [],
  warm: (r: ShardReplica) => boolean = () => true,
): EndpointChoice {
  const byIndex = new Map<number, ShardReplica[]>();
  for (const r of replicas) {
    if (r.index >= shards) continue;
    const list = byIndex.get(r.index) ?? [];
    list.push(r);
    byIndex.set(r.index, list);
  }
  const endpoints: Endpoint[] = [...extra];
  const chosen = new Map<number, string>();
  const failovers: number[] = [];
  const unavailable: number[] = [];
  const waiting: { index: number; candidates: ShardReplica[] }[] = [];
  const indices = new Set([...byIndex.keys(), ...[...previous.keys()].filter((i) => i < shards)]);
  for (const index of [...indices].sort((a, b) => a - b)) {
    const pods = (byIndex.get(index) ?? []).sort((a, b) => a.group - b.group || cmp(a.address, b.address));
    const before = previous.get(index);
    const ready = pods.filter((p) => p.ready);
    const kept = ready.find((p) => p.address === before);
    // A new index has no data anywhere yet: any ready pod serves it.
    const pick = kept ?? (before === undefined ? ready[0] : ready.find(warm));
    if (!pick && before !== undefined && ready.length > 0) {
      waiting.push({ index, candidates: ready });
      chosen.set(index, before);
      endpoints.push({ address: before, strict: true });
    } else if (pick) {
      if (before !== undefined && before !== pick.address) failovers.push(index);
      chosen.set(index, pick.address);
      endpoints.push({ address: pick.address, strict: true });
    } else if (before !== undefined) {
      unavailable.push(index);
      chosen.set(index, before);
      endpoints.push({ address: before, strict: true });
    } else if (pods[0]) {
      endpoints.push({ address: pods[0].address });
    }
  }
  return { endpoints, chosen, failovers, unavailable, waiting };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
