import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import type { Logger } from "pino";
import { loadConfigFile } from "../config/load.ts";
import { Coordinator } from "../coordinator/coordinator.ts";
import { exploreTarget, scrapeClientFor } from "../coordinator/explore.ts";
import { coordinatorMetrics } from "../coordinator/metrics.ts";
import { CoordinatorService, type ShardEndpoint } from "../coordinator/service.ts";
import { httpShardClient } from "../coordinator/shard-client.ts";
import type { CoordinatorEvent, Scaler, ShardClient } from "../coordinator/shards.ts";
import { StatefulSetScaler } from "../coordinator/statefulset-scaler.ts";
import { DiscoveryManager } from "../discovery/manager.ts";
import { PromshardError } from "../errors.ts";
import { kubeApi } from "../kube/api.ts";
import { ownNamespace } from "../kube/client.ts";
import { LeaderElector } from "../kube/leader.ts";
import { reloadAccess, tokenReviewVerifier } from "../kube/token-review.ts";
import type { TokenVerifier } from "../observability/bearer.ts";
import { createHttpApp, listen, parseListenAddress } from "../observability/http.ts";
import { createLogger, type LogLevel, parseLogLevel } from "../observability/log.ts";
import { createRegistry } from "../observability/metrics.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import type { PromDialect } from "../prom/version.ts";
import { getStrategy, type Strategy, strategyNames } from "../scheduler/index.ts";
import { staticToken, TokenFile } from "../sidecar/api.ts";
import {
  type Command,
  dialectFromFlag,
  type Flags,
  logLevelFlag,
  prometheusVersionFlag,
  type RunContext,
  UsageError,
  untilSignal,
} from "./command.ts";
import { durationMs, int } from "./flag-values.ts";
import { printErrors } from "./targets.ts";

/** The flags every coordinator has, in a cluster or in local mode; defaults differ where the setting does. */
export function coordinatorFlags(defaults: { listen: string; scaleDownWait: string }): Flags {
  return {
    config: { type: "string", description: "Prometheus config file", placeholder: "FILE" },
    "shard.max-series": {
      type: "string",
      description: "Series budget of one shard",
      default: "30000",
      placeholder: "N",
      formerly: "max-series",
    },
    listen: {
      type: "string",
      description: "Status page, API, /metrics, /healthz and /readyz address",
      default: defaults.listen,
      placeholder: "ADDR",
    },
    scheduler: {
      type: "string",
      description: `Scheduler: ${strategyNames().join(", ")}`,
      default: "series-balanced",
      placeholder: "NAME",
    },
    "shards.min": {
      type: "string",
      description: "Fewest shards",
      default: "1",
      placeholder: "N",
      formerly: "min-shards",
    },
    "shards.max": {
      type: "string",
      description: "Most shards",
      default: "16",
      placeholder: "N",
      formerly: "max-shards",
    },
    interval: { type: "string", description: "Control loop period", default: "5s", placeholder: "DURATION" },
    "scale-down.delay": {
      type: "string",
      description: "How long the highest shard stays empty before it is stopped",
      default: "1m",
      placeholder: "DURATION",
    },
    "scale-down.wait": {
      type: "string",
      description: "Longest wait for a drained shard's data to be safe before the shard is stopped anyway",
      default: defaults.scaleDownWait,
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
    "shard.move-timeout": {
      type: "string",
      description:
        "How long a moving target that no shard scrapes (it is down) stays on its old shard before that one lets it go",
      default: "2m",
      placeholder: "DURATION",
    },
    "web.token-file": {
      type: "string",
      description:
        "File holding a bearer token that POST /-/reload must carry (re-read when it changes); read-only endpoints stay open",
      placeholder: "FILE",
    },
    ...logLevelFlag,
    ...prometheusVersionFlag,
  };
}

export interface CoordinatorSettings {
  readonly configFile: string;
  readonly strategy: Strategy;
  readonly budget: number;
  readonly minShards: number;
  readonly maxShards: number;
  readonly intervalMs: number;
  readonly scaleDownDelayMs: number;
  readonly scaleDownWaitMs: number;
  readonly downGraceMs: number;
  readonly crashWindowMs: number;
  readonly moveTimeoutMs: number;
  readonly listen: string;
  readonly level: LogLevel;
  readonly dialect: PromDialect;
  readonly webTokenFile?: string;
}

/** Validates the shared flags; a bad one is a UsageError naming it. */
export function readCoordinatorFlags(values: RunContext["values"]): CoordinatorSettings {
  const file = values.config;
  if (typeof file !== "string") throw new UsageError("--config FILE is required");
  const strategy = getStrategy(String(values.scheduler));
  if (!strategy) throw new UsageError(`--scheduler must be one of ${strategyNames().join(", ")}`);
  const minShards = int(values, "shards.min", 1);
  let level: LogLevel;
  try {
    level = parseLogLevel(String(values["log.level"]));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  try {
    parseListenAddress(String(values.listen));
  } catch (err) {
    throw new UsageError(`--listen: ${(err as Error).message}`);
  }
  return {
    configFile: resolve(file),
    strategy,
    budget: int(values, "shard.max-series", 1),
    minShards,
    maxShards: int(values, "shards.max", minShards),
    intervalMs: durationMs(values, "interval"),
    scaleDownDelayMs: durationMs(values, "scale-down.delay"),
    scaleDownWaitMs: durationMs(values, "scale-down.wait"),
    downGraceMs: durationMs(values, "shard.down-grace"),
    crashWindowMs: durationMs(values, "shard.crash-window"),
    moveTimeoutMs: durationMs(values, "shard.move-timeout"),
    listen: String(values.listen),
    level,
    dialect: dialectFromFlag(values),
    ...(typeof values["web.token-file"] === "string" ? { webTokenFile: resolve(values["web.token-file"]) } : {}),
  };
}

/** Loads the config for a start; an invalid one is printed with every problem and exit status 1. */
export function loadStartConfig(ctx: RunContext, s: CoordinatorSettings): PromConfig | undefined {
  try {
    return loadConfigFile(s.configFile, s.dialect);
  } catch (err) {
    if (!(err instanceof PromshardError)) throw err;
    printErrors(ctx.stderr, [err]);
    return undefined;
  }
}

export interface CoordinatorParts {
  readonly scaler: Scaler;
  /** The sidecar of shard `id` (its URL may change when a shard is started again). */
  readonly sidecarUrl: (id: number) => string;
  readonly token: () => string;
  readonly endpoint: (id: number) => ShardEndpoint;
  readonly globalQueryUrl?: string;
  readonly kubeconfig?: string;
  /** Where the scaler's own events (restarts) go. */
  readonly events?: (sink: (e: CoordinatorEvent) => void) => void;
  /** Starts what must run before the loop (the local shards); its failure stops everything. */
  readonly start?: () => Promise<void>;
  readonly stop?: () => Promise<void>;
  readonly banner: (url: string) => string;
  /** With leader election: rounds run only while this replica leads. */
  readonly leader?: LeaderElector;
  readonly onConfigLoaded?: (text: string) => void;
  /** Who may POST /-/reload when --web.token-file is not given (TokenReview in a cluster). */
  readonly reloadAuth?: TokenVerifier;
}

/**
 * Runs a coordinator until SIGINT/SIGTERM: discovery, the control loop, its HTTP API and
 * status page. What differs between a cluster and local mode comes in `parts`.
 */
export async function runCoordinator(
  ctx: RunContext,
  s: CoordinatorSettings,
  config: PromConfig,
  log: Logger,
  parts: CoordinatorParts,
): Promise<number> {
  const registry = createRegistry();
  const metrics = coordinatorMetrics(registry);
  const discovery = new DiscoveryManager({ log, ...(parts.kubeconfig ? { kubeconfig: parts.kubeconfig } : {}) });
  discovery.apply(config);
  for (const u of discovery.unsupported) log.warn({ err: u.message }, "service discovery not run");
  let service: CoordinatorService | undefined;
  const onEvent = (e: CoordinatorEvent) => service?.event(e);
  parts.events?.(onEvent);
  const clients = new Map<string, ShardClient>();
  const scrapeClients = new WeakMap<ScrapeJob, ReturnType<typeof scrapeClientFor>>();
  const coordinator = new Coordinator(config, {
    discovery,
    strategy: s.strategy,
    scaler: parts.scaler,
    // By URL: a shard started again may listen elsewhere, and the token may have been rotated.
    shard: (id) => {
      const url = parts.sidecarUrl(id);
      const token = parts.token();
      const key = `${url}\0${token}`;
      const c = clients.get(key) ?? httpShardClient(url, token);
      clients.set(key, c);
      return c;
    },
    explore: async (target, job) => {
      // Keyed by the job object: a reloaded config gets clients with its own HTTP settings.
      const client = scrapeClients.get(job) ?? scrapeClientFor(job, dirname(s.configFile));
      scrapeClients.set(job, client);
      return (await exploreTarget(target, job, client)).series;
    },
    budget: s.budget,
    minShards: s.minShards,
    maxShards: s.maxShards,
    scaleDownDelayMs: s.scaleDownDelayMs,
    scaleDownWaitMs: s.scaleDownWaitMs,
    downGraceMs: s.downGraceMs,
    crashWindowMs: s.crashWindowMs,
    moveTimeoutMs: s.moveTimeoutMs,
    metrics,
    onEvent,
    log,
  });
  const reloadAuth = s.webTokenFile
    ? staticToken(new TokenFile(s.webTokenFile, log, "--web.token-file"))
    : parts.reloadAuth;
  service = new CoordinatorService({
    coordinator,
    discovery,
    configFile: s.configFile,
    dialect: s.dialect,
    intervalMs: s.intervalMs,
    metrics,
    log,
    endpoint: parts.endpoint,
    ...(parts.globalQueryUrl ? { globalQueryUrl: parts.globalQueryUrl } : {}),
    ...(parts.leader ? { leader: parts.leader } : {}),
    ...(parts.onConfigLoaded ? { onConfigLoaded: parts.onConfigLoaded } : {}),
    ...(reloadAuth ? { reloadAuth } : {}),
  });
  const running = service;
  const app = createHttpApp({
    registry,
    log,
    readiness: () => running.readiness(),
    routes: (a) => running.routes(a),
  });
  const stopAll = async () => {
    // Released first, so the other replica takes over while this one shuts down.
    await parts.leader?.stop();
    discovery.stop();
    await parts.stop?.();
  };
  // The API listens first: its address is the user's, and ports chosen for shards and the
  // global view must not land on it. A taken address is said plainly, before anything starts.
  let server: Awaited<ReturnType<typeof listen>>;
  try {
    server = await listen(app, s.listen);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE")
      throw new UsageError(`--listen ${s.listen}: the address is in use by another process; choose another`);
    throw err;
  }
  try {
    await parts.start?.();
    parts.leader?.start();
  } catch (err) {
    // Local shards run detached: nothing may outlive a failed start.
    await stopAll();
    await server.close();
    throw err;
  }
  ctx.stdout.write(`${parts.banner(server.url)}\n`);
  running.start();
  await untilSignal();
  await running.stop();
  await server.close();
  await stopAll();
  return 0;
}

export const coordinatorCommand: Command = {
  name: "coordinator",
  summary:
    "Run the coordinator in a cluster: discover and measure targets, assign them to the shard StatefulSet's pods through their sidecars, scale it",
  flags: {
    ...coordinatorFlags({ listen: ":9500", scaleDownWait: "3h" }),
    "shards.statefulset": {
      type: "string",
      description: "The shard StatefulSet, NAMESPACE/NAME or NAME (in the coordinator's own namespace)",
      placeholder: "NS/NAME",
    },
    "sidecar.port": {
      type: "string",
      description: "Port of the promshard sidecar in each shard pod",
      default: "9095",
      placeholder: "PORT",
    },
    "prometheus.port": {
      type: "string",
      description: "Port of Prometheus in each shard pod",
      default: "9090",
      placeholder: "PORT",
    },
    "shards.url-template": {
      type: "string",
      description:
        "How to reach shard pods, with {pod}, {ordinal}, {service}, {namespace}, {port} (default: http://{pod}.{service}.{namespace}.svc:{port})",
      placeholder: "URL",
    },
    "sidecar.token-file": {
      type: "string",
      description: "File holding the sidecars' bearer token (re-read every round)",
      placeholder: "FILE",
      formerly: "token-file",
    },
    kubeconfig: {
      type: "string",
      description:
        "kubeconfig for the StatefulSet and for kubernetes_sd_configs without their own (default: in-cluster)",
      placeholder: "FILE",
    },
    "web.auth": {
      type: "string",
      description:
        "Who may POST /-/reload without --web.token-file: none (anyone who can reach it) or kubernetes (a bearer token that TokenReview knows and RBAC lets create coordinators/reload.promshard.io in the StatefulSet's namespace)",
      default: "none",
      placeholder: "MODE",
    },
    "leader-elect": {
      type: "boolean",
      description:
        "Run rounds only while this replica holds the Lease (on by default; --no-leader-elect for one replica)",
    },
    "leader-elect.lease": {
      type: "string",
      description: "The Lease for leader election (default: the StatefulSet's namespace, NAME-coordinator)",
      placeholder: "NS/NAME",
    },
  },
  async run(ctx) {
    const s = readCoordinatorFlags(ctx.values);
    const ref = ctx.values["shards.statefulset"];
    if (typeof ref !== "string" || !/^([a-z0-9-]+\/)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(ref))
      throw new UsageError("--shards.statefulset NAMESPACE/NAME (or NAME in the coordinator's namespace) is required");
    const [namespace, name] = ref.includes("/") ? (ref.split("/") as [string, string]) : [ownNamespace(), ref];
    if (!namespace)
      throw new UsageError(`--shards.statefulset: give the namespace (NAMESPACE/${ref}); not running in a cluster`);
    const tokenFile = ctx.values["sidecar.token-file"];
    if (typeof tokenFile !== "string")
      throw new UsageError("--sidecar.token-file FILE is required (the sidecars' token)");
    const sidecarPort = int(ctx.values, "sidecar.port", 1);
    const promPort = int(ctx.values, "prometheus.port", 1);
    const template =
      typeof ctx.values["shards.url-template"] === "string"
        ? ctx.values["shards.url-template"]
        : "http://{pod}.{service}.{namespace}.svc:{port}";
    const kubeconfig = typeof ctx.values.kubeconfig === "string" ? ctx.values.kubeconfig : undefined;
    const lease = leaseFlag(ctx.values, namespace, name);
    const config = loadStartConfig(ctx, s);
    if (!config) return 1;
    const log = createLogger({ component: "coordinator", level: s.level });
    const api = kubeApi(kubeconfig);
    const scaler = new StatefulSetScaler(api, namespace, name);
    const webAuth = String(ctx.values["web.auth"]);
    if (webAuth !== "none" && webAuth !== "kubernetes")
      throw new UsageError(`--web.auth must be none or kubernetes, not "${webAuth}"`);
    const reloadAuth =
      webAuth === "kubernetes" ? tokenReviewVerifier({ api, access: () => reloadAccess(namespace), log }) : undefined;
    let leader: LeaderElector | undefined;
    if (lease) {
      leader = new LeaderElector({
        api,
        namespace: lease.namespace,
        name: lease.name,
        identity: `${process.env.POD_NAME ?? hostname()}_${randomBytes(4).toString("hex")}`,
        log,
      });
    }
    const url = (id: number, port: number) =>
      template
        .replaceAll("{pod}", `${name}-${id}`)
        .replaceAll("{ordinal}", String(id))
        .replaceAll("{service}", scaler.serviceName ?? name)
        .replaceAll("{namespace}", namespace)
        .replaceAll("{port}", String(port));
    return runCoordinator(ctx, s, config, log, {
      scaler,
      sidecarUrl: (id) => url(id, sidecarPort),
      token: () => readFileSync(tokenFile, "utf8").trim(),
      endpoint: (id) => ({ prometheusUrl: url(id, promPort), extra: { pod: `${name}-${id}` } }),
      ...(kubeconfig ? { kubeconfig } : {}),
      start: () => scaler.refresh(),
      ...(leader ? { leader } : {}),
      ...(reloadAuth ? { reloadAuth } : {}),
      banner: (u) => `promshard coordinator: status page ${u}/  ·  shards: StatefulSet ${namespace}/${name}`,
    });
  },
};

/** The Lease to elect a leader with, or undefined with --no-leader-elect; checked before anything starts. */
function leaseFlag(
  values: RunContext["values"],
  namespace: string,
  name: string,
): { namespace: string; name: string } | undefined {
  if (values["leader-elect"] === false) return undefined;
  const lease =
    typeof values["leader-elect.lease"] === "string"
      ? values["leader-elect.lease"]
      : `${namespace}/${name}-coordinator`;
  const parts = lease.split("/");
  if (parts.length !== 2 || !parts[0] || !parts[1])
    throw new UsageError(`--leader-elect.lease: "${lease}" is not NAMESPACE/NAME`);
  return { namespace: parts[0], name: parts[1] };
}
