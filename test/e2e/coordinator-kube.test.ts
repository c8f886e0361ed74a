/**
 * `promshard coordinator` against a real kube-apiserver 1.37: it reads and scales the shard
 * StatefulSet through its /scale subresource and reads the pods' restart counts. There is no
 * kubelet, so this test plays the StatefulSet controller and the kubelet: for each ordinal
 * below spec.replicas it runs a real promshard sidecar and a real Prometheus, each on its own
 * loopback address 127.0.1.<ordinal> (what the pod DNS name would give), and a Pod object
 * whose status carries the restart count. The seed's experiment must come out: 3 shards of 2
 * targets; then a shrink scales the StatefulSet down again.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { load } from "js-yaml";
import { type DemoExporter, startDemoExporter } from "../../src/demo/exporter.ts";
import { REPLICA_LABELS } from "../../src/thanos/args.ts";
import { freePort } from "../../src/util/ports.ts";
import { eventually } from "../support/eventually.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";
import { prometheusBinaries } from "../support/prometheus.ts";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const NS = "monitoring";
const STS = "shards";
const prometheus = prometheusBinaries().at(-1)!;

interface Shard {
  processes: ChildProcess[];
}

/** A StatefulSet whose pods this test runs as processes: shard i of it listens on host(i). */
interface SetSim {
  ns: string;
  sts: string;
  host: (i: number) => string;
  /** --replica of its sidecars, as the webhook passes promshard.io/replica-group. */
  replica?: number;
  /** --config.fallback-file of its sidecars: the last good config's Secret, as the kubelet mounts it. */
  fallback?: string;
  shards: Map<number, Shard>;
}

const stop = async (p: ChildProcess) => {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await exited;
};

describe("promshard coordinator with a real kube-apiserver", { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  const dir = mkdtempSync(join(tmpdir(), "promshard-coord-kube-"));
  const exporters: DemoExporter[] = [];
  const seedSet: SetSim = { ns: NS, sts: STS, host: (i) => `127.0.1.${i}`, shards: new Map() };
  const sims: SetSim[] = [seedSet];
  const replicasRunning: ChildProcess[] = [];
  let output = "";
  let kubelet: NodeJS.Timeout | undefined;
  /** The kubelet loop's tick in flight: `after` waits for it, or a shard it was starting outlives the file. */
  let tick: Promise<void> | undefined;
  /**
   * Every shard process this file started, and whether `after` has begun: nothing is started
   * once it has, and it stops each one, whatever map a shard is (no longer) in. A fresh-clone
   * run hung after this file passed, a shard's sidecar and Prometheus started during `after`.
   */
  const spawned: ChildProcess[] = [];
  let closing = false;
  let ports: { sidecar: number; prometheus: number; api: number };

  before(async () => {
    cp = await startControlPlane();
    ports = { sidecar: await freePort(), prometheus: await freePort(), api: await freePort() };
  });
  after(async () => {
    closing = true;
    clearInterval(kubelet);
    await tick;
    for (const c of replicasRunning) await stop(c);
    for (const p of spawned) await stop(p);
    for (const e of exporters) await e.close();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const scalePath = (ns: string, sts: string) => `/apis/apps/v1/namespaces/${ns}/statefulsets/${sts}/scale`;
  const replicasOf = async (ns: string, sts: string) =>
    (await cp.api<{ spec: { replicas?: number } }>("GET", scalePath(ns, sts))).spec.replicas ?? 0;
  const replicas = () => replicasOf(NS, STS);

  /** Starts a shard's sidecar and Prometheus on its host, and its Pod object. */
  async function startShard(sim: SetSim, i: number): Promise<void> {
    if (closing) return;
    const host = sim.host(i);
    const shardDir = join(dir, `${sim.ns}-${sim.sts}-${i}`);
    for (const d of ["out", "state", "tsdb"]) mkdirSync(join(shardDir, d), { recursive: true });
    const sidecar = spawn(
      process.execPath,
      [
        cli,
        "sidecar",
        "--config.file",
        join(dir, "prometheus.yml"),
        "--prometheus.url",
        `http://${host}:${ports.prometheus}`,
        "--output.dir",
        join(shardDir, "out"),
        "--state.dir",
        join(shardDir, "state"),
        "--listen",
        `${host}:${ports.sidecar}`,
        "--api.token-file",
        join(dir, "token"),
        "--shard.pod-name",
        `${sim.sts}-${i}`,
        ...(sim.replica === undefined ? [] : ["--replica", String(sim.replica)]),
        ...(sim.fallback === undefined ? [] : ["--config.fallback-file", sim.fallback]),
        "--log.level",
        "warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    spawned.push(sidecar);
    sidecar.stderr!.on("data", (d) => (output += `[sidecar ${sim.sts}-${i}] ${d}`));
    const config = join(shardDir, "out", "prometheus.yml");
    await eventually(`shard ${sim.sts}-${i}'s generated config`, () => existsSync(config) || undefined);
    if (closing) return;
    const prom = spawn(
      prometheus.bin,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(shardDir, "tsdb")}`,
        `--web.listen-address=${host}:${ports.prometheus}`,
        "--web.enable-lifecycle",
        "--scrape.discovery-reload-interval=1s",
      ],
      { stdio: "ignore" },
    );
    spawned.push(prom);
    sim.shards.set(i, { processes: [sidecar, prom] });
    const pod = `/api/v1/namespaces/${sim.ns}/pods`;
    if ((await cp.request("GET", `${pod}/${sim.sts}-${i}`)).status === 404)
      await cp.api("POST", pod, {
        body: {
          metadata: { name: `${sim.sts}-${i}`, labels: { app: sim.sts } },
          spec: { containers: [{ name: "prometheus", image: "prom/prometheus" }] },
        },
      });
  }

  /** Stops a shard's processes; with `pod`, its Pod object goes too (scaled down), else it stays (a crash). */
  async function stopShard(sim: SetSim, i: number, pod = true): Promise<void> {
    const s = sim.shards.get(i)!;
    sim.shards.delete(i);
    for (const p of s.processes) await stop(p);
    if (pod) await cp.request("DELETE", `/api/v1/namespaces/${sim.ns}/pods/${sim.sts}-${i}`);
  }

  /** Shards (per set) the kubelet loop leaves alone: the test stopped them on purpose. */
  const crashed = new Set<string>();

  /** The kubelet's part: each set's shard processes follow its spec.replicas. */
  function startKubelet(): void {
    kubelet = setInterval(() => {
      tick ??= (async () => {
        for (const sim of sims) {
          const want = await replicasOf(sim.ns, sim.sts);
          for (let i = 0; i < want; i++)
            if (!sim.shards.has(i) && !crashed.has(`${sim.sts}-${i}`)) await startShard(sim, i);
          for (const i of [...sim.shards.keys()]) if (i >= want) await stopShard(sim, i);
        }
      })()
        .catch((err: Error) => {
          output += `[kubelet] ${err.message}\n`;
        })
        .finally(() => {
          tick = undefined;
        });
    }, 200);
  }

  /** A StatefulSet (and its headless Service) whose pods this test runs. */
  async function createSet(
    ns: string,
    sts: string,
    o: { replicas: number; labels?: Record<string, string>; annotations?: Record<string, string> },
  ): Promise<void> {
    await cp.api("POST", `/api/v1/namespaces/${ns}/services`, {
      body: { metadata: { name: sts }, spec: { clusterIP: "None", selector: { app: sts }, ports: [{ port: 9095 }] } },
    });
    await cp.api("POST", `/apis/apps/v1/namespaces/${ns}/statefulsets`, {
      body: {
        metadata: { name: sts, ...(o.labels ? { labels: o.labels } : {}) },
        spec: {
          replicas: o.replicas,
          serviceName: sts,
          selector: { matchLabels: { app: sts } },
          template: {
            metadata: { labels: { app: sts }, ...(o.annotations ? { annotations: o.annotations } : {}) },
            spec: { containers: [{ name: "prometheus", image: "prom/prometheus" }] },
          },
        },
      },
    });
  }

  /** A coordinator replica with its API on `port`; `shards` says where its shards are (the seed's StatefulSet by default). */
  function startCoordinator(
    port: number,
    shards = ["--shards.statefulset", `${NS}/${STS}`, "--shards.url-template", "http://127.0.1.{ordinal}:{port}"],
    extra: string[] = [],
  ): ChildProcess {
    const c = spawn(
      process.execPath,
      [
        cli,
        "coordinator",
        "--config",
        join(dir, "prometheus.yml"),
        ...shards,
        "--kubeconfig",
        cp.kubeconfigPath,
        "--sidecar.token-file",
        join(dir, "token"),
        "--sidecar.port",
        String(ports.sidecar),
        "--prometheus.port",
        String(ports.prometheus),
        "--listen",
        `127.0.0.1:${port}`,
        "--interval",
        "1s",
        "--scale-down.delay",
        "2s",
        "--scale-down.wait",
        "3s",
        "--prometheus.version",
        prometheus.version,
        "--log.level",
        "warn",
        ...extra,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    c.stdout!.on("data", (d) => (output += d));
    c.stderr!.on("data", (d) => (output += d));
    replicasRunning.push(c);
    return c;
  }

  const shardsApi = async () =>
    (await (await fetch(`http://127.0.0.1:${ports.api}/api/v1/shards`)).json()) as {
      shards: {
        id: number;
        series: number;
        ready: boolean;
        restarts: number;
        targets: unknown[];
        prometheusUrl: string;
      }[];
    };

  const writeTargets = (n: number) =>
    writeFileSync(
      join(dir, "targets.json"),
      JSON.stringify([{ targets: exporters.slice(0, n).map((e) => `127.0.0.1:${e.port}`) }]),
    );

  it("scales the StatefulSet to the seed's 3 shards of 2 targets, then back down", async () => {
    for (let i = 0; i < 6; i++) exporters.push(await startDemoExporter({ series: 10040 }));
    writeTargets(6);
    writeFileSync(
      join(dir, "prometheus.yml"),
      "global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: demo\n  file_sd_configs: [{files: [targets.json]}]\n",
    );
    writeFileSync(join(dir, "token"), "kube-test-token\n");
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: NS } } });
    await createSet(NS, STS, { replicas: 1 });
    startKubelet();

    startCoordinator(ports.api);

    const seed = await eventually(
      "3 ready shards of 2 targets",
      async () => {
        const s = await shardsApi();
        return s.shards.length === 3 && s.shards.every((x) => x.ready && x.targets.length === 2) ? s : undefined;
      },
      120_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${output}`));
    assert.equal(await replicas(), 3, "the StatefulSet was scaled through /scale");
    assert.equal(seed.shards[1]!.prometheusUrl, `http://127.0.1.1:${ports.prometheus}`);

    // Each target is scraped by exactly one shard's Prometheus.
    await eventually("each target up on exactly one shard", async () => {
      const seen: string[] = [];
      for (const s of seed.shards) {
        const r = (await (
          await fetch(`${s.prometheusUrl}/api/v1/query?query=${encodeURIComponent('up{job="demo"} == 1')}`)
        ).json()) as { data: { result: { metric: { instance: string } }[] } };
        seen.push(...r.data.result.map((x) => x.metric.instance));
      }
      return seen.length === 6 && new Set(seen).size === 6 ? true : undefined;
    });

    // A pod's restarts reach the coordinator from its status.
    await cp.api("PUT", `/api/v1/namespaces/${NS}/pods/${STS}-2/status`, {
      body: {
        ...(await cp.api<Record<string, unknown>>("GET", `/api/v1/namespaces/${NS}/pods/${STS}-2`)),
        status: {
          containerStatuses: [
            {
              name: "prometheus",
              image: "prom/prometheus",
              imageID: "",
              ready: true,
              restartCount: 1,
              started: true,
              state: { running: {} },
            },
          ],
        },
      },
    });
    // Failover (S6): a second replica stands by; the leader is killed; the standby takes
    // over when the lease expires and moves no target.
    const standbyPort = await freePort();
    startCoordinator(standbyPort);
    const readyz = async (port: number) =>
      (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status;
    await eventually("the standby answers 503 on /readyz", async () =>
      (await readyz(standbyPort)) === 503 ? true : undefined,
    );
    const placement = async (port: number) => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/api/v1/shards`)).json()) as {
        shards: { targets: { labels: { instance: string } }[] }[];
      };
      return body.shards.map((x) => x.targets.map((t) => t.labels.instance).sort());
    };
    const before = await placement(ports.api);
    const leader = replicasRunning[0]!;
    const killed = Date.now();
    leader.kill("SIGKILL");
    await eventually("the standby leads", async () => ((await readyz(standbyPort)) === 200 ? true : undefined), 40_000);
    const tookMs = Date.now() - killed;
    assert.deepEqual(await placement(standbyPort), before, "no target changed shard");
    assert.ok(tookMs < 30_000, `failover took ${tookMs} ms`);
    ports.api = standbyPort;

    await eventually("shard 2's restart count", async () =>
      (await shardsApi()).shards[2]?.restarts === 1 ? true : undefined,
    );

    writeTargets(2);
    await eventually(
      "the StatefulSet back at 1 replica",
      async () => ((await replicas()) === 1 && (await shardsApi()).shards.length === 1 ? true : undefined),
      60_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${output}`));
    const after1 = await shardsApi();
    assert.equal(after1.shards[0]!.targets.length, 2);
  });

  it("finds its StatefulSets by label, one per replica group: same targets per index, scaled together, down only when every copy is", async () => {
    // The first scenario's coordinators and shard go: this one has its own namespace and Lease.
    for (const c of replicasRunning.splice(0)) await stop(c);
    for (const i of [...seedSet.shards.keys()]) await stopShard(seedSet, i);
    sims.splice(0);
    writeTargets(4);
    const HA = "ha";
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: HA } } });
    // What the webhook writes on a StatefulSet whose pods it injects (test/webhook/statefulset.test.ts).
    const label = { "promshard.io/coordinator": "promshard" };
    const optIn = (g: number) => ({ "promshard.io/inject": "true", "promshard.io/replica-group": String(g) });
    const groups: SetSim[] = [0, 1].map((g) => ({
      ns: HA,
      sts: `prom-rep-${g}`,
      host: (i: number) => `127.1.${g}.${i}`,
      replica: g,
      shards: new Map(),
    }));
    sims.push(...groups);
    await createSet(HA, "prom-rep-0", { replicas: 1, labels: label, annotations: optIn(0) });
    await createSet(HA, "prom-rep-1", { replicas: 0, labels: label, annotations: optIn(1) });
    // Labelled but unusable: no opt-in in its template; a second StatefulSet for group 0.
    await createSet(HA, "not-injected", { replicas: 0, labels: label });
    await createSet(HA, "rep-0-again", { replicas: 0, labels: label, annotations: optIn(0) });
    // Not labelled: another coordinator's, or none.
    await createSet(HA, "unlabelled", { replicas: 0, annotations: optIn(2) });
    ports.api = await freePort();
    startCoordinator(
      ports.api,
      ["--shards.namespace", HA, "--shards.url-template", "http://127.1.{group}.{ordinal}:{port}"],
      ["--shard.down-grace", "3s"],
    );

    const api = async () =>
      (await (await fetch(`http://127.0.0.1:${ports.api}/api/v1/shards`)).json()) as {
        shards: { ready: boolean; targets: { labels: { instance: string } }[]; replicaGroups: { pod: string }[] }[];
      };
    await eventually(
      "2 ready shards of 2 targets, each in both replica groups",
      async () => {
        const s = await api();
        return s.shards.length === 2 && s.shards.every((x) => x.ready && x.targets.length === 2) ? s : undefined;
      },
      120_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${output}`));
    assert.deepEqual(
      [await replicasOf(HA, "prom-rep-0"), await replicasOf(HA, "prom-rep-1")],
      [2, 2],
      "both groups scaled together through /scale",
    );
    assert.equal(await replicasOf(HA, "unlabelled"), 0, "an unlabelled StatefulSet is not this coordinator's");
    assert.deepEqual(
      (await api()).shards[1]!.replicaGroups.map((r) => r.pod),
      ["prom-rep-0-1", "prom-rep-1-1"],
    );

    const scraped = async (g: number, i: number) => {
      const r = (await (
        await fetch(
          `http://127.1.${g}.${i}:${ports.prometheus}/api/v1/query?query=${encodeURIComponent('up{job="demo"} == 1')}`,
        )
      ).json()) as { data: { result: { metric: { instance: string } }[] } };
      return r.data.result.map((x) => x.metric.instance).sort();
    };
    const placement = async () => {
      const out: string[][][] = [];
      for (const i of [0, 1]) out.push([await scraped(0, i), await scraped(1, i)]);
      return out;
    };
    // Every index: the same two targets in both groups; each target on one index.
    const same = await eventually("each index scrapes the same targets in both groups", async () => {
      // A copy's Prometheus may still be starting: the index is ready once one copy is.
      const p = await placement().catch(() => undefined);
      if (!p) return undefined;
      const ok = p.every(([a, b]) => a!.length === 2 && JSON.stringify(a) === JSON.stringify(b));
      return ok && new Set(p.flatMap(([a]) => a!)).size === 4 ? p : undefined;
    }).catch(async (err: Error) => assert.fail(`${err.message}: ${JSON.stringify(await placement())}\n${output}`));

    // Their external labels are the two Thanos Query dedups by (--query.replica-label).
    for (const g of [0, 1])
      for (const i of [0, 1]) {
        const cfg = (await (await fetch(`http://127.1.${g}.${i}:${ports.prometheus}/api/v1/status/config`)).json()) as {
          data: { yaml: string };
        };
        const labels = (load(cfg.data.yaml) as { global: { external_labels: Record<string, string> } }).global
          .external_labels;
        assert.equal(labels.shard, String(i));
        assert.equal(labels.replica, String(g));
      }
    assert.deepEqual([...REPLICA_LABELS].sort(), ["replica", "shard"]);

    // The unusable StatefulSets are named with what to do, on the status API and as Kubernetes Events.
    const status = (await (await fetch(`http://127.0.0.1:${ports.api}/api/v1/status`)).json()) as {
      shardSets: { replicaGroups: { statefulSet: string }[]; unusable: { statefulSet: string; problem: string }[] };
    };
    assert.deepEqual(
      status.shardSets.replicaGroups.map((g) => g.statefulSet),
      ["ha/prom-rep-0", "ha/prom-rep-1"],
    );
    const problem = (name: string) => status.shardSets.unusable.find((u) => u.statefulSet === `ha/${name}`)?.problem;
    assert.match(problem("not-injected") ?? "", /does not carry promshard\.io\/inject: "true".*kubectl annotate/);
    assert.match(problem("rep-0-again") ?? "", /replica group 0 is already StatefulSet ha\/prom-rep-0/);
    const events = await cp.api<{ items: { reason: string; involvedObject: { name: string }; message: string }[] }>(
      "GET",
      `/api/v1/namespaces/${HA}/events`,
    );
    assert.deepEqual(
      events.items
        .filter((e) => e.reason === "PromshardUnusable")
        .map((e) => e.involvedObject.name)
        .sort(),
      ["not-injected", "rep-0-again"],
    );

    // One copy of shard 0 down (its pod stays, as in a crash): the index is not down, nothing moves.
    crashed.add("prom-rep-1-0");
    await stopShard(groups[1]!, 0, false);
    await sleep(6000);
    assert.ok((await api()).shards[0]!.ready, "shard 0 counts as up while group 0's copy is");
    assert.deepEqual([await scraped(0, 1), await scraped(1, 1)], same[1], "shard 1 kept its targets");
    assert.deepEqual(await scraped(0, 0), same[0]![0], "group 0's copy of shard 0 kept its targets");

    // The coordinator keeps its last good config in a Secret in the shards' namespace.
    const configFile = join(dir, "prometheus.yml");
    const good = readFileSync(configFile, "utf8");
    const kept = await cp.api<{ data: Record<string, string> }>(
      "GET",
      `/api/v1/namespaces/${HA}/secrets/promshard-last-good-config`,
    );
    assert.equal(Buffer.from(kept.data["prometheus.yml"]!, "base64").toString(), good);
    // The kubelet's part: the Secret as a file (elsewhere than the config: relative paths still
    // resolve against the config file's directory).
    mkdirSync(join(dir, "last-good"), { recursive: true });
    writeFileSync(join(dir, "last-good", "prometheus.yml"), Buffer.from(kept.data["prometheus.yml"]!, "base64"));
    groups[1]!.fallback = join(dir, "last-good", "prometheus.yml");

    // It comes back as a new pod would (no state), while the config file is broken: it runs the
    // last good config from the Secret and gets shard 0's targets again.
    writeFileSync(configFile, good.replace("scrape_interval: 1s", "scrape_interval: nope"));
    rmSync(join(dir, `${HA}-prom-rep-1-0`), { recursive: true, force: true });
    crashed.delete("prom-rep-1-0");
    await eventually("the new copy of shard 0 scrapes its targets", async () =>
      JSON.stringify(await scraped(1, 0).catch(() => [])) === JSON.stringify(same[0]![0]) ? true : undefined,
    ).catch((err: Error) => assert.fail(`${err.message}\n${output}`));
    writeFileSync(configFile, good);

    // A new replica group joins at the others' size.
    await createSet(HA, "prom-rep-2", { replicas: 0, labels: label, annotations: optIn(2) });
    await eventually("the new group scaled to 2", async () =>
      (await replicasOf(HA, "prom-rep-2")) === 2 ? true : undefined,
    );
    await cp.api("DELETE", `/apis/apps/v1/namespaces/${HA}/statefulsets/prom-rep-2`);

    // Both copies of shard 1 down: now the index is down.
    for (const g of groups) {
      crashed.add(`${g.sts}-1`);
      await stopShard(g, 1, false);
    }
    await eventually("shard 1 down", async () => ((await api()).shards[1]?.ready === false ? true : undefined));
  });
});
