import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { extname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import type { CoordinatorEvent, Scaler } from "../coordinator/shards.ts";
import { PromshardError } from "../errors.ts";
import { writeFileAtomicSync } from "../util/atomic-write.ts";
import { httpCall, untilAnswers } from "../util/http.ts";
import { freePort, portListened } from "../util/ports.ts";
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
}

/** Where a drained shard's data goes to stay queryable: the global endpoint's own TSDB. */
export interface DataArchive {
  /** A TSDB directory the archive loads blocks from. */
  readonly tsdbDir: string;
  /** Taken before blocks are moved in; handed back to `loaded`. */
  mark(): Promise<number>;
  /** Resolves true once every block named has been loaded (or compacted into another). */
  loaded(blocks: readonly string[], mark: number): Promise<boolean>;
}

export interface LocalScalerOptions {
  /** The Prometheus config file the sidecars read (local mode: a copy of the last good one). */
  readonly configFile: string;
  /** Where relative paths in it resolve (the original's directory, for a copy). */
  readonly configDir?: string;
  readonly dataDir: string;
  readonly prometheusBin: string;
  readonly log?: Logger;
  /** Extra Prometheus flags (e.g. a short --storage.tsdb.min-block-duration in tests). */
  readonly prometheusArgs?: readonly string[];
  /** Where drained shards' data is imported before they stop; without it, nothing is kept. */
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
}

/** The strings that tell shard processes apart (SupervisedProcess markers): the directories they own. */
function markers(dir: string): { sidecar: string; prometheus: string } {
  return { sidecar: `--state.dir=${join(dir, "state")}`, prometheus: `--storage.tsdb.path=${join(dir, "tsdb")}` };
}

/** The port a saved record names, when its process still runs or nothing else listens there; else a new one. */
async function portFor(saved: number | undefined, alive: boolean): Promise<number> {
  if (saved !== undefined && (alive || !portListened(saved))) return saved;
  return freePort();
}

interface Retiring {
  readonly blocks: string[];
  readonly mark: number;
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
      const mark = await archive.mark();
      const res = await httpCall(`${shard.prometheusUrl}/api/v1/admin/tsdb/snapshot`, {
        method: "POST",
        timeoutMs: 120_000,
      });
      if (res.status !== 200)
        throw new PromshardError(
          "shard_data_unsafe",
          `TSDB snapshot failed: HTTP ${res.status} ${res.text.slice(0, 300)}`,
          {
            path: `shard ${id}`,
          },
        );
      const { data } = JSON.parse(res.text) as { data: { name: string } };
      const snapshot = join(shard.dir, "tsdb", "snapshots", data.name);
      const blocks: string[] = [];
      for (const block of readdirSync(snapshot)) {
        const to = join(archive.tsdbDir, block);
        // A block imported before (the shard was drained once already) is there; same ULID, same data.
        if (!existsSync(to)) renameSync(join(snapshot, block), to);
        blocks.push(block);
      }
      rmSync(snapshot, { recursive: true, force: true });
      r = { blocks, mark };
      this.#retiring.set(id, r);
      this.#o.log?.info({ shard: id, blocks: blocks.length }, "drained shard's blocks moved into the global TSDB");
    }
    return archive.loaded(r.blocks, r.mark);
  }

  /** A recorded shard that cannot be adopted (an id after a gap): its processes are stopped. */
  async #stopSaved(s: SavedShard): Promise<void> {
    for (const marker of Object.values(markers(join(this.#o.dataDir, `shard-${s.id}`))))
      for (const pid of processesWith(marker)) await terminate(pid, marker);
  }

  #save(): void {
    const saved: SavedShard[] = [
      ...this.#shards.map((s) => ({
        id: s.id,
        sidecarPort: Number(new URL(s.sidecarUrl).port),
        prometheusPort: Number(new URL(s.prometheusUrl).port),
      })),
      ...this.#starting.values(),
    ];
    writeFileAtomicSync(this.#stateFile, JSON.stringify(saved, null, 2));
  }

  /** The shard's two processes, as they run with these ports. */
  #specs(id: number, sidecarPort: number, promPort: number): { sidecar: ProcessSpec; prometheus: ProcessSpec } {
    const dir = join(this.#o.dataDir, `shard-${id}`);
    const m = markers(dir);
    const generated = join(dir, "out", "prometheus.yml");
    return {
      sidecar: {
        name: "sidecar",
        command: process.execPath,
        args: [
          CLI,
          "sidecar",
          "--config.file",
          this.#o.configFile,
          ...(this.#o.configDir ? ["--config.dir", this.#o.configDir] : []),
          "--prometheus.url",
          `http://127.0.0.1:${promPort}`,
          "--output.dir",
          join(dir, "out"),
          m.sidecar,
          "--listen",
          `127.0.0.1:${sidecarPort}`,
          "--api.token-file",
          this.#tokenFile,
          "--shard",
          String(id),
          // No external labels: the global Prometheus merges a moving target's series from
          // two shards into one only when their label sets are the same.
          "--shard.label",
          "",
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
          `--web.listen-address=127.0.0.1:${promPort}`,
          "--web.enable-lifecycle",
          "--web.enable-admin-api",
          // Hidden flag (5s by default; 2.x clamps it to at least 5s): a restarted shard, or a
          // target moved in, is scraped a second after discovery sees it, not five.
          "--scrape.discovery-reload-interval=1s",
          ...(this.#o.prometheusArgs ?? []),
        ],
        marker: m.prometheus,
        logFile: join(dir, "prometheus.log"),
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
    const was = saved && this.#specs(id, saved.sidecarPort, saved.prometheusPort);
    const promPort = await portFor(saved?.prometheusPort, was !== undefined && runningAs(was.prometheus) !== undefined);
    // A running sidecar is adopted only while it points at the Prometheus this shard runs.
    const sidecarPort = await portFor(
      saved?.sidecarPort,
      was !== undefined && promPort === saved?.prometheusPort && runningAs(was.sidecar) !== undefined,
    );
    for (const [what, before, now] of [
      ["Prometheus", saved?.prometheusPort, promPort],
      ["sidecar", saved?.sidecarPort, sidecarPort],
    ] as const)
      if (before !== undefined && before !== now)
        this.#event(`shard ${id}: ${what} moved from port ${before} to ${now}: ${before} is taken by another process`);
    const specs = this.#specs(id, sidecarPort, promPort);
    const prometheusUrl = `http://127.0.0.1:${promPort}`;
    const sidecarUrl = `http://127.0.0.1:${sidecarPort}`;
    this.#starting.set(id, { id, sidecarPort, prometheusPort: promPort });
    this.#save();
    const log = this.#o.log?.child({ shard: id });
    const supervise = (spec: ProcessSpec, port: number) =>
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
          if (!portListened(port)) return true;
          void this.#relocate(id, `${spec.name} cannot restart: port ${port} is taken by another process`);
          return false;
        },
      });
    let sidecar: SupervisedProcess | undefined;
    try {
      sidecar = await supervise(specs.sidecar, sidecarPort);
      const generated = join(dir, "out", "prometheus.yml");
      for (let i = 0; i < 200 && !existsSync(generated); i++) await sleep(50);
      if (!existsSync(generated))
        throw new PromshardError("shard_start_failed", `the sidecar wrote no config in 10 s (see ${dir}/sidecar.log)`, {
          path: `shard ${id}`,
        });
      const prometheus = await supervise(specs.prometheus, promPort);
      await untilAnswers(`${prometheusUrl}/-/ready`, 30_000);
      // The sidecar answers before the coordinator's first look, so a new shard is not "down".
      await untilAnswers(`${sidecarUrl}/healthz`, 10_000);
      log?.info({ prometheusUrl, sidecarUrl, adopted: saved !== undefined }, "shard started");
      return { id, sidecarUrl, prometheusUrl, dir, sidecar, prometheus };
    } catch (err) {
      // Nothing half-started may stay behind: the next round tries again from scratch.
      await sidecar?.stop();
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
    await Promise.all([shard.sidecar.stop(), shard.prometheus.stop()]);
    this.#o.log?.info({ shard: shard.id }, "shard stopped");
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.#shards.splice(0).map((s) => this.#stop(s)));
    rmSync(this.#stateFile, { force: true });
  }
}
