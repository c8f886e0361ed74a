import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { eventually } from "./eventually.ts";
import { type ControlPlane, KUBERNETES_VERSION, startControlPlane } from "./kube.ts";

/** Processes whose command line mentions `needle` (every component and the watchdog name the dir). */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle)) found.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

const statusCode = (err: unknown) => (err instanceof k8s.ApiException ? err.code : undefined);

async function stopLeavesNothing(cp: ControlPlane, t: { diagnostic(msg: string): void }): Promise<void> {
  const pids = Object.values(cp.pids);
  assert.ok(pids.length >= 2);
  for (const pid of pids) process.kill(pid, 0); // Running.
  assert.ok(processesMentioning(cp.dir).length > pids.length, "the components and the watchdog name the dir");
  const started = Date.now();
  await cp.stop();
  t.diagnostic(`stop took ${Date.now() - started} ms`);
  assert.deepEqual(processesMentioning(cp.dir), []);
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), `pid ${pid} is gone`);
  await cp.stop(); // Idempotent.
}

describe("control plane with kube-controller-manager", () => {
  let cp: ControlPlane;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  before(async () => {
    cp = await startControlPlane({ controllerManager: true });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
  });
  afterEach((t) => cp?.printLogsIfFailed(t));
  after(() => cp?.stop());

  it("is ready, at the version built", (t) => {
    t.diagnostic(`start-to-ready ${JSON.stringify(cp.timings)} ms`);
    assert.equal(cp.version, `v${KUBERNETES_VERSION}`);
    assert.match(cp.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(Buffer.from(cp.caData, "base64").toString(), /BEGIN CERTIFICATE/);
  });

  it("creates a namespace, a ConfigMap and a Pod (client-node with the admin kubeconfig)", async () => {
    await core.createNamespace({ body: { metadata: { name: "basics" } } });
    await core.createNamespacedConfigMap({
      namespace: "basics",
      body: { metadata: { name: "cfg" }, data: { "prometheus.yml": "global: {}\n" } },
    });
    const cm = await core.readNamespacedConfigMap({ namespace: "basics", name: "cfg" });
    assert.equal(cm.data?.["prometheus.yml"], "global: {}\n");
    // The ServiceAccount admission plugin needs basics/default, which the controller manager creates.
    await eventually("service account basics/default", async () =>
      core.readNamespacedServiceAccount({ namespace: "basics", name: "default" }),
    );
    const pod = await core.createNamespacedPod({
      namespace: "basics",
      body: { metadata: { name: "p", labels: { app: "p" } }, spec: { containers: [{ name: "c", image: "busybox" }] } },
    });
    assert.equal(pod.status?.phase, "Pending");
    assert.ok(
      pod.spec?.volumes?.some((v) => v.name.startsWith("kube-api-access-")),
      "the ServiceAccount admission plugin mounted a token",
    );
    await cp.markPodReady("basics", "p", "10.1.2.3");
    const ready = await core.readNamespacedPod({ namespace: "basics", name: "p" });
    assert.equal(ready.status?.phase, "Running");
    assert.equal(ready.status?.podIP, "10.1.2.3");
  });

  it("runs the StatefulSet controller: pods are created, the second once the first is Ready", async () => {
    await core.createNamespace({ body: { metadata: { name: "sts" } } });
    await apps.createNamespacedStatefulSet({
      namespace: "sts",
      body: {
        metadata: { name: "prom" },
        spec: {
          replicas: 2,
          serviceName: "prom",
          selector: { matchLabels: { app: "prom" } },
          template: {
            metadata: { labels: { app: "prom" } },
            spec: { containers: [{ name: "prometheus", image: "prom/prometheus" }] },
          },
        },
      },
    });
    const podNames = async () =>
      (await core.listNamespacedPod({ namespace: "sts", labelSelector: "app=prom" })).items
        .map((p) => p.metadata?.name ?? "")
        .sort();
    await eventually("pod prom-0", async () => ((await podNames()).includes("prom-0") ? true : undefined));
    // OrderedReady (the default): no prom-1 while prom-0 is not Running and Ready. No kubelet does that here.
    await sleep(1_000);
    assert.deepEqual(await podNames(), ["prom-0"]);
    await cp.markPodReady("sts", "prom-0");
    await eventually("pod prom-1", async () => ((await podNames()).length === 2 ? true : undefined));
    assert.deepEqual(await podNames(), ["prom-0", "prom-1"]);
    const owner = (await core.readNamespacedPod({ namespace: "sts", name: "prom-1" })).metadata?.ownerReferences?.[0];
    assert.equal(owner?.kind, "StatefulSet");
    assert.equal(owner?.name, "prom");
  });

  it("authorizes a service account with RBAC: no secrets until a RoleBinding allows them", async () => {
    const sa = await cp.kubeconfigFor("rbac", "reader");
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(sa.path);
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, "rbac");
    const saCore = kc.makeApiClient(k8s.CoreV1Api);
    await assert.rejects(saCore.listNamespacedSecret({ namespace: "rbac" }), (err) => statusCode(err) === 403);
    // The same through plain HTTPS with the token: the message names the service account.
    const denied = await cp.request<{ message: string }>("GET", "/api/v1/namespaces/rbac/secrets", { token: sa.token });
    assert.equal(denied.status, 403);
    assert.match(denied.body.message, /system:serviceaccount:rbac:reader.*cannot list resource "secrets"/);

    await cp.api("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/rbac/roles", {
      body: {
        metadata: { name: "secret-reader" },
        rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] }],
      },
    });
    await cp.api("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/rbac/rolebindings", {
      body: {
        metadata: { name: "reader-reads-secrets" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "secret-reader" },
        subjects: [{ kind: "ServiceAccount", name: "reader", namespace: "rbac" }],
      },
    });
    // The authorizer sees RBAC objects through an informer: allowed within moments.
    const list = await eventually("secrets listed by rbac/reader", () =>
      saCore.listNamespacedSecret({ namespace: "rbac" }),
    );
    assert.ok(Array.isArray(list.items));
    // Still nothing outside its namespace.
    await assert.rejects(saCore.listNamespacedSecret({ namespace: "default" }), (err) => statusCode(err) === 403);
    // A second call reuses the account and gives a fresh token.
    const again = await cp.kubeconfigFor("rbac", "reader");
    assert.notEqual(again.token, "");
  });

  it("stops, leaving no process and no dir behind", async (t) => {
    await stopLeavesNothing(cp, t);
  });
});

describe("control plane without kube-controller-manager", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
  });
  afterEach((t) => cp?.printLogsIfFailed(t));
  after(() => cp?.stop());

  it("is ready and stores pods as submitted (no service account needed)", async (t) => {
    t.diagnostic(`start-to-ready ${JSON.stringify(cp.timings)} ms`);
    assert.deepEqual(Object.keys(cp.pids).sort(), ["etcd", "kube-apiserver"]);
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: "plain" } } });
    const pod = await cp.api<{ spec: { volumes?: unknown[] }; status: { phase: string } }>(
      "POST",
      "/api/v1/namespaces/plain/pods",
      { body: { metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "busybox" }] } } },
    );
    assert.equal(pod.status.phase, "Pending");
    assert.equal(pod.spec.volumes, undefined);
    // Nothing creates the namespace's default service account.
    const sa = await cp.request("GET", "/api/v1/namespaces/plain/serviceaccounts/default");
    assert.equal(sa.status, 404);
  });

  it("stops, leaving no process and no dir behind", async (t) => {
    await stopLeavesNothing(cp, t);
  });
});
