/**
 * Command lines of the Thanos components promshard runs (v0.42), pure. Each flag that is not
 * Thanos's default is here because a measurement in test/thanos needed it; docs/thanos.md
 * says which and why.
 */

/** Every shard's external labels carry these; Query treats series differing only in them as one. */
export const REPLICA_LABELS: readonly string[] = ["replica", "shard"];

/**
 * `chain`, not Thanos's default `penalty`: penalty keeps following the shard a moving target
 * leaves and so returns its end-of-run staleness marker as the newest sample, a hole of one to
 * a few scrape intervals at every move (test/thanos/moves.test.ts). Chain's cost: HA replica
 * groups' samples interleave, which can fake counter resets (docs/thanos.md).
 */
export type DedupFunc = "penalty" | "chain";
export const DEFAULT_DEDUP_FUNC: DedupFunc = "chain";

export interface Listen {
  /** host:port of the gRPC StoreAPI (and Info API) server. */
  grpcAddress: string;
  /** host:port of the HTTP server (/-/ready, /metrics, the query API). */
  httpAddress: string;
}

function listen(l: Listen): string[] {
  return [`--grpc-address=${l.grpcAddress}`, `--http-address=${l.httpAddress}`];
}

export interface SidecarOptions extends Listen {
  prometheusUrl: string;
  /** The Prometheus data dir: the shipper reads finished blocks there. */
  tsdbPath: string;
  /** FILESYSTEM (or any objstore) config: ship the shard's finished 2 h blocks. */
  objstoreConfigFile?: string;
}

export function sidecarArgs(o: SidecarOptions): string[] {
  return [
    "sidecar",
    ...listen(o),
    `--prometheus.url=${o.prometheusUrl}`,
    `--tsdb.path=${o.tsdbPath}`,
    ...(o.objstoreConfigFile ? [`--objstore.config-file=${o.objstoreConfigFile}`] : []),
  ];
}

export interface QueryOptions extends Listen {
  /** Written with endpointSdConfig(); Thanos polls it every `endpointSdReloadInterval`. */
  endpointSdConfigFile: string;
  replicaLabels?: readonly string[];
  dedupFunc?: DedupFunc;
  /**
   * Off unless asked: with it on, a query that cannot reach a shard answers 200 with fewer
   * series and a warning, which a dashboard shows as a drop, not as an error.
   */
  partialResponse?: boolean;
  /** How often the endpoint file is re-read (Thanos's default is 5m). */
  endpointSdReloadInterval?: string;
  /**
   * How often endpoints are asked for their Info (hidden flag, default 5s), which is also
   * the period of the endpoint set's update: a new endpoint is queried only after one.
   */
  endpointInfoTimeout?: string;
}

export function queryArgs(o: QueryOptions): string[] {
  return [
    "query",
    ...listen(o),
    `--endpoint.sd-config-file=${o.endpointSdConfigFile}`,
    `--endpoint.sd-config-reload-interval=${o.endpointSdReloadInterval ?? "1s"}`,
    ...(o.endpointInfoTimeout ? [`--endpoint.info-timeout=${o.endpointInfoTimeout}`] : []),
    ...(o.replicaLabels ?? REPLICA_LABELS).map((l) => `--query.replica-label=${l}`),
    `--deduplication.func=${o.dedupFunc ?? DEFAULT_DEDUP_FUNC}`,
    o.partialResponse ? "--query.partial-response" : "--no-query.partial-response",
  ];
}

export interface StoreOptions extends Listen {
  objstoreConfigFile: string;
  /** Index headers and caches; nothing there is lost when removed. */
  dataDir: string;
  /** How often the bucket is listed for new blocks (Thanos's default is 15m). */
  syncBlockDuration?: string;
}

export function storeArgs(o: StoreOptions): string[] {
  return [
    "store",
    ...listen(o),
    `--objstore.config-file=${o.objstoreConfigFile}`,
    `--data-dir=${o.dataDir}`,
    `--sync-block-duration=${o.syncBlockDuration ?? "15m"}`,
  ];
}

export interface RulerOptions extends Listen {
  dataDir: string;
  ruleFiles: readonly string[];
  /** HTTP URLs of Thanos Query; the ruler evaluates every rule through them. */
  queryUrls: readonly string[];
  /** The ruler's own external labels (Thanos refuses to start without one). */
  labels: Readonly<Record<string, string>>;
  evalInterval?: string;
  /** Stateless mode: results are remote-written there, the ruler keeps no TSDB of its own. */
  remoteWriteConfigFile?: string;
  /** Stateful mode's block upload. */
  objstoreConfigFile?: string;
}

export function rulerArgs(o: RulerOptions): string[] {
  return [
    "rule",
    ...listen(o),
    `--data-dir=${o.dataDir}`,
    ...o.ruleFiles.map((f) => `--rule-file=${f}`),
    ...o.queryUrls.map((u) => `--query=${u}`),
    ...Object.entries(o.labels).map(([k, v]) => `--label=${k}=${JSON.stringify(v)}`),
    `--eval-interval=${o.evalInterval ?? "15s"}`,
    ...(o.remoteWriteConfigFile ? [`--remote-write.config-file=${o.remoteWriteConfigFile}`] : []),
    ...(o.objstoreConfigFile ? [`--objstore.config-file=${o.objstoreConfigFile}`] : []),
  ];
}

export interface UploadBlocksOptions {
  /** A directory of TSDB blocks, e.g. a snapshot's. */
  path: string;
  objstoreConfigFile: string;
  /** The external labels of the shard the blocks came from, written into each meta.json. */
  labels: Readonly<Record<string, string>>;
}

/** `thanos tools bucket upload-blocks`: the shipper's upload, once, for a directory of blocks. */
export function uploadBlocksArgs(o: UploadBlocksOptions): string[] {
  return [
    "tools",
    "bucket",
    "upload-blocks",
    `--path=${o.path}`,
    `--objstore.config-file=${o.objstoreConfigFile}`,
    ...Object.entries(o.labels).map(([k, v]) => `--label=${k}=${JSON.stringify(v)}`),
    // A snapshot holds Prometheus's compacted blocks too; without this they are skipped.
    "--shipper.upload-compacted",
  ];
}
