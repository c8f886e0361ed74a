import { createGunzip } from "node:zlib";
import { type Agent, type Dispatcher, interceptors, request } from "undici";
import { PromshardError } from "../errors.ts";
import { httpClientFor } from "../http/client.ts";
import type { ScrapeJob } from "../prom/config.ts";
import { createSeriesCounter, type ExpositionFormat, formatFromContentType } from "../prom/exposition/index.ts";
import { httpClientConfig } from "../prom/http-client.ts";
import type { Labels } from "../prom/labels.ts";
import { applyRules } from "../prom/relabel.ts";
import type { Target } from "../prom/targets.ts";

export interface Exploration {
  /** scrape_samples_post_metric_relabeling of one scrape. */
  readonly series: number;
  readonly samples: number;
  readonly bytes: number;
  readonly durationMs: number;
}

/** What Prometheus 3 sends; 2.x sends the same without the protobuf entries, which we do not parse. */
const ACCEPT =
  "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/** fallback_scrape_protocol values (3.x) for the formats we parse. */
const FALLBACK: Record<string, ExpositionFormat> = {
  "PrometheusText0.0.4": "text",
  "PrometheusText1.0.0": "text",
  "OpenMetricsText0.0.1": "openmetrics",
  "OpenMetricsText1.0.0": "openmetrics",
};

const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** The HTTP settings of a job, as Prometheus's scrape client applies them: auth, TLS, headers. */
export interface ScrapeClient {
  readonly dispatcher: Agent;
  readonly headers: Record<string, string>;
}

/** Builds a job's scrape client from its raw config (files read relative to the config's directory). */
export function scrapeClientFor(job: ScrapeJob, directory: string): ScrapeClient {
  const client = httpClientFor(httpClientConfig(job.raw), directory);
  const headers: Record<string, string> = {
    Accept: ACCEPT,
    "Accept-Encoding": "gzip",
    "User-Agent": "promshard-explorer",
    "X-Prometheus-Scrape-Timeout-Seconds": String(job.scrapeTimeoutMs / 1000),
    ...client.headers,
  };
  return { dispatcher: client.dispatcher, headers };
}

/** Redirects Prometheus follows (Go's http.Client stops after 10). */
const MAX_REDIRECTS = 10;
const withRedirects = new WeakMap<Agent, Dispatcher>();

/**
 * The client's dispatcher, following redirects unless the job says `follow_redirects: false`.
 * undici ignores `maxRedirections` as an Agent option; only the redirect interceptor follows.
 * It drops Authorization on a redirect to another origin (Prometheus sends it on): safer, and
 * the same count wherever the redirect stays on the target's host.
 */
function following(client: ScrapeClient, job: ScrapeJob): Dispatcher {
  if (job.raw.follow_redirects === false) return client.dispatcher;
  let d = withRedirects.get(client.dispatcher);
  if (!d) {
    d = client.dispatcher.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
    withRedirects.set(client.dispatcher, d);
  }
  return d;
}

/**
 * Scrapes a target once, with its job's HTTP settings and timeout, and counts its series
 * after metric_relabel_configs exactly as Prometheus would: what the scheduler needs before
 * the target's shard reports it. The body is counted as it streams; nothing is stored.
 * `labelNames`, when given, collects the label names of the series kept (the labels a
 * split target's parts hash over); only then are the labels of a job without rules materialised.
 */
export async function exploreTarget(
  target: Pick<Target, "labels" | "scrapeUrl">,
  job: ScrapeJob,
  client: ScrapeClient,
  labelNames?: Set<string>,
): Promise<Exploration> {
  const started = performance.now();
  const signal = AbortSignal.timeout(job.scrapeTimeoutMs);
  const targetLabels: Labels = target.labels;
  try {
    const res = await request(target.scrapeUrl, {
      headers: client.headers,
      dispatcher: following(client, job),
      signal,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new PromshardError("discovery_failed", `server returned HTTP status ${res.statusCode}`);
    }
    const fallback = FALLBACK[str(job.raw.fallback_scrape_protocol)];
    const format = formatFromContentType(res.headers["content-type"] as string | undefined, {
      dialect: job.dialect,
      ...(fallback ? { fallback } : {}),
    });
    const gzip = String(res.headers["content-encoding"] ?? "").includes("gzip");
    const counter = createSeriesCounter({
      format,
      dialect: job.dialect,
      ...(job.metricRelabelConfigs.length > 0 || labelNames
        ? {
            // Straight into the rules' working map, and out unsorted: only the count is kept.
            metricRelabel: (labels: Labels) => {
              const lb = new Map<string, string>();
              for (const n in labels) lb.set(n, labels[n]!);
              if (!job.honorLabels) for (const n in targetLabels) lb.set(n, targetLabels[n]!);
              if (!applyRules(lb, job.metricRelabelConfigs, job.dialect)) return null;
              if (labelNames) for (const n of lb.keys()) labelNames.add(n);
              return Object.fromEntries(lb);
            },
          }
        : {}),
    });
    let bytes = 0;
    const body = gzip ? res.body.pipe(createGunzip()) : res.body;
    for await (const chunk of body) {
      bytes += (chunk as Uint8Array).length;
      counter.write(chunk as Uint8Array);
    }
    const count = counter.end();
    return { series: count.series, samples: count.samples, bytes, durationMs: performance.now() - started };
  } catch (err) {
    if (err instanceof PromshardError)
      throw new PromshardError(err.code, err.message, { path: target.scrapeUrl, cause: err });
    const reason = signal.aborted
      ? `no answer within the job's scrape_timeout of ${job.scrapeTimeoutMs} ms`
      : (err as Error).message;
    throw new PromshardError("discovery_failed", `explore scrape failed: ${reason}`, {
      path: target.scrapeUrl,
      cause: err,
    });
  }
}

/** Most exploring scrapes in flight by default; they start at EXPLORE_START. */
export const EXPLORE_CONCURRENCY = 256;
const EXPLORE_START = 16;
/** A window must finish this much faster than the one before for the concurrency to double again. */
const GAIN = 1.2;

/**
 * Runs `fn` over `items`, `start` at once at first, doubling up to `max` for as long as each
 * doubling made completions faster (windows of as many completions as run at once): exploring
 * waits on the network (16 at once explored ~300 targets/s, 100,000 new targets in minutes)
 * until the coordinator's own CPU is what limits, and more scrapes at once would only hold
 * more bodies in memory (issue 16).
 */
export async function growingParallel<T>(
  items: readonly T[],
  max: number,
  fn: (item: T) => Promise<void>,
  start = EXPLORE_START,
): Promise<void> {
  let next = 0;
  let limit = Math.max(1, Math.min(start, max));
  let done = 0;
  let windowStart = performance.now();
  let windowDone = 0;
  let lastRate = 0;
  let growing = true;
  const workers: Promise<void>[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      await fn(items[next++]!);
      done++;
      if (!growing || done - windowDone < limit) continue;
      const rate = (done - windowDone) / Math.max(1e-3, performance.now() - windowStart);
      windowStart = performance.now();
      windowDone = done;
      if (rate < lastRate * GAIN || limit >= max) {
        growing = false;
        continue;
      }
      lastRate = rate;
      const more = Math.min(limit, max - limit);
      limit += more;
      for (let k = 0; k < more; k++) workers.push(worker());
    }
  };
  for (let k = 0; k < Math.min(limit, items.length); k++) workers.push(worker());
  // Workers added while waiting are awaited too.
  for (let k = 0; k < workers.length; k++) await workers[k];
}
