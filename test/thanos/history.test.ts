/**
 * A drained shard's history, kept in a FILESYSTEM bucket and served by a Store Gateway after
 * the shard is gone. Per Prometheus version: a shard (its sidecar shipping to the bucket,
 * which ships nothing of a head younger than 2 h) scrapes a target, lets it go (as a
 * drained shard does), takes a TSDB snapshot with its head (admin API, skip_head=false),
 * `thanos tools bucket upload-blocks` puts the snapshot's blocks into the bucket with the
 * shard's external labels, the bucket is read back (not trusted), the shard and its sidecar
 * stop, and Query over the Store Gateway alone answers exactly what the shard answered for
 * its whole life: every series, every sample.
 *
 * Also recorded: what Store Gateway makes of a block copied into the bucket as Prometheus
 * wrote it (a meta.json without the `thanos` section).
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { PrometheusBinary } from "../support/prometheus.ts";
import { ThanosStack } from "../support/thanos.ts";
import { bins, JOB, SCRAPE_INTERVAL_S, seriesOf, startExporters, startShard } from "./fixtures.ts";

const SERIES = 50;

interface BucketBlock {
  ulid: string;
  meta: {
    ulid: string;
    minTime: number;
    maxTime: number;
    stats: { numSamples: number; numSeries: number };
    compaction: { level: number };
    thanos?: { labels: Record<string, string>; source: string; files?: { rel_path: string; size_bytes?: number }[] };
  };
  files: string[];
}

/** Every block dir in a FILESYSTEM bucket: its meta.json and the files under it. */
function readBucket(dir: string): BucketBlock[] {
  if (!existsSync(dir)) return [];
  const walk = (d: string, prefix = ""): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
    );
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9A-Z]{26}$/.test(e.name))
    .map((e) => ({
      ulid: e.name,
      meta: JSON.parse(readFileSync(join(dir, e.name, "meta.json"), "utf8")),
      files: walk(join(dir, e.name)).sort(),
    }));
}

type Matrix = { metric: Record<string, string>; values: [number, string][] }[];

/** The matrix of an instant query at `time`, series sorted by their labels. */
async function rawSamples(api: string, expr: string, time: string): Promise<Matrix> {
  const res = await fetch(`${api}?${new URLSearchParams({ query: expr, time })}`);
  const text = await res.text();
  const body = JSON.parse(text) as { data?: { resultType: string; result: Matrix } };
  if (body.data?.resultType !== "matrix") throw new Error(`${expr}: ${text.slice(0, 500)}`);
  const key = (m: Record<string, string>) => JSON.stringify(Object.entries(m).sort());
  return body.data.result.sort((a, b) => (key(a.metric) < key(b.metric) ? -1 : 1));
}

function summary(m: Matrix) {
  return {
    series: m.length,
    samples: m.reduce((n, s) => n + s.values.length, 0),
    scrapes: m.find((s) => s.metric.__name__ === "up")?.values.length ?? 0,
  };
}

async function history(stack: ThanosStack, bin: PrometheusBinary, t: TestContext) {
  const v = bin.version;
  const labels = { shard: "2", replica: "0" };
  const [target] = await startExporters(stack, 1, SERIES);
  const root = mkdtempSync(join(tmpdir(), "promshard-bucket-"));
  stack.track(`bucket ${root}`, { logs: () => "", stop: async () => rmSync(root, { recursive: true, force: true }) });
  const bucket = join(root, "bucket");
  const rawBucket = join(root, "raw");
  // The sidecar uploads to the bucket too: it ships only finished 2 h blocks, so nothing here.
  const shard = await startShard(stack, bin, labels, [target!], {
    args: ["--web.enable-admin-api"],
    bucketDir: bucket,
  });

  // A life of some scrapes, then drained: the target leaves, the end-of-run markers are written.
  await sleep(8_000);
  await shard.setTargets([]);
  for (;;) {
    const { activeTargets } = await shard.prom.targets();
    if (activeTargets.length === 0) break;
    await sleep(100);
  }
  await sleep(2.5 * SCRAPE_INTERVAL_S * 1000);
  const at = (Date.now() / 1000).toFixed(3);
  // Every raw sample of every series the shard held: an instant query of a range selector.
  const everything = `{job="${JOB}"}[10m]`;
  const direct = await rawSamples(`${shard.prom.url}/api/v1/query`, everything, at);
  const before = summary(direct);
  assert.equal(before.series, seriesOf(1, SERIES), `${v}: the shard's own series count`);
  assert.ok(before.scrapes >= 3, `${v}: the shard scraped ${before.scrapes} times`);

  // The snapshot, head included.
  const res = await fetch(`${shard.prom.url}/api/v1/admin/tsdb/snapshot?skip_head=false`, { method: "POST" });
  assert.equal(res.status, 200, `${v}: snapshot: ${await res.clone().text()}`);
  const { data } = (await res.json()) as { data: { name: string } };
  const snapshot = join(shard.prom.dir, "data", "snapshots", data.name);
  const snapshotBlocks = readdirSync(snapshot).filter((b) => /^[0-9A-Z]{26}$/.test(b));
  assert.ok(snapshotBlocks.length >= 1, `${v}: the snapshot holds no block`);
  cpSync(join(snapshot, snapshotBlocks[0]!), join(rawBucket, snapshotBlocks[0]!), { recursive: true });

  assert.deepEqual(readBucket(bucket), [], `${v}: the sidecar shipped a block of a shard younger than 2 h`);
  const metrics = await (await fetch(`${shard.sidecar.httpUrl}/metrics`)).text();
  const syncs = Number(/^thanos_shipper_dir_syncs_total(?:\{[^}]*\})? (\S+)$/m.exec(metrics)?.[1]);
  assert.ok(syncs >= 1, `${v}: the sidecar's shipper looked at the TSDB (thanos_shipper_dir_syncs_total ${syncs})`);
  const log = await stack.uploadBlocks({ path: snapshot, bucketDir: bucket, labels });
  // Read back: the same blocks, every file Prometheus wrote with its size, Thanos metadata added.
  const uploaded = readBucket(bucket);
  assert.deepEqual(
    uploaded.map((b) => b.ulid).sort(),
    [...snapshotBlocks].sort(),
    `${v}: blocks in the bucket\n${log}`,
  );
  for (const b of uploaded) {
    assert.deepEqual(b.meta.thanos?.labels, labels, `${v}: ${b.ulid}: external labels in meta.json`);
    for (const f of b.files.filter((f) => f !== "meta.json")) {
      assert.equal(
        statSync(join(bucket, b.ulid, f)).size,
        statSync(join(snapshot, b.ulid, f)).size,
        `${v}: ${b.ulid}/${f}`,
      );
    }
    assert.ok(b.files.includes("index") && b.files.some((f) => f.startsWith("chunks/")), `${v}: ${b.ulid}: ${b.files}`);
  }
  const samplesInBucket = uploaded.reduce((n, b) => n + b.meta.stats.numSamples, 0);
  t.diagnostic(
    `Prometheus ${v}: snapshot ${data.name}: ${snapshotBlocks.length} block(s), ${samplesInBucket} samples ` +
      `(level ${uploaded.map((b) => b.meta.compaction.level)}, source ${uploaded.map((b) => b.meta.thanos?.source)}); ` +
      `the shard answered ${before.samples} samples of ${before.series} series over ${before.scrapes} scrapes`,
  );

  // The shard goes.
  await shard.sidecar.stop();
  await shard.prom.stop();

  const store = await stack.store({ bucketDir: bucket, name: `store (${v})` });
  const raw = await stack.store({ bucketDir: rawBucket, name: `store, raw block (${v})` });
  const q = await stack.query({
    name: `query over the store (${v})`,
    endpoints: [{ address: store.grpcAddress, strict: true }],
  });
  const qRaw = await stack.query({
    name: `query over the raw store (${v})`,
    endpoints: [{ address: raw.grpcAddress, strict: true }],
  });

  let through: Matrix = [];
  const deadline = Date.now() + 30_000;
  do {
    through = await rawSamples(`${q.httpUrl}/api/v1/query`, everything, at).catch(() => []);
    if (JSON.stringify(through) === JSON.stringify(direct)) break;
    await sleep(250);
  } while (Date.now() < deadline);
  assert.deepEqual(summary(through), before, `${v}: through the store gateway, after the shard stopped`);
  assert.deepEqual(through, direct, `${v}: every sample, through the store gateway after the shard stopped`);
  const rawAnswer = await qRaw.query(`count(last_over_time(${everything}))`, { time: at });
  const stores = await qRaw.stores();
  t.diagnostic(
    `Prometheus ${v}: a block copied without the thanos section: query answers ${JSON.stringify(rawAnswer.body.data?.result)}; ` +
      `Query lists the store with ${JSON.stringify(
        Object.values(stores)
          .flat()
          .map((s) => s.labelSets),
      )}`,
  );
  return { rawAnswer };
}

describe("a drained shard's history through Store Gateway", () => {
  const stack = new ThanosStack();
  after(() => stack.stop());

  it(
    `is complete after the shard stops (${bins()
      .map((b) => b.version)
      .join(", ")})`,
    { timeout: 180_000 },
    (t: TestContext) =>
      stack.withLogs(async () => {
        await Promise.all(bins().map((bin) => history(stack, bin, t)));
      }),
  );
});
