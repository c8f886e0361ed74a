import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { CoordinatorEvent } from "../coordinator/shards.ts";
import { GlobalView } from "../local/global-view.ts";
import { LocalScaler } from "../local/scaler.ts";
import { createLogger } from "../observability/log.ts";
import { writeFileAtomicSync } from "../util/atomic-write.ts";
import { limitHeapGrowth } from "../util/heap.ts";
import { type Command, UsageError } from "./command.ts";
import { coordinatorFlags, loadStartConfig, readCoordinatorFlags, runCoordinator } from "./coordinator.ts";
import { int } from "./flag-values.ts";

/** The thanos `make tools` builds; keep in step with THANOS_VERSION in tools/thanos.mk. */
const THANOS_CACHED = join(homedir(), ".cache/promshard-tools/thanos-0.42.4/bin/thanos");

function defaultThanos(): string {
  return process.env.PROMSHARD_THANOS_BIN || (existsSync(THANOS_CACHED) ? THANOS_CACHED : "thanos");
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
    ...coordinatorFlags({ listen: "127.0.0.1:9500", scaleDownWait: "5m" }),
    "storage.path": {
      type: "string",
      description: "Where shards keep their data",
      default: "promshard-data",
      placeholder: "DIR",
      formerly: "data-dir",
    },
    "prometheus.bin": {
      type: "string",
      description: "Prometheus binary (default: the newest of PROMSHARD_PROMETHEUS_BINS, else /usr/bin/prometheus)",
      placeholder: "PATH",
      formerly: "prometheus-bin",
    },
    "thanos.bin": {
      type: "string",
      description: `Thanos binary (default: $PROMSHARD_THANOS_BIN, else ${THANOS_CACHED} when it exists, else thanos on PATH)`,
      placeholder: "PATH",
    },
    "global.listen-port": {
      type: "string",
      description: "Port of the global view (Thanos Query's HTTP API, the Prometheus query API)",
      default: "9501",
      placeholder: "PORT",
    },
    "global.remote-write-url": {
      type: "string",
      multiple: true,
      description:
        "Remote-write the global rules' results there (Thanos Ruler stateless: they are then read at the receiver, not through the global view)",
      placeholder: "URL",
    },
    "global.partial-response": {
      type: "boolean",
      description:
        "Answer global queries with what the shards that answer hold, plus a warning, when a shard is down (default: an error, never a silently smaller result)",
    },
    "global.rule-file": {
      type: "string",
      multiple: true,
      description: "Rule file evaluated over all shards (by Thanos Ruler through the global view)",
      placeholder: "FILE",
      formerly: "global-rules",
    },
  },
  async run(ctx) {
    limitHeapGrowth();
    const s = readCoordinatorFlags(ctx.values);
    const globalPort = int(ctx.values, "global.listen-port", 1);
    const config = loadStartConfig(ctx, s);
    if (!config) return 1;
    const log = createLogger({ component: "local", level: s.level });
    const prometheusBin =
      typeof ctx.values["prometheus.bin"] === "string" ? ctx.values["prometheus.bin"] : defaultPrometheus();
    const dataDir = resolve(String(ctx.values["storage.path"]));
    const thanosBin = typeof ctx.values["thanos.bin"] === "string" ? ctx.values["thanos.bin"] : defaultThanos();
    if (thanosBin.includes("/") && !existsSync(thanosBin))
      throw new UsageError(
        `--thanos.bin: ${thanosBin} does not exist; run \`make tools\` or point it at a thanos binary`,
      );
    const global = new GlobalView({
      dir: resolve(dataDir, "global"),
      port: globalPort,
      thanosBin,
      ruleFiles: ((ctx.values["global.rule-file"] as string[] | undefined) ?? []).map((f) => resolve(f)),
      partialResponse: ctx.values["global.partial-response"] === true,
      remoteWriteUrls: (ctx.values["global.remote-write-url"] as string[] | undefined) ?? [],
      log,
    });
    // Shards read the last config that loaded, never a broken one on disk: a shard started
    // while the file is invalid must still come up with what the coordinator runs.
    const lastGood = join(dataDir, "config", basename(s.configFile));
    const keepGood = (text: string) => {
      mkdirSync(dirname(lastGood), { recursive: true });
      // The config holds credentials (basic_auth, bearer tokens): owner only.
      writeFileAtomicSync(lastGood, text, { mode: 0o600 });
    };
    keepGood(readFileSync(s.configFile, "utf8"));
    let sink: ((e: CoordinatorEvent) => void) | undefined;
    const scaler = new LocalScaler({
      configFile: lastGood,
      configDir: dirname(s.configFile),
      dataDir,
      prometheusBin,
      thanosBin,
      log,
      archive: global,
      onChange: (shards) => global.update(shards),
      onEvent: (e) => sink?.(e),
    });
    return runCoordinator(ctx, s, config, log, {
      scaler,
      onConfigLoaded: keepGood,
      sidecarUrls: (id) => [scaler.shards()[id]!.sidecarUrl],
      token: () => scaler.token,
      endpoint: (id) => {
        const x = scaler.shards()[id];
        return {
          prometheusUrl: x?.prometheusUrl ?? null,
          extra: {
            sidecarUrl: x?.sidecarUrl ?? null,
            pids: { sidecar: x?.sidecar.pid, prometheus: x?.prometheus.pid, thanos: x?.thanos.pid },
          },
        };
      },
      globalQueryUrl: global.url,
      events: (e) => {
        sink = e;
      },
      // The global endpoint first: the scaler tells it about every shard it starts. Shards a
      // previous run left running are adopted, so a restart moves nothing.
      start: async () => {
        await global.start([]);
        const adopted = await scaler.adopt();
        if (adopted > 0) log.info({ shards: adopted }, "adopted the shards of the previous run");
        if (scaler.current() < s.minShards) await scaler.scaleTo(s.minShards);
      },
      stop: async () => {
        await scaler.stopAll();
        await global.stop();
      },
      banner: (url) =>
        `promshard local: status page ${url}/  ·  global query ${global.url}  ·  shards' data in ${dataDir}`,
    });
  },
};
