import { chmod, copyFile, mkdir, readFile, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { ReloadState, ReloadStatus } from "../contract/runtime-report.ts";
import { Counter, Gauge, type Registry } from "../observability/metrics.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { type Backoff, backoffDelay } from "../util/backoff.ts";
import { sha256 } from "../util/hash.ts";
import { PrometheusApiError, type PrometheusClient } from "./prometheus-client.ts";

export interface ReloaderOptions {
  /** The generated prometheus.yml that Prometheus's --config.file names. */
  readonly path: string;
  readonly client: PrometheusClient;
  readonly log: Logger;
  readonly registry?: Registry;
  /** Backoff between attempts: initial, doubling up to max. Default 1 s to 2 min. */
  readonly backoff?: Backoff;
  /** Mode of the generated file, which holds the jobs' credentials (default 0640; see outputFileMode). */
  readonly fileMode?: number;
}

/**
 * Puts a generated config in place and makes Prometheus load it. The previous config is kept
 * as `<path>.prev` while a change is in flight: when Prometheus rejects the new one (an error
 * promshard's own validation cannot see, such as a broken rule file), the previous one is
 * renamed back, so disk and Prometheus both stay on the last good config, the error is kept
 * in Prometheus's own words, and the new config is tried again with exponential backoff
 * (each attempt has it on disk only for the length of its POST /-/reload).
 * When Prometheus cannot be reached the new file stays: Prometheus reads it when it starts,
 * which the next attempt notices from its `startTime` without reloading.
 */
export class Reloader {
  readonly #opts: ReloaderOptions;
  readonly #prev: string;
  /** Mode of the generated file (see ReloaderOptions.fileMode); the sidecar sets it at start. */
  fileMode: number;
  #onDisk: string | undefined;
  #desired: string | undefined;
  #writtenAt = 0;
  /** Whether `<path>.prev` holds the config that was in place before the one in flight. */
  #prevExists = false;
  #state: ReloadState = "ok";
  #appliedHash: string | null = null;
  #lastSuccess: string | null = null;
  #lastError: string | null = null;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #nextAttemptAt: number | undefined;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly #reloads: Counter<"result"> | undefined;
  readonly #ok: Gauge | undefined;

  constructor(opts: ReloaderOptions) {
    this.#opts = opts;
    this.#prev = `${opts.path}.prev`;
    this.fileMode = opts.fileMode ?? 0o640;
    if (opts.registry) {
      this.#reloads = new Counter({
        name: "promshard_sidecar_reloads_total",
        help: "POST /-/reload calls to Prometheus, by result (success, rejected, unreachable).",
        labelNames: ["result"] as const,
        registers: [opts.registry],
      });
      this.#ok = new Gauge({
        name: "promshard_sidecar_config_reload_ok",
        help: "1 when Prometheus runs the config the sidecar generated, 0 while a change is pending or was rejected.",
        registers: [opts.registry],
      });
      this.#ok.set(1);
    }
  }

  /** Reads what is on disk already: a config equal to the desired one needs no reload. */
  async init(): Promise<void> {
    try {
      this.#onDisk = await readFile(this.#opts.path, "utf8");
      this.#appliedHash = sha256(this.#onDisk);
      // Written 0644 by an older sidecar: the same content is not written again, so narrow it here.
      await chmod(this.#opts.path, this.fileMode).catch(() => {});
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    // A .prev left by a crash mid-change: what is in place was never confirmed, but the
    // next apply compares against it and reloads if it differs, so .prev is not needed.
    await unlink(this.#prev).catch(() => {});
  }

  /**
   * Makes `text` the desired config and runs one attempt now; failures are retried in the
   * background. Resolves after that first attempt, whatever its result (see status()).
   */
  apply(text: string): Promise<void> {
    return this.#serial(async () => {
      this.#desired = text;
      this.#clearTimer();
      if (text === this.#onDisk && this.#state === "ok") {
        this.#appliedHash = sha256(text);
        return;
      }
      this.#failures = 0;
      await this.#attempt();
    });
  }

  status(): ReloadStatus {
    return {
      state: this.#state,
      desiredHash: this.#desired === undefined ? null : sha256(this.#desired),
      appliedHash: this.#appliedHash,
      lastSuccess: this.#lastSuccess,
      lastError: this.#lastError,
      failures: this.#failures,
      nextAttemptAt: this.#nextAttemptAt === undefined ? null : new Date(this.#nextAttemptAt).toISOString(),
    };
  }

  /** Whether the config file exists (Prometheus can start). */
  hasConfig(): boolean {
    return this.#onDisk !== undefined;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    await this.#chain;
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(fn);
    this.#chain = next.catch(() => {});
    return next;
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#nextAttemptAt = undefined;
  }

  /**
   * Loads the restored previous config again. Prometheus 2.42 applies part of a config it
   * rejects (the new scrape jobs, before a broken rule file fails): without this, it would run
   * a mix that is neither on disk nor what anyone was told. Says how that went, for lastError.
   */
  async #reloadRestored(): Promise<string> {
    try {
      await this.#opts.client.reload();
      this.#appliedHash = sha256(this.#onDisk ?? "");
      return "; Prometheus runs the previous config again";
    } catch (err) {
      this.#appliedHash = null;
      const why = err instanceof PrometheusApiError ? `HTTP ${err.status}: ${err.text}` : (err as Error).message;
      this.#opts.log.error({ err: why }, "Prometheus did not load the restored previous config either");
      return `; loading the previous config again failed too (${why}): what Prometheus runs is unknown`;
    }
  }

  async #attempt(): Promise<void> {
    const text = this.#desired;
    if (text === undefined || this.#stopped) return;
    const { log, client } = this.#opts;
    const hash = sha256(text);
    if (text !== this.#onDisk) {
      // Keep the last good config aside, unless it is there already from a change still in flight.
      if (this.#onDisk !== undefined && !this.#prevExists) {
        await copyFile(this.#opts.path, this.#prev);
        this.#prevExists = true;
      }
      await mkdir(dirname(this.#opts.path), { recursive: true });
      // It holds the jobs' credentials: not world-readable where Prometheus can still read it
      // (outputFileMode).
      await writeFileAtomic(this.#opts.path, text, { mode: this.fileMode });
      this.#onDisk = text;
      this.#writtenAt = Date.now();
    }
    try {
      // Prometheus may have started since we wrote the file: then it runs it already.
      // (startTime, not lastConfigTime: that one has a resolution of seconds.)
      const info = await client.runtimeInfo().catch(() => undefined);
      if (info?.reloadConfigSuccess && this.#writtenAt > 0 && Date.parse(info.startTime) > this.#writtenAt) {
        log.info({ hash }, "Prometheus loaded the generated config at its start; no reload needed");
      } else {
        await client.reload();
        this.#reloads?.inc({ result: "success" });
        log.info({ hash }, "Prometheus reloaded the generated config");
      }
      this.#state = "ok";
      this.#nextAttemptAt = undefined;
      this.#appliedHash = hash;
      this.#lastSuccess = new Date().toISOString();
      this.#lastError = null;
      this.#failures = 0;
      this.#ok?.set(1);
      if (this.#prevExists) await unlink(this.#prev).catch(() => {});
      this.#prevExists = false;
      return;
    } catch (err) {
      // Worked out first and published together below: the runtime report, read meanwhile,
      // must never show the failure without its retry (restoring the previous config awaits).
      let state: ReloadState;
      let lastError: string;
      if (err instanceof PrometheusApiError && err.status === 500) {
        // Rejected: put the previous config back, Prometheus keeps running it.
        this.#reloads?.inc({ result: "rejected" });
        state = "failed";
        lastError = `Prometheus rejected the generated config: ${err.text}`;
        if (this.#prevExists) {
          await rename(this.#prev, this.#opts.path);
          this.#prevExists = false;
          this.#onDisk = await readFile(this.#opts.path, "utf8");
          lastError += await this.#reloadRestored();
        }
      } else if (err instanceof PrometheusApiError) {
        this.#reloads?.inc({ result: "rejected" });
        state = "failed";
        lastError = `POST /-/reload answered HTTP ${err.status}: ${err.text}`;
      } else {
        this.#reloads?.inc({ result: "unreachable" });
        state = "pending";
        lastError = (err as Error).message;
      }
      this.#failures++;
      this.#ok?.set(0);
      this.#state = state;
      this.#lastError = lastError;
      const delay = backoffDelay(this.#opts.backoff ?? { initialMs: 1_000, maxMs: 120_000 }, this.#failures);
      log.warn({ hash, err: this.#lastError, retryInMs: delay, failures: this.#failures }, "config reload failed");
      this.#nextAttemptAt = Date.now() + delay;
      // nextAttemptAt stays set while the retry runs: a report read meanwhile must not show a
      // failure with nothing coming (it is then in the past: the attempt is under way).
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.#serial(() => this.#attempt()).catch((e: unknown) => {
          this.#nextAttemptAt = undefined;
          log.error({ err: e }, "config reload attempt failed");
        });
      }, delay);
      this.#timer.unref();
    }
  }
}
