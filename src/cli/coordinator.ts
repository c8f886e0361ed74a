import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import type { Logger } from "pino";
import { loadConfigFile, parseConfigFile } from "../config/load.ts";
import { Coordinator } from "../coordinator/coordinator.ts";
import { EXPLORE_CONCURRENCY, exploreTarget, scrapeClientFor } from "../coordinator/explore.ts";
import { coordinatorMetrics } from "../coordinator/metrics.ts";
import { replicatedShardClient } from "../coordinator/replica-groups.ts";
import { CoordinatorService, type ShardEndpoint } from "../coordinator/service.ts";
import { httpShardClient, tokenFromFile } from "../coordinator/shard-client.ts";
import type { CoordinatorEvent, Scaler, ShardClient } from "../coordinator/shards.ts";
import type { ShardGroup } from "../coordinator/statefulset-scaler.ts";
import { DiscoveryManager } from "../discovery/manager.ts";
import { PromshardError } from "../errors.ts";
import { ownNamespace } from "../kube/api.ts";
import { kubeClientFor } from "../kube/client.ts";
import { InformerPool } from "../kube/informers.ts";
import type { LeaderElector } from "../kube/leader.ts";
import type { TokenVerifier } from "../observability/bearer.ts";
import { createHttpApp, listen, parseListenAddress } from "../observability/http.ts";
import { createLogger, type LogLevel, parseLogLevel } from "../observability/log.ts";
import { createRegistry } from "../observability/metrics.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import type { PromDialect } from "../prom/version.ts";
import { getStrategy, type Strategy, strategyNames } from "../scheduler/index.ts";
import { staticToken, TokenFile } from "../sidecar/api.ts";
import { limitHeapGrowth } from "../util/heap.ts";
import { lastGoodSecretName } from "../webhook/inject.ts";
import { budgetFlags } from "./budget-flags.ts";
import {
  type Command,
  configFile,
  configFlag,
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
    ...configFlag,
    ...budgetFlags,
    listen: {
      type: "string",
      description: "Status page, API, /metrics, /healthz and /readyz address",
      default: defaults.listen,
      placeholder: "ADDR",
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
    "explore.concurrency": {
      type: "string",
      description:
        "Most exploring scrapes of new targets at once; they start at 16 and double while that makes them finish faster",
      default: String(EXPLORE_CONCURRENCY),
      placeholder: "N",
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
  readonly exploreConcurrency: number;
  readonly listen: string;
  readonly level: LogLevel;
  readonly dialect: PromDialect;
  readonly webTokenFile?: string;
}

/** Validates the shared flags; a bad one is a UsageError naming it. */
export function readCoordinatorFlags(values: RunContext["values"]): CoordinatorSettings {
  const file = configFile(values);
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
    exploreConcurrency: int(values, "explore.concurrency", 1),
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
  /** The sidecars of shard `id`, one per replica group (a URL may change when a shard is started again). */
  readonly sidecarUrls: (id: number) => readonly string[];
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
  /** What the shards are made of (a cluster's StatefulSets), for /api/v1/status. */
  readonly shardSets?: () => unknown;
  /** `config` is not the file's (which fails) but this last good one's, kept by a previous run. */
  readonly lastGoodText?: string;
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
      const urls = parts.sidecarUrls(id);
      const token = parts.token();
      const key = `${urls.join("\0")}\0${token}`;
      const c =
        clients.get(key) ??
        (urls.length === 1
          ? httpShardClient(urls[0]!, token)
          : replicatedShardClient(urls.map((u) => httpShardClient(u, token))));
      clients.set(key, c);
      return c;
    },
    explore: async (target, job, labelNames) => {
      // Keyed by the job object: a reloaded config gets clients with its own HTTP settings.
      const client = scrapeClients.get(job) ?? scrapeClientFor(job, dirname(s.configFile));
      scrapeClients.set(job, client);
      return (await exploreTarget(target, job, client, labelNames)).series;
    },
    budget: s.budget,
    minShards: s.minShards,
    maxShards: s.maxShards,
    scaleDownDelayMs: s.scaleDownDelayMs,
    scaleDownWaitMs: s.scaleDownWaitMs,
    downGraceMs: s.downGraceMs,
    crashWindowMs: s.crashWindowMs,
    moveTimeoutMs: s.moveTimeoutMs,
    exploreConcurrency: s.exploreConcurrency,
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
    ...(parts.shardSets ? { shardSets: parts.shardSets } : {}),
    ...(parts.lastGoodText !== undefined ? { lastGood: { config, text: parts.lastGoodText } } : {}),
    planning: { strategy: s.strategy, minShards: s.minShards, maxShards: s.maxShards },
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

/** NAMESPACE/NAME or NAME (in `own`), as Kubernetes spells names. */
const OBJECT_REF = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\/)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** --shards.statefulset as a list of StatefulSets, or undefined when absent (then they are found by label). */
function statefulSetsFlag(
  values: RunContext["values"],
  own: string | undefined,
): { namespace: string; name: string }[] | undefined {
  const v = values["shards.statefulset"];
  if (typeof v !== "string") return undefined;
  return v.split(",").map((ref) => {
    const r = ref.trim();
    if (!OBJECT_REF.test(r))
      throw new UsageError(
        `--shards.statefulset: "${r}" is not NAMESPACE/NAME or NAME; give one per replica group, comma-separated`,
      );
    if (r.includes("/")) {
      const [namespace, name] = r.split("/") as [string, string];
      return { namespace, name };
    }
    if (!own)
      throw new UsageError(`--shards.statefulset: give the namespace (NAMESPACE/${r}); not running in a cluster`);
    return { namespace: own, name: r };
  });
}

export const coordinatorCommand: Command = {
  name: "coordinator",
  summary:
    "Run the coordinator in a cluster: discover and measure targets, assign them to the shard StatefulSets' pods through their sidecars, scale them",
  flags: {
    ...coordinatorFlags({ listen: ":9500", scaleDownWait: "3h" }),
    "coordinator.name": {
      type: "string",
      description:
        "This coordinator's name: its shards are the StatefulSets labelled promshard.io/coordinator=NAME (the webhook labels every StatefulSet whose pods it injects)",
      default: "promshard",
      placeholder: "NAME",
    },
    "shards.namespace": {
      type: "string",
      description:
        "Look for shard StatefulSets in this namespace only (default: all namespaces, which needs cluster-wide RBAC)",
      placeholder: "NS",
    },
    "shards.statefulset": {
      type: "string",
      description:
        "Use these StatefulSets as shards instead of finding them by label: NAMESPACE/NAME or NAME (in the coordinator's own namespace), one per replica group, comma-separated",
      placeholder: "NS/NAME,…",
    },
    "sidecar.port": {
      type: "string",
      description:
        "Port of the promshard sidecar in each shard pod (promshard.io/sidecar-port on a StatefulSet's pod template overrides)",
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
        "How to reach shard pods, with {pod}, {ordinal}, {statefulset}, {group}, {service}, {namespace}, {port} (default: http://{pod}.{service}.{namespace}.svc:{port})",
      placeholder: "URL",
    },
    "scale-down.store-url": {
      type: "string",
      description:
        "Store Gateways' HTTP URLs, comma-separated: a drained shard goes only once they serve the blocks of its head (default: once its Thanos sidecar has uploaded them)",
      placeholder: "URL,…",
    },
    "scale-down.query-url": {
      type: "string",
      description:
        "Thanos Queries' HTTP URLs, comma-separated, with --scale-down.store-url: a drained shard goes only once each of them routes queries to the Store Gateway for its head's blocks; dns+http://host:port stands for every address host resolves to (a headless Service's ready pods)",
      placeholder: "URL,…",
    },
    "sidecar.token-file": {
      type: "string",
      description:
        "File holding the bearer token sent to the sidecars, re-read every round: their static token, or for sidecars with --api.auth=kubernetes a projected ServiceAccount token for the audience promshard.io/sidecar",
      placeholder: "FILE",
      formerly: "token-file",
    },
    kubeconfig: {
      type: "string",
      description:
        "kubeconfig for the StatefulSets and for kubernetes_sd_configs without their own (default: in-cluster)",
      placeholder: "FILE",
    },
    "web.auth": {
      type: "string",
      description:
        "Who may POST /-/reload without --web.token-file: none (anyone who can reach it) or kubernetes (a bearer token that TokenReview knows and RBAC lets create coordinators/reload.promshard.io in the coordinator's namespace)",
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
      description:
        "The Lease for leader election (default: the coordinator's namespace, NAME-coordinator with NAME its --coordinator.name, or the first --shards.statefulset's)",
      placeholder: "NS/NAME",
    },
    "thanos.query-url": {
      type: "string",
      description:
        "Thanos Query over the shards (http://host:port): the status page shows its series count over the last hour and links to it",
      placeholder: "URL",
    },
  },
  async run(ctx) {
    limitHeapGrowth();
    const s = readCoordinatorFlags(ctx.values);
    const own = ownNamespace();
    const coordinatorName = String(ctx.values["coordinator.name"]);
    if (!DNS_LABEL.test(coordinatorName))
      throw new UsageError(
        `--coordinator.name: "${coordinatorName}" is not a DNS label (lower-case letters, digits, '-')`,
      );
    const shardsNamespace = typeof ctx.values["shards.namespace"] === "string" ? ctx.values["shards.namespace"] : "";
    if (shardsNamespace !== "" && !DNS_LABEL.test(shardsNamespace))
      throw new UsageError(`--shards.namespace: "${shardsNamespace}" is not a namespace name`);
    const explicit = statefulSetsFlag(ctx.values, own);
    // Where the coordinator's own objects (Lease, reload access) live.
    const home = explicit?.[0]?.namespace ?? own ?? (shardsNamespace || undefined);
    if (!home)
      throw new UsageError("not running in a cluster: give --shards.namespace or --shards.statefulset NAMESPACE/NAME");
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
    const storeUrls = urlsFlag(
      ctx.values,
      "scale-down.store-url",
      "Store Gateway",
      "http://thanos-store.monitoring.svc:10902",
    );
    const queryUrls = urlsFlag(
      ctx.values,
      "scale-down.query-url",
      "Thanos Query",
      "dns+http://thanos-query-headless.monitoring.svc:9090",
    );
    if (queryUrls.length > 0 && storeUrls.length === 0)
      throw new UsageError(
        "--scale-down.query-url needs --scale-down.store-url: Query's routing is checked for the blocks the Store Gateways have loaded",
      );
    const lease = leaseFlag(ctx.values, home, explicit?.[0]?.name ?? coordinatorName);
    const queryUrl = ctx.values["thanos.query-url"];
    if (typeof queryUrl === "string") {
      // The value is never echoed: a URL may carry a password.
      const u = URL.canParse(queryUrl) ? new URL(queryUrl) : undefined;
      if (!u || !/^https?:$/.test(u.protocol))
        throw new UsageError("--thanos.query-url must be an http:// or https:// URL of Thanos Query");
      if (u.username || u.password)
        throw new UsageError("--thanos.query-url must not carry a user or password: the status page links to it");
    }
    const log = createLogger({ component: "coordinator", level: s.level });
    // Here, not at the top: `promshard local` shares this module and has no API server to talk to.
    const [
      { kubeApi },
      { LastGoodSecrets },
      { LeaderElector },
      { reloadAccess, tokenReviewVerifier },
      { StatefulSetScaler },
    ] = await Promise.all([
      import("../kube/api.ts"),
      import("../kube/last-good-secret.ts"),
      import("../kube/leader.ts"),
      import("../kube/token-review.ts"),
      import("../coordinator/statefulset-scaler.ts"),
    ]);
    const api = kubeApi(kubeconfig);
    const lastGood = new LastGoodSecrets(api, coordinatorName, log);
    // Where a previous run kept its last good config: its own namespace always, the shards' too.
    const keptIn = [home, ...(explicit ? explicit.map((x) => x.namespace) : shardsNamespace ? [shardsNamespace] : [])];
    let config = loadStartConfig(ctx, s);
    let kept: { text: string; namespace: string } | undefined;
    if (!config) {
      try {
        kept = await lastGood.read(keptIn);
        if (!kept) return 1;
        config = parseConfigFile(kept.text, s.configFile, s.dialect);
      } catch (err) {
        if (!(err instanceof PromshardError)) throw err;
        printErrors(ctx.stderr, [
          new PromshardError(
            "config_invalid",
            `and the last good config kept by a previous run fails too: ${err.message}`,
            {
              path: `Secret ${lastGoodSecretName(coordinatorName)}`,
            },
          ),
        ]);
        return 1;
      }
      log.warn(
        { secret: `${kept.namespace}/${lastGoodSecretName(coordinatorName)}`, file: s.configFile },
        "the config file is invalid; running the last good config a previous run kept",
      );
    }
    const pool = new InformerPool({ log });
    let sink: ((e: CoordinatorEvent) => void) | undefined;
    const url = (g: ShardGroup, id: number, port: number) =>
      template
        .replaceAll("{pod}", `${g.name}-${id}`)
        .replaceAll("{ordinal}", String(id))
        .replaceAll("{statefulset}", g.name)
        .replaceAll("{group}", String(g.replicaGroup))
        .replaceAll("{service}", g.serviceName ?? g.name)
        .replaceAll("{namespace}", g.namespace)
        .replaceAll("{port}", String(port));
    const sidecarToken = tokenFromFile(tokenFile);
    const scaler = new StatefulSetScaler({
      api,
      client: kubeClientFor({}, kubeconfig ? { fallbackKubeconfig: kubeconfig } : {}),
      pool,
      selection: {
        coordinator: coordinatorName,
        namespace: shardsNamespace,
        ...(explicit ? { statefulSets: explicit } : {}),
      },
      log,
      onEvent: (e) => sink?.(e),
      onGroups: (groups) => lastGood.sync([home, ...groups.map((g) => g.namespace)]),
      drain: {
        sidecarUrl: (g, id) => url(g, id, g.sidecarPort ?? sidecarPort),
        token: sidecarToken,
        storeUrls,
        queryUrls,
      },
    });
    const webAuth = String(ctx.values["web.auth"]);
    if (webAuth !== "none" && webAuth !== "kubernetes")
      throw new UsageError(`--web.auth must be none or kubernetes, not "${webAuth}"`);
    const reloadAuth =
      webAuth === "kubernetes" ? tokenReviewVerifier({ api, access: () => reloadAccess(home), log }) : undefined;
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
    const where = explicit
      ? `StatefulSet ${explicit.map((x) => `${x.namespace}/${x.name}`).join(", ")}`
      : `StatefulSets labelled promshard.io/coordinator=${coordinatorName}${shardsNamespace ? ` in ${shardsNamespace}` : ""}`;
    return runCoordinator(ctx, s, config, log, {
      scaler,
      ...(kept ? { lastGoodText: kept.text } : {}),
      onConfigLoaded: (text) => lastGood.set(text),
      sidecarUrls: (id) => scaler.groups().map((g) => url(g, id, g.sidecarPort ?? sidecarPort)),
      token: sidecarToken,
      endpoint: (id) => {
        const groups = scaler.groups();
        return {
          prometheusUrl: groups[0] ? url(groups[0], id, promPort) : null,
          extra: {
            pod: groups[0] ? `${groups[0].name}-${id}` : null,
            replicaGroups: groups.map((g) => ({
              replicaGroup: g.replicaGroup,
              statefulSet: `${g.namespace}/${g.name}`,
              pod: `${g.name}-${id}`,
              prometheusUrl: url(g, id, promPort),
            })),
          },
        };
      },
      shardSets: () => ({
        replicaGroups: scaler.groups().map((g) => ({
          replicaGroup: g.replicaGroup,
          statefulSet: `${g.namespace}/${g.name}`,
          upload: g.upload,
        })),
        unusable: scaler.unusable().map((u) => ({ statefulSet: `${u.namespace}/${u.name}`, problem: u.problem })),
      }),
      events: (e) => {
        sink = e;
      },
      ...(kubeconfig ? { kubeconfig } : {}),
      ...(typeof queryUrl === "string" ? { globalQueryUrl: queryUrl } : {}),
      start: () => scaler.start(),
      stop: async () => {
        scaler.stop();
        pool.stopAll();
      },
      ...(leader ? { leader } : {}),
      ...(reloadAuth ? { reloadAuth } : {}),
      banner: (u) => `promshard coordinator: status page ${u}/  ·  shards: ${where}`,
    });
  },
};

/** A comma-separated list of http(s) URLs (`dns+` ones too when the example is one), checked before anything starts. */
function urlsFlag(values: RunContext["values"], flag: string, what: string, example: string): string[] {
  const dns = example.startsWith("dns+");
  const v = values[flag];
  if (typeof v !== "string") return [];
  return v.split(",").map((u, i) => {
    const url = u.trim().replace(/\/+$/, "");
    const bare = dns ? url.replace(/^dns\+/, "") : url;
    // By position, not value: a URL may carry a password.
    if (!/^https?:\/\/[^/]+/.test(bare) || !URL.canParse(bare))
      throw new UsageError(
        `--${flag}: its entry ${i + 1} is not an http(s) URL${dns ? " (or one prefixed dns+)" : ""}; give each ${what}'s HTTP address, e.g. ${example}`,
      );
    return url;
  });
}

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
