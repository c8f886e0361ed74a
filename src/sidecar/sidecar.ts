import { randomBytes } from "node:crypto";
import { type FSWatcher, statSync, watch } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import { type ConfigFailure, LastGoodConfig } from "../config/last-good.ts";
import { parseConfigFile } from "../config/load.ts";
import {
  ASSIGNMENT_DELTA_FEATURE,
  type AssignedTarget,
  type AssignmentReply,
  applyAssignmentDelta,
  parseAssignment,
  parseAssignmentDelta,
  type RejectedTarget,
} from "../contract/assignment.ts";
import {
  type ConfigProblem,
  RUNTIME_SINCE_FEATURE,
  RuntimeChanges,
  type RuntimeReport,
} from "../contract/runtime-report.ts";
import { PromshardError, PromshardErrors } from "../errors.ts";
import type { TokenVerifier } from "../observability/bearer.ts";
import { HttpError, type Listening, listen, type Readiness } from "../observability/http.ts";
import { createLogger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";
import { createRegistry } from "../observability/metrics.ts";
import type { PromConfig } from "../prom/config.ts";
import { DEFAULT_PROMETHEUS_VERSION, dialectFor, type PromDialect } from "../prom/version.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { sha256 } from "../util/hash.ts";
import { createSidecarApi, type SidecarControl, TokenFile } from "./api.ts";
import { HeadFlush } from "./flush.ts";
import { generateShardConfig, type ShardSettings, targetFiles } from "./generate.ts";
import { sidecarMetrics } from "./metrics.ts";
import { PrometheusClient } from "./prometheus-client.ts";
import { Reloader } from "./reloader.ts";
import { type ExpectedTarget, expectedTargets, mapTargets, type PrometheusView, readPrometheus } from "./runtime.ts";
import { AssignmentStore, type StoredAssignment } from "./store.ts";
import { TargetFileWriter } from "./writer.ts";

export interface ShardIdentity {
  readonly shard: number;
  readonly replica: string;
  /** The pod the shard was derived from, when it was. */
  readonly podName?: string | undefined;
}

/** `prometheus-3` → shard 3: a StatefulSet pod's name is `<statefulset>-<ordinal>`. */
export function shardFromPodName(podName: string): number {
  const m = /^(.+)-(0|[1-9]\d*)$/.exec(podName);
  if (!m || !Number.isSafeInteger(Number(m[2]))) {
    throw new PromshardError(
      "flag_invalid",
      `pod name "${podName}" does not end in -<ordinal> as a StatefulSet pod's does; give --shard instead`,
      { path: "--shard.pod-name" },
    );
  }
  return Number(m[2]);
}

export interface SidecarOptions {
  /** The user's Prometheus config, watched for changes. */
  readonly configFile: string;
  /** Where relative paths in the config resolve; default the config file's directory. */
  readonly configDir?: string;
  readonly prometheusUrl: string;
  /** Where prometheus.yml and targets/ go: the directory shared with Prometheus. */
  readonly outputDir: string;
  /** Persistent directory for the applied assignment. */
  readonly stateDir: string;
  /**
   * The coordinator's last good config (a Secret it keeps, mounted by the webhook), run when
   * the config file fails and the state dir has none: a brand-new pod then scrapes too.
   */
  readonly fallbackConfigFile?: string;
  /**
   * Prometheus's TSDB directory as mounted here, when a Thanos sidecar ships it to a bucket:
   * POST /api/v1/flush then puts a drained shard's head there (src/sidecar/flush.ts).
   */
  readonly tsdbPath?: string;
  /** API address, HOST:PORT (port 0 picks one). */
  readonly listen: string;
  /** The static token (local mode); or `tokenVerifier` (TokenReview in a cluster). */
  readonly tokenFile?: string;
  readonly tokenVerifier?: TokenVerifier;
  readonly identity: ShardIdentity;
  readonly shardLabel?: string;
  readonly replicaLabel?: string;
  readonly remoteWriteReplicaLabel?: string | undefined;
  readonly remoteWriteDropShard?: boolean;
  /** The shard's Prometheus version; learned from its buildinfo when not given. */
  readonly prometheusVersion?: string | undefined;
  /** refresh_interval of the generated file_sd entries. */
  readonly refreshInterval?: string | undefined;
  /** How often the original config's hash is checked besides file events. Default 10 s. */
  readonly configCheckIntervalMs?: number;
  readonly reloadBackoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Largest assignment body, in bytes. */
  readonly bodyLimit?: number;
  readonly log?: Logger;
  readonly registry?: Registry;
}

interface GoodConfig {
  readonly config: PromConfig;
  /** sha256 of the original file. */
  readonly hash: string;
  readonly generated: string;
  readonly loadedAt: string;
}

/**
 * The promshard sidecar beside one Prometheus shard (DESIGN §5): turns the user's config
 * into the shard's config, the coordinator's assignment into file_sd files, reloads
 * Prometheus only when the config's structure changed, and reports what Prometheus says
 * about every assigned target. At start the persisted assignment is applied before the API
 * is ready, so Prometheus keeps scraping what it had even with no coordinator.
 */
export class Sidecar implements SidecarControl {
  readonly #opts: SidecarOptions;
  readonly #log: Logger;
  readonly registry: Registry;
  readonly #configFile: string;
  readonly #configDir: string;
  readonly #settings: ShardSettings;
  readonly #client: PrometheusClient;
  readonly #writer: TargetFileWriter;
  readonly #reloader: Reloader;
  readonly #store: AssignmentStore;
  /** Set when Prometheus's TSDB is shipped to a bucket (tsdbPath). */
  readonly flusher: HeadFlush | undefined;
  #dialect: PromDialect;
  #versionSource: "flag" | "prometheus" | "default";
  #prometheusVersion: string | null = null;
  /** The original config file: checked on events and periodically, parsed when it changed. */
  readonly #source: LastGoodConfig<{ config: PromConfig; generated: string }>;
  /** What runs: the source's last good config, or at start the one kept in the state dir. */
  #config: GoodConfig | undefined;
  #assignment: StoredAssignment | undefined;
  /**
   * The persisted assignment was unusable at start: the target files on disk are then the last
   * good state, kept as they are (none removed, none emptied) until the coordinator sends one.
   */
  #keepTargetFiles = false;
  #expected: ExpectedTarget[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #view: Promise<PrometheusView> | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #server: Listening | undefined;
  #ready = false;
  #stopped = false;
  readonly #m: ReturnType<typeof sidecarMetrics>;
  /** What each report told, for `?since=` (a new process: every token from before answers whole). */
  readonly #changes = new RuntimeChanges(randomBytes(6).toString("hex"));

  constructor(opts: SidecarOptions) {
    this.#opts = opts;
    this.#configFile = resolve(opts.configFile);
    this.#configDir = opts.configDir ? resolve(opts.configDir) : dirname(this.#configFile);
    const outputDir = resolve(opts.outputDir);
    this.#log =
      opts.log ??
      createLogger({ component: "sidecar", base: { shard: opts.identity.shard, replica: opts.identity.replica } });
    this.registry = opts.registry ?? createRegistry();
    this.#m = sidecarMetrics(this.registry, opts.identity);
    this.#settings = {
      shard: opts.identity.shard,
      replica: opts.identity.replica,
      shardLabel: opts.shardLabel ?? "shard",
      replicaLabel: opts.replicaLabel ?? "replica",
      targetsDir: join(outputDir, "targets"),
      remoteWriteDropShard: opts.remoteWriteDropShard ?? true,
      remoteWriteReplicaLabel: opts.remoteWriteReplicaLabel,
      refreshInterval: opts.refreshInterval,
    };
    this.#client = new PrometheusClient(opts.prometheusUrl);
    this.#writer = new TargetFileWriter(this.#settings.targetsDir);
    this.#reloader = new Reloader({
      path: join(outputDir, "prometheus.yml"),
      client: this.#client,
      log: this.#log,
      registry: this.registry,
      ...(opts.reloadBackoff ? { backoff: opts.reloadBackoff } : {}),
    });
    this.#store = new AssignmentStore(resolve(opts.stateDir));
    this.flusher = opts.tsdbPath
      ? new HeadFlush({
          prometheusUrl: opts.prometheusUrl,
          tsdbPath: resolve(opts.tsdbPath),
          stateDir: resolve(opts.stateDir),
          log: this.#log,
        })
      : undefined;
    this.#versionSource = opts.prometheusVersion ? "flag" : "default";
    this.#dialect = dialectFor(opts.prometheusVersion ?? DEFAULT_PROMETHEUS_VERSION);
    this.#source = new LastGoodConfig(
      this.#configFile,
      (text) => this.#parse(text),
      // The same text relabels differently under another Prometheus version: parsed again then.
      () => this.#dialect.version,
    );
  }

  /** The API's base URL once started. */
  get url(): string {
    if (!this.#server) throw new PromshardError("internal_error", "the sidecar is not started");
    return this.#server.url;
  }

  /**
   * Applies the persisted assignment and the config, then opens the API. Throws a
   * PromshardError for what the operator must fix before it can run (token file, version).
   */
  async start(): Promise<void> {
    const token =
      this.#opts.tokenVerifier ??
      (this.#opts.tokenFile !== undefined ? new TokenFile(this.#opts.tokenFile, this.#log) : undefined);
    if (!token)
      throw new PromshardError("flag_invalid", "give --api.token-file or --api.auth=kubernetes", {
        path: "--api.token-file",
      });
    await mkdir(resolve(this.#opts.outputDir), { recursive: true });
    const mode = outputFileMode(resolve(this.#opts.outputDir));
    this.#reloader.fileMode = mode.mode;
    if (mode.warning) this.#log.warn({ output: resolve(this.#opts.outputDir) }, mode.warning);
    await mkdir(resolve(this.#opts.stateDir), { recursive: true });
    await this.#writer.init();
    await this.#reloader.init();
    await this.#learnVersion();

    const loaded = await this.#store.load();
    if (loaded.state === "loaded") {
      this.#assignment = loaded.assignment;
      this.#log.info(
        { version: loaded.assignment.version, targets: loaded.assignment.targets.length },
        "re-applying the persisted assignment",
      );
    } else if (loaded.state === "corrupt") {
      this.#keepTargetFiles = true;
      this.#log.error(
        { problem: loaded.problem, movedTo: loaded.movedTo },
        "persisted assignment unusable; keeping the target files on disk until the coordinator sends one",
      );
    }
    this.#m.assignmentVersion.set(this.#assignment?.version ?? -1);
    this.#m.assignedTargets.set(this.#assignment?.targets.length ?? 0);
    await this.#serial(() => this.#loadConfig(true));

    this.#watch();
    const interval = this.#opts.configCheckIntervalMs ?? 10_000;
    this.#ticker = setInterval(() => void this.#tick(), interval);
    this.#ticker.unref();

    const app = createSidecarApi({
      control: this,
      token,
      registry: this.registry,
      log: this.#log,
      ...(this.#opts.bodyLimit !== undefined ? { bodyLimit: this.#opts.bodyLimit } : {}),
    });
    this.#server = await listen(app, this.#opts.listen);
    this.#ready = true;
    this.#log.info(
      {
        url: this.#server.url,
        prometheus: this.#client.url,
        prometheusVersion: this.#dialect.version,
        versionSource: this.#versionSource,
        config: this.#configFile,
        output: resolve(this.#opts.outputDir),
      },
      "sidecar started",
    );
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#ready = false;
    if (this.#ticker) clearInterval(this.#ticker);
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#watcher?.close();
    await this.#server?.close();
    await this.#reloader.stop();
    await this.#queue.catch(() => {});
    if (this.#server) this.#log.info("sidecar stopped");
  }

  readiness(): Readiness {
    if (!this.#ready) return { ready: false, reason: "starting" };
    if (!this.#config) {
      return { ready: false, reason: `no valid config generated yet: ${this.#source.failure?.message ?? "unknown"}` };
    }
    return { ready: true };
  }

  /** Runs `fn` after every config load and assignment before it: they never interleave. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    if (!this.#watcher) this.#watch();
    if (this.#prometheusVersion === null) await this.#learnVersion();
    await this.#serial(() => this.#loadConfig(false)).catch((err: unknown) =>
      this.#log.error({ err }, "config check failed"),
    );
    this.#m.prometheusUp.set(
      await this.#client.ready().then(
        () => 1,
        () => 0,
      ),
    );
  }

  /**
   * Watches the config's directory, not the file: a ConfigMap update swaps a symlink, and a
   * watch on the old file would never fire again. The periodic hash check covers the rest.
   */
  #watch(): void {
    try {
      const name = basename(this.#configFile);
      this.#watcher = watch(dirname(this.#configFile), { persistent: false }, (_event, file) => {
        if (file !== null && file !== name && !file.startsWith("..")) return;
        if (this.#debounce) clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => {
          void this.#serial(() => this.#loadConfig(false)).catch((err: unknown) =>
            this.#log.error({ err }, "config check failed"),
          );
        }, 100);
      });
      this.#watcher.on("error", (err) => {
        this.#log.warn({ err: err.message }, "config watch failed; relying on the periodic check until it is back");
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (err) {
      this.#log.warn({ err }, "cannot watch the config directory; relying on the periodic check");
      this.#watcher = undefined;
    }
  }

  /**
   * Asks Prometheus its version. Without --prometheus.version it decides the dialect (a
   * change re-reads the config); with it, a disagreement is logged.
   */
  async #learnVersion(): Promise<void> {
    let version: string;
    try {
      version = (await this.#client.buildInfo()).version;
    } catch (err) {
      this.#log.debug({ err }, "Prometheus version not known yet");
      return;
    }
    let dialect: PromDialect;
    try {
      dialect = dialectFor(version);
    } catch (err) {
      this.#log.error({ version, err }, "Prometheus reports a version promshard cannot use");
      return;
    }
    if (this.#versionSource === "flag") {
      this.#prometheusVersion = version;
      if (dialect.major !== this.#dialect.major) {
        this.#log.warn(
          { flag: this.#opts.prometheusVersion, reported: version },
          "--prometheus.version disagrees with the version Prometheus reports; relabeling follows the flag",
        );
      }
      return;
    }
    const changed = dialect.version !== this.#dialect.version;
    this.#dialect = dialect;
    this.#versionSource = "prometheus";
    this.#prometheusVersion = version;
    this.#log.info({ version }, "learned the Prometheus version from its buildinfo");
    if (changed && (this.#source.good || this.#source.failure)) await this.#serial(() => this.#loadConfig(true));
  }

  /**
   * Reads the original config; when its hash (or the dialect) changed, validates it and
   * generates the shard config. A config that fails leaves the previous good one in place
   * (Prometheus keeps running it) and is reported in the runtime and a metric.
   */
  async #loadConfig(force: boolean): Promise<void> {
    if (this.#stopped) return;
    const r = this.#source.check(force);
    if (r.kind === "unchanged") return;
    if (r.kind === "failed") {
      this.#m.configValid.set(0);
      if (r.fresh) {
        this.#m.configErrors.inc();
        this.#log.error(
          { problems: r.failure.issues.map((i) => i.message), keeping: this.#config ? this.#config.hash : null },
          this.#config
            ? "the config fails validation; keeping the previous good shard config"
            : "the config fails validation and there is no good one yet",
        );
      }
      // Started (or restarted) with a broken file and nothing running yet: the last config
      // that loaded, kept in the state dir, lets Prometheus scrape what it did before.
      if (this.#config || !(await this.#useLastGood())) return;
      await this.#writeTargets();
      await this.#reloader.apply(this.#generated());
      return;
    }
    const { config, generated } = r.good.value;
    const previous = this.#config;
    this.#config = { config, hash: r.good.hash, generated, loadedAt: r.good.loadedAt };
    if (previous?.hash !== r.good.hash) await this.#keepLastGood(r.good.text);
    if (r.recovered) this.#log.info({ hash: r.good.hash }, "the config is valid again");
    this.#m.configValid.set(1);
    this.#m.configLastSuccess.setToCurrentTime();
    // Target files first: a new job's directory must exist before Prometheus loads the config that watches it.
    await this.#writeTargets();
    if (previous?.generated !== generated)
      this.#log.info({ hash: r.good.hash, generatedHash: sha256(generated) }, "generated the shard config");
    await this.#reloader.apply(this.#generated());
  }

  /** The shard config with the rules of the split targets' parts in `targets` (the assignment's by default). */
  #generated(targets: readonly AssignedTarget[] = this.#assignment?.targets ?? []): string {
    const c = this.#config!;
    return targets.some((t) => t.split) ? generateShardConfig(c.config, this.#settings, targets) : c.generated;
  }

  #parse(text: string): { config: PromConfig; generated: string } {
    const config = parseConfigFile(text, this.#configFile, this.#dialect, this.#configDir);
    return { config, generated: generateShardConfig(config, this.#settings) };
  }

  get #lastGoodFile(): string {
    return join(resolve(this.#opts.stateDir), "last-good-config.yml");
  }

  async #keepLastGood(text: string): Promise<void> {
    try {
      // The user's config holds credentials (basic_auth, bearer tokens): owner only.
      await writeFileAtomic(this.#lastGoodFile, text, { mode: 0o600 });
    } catch (err) {
      this.#log.warn({ err }, "cannot keep the last good config in the state dir");
    }
  }

  /**
   * Runs the last good config from the state dir, else the coordinator's (a new pod has no
   * state); false when there is none (or it no longer loads).
   */
  async #useLastGood(): Promise<boolean> {
    const files = [this.#lastGoodFile, ...(this.#opts.fallbackConfigFile ? [this.#opts.fallbackConfigFile] : [])];
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch {
        continue;
      }
      try {
        const { config, generated } = this.#parse(text);
        this.#config = { config, hash: sha256(text), generated, loadedAt: new Date().toISOString() };
        this.#log.warn(
          { hash: this.#config.hash, file },
          "running the last good config until the config file is valid",
        );
        return true;
      } catch (err) {
        if (!(err instanceof PromshardError)) throw err;
        this.#log.warn({ file, err: err.message }, "the kept last good config does not load either");
      }
    }
    return false;
  }

  async #writeTargets(): Promise<{ written: number; removed: number; unchanged: number }> {
    const config = this.#config;
    if (!config) return { written: 0, removed: 0, unchanged: 0 };
    const targets = this.#assignment?.targets ?? [];
    let files = targetFiles(config.config, this.#settings, targets);
    // The files already there win: only what is missing (a new job's empty file) is added.
    if (this.#keepTargetFiles && !this.#assignment) files = new Map([...files, ...this.#writer.files()]);
    const result = await this.#writer.write(files);
    this.#expected = expectedTargets(config.config, targets);
    this.#m.filesWritten.inc(result.written.length);
    this.#m.filesRemoved.inc(result.removed.length);
    if (result.written.length + result.removed.length > 0) {
      this.#log.debug({ written: result.written, removed: result.removed }, "target files updated");
    }
    return { written: result.written.length, removed: result.removed.length, unchanged: result.unchanged };
  }

  /**
   * PUT /api/v1/assignment: the whole set, validated against the current config (a config
   * change the coordinator already saw is picked up first); nothing changes unless all is
   * well. Persisted before the files are written, so a crash in between re-applies it.
   */
  async applyAssignment(body: unknown): Promise<unknown> {
    return this.#serial(async () => {
      const config = await this.#configForPush();
      const end = this.#m.applySeconds.startTimer();
      const parsed = this.#parsed(() => parseAssignment(body, config), "assignment");
      const applied = this.#assignment?.version;
      if (applied !== undefined && parsed.version < applied) {
        this.#m.assignments.inc({ result: "conflict" });
        throw new HttpError(409, `version ${parsed.version} is older than the applied version ${applied}`, {
          appliedVersion: applied,
        });
      }
      return this.#apply(parsed, end, "assignment applied");
    });
  }

  /**
   * PATCH /api/v1/assignment: a delta from the held set (contract/assignment.ts), applied
   * whole like a set; refused with 409 `assignment_base_mismatch` when it was not made from
   * the set this sidecar holds, and the coordinator sends the whole set.
   */
  async applyAssignmentDelta(body: unknown): Promise<unknown> {
    return this.#serial(async () => {
      const config = await this.#configForPush();
      const end = this.#m.applySeconds.startTimer();
      const delta = this.#parsed(() => parseAssignmentDelta(body, config), "delta");
      const held = this.#assignment;
      let targets: AssignedTarget[];
      try {
        if (held?.version !== delta.base)
          throw new PromshardError(
            "assignment_base_mismatch",
            `this shard holds version ${held?.version ?? "none"}, not ${delta.base}; send the whole set`,
            { path: "delta.base" },
          );
        targets = applyAssignmentDelta(held.targets, delta);
      } catch (err) {
        if (!(err instanceof PromshardError) || err.code !== "assignment_base_mismatch") throw err;
        this.#m.assignments.inc({ result: "conflict" });
        this.#log.info({ base: delta.base, held: held?.version ?? null }, err.message);
        throw new HttpError(409, err.message, { code: err.code, appliedVersion: held?.version ?? null });
      }
      return this.#apply({ version: delta.version, targets, rejected: delta.rejected }, end, "delta applied", {
        set: delta.set.length,
        removed: delta.remove.length,
      });
    });
  }

  /** The current config, after a change the coordinator may already have seen; 503 while there is none. */
  async #configForPush(): Promise<PromConfig> {
    await this.#loadConfig(false);
    const current = this.#config;
    if (!current) throw new HttpError(503, `no valid config yet: ${this.#source.failure?.message ?? "starting"}`);
    return current.config;
  }

  /** A push's body parsed, or 400 with every problem. */
  #parsed<T>(parse: () => T, what: string): T {
    try {
      return parse();
    } catch (err) {
      if (!(err instanceof PromshardError)) throw err;
      this.#m.assignments.inc({ result: "invalid" });
      const problems = err instanceof PromshardErrors ? err.errors.map((e) => e.message) : [err.message];
      this.#log.warn({ problems: problems.slice(0, 20), count: problems.length }, `${what} rejected`);
      throw new HttpError(
        400,
        `${what} rejected: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ""}`,
        { problems },
      );
    }
  }

  /** Makes `next` the held set: persisted, then its target files, then (for split parts) the config. */
  async #apply(
    next: { version: number; targets: readonly AssignedTarget[]; rejected: readonly RejectedTarget[] },
    end: () => number,
    message: string,
    extra: Record<string, number> = {},
  ): Promise<AssignmentReply & Record<string, unknown>> {
    const before = this.#assignment?.targets ?? [];
    this.#assignment = await this.#store.save({ version: next.version, targets: next.targets });
    this.#keepTargetFiles = false;
    // A new part's rules are loaded before its target file appears, and a leaving part's stay
    // until its file is gone: Prometheus never keeps a split target's every series.
    const splits = before.some((t) => t.split) || next.targets.some((t) => t.split);
    if (splits) await this.#reloader.apply(this.#generated([...before, ...next.targets]));
    const files = await this.#writeTargets();
    if (splits) await this.#reloader.apply(this.#generated());
    const seconds = end();
    this.#m.assignments.inc({ result: next.rejected.length > 0 ? "partial" : "applied" });
    if (next.rejected.length > 0) {
      this.#log.warn(
        {
          version: next.version,
          rejected: next.rejected.length,
          problems: next.rejected.slice(0, 20).flatMap((r) => r.problems),
        },
        "assignment applied without the targets it could not use",
      );
    }
    this.#m.assignmentVersion.set(next.version);
    this.#m.assignedTargets.set(next.targets.length);
    this.#log.info(
      { version: next.version, targets: next.targets.length, ...extra, ...files, ms: Math.round(seconds * 1000) },
      message,
    );
    return {
      version: next.version,
      appliedAt: this.#assignment.appliedAt,
      targets: next.targets.length,
      rejected: next.rejected,
      files,
      durationMs: Math.round(seconds * 1e4) / 10,
    };
  }

  /**
   * GET /api/v1/runtime. Concurrent calls share one read of Prometheus. With `since` (a
   * report's token) the targets are only those changed after it, and with `removals` the ids
   * gone after it (contract: RuntimeChanges).
   */
  async runtime(since?: string, removals = false): Promise<RuntimeReport> {
    this.#view ??= readPrometheus(this.#client).finally(() => {
      this.#view = undefined;
    });
    const view = await this.#view;
    this.#m.prometheusUp.set(view.up ? 1 : 0);
    if (view.up && this.#prometheusVersion === null) await this.#learnVersion();
    const { targets, unmapped } = mapTargets(this.#expected, view.active, view.samples);
    const count = (s: string) => targets.filter((t) => t.status === s).length;
    const reload = this.#reloader.status();
    // Ids follow the config and the dialect that relabels it; a new assignment adds and
    // removes ids, which a partial report names.
    const basis = `${(this.#config?.hash ?? "none").slice(0, 12)}-${this.#dialect.version}`;
    const { token, changed, removed } = this.#changes.note(basis, targets, since, removals);
    return {
      features: [ASSIGNMENT_DELTA_FEATURE, RUNTIME_SINCE_FEATURE],
      token,
      ...(changed ? { partial: true, removed } : {}),
      shard: {
        shard: this.#settings.shard,
        replica: this.#settings.replica,
        podName: this.#opts.identity.podName ?? null,
        shardLabel: this.#settings.shardLabel,
        replicaLabel: this.#settings.replicaLabel,
      },
      prometheus: {
        url: this.#client.url,
        up: view.up,
        ready: view.ready,
        status: !view.up ? "down" : !view.ready ? "starting" : "ready",
        error: view.error,
        version: this.#prometheusVersion,
        dialect: this.#dialect.version,
        versionSource: this.#versionSource,
        headSeries: view.headSeries,
        checkedAt: view.checkedAt,
      },
      config: {
        file: this.#configFile,
        valid: this.#source.failure === undefined,
        hash: this.#config?.hash ?? null,
        generatedHash: this.#config ? sha256(this.#generated()) : null,
        loadedAt: this.#config?.loadedAt ?? null,
        error: configProblem(this.#source.failure),
        reload,
      },
      assignment: this.#assignment
        ? {
            version: this.#assignment.version,
            appliedAt: this.#assignment.appliedAt,
            targets: this.#assignment.targets.length,
          }
        : null,
      summary: {
        assigned: targets.length,
        scraped: count("scraped"),
        up: targets.filter((t) => t.health === "up").length,
        down: targets.filter((t) => t.health === "down").length,
        missing: count("missing"),
        dropped: count("dropped"),
        invalid: count("invalid"),
        unknownJob: count("unknown_job"),
        unknown: count("unknown"),
        unmapped: unmapped.length,
        series: targets.reduce((n, t) => n + (t.series ?? 0), 0),
      },
      targets: changed ?? targets,
      unmappedTargets: unmapped,
    };
  }
}

/** The runtime report's view of a config failure. */
function configProblem(f: ConfigFailure | undefined): ConfigProblem | null {
  return f ? { message: f.message, problems: f.issues.map((i) => i.message), since: f.since, hash: f.hash } : null;
}

/**
 * The mode of the generated prometheus.yml, which holds the jobs' credentials. Prometheus reads
 * it from another container, maybe as another user (the promshard image runs as 1000, the
 * official Prometheus image as 65534): 0640 works where both share a group, which a pod's
 * fsGroup gives (the emptyDir is then group-owned by it, setgid, and files inherit the group),
 * or outside a pod (local mode: one user). In a pod without fsGroup, 0640 would lock
 * Prometheus out: 0644, with a warning that says how to fix it.
 */
export function outputFileMode(dir: string, env: NodeJS.ProcessEnv = process.env): { mode: number; warning?: string } {
  if (env.KUBERNETES_SERVICE_HOST === undefined) return { mode: 0o640 };
  try {
    if ((statSync(dir).mode & 0o2000) !== 0) return { mode: 0o640 };
  } catch {
    // fall through: the safe default for Prometheus
  }
  return {
    mode: 0o644,
    warning:
      "the generated prometheus.yml holds the scrape jobs' credentials and must be readable by Prometheus in another container: without the pod's securityContext.fsGroup it is world-readable (0644); set fsGroup (it becomes 0640)",
  };
}
