import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { queryArgs, rulerArgs, storeArgs, uploadBlocksArgs } from "../thanos/args.ts";
import { endpointSdConfig, filesystemObjstoreConfig, remoteWriteConfig } from "../thanos/files.ts";
import { bucketServes } from "../thanos/store-blocks.ts";
import { writeFileAtomicSync } from "../util/atomic-write.ts";
import { untilAnswers } from "../util/http.ts";
import { freePort } from "../util/ports.ts";
import { SupervisedProcess } from "./process.ts";

/** Where a drained shard's data goes to stay queryable: the bucket the Store Gateway serves. */
export interface DataArchive {
  /** The objstore config of the bucket, for the shards' Thanos sidecars too. */
  readonly objstoreFile: string;
  /**
   * Uploads a directory of TSDB blocks (a snapshot, head included) with the shard's external
   * labels, reads the bucket back, and returns the blocks' ids once every one is there whole.
   */
  upload(dir: string, labels: Readonly<Record<string, string>>): Promise<string[]>;
  /** Whether Query answers from the Store Gateway for every block named. */
  loaded(blocks: readonly string[]): Promise<boolean>;
}

/** A shard as the global view reads it: its Thanos sidecar's StoreAPI. */
export interface StoreEndpoint {
  readonly grpcAddress: string;
}

interface Ports {
  queryGrpc: number;
  storeGrpc: number;
  storeHttp: number;
  rulerGrpc: number;
  rulerHttp: number;
}

/** How often the Store Gateway lists the bucket: a drained shard's blocks are served this soon. */
const STORE_SYNC = "2s";

/**
 * Local mode's global view on Thanos (DESIGN §2): Thanos Query over every shard's Thanos
 * sidecar (the endpoint file rewritten as shards come and go), over a Store Gateway serving
 * the FILESYSTEM bucket under the data dir (where drained shards' data goes, and where shards
 * ship their finished blocks), and over a Thanos Ruler evaluating the global rules through
 * Query. Query deduplicates with `chain` over the `shard` and `replica` labels and answers an
 * error, not a smaller result, when a shard cannot be reached (docs/thanos.md says why each).
 * Every process is adopted by a restarted `promshard local` (same command line, ports kept
 * in `ports.json`).
 */
export class GlobalView implements DataArchive {
  readonly url: string;
  readonly objstoreFile: string;
  readonly #bucket: string;
  readonly #dir: string;
  readonly #bin: string;
  readonly #port: number;
  readonly #rules: readonly string[];
  readonly #partial: boolean;
  readonly #remoteWrite: readonly string[];
  readonly #log: Logger | undefined;
  readonly #endpointFile: string;
  #ports: Ports | undefined;
  readonly #processes: SupervisedProcess[] = [];

  constructor(opts: {
    dir: string;
    port: number;
    thanosBin: string;
    ruleFiles: readonly string[];
    partialResponse?: boolean;
    /** Global rules' results go there (a stateless ruler) instead of into the ruler's own TSDB. */
    remoteWriteUrls?: readonly string[];
    log?: Logger;
  }) {
    this.#dir = opts.dir;
    this.#bin = opts.thanosBin;
    this.#port = opts.port;
    this.#rules = opts.ruleFiles;
    this.#partial = opts.partialResponse ?? false;
    this.#remoteWrite = opts.remoteWriteUrls ?? [];
    this.#log = opts.log;
    this.url = `http://127.0.0.1:${opts.port}`;
    this.#bucket = join(opts.dir, "bucket");
    this.objstoreFile = join(opts.dir, "bucket.yml");
    this.#endpointFile = join(opts.dir, "endpoints.yml");
    mkdirSync(this.#bucket, { recursive: true });
    writeFileAtomicSync(this.objstoreFile, filesystemObjstoreConfig(this.#bucket));
  }

  /** Kept across restarts, so that the processes a previous run left have the same command lines. */
  async #portsOf(): Promise<Ports> {
    const file = join(this.#dir, "ports.json");
    try {
      return JSON.parse(readFileSync(file, "utf8")) as Ports;
    } catch {
      // Query's HTTP port is bound only after these are chosen: none of them may be it.
      const free = () => freePort("127.0.0.1", [this.#port]);
      const p: Ports = {
        queryGrpc: await free(),
        storeGrpc: await free(),
        storeHttp: await free(),
        rulerGrpc: await free(),
        rulerHttp: await free(),
      };
      writeFileAtomicSync(file, JSON.stringify(p));
      return p;
    }
  }

  #endpoints(shards: readonly StoreEndpoint[]): string {
    const p = this.#ports!;
    // A stateless ruler keeps no results to serve: they are at the remote-write receiver.
    const ruler = this.#rules.length > 0 && this.#remoteWrite.length === 0;
    const own = [`127.0.0.1:${p.storeGrpc}`, ...(ruler ? [`127.0.0.1:${p.rulerGrpc}`] : [])];
    // Strict: a shard that does not answer stays in the set, so a query fails (or warns)
    // instead of silently counting less.
    return endpointSdConfig(
      [...shards.map((s) => s.grpcAddress), ...own].map((address) => ({ address, strict: true })),
    );
  }

  async #supervise(name: string, args: string[], marker: string): Promise<SupervisedProcess> {
    const p = await SupervisedProcess.start(
      { name, command: this.#bin, args, marker, logFile: join(this.#dir, `${name}.log`) },
      { log: this.#log, adopt: true },
    );
    this.#processes.push(p);
    return p;
  }

  async start(shards: readonly StoreEndpoint[]): Promise<void> {
    this.#ports = await this.#portsOf();
    const p = this.#ports;
    writeFileAtomicSync(this.#endpointFile, this.#endpoints(shards));
    const storeDir = join(this.#dir, "store");
    await this.#supervise(
      "store",
      storeArgs({
        grpcAddress: `127.0.0.1:${p.storeGrpc}`,
        httpAddress: `127.0.0.1:${p.storeHttp}`,
        objstoreConfigFile: this.objstoreFile,
        dataDir: storeDir,
        syncBlockDuration: STORE_SYNC,
      }),
      `--data-dir=${storeDir}`,
    );
    const queryArgv = queryArgs({
      grpcAddress: `127.0.0.1:${p.queryGrpc}`,
      httpAddress: `127.0.0.1:${this.#port}`,
      endpointSdConfigFile: this.#endpointFile,
      endpointInfoTimeout: "1s",
      partialResponse: this.#partial,
    });
    await this.#supervise("query", queryArgv, `--endpoint.sd-config-file=${this.#endpointFile}`);
    if (this.#rules.length > 0) {
      const rulerDir = join(this.#dir, "ruler");
      const remoteWriteFile = join(this.#dir, "ruler-remote-write.yml");
      if (this.#remoteWrite.length > 0)
        writeFileAtomicSync(
          remoteWriteFile,
          remoteWriteConfig(this.#remoteWrite.map((url, i) => ({ name: `global-${i}`, url }))),
        );
      await this.#supervise(
        "ruler",
        rulerArgs({
          grpcAddress: `127.0.0.1:${p.rulerGrpc}`,
          httpAddress: `127.0.0.1:${p.rulerHttp}`,
          dataDir: rulerDir,
          ruleFiles: this.#rules,
          queryUrls: [this.url],
          labels: { ruler: "global" },
          ...(this.#remoteWrite.length > 0 ? { remoteWriteConfigFile: remoteWriteFile } : {}),
        }),
        `--data-dir=${rulerDir}`,
      );
    }
    for (const [what, url] of [
      ["Thanos Query", `${this.url}/-/ready`],
      ["the Store Gateway", `http://127.0.0.1:${p.storeHttp}/-/ready`],
    ] as const)
      if (!(await untilAnswers(url, 60_000)))
        throw new PromshardError("global_query_failed", `did not become ready in 60 s (see ${this.#dir}/*.log)`, {
          path: `${what} at ${url}`,
        });
  }

  /** Rewrites the endpoint file; Query reads it within a second and asks new endpoints within another. */
  update(shards: readonly StoreEndpoint[]): void {
    if (this.#ports) writeFileAtomicSync(this.#endpointFile, this.#endpoints(shards));
  }

  async upload(dir: string, labels: Readonly<Record<string, string>>): Promise<string[]> {
    const blocks = readdirSync(dir).filter((b) => existsSync(join(dir, b, "meta.json")));
    const out = await run(this.#bin, uploadBlocksArgs({ path: dir, objstoreConfigFile: this.objstoreFile, labels }));
    if (out.code !== 0)
      throw new PromshardError("shard_data_unsafe", `upload-blocks exited with ${out.code}: ${out.tail}`, {
        path: dir,
      });
    // Read back rather than trust the exit status: every file of every block that Thanos
    // uploads (index, chunks, meta.json; not tombstones, which a snapshot's blocks have none of).
    for (const b of blocks)
      for (const f of filesOf(join(dir, b)).filter(
        (f) => f === "index" || f === "meta.json" || f.startsWith("chunks/"),
      ))
        if (!existsSync(join(this.#bucket, b, f)))
          throw new PromshardError("shard_data_unsafe", `block ${b} is not whole in the bucket: ${f} is missing`, {
            path: this.#bucket,
          });
    this.#log?.info({ blocks, labels }, "uploaded a drained shard's blocks into the bucket");
    return blocks;
  }

  async loaded(blocks: readonly string[]): Promise<boolean> {
    return (await bucketServes([`http://127.0.0.1:${this.#ports!.storeHttp}`], [this.url], blocks)) === undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(this.#processes.splice(0).map((p) => p.stop()));
  }
}

/** Paths of the files under `dir`, relative to it. */
function filesOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** Runs a command to its end: its exit code and the tail of its output. */
function run(command: string, args: readonly string[]): Promise<{ code: number; tail: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const keep = (b: Buffer) => {
      out = (out + b.toString()).slice(-4000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (err) => resolve({ code: -1, tail: err.message }));
    child.on("close", (code) => resolve({ code: code ?? -1, tail: out.trim().split("\n").slice(-5).join("\n") }));
  });
}
