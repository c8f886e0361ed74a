import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { dump } from "js-yaml";
import type { Logger } from "pino";
import { stopProcess } from "./local-scaler.ts";

/**
 * The local mode's global query endpoint: a Prometheus that stores nothing of its own and
 * reads every shard through remote_read (read_recent, so the shards' head blocks count),
 * evaluating the global rules (DESIGN §5a). Reloaded when shards come and go.
 */
export class GlobalQuery {
  readonly url: string;
  readonly #dir: string;
  readonly #rules: readonly string[];
  #process: ChildProcess | undefined;
  readonly #bin: string;
  readonly #port: number;
  readonly #log: Logger | undefined;

  constructor(opts: { dir: string; port: number; prometheusBin: string; ruleFiles: readonly string[]; log?: Logger }) {
    this.#dir = opts.dir;
    this.#port = opts.port;
    this.#bin = opts.prometheusBin;
    this.#rules = opts.ruleFiles;
    this.#log = opts.log;
    this.url = `http://127.0.0.1:${opts.port}`;
    mkdirSync(join(opts.dir, "tsdb"), { recursive: true });
  }

  #write(shardUrls: readonly string[]): void {
    const config = {
      global: { evaluation_interval: "15s" },
      rule_files: this.#rules,
      remote_read: shardUrls.map((u, i) => ({ name: `shard-${i}`, url: `${u}/api/v1/read`, read_recent: true })),
    };
    writeFileSync(join(this.#dir, "prometheus.yml"), dump(config));
  }

  async start(shardUrls: readonly string[]): Promise<void> {
    this.#write(shardUrls);
    this.#process = spawn(
      this.#bin,
      [
        `--config.file=${join(this.#dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(this.#dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${this.#port}`,
        "--web.enable-lifecycle",
      ],
      { stdio: "ignore" },
    );
    for (let i = 0; i < 300; i++) {
      try {
        if ((await fetch(`${this.url}/-/ready`)).ok) return;
      } catch {
        // not yet
      }
      await sleep(100);
    }
    throw new Error(`the global query Prometheus did not become ready at ${this.url}`);
  }

  async update(shardUrls: readonly string[]): Promise<void> {
    this.#write(shardUrls);
    const res = await fetch(`${this.url}/-/reload`, { method: "POST" }).catch((err: Error) => err);
    if (res instanceof Error || !res.ok)
      this.#log?.warn({ err: res instanceof Error ? res.message : res.status }, "global query reload failed");
  }

  async stop(): Promise<void> {
    if (this.#process) await stopProcess(this.#process);
  }
}
