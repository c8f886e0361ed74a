import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { extname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { freePort } from "../util/ports.ts";
import type { Scaler } from "./coordinator.ts";

/** One local shard: a promshard sidecar and the Prometheus it configures. */
export interface LocalShard {
  readonly id: number;
  readonly sidecarUrl: string;
  readonly prometheusUrl: string;
  readonly dir: string;
  readonly processes: ChildProcess[];
}

export interface LocalScalerOptions {
  /** The user's Prometheus config file. */
  readonly configFile: string;
  readonly dataDir: string;
  readonly prometheusBin: string;
  readonly log?: Logger;
  /** Extra Prometheus flags (e.g. a short --storage.tsdb.min-block-duration in tests). */
  readonly prometheusArgs?: readonly string[];
  /** Called when a shard's processes are up, and when one is removed. */
  readonly onChange?: (shards: readonly LocalShard[]) => void;
}

/** The promshard entry point next to this module: src/cli.ts from a checkout, dist/cli.js when built. */
const CLI = fileURLToPath(new URL(`../cli${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/**
 * The local scaler: shard i is a sidecar process plus a Prometheus process on loopback,
 * under `<data-dir>/shard-<i>` (its TSDB survives a restart of the shard). Scaling down
 * stops the highest shard's processes; the coordinator only asks once the shard is drained
 * and the scale-down wait has passed.
 */
export class LocalScaler implements Scaler {
  readonly #o: LocalScalerOptions;
  readonly #shards: LocalShard[] = [];
  readonly token = randomBytes(24).toString("hex");
  readonly #tokenFile: string;

  constructor(opts: LocalScalerOptions) {
    this.#o = opts;
    mkdirSync(opts.dataDir, { recursive: true });
    this.#tokenFile = join(opts.dataDir, "sidecar-token");
    writeFileSync(this.#tokenFile, this.token, { mode: 0o600 });
  }

  current(): number {
    return this.#shards.length;
  }

  shards(): readonly LocalShard[] {
    return this.#shards;
  }

  async scaleTo(n: number): Promise<void> {
    while (this.#shards.length < n) this.#shards.push(await this.#start(this.#shards.length));
    while (this.#shards.length > n) await this.#stop(this.#shards.pop()!);
    this.#o.onChange?.(this.#shards);
  }

  async #start(id: number): Promise<LocalShard> {
    const dir = join(this.#o.dataDir, `shard-${id}`);
    for (const d of ["out", "state", "tsdb"]) mkdirSync(join(dir, d), { recursive: true });
    const [sidecarPort, promPort] = [await freePort(), await freePort()];
    const prometheusUrl = `http://127.0.0.1:${promPort}`;
    const log = this.#o.log?.child({ shard: id });
    const sidecar = spawn(
      process.execPath,
      [
        CLI,
        "sidecar",
        "--config.file",
        this.#o.configFile,
        "--prometheus.url",
        prometheusUrl,
        "--output.dir",
        join(dir, "out"),
        "--state.dir",
        join(dir, "state"),
        "--listen",
        `127.0.0.1:${sidecarPort}`,
        "--token-file",
        this.#tokenFile,
        "--shard",
        String(id),
        "--replica",
        "0",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    pipeLog(sidecar, log, "sidecar");
    const generated = join(dir, "out", "prometheus.yml");
    for (let i = 0; i < 200 && !existsSync(generated); i++) await sleep(50);
    if (!existsSync(generated)) throw new Error(`shard ${id}: the sidecar wrote no config in 10 s`);
    const prometheus = spawn(
      this.#o.prometheusBin,
      [
        `--config.file=${generated}`,
        `--storage.tsdb.path=${join(dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--web.enable-lifecycle",
        "--web.enable-remote-write-receiver",
        ...(this.#o.prometheusArgs ?? []),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    pipeLog(prometheus, log, "prometheus");
    for (let i = 0; i < 300; i++) {
      try {
        if ((await fetch(`${prometheusUrl}/-/ready`)).ok) break;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    log?.info({ prometheusUrl, sidecarUrl: `http://127.0.0.1:${sidecarPort}` }, "shard started");
    return { id, sidecarUrl: `http://127.0.0.1:${sidecarPort}`, prometheusUrl, dir, processes: [sidecar, prometheus] };
  }

  async #stop(shard: LocalShard): Promise<void> {
    await Promise.all(shard.processes.map(stopProcess));
    this.#o.log?.info({ shard: shard.id }, "shard stopped");
  }

  async stopAll(): Promise<void> {
    while (this.#shards.length > 0) await this.#stop(this.#shards.pop()!);
  }
}

function pipeLog(child: ChildProcess, log: Logger | undefined, component: string): void {
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim()) log?.debug({ component }, line);
  };
  child.stdout?.on("data", forward);
  child.stderr?.on("data", forward);
  child.on("exit", (code, signal) => {
    if (code !== 0 && signal !== "SIGTERM") log?.warn({ component, code, signal }, "process exited");
  });
}

/** SIGTERM, then SIGKILL after 10 s. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}
