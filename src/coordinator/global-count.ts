import { request } from "undici";
import { PromshardError } from "../errors.ts";
import { SCRAPE_SERIES } from "./coordinator.ts";

/**
 * The series the global view holds, as its scrapes report them: what every scrape kept after
 * metric relabeling plus the series each scrape adds. Its cost grows with the targets, not
 * the series (a count over every series would read the whole index of every shard); a split
 * target's parts each count their share and their own `up`, as in the shards' heads.
 */
export const GLOBAL_SERIES_QUERY = `sum(scrape_samples_post_metric_relabeling) + ${SCRAPE_SERIES} * count(up)`;

/** The global view's series now; 0 when it holds no scrape yet. */
export async function globalSeries(queryUrl: string, timeoutMs = 5_000): Promise<number> {
  const at = `${queryUrl.replace(/\/+$/, "")}/api/v1/query?${new URLSearchParams({ query: GLOBAL_SERIES_QUERY })}`;
  const fail = (why: string, cause?: unknown) =>
    new PromshardError(
      "global_query_failed",
      `global view ${new URL(queryUrl).origin}: ${why}; the status page shows its last count until it answers`,
      cause === undefined ? {} : { cause },
    );
  let body: unknown;
  try {
    const res = await request(at, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw fail(`GET /api/v1/query returned HTTP ${res.statusCode}`);
    }
    body = await res.body.json();
  } catch (err) {
    if (err instanceof PromshardError) throw err;
    throw fail(`cannot query it (${(err as Error).message})`, err);
  }
  const result = (body as { data?: { result?: unknown } } | null)?.data?.result;
  if (!Array.isArray(result)) throw fail("its answer has no data.result");
  const value = (result[0] as { value?: [unknown, unknown] } | undefined)?.value?.[1];
  if (result.length === 0) return 0;
  const n = Number(value);
  if (!Number.isFinite(n)) throw fail(`its answer is not a number (${String(value).slice(0, 40)})`);
  return n;
}
