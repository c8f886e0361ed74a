import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { extname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import type { CoordinatorEvent, Scaler } from "../coordinator/shards.ts";
import { PromshardError } from "../errors.ts";
import { SIDECAR_NODE_FLAGS } from "../sidecar/node-flags.ts";
import { noTargetsLeft, snapshotWithHead } from "../sidecar/tsdb-admin.ts";
import { sidecarArgs } from "../thanos/args.ts";
import { writeFileAtomicSync } from "../util/atomic-write.ts";
import { untilAnswers } from "../util/http.ts";
import { freePort, portListened } from "../util/ports.ts";
import type { DataArchive } from "./global-view.ts";
import {
  type ProcessSpec,
  processesWith,
  type RestartInfo,
  runningAs,
  SupervisedProcess,
  terminate,
} from "./process.ts";

/** One local shard: a promshard sidecar and the Prometheus it configures. */
export interface LocalShard {
  readonly id: number;
  readonly sidecarUrl: string;
  readonly prometheusUrl: string;
  readonly dir: string;
  readonly sidecar: SupervisedProcess;
  readonly prometheus: SupervisedProcess;
  /** The Thanos sidecar: the shard's StoreAPI for the global view, and its block shipper. */
  readonly thanos: SupervisedProcess;
  /** host:port of the Thanos sidecar's StoreAPI. */
  readonly grpcAddress: string;
  readonly ports: ShardPorts;
}

/** The ports a shard's processes listen on. */
export interface ShardPorts {
  readonly sidecar: number;
  readonly prometheus: number;
  readonly thanosGrpc: number;
  readonly thanosHttp: number;
}

const PORT_NAMES: Record<keyof ShardPorts, string> = {
  sidecar: "sidecar",
  prometheus: "Prometheus",
  thanosGrpc: "Thanos sidecar (gRPC)",
  thanosHttp: "Thanos sidecar (HTTP)",
};

function savedOf(id: number, p: ShardPorts): SavedShard {
  return {
    id,
    sidecarPort: p.sidecar,
    prometheusPort: p.prometheus,
    thanosGrpcPort: p.thanosGrpc,
    thanosHttpPort: p.thanosHttp,
  };
}

export interface LocalScalerOptions {
  /** The Prometheus config file the sidecars read (local mode: a copy of the last good one). */
  readonly configFile: string;
  /** Where relative paths in it resolve (the original's directory, for a copy). */
  readonly configDir?: string;
  readonly dataDir: string;
  readonly prometheusBin: string;
  readonly thanosBin: string;
  readonly log?: Logger;
  /** Extra Prometheus flags (e.g. a short --storage.tsdb.min-block-duration in tests). */
  readonly prometheusArgs?: readonly string[];
  /** The bucket drained shards' data goes to before they stop (and shards ship blocks to); without it, nothing is kept. */
  readonly archive?: DataArchive;
  /** Called when a shard's processes are up, and when one is removed. */
  readonly onChange?: (shards: readonly LocalShard[]) => void;
  readonly onEvent?: (e: CoordinatorEvent) => void;
}

/** A shard as shards.json keeps it: its processes are found again by their command lines. */
interface SavedShard {
  readonly id: number;
  readonly sidecarPort: number;
  readonly prometheusPort: number;
  readonly thanosGrpcPort?: number;
  readonly thanosHttpPort?: number;
}

/** The strings that tell shard processes apart (SupervisedProcess markers): the directories they own. */
function markers(dir: string): { sidecar: string; prometheus: string; thanos: string } {
  return {
    sidecar: `--state.dir=${join(dir, "state")}`,
    prometheus: `--storage.tsdb.path=${join(dir, "tsdb")}`,
    thanos: `--tsdb.path=${join(dir, "tsdb")}`,
  };
}

/** A shard's external labels (the promshard sidecar writes them): Thanos tells shards apart by them, and dedups over them. */
function shardLabels(id: number): Record<string, string> {
  return { shard: String(id) };
}

/** The port a saved record names, when its process still runs or nothing else listens there; else a new one. */
async function portFor(saved: number | undefined, alive: boolean): Promise<number> {
  if (saved !== undefined && (alive || !portListened(saved))) return saved;
  return freePort();
}

interface Retiring {
  readonly blocks: string[];
}

/** The promshard entry point next to this module: src/cli.ts from a checkout, dist/cli.js when built. */
const CLI = fileURLToPath(new URL(`../cli${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/**
 * The local scaler: shard i is a sidecar process plus a Prometheus process on loopback,
 * under `<data-dir>/shard-<i>`, each restarted when it dies (as a kubelet would). Which
 * shards run, on which ports, is kept in `<data-dir>/shards.json`: a coordinator
 * started again adopts the running shards instead of starting new ones, so nothing moves.
 * Before the highest shard stops, its data is made safe: a TSDB snapshot (head included)
 * whose blocks move into the global endpoint's TSDB, where its history stays queryable.
 */
export class LocalScaler implements Scaler {
  readonly #o: LocalScalerOptions;
  readonly #shards: LocalShard[] = [];
  readonly token: string;
  readonly #tokenFile: string;
  readonly #stateFile: string;
  readonly #retiring = new Map<number, Retiring>();
  /**
   * Shards being started: recorded in shards.json before their first process spawns, so a
   * coordinator killed half way through a start leaves a record, and the next run adopts
   * the processes instead of starting a second Prometheus on the same directory.
   */
  readonly #starting = new Map<number, SavedShard>();
  readonly #relocating = new Set<number>();

  constructor(opts: LocalScalerOptions) {
    this.#o = opts;
    mkdirSync(opts.dataDir, { recursive: true });
    this.#tokenFile = join(opts.dataDir, "sidecar-token");
    this.#stateFile = join(opts.dataDir, "shards.json");
    // Kept across restarts: adopted sidecars keep the token they read.
    if (existsSync(this.#tokenFile)) this.token = readFileSync(this.#tokenFile, "utf8").trim();
    else {
      this.token = randomBytes(24).toString("hex");
      writeFileSync(this.#tokenFile, this.token, { mode: 0o600 });
    }
  }

  current(): number {
    return this.#shards.length;
  }

  shards(): readonly LocalShard[] {
    return this.#shards;
  }

  restarts(id: number): number {
    const s = this.#shards[id];
    return s ? s.sidecar.restarts + s.prometheus.restarts : 0;
  }

  /** Adopts the shards a previous run left running (per shards.json); returns how many. */
  async adopt(): Promise<number> {
    let saved: SavedShard[] = [];
    try {
      saved = JSON.parse(readFileSync(this.#stateFile, "utf8")) as SavedShard[];
    } catch {
      return 0;
    }
    for (const s of saved.sort((a, b) => a.id - b.id)) {
      if (s.id === this.#shards.length) this.#shards.push(await this.#start(s.id, s));
      else await this.#stopSaved(s);
    }
    this.#save();
    if (this.#shards.length > 0) this.#o.onChange?.(this.#shards);
    return this.#shards.length;
  }

  async scaleTo(n: number): Promise<void> {
    while (this.#shards.length < n) {
      this.#shards.push(await this.#start(this.#shards.length));
      this.#save();
    }
    while (this.#shards.length > n) {
      const shard = this.#shards.pop()!;
      this.#save();
      await this.#stop(shard);
      // Its data is in the archive (or the wait ran out and the coordinator said so): the
      // directory is reset so that a shard started later under this id begins empty.
      if (this.#retiring.has(shard.id) && this.#o.archive) rmSync(shard.dir, { recursive: true, force: true });
      this.#retiring.delete(shard.id);
    }
    this.#o.onChange?.(this.#shards);
  }

  /**
   * Snapshots the shard's TSDB through the admin API (head included), moves the snapshot's
   * blocks into the archive's TSDB, and is true once the archive has loaded them.
   */
  async dataSafe(id: number): Promise<boolean> {
    const archive = this.#o.archive;
    const shard = this.#shards[id];
    if (!archive || !shard) return true;
    let r = this.#retiring.get(id);
    if (!r) {
      if (!(await noTargetsLeft(shard.prometheusUrl))) return false;
      const name = await snapshotWithHead(shard.prometheusUrl);
      const snapshot = join(shard.dir, "tsdb", "snapshots", name);
      try {
        r = { blocks: await archive.upload(snapshot, shardLabels(id)) };
      } finally {
        rmSync(snapshot, { recursive: true, force: true });
      }
      this.#retiring.set(id, r);
    }
    return archive.loaded(r.blocks);
  }

  /** A recorded shard that cannot be adopted (an id after a gap): its processes are stopped. */
  async #stopSaved(s: SavedShard): Promise<void> {
    for (const marker of Object.values(markers(join(this.#o.dataDir, `shard-${s.id}`))))
      for (const pid of processesWith(marker)) await terminate(pid, marker);
  }

  #save(): void {
    const saved: SavedShard[] = [...this.#shards.map((s) => savedOf(s.id, s.ports)), ...this.#starting.values()];
    writeFileAtomicSync(this.#stateFile, JSON.stringify(saved, null, 2));
  }

  /** The shard's processes, as they run with these ports. */
  #specs(id: number, ports: ShardPorts): Record<"sidecar" | "prometheus" | "thanos", ProcessSpec> {
    const dir = join(this.#o.dataDir, `shard-${id}`);
    const m = markers(dir);
    const generated = join(dir, "out", "prometheus.yml");
    const prometheusUrl = `http://127.0.0.1:${ports.prometheus}`;
    const upload = this.#o.archive?.objstoreFile;
    return {
      sidecar: {
        name: "sidecar",
        command: process.execPath,
        args: [
          ...SIDECAR_NODE_FLAGS,
          CLI,
          "sidecar",
          "--config.file",
          this.#o.configFile,
          ...(this.#o.configDir ? ["--config.dir", this.#o.configDir] : []),
          "--prometheus.url",
          prometheusUrl,
          "--output.dir",
          join(dir, "out"),
          m.sidecar,
          "--listen",
          `127.0.0.1:${ports.sidecar}`,
          "--api.token-file",
          this.#tokenFile,
          "--shard",
          String(id),
          // The shard label only (one replica group): Thanos Query treats a moving target's
          // two copies, which differ in it alone, as one series.
          "--replica.label",
          "",
        ],
        marker: m.sidecar,
        logFile: join(dir, "sidecar.log"),
      },
      prometheus: {
        name: "prometheus",
        command: this.#o.prometheusBin,
        args: [
          `--config.file=${generated}`,
          m.prometheus,
          `--web.listen-address=127.0.0.1:${ports.prometheus}`,
          "--web.enable-lifecycle",
          "--web.enable-admin-api",
          // Hidden flag (5s by default; 2.x clamps it to at least 5s): a restarted shard, or a
          // target moved in, is scraped a second after discovery sees it, not five.
          "--scrape.discovery-reload-interval=1s",
          // A Thanos sidecar that ships blocks refuses a Prometheus that compacts them itself.
          ...(upload ? ["--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"] : []),
          ...(this.#o.prometheusArgs ?? []),
        ],
        marker: m.prometheus,
        logFile: join(dir, "prometheus.log"),
      },
      thanos: {
        name: "thanos-sidecar",
        command: this.#o.thanosBin,
        args: sidecarArgs({
          grpcAddress: `127.0.0.1:${ports.thanosGrpc}`,
          httpAddress: `127.0.0.1:${ports.thanosHttp}`,
          prometheusUrl,
          tsdbPath: join(dir, "tsdb"),
          ...(upload ? { objstoreConfigFile: upload } : {}),
        }),
        marker: m.thanos,
        logFile: join(dir, "thanos-sidecar.log"),
      },
    };
  }

  /**
   * Starts shard `id`, adopting the processes a previous run left with the same command
   * lines (`saved` says which ports they used). A saved port that another process took
   * meanwhile is replaced by a free one, and said so.
   */
  async #start(id: number, saved?: SavedShard): Promise<LocalShard> {
    const dir = join(this.#o.dataDir, `shard-${id}`);
    for (const d of ["out", "state", "tsdb"]) mkdirSync(join(dir, d), { recursive: true });
    const before: Partial<ShardPorts> = saved
      ? {
          sidecar: saved.sidecarPort,
          prometheus: saved.prometheusPort,
          thanosGrpc: saved.thanosGrpcPort,
          thanosHttp: saved.thanosHttpPort,
        }
      : {};
    const was = saved?.thanosGrpcPort && saved.thanosHttpPort ? this.#specs(id, before as ShardPorts) : undefined;
    const m = markers(dir);
    // A process is adopted when it runs exactly as it would be started; any other process on
    // the shard's directories is stopped first, so that its ports are free again for this one.
    const adoptable = async (name: "sidecar" | "prometheus" | "thanos", ok: boolean): Promise<boolean> => {
      if (ok && was !== undefined && runningAs(was[name]) !== undefined) return true;
      for (const pid of processesWith(m[name])) {
        await terminate(pid, m[name]);
        this.#event(`shard ${id}: stopped a ${name} (pid ${pid}) an earlier run left running on ${dir}`);
      }
      return false;
    };
    const prometheus = await portFor(before.prometheus, await adoptable("prometheus", true));
    // A running sidecar (ours or Thanos's) is adopted only while it points at the Prometheus this shard runs.
    const same = prometheus === before.prometheus;
    const sidecarAdopted = await adoptable("sidecar", same);
    const thanosAdopted = await adoptable("thanos", same);
    const ports: ShardPorts = {
      prometheus,
      sidecar: await portFor(before.sidecar, sidecarAdopted),
      thanosGrpc: await portFor(before.thanosGrpc, thanosAdopted),
      thanosHttp: await portFor(before.thanosHttp, thanosAdopted),
    };
    for (const k of Object.keys(ports) as (keyof ShardPorts)[])
      if (before[k] !== undefined && before[k] !== ports[k])
        this.#event(
          `shard ${id}: ${PORT_NAMES[k]} moved from port ${before[k]} to ${ports[k]}: ${before[k]} is taken by another process`,
        );
    const specs = this.#specs(id, ports);
    const prometheusUrl = `http://127.0.0.1:${ports.prometheus}`;
    const sidecarUrl = `http://127.0.0.1:${ports.sidecar}`;
    this.#starting.set(id, savedOf(id, ports));
    this.#save();
    const log = this.#o.log?.child({ shard: id });
    const supervise = (spec: ProcessSpec, listens: readonly number[]) =>
      SupervisedProcess.start(spec, {
        log,
        adopt: true,
        onRestart: (p: SupervisedProcess, info: RestartInfo) => {
          const last = info.lastOutput.at(-1);
          this.#event(
            `shard ${id}: ${p.spec.name} exited and was restarted (${info.restarts})${last ? `; its last output: ${last}` : ""}`,
          );
        },
        onStray: (p: SupervisedProcess, pid: number) =>
          this.#event(`shard ${id}: stopped a ${p.spec.name} (pid ${pid}) an earlier run left running on ${dir}`),
        canRestart: async () => {
          const taken = listens.find((port) => portListened(port));
          if (taken === undefined) return true;
          void this.#relocate(id, `${spec.name} cannot restart: port ${taken} is taken by another process`);
          return false;
        },
      });
    const started: SupervisedProcess[] = [];
    try {
      started.push(await supervise(specs.sidecar, [ports.sidecar]));
      const generated = join(dir, "out", "prometheus.yml");
      for (let i = 0; i < 200 && !existsSync(generated); i++) await sleep(50);
      if (!existsSync(generated))
        throw new PromshardError("shard_start_failed", `the sidecar wrote no config in 10 s (see ${dir}/sidecar.log)`, {
          path: `shard ${id}`,
        });
      started.push(await supervise(specs.prometheus, [ports.prometheus]));
      await untilAnswers(`${prometheusUrl}/-/ready`, 30_000);
      // After Prometheus: the Thanos sidecar reads its external labels at start.
      started.push(await supervise(specs.thanos, [ports.thanosGrpc, ports.thanosHttp]));
      // The sidecar answers before the coordinator's first look, so a new shard is not "down".
      await untilAnswers(`${sidecarUrl}/healthz`, 10_000);
      await untilAnswers(`http://127.0.0.1:${ports.thanosHttp}/-/ready`, 30_000);
      log?.info({ prometheusUrl, sidecarUrl, adopted: saved !== undefined }, "shard started");
      const [sidecar, prom, thanos] = started as [SupervisedProcess, SupervisedProcess, SupervisedProcess];
      return {
        id,
        sidecarUrl,
        prometheusUrl,
        dir,
        sidecar,
        prometheus: prom,
        thanos,
        grpcAddress: `127.0.0.1:${ports.thanosGrpc}`,
        ports,
      };
    } catch (err) {
      // Nothing half-started may stay behind: the next round tries again from scratch.
      await Promise.all(started.map((p) => p.stop()));
      throw err;
    } finally {
      this.#starting.delete(id);
    }
  }

  /**
   * Replaces a shard whose process cannot start where it ran (its port taken by another
   * process): both of its processes stop and start again on free ports, with its data.
   */
  async #relocate(id: number, why: string): Promise<void> {
    const old = this.#shards[id];
    if (!old || this.#relocating.has(id)) return;
    this.#relocating.add(id);
    try {
      await this.#stop(old);
      if (this.#shards[id] !== old) return;
      const next = await this.#start(id);
      this.#shards[id] = next;
      this.#save();
      this.#event(
        `shard ${id}: ${why}; started again on ports ${new URL(next.sidecarUrl).port}/${new URL(next.prometheusUrl).port}`,
      );
      this.#o.onChange?.(this.#shards);
    } catch (err) {
      this.#o.log?.error({ shard: id, err }, "cannot restart the shard on new ports");
      this.#event(`shard ${id}: ${why}; starting it on new ports failed: ${(err as Error).message}`);
    } finally {
      this.#relocating.delete(id);
    }
  }

  #event(text: string): void {
    this.#o.log?.warn({ event: text }, "shard event");
    this.#o.onEvent?.({ kind: "shard", text });
  }

  async #stop(shard: LocalShard): Promise<void> {
    await Promise.all([shard.sidecar.stop(), shard.prometheus.stop(), shard.thanos.stop()]);
    this.#o.log?.info({ shard: shard.id }, "shard stopped");
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.#shards.splice(0).map((s) => this.#stop(s)));
    rmSync(this.#stateFile, { force: true });
  }
}
