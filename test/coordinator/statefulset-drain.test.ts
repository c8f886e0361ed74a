/**
 * A drained shard in a cluster goes only once its data, head included, is in the bucket
 * (StatefulSetScaler.dataSafe, src/sidecar/flush.ts). Real parts: kube-apiserver 1.37 with the
 * shard StatefulSet (labelled and annotated as the webhook leaves it, uploading to a bucket),
 * Prometheus 3.x as its pod 1 (admin API, 2h blocks, as the webhook sets them), a Thanos
 * sidecar shipping its TSDB to a FILESYSTEM bucket, a Store Gateway on that bucket, and the
 * promshard sidecar (in process, with --tsdb.path) in front of that Prometheus, and a Thanos
 * Query over the gateway, started while the bucket is empty, that must answer from it the
 * moment the shard is let go (Query learns a store's range only every `--endpoint.info-timeout`,
 * 5 s by default, and skips it until then: store-blocks.ts waits for that). There is no
 * kubelet: the sidecar's URL is given to the scaler directly (the URL template's job).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { flushShard } from "../../src/coordinator/shard-client.ts";
import { StatefulSetScaler } from "../../src/coordinator/statefulset-scaler.ts";
import { kubeApi } from "../../src/kube/api.ts";
import { kubeClientFor } from "../../src/kube/client.ts";
import { InformerPool } from "../../src/kube/informers.ts";
import { Sidecar } from "../../src/sidecar/sidecar.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";
import { prometheusBinaries } from "../support/prometheus.ts";
import { type Component, type ThanosQuery, ThanosStack } from "../support/thanos.ts";
import { JOB, type Shard, seriesOf, startExporters, startShard } from "../thanos/fixtures.ts";

const NS = "mon";
const SERIES = 20;
const log = pino({ level: process.env.LOG_LEVEL ?? "silent" });

function statefulSet(name: string, annotations: Record<string, string>) {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name, namespace: NS, labels: { "promshard.io/coordinator": "promshard" } },
    spec: {
      replicas: 2,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations: { "promshard.io/inject": "true", ...annotations } },
        spec: { containers: [{ name: "prometheus", image: "prom/prometheus" }] },
      },
    },
  };
}

describe("a drained shard in a cluster goes once its head is in the bucket", { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-drain-"));
  const bucket = join(dir, "bucket");
  const stack = new ThanosStack();
  const pool = new InformerPool({ log });
  let cp: ControlPlane;
  let shard: Shard;
  let store: Component;
  let query: ThanosQuery;
  let scaler: StatefulSetScaler;
  let sidecar: Sidecar;
  let plain: Sidecar;
  let target: string;
  const events: string[] = [];

  before(async () => {
    cp = await startControlPlane();
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: NS } } });
    await cp.api("POST", `/apis/apps/v1/namespaces/${NS}/statefulsets`, {
      body: statefulSet("shards", { "promshard.io/thanos-objstore-secret": "bucket" }),
    });
    [target] = (await startExporters(stack, 1, SERIES)) as [string];
    shard = await startShard(stack, prometheusBinaries().at(-1)!, { shard: "1", replica: "0" }, [target], {
      bucketDir: bucket,
      args: ["--web.enable-admin-api"],
    });
    store = await stack.store({ bucketDir: bucket });
    query = await stack.query({ endpoints: [{ address: store.grpcAddress, strict: true }] });
    const tokenPath = join(dir, "token");
    writeFileSync(tokenPath, "drain-test-token\n");
    writeFileSync(join(dir, "prometheus.yml"), "scrape_configs: []\n");
    // The promshard sidecar as the webhook runs it in an uploading pod: with --tsdb.path.
    const sidecarOf = (name: string, tsdbPath?: string) =>
      new Sidecar({
        configFile: join(dir, "prometheus.yml"),
        prometheusUrl: shard.prom.url,
        outputDir: join(dir, name, "out"),
        stateDir: join(dir, name, "state"),
        listen: "127.0.0.1:0",
        tokenFile: tokenPath,
        identity: { shard: 1, replica: "0" },
        prometheusVersion: "3.16",
        ...(tsdbPath ? { tsdbPath } : {}),
        log,
      });
    sidecar = sidecarOf("sidecar", join(shard.prom.dir, "data"));
    plain = sidecarOf("plain");
    await sidecar.start();
    await plain.start();
    const sidecarUrl = sidecar.url;
    scaler = new StatefulSetScaler({
      api: kubeApi(cp.kubeconfigPath),
      client: kubeClientFor({}, { fallbackKubeconfig: cp.kubeconfigPath }),
      pool,
      selection: { coordinator: "promshard", namespace: NS },
      log,
      onEvent: (e) => events.push(e.text),
      drain: {
        sidecarUrl: () => sidecarUrl,
        token: () => "drain-test-token",
        storeUrls: [store.httpUrl],
        queryUrls: [query.httpUrl],
      },
    });
    await scaler.start();
    await scaler.refresh();
  });

  after(async () => {
    scaler?.stop();
    pool.stopAll();
    await sidecar?.stop();
    await plain?.stop();
    await stack.stop();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const promQuery = async (expr: string) => {
    const r = await shard.prom.query(expr);
    if (r.resultType !== "vector") throw new Error(`${expr}: a ${r.resultType}, not a vector`);
    return r.result;
  };

  it("not while the shard scrapes; then once Query answers its head from the Store Gateway, which the shard then lets go", async (t) => {
    await stack.withLogs(async () => {
      // A few scrapes, so that the head holds samples no block has.
      for (let i = 0; i < 100 && (await promQuery(`count({job="${JOB}"})`)).length === 0; i++) await sleep(100);
      await sleep(3000);
      // Every series of the target at a moment it was scraped (the @ modifier: after the drain
      // they are stale, and a range function would drop the metric names that tell them apart).
      const scraped = `count({job="${JOB}"} @ ${((Date.now() - 1000) / 1000).toFixed(3)})`;
      assert.equal(Number((await promQuery(scraped))[0]?.value[1]), seriesOf(1, SERIES));
      assert.equal(scaler.groups().length, 1);
      assert.equal(await scaler.dataSafe(1), false, "a shard that still scrapes is not safe");
      assert.equal(existsSync(join(shard.prom.dir, "data", "snapshots")), false, "no snapshot taken yet");

      await shard.setTargets([]);
      const lastSample = Date.now();
      const started = Date.now();
      let safe = false;
      while (!safe && Date.now() - started < 150_000) {
        safe = await scaler.dataSafe(1);
        if (!safe) await sleep(1000);
      }
      assert.ok(safe, "the drained shard's data was confirmed in the bucket");
      t.diagnostic(`confirmed in the bucket ${((Date.now() - started) / 1000).toFixed(1)} s after the drain`);
      // Each step told once, in order, on the status page's events.
      assert.deepEqual(
        events.map((e) => e.replace(/[0-9A-Z]{26}/g, "<block>")),
        [
          "shard 1: waiting for its targets' staleness markers before flushing its head",
          "shard 1: head flushed (<block>); waiting for the Thanos sidecar to upload <block>",
          ...(events.some((e) => e.includes("to load"))
            ? ["shard 1: uploaded; waiting for the Store Gateway to load <block>"]
            : []),
          ...(events.some((e) => e.includes("to route"))
            ? [
                `shard 1: uploaded; loaded by the Store Gateway; waiting for Thanos Query to route to it for them: ${new URL(query.httpUrl).host} (<block>)`,
              ]
            : []),
          "shard 1: its data is in the bucket (head: <block>); it can go",
        ],
      );

      // In the bucket: the head's block, shipped by the Thanos sidecar with the shard's labels, up to the drain.
      const blocks = readdirSync(bucket).filter((b) => existsSync(join(bucket, b, "meta.json")));
      const metas = blocks.map(
        (b) =>
          JSON.parse(readFileSync(join(bucket, b, "meta.json"), "utf8")) as {
            maxTime: number;
            thanos: { labels: Record<string, string>; source: string };
          },
      );
      assert.ok(metas.length >= 1);
      for (const m of metas) {
        assert.deepEqual(m.thanos.labels, { shard: "1", replica: "0" });
        assert.equal(m.thanos.source, "sidecar");
      }
      assert.ok(
        Math.max(...metas.map((m) => m.maxTime)) >= lastSample - 5000,
        "the bucket holds the shard's samples up to the drain",
      );
      // Served at once: the Query asked, over the Store Gateway alone, answers every series the shard had.
      assert.equal(await query.value(scraped), seriesOf(1, SERIES));

      // Released: the head's copy of that range is deleted and the moved block gone, so a PVC
      // that comes back with the ordinal cannot make a second, overlapping block of it.
      assert.deepEqual(await promQuery(scraped), []);
      for (const b of blocks) assert.equal(existsSync(join(shard.prom.dir, "data", b)), false);
      assert.equal(readdirSync(join(shard.prom.dir, "data", "snapshots")).length, 0);
      assert.equal(await scaler.dataSafe(1), true, "asked again: still safe, nothing flushed twice");
      assert.deepEqual(
        readdirSync(bucket)
          .filter((b) => existsSync(join(bucket, b, "meta.json")))
          .sort(),
        blocks.sort(),
      );
    });
  });

  it("drained again after scraping again: a new flush, its block beside the first one", async (t) => {
    await stack.withLogs(async () => {
      const before = readdirSync(bucket).filter((b) => existsSync(join(bucket, b, "meta.json")));
      await shard.setTargets([target]);
      for (let i = 0; i < 100 && (await promQuery(`count({job="${JOB}"})`)).length === 0; i++) await sleep(100);
      await sleep(2000);
      const scraped = `count({job="${JOB}"} @ ${((Date.now() - 1000) / 1000).toFixed(3)})`;
      assert.equal(await scaler.dataSafe(1), false, "scraping again: the last drain's release does not count");
      await shard.setTargets([]);
      const started = Date.now();
      let safe = false;
      while (!safe && Date.now() - started < 150_000) {
        safe = await scaler.dataSafe(1);
        if (!safe) await sleep(1000);
      }
      assert.ok(safe, "the second drain's data was confirmed in the bucket");
      t.diagnostic(`confirmed in the bucket ${((Date.now() - started) / 1000).toFixed(1)} s after the drain`);
      const added = readdirSync(bucket).filter((b) => existsSync(join(bucket, b, "meta.json")) && !before.includes(b));
      assert.equal(added.length, 1, "one new block: the head since the first drain");
      assert.equal(await query.value(scraped), seriesOf(1, SERIES));
      assert.deepEqual(await promQuery(scraped), []);
    });
  });

  it("a sidecar started without --tsdb.path says how to flush", async () => {
    await assert.rejects(
      flushShard(plain.url, "drain-test-token", false),
      /HTTP 404: .*this sidecar flushes nothing: start it with --tsdb\.path/,
    );
  });

  it("a replica group that uploads nothing keeps the shard until --scale-down.wait (its PVC is the only copy)", async () => {
    await cp.api("POST", `/apis/apps/v1/namespaces/${NS}/statefulsets`, {
      body: statefulSet("shards-b", { "promshard.io/replica-group": "1" }),
    });
    for (let i = 0; i < 100 && scaler.groups().length < 2; i++) {
      await sleep(100);
      await scaler.refresh();
    }
    assert.deepEqual(
      scaler.groups().map((g) => [g.name, g.upload]),
      [
        ["shards", true],
        ["shards-b", false],
      ],
    );
    assert.equal(await scaler.dataSafe(1), false);
  });
});
