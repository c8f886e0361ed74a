import { lookup } from "node:dns/promises";
import { PromshardError } from "../errors.ts";
import { httpCall } from "../util/http.ts";

/** A block as a Store Gateway has loaded it: what Query routes by (its range and external labels). */
export interface LoadedBlock {
  readonly ulid: string;
  readonly minTime: number;
  readonly maxTime: number;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * Whether Thanos Query answers from the Store Gateways for every block named: the
 * confirmation that a drained shard's data is served from the bucket before its pod goes.
 * Undefined when it does; otherwise what is still awaited, in words for the drain's log.
 *
 * Two steps, each read from the component that decides it:
 * 1. the gateways have loaded the blocks (each one's `/api/v1/blocks?view=loaded`, what it
 *    holds after its last bucket sync; a block counts when any gateway serves it, as a
 *    sharded set splits them);
 * 2. every Query routes to a gateway for them (its `/api/v1/stores`): Query sends a query
 *    only to stores whose advertised time range and external labels match it, and learns
 *    them by an Info call each `--endpoint.info-timeout` (longer when calls time out). A
 *    gateway that had no block of the range before is skipped until then, without a warning,
 *    so a pod stopped in between would leave a silent hole in every answer.
 */
export async function bucketServes(
  storeUrls: readonly string[],
  queryUrls: readonly string[],
  ulids: readonly string[],
): Promise<string | undefined> {
  if (ulids.length === 0) return undefined;
  const loaded = await loadedBlocks(storeUrls);
  const absent = ulids.filter((b) => !loaded.has(b));
  if (absent.length > 0) return `waiting for the Store Gateway to load ${absent.join(", ")}`;
  const blocks = ulids.map((b) => loaded.get(b) as LoadedBlock);
  const pending: string[] = [];
  for (const url of await expandDnsUrls(queryUrls)) {
    const res = await httpCall(`${url}/api/v1/stores`);
    if (res.status !== 200) throw queryError(url, res.status, res.text);
    const missing = unrouted(JSON.parse(res.text), blocks);
    if (missing.length > 0) pending.push(`${hostOf(url)} (${missing.join(", ")})`);
  }
  return pending.length > 0
    ? `loaded by the Store Gateway; waiting for Thanos Query to route to it for them: ${pending.join("; ")}`
    : undefined;
}

/** Every block the gateways have loaded, by ULID. */
async function loadedBlocks(storeUrls: readonly string[]): Promise<Map<string, LoadedBlock>> {
  const out = new Map<string, LoadedBlock>();
  for (const url of storeUrls) {
    const res = await httpCall(`${url}/api/v1/blocks?view=loaded`);
    if (res.status !== 200)
      throw new PromshardError(
        "global_query_failed",
        `/api/v1/blocks?view=loaded: HTTP ${res.status} ${res.text.slice(0, 200)}`,
        { path: `the Store Gateway at ${hostOf(url)}` },
      );
    type Meta = { ulid: string; minTime: number; maxTime: number; thanos?: { labels?: Record<string, string> } };
    for (const b of (JSON.parse(res.text) as { data?: { blocks?: Meta[] } }).data?.blocks ?? [])
      out.set(b.ulid, { ulid: b.ulid, minTime: b.minTime, maxTime: b.maxTime, labels: b.thanos?.labels ?? {} });
  }
  return out;
}

/**
 * The ULIDs of `blocks` that a Query's `/api/v1/stores` answer routes to no Store Gateway:
 * none of its `store` endpoints advertises a range holding the block and a label set
 * carrying the block's external labels (Thanos's storeMatches in pkg/store/proxy.go).
 */
export function unrouted(answer: unknown, blocks: readonly LoadedBlock[]): string[] {
  type Status = { minTime?: number; maxTime?: number; labelSets?: Record<string, string>[] | null };
  const stores = ((answer as { data?: { store?: Status[] } } | null)?.data?.store ?? []).filter(
    (s): s is Status => typeof s === "object" && s !== null,
  );
  return blocks
    .filter(
      (b) =>
        !stores.some(
          (s) =>
            (s.minTime ?? Number.POSITIVE_INFINITY) <= b.minTime &&
            (s.maxTime ?? Number.NEGATIVE_INFINITY) >= b.maxTime &&
            (s.labelSets ?? []).some((set) => Object.entries(b.labels).every(([k, v]) => set?.[k] === v)),
        ),
    )
    .map((b) => b.ulid);
}

/**
 * URLs with Thanos's `dns+` prefix stand for every address their host resolves to (e.g. a
 * headless Service's ready pods: `dns+http://query-headless.monitoring.svc:9090`); others as
 * they are. A name that resolves to nothing stands for nothing: no such Query answers anyone.
 */
export async function expandDnsUrls(urls: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const spec of urls) {
    if (!spec.startsWith("dns+")) {
      out.push(spec);
      continue;
    }
    const u = new URL(spec.slice(4));
    const found = await lookup(u.hostname, { all: true }).catch((err: { code?: string }) => {
      if (err.code === "ENOTFOUND" || err.code === "ENODATA") return [];
      throw new PromshardError("global_query_failed", `resolving ${u.hostname}: ${err.code ?? String(err)}`, {
        path: "--scale-down.query-url",
      });
    });
    for (const a of found) {
      const v = new URL(u);
      v.hostname = a.family === 6 ? `[${a.address}]` : a.address;
      out.push(v.toString().replace(/\/+$/, ""));
    }
  }
  return out;
}

function queryError(url: string, status: number, text: string): PromshardError {
  return new PromshardError("global_query_failed", `/api/v1/stores: HTTP ${status} ${text.slice(0, 200)}`, {
    path: `Thanos Query at ${hostOf(url)}`,
  });
}

/** host:port alone: a URL may carry a password, and an error or a log must not. */
function hostOf(url: string): string {
  return URL.canParse(url) ? new URL(url).host : "(not a URL)";
}
