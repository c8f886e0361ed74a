import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { loadConfigFile } from "../config/load.ts";
import { Coordinator } from "../coordinator/coordinator.ts";
import { exploreTarget, scrapeClientFor } from "../coordinator/explore.ts";
import { GlobalQuery } from "../coordinator/global-query.ts";
import { LocalScaler } from "../coordinator/local-scaler.ts";
import { coordinatorMetrics } from "../coordinator/metrics.ts";
import { CoordinatorService } from "../coordinator/service.ts";
import { httpShardClient } from "../coordinator/shard-client.ts";
import { DiscoveryManager } from "../discovery/manager.ts";
import { PromshardError } from "../errors.ts";
import { createHttpApp, listen, parseListenAddress } from "../observability/http.ts";
import { createLogger, parseLogLevel } from "../observability/log.ts";
import { createRegistry } from "../observability/metrics.ts";
import type { ScrapeJob } from "../prom/config.ts";
import { parseDuration } from "../prom/duration.ts";
import { getStrategy, strategyNames } from "../scheduler/index.ts";
import {
  type Command,
  dialectFromFlag,
  logLevelFlag,
  prometheusVersionFlag,
  UsageError,
  untilSignal,
} from "./command.ts";
import { printErrors } from "./targets.ts";

function int(v: unknown, flag: string, min: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${flag} must be an integer >= ${min}, got "${String(v)}"`);
  return n;
}

function ms(v: unknown, flag: string): number {
  const d = parseDuration(String(v));
  if (typeof d === "object") throw new UsageError(`${flag}: ${d.error}`);
  return d;
}

function defaultPrometheus(): string {
  const listed = (process.env.PROMSHARD_PROMETHEUS_BINS ?? "").split(":").filter(Boolean);
  return listed.at(-1) ?? (existsSync("/usr/bin/prometheus") ? "/usr/bin/prometheus" : "prometheus");
}

export const localCommand: Command = {
  name: "local",
  summary:
    "Run the coordinator with one sidecar + real Prometheus per shard on this machine, a global query endpoint and a status page",
  flags: {
    config: { type: "string", description: "Prometheus config file", placeholder: "FILE" },
    "max-series": { type: "string", description: "Series budget of one shard", default: "30000", placeholder: "N" },
    "data-dir": {
      type: "string",
      description: "Where shards keep their data",
      default: "promshard-data",
      placeholder: "DIR",
    },
    "prometheus-bin": {
      type: "string",
      description: "Prometheus binary (default: the newest of PROMSHARD_PROMETHEUS_BINS, else /usr/bin/prometheus)",
      placeholder: "PATH",
    },
    listen: {
      type: "string",
      description: "Status page and API address",
      default: "127.0.0.1:9500",
      placeholder: "ADDR",
    },
    "global.listen-port": {
      type: "string",
      description: "Port of the global query Prometheus",
      default: "9501",
      placeholder: "PORT",
    },
    "global-rules": {
      type: "string",
      multiple: true,
      description: "Rule file evaluated on the global endpoint, over all shards",
      placeholder: "FILE",
    },
    scheduler: {
      type: "string",
      description: `Scheduler: ${strategyNames().join(", ")}`,
      default: "series-balanced",
      placeholder: "NAME",
    },
    "min-shards": { type: "string", description: "Fewest shards", default: "1", placeholder: "N" },
    "max-shards": { type: "string", description: "Most shards", default: "16", placeholder: "N" },
    interval: { type: "string", description: "Control loop period", default: "5s", placeholder: "DURATION" },
    "scale-down.delay": {
      type: "string",
      description: "How long the highest shard stays empty before it is stopped",
      default: "1m",
      placeholder: "DURATION",
    },
    "scale-down.wait": {
      type: "string",
      description:
        "Longest wait for a drained shard's data to be loaded by the global endpoint before the shard is stopped anyway",
      default: "5m",
      placeholder: "DURATION",
    },
    "shard.down-grace": {
      type: "string",
      description: "How long a down shard keeps its targets (it is being restarted) before they move",
      default: "30s",
      placeholder: "DURATION",
    },
    "shard.crash-window": {
      type: "string",
      description: "Two restarts within this window lower a shard's budget; a window without one restores it",
      default: "10m",
      placeholder: "DURATION",
    },
    ...logLevelFlag,
    ...prometheusVersionFlag,
  },
  async run(ctx) {
    const file = ctx.values.config;
    if (typeof file !== "string") throw new UsageError("--config FILE is required");
    const strategy = getStrategy(String(ctx.values.scheduler));
    if (!strategy) throw new UsageError(`--scheduler must be one of ${strategyNames().join(", ")}`);
    const budget = int(ctx.values["max-series"], "--max-series", 1);
    const minShards = int(ctx.values["min-shards"], "--min-shards", 1);
    const maxShards = int(ctx.values["max-shards"], "--max-shards", minShards);
    const interval = ms(ctx.values.interval, "--interval");
    const scaleDownDelayMs = ms(ctx.values["scale-down.delay"], "--scale-down.delay");
    const globalPort = int(ctx.values["global.listen-port"], "--global.listen-port", 1);
    let level: ReturnType<typeof parseLogLevel>;
    try {
      level = parseLogLevel(String(ctx.values["log.level"]));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    parseListenAddress(String(ctx.values.listen));
    const dialect = dialectFromFlag(ctx.values);
    const log = createLogger({ component: "local", level });
    let config: ReturnType<typeof loadConfigFile>;
    try {
      config = loadConfigFile(resolve(file), dialect);
    } catch (err) {
      if (!(err instanceof PromshardError)) throw err;
      printErrors(ctx.stderr, [err]);
      return 1;
    }
    const prometheusBin =
      typeof ctx.values["prometheus-bin"] === "string" ? ctx.values["prometheus-bin"] : defaultPrometheus();
    const dataDir = resolve(String(ctx.values["data-dir"]));
    const configFile = resolve(file);
    const registry = createRegistry();
    const metrics = coordinatorMetrics(registry);
    const discovery = new DiscoveryManager({ log });
    discovery.apply(config);
    for (const u of discovery.unsupported) log.warn({ err: u.message }, "service discovery not run");
    const global = new GlobalQuery({
      dir: resolve(dataDir, "global"),
      port: globalPort,
      prometheusBin,
      ruleFiles: ((ctx.values["global-rules"] as string[] | undefined) ?? []).map((f) => resolve(f)),
      log,
    });
    // Set below; the scaler reports restarts and scaling through it.
    let service: CoordinatorService | undefined;
    const scaler = new LocalScaler({
      configFile,
      dataDir,
      prometheusBin,
      log,
      archive: global,
      onChange: (shards) => void global.update(shards.map((s) => s.prometheusUrl)),
      onEvent: (e) => service?.event(e),
    });
    const clients = new Map<string, ReturnType<typeof httpShardClient>>();
    const scrapeClients = new WeakMap<ScrapeJob, ReturnType<typeof scrapeClientFor>>();
    const coordinator = new Coordinator(config, {
      discovery,
      strategy,
      scaler,
      // By URL: a shard started again after a scale-down listens elsewhere.
      shard: (id) => {
        const url = scaler.shards()[id]!.sidecarUrl;
        const c = clients.get(url) ?? httpShardClient(url, scaler.token);
        clients.set(url, c);
        return c;
      },
      explore: async (target, job) => {
        // Keyed by the job object: a reloaded config gets clients with its own HTTP settings.
        const client = scrapeClients.get(job) ?? scrapeClientFor(job, dirname(configFile));
        scrapeClients.set(job, client);
        return (await exploreTarget(target, job, client)).series;
      },
      budget,
      minShards,
      maxShards,
      scaleDownDelayMs,
      scaleDownWaitMs: ms(ctx.values["scale-down.wait"], "--scale-down.wait"),
      downGraceMs: ms(ctx.values["shard.down-grace"], "--shard.down-grace"),
      crashWindowMs: ms(ctx.values["shard.crash-window"], "--shard.crash-window"),
      metrics,
      onEvent: (e) => service?.event(e),
      log,
    });
    service = new CoordinatorService({
      coordinator,
      discovery,
      configFile,
      dialect,
      intervalMs: interval,
      metrics,
      log,
      globalQueryUrl: global.url,
      endpoint: (id) => {
        const s = scaler.shards()[id];
        return {
          prometheusUrl: s?.prometheusUrl ?? null,
          extra: {
            sidecarUrl: s?.sidecarUrl ?? null,
            pids: { sidecar: s?.sidecar.pid, prometheus: s?.prometheus.pid },
          },
        };
      },
    });
    const app = createHttpApp({
      registry,
      log,
      readiness: () => service.readiness(),
      routes: (a) => service.routes(a),
    });
    // The global endpoint first: the scaler tells it about every shard it starts. Shards a
    // previous run left running are adopted, so a restart moves nothing.
    const stopAll = async () => {
      discovery.stop();
      await scaler.stopAll();
      await global.stop();
    };
    let server: Awaited<ReturnType<typeof listen>>;
    try {
      await global.start([]);
      const adopted = await scaler.adopt();
      if (adopted > 0) log.info({ shards: adopted }, "adopted the shards of the previous run");
      if (scaler.current() < minShards) await scaler.scaleTo(minShards);
      server = await listen(app, String(ctx.values.listen));
    } catch (err) {
      // Shards run detached: nothing may outlive a failed start.
      await stopAll();
      throw err;
    }
    ctx.stdout.write(
      `promshard local: status page ${server.url}/  ·  global query ${global.url}  ·  shards' data in ${dataDir}\n`,
    );
    service.start();
    await untilSignal();
    await service.stop();
    await server.close();
    await stopAll();
    return 0;
  },
};
