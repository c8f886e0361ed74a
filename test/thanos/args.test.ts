/**
 * The pure builders of src/thanos. The real binaries run these command lines and files in the
 * other test/thanos tests; here: the defaults promshard relies on and the exact file shapes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { load } from "js-yaml";
import {
  DEFAULT_DEDUP_FUNC,
  queryArgs,
  REPLICA_LABELS,
  rulerArgs,
  sidecarArgs,
  storeArgs,
  uploadBlocksArgs,
} from "../../src/thanos/args.ts";
import { endpointSdConfig, filesystemObjstoreConfig, remoteWriteConfig } from "../../src/thanos/files.ts";

const listen = { grpcAddress: "127.0.0.1:10901", httpAddress: "127.0.0.1:10902" };

describe("thanos command lines", () => {
  it("query: chain dedup over the replica and shard labels, partial responses off, endpoints from a file", () => {
    const args = queryArgs({ ...listen, endpointSdConfigFile: "/e.yml" });
    assert.deepEqual(args, [
      "query",
      "--grpc-address=127.0.0.1:10901",
      "--http-address=127.0.0.1:10902",
      "--endpoint.sd-config-file=/e.yml",
      "--endpoint.sd-config-reload-interval=1s",
      "--query.replica-label=replica",
      "--query.replica-label=shard",
      "--deduplication.func=chain",
      "--no-query.partial-response",
    ]);
    assert.equal(DEFAULT_DEDUP_FUNC, "chain");
    assert.deepEqual(REPLICA_LABELS, ["replica", "shard"]);
  });

  it("query: partial responses, penalty dedup and the info period on request", () => {
    const args = queryArgs({
      ...listen,
      endpointSdConfigFile: "/e.yml",
      partialResponse: true,
      dedupFunc: "penalty",
      replicaLabels: ["r"],
      endpointInfoTimeout: "1s",
      endpointSdReloadInterval: "5s",
    });
    assert.ok(args.includes("--query.partial-response"));
    assert.ok(!args.includes("--no-query.partial-response"));
    assert.ok(args.includes("--deduplication.func=penalty"));
    assert.ok(args.includes("--endpoint.info-timeout=1s"));
    assert.ok(args.includes("--endpoint.sd-config-reload-interval=5s"));
    assert.deepEqual(
      args.filter((a) => a.startsWith("--query.replica-label")),
      ["--query.replica-label=r"],
    );
  });

  it("sidecar: objstore only when given", () => {
    const base = { ...listen, prometheusUrl: "http://127.0.0.1:9090", tsdbPath: "/d" };
    assert.deepEqual(sidecarArgs(base), [
      "sidecar",
      "--grpc-address=127.0.0.1:10901",
      "--http-address=127.0.0.1:10902",
      "--prometheus.url=http://127.0.0.1:9090",
      "--tsdb.path=/d",
    ]);
    assert.equal(sidecarArgs({ ...base, objstoreConfigFile: "/o.yml" }).at(-1), "--objstore.config-file=/o.yml");
  });

  it("store and ruler", () => {
    assert.deepEqual(storeArgs({ ...listen, objstoreConfigFile: "/o.yml", dataDir: "/d", syncBlockDuration: "1s" }), [
      "store",
      "--grpc-address=127.0.0.1:10901",
      "--http-address=127.0.0.1:10902",
      "--objstore.config-file=/o.yml",
      "--data-dir=/d",
      "--sync-block-duration=1s",
    ]);
    const ruler = rulerArgs({
      ...listen,
      dataDir: "/d",
      ruleFiles: ["/r.yml"],
      queryUrls: ["http://127.0.0.1:1"],
      labels: { ruler: 'a"b' },
      remoteWriteConfigFile: "/rw.yml",
    });
    assert.ok(ruler.includes("--rule-file=/r.yml"));
    assert.ok(ruler.includes("--query=http://127.0.0.1:1"));
    // Thanos reads the value with Go's strconv.Unquote.
    assert.ok(ruler.includes('--label=ruler="a\\"b"'));
    assert.ok(ruler.includes("--remote-write.config-file=/rw.yml"));
    assert.ok(!ruler.some((a) => a.startsWith("--objstore")));
  });

  it("upload-blocks: labels quoted, compacted blocks included", () => {
    assert.deepEqual(uploadBlocksArgs({ path: "/s", objstoreConfigFile: "/o.yml", labels: { shard: "1" } }), [
      "tools",
      "bucket",
      "upload-blocks",
      "--path=/s",
      "--objstore.config-file=/o.yml",
      '--label=shard="1"',
      "--shipper.upload-compacted",
    ]);
  });
});

describe("thanos files", () => {
  it("endpoint file: sorted, strict only where asked, the same bytes for the same set", () => {
    const a = endpointSdConfig([{ address: "127.0.0.1:2", strict: true }, { address: "127.0.0.1:1" }]);
    assert.deepEqual(load(a), {
      endpoints: [{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2", strict: true }],
    });
    assert.equal(a, endpointSdConfig([{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2", strict: true }]));
    assert.deepEqual(load(endpointSdConfig([])), { endpoints: [] });
  });

  it("objstore and remote write", () => {
    assert.deepEqual(load(filesystemObjstoreConfig("/b")), { type: "FILESYSTEM", config: { directory: "/b" } });
    assert.deepEqual(load(remoteWriteConfig([{ name: "r", url: "http://127.0.0.1:1/api/v1/write" }])), {
      remote_write: [{ name: "r", url: "http://127.0.0.1:1/api/v1/write" }],
    });
  });
});
