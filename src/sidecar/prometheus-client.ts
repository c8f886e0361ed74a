/**
 * The few calls the sidecar makes to its own Prometheus, over its HTTP API. Every call has a
 * timeout; a Prometheus that cannot be reached is a PrometheusUnreachable, one that answers
 * with an error a PrometheusApiError carrying Prometheus's own text.
 */
import { type HttpAnswer, type HttpCallOptions, httpCall, unreachableReason } from "../util/http.ts";

/** The parts of an `/api/v1/targets` active target the sidecar reads (both 2.x and 3.x have them). */
export interface PromActiveTarget {
  readonly scrapePool: string;
  readonly labels: Record<string, string>;
  readonly scrapeUrl: string;
  readonly health: "up" | "down" | "unknown";
  readonly lastScrape: string;
  readonly lastScrapeDuration: number;
  readonly lastError: string;
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

export interface RuntimeInfo {
  readonly startTime: string;
  readonly reloadConfigSuccess: boolean;
  readonly lastConfigTime: string;
}

export class PrometheusUnreachable extends Error {
  constructor(url: string, cause: unknown) {
    const reason = unreachableReason(cause);
    super(`Prometheus at ${url} is unreachable: ${reason}`, { cause });
    this.name = "PrometheusUnreachable";
  }
}

export class PrometheusApiError extends Error {
  readonly status: number;
  /** Prometheus's own words (the response body, or the API's `error`). */
  readonly text: string;

  constructor(url: string, status: number, text: string) {
    super(`${url}: HTTP ${status}: ${text}`);
    this.name = "PrometheusApiError";
    this.status = status;
    this.text = text;
  }
}

export class PrometheusClient {
  readonly url: string;
  readonly #base: string;
  readonly #timeoutMs: number;

  constructor(url: string, opts: { timeoutMs?: number } = {}) {
    this.url = url.replace(/\/+$/, "");
    this.#base = `${this.url}/`;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async #fetch(path: string, init: HttpCallOptions = {}, timeoutMs = this.#timeoutMs): Promise<HttpAnswer> {
    try {
      return await httpCall(new URL(path, this.#base).toString(), { ...init, timeoutMs });
    } catch (err) {
      throw new PrometheusUnreachable(this.url, err);
    }
  }

  async #api<T>(path: string, timeoutMs?: number): Promise<T> {
    const { status, text } = await this.#fetch(`api/v1/${path}`, {}, timeoutMs);
    let body: { status?: string; data?: T; error?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new PrometheusApiError(`${this.url}/api/v1/${path}`, status, text.trim().slice(0, 500));
    }
    if (status !== 200 || body.status !== "success") {
      throw new PrometheusApiError(`${this.url}/api/v1/${path}`, status, body.error ?? text.trim().slice(0, 500));
    }
    return body.data as T;
  }

  /** /-/ready: true when ready, false while it starts (503); throws when unreachable. */
  async ready(): Promise<boolean> {
    const { status } = await this.#fetch("-/ready", {}, Math.min(this.#timeoutMs, 5_000));
    return status === 200;
  }

  /**
   * POST /-/reload. Resolves when Prometheus applied the config; a rejected config is a
   * PrometheusApiError whose text is Prometheus's reason ("failed to reload config: …").
   */
  async reload(): Promise<void> {
    const { status, text } = await this.#fetch("-/reload", { method: "POST" }, Math.max(this.#timeoutMs, 60_000));
    if (status !== 200) throw new PrometheusApiError(`${this.url}/-/reload`, status, text.trim());
  }

  buildInfo(): Promise<{ version: string }> {
    return this.#api("status/buildinfo", 3_000);
  }

  runtimeInfo(): Promise<RuntimeInfo> {
    return this.#api("status/runtimeinfo");
  }

  async activeTargets(): Promise<PromActiveTarget[]> {
    const data = await this.#api<{ activeTargets: PromActiveTarget[] }>("targets?state=active");
    return data.activeTargets;
  }

  /** An instant query that must return a vector. */
  async vector(expr: string): Promise<PromSample[]> {
    const data = await this.#api<{
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    }>(`query?query=${encodeURIComponent(expr)}`);
    if (data.resultType !== "vector") throw new PrometheusApiError(`query ${expr}`, 200, `got a ${data.resultType}`);
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /**
   * One sample of Prometheus's own /metrics (it need not scrape itself for this): the value of
   * the first line for `name` without labels, or undefined.
   */
  async ownMetric(name: string): Promise<number | undefined> {
    const { status, text } = await this.#fetch("metrics", { headers: { accept: "text/plain;version=0.0.4" } });
    if (status !== 200) throw new PrometheusApiError(`${this.url}/metrics`, status, text.trim().slice(0, 500));
    const m = new RegExp(`^${name}(?:\\{\\})? (\\S+)`, "m").exec(text);
    return m ? Number(m[1]) : undefined;
  }
}
