import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { CoordinatorEvent } from "../coordinator/shards.ts";
import { GlobalQuery } from "../local/global-query.ts";
import { LocalScaler } from "../local/scaler.ts";
import { createLogger } from "../observability/log.ts";
import { writeFileAtomicSync } from "../util/atomic-write.ts";
import type { Command } from "./command.ts";
import { coordinatorFlags, loadStartConfig, readCoordinatorFlags, runCoordinator } from "./coordinator.ts";
import { int } from "./flag-values.ts";

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
    "global.listen-port": {
      type: "string",
      description: "Port of the global query Prometheus",
      default: "9501",
      placeholder: "PORT",
    },
    "global.rule-file": {
      type: "string",
      multiple: true,
      description: "Rule file evaluated on the global endpoint, over all shards",
      placeholder: "FILE",
      formerly: "global-rules",
    },
  },
  async run(ctx) {
    const s = readCoordinatorFlags(ctx.values);
    const globalPort = int(ctx.values, "global.listen-port", 1);
    const config = loadStartConfig(ctx, s);
    if (!config) return 1;
    const log = createLogger({ component: "local", level: s.level });
    const prometheusBin =
      typeof ctx.values["prometheus.bin"] === "string" ? ctx.values["prometheus.bin"] : defaultPrometheus();
    const dataDir = resolve(String(ctx.values["storage.path"]));
    const global = new GlobalQuery({
      dir: resolve(dataDir, "global"),
      port: globalPort,
      prometheusBin,
      ruleFiles: ((ctx.values["global.rule-file"] as string[] | undefined) ?? []).map((f) => resolve(f)),
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
      log,
      archive: global,
      onChange: (shards) => void global.update(shards.map((x) => x.prometheusUrl)),
      onEvent: (e) => sink?.(e),
    });
    return runCoordinator(ctx, s, config, log, {
      scaler,
      onConfigLoaded: keepGood,
      sidecarUrl: (id) => scaler.shards()[id]!.sidecarUrl,
      token: () => scaler.token,
      endpoint: (id) => {
        const x = scaler.shards()[id];
        return {
          prometheusUrl: x?.prometheusUrl ?? null,
          extra: {
            sidecarUrl: x?.sidecarUrl ?? null,
            pids: { sidecar: x?.sidecar.pid, prometheus: x?.prometheus.pid },
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
