import type { Logger } from "pino";
import { LastGoodConfig } from "../config/last-good.ts";
import { parseConfigFile } from "../config/load.ts";
import type { DiscoveryManager } from "../discovery/manager.ts";
import { bearerAuth, type TokenVerifier } from "../observability/bearer.ts";
import { type Handler, HttpError, mediaType, type Routes } from "../observability/http.ts";
import type { PromConfig } from "../prom/config.ts";
import type { PromDialect } from "../prom/version.ts";
import { parsePartId, targetOf } from "../scheduler/split.ts";
import type { Strategy } from "../scheduler/strategy.ts";
import { capacityPlan, exposedSeries, type Plan } from "./capacity-plan.ts";
import type { Coordinator, ShardStatus, TickResult } from "./coordinator.ts";
import { globalSeries } from "./global-count.ts";
import type { CoordinatorMetrics } from "./metrics.ts";
import { SeriesHistory } from "./series-history.ts";
import type { CoordinatorEvent } from "./shards.ts";
import { renderStatusPage, type StatusEvent, type WhatIf } from "./status-page.ts";

/** What the API tells about a shard beyond the coordinator's view: where to reach it. */
export interface ShardEndpoint {
  readonly prometheusUrl: string | null;
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface CoordinatorServiceOptions {
  readonly coordinator: Coordinator;
  readonly discovery: DiscoveryManager;
  readonly configFile: string;
  readonly dialect: PromDialect;
  readonly intervalMs: number;
  readonly endpoint: (shard: number) => ShardEndpoint;
  readonly globalQueryUrl?: string;
  readonly metrics?: CoordinatorMetrics;
  readonly log: Logger;
  /** With leader election: rounds run only while this replica leads. */
  readonly leader?: { readonly leading: boolean };
  /** Told the text of every config that loaded (local mode hands it to new shards). */
  readonly onConfigLoaded?: (text: string) => void;
  /** Who may POST /-/reload (a bearer token: static, or TokenReview in a cluster); anyone when absent. */
  readonly reloadAuth?: TokenVerifier;
  /** What the shards are made of (a cluster's StatefulSets and the ones it cannot use), for /api/v1/status. */
  readonly shardSets?: () => unknown;
  /**
   * The config running at start when the file failed: the last good one a previous run kept
   * (a cluster's Secret). It is the last good config until the file loads.
   */
  readonly lastGood?: { readonly config: PromConfig; readonly text: string };
  /** The scheduler and shard bounds the status page's what-if plans with (no what-if without). */
  readonly planning?: { readonly strategy: Strategy; readonly minShards: number; readonly maxShards: number };
}

/** Content types a web form (or a no-cors fetch) can send to another site without a CORS preflight. */
const SIMPLE_TYPES = new Set(["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]);

/** The header that marks a deliberate reload (curl, scripts); browsers send it cross-site only after a preflight we never answer. */
export const RELOAD_HEADER = "x-promshard-reload";

/**
 * Refuses a POST that a page of another site could make a browser send (a form, or a
 * fetch without preflight): it needs a non-simple Content-Type or the X-Promshard-Reload header.
 */
const notCrossSite: Handler = (req) => {
  const type = mediaType(req);
  if ((type === "" || SIMPLE_TYPES.has(type)) && req.header(RELOAD_HEADER) === undefined) {
    throw new HttpError(
      403,
      "POST /-/reload needs the header X-Promshard-Reload: 1 (or a JSON Content-Type), so that no web page of another site can trigger it",
    );
  }
};

const MAX_EVENTS = 200;

/**
 * Runs the coordinator's control loop and serves what it knows. The config file is read
 * again each round (by content hash, so a ConfigMap's symlink swap counts), on SIGHUP and on
 * POST /-/reload: a config that fails validation is reported and the last good one is kept,
 * so nothing stops being scraped because of a typo.
 */
export class CoordinatorService {
  readonly #o: CoordinatorServiceOptions;
  readonly #events: StatusEvent[] = [];
  #last: TickResult | undefined;
  readonly #config: LastGoodConfig<{ config: PromConfig; text: string }>;
  #stopping = false;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  readonly #history = new SeriesHistory();
  /** Why the global view's last count failed (null: it answered), and the count under way. */
  #globalError: string | null = null;
  #globalAt = 0;
  #globalQuery: Promise<void> | undefined;
  /** When the status page, the one reader of the global count, was last asked for (0: never). */
  #viewedAt = 0;
  /** The last what-if, kept while neither the round nor the budget changes (one budget asked again and again). */
  #whatIf: { readonly last: TickResult; readonly budget: number; readonly plan: Plan } | undefined;

  constructor(opts: CoordinatorServiceOptions) {
    this.#o = opts;
    // Nothing checked yet: the first round loads the file the coordinator started with again
    // (discovery keeps unchanged providers), so the hash shown is of what really runs.
    this.#config = new LastGoodConfig(opts.configFile, (text) => ({
      config: parseConfigFile(text, opts.configFile, opts.dialect),
      text,
    }));
    if (opts.lastGood) this.#config.use(opts.lastGood, opts.lastGood.text);
  }

  get last(): TickResult | undefined {
    return this.#last;
  }

  /** Records an event for the status page and /api/v1/events (the coordinator's, and the scaler's). */
  readonly event = (e: CoordinatorEvent | Omit<StatusEvent, "at">): void => {
    const at = Date.now();
    this.#events.push({ at: new Date(at).toISOString(), kind: e.kind, text: e.text });
    if (this.#events.length > MAX_EVENTS) this.#events.shift();
    if (e.kind === "scale") this.#history.mark({ at, kind: "scale", text: e.text });
    // A move's start names its shards; its end (and a move's warnings) would mark it twice.
    else if (e.kind === "move" && "shards" in e && e.shards)
      this.#history.mark({ at, kind: "move", text: e.text, shards: e.shards });
  };

  /** Loads the config file if its content changed (or when forced); keeps the last good one on errors. */
  reloadConfig(force = false): boolean {
    const o = this.#o;
    const r = this.#config.check(force);
    if (r.kind === "unchanged") return this.#config.failure === undefined;
    if (r.kind === "failed") {
      if (r.fresh) {
        o.metrics?.configReloads.inc({ result: "error" });
        this.event({ kind: "config", text: `the config is invalid; keeping the last good one: ${r.failure.message}` });
        o.log.error(
          { problems: r.failure.issues, keeping: this.#config.good?.hash ?? null },
          "config invalid; keeping the last good one",
        );
      }
      o.metrics?.configReloadOk.set(0);
      return false;
    }
    const { config, text } = r.good.value;
    o.coordinator.setConfig(config);
    o.discovery.apply(config);
    o.onConfigLoaded?.(text);
    for (const u of o.discovery.unsupported) o.log.warn({ err: u.message }, "service discovery not run");
    o.metrics?.configReloads.inc({ result: "ok" });
    o.metrics?.configReloadOk.set(1);
    this.event({
      kind: "config",
      text: r.recovered ? "the config is valid again and loaded" : r.first ? "config loaded" : "config reloaded",
    });
    o.log.info({ hash: r.good.hash }, "config loaded");
    return true;
  }

  /** Shards that are down now: the global view cannot answer for their targets. */
  #missingShards(): number[] {
    return (this.#last?.shards ?? []).filter((s) => !s.healthy).map((s) => s.id);
  }

  /** One round: config check, discovery settled, coordinator tick. Errors are logged and counted, never thrown. */
  async round(): Promise<void> {
    const o = this.#o;
    if (o.leader && !o.leader.leading) {
      // A standby keeps nothing: when it leads, it starts from what the shards report.
      if (this.#last) o.coordinator.forget();
      this.#last = undefined;
      return;
    }
    try {
      this.reloadConfig();
      await o.discovery.ready();
      this.#last = await o.coordinator.tick();
      o.metrics?.ticks.inc({ result: "ok" });
      this.#history.record(Date.now(), this.#last.shards);
      this.#countGlobal();
    } catch (err) {
      o.metrics?.ticks.inc({ result: "error" });
      o.log.error({ err }, "control loop round failed; retrying");
    }
  }

  /**
   * Asks the global view for its count at most once per plot step, beside the loop (a slow
   * Thanos Query never delays a round); a failure is shown on the page and logged once. Only
   * while the status page was viewed within its plot's window: each count is a query through
   * Thanos Query to every shard's Thanos sidecar, Prometheus and the Store Gateway, which a
   * system nobody looks at should not pay every 10 s.
   */
  #countGlobal(): void {
    const url = this.#o.globalQueryUrl;
    const now = Date.now();
    if (!url || this.#globalQuery || now - this.#globalAt < this.#history.stepMs) return;
    if (this.#viewedAt === 0 || now - this.#viewedAt > this.#history.windowMs) return;
    this.#globalAt = now;
    this.#globalQuery = globalSeries(url)
      .then((n) => {
        this.#history.recordGlobal(Date.now(), n);
        this.#globalError = null;
      })
      .catch((err: Error) => {
        if (this.#globalError === null) this.#o.log.warn({ err: err.message }, "global view did not answer its count");
        this.#globalError = err.message;
      })
      .finally(() => {
        this.#globalQuery = undefined;
      });
  }

  /** The plan for `?max-series`, from this round's measurements, with the coordinator's scheduler. */
  #planFor(raw: string | undefined): WhatIf | null | undefined {
    const planning = this.#o.planning;
    if (!planning) return undefined;
    if (raw === undefined) return null;
    const budget = /^[1-9][0-9]{0,14}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
    if (!Number.isSafeInteger(budget))
      return {
        error: `max-series: ${JSON.stringify(raw.slice(0, 40))} is not a whole number of series above 0; give a shard's budget, e.g. ?max-series=30000`,
      };
    const last = this.#last;
    if (!last) return { error: "max-series: nothing is measured before the first round; try again in a moment" };
    const cached = this.#whatIf;
    if (cached?.last === last && cached.budget === budget) return { plan: cached.plan };
    const byTarget = new Map<string, ShardStatus["targets"][number]>();
    for (const s of last.shards) for (const t of s.targets) byTarget.set(targetOf(t.id), t);
    const exposed = exposedSeries(
      last.shards.flatMap((s) => s.targets.map((t) => [targetOf(t.id), t.series] as const)),
    );
    const plan = capacityPlan(
      [...exposed].map(([id, series]) => ({
        target: byTarget.get(id)!.target,
        series,
        source: "coordinator" as const,
      })),
      { budget, ...planning },
    );
    this.#whatIf = { last, budget, plan };
    return { plan };
  }

  start(): void {
    const onHup = () => {
      this.reloadConfig(true);
      this.#wake?.();
    };
    process.on("SIGHUP", onHup);
    this.#running = (async () => {
      while (!this.#stopping) {
        await this.round();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#o.intervalMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      process.off("SIGHUP", onHup);
    })();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
    await this.#globalQuery;
  }

  readiness(): { ready: boolean; reason?: string } {
    if (this.#o.leader && !this.#o.leader.leading) return { ready: false, reason: "standby: another replica leads" };
    return this.#last ? { ready: true } : { ready: false, reason: "first control loop round not done" };
  }

  #shardJson(s: ShardStatus) {
    const e = this.#o.endpoint(s.id);
    return {
      id: s.id,
      budget: s.budget,
      effectiveBudget: s.effectiveBudget,
      series: s.series,
      ready: s.healthy,
      downSince: s.downSince === null ? null : new Date(s.downSince).toISOString(),
      restarts: s.restarts,
      reloadError: s.reloadError ?? null,
      prometheusUrl: e.prometheusUrl,
      ...e.extra,
      targets: s.targets.map((t) => {
        const part = parsePartId(t.id);
        return {
          job: t.job,
          labels: t.target.labels,
          series: t.series,
          // A split target's part: this shard keeps the series of hashmod residue `part` of `parts`.
          ...(part ? { part: part.part, parts: part.parts } : {}),
        };
      }),
    };
  }

  /** GET /api/v1/shards, /api/v1/targets, /api/v1/events, /api/v1/status, the status page, POST /-/reload. */
  routes(app: Routes): void {
    const o = this.#o;
    app.get("/api/v1/shards", (_q, res) => {
      res.json({ shards: (this.#last?.shards ?? []).map((s) => this.#shardJson(s)) });
    });
    app.get("/api/v1/targets", (q, res) => {
      const state = q.query.get("state") ?? "any";
      const last = this.#last;
      const active =
        state === "dropped"
          ? []
          : (last?.shards ?? []).flatMap((s) =>
              s.targets.map((t) => ({
                discoveredLabels: t.target.discoveredLabels,
                labels: t.target.labels,
                scrapePool: t.job,
                scrapeUrl: t.target.scrapeUrl,
                globalUrl: t.target.scrapeUrl,
                lastError: t.runtime?.lastError ?? "",
                lastScrape: t.runtime?.lastScrape ?? "0001-01-01T00:00:00Z",
                health: t.runtime?.health ?? "unknown",
                scrapeInterval: `${t.target.scrapeIntervalMs / 1000}s`,
                scrapeTimeout: `${t.target.scrapeTimeoutMs / 1000}s`,
                series: t.series,
                shard: s.id,
              })),
            );
      const dropped =
        state === "active" ? [] : (last?.dropped ?? []).map((d) => ({ discoveredLabels: d.discoveredLabels }));
      res.json({
        status: "success",
        data: {
          activeTargets: active,
          droppedTargets: dropped,
          // Prometheus logs the targets it refuses; we list them, so none disappears silently.
          failedTargets: (last?.failures ?? []).map((f) => ({
            scrapePool: f.scrapePool,
            discoveredLabels: f.discoveredLabels,
            error: f.error,
          })),
        },
      });
    });
    app.get("/api/v1/events", (_q, res) => {
      res.json({ events: this.#events });
    });
    app.get("/api/v1/status", (_q, res) => {
      res.json({
        config: {
          file: o.configFile,
          hash: this.#config.good?.hash ?? "",
          loadedAt: this.#config.good?.loadedAt ?? "",
          lastReloadSuccessful: this.#config.failure === undefined,
          error: this.#config.failure?.message ?? null,
          problems: this.#config.failure?.issues ?? [],
        },
        shards: this.#last?.shards.length ?? 0,
        desiredShards: this.#last?.schedule.desiredShards ?? null,
        overlapping: this.#last?.overlapping ?? 0,
        globalQueryUrl: o.globalQueryUrl ?? null,
        // Global queries fail while a shard is down (partial responses off): name it.
        missingShards: this.#missingShards(),
        ...(o.shardSets ? { shardSets: o.shardSets() } : {}),
      });
    });
    const reloadChecks: Handler[] = [notCrossSite];
    if (o.reloadAuth) reloadChecks.push(bearerAuth(o.reloadAuth, "allowed to reload this coordinator"));
    app.post("/-/reload", ...reloadChecks, (_q, res) => {
      const ok = this.reloadConfig(true);
      this.#wake?.();
      res
        .status(ok ? 200 : 400)
        .json(
          ok ? { status: "success" } : { error: this.#config.failure?.message, problems: this.#config.failure?.issues },
        );
    });
    app.get("/", (q, res) => {
      const whatIf = this.#planFor(q.query.get("max-series") ?? undefined);
      const now = Date.now();
      this.#viewedAt = now;
      this.#countGlobal();
      res.status(whatIf && "error" in whatIf ? 400 : 200);
      res.send(
        "text/html; charset=utf-8",
        renderStatusPage({
          shards: (this.#last?.shards ?? []).map((s) => ({
            ...s,
            prometheusUrl: o.endpoint(s.id).prometheusUrl ?? undefined,
          })),
          events: this.#events,
          ...(o.globalQueryUrl ? { globalQueryUrl: o.globalQueryUrl } : {}),
          configError: this.#config.failure?.message ?? null,
          missingShards: this.#missingShards(),
          history: { now, history: this.#history },
          global: {
            ...(o.globalQueryUrl ? { queryUrl: o.globalQueryUrl } : {}),
            points: this.#history.global(now),
            error: this.#globalError,
          },
          ...(whatIf !== undefined ? { whatIf } : {}),
        }),
      );
    });
  }
}
