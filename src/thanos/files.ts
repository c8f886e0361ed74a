/** Config files the Thanos components read (v0.42), pure. */
import { dump } from "js-yaml";

export interface Endpoint {
  /** host:port of a StoreAPI (sidecar, store gateway, ruler). */
  address: string;
  /**
   * Kept queryable while it fails its health check. Query drops a non-strict endpoint whose
   * Info call fails from every query without an error or a warning, so a down shard would
   * silently shrink every answer; a strict one stays in, and a query that cannot reach it
   * fails (or, with partial responses on, warns). Not allowed for `dns+` addresses.
   */
  strict?: boolean;
}

/**
 * The `--endpoint.sd-config-file` content: `endpoints` with `address` and `strict` (Thanos's
 * EndpointConfig in cmd/thanos/endpointset.go). Sorted, so an unchanged set writes the same
 * bytes and Thanos, which compares a checksum, does nothing.
 */
export function endpointSdConfig(endpoints: readonly Endpoint[]): string {
  const sorted = [...endpoints].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return dump(
    { endpoints: sorted.map((e) => ({ address: e.address, ...(e.strict ? { strict: true } : {}) })) },
    { lineWidth: -1 },
  );
}

/** An objstore config of type FILESYSTEM: a bucket that is a directory (absolute path). */
export function filesystemObjstoreConfig(directory: string): string {
  return dump({ type: "FILESYSTEM", config: { directory } }, { lineWidth: -1 });
}

/** The ruler's `--remote-write.config`: Prometheus's `remote_write` section, nothing else. */
export function remoteWriteConfig(urls: readonly { name: string; url: string }[]): string {
  return dump({ remote_write: urls.map((u) => ({ name: u.name, url: u.url })) }, { lineWidth: -1 });
}
