import { accessSync, constants } from "node:fs";
import { PromshardError } from "../errors.ts";
import type { TokenVerifier } from "../observability/bearer.ts";
import { parseListenAddress } from "../observability/http.ts";
import { createLogger, parseLogLevel } from "../observability/log.ts";
import { isLegacyLabelName, isValidLabelValue } from "../prom/labels.ts";
import { dialectFor } from "../prom/version.ts";
import { type ShardIdentity, Sidecar, shardFromPodName } from "../sidecar/sidecar.ts";
import { limitHeapGrowth } from "../util/heap.ts";
import { type Command, logLevelFlag, type RunContext, UsageError, untilSignal } from "./command.ts";
import { asUsage, bytes, durationMs, optional, required } from "./flag-values.ts";

const POD_NAME_ENV = "POD_NAME";
const REPLICA_ENV = "PROMSHARD_REPLICA";

/** A label name flag; "" is kept (it means: no such label). */
function labelName(values: RunContext["values"], name: string): string | undefined {
  const v = typeof values[name] === "string" ? values[name] : undefined;
  if (v !== undefined && v !== "" && !isLegacyLabelName(v)) {
    throw new UsageError(`--${name}: "${v}" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*), or "" for none`);
  }
  return v;
}

/** --shard, else the ordinal of --shard.pod-name or $POD_NAME; --replica, else $PROMSHARD_REPLICA, else "0". */
export function identityFromFlags(values: RunContext["values"], env: NodeJS.ProcessEnv): ShardIdentity {
  const shardFlag = optional(values, "shard");
  const podName = optional(values, "shard.pod-name") ?? (env[POD_NAME_ENV] || undefined);
  let shard: number;
  if (shardFlag !== undefined) {
    if (!/^(0|[1-9]\d{0,8})$/.test(shardFlag))
      throw new UsageError(`--shard: "${shardFlag}" is not a shard ordinal (0, 1, 2 …)`);
    shard = Number(shardFlag);
  } else if (podName !== undefined) {
    shard = asUsage(() => shardFromPodName(podName));
  } else {
    throw new UsageError(
      `give --shard N, or --shard.pod-name (or $${POD_NAME_ENV}) of a StatefulSet pod named <name>-<ordinal>`,
    );
  }
  const replica = optional(values, "replica") ?? (env[REPLICA_ENV] || "0");
  if (!isValidLabelValue(replica)) throw new UsageError(`--replica: "${replica}" is not a valid label value`);
  return { shard, replica, ...(podName !== undefined ? { podName } : {}) };
}

export const sidecarCommand: Command = {
  name: "sidecar",
  summary:
    "Run beside one Prometheus shard: generate its config from the original, write the coordinator's assignment as file_sd files, reload Prometheus on structural changes, report per-target runtime",
  flags: {
    "config.file": {
      type: "string",
      description: "The original Prometheus config (watched for changes)",
      placeholder: "FILE",
    },
    "config.dir": {
      type: "string",
      description: "Directory relative paths in the config resolve against (default: the config file's)",
      placeholder: "DIR",
    },
    "prometheus.url": {
      type: "string",
      description: "This shard's Prometheus (started with --web.enable-lifecycle)",
      default: "http://127.0.0.1:9090",
      placeholder: "URL",
    },
    "output.dir": {
      type: "string",
      description: "Directory shared with Prometheus: the generated prometheus.yml and targets/ go here",
      placeholder: "DIR",
    },
    "state.dir": {
      type: "string",
      description: "Persistent directory for the last applied assignment",
      placeholder: "DIR",
    },
    "config.fallback-file": {
      type: "string",
      description:
        "The coordinator's last good config (the webhook mounts its Secret here): run when --config.file fails validation and --state.dir keeps no good one, as in a new pod",
      placeholder: "FILE",
    },
    "tsdb.path": {
      type: "string",
      description:
        "Prometheus's data directory as mounted here, when a Thanos sidecar ships it to a bucket: a drained shard's head is flushed there for it (POST /api/v1/flush; needs Prometheus's --web.enable-admin-api)",
      placeholder: "DIR",
    },
    listen: { type: "string", description: "API address, HOST:PORT or :PORT", default: ":9095", placeholder: "ADDR" },
    "api.token-file": {
      type: "string",
      description:
        "File holding the bearer token the coordinator must send (re-read when it changes); local mode, or a cluster without --api.auth=kubernetes",
      placeholder: "FILE",
      formerly: "token-file",
    },
    "api.auth": {
      type: "string",
      description:
        "token: the static --api.token-file; kubernetes: the caller's token for the audience promshard.io/sidecar checked by TokenReview, and SubjectAccessReview for update (PUT or PATCH assignment) or get (runtime) on shards/assignment|runtime.promshard.io named after the pod in its namespace",
      default: "token",
      placeholder: "MODE",
    },
    kubeconfig: {
      type: "string",
      description: "kubeconfig for --api.auth=kubernetes (default: in-cluster)",
      placeholder: "FILE",
    },
    shard: {
      type: "string",
      description: "This shard's ordinal (else derived from --shard.pod-name)",
      placeholder: "N",
    },
    "shard.pod-name": {
      type: "string",
      description: `StatefulSet pod name <name>-<ordinal> to take the shard from (default $${POD_NAME_ENV})`,
      placeholder: "NAME",
      formerly: "pod-name",
    },
    replica: {
      type: "string",
      description: `Replica group of this shard (default $${REPLICA_ENV}, else 0)`,
      placeholder: "R",
    },
    "shard.label": {
      type: "string",
      description: 'External label naming the shard ("" for none: a global view that merges same-named series)',
      default: "shard",
      placeholder: "NAME",
      formerly: "shard-label",
    },
    "replica.label": {
      type: "string",
      description: 'External label naming the replica group ("" for none)',
      default: "replica",
      placeholder: "NAME",
      formerly: "replica-label",
    },
    "remote-write.replica-label": {
      type: "string",
      description: "Name remote-written series carry the replica under (e.g. __replica__ for Mimir/Cortex HA dedup)",
      placeholder: "NAME",
    },
    "remote-write.drop-shard": {
      type: "boolean",
      description:
        "Drop the shard label from remote-written series, so a moved target keeps one identity (on by default; --no-remote-write.drop-shard keeps it)",
    },
    "prometheus.version": {
      type: "string",
      description: "Version of this shard's Prometheus, 2.x or 3.x (default: asked from its /api/v1/status/buildinfo)",
      placeholder: "VERSION",
      formerly: "prometheus-version",
    },
    "targets.refresh-interval": {
      type: "string",
      description: "refresh_interval of the generated file_sd entries (used when inotify is unavailable)",
      default: "30s",
      placeholder: "DURATION",
    },
    "config.check-interval": {
      type: "string",
      description: "How often the original config's hash is checked besides file events",
      default: "10s",
      placeholder: "DURATION",
    },
    "api.body-limit": {
      type: "string",
      description: "Largest assignment body accepted",
      default: "64mb",
      placeholder: "SIZE",
    },
    ...logLevelFlag,
  },
  async run(ctx) {
    limitHeapGrowth();
    const v = ctx.values;
    const configFile = required(v, "config.file");
    const outputDir = required(v, "output.dir");
    const stateDir = required(v, "state.dir");
    const auth = required(v, "api.auth");
    if (auth !== "token" && auth !== "kubernetes")
      throw new UsageError(`--api.auth must be token or kubernetes, not "${auth}"`);
    const tokenFile = auth === "token" ? required(v, "api.token-file") : undefined;
    const listen = required(v, "listen");
    asUsage(() => parseListenAddress(listen));
    const prometheusUrl = required(v, "prometheus.url");
    if (!/^https?:\/\/[^/]+/.test(prometheusUrl) || !URL.canParse(prometheusUrl)) {
      throw new UsageError(`--prometheus.url: "${prometheusUrl}" is not an http(s) URL`);
    }
    const version = optional(v, "prometheus.version");
    if (version !== undefined) asUsage(() => dialectFor(version));
    const level = asUsage(() => parseLogLevel(required(v, "log.level")));
    const shardLabel = labelName(v, "shard.label")!;
    const replicaLabel = labelName(v, "replica.label")!;
    if (shardLabel !== "" && shardLabel === replicaLabel)
      throw new UsageError("--shard.label and --replica.label must differ");
    const rwReplica = optional(v, "remote-write.replica-label");
    if (rwReplica !== undefined && !isLegacyLabelName(rwReplica)) {
      throw new UsageError(`--remote-write.replica-label: "${rwReplica}" is not a label name`);
    }
    const refresh = required(v, "targets.refresh-interval");
    durationMs(v, "targets.refresh-interval", { positive: true });
    const checkMs = durationMs(v, "config.check-interval", { positive: true });
    const bodyLimit = bytes(v, "api.body-limit");
    try {
      accessSync(configFile, constants.R_OK);
    } catch (err) {
      throw new UsageError(`--config.file: cannot read ${configFile}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    const identity = identityFromFlags(v, process.env);
    const log = createLogger({
      component: "sidecar",
      level,
      base: { shard: identity.shard, replica: identity.replica },
    });
    let tokenVerifier: TokenVerifier | undefined;
    if (auth === "kubernetes") {
      // In a pod the API is asked with the ServiceAccount's own credentials, without client-node (kube/api.ts).
      const [{ kubeApi, ownNamespace }, { SIDECAR_AUDIENCE, sidecarAccess, tokenReviewVerifier }] = await Promise.all([
        import("../kube/api.ts"),
        import("../kube/token-review.ts"),
      ]);
      const namespace = process.env.POD_NAMESPACE ?? ownNamespace();
      if (!namespace) throw new UsageError("--api.auth=kubernetes needs $POD_NAMESPACE (the webhook sets it)");
      const pod = identity.podName ?? `shard-${identity.shard}`;
      tokenVerifier = tokenReviewVerifier({
        api: asUsage(() => kubeApi(optional(v, "kubeconfig"))),
        access: (req) => sidecarAccess(req.method, namespace, pod),
        audiences: [SIDECAR_AUDIENCE],
        log,
      });
    }
    const sidecar = new Sidecar({
      configFile,
      ...(optional(v, "config.dir") ? { configDir: optional(v, "config.dir")! } : {}),
      prometheusUrl,
      outputDir,
      stateDir,
      ...(optional(v, "config.fallback-file") ? { fallbackConfigFile: optional(v, "config.fallback-file")! } : {}),
      ...(optional(v, "tsdb.path") ? { tsdbPath: optional(v, "tsdb.path")! } : {}),
      listen,
      ...(tokenVerifier ? { tokenVerifier } : { tokenFile: tokenFile! }),
      identity,
      shardLabel,
      replicaLabel,
      remoteWriteReplicaLabel: rwReplica,
      remoteWriteDropShard: v["remote-write.drop-shard"] !== false,
      prometheusVersion: version,
      refreshInterval: refresh,
      configCheckIntervalMs: checkMs,
      bodyLimit,
      log,
    });
    try {
      await sidecar.start();
    } catch (err) {
      await sidecar.stop().catch(() => {});
      if (err instanceof PromshardError && (err.code === "flag_invalid" || err.code === "version_invalid")) {
        throw new UsageError(err.message);
      }
      ctx.stderr.write(`promshard sidecar: ${(err as Error).message}\n`);
      return 1;
    }
    const signal = await untilSignal();
    log.info({ signal }, "shutting down");
    await sidecar.stop();
    log.flush();
    return 0;
  },
};
