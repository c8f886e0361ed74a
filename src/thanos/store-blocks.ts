import { PromshardError } from "../errors.ts";
import { httpCall } from "../util/http.ts";

/**
 * Whether Store Gateways serve every block named, so that Thanos Query answers from them:
 * the confirmation that a drained shard's data is in the bucket, read from the bucket's side
 * (each gateway's `/api/v1/blocks?view=loaded`, which lists what it has loaded after its last
 * bucket sync). A block counts when any of the gateways serves it (a sharded set splits them).
 */
export async function storesServe(storeUrls: readonly string[], blocks: readonly string[]): Promise<boolean> {
  if (blocks.length === 0) return true;
  const served = new Set<string>();
  for (const url of storeUrls) {
    const res = await httpCall(`${url}/api/v1/blocks?view=loaded`);
    if (res.status !== 200)
      throw new PromshardError(
        "global_query_failed",
        `/api/v1/blocks?view=loaded: HTTP ${res.status} ${res.text.slice(0, 200)}`,
        { path: `the Store Gateway at ${url}` },
      );
    for (const b of (JSON.parse(res.text) as { data?: { blocks?: { ulid: string }[] } }).data?.blocks ?? [])
      served.add(b.ulid);
  }
  return blocks.every((b) => served.has(b));
}
