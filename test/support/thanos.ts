/**
 * Real Thanos components for tests, on free loopback ports: sidecar (beside a real Prometheus
 * from test/support/prometheus.ts), query, store gateway and ruler, built from the pure
 * command lines in src/thanos. The binary is PROMSHARD_THANOS_BIN (the Makefile exports it;
 * `make tools` builds it). A `ThanosStack` owns what a test file starts: `stop()` stops all of
 * it, `withLogs(fn)` adds every component's log tail to an error from fn.
 *
 * Facts measured against thanos 0.42.4 that shape this file:
 * - Every component answers /-/ready on its HTTP port. A sidecar is ready once it has read
 *   Prometheus's external labels (it exits when there are none); a query is ready at once,
 *   before any endpoint is known; a store gateway after its first bucket sync.
 * - Ports are flags (`--grpc-address`, `--http-address`), chosen with freePort() and retried
 *   on "address already in use", as for Prometheus.
 * - The endpoint file is re-read every `--endpoint.sd-config-reload-interval` (default 5m,
 *   1s here) and endpoints are asked for their Info every `--endpoint.info-timeout` (5s);
 *   see test/thanos/query.test.ts for what that costs a new shard.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type DedupFunc,
  type Listen,
  queryArgs,
  rulerArgs,
  sidecarArgs,
  storeArgs,
  uploadBlocksArgs,
} from "../../src/thanos/args.ts";
import {
  type Endpoint,
  endpointSdConfig,
  filesystemObjstoreConfig,
  remoteWriteConfig,
} from "../../src/thanos/files.ts";
import { freePort } from "./ports.ts";
import { spawnTracked, type Tracked } from "./processes.ts";
import type { RunningPrometheus } from "./prometheus.ts";

export const THANOS_VERSION = "0.42.4";
const DEFAULT_BIN = join(homedir(), `.cache/promshard-tools/thanos-${THANOS_VERSION}/bin/thanos`);

export function thanosBinary(): string {
  const bin = process.env.PROMSHARD_THANOS_BIN || DEFAULT_BIN;
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} is missing; run \`make tools\` (it builds thanos ${THANOS_VERSION} from tools/thanos/go.mod into ` +
        "~/.cache/promshard-tools), or set PROMSHARD_THANOS_BIN to a thanos binary built with -tags netgo,slicelabels",
    );
  }
  return bin;
}

export interface Component {
  readonly name: string;
  readonly dir: string;
  readonly grpcAddress: string;
  readonly httpUrl: string;
  readonly process: Tracked;
  logs(): string;
  stop(): Promise<void>;
}

/** What /api/v1/query answered, whatever it was: the HTTP status and the JSON body. */
export interface QueryAnswer {
  httpStatus: number;
  body: {
    status: "success" | "error";
    data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    warnings?: string[];
    infos?: string[];
    errorType?: string;
    error?: string;
  };
}

export interface ThanosQuery extends Component {
  readonly endpointFile: string;
  /** Rewrites the endpoint file atomically (Thanos polls it). */
  setEndpoints(endpoints: readonly Endpoint[]): Promise<void>;
  /** GET /api/v1/query; `params` adds e.g. partial_response, dedup, time. */
  query(expr: string, params?: Record<string, string>): Promise<QueryAnswer>;
  /** The one value of a scalar-like vector expr such as count(...), undefined when empty; throws on any error. */
  value(expr: string, params?: Record<string, string>): Promise<number | undefined>;
  /** /api/v1/stores: the endpoints Query uses, by component type. */
  stores(): Promise<Record<string, { name: string; lastError: string | null; labelSets: Record<string, string>[] }[]>>;
}

async function writeAtomic(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  await writeFile(tmp, content);
  await rename(tmp, path);
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

function tail(text: string, lines = 40): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

export class ThanosStack {
  readonly #parts: { name: string; logs: () => string; stop: () => Promise<void> }[] = [];
  readonly bin = thanosBinary();

  /** Adds another process (e.g. a Prometheus) to stop() and withLogs(). */
  track(name: string, p: { logs: () => string; stop: () => Promise<void> }): void {
    this.#parts.push({ name, logs: p.logs, stop: p.stop });
  }

  /** Stops everything started or tracked, all at once (each waits up to 10 s for its process). */
  async stop(): Promise<void> {
    const parts = this.#parts.splice(0);
    await Promise.all(parts.map((p) => p.stop()));
  }

  logs(): string {
    return this.#parts.map((p) => `--- ${p.name} ---\n${tail(p.logs())}`).join("\n");
  }

  /** Runs fn; an error from it carries the log tail of every component. */
  async withLogs<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      e.message = `${e.message}\n\ncomponent logs (last lines each):\n${this.logs()}`;
      throw e;
    }
  }

  /**
   * Starts `thanos <args>` in a new temp dir, on two free ports, and waits for /-/ready.
   * `files` are written into the dir first (paths relative to it).
   */
  async start(
    name: string,
    build: (listen: Listen, dir: string) => string[],
    opts: { files?: Record<string, string>; readyTimeoutMs?: number } = {},
  ): Promise<Component> {
    const dir = mkdtempSync(join(tmpdir(), `promshard-thanos-${name.replace(/[^a-z0-9]/gi, "")}-`));
    for (const [rel, content] of Object.entries(opts.files ?? {})) await writeAtomic(join(dir, rel), content);
    const timeout = opts.readyTimeoutMs ?? 60_000;
    for (let attempt = 1; ; attempt++) {
      const listen = { grpcAddress: `127.0.0.1:${await freePort()}`, httpAddress: `127.0.0.1:${await freePort()}` };
      const httpUrl = `http://${listen.httpAddress}`;
      const proc = spawnTracked(this.bin, build(listen, dir), { cwd: dir, dir });
      const part = { name, logs: proc.logs, stop: () => proc.stop() };
      this.#parts.push(part);
      const deadline = Date.now() + timeout;
      let reason: string | undefined;
      for (;;) {
        if (proc.exitStatus() !== undefined) {
          reason = proc.exitStatus();
          break;
        }
        if (await ready(httpUrl)) break;
        if (Date.now() > deadline) {
          reason = `no 200 from ${httpUrl}/-/ready within ${timeout} ms`;
          break;
        }
        await sleep(50);
      }
      if (reason === undefined) {
        return { name, dir, ...listen, httpUrl, process: proc, logs: proc.logs, stop: part.stop };
      }
      const log = proc.logs();
      // Keep the dir (and its files) for another attempt: stop the process only.
      this.#parts.splice(this.#parts.indexOf(part), 1);
      const retry = attempt < 5 && /address already in use/.test(log);
      if (retry) {
        await proc.stop().catch(() => {});
        await mkdir(dir, { recursive: true });
        for (const [rel, content] of Object.entries(opts.files ?? {})) await writeAtomic(join(dir, rel), content);
        continue;
      }
      await proc.stop();
      throw new Error(
        `thanos ${name} (${this.bin} ${build(listen, dir).join(" ")}) did not become ready: ${reason}\n${tail(log)}`,
      );
    }
  }

  /** A sidecar beside `prom` (which needs external labels); with `bucketDir`, it ships finished blocks there. */
  sidecar(prom: RunningPrometheus, opts: { name?: string; bucketDir?: string } = {}): Promise<Component> {
    const files = opts.bucketDir ? { "objstore.yml": filesystemObjstoreConfig(opts.bucketDir) } : undefined;
    return this.start(
      opts.name ?? `sidecar(${prom.url})`,
      (listen, dir) =>
        sidecarArgs({
          ...listen,
          prometheusUrl: prom.url,
          tsdbPath: join(prom.dir, "data"),
          ...(opts.bucketDir ? { objstoreConfigFile: join(dir, "objstore.yml") } : {}),
        }),
      files ? { files } : {},
    );
  }

  async query(
    opts: {
      name?: string;
      endpoints?: readonly Endpoint[];
      replicaLabels?: readonly string[];
      dedupFunc?: DedupFunc;
      partialResponse?: boolean;
      endpointInfoTimeout?: string;
      extraArgs?: string[];
    } = {},
  ): Promise<ThanosQuery> {
    const c = await this.start(
      opts.name ?? "query",
      (listen, dir) => [
        ...queryArgs({
          ...listen,
          endpointSdConfigFile: join(dir, "endpoints.yml"),
          ...(opts.replicaLabels ? { replicaLabels: opts.replicaLabels } : {}),
          ...(opts.dedupFunc ? { dedupFunc: opts.dedupFunc } : {}),
          ...(opts.partialResponse !== undefined ? { partialResponse: opts.partialResponse } : {}),
          ...(opts.endpointInfoTimeout ? { endpointInfoTimeout: opts.endpointInfoTimeout } : {}),
        }),
        ...(opts.extraArgs ?? []),
      ],
      { files: { "endpoints.yml": endpointSdConfig(opts.endpoints ?? []) } },
    );
    const endpointFile = join(c.dir, "endpoints.yml");
    const query = async (expr: string, params: Record<string, string> = {}): Promise<QueryAnswer> => {
      const q = new URLSearchParams({ query: expr, ...params });
      const res = await fetch(`${c.httpUrl}/api/v1/query?${q}`, { signal: AbortSignal.timeout(15_000) });
      const text = await res.text();
      try {
        return { httpStatus: res.status, body: JSON.parse(text) };
      } catch {
        throw new Error(`query ${expr}: HTTP ${res.status}, not JSON: ${text.slice(0, 500)}`);
      }
    };
    return {
      ...c,
      endpointFile,
      setEndpoints: (endpoints) => writeAtomic(endpointFile, endpointSdConfig(endpoints)),
      query,
      value: async (expr, params) => {
        const a = await query(expr, params);
        if (a.httpStatus !== 200 || a.body.status !== "success") {
          throw new Error(`query ${expr}: HTTP ${a.httpStatus}: ${a.body.errorType ?? ""}: ${a.body.error ?? ""}`);
        }
        if (a.body.warnings?.length) throw new Error(`query ${expr}: warnings: ${a.body.warnings.join("; ")}`);
        const result = a.body.data?.result ?? [];
        if (result.length > 1) throw new Error(`query ${expr}: ${result.length} results, expected one`);
        return result[0] ? Number(result[0].value[1]) : undefined;
      },
      stores: async () => {
        const res = await fetch(`${c.httpUrl}/api/v1/stores`, { signal: AbortSignal.timeout(5_000) });
        return ((await res.json()) as { data: Awaited<ReturnType<ThanosQuery["stores"]>> }).data ?? {};
      },
    };
  }

  /** A store gateway over the FILESYSTEM bucket at `bucketDir`, listing it every `syncBlockDuration`. */
  store(opts: { bucketDir: string; syncBlockDuration?: string; name?: string }): Promise<Component> {
    return this.start(
      opts.name ?? "store",
      (listen, dir) =>
        storeArgs({
          ...listen,
          objstoreConfigFile: join(dir, "objstore.yml"),
          dataDir: join(dir, "data"),
          syncBlockDuration: opts.syncBlockDuration ?? "1s",
        }),
      { files: { "objstore.yml": filesystemObjstoreConfig(opts.bucketDir) } },
    );
  }

  /**
   * A ruler evaluating `rules` (a rule file's YAML) through `queryUrls`; with `remoteWriteUrl`
   * it runs stateless and remote-writes every result there.
   */
  ruler(opts: {
    rules: string;
    queryUrls: readonly string[];
    remoteWriteUrl?: string;
    labels?: Record<string, string>;
    evalInterval?: string;
    name?: string;
  }): Promise<Component> {
    const files: Record<string, string> = { "rules.yml": opts.rules };
    if (opts.remoteWriteUrl)
      files["remote-write.yml"] = remoteWriteConfig([{ name: "receiver", url: opts.remoteWriteUrl }]);
    return this.start(
      opts.name ?? "ruler",
      (listen, dir) =>
        rulerArgs({
          ...listen,
          dataDir: join(dir, "data"),
          ruleFiles: [join(dir, "rules.yml")],
          queryUrls: opts.queryUrls,
          labels: opts.labels ?? { ruler: "global" },
          evalInterval: opts.evalInterval ?? "1s",
          ...(opts.remoteWriteUrl ? { remoteWriteConfigFile: join(dir, "remote-write.yml") } : {}),
        }),
      { files },
    );
  }

  /** `thanos tools bucket upload-blocks` once; resolves with its log, rejects with it on failure. */
  async uploadBlocks(opts: { path: string; bucketDir: string; labels: Record<string, string> }): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "promshard-thanos-upload-"));
    const config = join(dir, "objstore.yml");
    await writeFile(config, filesystemObjstoreConfig(opts.bucketDir));
    const proc = spawnTracked(
      this.bin,
      uploadBlocksArgs({ path: opts.path, objstoreConfigFile: config, labels: opts.labels }),
      { cwd: dir, dir },
    );
    const timer = setTimeout(() => void proc.stop(), 60_000);
    await proc.exited;
    clearTimeout(timer);
    const status = proc.exitStatus();
    const log = proc.logs();
    await proc.stop();
    if (status !== "exited with status 0")
      throw new Error(`thanos tools bucket upload-blocks ${status}:\n${tail(log)}`);
    return log;
  }
}
