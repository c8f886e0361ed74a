import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dump } from "js-yaml";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { httpCall, untilAnswers } from "../util/http.ts";
import { SupervisedProcess } from "./process.ts";
import type { DataArchive } from "./scaler.ts";

/** How often the global TSDB looks for imported blocks, where the Prometheus lets us choose (3.16+). */
const BLOCK_RELOAD = "5s";

interface BlockMeta {
  ulid: string;
  compaction?: { sources?: string[] };
}

/**
 * The local mode's global query endpoint: a Prometheus that reads every shard through
 * remote_read (read_recent, so the shards' head blocks count) and evaluates the global rules
 * (DESIGN §5a). Its own TSDB is the archive of drained shards: their snapshot blocks are
 * moved in before they stop, so history stays queryable after a scale-down. Reloaded when
 * shards come and go; a restarted `promshard local` adopts it.
 */
export class GlobalQuery implements DataArchive {
  readonly url: string;
  readonly tsdbDir: string;
  readonly #dir: string;
  readonly #rules: readonly string[];
  readonly #bin: string;
  readonly #port: number;
  readonly #log: Logger | undefined;
  #process: SupervisedProcess | undefined;
  /** null until asked; false on Prometheus versions without /api/v1/status/tsdb/blocks. */
  #blocksApi: boolean | null = null;

  constructor(opts: { dir: string; port: number; prometheusBin: string; ruleFiles: readonly string[]; log?: Logger }) {
    this.#dir = opts.dir;
    this.#port = opts.port;
    this.#bin = opts.prometheusBin;
    this.#rules = opts.ruleFiles;
    this.#log = opts.log;
    this.url = `http://127.0.0.1:${opts.port}`;
    this.tsdbDir = join(opts.dir, "tsdb");
    mkdirSync(this.tsdbDir, { recursive: true });
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
    const version = /version (\d+)\.(\d+)/.exec(execFileSync(this.#bin, ["--version"], { encoding: "utf8" }));
    const fastReload = version !== null && (Number(version[1]) > 3 || (version[1] === "3" && Number(version[2]) >= 16));
    const tsdb = `--storage.tsdb.path=${this.tsdbDir}`;
    this.#process = await SupervisedProcess.start(
      {
        name: "global",
        command: this.#bin,
        args: [
          `--config.file=${join(this.#dir, "prometheus.yml")}`,
          tsdb,
          `--web.listen-address=127.0.0.1:${this.#port}`,
          "--web.enable-lifecycle",
          ...(fastReload ? [`--storage.tsdb.block-reload-interval=${BLOCK_RELOAD}`] : []),
        ],
        marker: tsdb,
        logFile: join(this.#dir, "prometheus.log"),
      },
      // A restarted `promshard local` adopts the one it left, found by its command line.
      { log: this.#log, adopt: true },
    );
    if (!(await untilAnswers(`${this.url}/-/ready`, 30_000)))
      throw new PromshardError(
        "global_query_failed",
        `did not become ready in 30 s (see ${this.#dir}/prometheus.log)`,
        { path: `the global query Prometheus at ${this.url}` },
      );
    // An adopted process runs the config of the previous run: load this one.
    await this.update(shardUrls);
  }

  async update(shardUrls: readonly string[]): Promise<void> {
    this.#write(shardUrls);
    const res = await httpCall(`${this.url}/-/reload`, { method: "POST", timeoutMs: 60_000 }).catch(
      (err: Error) => err,
    );
    if (res instanceof Error) this.#log?.warn({ err: res }, "global query reload failed");
    else if (res.status !== 200)
      this.#log?.warn({ status: res.status, answer: res.text.slice(0, 300) }, "global query reload failed");
  }

  async #reloads(): Promise<number> {
    const { text } = await httpCall(`${this.url}/metrics`);
    const m = /^prometheus_tsdb_reloads_total (\S+)$/m.exec(text);
    if (!m)
      throw new PromshardError("global_query_failed", "its /metrics has no prometheus_tsdb_reloads_total", {
        path: `the global query Prometheus at ${this.url}`,
      });
    return Number(m[1]);
  }

  /** A mark taken before blocks are moved in: the reload count, for Prometheus versions without the blocks API. */
  async mark(): Promise<number> {
    return this.#reloads();
  }

  /**
   * Whether the TSDB has loaded every block named: listed by the blocks API (itself, or as a
   * source of a block compacted from it), or, without that API (2.x), two block reloads since
   * the mark, so that one of them began after the move.
   */
  async loaded(blocks: readonly string[], mark: number): Promise<boolean> {
    if (this.#blocksApi !== false) {
      const res = await httpCall(`${this.url}/api/v1/status/tsdb/blocks`);
      if (res.status === 404) this.#blocksApi = false;
      else if (res.status === 200) {
        this.#blocksApi = true;
        const { data } = JSON.parse(res.text) as { data: { blocks: BlockMeta[] } };
        const seen = new Set(data.blocks.flatMap((b) => [b.ulid, ...(b.compaction?.sources ?? [])]));
        return blocks.every((b) => seen.has(b));
      } else
        throw new PromshardError("global_query_failed", `/api/v1/status/tsdb/blocks: HTTP ${res.status}`, {
          path: `the global query Prometheus at ${this.url}`,
        });
    }
    return (await this.#reloads()) >= mark + 2;
  }

  async stop(): Promise<void> {
    await this.#process?.stop();
  }
}
