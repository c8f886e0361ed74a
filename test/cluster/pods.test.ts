/**
 * Pods run on the one-node cluster (test/support/cluster.ts, docs/cluster.md): kubelet,
 * containerd, kube-proxy and CoreDNS built on this machine, images built from this checkout.
 * One cluster for the file; the checks run concurrently on it.
 * - a pod from the locally built promshard image (the demo exporter) becomes Ready, is reached
 *   through its Service name from another pod and from the host, and its log is read through the API;
 * - a StatefulSet of 2 pods behind a headless Service: stable names that resolve to each pod
 *   (A records, and SRV records as Thanos's dnssrv+ reads them);
 * - the project's webhook, as a pod behind a Service, injects a Prometheus StatefulSet created
 *   afterwards, and the injected promshard and Thanos sidecars start and answer their health
 *   checks (the Thanos sidecar found through the SRV record Thanos Query's dnssrv+ reads);
 *   beside it a shard with promshard.io/sidecar-auth: kubernetes takes the coordinator's
 *   ServiceAccount token, checked with TokenReview from inside the pod.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { webhookConfiguration } from "../../src/webhook/configuration.ts";
import { ADMISSION_PATH } from "../../src/webhook/server.ts";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { eventually } from "../support/eventually.ts";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

let cluster: Cluster;
const started = Date.now();

before(async () => {
  cluster = await startCluster({ images: ["promshard", "prometheus3", "thanos"] });
  console.log(`cluster ready: ${JSON.stringify(cluster.timings)}`);
});
afterEach((t) => cluster?.printLogsIfFailed(t));
after(async () => {
  // Nothing a pod did tried to leave the bridge (the guard would have dropped it).
  const drops = await cluster?.forwardGuardDrops();
  const t = Date.now();
  await cluster?.stop();
  assert.equal(drops ?? 0, 0, "packets tried to cross between the pod bridge and another interface");
  console.log(`cluster stopped in ${Date.now() - t} ms; file took ${Date.now() - started} ms`);
});

const PROMSHARD = () => cluster.images.promshard as string;

async function create(path: string, body: Record<string, unknown>): Promise<void> {
  await cluster.api("POST", path, { body });
}

async function namespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  await create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
}

/** The demo exporter of the seed's experiment, served by the promshard image. */
function exporterContainer(series: number) {
  return {
    name: "exporter",
    image: PROMSHARD(),
    imagePullPolicy: "Never",
    args: ["demo-exporter", "--host", "0.0.0.0", "--port", "9100", "--series", String(series)],
    ports: [{ name: "http", containerPort: 9100 }],
    readinessProbe: { httpGet: { path: "/metrics", port: 9100 }, periodSeconds: 1 },
  };
}

/** A pod that fetches each URL once (Node's fetch, in the promshard image), prints what it got and exits. */
async function fetchFromPod(ns: string, name: string, urls: string[]): Promise<string> {
  // Also the pod's routing table (/proc/net/route: hex little-endian destination and mask).
  const script = `
    const { readFileSync } = await import("node:fs");
    const ip = (h) => [3, 2, 1, 0].map((i) => parseInt(h.slice(i * 2, i * 2 + 2), 16)).join(".");
    for (const line of readFileSync("/proc/net/route", "utf8").trim().split("\\n").slice(1)) {
      const f = line.split(/\\s+/);
      console.log("route", f[0], ip(f[1]) + "/" + ip(f[7]), "via", ip(f[2]));
    }
    for (const url of ${JSON.stringify(urls)}) {
      const res = await fetch(url, { signal: AbortSignal.timeout(10000) });
      const text = await res.text();
      console.log(url, res.status, text.split("\\n").filter((l) => l && !l.startsWith("#")).length);
    }`;
  await create(`/api/v1/namespaces/${ns}/pods`, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      containers: [
        {
          name: "client",
          image: PROMSHARD(),
          imagePullPolicy: "Never",
          command: ["node", "--input-type=module", "-e", script],
        },
      ],
    },
  });
  const until = Date.now() + 90_000;
  for (;;) {
    const pod = await cluster.api<{ status?: { phase?: string } }>("GET", `/api/v1/namespaces/${ns}/pods/${name}`);
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") {
      const log = await cluster.podLogs(ns, name);
      assert.equal(phase, "Succeeded", `pod ${ns}/${name} failed; its log:\n${log}`);
      return log;
    }
    if (Date.now() > until)
      throw new Error(`pod ${ns}/${name} still ${phase} after 90 s: ${JSON.stringify(pod.status)}`);
    await sleep(250);
  }
}

/** True once a TCP connection to host:port opens (undefined until then, for eventually). */
function tcpConnects(host: string, port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(undefined));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(undefined);
    });
  });
}

describe("a one-node cluster where pods run", { concurrency: true }, () => {
  it("runs a pod from the local promshard image, reached by its Service name from a pod and the host; its log through the API", async () => {
    await namespace("demo");
    await create("/api/v1/namespaces/demo/pods", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "exporter", labels: { app: "exporter" } },
      spec: { containers: [exporterContainer(100)] },
    });
    await create("/api/v1/namespaces/demo/services", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "exporter" },
      spec: { selector: { app: "exporter" }, ports: [{ name: "http", port: 80, targetPort: 9100 }] },
    });
    const status = await cluster.waitForPodReady("demo", "exporter");
    assert.match(status.podIP ?? "", /^10\.244\.0\.\d+$/);

    // From the host: the Service's name through the cluster DNS, then its ClusterIP (kube-proxy).
    const [clusterIP] = await cluster.resolve("exporter.demo.svc.cluster.local");
    assert.match(clusterIP ?? "", /^10\.96\./);
    // kube-proxy writes the Service's rules once the endpoint is ready: a moment after the pod is.
    const body = await eventually(
      `http://${clusterIP}/metrics from the host`,
      async () => {
        const res = await fetch(`http://${clusterIP}/metrics`, { signal: AbortSignal.timeout(5_000) });
        return res.status === 200 ? res.text() : undefined;
      },
      20_000,
    );
    const samples = body.split("\n").filter((l) => l && !l.startsWith("#"));
    assert.equal(samples.length, 100);

    // From another pod: the short name (the pod's DNS search path) and the full one.
    const log = await fetchFromPod("demo", "client", [
      "http://exporter/metrics",
      "http://exporter.demo.svc.cluster.local/metrics",
    ]);
    assert.match(log, /^http:\/\/exporter\/metrics 200 100$/m);
    // The network stays on the machine: the pod has a route to the pod range (on the bridge)
    // and to the Service range (through the node), and no default route.
    assert.deepEqual(
      log
        .split("\n")
        .filter((l) => l.startsWith("route "))
        .sort(),
      ["route eth0 10.244.0.0/255.255.255.0 via 0.0.0.0", "route eth0 10.96.0.0/255.255.0.0 via 10.244.0.1"],
    );
    assert.match(log, /^http:\/\/exporter\.demo\.svc\.cluster\.local\/metrics 200 100$/m);

    // The exporter's own log, through the API server and the kubelet.
    const exporterLog = await cluster.podLogs("demo", "exporter");
    assert.match(exporterLog, /9100/);
  });

  it("runs a StatefulSet of 2 pods with stable names through a headless Service (A and SRV records)", async () => {
    await namespace("sts");
    await create("/api/v1/namespaces/sts/services", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web" },
      spec: { clusterIP: "None", selector: { app: "web" }, ports: [{ name: "http", port: 9100 }] },
    });
    await create("/apis/apps/v1/namespaces/sts/statefulsets", {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "web" },
      spec: {
        serviceName: "web",
        replicas: 2,
        podManagementPolicy: "Parallel",
        selector: { matchLabels: { app: "web" } },
        template: { metadata: { labels: { app: "web" } }, spec: { containers: [exporterContainer(10)] } },
      },
    });
    const until = Date.now() + 60_000;
    while ((await cluster.request("GET", "/api/v1/namespaces/sts/pods/web-1")).status !== 200) {
      if (Date.now() > until) throw new Error("the StatefulSet controller made no pod web-1 in 60 s");
      await sleep(250);
    }
    const pods = await Promise.all(["web-0", "web-1"].map((p) => cluster.waitForPodReady("sts", p)));
    const ips = pods.map((p) => p.podIP ?? "");
    // CoreDNS answers from its watch: poll briefly for records of pods that just became ready.
    const resolveEventually = async (name: string, type: "A" | "SRV" = "A") => {
      for (let i = 0; ; i++) {
        try {
          return (await cluster.resolve(name, type)).sort();
        } catch (err) {
          if (i > 40) throw err;
          await sleep(250);
        }
      }
    };
    // Names outside the cluster are refused, never forwarded off the machine.
    await assert.rejects(cluster.resolve("example.com"), { code: "EREFUSED" });
    assert.deepEqual(await resolveEventually("web-0.web.sts.svc.cluster.local"), [ips[0]]);
    assert.deepEqual(await resolveEventually("web-1.web.sts.svc.cluster.local"), [ips[1]]);
    assert.deepEqual(await resolveEventually("web.sts.svc.cluster.local"), [...ips].sort());
    assert.deepEqual(await resolveEventually("_http._tcp.web.sts.svc.cluster.local", "SRV"), [
      "web-0.web.sts.svc.cluster.local:9100",
      "web-1.web.sts.svc.cluster.local:9100",
    ]);
    const log = await fetchFromPod("sts", "client", [
      "http://web-0.web:9100/metrics",
      "http://web-1.web.sts.svc:9100/metrics",
    ]);
    assert.match(log, /^http:\/\/web-0\.web:9100\/metrics 200 10$/m);
    assert.match(log, /^http:\/\/web-1\.web\.sts\.svc:9100\/metrics 200 10$/m);
  });

  it("the promshard webhook, running as a pod, injects a Prometheus StatefulSet; the injected promshard and Thanos sidecars answer their health checks", async () => {
    const ns = "promshard-system";
    await namespace(ns);
    // The configuration first (pointing at the Service), then `promshard certs` from the host,
    // as a user would: the serving certificate in a Secret, its CA as caBundle.
    await create(
      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
      webhookConfiguration({
        clientConfig: { service: { name: "promshard-webhook", namespace: ns, port: 443, path: ADMISSION_PATH } },
      }),
    );
    const certs = spawnSync(
      process.execPath,
      [
        cli,
        "certs",
        "--secret",
        "promshard-webhook-tls",
        "--namespace",
        ns,
        "--webhook-config",
        "promshard",
        `--kubeconfig=${cluster.kubeconfigPath}`,
      ],
      { encoding: "utf8" },
    );
    assert.equal(certs.status, 0, `promshard certs: ${certs.stderr}`);
    await create(`/api/v1/namespaces/${ns}/pods`, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "promshard-webhook", labels: { app: "promshard-webhook" } },
      spec: {
        containers: [
          {
            name: "webhook",
            image: PROMSHARD(),
            imagePullPolicy: "Never",
            args: ["webhook", "--listen", ":8443", "--metrics.listen", ":8080"],
            ports: [
              { name: "https", containerPort: 8443 },
              { name: "metrics", containerPort: 8080 },
            ],
            readinessProbe: { httpGet: { path: "/readyz", port: 8080 }, periodSeconds: 1 },
            volumeMounts: [{ name: "tls", mountPath: "/etc/promshard/webhook", readOnly: true }],
          },
        ],
        volumes: [{ name: "tls", secret: { secretName: "promshard-webhook-tls" } }],
      },
    });
    await create(`/api/v1/namespaces/${ns}/services`, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "promshard-webhook" },
      spec: { selector: { app: "promshard-webhook" }, ports: [{ name: "https", port: 443, targetPort: 8443 }] },
    });
    await cluster.waitForPodReady(ns, "promshard-webhook");
    // The API server calls the Service's ClusterIP from this host: wait until kube-proxy
    // routes it (a moment after the pod is ready; failurePolicy Ignore would let the
    // StatefulSet through uninjected before that, as in any cluster).
    const [webhookIP] = await cluster.resolve(`promshard-webhook.${ns}.svc.cluster.local`);
    await eventually(
      `the webhook Service ${webhookIP}:443 answering`,
      () => tcpConnects(webhookIP as string, 443),
      20_000,
    );

    await namespace("monitoring", { "promshard.io/inject": "enabled" });
    await create("/api/v1/namespaces/monitoring/configmaps", {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "prometheus" },
      data: {
        "prometheus.yml":
          "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['exporter.demo.svc:80']\n",
      },
    });
    await create("/api/v1/namespaces/monitoring/secrets", {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "promshard-sidecar-token" },
      stringData: { token: "test-token" },
    });
    await create("/api/v1/namespaces/monitoring/services", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "prometheus" },
      spec: {
        clusterIP: "None",
        selector: { app: "prometheus" },
        ports: [
          { name: "web", port: 9090 },
          { name: "grpc", port: 10901 },
        ],
      },
    });
    await create("/apis/apps/v1/namespaces/monitoring/statefulsets", {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: {
        name: "prometheus",
        annotations: {
          "promshard.io/inject": "true",
          "promshard.io/max-series": "30000",
          // The Thanos sidecar too (no block upload: no object storage here), from the local image.
          "promshard.io/thanos": "true",
          "promshard.io/thanos-image": cluster.images.thanos as string,
        },
      },
      spec: {
        serviceName: "prometheus",
        replicas: 1,
        selector: { matchLabels: { app: "prometheus" } },
        template: {
          metadata: { labels: { app: "prometheus" } },
          spec: {
            // As Prometheus charts run it (kube-prometheus-stack: runAsUser 1000, fsGroup 2000).
            // fsGroup matters: the injected token volume is 0440 root:<fsGroup>; without one, the
            // sidecar (the image's uid 1000) cannot read it and exits (measured here: EACCES).
            securityContext: { runAsUser: 65534, runAsGroup: 65534, runAsNonRoot: true, fsGroup: 65534 },
            containers: [
              {
                name: "prometheus",
                image: cluster.images.prometheus3,
                imagePullPolicy: "Never",
                args: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
                ports: [{ name: "web", containerPort: 9090 }],
                readinessProbe: { httpGet: { path: "/-/ready", port: 9090 }, periodSeconds: 1 },
                volumeMounts: [
                  { name: "config", mountPath: "/etc/prometheus" },
                  { name: "data", mountPath: "/prometheus" },
                ],
              },
            ],
            volumes: [
              { name: "config", configMap: { name: "prometheus" } },
              { name: "data", emptyDir: {} },
            ],
          },
        },
      },
    });
    // Beside it, a shard whose sidecar checks the coordinator with TokenReview (below).
    const kubernetesAuth = kubernetesAuthShard();
    kubernetesAuth.catch(() => {});
    const until = Date.now() + 60_000;
    let pod: { metadata: { annotations?: Record<string, string> }; spec: { initContainers?: { name: string }[] } };
    for (;;) {
      const res = await cluster.request<typeof pod>("GET", "/api/v1/namespaces/monitoring/pods/prometheus-0");
      if (res.status === 200) {
        pod = res.body;
        break;
      }
      if (Date.now() > until) throw new Error("no pod prometheus-0 within 60 s");
      await sleep(250);
    }
    assert.equal(pod.metadata.annotations?.["promshard.io/status"], "injected", JSON.stringify(pod.metadata));
    assert.ok(
      pod.spec.initContainers?.some((c) => c.name === "promshard-sidecar"),
      JSON.stringify(pod.spec),
    );

    const status = await cluster.waitForPodReady("monitoring", "prometheus-0", 150_000);
    const sidecar = status.initContainerStatuses?.find((c) => c.name === "promshard-sidecar");
    assert.ok(sidecar?.ready, `sidecar not ready: ${JSON.stringify(status)}`);
    // The sidecar and Prometheus answer from the host, by the pod's stable name.
    const [ip] = await cluster.resolve("prometheus-0.prometheus.monitoring.svc.cluster.local");
    assert.equal(ip, status.podIP);
    const health = await fetch(`http://${ip}:9095/healthz`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(health.status, 200, await health.text());
    const ready = await fetch(`http://${ip}:9090/-/ready`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(ready.status, 200);
    // The Thanos sidecar is ready once it has read Prometheus's external labels (the shard and
    // replica labels of the config the promshard sidecar generated), and it is found through
    // the SRV record of its named port, as Thanos Query's dnssrv+ finds it.
    assert.ok(status.containerStatuses?.find((c) => c.name === "thanos-sidecar")?.ready, JSON.stringify(status));
    await eventually(
      "the Thanos sidecar's /-/ready",
      async () => {
        const res = await fetch(`http://${ip}:10902/-/ready`, { signal: AbortSignal.timeout(5_000) });
        return res.status === 200 ? true : undefined;
      },
      60_000,
    ).catch(async (err) => {
      const log = await cluster.podLogs("monitoring", "prometheus-0", "thanos-sidecar").catch((e) => String(e));
      throw new Error(`${err.message}; its log:\n${log}`, { cause: err });
    });
    assert.deepEqual(await cluster.resolve("_grpc._tcp.prometheus.monitoring.svc.cluster.local", "SRV"), [
      "prometheus-0.prometheus.monitoring.svc.cluster.local:10901",
    ]);
    await kubernetesAuth;
  });
});

/**
 * promshard.io/sidecar-auth: kubernetes in a pod: the sidecar reads the projected token the
 * webhook gave it (its ServiceAccount says automountServiceAccountToken: false, as the chart's
 * shards do), reaches the API server through the in-cluster config, and takes the
 * coordinator's token for its audience only; RBAC as the chart grants it.
 */
async function kubernetesAuthShard(): Promise<void> {
  const ns = "monitoring";
  const rbac = "/apis/rbac.authorization.k8s.io/v1";
  await create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "shard" },
    automountServiceAccountToken: false,
  });
  for (const name of ["coordinator", "someone-else"])
    await create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name },
    });
  await create(`${rbac}/clusterrolebindings`, {
    metadata: { name: "shard-auth-delegator" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:auth-delegator" },
    subjects: [{ kind: "ServiceAccount", name: "shard", namespace: ns }],
  });
  await create(`${rbac}/namespaces/${ns}/roles`, {
    metadata: { name: "coordinator" },
    rules: [
      { apiGroups: ["promshard.io"], resources: ["shards/assignment"], verbs: ["update"] },
      { apiGroups: ["promshard.io"], resources: ["shards/runtime"], verbs: ["get"] },
    ],
  });
  await create(`${rbac}/namespaces/${ns}/rolebindings`, {
    metadata: { name: "coordinator" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "coordinator" },
    subjects: [{ kind: "ServiceAccount", name: "coordinator", namespace: ns }],
  });
  await create(`/apis/apps/v1/namespaces/${ns}/statefulsets`, {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: {
      name: "tr",
      annotations: {
        "promshard.io/inject": "true",
        "promshard.io/sidecar-auth": "kubernetes",
        "promshard.io/thanos": "false",
      },
    },
    spec: {
      serviceName: "tr",
      replicas: 1,
      selector: { matchLabels: { app: "tr" } },
      template: {
        metadata: { labels: { app: "tr" } },
        spec: {
          serviceAccountName: "shard",
          securityContext: { runAsUser: 65534, runAsGroup: 65534, runAsNonRoot: true, fsGroup: 65534 },
          containers: [
            {
              name: "prometheus",
              image: cluster.images.prometheus3,
              imagePullPolicy: "Never",
              args: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
              volumeMounts: [
                { name: "config", mountPath: "/etc/prometheus" },
                { name: "data", mountPath: "/prometheus" },
              ],
            },
          ],
          volumes: [
            { name: "config", configMap: { name: "prometheus" } },
            { name: "data", emptyDir: {} },
          ],
        },
      },
    },
  });
  const token = async (sa: string, audiences?: string[]) =>
    (
      await cluster.api<{ status: { token: string } }>("POST", `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences } },
      })
    ).status.token;
  const status = await eventually(
    "pod tr-0",
    () =>
      cluster.request("GET", `/api/v1/namespaces/${ns}/pods/tr-0`).then((r) => (r.status === 200 ? true : undefined)),
    60_000,
  ).then(() => cluster.waitForPodReady(ns, "tr-0", 150_000));
  const put = async (bearer: string) => {
    const res = await fetch(`http://${status.podIP}:9095/api/v1/assignment`, {
      method: "PUT",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: JSON.stringify({ version: 1, targets: [] }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, text: await res.text() };
  };
  const coordinator = await put(await token("coordinator", ["promshard.io/sidecar"]));
  if (coordinator.status !== 200) {
    const log = await cluster.podLogs(ns, "tr-0", "promshard-sidecar").catch((e) => String(e));
    assert.fail(`the coordinator's token: HTTP ${coordinator.status} ${coordinator.text}; the sidecar's log:\n${log}`);
  }
  const other = await put(await token("someone-else", ["promshard.io/sidecar"]));
  assert.equal(other.status, 403, other.text);
  assert.match(other.text, /system:serviceaccount:monitoring:someone-else may not update shards\/assignment/);
  const apiAudience = await put(await token("coordinator"));
  assert.equal(apiAudience.status, 403, apiAudience.text);
  assert.match(apiAudience.text, /not know it as a token for the audience promshard\.io\/sidecar/);
}
