/**
 * KubernetesDiscovery watching a real kube-apiserver (test/support/kube.ts: etcd + apiserver on
 * loopback, no mocks): what arrives at onUpdate when objects are added, changed and deleted for
 * each role, across an apiserver restart, after a 410 Gone (etcd compacted past the informers'
 * resourceVersion), and while RBAC forbids the lists. Latencies (API write to group arriving)
 * are reported as test diagnostics; only a generous bound is asserted.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubernetesObject } from "@kubernetes/client-node";
import { pino } from "pino";
import { KubernetesDiscovery } from "../../src/discovery/kubernetes/provider.ts";
import { type KubeClient, kubeClientFor } from "../../src/kube/client.ts";
import { type InformerListener, InformerPool, type InformerSpec } from "../../src/kube/informers.ts";
import { parseKubernetesSdConfig } from "../../src/prom/sd/kubernetes.ts";
import type { TargetGroup } from "../../src/prom/targets.ts";
import { eventually } from "../support/eventually.ts";
import { type ControlPlane, type ExtraApiserver, startControlPlane } from "../support/kube.ts";

const M = "__meta_kubernetes_";
const MERGE = "application/merge-patch+json";
/** Generous: a change must reach onUpdate within this long. */
const BOUND_MS = 10_000;

type Api = ControlPlane["api"];
type Role = "pod" | "service" | "endpoints" | "endpointslice" | "node";

// ---- crashes: an unhandled rejection or uncaught exception anywhere fails the test it happens in

const crashes: unknown[] = [];
process.on("unhandledRejection", (err) => crashes.push(err));
process.on("uncaughtException", (err) => crashes.push(err));

// ---- what onUpdate receives

interface Update {
  at: number;
  batch: number;
  group: TargetGroup;
}

class Recorder {
  readonly updates: Update[] = [];
  /** Latest group per source as sent (empty groups included). */
  readonly state = new Map<string, TargetGroup>();
  batches = 0;
  #wake: (() => void)[] = [];

  readonly onUpdate = (groups: TargetGroup[]): void => {
    const at = performance.now();
    const batch = ++this.batches;
    for (const group of groups) {
      this.updates.push({ at, batch, group });
      this.state.set(group.source, group);
    }
    for (const w of this.#wake.splice(0)) w();
  };

  /** Index to pass as `from` to only look at what arrives after now. */
  mark(): number {
    return this.updates.length;
  }

  /** The first update from index `from` on that matches; waits up to timeoutMs for one. */
  async next(what: string, pred: (g: TargetGroup) => boolean, from = 0, timeoutMs = BOUND_MS): Promise<Update> {
    const deadline = performance.now() + timeoutMs;
    for (let i = from; ; ) {
      for (; i < this.updates.length; i++) if (pred(this.updates[i]!.group)) return this.updates[i]!;
      const left = deadline - performance.now();
      if (left <= 0) {
        const seen = this.updates.slice(from).map((u) => `${u.group.source}(${u.group.targets.length})`);
        throw new Error(`${what}: nothing within ${timeoutMs} ms; arrived meanwhile: ${seen.join(", ") || "nothing"}`);
      }
      await Promise.race([new Promise<void>((r) => this.#wake.push(r)), sleep(Math.min(left, 250))]);
    }
  }

  since(from: number, source?: string): Update[] {
    return this.updates.slice(from).filter((u) => source === undefined || u.group.source === source);
  }

  /** Non-empty groups, canonical, by source. */
  current(): string[] {
    return canonicalGroups([...this.state.values()]);
  }
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v,
  );
}

const canonicalGroups = (groups: readonly TargetGroup[]) =>
  groups
    .filter((g) => g.targets.length > 0)
    .sort((a, b) => (a.source < b.source ? -1 : 1))
    .map(canonical);

const isEmpty = (g: TargetGroup) => g.targets.length === 0 && Object.keys(g.labels).length === 0;

// ---- logs

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** The message of a logged error (pino's err serializer: `{ type, message, stack }`). */
function errMessage(l: LogLine): string {
  const err = l.err as { message?: unknown } | undefined;
  return typeof err?.message === "string" ? err.message : "";
}

function captureLog() {
  const lines: LogLine[] = [];
  const log = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

// ---- discovery under test

interface Running {
  d: KubernetesDiscovery;
  rec: Recorder;
  pool: InformerPool;
  /** Every list the informers made, by API path. */
  lists: string[];
  lines: LogLine[];
  stop(): void;
}

function sdConfig(raw: Record<string, unknown>) {
  const { config, errors } = parseKubernetesSdConfig(raw, "kubernetes_sd_configs[0]");
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
  );
  return config!;
}

/** A client that counts the lists it makes (a relist shows as a second list of the same path). */
function countingClient(kubeconfig: string, lists: string[]): KubeClient {
  const client = kubeClientFor({ kubeconfigFile: kubeconfig });
  return {
    ...client,
    list: <T>(path: string, query?: Record<string, string>) => {
      lists.push(path);
      return client.list<T>(path, query);
    },
  };
}

function startDiscovery(raw: Record<string, unknown>, kubeconfig: string, pool?: InformerPool): Running {
  const { log, lines } = captureLog();
  const lists: string[] = [];
  const p = pool ?? new InformerPool({ log });
  const d = new KubernetesDiscovery({
    config: sdConfig(raw),
    client: countingClient(kubeconfig, lists),
    pool: p,
    log,
  });
  const rec = new Recorder();
  d.start(rec.onUpdate);
  return {
    d,
    rec,
    pool: p,
    lists,
    lines,
    stop() {
      d.stop();
      if (!pool) p.stopAll();
    },
  };
}

/** What a fresh list (no watch) of the same config gives: the truth to compare against. */
async function listedGroups(raw: Record<string, unknown>, kubeconfig: string): Promise<string[]> {
  const pool = new InformerPool({ watch: false });
  const d = new KubernetesDiscovery({
    config: sdConfig(raw),
    client: kubeClientFor({ kubeconfigFile: kubeconfig }),
    pool,
  });
  try {
    await d.synced;
    return canonicalGroups(d.groups());
  } finally {
    d.stop();
    pool.stopAll();
  }
}

/** Resolves with true if `p` settles within ms, else false. */
const settlesWithin = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), sleep(ms).then(() => false)]);

/** A pool that counts the listeners registered on its informers and not yet removed. */
class CountingPool extends InformerPool {
  listeners = 0;
  override acquire<T extends KubernetesObject>(client: KubeClient, spec: InformerSpec) {
    const lease = super.acquire<T>(client, spec);
    return {
      ...lease,
      on: (l: InformerListener<T>) => {
        this.listeners++;
        const off = lease.on(l);
        let removed = false;
        return () => {
          if (!removed) this.listeners--;
          removed = true;
          off();
        };
      },
    };
  }
}

// ---- objects

let ipCounter = 0;
const nextIp = () => {
  ipCounter++;
  return `10.${20 + (ipCounter >> 16)}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
};

async function createPod(api: Api, ns: string, name: string, ip: string, labels: Record<string, string> = {}) {
  await api("POST", `/api/v1/namespaces/${ns}/pods`, {
    body: {
      metadata: { name, labels: { app: name, ...labels } },
      spec: {
        containers: [
          { name: "app", image: "example/app:1", ports: [{ name: "metrics", containerPort: 8080, protocol: "TCP" }] },
        ],
      },
    },
  });
  await api("PATCH", `/api/v1/namespaces/${ns}/pods/${name}/status`, {
    contentType: MERGE,
    body: {
      status: {
        phase: "Running",
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z" }],
      },
    },
  });
}

async function createService(api: Api, ns: string, name: string, labels: Record<string, string>) {
  await api("POST", `/api/v1/namespaces/${ns}/services`, {
    body: {
      metadata: { name, labels },
      spec: { selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] },
    },
  });
}

const podRef = (ns: string, name: string) => ({ kind: "Pod", namespace: ns, name });

async function ensureNamespace(api: Api, ns: string) {
  await api("POST", "/api/v1/namespaces", { body: { metadata: { name: ns } } }).catch((err: Error) => {
    if (!/HTTP 409/.test(err.message)) throw err;
  });
}

async function labelPatch(api: Api, path: string, labels: Record<string, string | null>) {
  await api("PATCH", path, { contentType: MERGE, body: { metadata: { labels } } });
}

/** One role's objects: each named object is created with label stage=<stage>. */
interface RoleCase {
  role: Role;
  /** The namespace its objects live in (nodes: none). */
  ns: string;
  source(name: string): string;
  /** Path of the role's own object. */
  path(name: string): string;
  create(api: Api, name: string, stage: string): Promise<void>;
  /** The group's labels and targets for an object created with `stage`. */
  check(g: TargetGroup, name: string, stage: string): void;
  /** The label that carries the object's `stage` label. */
  stageLabel: string;
  /** Whether a new object's group is complete (lookups into other watches done). */
  ready(g: TargetGroup): boolean;
}

const ips = new Map<string, string>();
const ipOf = (key: string) => {
  let ip = ips.get(key);
  if (!ip) {
    ip = nextIp();
    ips.set(key, ip);
  }
  return ip;
};

/** The cases, each role's objects in namespace `<prefix>-<role>`, so that each test has its own. */
function roleCases(prefix = "w"): RoleCase[] {
  const podNs = `${prefix}-pod`;
  const pod: RoleCase = {
    role: "pod",
    ns: podNs,
    source: (n) => `pod/${podNs}/${n}`,
    path: (n) => `/api/v1/namespaces/${podNs}/pods/${n}`,
    create: (api, n, stage) => createPod(api, podNs, n, ipOf(`${podNs}/${n}`), { stage }),
    stageLabel: `${M}pod_label_stage`,
    ready: () => true,
    check(g, n, stage) {
      assert.equal(g.labels[`${M}namespace`], podNs);
      assert.equal(g.labels[`${M}pod_name`], n);
      assert.equal(g.labels[`${M}pod_label_stage`], stage);
      assert.equal(g.labels[`${M}pod_phase`], "Running");
      assert.equal(g.labels[`${M}pod_ready`], "true");
      assert.equal(g.targets.length, 1);
      assert.equal(g.targets[0]!.__address__, `${ipOf(`${podNs}/${n}`)}:8080`);
      assert.equal(g.targets[0]![`${M}pod_container_port_name`], "metrics");
    },
  };
  const svcNs = `${prefix}-service`;
  const service: RoleCase = {
    role: "service",
    ns: svcNs,
    source: (n) => `svc/${svcNs}/${n}`,
    path: (n) => `/api/v1/namespaces/${svcNs}/services/${n}`,
    create: (api, n, stage) => createService(api, svcNs, n, { stage }),
    stageLabel: `${M}service_label_stage`,
    ready: () => true,
    check(g, n, stage) {
      assert.equal(g.labels[`${M}namespace`], svcNs);
      assert.equal(g.labels[`${M}service_name`], n);
      assert.equal(g.labels[`${M}service_label_stage`], stage);
      assert.equal(g.targets.length, 1);
      assert.equal(g.targets[0]!.__address__, `${n}.${svcNs}.svc:80`);
      assert.equal(g.targets[0]![`${M}service_port_name`], "http");
    },
  };
  // Endpoints and slices: each named object comes with its service (tier=bronze) and a backing pod.
  const backing = async (api: Api, ns: string, n: string) => {
    await createPod(api, ns, `${n}-pod`, ipOf(`${ns}/${n}-pod`));
    await createService(api, ns, n, { tier: "bronze" });
  };
  // The pod and the service come through their own watches: a group built before either was
  // seen lacks its labels, and is rebuilt when the service arrives (as in Prometheus).
  const linked = (g: TargetGroup) => g.labels[`${M}service_name`] !== undefined && !!g.targets[0]?.[`${M}pod_name`];
  const epNs = `${prefix}-endpoints`;
  const endpoints: RoleCase = {
    role: "endpoints",
    ns: epNs,
    source: (n) => `endpoints/${epNs}/${n}`,
    path: (n) => `/api/v1/namespaces/${epNs}/endpoints/${n}`,
    async create(api, n, stage) {
      await backing(api, epNs, n);
      await api("POST", `/api/v1/namespaces/${epNs}/endpoints`, {
        body: {
          metadata: { name: n, labels: { stage } },
          subsets: [
            {
              addresses: [{ ip: ipOf(`${epNs}/${n}-pod`), targetRef: podRef(epNs, `${n}-pod`) }],
              ports: [{ name: "http", port: 8080, protocol: "TCP" }],
            },
          ],
        },
      });
    },
    stageLabel: `${M}endpoints_label_stage`,
    ready: linked,
    check(g, n, stage) {
      assert.equal(g.labels[`${M}namespace`], epNs);
      assert.equal(g.labels[`${M}endpoints_name`], n);
      assert.equal(g.labels[`${M}endpoints_label_stage`], stage);
      assert.equal(g.labels[`${M}service_name`], n, "the service's labels are attached");
      assert.equal(g.targets.length, 1);
      const t = g.targets[0]!;
      assert.equal(t.__address__, `${ipOf(`${epNs}/${n}-pod`)}:8080`);
      assert.equal(t[`${M}endpoint_ready`], "true");
      assert.equal(t[`${M}pod_name`], `${n}-pod`, "the pod's labels are attached");
    },
  };
  const esNs = `${prefix}-endpointslice`;
  const endpointslice: RoleCase = {
    role: "endpointslice",
    ns: esNs,
    source: (n) => `endpointslice/${esNs}/${n}-abc`,
    path: (n) => `/apis/discovery.k8s.io/v1/namespaces/${esNs}/endpointslices/${n}-abc`,
    async create(api, n, stage) {
      await backing(api, esNs, n);
      await api("POST", `/apis/discovery.k8s.io/v1/namespaces/${esNs}/endpointslices`, {
        body: {
          metadata: { name: `${n}-abc`, labels: { stage, "kubernetes.io/service-name": n } },
          addressType: "IPv4",
          endpoints: [
            {
              addresses: [ipOf(`${esNs}/${n}-pod`)],
              conditions: { ready: true, serving: true, terminating: false },
              targetRef: podRef(esNs, `${n}-pod`),
            },
          ],
          ports: [{ name: "http", port: 8080, protocol: "TCP" }],
        },
      });
    },
    stageLabel: `${M}endpointslice_label_stage`,
    ready: linked,
    check(g, n, stage) {
      assert.equal(g.labels[`${M}namespace`], esNs);
      assert.equal(g.labels[`${M}endpointslice_name`], `${n}-abc`);
      assert.equal(g.labels[`${M}endpointslice_label_stage`], stage);
      assert.equal(g.labels[`${M}service_name`], n, "the service's labels are attached");
      assert.equal(g.targets.length, 1);
      const t = g.targets[0]!;
      assert.equal(t.__address__, `${ipOf(`${esNs}/${n}-pod`)}:8080`);
      assert.equal(t[`${M}endpointslice_endpoint_conditions_ready`], "true");
      assert.equal(t[`${M}pod_name`], `${n}-pod`, "the pod's labels are attached");
    },
  };
  const node: RoleCase = {
    role: "node",
    ns: "",
    source: (n) => `node/${prefix}-${n}`,
    path: (n) => `/api/v1/nodes/${prefix}-${n}`,
    async create(api, n, stage) {
      const name = `${prefix}-${n}`;
      await api("POST", "/api/v1/nodes", { body: { metadata: { name, labels: { stage } } } });
      await api("PATCH", `/api/v1/nodes/${name}/status`, {
        contentType: MERGE,
        body: {
          status: {
            addresses: [
              { type: "InternalIP", address: ipOf(`node/${name}`) },
              { type: "Hostname", address: name },
            ],
            daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
          },
        },
      });
    },
    stageLabel: `${M}node_label_stage`,
    ready: () => true,
    check(g, n, stage) {
      const name = `${prefix}-${n}`;
      assert.equal(g.labels[`${M}node_name`], name);
      assert.equal(g.labels[`${M}node_label_stage`], stage);
      assert.equal(g.targets.length, 1);
      assert.equal(g.targets[0]!.__address__, `${ipOf(`node/${name}`)}:10250`);
      assert.equal(g.targets[0]!.instance, name);
      assert.equal(g.targets[0]![`${M}node_address_InternalIP`], ipOf(`node/${name}`));
    },
  };
  return [pod, service, endpoints, endpointslice, node];
}

// ---- latencies, reported per test

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return `n=${s.length} median ${q(0.5).toFixed(1)} ms, max ${s[s.length - 1]!.toFixed(1)} ms`;
};

/** Runs `write`, then waits for the first update from now on matching `pred`; returns it and the latency. */
async function timed(
  rec: Recorder,
  what: string,
  write: () => Promise<unknown>,
  pred: (g: TargetGroup) => boolean,
  into: number[],
): Promise<TargetGroup> {
  const from = rec.mark();
  const t0 = performance.now();
  await write();
  const u = await rec.next(what, pred, from);
  const ms = u.at - t0;
  into.push(ms);
  assert.ok(ms < BOUND_MS, `${what}: ${ms.toFixed(0)} ms`);
  return u.group;
}

// ---- the tests

describe("kubernetes discovery watching a real kube-apiserver", { timeout: 600_000 }, () => {
  let cp: ControlPlane;
  let extra: ExtraApiserver | undefined;
  before(async () => {
    cp = await startControlPlane();
  });
  after(async () => {
    await extra?.stop();
    await cp?.stop();
  });
  beforeEach(() => {
    crashes.length = 0;
  });
  afterEach((t) => {
    cp?.printLogsIfFailed(t);
    assert.deepEqual(crashes, [], "no unhandled rejection or uncaught exception");
  });

  for (const rc of roleCases()) {
    it(`${rc.role}: add, change, delete, unchanged objects; the right sources and labels`, async (t) => {
      const api = cp.api;
      if (rc.ns) await ensureNamespace(api, rc.ns);
      // Objects of the same kind in another namespace must not show (nodes are cluster-wide).
      if (rc.role !== "node") {
        await ensureNamespace(api, `${rc.ns}-other`);
        await createPod(api, `${rc.ns}-other`, "elsewhere", nextIp(), { stage: "elsewhere" });
        await createService(api, `${rc.ns}-other`, "elsewhere", { stage: "elsewhere" });
      }
      await rc.create(api, "x-0", "initial");
      await rc.create(api, "x-1", "initial");

      const raw = { role: rc.role, ...(rc.ns ? { namespaces: { names: [rc.ns] } } : {}) };
      const t0 = performance.now();
      const run = startDiscovery(raw, cp.kubeconfigPath);
      const lat = { first: [] as number[], add: [] as number[], change: [] as number[], delete: [] as number[] };
      try {
        await run.d.synced;
        const first = await run.rec.next("the first groups", (g) => g.source === rc.source("x-1"));
        lat.first.push(first.at - t0);
        // Everything known at sync arrives in one batch.
        const firstBatch = run.rec.updates.filter((u) => u.batch === 1).map((u) => u.group);
        assert.deepEqual(firstBatch.map((g) => g.source).sort(), [rc.source("x-0"), rc.source("x-1")]);
        for (const n of ["x-0", "x-1"]) rc.check(firstBatch.find((g) => g.source === rc.source(n))!, n, "initial");

        // Add.
        const added = await timed(
          run.rec,
          "add x-2",
          () => rc.create(api, "x-2", "initial"),
          (g) => g.source === rc.source("x-2") && g.targets.length > 0 && rc.ready(g),
          lat.add,
        );
        rc.check(added, "x-2", "initial");

        // Change.
        const changed = await timed(
          run.rec,
          "change x-0",
          () => labelPatch(api, rc.path("x-0"), { stage: "changed" }),
          (g) => g.source === rc.source("x-0") && g.labels[rc.stageLabel] === "changed",
          lat.change,
        );
        rc.check(changed, "x-0", "changed");

        // Unchanged: x-1 gets a finalizer and loses it again (two update events, the same group);
        // then a change of x-0 goes through the same watch: once it arrives, x-1's events were seen.
        const from = run.rec.mark();
        await api("PATCH", rc.path("x-1"), {
          contentType: MERGE,
          body: { metadata: { finalizers: ["example.com/hold"] } },
        });
        await api("PATCH", rc.path("x-1"), { contentType: MERGE, body: { metadata: { finalizers: null } } });
        await timed(
          run.rec,
          "barrier change of x-0",
          () => labelPatch(api, rc.path("x-0"), { stage: "barrier" }),
          (g) => g.source === rc.source("x-0") && g.labels[rc.stageLabel] === "barrier",
          lat.change,
        );
        assert.deepEqual(
          run.rec.since(from, rc.source("x-1")).map((u) => u.group),
          [],
          "an update that leaves the group as it was sends nothing",
        );

        // Delete: an empty group with the same source.
        const deleted = await timed(
          run.rec,
          "delete x-2",
          () => api("DELETE", `${rc.path("x-2")}?gracePeriodSeconds=0`),
          (g) => g.source === rc.source("x-2") && g.targets.length === 0,
          lat.delete,
        );
        assert.deepEqual(deleted, { source: rc.source("x-2"), targets: [], labels: {} });

        // Each group was sent once per change: never the same content twice in a row.
        assertNoRepeats(run.rec);
        // And what was sent is what a fresh list gives.
        assert.deepEqual(run.rec.current(), await listedGroups(raw, cp.kubeconfigPath));
        assert.deepEqual(run.rec.current(), canonicalGroups(run.d.groups()));
        t.diagnostic(
          `${rc.role}: first groups ${lat.first[0]!.toFixed(0)} ms after start; ` +
            `add ${stats(lat.add)}; change ${stats(lat.change)}; delete ${stats(lat.delete)}`,
        );
      } finally {
        run.stop();
      }
    });
  }

  for (const role of ["endpoints", "endpointslice"] as const) {
    it(`${role}: a service change rebuilds its ${role}; a pod label change does not`, async (t) => {
      const rc = roleCases("svc").find((c) => c.role === role)!;
      await ensureNamespace(cp.api, rc.ns);
      await rc.create(cp.api, "x-0", "initial");
      await rc.create(cp.api, "x-1", "initial");
      // A pod-role discovery on the same pool shares the pods informer: when it has sent a pod's
      // change, the role's own discovery has been told of it too.
      const pool = new InformerPool();
      const run = startDiscovery({ role, namespaces: { names: [rc.ns] } }, cp.kubeconfigPath, pool);
      const podWatch = startDiscovery({ role: "pod", namespaces: { names: [rc.ns] } }, cp.kubeconfigPath, pool);
      const lat: number[] = [];
      try {
        await Promise.all([run.d.synced, podWatch.d.synced]);
        assert.equal(pool.size, 3, `${role}, pods and services: the pods informer is shared`);
        await run.rec.next("x-0 at start", (g) => g.source === rc.source("x-0"));
        const g = await timed(
          run.rec,
          `service x-0 relabeled -> ${role} x-0`,
          () => labelPatch(cp.api, `/api/v1/namespaces/${rc.ns}/services/x-0`, { tier: "gold" }),
          (g) => g.source === rc.source("x-0") && g.labels[`${M}service_label_tier`] === "gold",
          lat,
        );
        rc.check(g, "x-0", "initial");
        // The service going away rebuilds it too, without the service's labels.
        const gone = await timed(
          run.rec,
          `service x-1 deleted -> ${role} x-1`,
          () => cp.api("DELETE", `/api/v1/namespaces/${rc.ns}/services/x-1`),
          (g) => g.source === rc.source("x-1") && g.labels[`${M}service_name`] === undefined,
          lat,
        );
        assert.equal(gone.targets.length, 1);
        assert.equal(
          gone.labels[`${M}endpoints_name`] ?? gone.labels[`${M}endpointslice_name`],
          rc.role === "endpoints" ? "x-1" : "x-1-abc",
        );

        // A pod label change is no rebuild trigger (Prometheus: Endpoints rebuild on pod phase
        // changes only, EndpointSlices never on pod events).
        const from = run.rec.mark();
        await labelPatch(cp.api, `/api/v1/namespaces/${rc.ns}/pods/x-0-pod`, { extra: "yes" });
        await podWatch.rec.next(
          "the pod change, through the shared informer",
          (g) => g.source === `pod/${rc.ns}/x-0-pod` && g.labels[`${M}pod_label_extra`] === "yes",
        );
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(run.rec.since(from), [], "nothing sent for a pod label change");
        // The next change of the object itself builds it afresh, with the pod's new label.
        const next = await timed(
          run.rec,
          "own change",
          () => labelPatch(cp.api, rc.path("x-0"), { stage: "after-pod" }),
          (g) => g.source === rc.source("x-0") && g.labels[rc.stageLabel] === "after-pod",
          lat,
        );
        assert.equal(next.targets[0]![`${M}pod_label_extra`], "yes");
        t.diagnostic(`${role}: service change -> group ${stats(lat)}`);
      } finally {
        run.stop();
        podWatch.stop();
        pool.stopAll();
      }
    });
  }

  it("endpoints: a pod's phase change rebuilds the endpoints listing it", async (t) => {
    const rc = roleCases("phase").find((c) => c.role === "endpoints")!;
    await ensureNamespace(cp.api, rc.ns);
    await rc.create(cp.api, "x-0", "initial");
    const run = startDiscovery({ role: "endpoints", namespaces: { names: [rc.ns] } }, cp.kubeconfigPath);
    try {
      await run.d.synced;
      await run.rec.next("x-0 at start", (g) => g.source === rc.source("x-0"));
      const lat: number[] = [];
      const g = await timed(
        run.rec,
        "pod phase Failed -> endpoints x-0",
        () =>
          cp.api("PATCH", `/api/v1/namespaces/${rc.ns}/pods/x-0-pod/status`, {
            contentType: MERGE,
            body: { status: { phase: "Failed" } },
          }),
        (g) => g.source === rc.source("x-0") && g.targets[0]?.[`${M}pod_phase`] === "Failed",
        lat,
      );
      assert.equal(g.targets.length, 1);
      t.diagnostic(`pod phase change -> endpoints group ${stats(lat)}`);
    } finally {
      run.stop();
    }
  });

  it("start() called after synced still sends every group", async () => {
    const ns = "late-start";
    await ensureNamespace(cp.api, ns);
    await createPod(cp.api, ns, "p-0", nextIp());
    const { log } = captureLog();
    const pool = new InformerPool({ log });
    const raw = { role: "pod", namespaces: { names: [ns] } };
    const d = new KubernetesDiscovery({
      config: sdConfig(raw),
      client: kubeClientFor({ kubeconfigFile: cp.kubeconfigPath }),
      pool,
    });
    try {
      await d.synced;
      await sleep(50); // A caller that starts it a little later (after one turn of the event loop).
      const rec = new Recorder();
      d.start(rec.onUpdate);
      await rec.next("the groups known at sync", (g) => g.source === `pod/${ns}/p-0`, 0, 2000);
    } finally {
      d.stop();
      pool.stopAll();
    }
  });

  it("stop() while the first list is in flight leaves no watch open", async () => {
    const ns = "stop-early";
    await ensureNamespace(cp.api, ns);
    await createPod(cp.api, ns, "p-0", nextIp());
    // The apiserver's own count of open watches on pods in one namespace.
    const namespacedPodWatches = async () => {
      const m = await cp.request("GET", "/metrics");
      const line = m.text
        .split("\n")
        .find(
          (l) =>
            l.startsWith("apiserver_longrunning_requests{") &&
            l.includes('resource="pods"') &&
            l.includes('scope="namespace"') &&
            l.includes('verb="WATCH"'),
        );
      return Number(line?.split(" ").pop() ?? 0);
    };
    await sleep(500); // Watches of earlier tests' stopped informers are closed by now.
    const before = await namespacedPodWatches();
    const run = startDiscovery({ role: "pod", namespaces: { names: [ns] } }, cp.kubeconfigPath);
    assert.ok(run.lists.length > 0, "the list was sent");
    run.stop(); // While the list is in flight.
    await sleep(1500);
    const after = await namespacedPodWatches();
    assert.ok(after <= before, `a watch was started after stop() and is still open (${before} before, ${after} after)`);
  });

  it("stop() takes the provider's listeners off informers it shares with another provider", async () => {
    const ns = "shared";
    await ensureNamespace(cp.api, ns);
    await createPod(cp.api, ns, "s-0", nextIp());
    const pool = new CountingPool();
    const raw = { role: "endpoints", namespaces: { names: [ns] } };
    const a = startDiscovery(raw, cp.kubeconfigPath, pool);
    const perProvider = pool.listeners;
    const b = startDiscovery(raw, cp.kubeconfigPath, pool);
    try {
      await Promise.all([a.d.synced, b.d.synced]);
      assert.equal(pool.size, 3, "endpoints, pods and services informers, shared");
      assert.equal(pool.listeners, 2 * perProvider);
      a.stop();
      // The informers keep running for b; a stopped provider must no longer be called on their
      // events (nor be kept reachable by them: its sent-groups cache is as big as its targets).
      assert.equal(pool.listeners, perProvider, "a's listeners are still registered after a.stop()");
    } finally {
      a.stop();
      b.stop();
      pool.stopAll();
    }
  });

  it("kube-apiserver restart: changes made while it was down and right after arrive, once each", async (t) => {
    const ns = "restart";
    const api = cp.api;
    await ensureNamespace(api, ns);
    for (const n of ["r-0", "r-1", "r-2", "r-3", "r-still"]) await createPod(api, ns, n, nextIp(), { v: "1" });
    for (const n of ["e-0", "e-1"]) {
      await createService(api, ns, n, { tier: "bronze" });
      await api("POST", `/api/v1/namespaces/${ns}/endpoints`, {
        body: {
          metadata: { name: n },
          subsets: [
            {
              addresses: [{ ip: nextIp(), targetRef: podRef(ns, "r-still") }],
              ports: [{ name: "http", port: 8080, protocol: "TCP" }],
            },
          ],
        },
      });
    }
    const podsRaw = { role: "pod", namespaces: { names: [ns] } };
    const epRaw = { role: "endpoints", namespaces: { names: [ns] } };
    const pods = startDiscovery(podsRaw, cp.kubeconfigPath);
    const eps = startDiscovery(epRaw, cp.kubeconfigPath);
    try {
      await Promise.all([pods.d.synced, eps.d.synced]);
      await pods.rec.next("r-still", (g) => g.source === `pod/${ns}/r-still`);
      await eps.rec.next("e-1", (g) => g.source === `endpoints/${ns}/e-1`);
      extra ??= await cp.startExtraApiserver();
      const from = { pods: pods.rec.mark(), eps: eps.rec.mark() };
      const listsBefore = pods.lists.length + eps.lists.length;

      // Killed (SIGKILL, as in a crash): every connection resets at once.
      const stopped = performance.now();
      await cp.stopApiserver({ graceMs: 0 });
      // While it is down, through the other apiserver on the same etcd (an HA control plane).
      await createPod(extra.api, ns, "r-4", nextIp(), { v: "1" });
      await labelPatch(extra.api, `/api/v1/namespaces/${ns}/pods/r-0`, { v: "2" });
      await extra.api("DELETE", `/api/v1/namespaces/${ns}/pods/r-1?gracePeriodSeconds=0`);
      await labelPatch(extra.api, `/api/v1/namespaces/${ns}/services/e-0`, { tier: "gold" });
      await extra.api("DELETE", `/api/v1/namespaces/${ns}/endpoints/e-1`);
      // Long enough for every informer to find the apiserver gone and retry.
      await sleep(1500);
      const started = performance.now();
      await cp.startApiserver();
      const back = performance.now();
      // Right after it came back, racing the informers' reconnection.
      await createPod(api, ns, "r-5", nextIp(), { v: "1" });
      await labelPatch(api, `/api/v1/namespaces/${ns}/pods/r-2`, { v: "2" });
      await api("DELETE", `/api/v1/namespaces/${ns}/pods/r-3?gracePeriodSeconds=0`);

      const truth = {
        pods: await listedGroups(podsRaw, cp.kubeconfigPath),
        eps: await listedGroups(epRaw, cp.kubeconfigPath),
      };
      await eventually(
        "the pod groups match a fresh list",
        () => (canonical(pods.rec.current()) === canonical(truth.pods) ? true : undefined),
        BOUND_MS,
      );
      await eventually(
        "the endpoints groups match a fresh list",
        () => (canonical(eps.rec.current()) === canonical(truth.eps) ? true : undefined),
        BOUND_MS,
      );
      const caughtUp = performance.now();
      // Give anything late or duplicated a chance to show.
      await sleep(1500);

      const count = (run: Running, f: number, source: string) => run.rec.since(f, source).length;
      const p = (n: string) => `pod/${ns}/${n}`;
      assert.equal(count(pods, from.pods, p("r-0")), 1, "r-0 changed once: one update");
      assert.equal(count(pods, from.pods, p("r-1")), 1, "r-1 deleted: one update");
      assert.ok(isEmpty(pods.rec.since(from.pods, p("r-1"))[0]!.group));
      assert.equal(count(pods, from.pods, p("r-2")), 1, "r-2 changed once: one update");
      assert.equal(count(pods, from.pods, p("r-3")), 1, "r-3 deleted: one update");
      assert.ok(isEmpty(pods.rec.since(from.pods, p("r-3"))[0]!.group));
      assert.equal(count(pods, from.pods, p("r-still")), 0, "untouched: nothing");
      assert.equal(pods.rec.state.get(p("r-4"))?.labels[`${M}pod_label_v`], "1");
      assert.ok((pods.rec.state.get(p("r-5"))?.targets.length ?? 0) > 0);
      assert.equal(count(eps, from.eps, `endpoints/${ns}/e-0`), 1, "e-0 rebuilt once for its service's change");
      assert.equal(
        eps.rec.state.get(`endpoints/${ns}/e-0`)?.labels[`${M}service_label_tier`],
        "gold",
        "with the service's new label",
      );
      assert.equal(count(eps, from.eps, `endpoints/${ns}/e-1`), 1);
      assert.ok(isEmpty(eps.rec.state.get(`endpoints/${ns}/e-1`)!));
      assertNoRepeats(pods.rec);
      assertNoRepeats(eps.rec);
      assert.deepEqual(pods.rec.current(), truth.pods);
      assert.deepEqual(eps.rec.current(), truth.eps);

      const warned = [...pods.lines, ...eps.lines].filter((l) => l.msg === "kubernetes list/watch failed; retrying");
      assert.ok(warned.length > 0, "the lost connection was logged");
      for (const w of warned) {
        assert.ok(typeof w.resource === "string" && w.resource !== "", "with the resource");
        assert.equal(w.namespace, ns, "and the namespace");
      }
      t.diagnostic(
        `apiserver down ${(started - stopped).toFixed(0)} ms, start ${(back - started).toFixed(0)} ms; ` +
          `all groups right ${(caughtUp - back).toFixed(0)} ms after it was ready; ` +
          `${pods.lists.length + eps.lists.length - listsBefore} relists; ${warned.length} retry warnings`,
      );
    } finally {
      pods.stop();
      eps.stop();
    }
  });

  it("410 Gone (etcd compacted past the informer's resourceVersion): relist, deletions arrive as empty groups", async (t) => {
    const ns = "gone";
    const api = cp.api;
    await ensureNamespace(api, ns);
    for (let i = 0; i < 6; i++) await createPod(api, ns, `g-${i}`, nextIp(), { v: "1" });
    const raw = { role: "pod", namespaces: { names: [ns] } };
    const run = startDiscovery(raw, cp.kubeconfigPath);
    try {
      await run.d.synced;
      await run.rec.next("g-5", (g) => g.source === `pod/${ns}/g-5`);
      // The informer's resourceVersion: that of the last write it saw.
      const last = await api<{ metadata: { resourceVersion: string } }>("PATCH", `/api/v1/namespaces/${ns}/pods/g-0`, {
        contentType: MERGE,
        body: { metadata: { labels: { v: "seen" } } },
      });
      await run.rec.next("g-0 v=seen", (g) => g.source === `pod/${ns}/g-0` && g.labels[`${M}pod_label_v`] === "seen");
      const informerRv = last.metadata.resourceVersion;
      const podLists = () => run.lists.filter((p) => p === `/api/v1/namespaces/${ns}/pods`).length;
      assert.equal(podLists(), 1);
      const from = run.rec.mark();

      // Stopped gracefully: SIGTERM; it closes its listener but the informer's open watch keeps
      // it from exiting, so after 10 s it is killed (see stopApiserver).
      const stopping = performance.now();
      await cp.stopApiserver();
      const stopMs = performance.now() - stopping;
      extra ??= await cp.startExtraApiserver();
      // While it is away: deletions, a change and an addition, then compaction past all of it.
      await extra.api("DELETE", `/api/v1/namespaces/${ns}/pods/g-1?gracePeriodSeconds=0`);
      await extra.api("DELETE", `/api/v1/namespaces/${ns}/pods/g-2?gracePeriodSeconds=0`);
      await labelPatch(extra.api, `/api/v1/namespaces/${ns}/pods/g-3`, { v: "2" });
      await createPod(extra.api, ns, "g-6", nextIp(), { v: "1" });
      const compactedAt = await cp.compactEtcd();
      assert.ok(compactedAt > Number(informerRv));
      const restarted = performance.now();
      await cp.startApiserver();

      // The informer's resourceVersion is gone: a watch from it ends with 410 at once.
      const watch = await cp.request(
        "GET",
        `/api/v1/namespaces/${ns}/pods?watch=true&resourceVersion=${informerRv}&timeoutSeconds=5`,
      );
      assert.match(watch.text, /"code":410/, "a watch from the informer's resourceVersion is 410 Gone");

      const p = (n: string) => `pod/${ns}/${n}`;
      const g1 = await run.rec.next("g-1 deleted", (g) => g.source === p("g-1"), from);
      const g2 = await run.rec.next("g-2 deleted", (g) => g.source === p("g-2"), from);
      assert.deepEqual(g1.group, { source: p("g-1"), targets: [], labels: {} });
      assert.deepEqual(g2.group, { source: p("g-2"), targets: [], labels: {} });
      await run.rec.next("g-3 changed", (g) => g.source === p("g-3") && g.labels[`${M}pod_label_v`] === "2", from);
      await run.rec.next("g-6 added", (g) => g.source === p("g-6") && g.targets.length > 0, from);
      const caughtUp = performance.now();
      assert.ok(podLists() >= 2, `the informer relisted (lists: ${podLists()})`);

      // Afterwards the watch works again.
      await createPod(api, ns, "g-7", nextIp(), { v: "1" });
      await run.rec.next("g-7 added", (g) => g.source === p("g-7") && g.targets.length > 0, from);
      await api("DELETE", `/api/v1/namespaces/${ns}/pods/g-4?gracePeriodSeconds=0`);
      await run.rec.next("g-4 deleted", (g) => g.source === p("g-4") && isEmpty(g), from);

      await sleep(500);
      // Untouched pods sent nothing; each change arrived once.
      for (const n of ["g-0", "g-5"]) assert.equal(run.rec.since(from, p(n)).length, 0, `${n} untouched`);
      for (const n of ["g-1", "g-2", "g-3", "g-4"]) assert.equal(run.rec.since(from, p(n)).length, 1, `${n} once`);
      assertNoRepeats(run.rec);
      assert.deepEqual(run.rec.current(), await listedGroups(raw, cp.kubeconfigPath));
      t.diagnostic(
        `graceful stop took ${stopMs.toFixed(0)} ms; ` +
          `compacted at revision ${compactedAt} (informer at ${informerRv}); ${podLists()} lists; ` +
          `deletions and changes arrived ${(caughtUp - restarted).toFixed(0)} ms after the restart began`,
      );
    } finally {
      run.stop();
    }
  });

  it("RBAC forbids the list: logged with resource and namespace, no crash; recovers once a RoleBinding grants it", async (t) => {
    const ns = "locked";
    const api = cp.api;
    const sa = await cp.kubeconfigFor(ns, "promshard");
    await createPod(api, ns, "l-0", nextIp(), { v: "1" });
    const run = startDiscovery({ role: "pod", namespaces: { names: [ns] } }, sa.path);
    try {
      const forbidden = (l: LogLine) =>
        l.msg === "kubernetes list/watch failed; retrying" && /403|forbidden/i.test(errMessage(l));
      await eventually("a forbidden warning", () => (run.lines.some(forbidden) ? true : undefined), BOUND_MS);
      assert.equal(await settlesWithin(run.d.synced, 2000), false, "not synced while forbidden");
      assert.equal(run.rec.updates.length, 0, "nothing sent while forbidden");
      const w = run.lines.find(forbidden)!;
      assert.equal(w.resource, "/api/v1/pods");
      assert.equal(w.namespace, ns);
      assert.match(errMessage(w), /pods is forbidden/);

      const granted = performance.now();
      await api("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
        body: {
          metadata: { name: "promshard-discovery" },
          rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
        },
      });
      await api("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
        body: {
          metadata: { name: "promshard-discovery" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "promshard-discovery" },
          subjects: [{ kind: "ServiceAccount", name: "promshard", namespace: ns }],
        },
      });
      assert.equal(await settlesWithin(run.d.synced, BOUND_MS), true, "synced once granted");
      const g = await run.rec.next("l-0", (g) => g.source === `pod/${ns}/l-0` && g.targets.length > 0);
      const recovered = g.at - granted;
      // And it watches from then on.
      const lat: number[] = [];
      await timed(
        run.rec,
        "change after recovery",
        () => labelPatch(api, `/api/v1/namespaces/${ns}/pods/l-0`, { v: "2" }),
        (g) => g.source === `pod/${ns}/l-0` && g.labels[`${M}pod_label_v`] === "2",
        lat,
      );
      const warnings = run.lines.filter(forbidden);
      t.diagnostic(
        `${warnings.length} forbidden warnings (retryInMs ${[...new Set(warnings.map((l) => l.retryInMs))].join(", ")}); ` +
          `groups ${recovered.toFixed(0)} ms after the grant; a change then ${lat[0]!.toFixed(0)} ms`,
      );
    } finally {
      run.stop();
    }
  });

  it("while forbidden, retries back off (the retry delay grows instead of staying at 500 ms)", async (t) => {
    const ns = "locked-backoff";
    const sa = await cp.kubeconfigFor(ns, "promshard");
    const run = startDiscovery({ role: "pod", namespaces: { names: [ns] } }, sa.path);
    try {
      await sleep(5000);
      const delays = run.lines
        .filter((l) => l.msg === "kubernetes list/watch failed; retrying")
        .map((l) => l.retryInMs as number);
      t.diagnostic(`in 5 s: ${delays.length} attempts, retryInMs ${delays.join(", ")}`);
      assert.ok(delays.length >= 2);
      // 500, 1000, 2000 … (MAX_RESTART_DELAY_MS 30 s) as informers.ts intends: at most ~4 attempts in 5 s.
      assert.ok(Math.max(...delays) > 500, `the delay never grew: ${delays.join(", ")}`);
    } finally {
      run.stop();
    }
  });
});

/** No source got the same group twice in a row. */
function assertNoRepeats(rec: Recorder): void {
  const last = new Map<string, string>();
  for (const u of rec.updates) {
    const text = canonical(u.group);
    assert.notEqual(last.get(u.group.source), text, `${u.group.source} sent twice unchanged`);
    last.set(u.group.source, text);
  }
}
