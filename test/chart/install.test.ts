/**
 * The chart on the real one-node cluster (test/support/cluster.ts), from `helm install` to the
 * global query, as a user runs it: install into a namespace labelled promshard.io/inject=enabled;
 * the example shard StatefulSet (found by its promshard.io/coordinator label) is scaled by the
 * coordinator through /scale as six demo exporters of 10045 series (the seed) with a 30000
 * budget arrive; each target is scraped by exactly one shard and Thanos Query's global count is
 * exact. Then: six more exporters (more shards), deleted again (drained, and scaled down only
 * once the drained shards' data, head included, is served by the Store Gateway from the bucket:
 * a FILESYSTEM bucket on a hostPath, thanos.objstore.filesystem), the leading coordinator killed
 * (the other takes over, nothing moves), a shard pod deleted (back with its targets), `helm
 * upgrade` with changed values and a second replica group, one group's shard pod deleted and the
 * other group's killed before the first one's new pod has scraped (Query waits for it), and
 * `helm uninstall` (nothing left running). While shards come and go the global count is never
 * wrong, and no query fails while a pod is deleted (the preStop pause; holesAndFailures). One
 * cluster for the file; the steps build on each other. Wall time on the 2-core machine, cluster
 * start included: 331 s, 475 s with other sessions loading it (load average ~15); with the
 * bucket, 352 s (2026-12-05, a CI run beside it).
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { eventually } from "../support/eventually.ts";
import { CHART_DIR, createExporters, type Pod, podReady, Release } from "../support/helm.ts";

const NS = "monitoring";
const APPS = "apps";
const JOB = "kubernetes-pods";
const SERIES = 10045;
const BUDGET = 30000;
/** Whole targets per shard at this budget: 2 of 10045. */
const PER_SHARD = Math.floor(BUDGET / SERIES);
const FIRST = Array.from({ length: 6 }, (_, i) => `exporter-${i}`);
const MORE = Array.from({ length: 6 }, (_, i) => `exporter-${i + 6}`);
/** Generous on a loaded 2-core machine, bounded so a stuck step fails in minutes. */
const SLOW = 420_000;
let cluster: Cluster;
let release: Release;
let shardSet: string;
/** Which shard scrapes each of the first six exporters, as the test last saw it settled. */
let placement: Map<string, string>;

before(async () => {
  cluster = await startCluster({ images: ["promshard", "prometheus3", "thanos"] });
  release = new Release(cluster, "ps", NS);
  shardSet = release.object("shard");
  // The node's directory for the bucket, as a user makes it on a one-node cluster: the shards'
  // Thanos sidecars write as 65534, the Store Gateway reads as 1000, a hostPath gets no fsGroup.
  const bucket = join(cluster.dir, "bucket");
  mkdirSync(bucket);
  chmodSync(bucket, 0o777);
  VALUES.push(
    "--set",
    `thanos.objstore.filesystem.volume.hostPath.path=${bucket}`,
    "--set",
    "thanos.objstore.filesystem.volume.hostPath.type=Directory",
  );
});
afterEach((t) => cluster?.printLogsIfFailed(t));
after(async () => {
  release?.helm(["uninstall", release.name, "--ignore-not-found"]);
  await cluster?.stop();
});

/**
 * Small requests (one node runs it all), a quick loop, block upload into a FILESYSTEM bucket (its
 * hostPath is added in `before`) served by a Store Gateway that lists it every 5 s, and a
 * --scale-down.wait far longer than the test: the bucket, not the clock, lets a drained shard
 * go. Everything else the chart's defaults.
 */
const VALUES = [
  "--set",
  `coordinator.maxSeries=${BUDGET}`,
  "--set",
  "coordinator.interval=2s",
  "--set",
  "coordinator.scaleDownDelay=15s",
  "--set",
  "coordinator.scaleDownWait=1h",
  "--set",
  "shards.resources.requests.memory=64Mi",
  "--set",
  "shards.resources.requests.cpu=10m",
  "--set",
  "shards.retention=2h",
  "--set",
  "shards.upload=true",
  "--set",
  "thanos.storeGateway.enabled=true",
  "--set",
  "thanos.storeGateway.syncInterval=5s",
  "--set",
  "thanos.storeGateway.resources.requests.memory=64Mi",
  "--set",
  "thanos.storeGateway.resources.requests.cpu=10m",
];

const deleteNow = "?gracePeriodSeconds=0";

async function shardPods(group = 0): Promise<string[]> {
  const pods = await release.pods(NS, `app.kubernetes.io/component=shard,promshard.io/replica-group=${group}`);
  return pods.map((p) => p.metadata.name).sort();
}

/** `n` shards in the StatefulSet, each exporter scraped by exactly one, the global count exact; the placement. */
async function sharded(what: string, exporters: readonly string[], n: number): Promise<Map<string, string>> {
  return eventually(
    `${what}: ${n} shards, each of ${exporters.length} exporters scraped once, ${exporters.length * SERIES} series in Thanos Query`,
    async () => {
      const replicas = await release.replicas(NS, shardSet);
      if (replicas !== n) throw new Error(`replicas ${replicas}`);
      const placement = await release.placement(JOB, exporters);
      const [count] = await release.query(`count({job="${JOB}"})`);
      if (Number(count?.value[1]) !== exporters.length * SERIES) throw new Error(`count ${count?.value[1]}`);
      return placement;
    },
    SLOW,
  );
}

/**
 * Polls the global count of the first six exporters' series until stopped: `wrong` holds
 * every answer that was not exact (a hole or a double count a user would have seen), `errors`
 * every query that failed (partial responses are off: a shard Query cannot reach fails the
 * query rather than shrinking the answer).
 */
function watchCount(): { stop(): Promise<{ wrong: string[]; errors: string[] }> } {
  const wrong: string[] = [];
  const errors: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      // Each answer is stamped with the moment its query was sent: what Query did with a query
      // depends on what it knew then (a query sent to a pod just killed may fail only seconds
      // later, when its dial times out).
      const sent = new Date().toISOString();
      try {
        const [c] = await release.query(`count({job="${JOB}",pod=~"exporter-[0-5]"})`);
        if (Number(c?.value[1]) !== FIRST.length * SERIES) wrong.push(`${sent} ${c?.value[1] ?? "no series"}`);
      } catch (err) {
        errors.push(`${sent} (failed ${new Date().toISOString()}) ${(err as Error).message}`);
      }
      await sleep(500);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { wrong, errors };
    },
  };
}

/**
 * A watched stretch: never a wrong global count, and no failed query (partial responses are
 * off, so a query that reaches a stopped sidecar fails): a deleted shard pod pauses in preStop
 * until Query has moved on. Before that pause the pods stopped serving at once, and 1-2 s of
 * queries failed at each deletion. Their count is printed.
 */
function holesAndFailures(what: string, w: { wrong: string[]; errors: string[] }): void {
  console.log(`${what}: ${w.errors.length} failed global queries (one every 0.5 s)`);
  assert.deepEqual(w.wrong, [], `${what}: a wrong global count`);
  assert.deepEqual(w.errors, [], `${what}: failed queries`);
}

/** Until shard pod `pod`'s own Prometheus has every series of the exporters placed on shard `index`. */
async function hasItsShare(pod: string, index: number): Promise<void> {
  const want = FIRST.filter((p) => placement.get(p) === String(index)).length * SERIES;
  await eventually(
    `${pod} has the ${want} series of shard ${index}`,
    async () => {
      const p = await cluster.api<Pod>("GET", `/api/v1/namespaces/${NS}/pods/${pod}`);
      const expr = encodeURIComponent(`count({job="${JOB}"})`);
      const res = await fetch(`http://${p.status?.podIP}:9090/api/v1/query?query=${expr}`, {
        signal: AbortSignal.timeout(5_000),
      });
      const body = (await res.json()) as { data?: { result: { value: [number, string] }[] } };
      return Number(body.data?.result[0]?.value[1]) === want ? true : undefined;
    },
    SLOW,
  );
}

async function coordinatorPods(): Promise<{ name: string; ip: string; leading: boolean }[]> {
  const pods = await release.pods(NS, "app.kubernetes.io/component=coordinator");
  return Promise.all(
    pods
      .filter((p) => p.status?.podIP && p.status.phase === "Running")
      .map(async (p) => {
        const ip = p.status?.podIP ?? "";
        const res = await fetch(`http://${ip}:9500/readyz`, { signal: AbortSignal.timeout(5_000) }).catch(() => null);
        return { name: p.metadata.name, ip, leading: res?.status === 200 };
      }),
  );
}

async function metric(ip: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${ip}:9500/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  // Summed over its label values (loop runs are counted by result).
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}

describe("helm install on a one-node cluster", () => {
  it("helm install: the webhook, coordinator and Thanos Query pods become Ready", async () => {
    await cluster.api("POST", "/api/v1/namespaces", {
      body: { metadata: { name: NS, labels: { "promshard.io/inject": "enabled" } } },
    });
    await cluster.api("POST", "/api/v1/namespaces", { body: { metadata: { name: APPS } } });
    release.run(["install", release.name, CHART_DIR, ...VALUES]);
    for (const d of ["webhook", "coordinator", "query"]) await release.deploymentReady(d);
  });

  it("six demo exporters: scaled to 3 through /scale, the injected shards scrape each once, the global count is exact", async () => {
    await createExporters(cluster, APPS, FIRST);
    placement = await sharded("after install", FIRST, Math.ceil(FIRST.length / PER_SHARD));
    for (const p of await release.pods(NS, "app.kubernetes.io/component=shard")) {
      assert.ok(p.metadata.annotations?.["promshard.io/status"], `${p.metadata.name} was not injected`);
      const names = [...(p.spec.initContainers ?? []), ...p.spec.containers].map((c) => c.name);
      assert.ok(names.includes("promshard-sidecar"), `${p.metadata.name}: ${names.join(", ")}`);
    }
    const sts = await cluster.api<{ metadata: { labels: Record<string, string> } }>(
      "GET",
      `/apis/apps/v1/namespaces/${NS}/statefulsets/${shardSet}`,
    );
    assert.equal(sts.metadata.labels["promshard.io/coordinator"], release.fullname);
  });

  let twelve: Map<string, string>;
  /** The moment `twelve` held (Unix seconds): each exporter's last scrape then was by its shard there. */
  let twelveAt: number;
  it("six more exporters: more shards, the first six's global count never wrong", async () => {
    const watch = watchCount();
    await createExporters(cluster, APPS, MORE);
    const all = [...FIRST, ...MORE];
    const n = Math.ceil(all.length / PER_SHARD);
    try {
      await sharded("twelve exporters", all, n);
      // Until the scheduler has finished moving: every shard at its budget's PER_SHARD targets
      // (the count above is exact while moves are still in flight).
      [twelve, twelveAt] = await eventually(
        `${PER_SHARD} exporters on each of the ${n} shards`,
        async () => {
          const at = Date.now() / 1000;
          const p = await release.placement(JOB, all, at);
          const per = new Map<string, number>();
          for (const shard of p.values()) per.set(shard, (per.get(shard) ?? 0) + 1);
          return per.size === n && [...per.values()].every((k) => k === PER_SHARD) ? ([p, at] as const) : undefined;
        },
        SLOW,
      );
    } finally {
      holesAndFailures("six more exporters", await watch.stop());
    }
  });

  it("the six deleted: drained, and scaled down only once each drained shard's data, head included, is served from the bucket", async () => {
    const before_ = await release.replicas(NS, shardSet);
    const after_ = Math.ceil(FIRST.length / PER_SHARD);
    // What each shard that goes held: every series of the exporters placed on it.
    const drained = new Map<number, number>();
    for (const shard of twelve.values())
      if (Number(shard) >= after_) drained.set(Number(shard), (drained.get(Number(shard)) ?? 0) + SERIES);
    assert.equal(drained.size, before_ - after_, `the shards above ${after_ - 1} hold exporters: ${[...twelve]}`);
    // A moment every drained shard's series were live, as `twelve` places them: the moment it
    // was read (a moment before, a target moved last may still have been its old shard's: the
    // new one scrapes it first, and the old one drops it seconds later). Only the heads hold it
    // (no 2 h block was cut in this test), so the bucket can have it only from the drain's flush.
    const live = twelveAt;
    const heldAt = async (storeMatch?: string) => {
      const r = await release.query(`count by (shard) ({job="${JOB}"})`, { dedup: false, time: live, storeMatch });
      return new Map(r.map((x) => [Number(x.metric.shard), Number(x.value[1])]));
    };
    const held = await heldAt();
    assert.deepEqual(
      [...drained].filter(([s, n]) => held.get(s) !== n),
      [],
      `what the drained shards served at ${live}: ${JSON.stringify([...held])}`,
    );
    const watch = watchCount();
    for (const name of MORE) await cluster.api("DELETE", `/api/v1/namespaces/${APPS}/pods/${name}${deleteNow}`);
    const deleted = Date.now();
    const fromBucket = () => heldAt(`{__address__=~"${release.object("store")}.*"}`);
    // Each round reads the replica count first, then the bucket through the Store Gateway
    // alone: a shard index at or above the count, whose series the bucket lacks after that
    // read, was stopped before its data was safe (a scale-down on --scale-down.wait alone,
    // as this test ran before the bucket, would be caught: nothing reaches the bucket then).
    const early: string[] = [];
    let servedAfter: number | undefined;
    let scaledAfter: number | undefined;
    try {
      await eventually(
        `scaled from ${before_} to ${after_}, each drained shard's series served from the bucket first`,
        async () => {
          const replicas = await release.replicas(NS, shardSet);
          const bucket = await fromBucket();
          const missing = [...drained].filter(([s, n]) => bucket.get(s) !== n).map(([s]) => s);
          if (missing.length === 0) servedAfter ??= Date.now() - deleted;
          if (replicas < before_) scaledAfter ??= Date.now() - deleted;
          const gone = missing.filter((s) => s >= replicas);
          if (gone.length > 0)
            early.push(`replicas ${replicas}, not in the bucket: shards ${gone} (${JSON.stringify([...bucket])})`);
          if (replicas !== after_) {
            await sleep(500);
            return undefined;
          }
          return true;
        },
        SLOW,
      );
      console.log(
        `drain: first scale-down ${scaledAfter} ms after the exporters went, every drained shard's series served from the bucket after ${servedAfter} ms`,
      );
      // Shards go one by one as each one's data is safe, so the first step down may come before
      // the last shard's series are in: the rule is per shard index (`early`).
      assert.deepEqual(early, [], "a shard stopped before its data was in the bucket");
      assert.ok(servedAfter !== undefined, "the drained shards' series never all served from the bucket");
      await eventually(
        "the drained shard pods gone",
        async () => ((await shardPods()).length === after_ ? true : undefined),
        SLOW,
      );
      placement = await sharded("back to six", FIRST, after_);
    } finally {
      holesAndFailures("six exporters deleted", await watch.stop());
    }
    // Through Query's own deduplicated view too, the pods gone: their history is the bucket's.
    // Asked after the watch: this query reads all twelve exporters' series (120k) from the Store
    // Gateway and three sidecars, and beside it one watched query once took over 10 s on this
    // loaded 2-core machine (a timeout, not a failure of Query).
    const [count] = await release.query(`count({job="${JOB}"})`, { time: live });
    assert.equal(Number(count?.value[1]), (FIRST.length + MORE.length) * SERIES);
  });

  it("the leading coordinator killed: the other takes over and moves nothing", async () => {
    const [leader] = (await coordinatorPods()).filter((c) => c.leading);
    assert.ok(leader, "no coordinator leads");
    await cluster.api("DELETE", `/api/v1/namespaces/${NS}/pods/${leader.name}${deleteNow}`);
    const next = await eventually(
      "another coordinator leads",
      async () => (await coordinatorPods()).find((c) => c.leading && c.name !== leader.name),
      SLOW,
    );
    // A few rounds of the new leader, then nothing moved and every target where it was.
    const rounds = await metric(next.ip, "promshard_coordinator_loop_runs_total");
    await eventually(
      "three rounds of the new leader",
      async () => ((await metric(next.ip, "promshard_coordinator_loop_runs_total")) >= rounds + 3 ? true : undefined),
      SLOW,
    );
    assert.equal(await metric(next.ip, "promshard_coordinator_moves_total"), 0, "the new leader moved targets");
    assert.deepEqual(await sharded("after the takeover", FIRST, 3), placement);
  });

  it("a shard pod deleted: it comes back with its targets", async () => {
    const pod = `${shardSet}-1`;
    const before_ = await cluster.api<{ metadata: { uid: string } }>("GET", `/api/v1/namespaces/${NS}/pods/${pod}`);
    await cluster.api("DELETE", `/api/v1/namespaces/${NS}/pods/${pod}${deleteNow}`);
    await eventually(
      `${pod} back and Ready`,
      async () => {
        const p = await cluster.api<{ metadata: { uid: string } } & Parameters<typeof podReady>[0]>(
          "GET",
          `/api/v1/namespaces/${NS}/pods/${pod}`,
        );
        return p.metadata.uid !== before_.metadata.uid && podReady(p) ? true : undefined;
      },
      SLOW,
    );
    assert.deepEqual(await sharded("after the shard pod came back", FIRST, 3), placement);
  });

  it("helm upgrade with changed values: a rotated token, two Query replicas, a second replica group brought up to 3", async () => {
    const token = () =>
      eventually("the sidecar token Secret", async () => {
        const secret = await cluster.api<{ data: { token: string } }>(
          "GET",
          `/api/v1/namespaces/${NS}/secrets/${release.object("sidecar-token")}`,
        );
        return secret.data.token;
      });
    const before_ = await token();
    release.run([
      "upgrade",
      release.name,
      CHART_DIR,
      ...VALUES,
      "--set",
      "coordinator.logLevel=debug",
      "--set",
      "thanos.query.replicas=2",
      "--set",
      "shards.replicaGroups=2",
    ]);
    assert.notEqual(await token(), before_, "the sidecar token was not rotated");
    for (const d of ["webhook", "coordinator", "query"]) await release.deploymentReady(d);
    await eventually(
      "replica group 1 scaled to 3 through /scale, its 3 pods Ready",
      async () => {
        if ((await release.replicas(NS, `${shardSet}-g1`)) !== 3) return undefined;
        const pods = await release.pods(NS, "app.kubernetes.io/component=shard,promshard.io/replica-group=1");
        return pods.length === 3 && pods.every(podReady) ? true : undefined;
      },
      SLOW,
    );
    assert.deepEqual(await sharded("after upgrade", FIRST, 3), placement);
  });

  it("two replica groups: one group's shard pod deleted, the other's killed before the new one scraped: the global count is never wrong", async () => {
    // Group 1 has the data Query will fail over to: each of its pods scrapes what the same
    // index of group 0 does (asked of its own Prometheus; Query asks one group per index).
    for (let i = 0; i < 3; i++) await hasItsShare(`${shardSet}-g1-${i}`, i);
    // Deleted (as a rollout or a drain does): query-endpoints drops the terminating pod and
    // names group 1's copy, which has scraped its share; the deleted pod's preStop pause keeps
    // it answering until Query has re-read its file. No query fails, none is wrong.
    const pod0 = `/api/v1/namespaces/${NS}/pods/${shardSet}-0`;
    const old = await cluster.api<{ metadata: { uid: string } }>("GET", pod0);
    const watch = watchCount();
    await cluster.api("DELETE", pod0);
    await eventually(
      `${shardSet}-0 back and Ready`,
      async () => {
        const p = await cluster.api<Pod & { metadata: { uid: string } }>("GET", pod0);
        return p.metadata.uid !== old.metadata.uid && podReady(p) ? true : undefined;
      },
      SLOW,
    );
    // Killed (no grace: a crash or a lost node) while group 0's new shard 0, Ready, has not
    // scraped yet (emptyDir: it starts without data; the chart's config scrapes every 30 s).
    // Failing over to it would undercount; query-endpoints keeps group 1's (gone: queries fail
    // loudly) until the new pod has scraped its assignment, then fails over.
    const killed = Date.now();
    await cluster.api("DELETE", `/api/v1/namespaces/${NS}/pods/${shardSet}-g1-0${deleteNow}`);
    await hasItsShare(`${shardSet}-0`, 0);
    const warm = Date.now();
    await sleep(15_000);
    const w = await watch.stop();
    const at = (line: string) => Date.parse(line.split(" ")[0] ?? "");
    const deleting = w.errors.filter((e) => at(e) < killed);
    const afterKill = w.errors.filter((e) => at(e) >= killed);
    console.log(
      `group 1's shard 0 killed: ${afterKill.length} failed queries while group 0's new shard 0 had not scraped (${warm - killed} ms), sent at ${afterKill.map((e) => `+${at(e) - killed} ms`).join(", ")}`,
    );
    holesAndFailures("group 0's shard 0 deleted, group 1's killed", { wrong: w.wrong, errors: deleting });
    // Failing, never wrong, and only until the new pod had scraped: Query follows within seconds
    // (a probe every second, then Query re-reads its file every second and asks the new endpoint).
    const late = afterKill.filter((e) => at(e) > warm + 5_000);
    assert.deepEqual(late, [], "queries failed after the new pod had scraped its share");
    await sharded("group 1's shard 0 back", FIRST, 3);
  });

  it("helm uninstall leaves nothing of the release running", async () => {
    release.run(["uninstall", release.name, "--wait"]);
    await eventually(
      "no pod of the release",
      async () =>
        (await release.pods(NS, `app.kubernetes.io/instance=${release.name}`)).length === 0 ? true : undefined,
      SLOW,
    );
    const mwc = await cluster.request(
      "GET",
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${release.fullname}`,
    );
    assert.equal(mwc.status, 404);
  });
});
