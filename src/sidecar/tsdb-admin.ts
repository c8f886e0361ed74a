import { PromshardError } from "../errors.ts";
import { httpCall } from "../util/http.ts";

/**
 * What making a drained shard's data safe asks of its Prometheus, in local mode
 * (src/local/scaler.ts) and in a cluster (src/sidecar/flush.ts) alike: all of it needs
 * `--web.enable-admin-api`, which both turn on for shards that keep their data in a bucket.
 */

function unsafe(what: string, prometheusUrl: string, status: number, text: string): PromshardError {
  const hint = status === 404 ? "; start Prometheus with --web.enable-admin-api" : "";
  return new PromshardError("shard_data_unsafe", `${what}: HTTP ${status} ${text.slice(0, 300)}${hint}`, {
    path: prometheusUrl,
  });
}

/**
 * Whether a Prometheus's instant `up` is empty: no target it scrapes, none not yet marked stale.
 * A target that left writes its end-of-run staleness markers about 1.1 scrape intervals
 * later (a 2.x Prometheus reads file SD on a 5 s tick before that): a snapshot taken earlier
 * keeps the target's series alive in the bucket for the whole lookback. Its `up` series is
 * marked stale with the rest, so none left means every marker is written.
 */
export async function noTargetsLeft(prometheusUrl: string): Promise<boolean> {
  const res = await httpCall(`${prometheusUrl}/api/v1/query?query=up`);
  if (res.status !== 200) throw unsafe("instant query up", prometheusUrl, res.status, res.text);
  return (JSON.parse(res.text) as { data?: { result?: unknown[] } }).data?.result?.length === 0;
}

/** A TSDB snapshot with the head (admin API): its directory's name under `<tsdb>/snapshots`. */
export async function snapshotWithHead(prometheusUrl: string): Promise<string> {
  const res = await httpCall(`${prometheusUrl}/api/v1/admin/tsdb/snapshot?skip_head=false`, {
    method: "POST",
    timeoutMs: 120_000,
  });
  if (res.status !== 200) throw unsafe("TSDB snapshot", prometheusUrl, res.status, res.text);
  return (JSON.parse(res.text) as { data: { name: string } }).data.name;
}

/**
 * Deletes every sample in [minTime, maxTime] (milliseconds, inclusive) from the TSDB: the head's
 * copy of a range that is now in the bucket, so that the head never becomes a second block of it.
 */
export async function deleteRange(prometheusUrl: string, minTime: number, maxTime: number): Promise<void> {
  const q = new URLSearchParams({
    "match[]": '{__name__=~".+"}',
    start: String(minTime / 1000),
    end: String(maxTime / 1000),
  });
  const res = await httpCall(`${prometheusUrl}/api/v1/admin/tsdb/delete_series?${q}`, {
    method: "POST",
    timeoutMs: 120_000,
  });
  if (res.status !== 204 && res.status !== 200) throw unsafe("delete_series", prometheusUrl, res.status, res.text);
}

/** The newest sample's timestamp in the head (ms; very negative when the head is empty). */
export async function headMaxTime(prometheusUrl: string): Promise<number> {
  const res = await httpCall(`${prometheusUrl}/api/v1/status/tsdb`);
  if (res.status !== 200) throw unsafe("TSDB status", prometheusUrl, res.status, res.text);
  const maxTime = (JSON.parse(res.text) as { data?: { headStats?: { maxTime?: unknown } } }).data?.headStats?.maxTime;
  if (typeof maxTime !== "number")
    throw unsafe("TSDB status without headStats.maxTime", prometheusUrl, res.status, res.text);
  return maxTime;
}
