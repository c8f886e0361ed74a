/**
 * The webhook against a real kube-apiserver and kube-controller-manager 1.37 (test/support/kube.ts):
 * `promshard certs` makes the certificates and sets caBundle, `promshard webhook` runs as a
 * process on loopback, and the API server calls it over TLS through a MutatingWebhookConfiguration
 * with `clientConfig.url`. What DESIGN §8 S7 and issue 6 ask:
 * - an annotated StatefulSet in a labelled namespace: its template gets the annotations, the
 *   pods the StatefulSet controller makes come out injected; an unlabelled namespace: untouched;
 * - re-invocation after another webhook's change is a no-op;
 * - `kubectl --dry-run=server` and a dryRun create: the injected pod comes back, nothing is stored;
 * - bad annotations are refused with the annotation's name, on pods and on StatefulSets;
 * - the webhook down (refused or hanging) with failurePolicy Ignore does not block pod creation;
 * - a CA rotation while pods are being created loses no admission (and a bad certificate would).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server } from "node:https";
import { createServer as createTcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "node:tls";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { describeCert, splitPem } from "../../src/webhook/certs.ts";
import { urlClientConfig, webhookConfiguration } from "../../src/webhook/configuration.ts";
import { GENERATED_CONFIG, INIT, SIDECAR } from "../../src/webhook/inject.ts";
import type { Pod } from "../../src/webhook/pod.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";
import { freePort } from "../support/ports.ts";
import { testCA, testServing } from "./support.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const cli = join(repo, "src/cli.ts");

interface Proc {
  child: ChildProcess;
  output: () => string;
}

function promshard(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: repo, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const got = await fn();
      if (got !== undefined) return got;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`, { cause: last });
    await sleep(100);
  }
}

const PROMETHEUS_SPEC = {
  containers: [
    {
      name: "prometheus",
      image: "quay.io/prometheus/prometheus:v3.5.0",
      args: [
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        "--web.enable-lifecycle",
      ],
      ports: [{ name: "web", containerPort: 9090 }],
      volumeMounts: [
        { name: "config", mountPath: "/etc/prometheus" },
        { name: "data", mountPath: "/prometheus" },
      ],
    },
  ],
  volumes: [{ name: "config", configMap: { name: "prometheus" } }],
};

function statefulSet(name: string, annotations: Record<string, string>, replicas = 2) {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name, annotations },
    spec: {
      replicas,
      serviceName: name,
      podManagementPolicy: "Parallel",
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: PROMETHEUS_SPEC },
      volumeClaimTemplates: [
        {
          metadata: { name: "data" },
          spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
        },
      ],
    },
  };
}

/** A Prometheus pod of its own (a StatefulSet's pods get `data` from the volume claim template). */
function pod(name: string, annotations: Record<string, string>) {
  const spec = { ...PROMETHEUS_SPEC, volumes: [...PROMETHEUS_SPEC.volumes, { name: "data", emptyDir: {} }] };
  return { apiVersion: "v1", kind: "Pod", metadata: { name, annotations }, spec };
}

const injectedPod = (p: Pod) => p.metadata?.annotations?.["promshard.io/status"] === "injected";
const sidecars = (p: Pod) => [...(p.spec.initContainers ?? []), ...p.spec.containers].filter((c) => c.name === SIDECAR);

describe("webhook against a real control plane", { timeout: 600_000 }, () => {
  let cp: ControlPlane;
  let dir: string;
  let port: number;
  let metricsPort: number;
  let webhook: Proc | undefined;
  const labelled = "mon";

  const startWebhook = async (): Promise<Proc> => {
    const chunks: string[] = [];
    const child = spawn(
      process.execPath,
      [
        cli,
        "webhook",
        `--listen=127.0.0.1:${port}`,
        `--metrics.listen=127.0.0.1:${metricsPort}`,
        `--tls.cert-file=${join(dir, "tls.crt")}`,
        `--tls.key-file=${join(dir, "tls.key")}`,
        "--tls.poll-interval=1s",
        "--sidecar.mode=auto",
        `--kubeconfig=${cp.kubeconfigPath}`,
        "--web.shutdown-delay=0s",
        "--log.level=debug",
      ],
      { cwd: repo, stdio: ["ignore", "pipe", "pipe"] },
    );
    for (const s of [child.stdout!, child.stderr!]) s.on("data", (d: Buffer) => chunks.push(d.toString()));
    const proc = { child, output: () => chunks.join("") };
    await eventually("webhook ready", async () => {
      if (child.exitCode !== null) throw new Error(`webhook exited: ${proc.output()}`);
      const res = await request(`http://127.0.0.1:${metricsPort}/readyz`);
      await res.body.dump();
      return res.statusCode === 200 ? true : undefined;
    });
    return proc;
  };
  const stopWebhook = async () => {
    if (!webhook) return;
    const { child } = webhook;
    webhook = undefined;
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  };
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const res = await request(`http://127.0.0.1:${metricsPort}/metrics`);
    let sum = 0;
    for (const line of (await res.body.text()).split("\n")) {
      if (line.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
        sum += Number(line.split(" ").pop());
      }
    }
    return sum;
  };
  const ns = async (name: string, label: boolean) => {
    await cp.api("POST", "/api/v1/namespaces", {
      body: { metadata: { name, labels: label ? { "promshard.io/inject": "enabled" } : {} } },
    });
    // The ServiceAccount admission plugin refuses pods until the controller made `default`.
    await eventually(`${name}/default service account`, async () => {
      const r = await cp.request("GET", `/api/v1/namespaces/${name}/serviceaccounts/default`);
      return r.status === 200 ? true : undefined;
    });
  };
  const getPod = (namespace: string, name: string) =>
    cp.api<Pod>("GET", `/api/v1/namespaces/${namespace}/pods/${name}`);
  const certs = (...args: string[]) =>
    promshard(["certs", "--output.dir", dir, "--ip", "127.0.0.1", "--namespace", "promshard-system", ...args]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "promshard-webhook-kube-"));
    [cp, port, metricsPort] = await Promise.all([
      startControlPlane({ controllerManager: true }),
      freePort(),
      freePort(),
    ]);
    // The configuration first, without caBundle: `promshard certs` sets it.
    const config = webhookConfiguration({
      clientConfig: urlClientConfig(`https://127.0.0.1:${port}`),
      timeoutSeconds: 3,
    });
    await cp.api("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", { body: config });
    const r = certs("--webhook.config", "promshard", `--kubeconfig=${cp.kubeconfigPath}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /create-ca: no CA yet\nissue-serving: no serving certificate yet\ncaBundle set on 2 webhook\(s\) of promshard\n/,
    );
    webhook = await startWebhook();
    await ns(labelled, true);
  });
  after(async () => {
    await stopWebhook();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach((t) => {
    const test = t as { name: string; passed?: boolean };
    cp.printLogsIfFailed(test);
    if (test.passed === false && webhook)
      process.stderr.write(`\n[webhook output]\n${webhook.output().slice(-4000)}\n`);
  });

  it("caBundle holds the CA `promshard certs` made, on both webhooks", async () => {
    const mwc = await cp.api<{ webhooks: { clientConfig: { caBundle: string } }[] }>(
      "GET",
      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/promshard",
    );
    const ca = readFileSync(join(dir, "ca.crt"), "utf8");
    for (const w of mwc.webhooks) assert.equal(Buffer.from(w.clientConfig.caBundle, "base64").toString(), ca);
    assert.match(webhook!.output(), /"apiserver":"v1\.37\.\d+","mode":"native"/);
  });

  it("S7: an annotated StatefulSet in a labelled namespace gets its annotations copied and its pods injected", async () => {
    await cp.api("POST", `/apis/apps/v1/namespaces/${labelled}/statefulsets`, {
      body: statefulSet("prom", { "promshard.io/inject": "true", "promshard.io/max-series": "30000" }),
    });
    const sts = await cp.api<{ spec: { template: { metadata: { annotations: Record<string, string> } } } }>(
      "GET",
      `/apis/apps/v1/namespaces/${labelled}/statefulsets/prom`,
    );
    assert.deepEqual(sts.spec.template.metadata.annotations, {
      "promshard.io/inject": "true",
      "promshard.io/max-series": "30000",
      "promshard.io/copied-from-statefulset": "promshard.io/inject,promshard.io/max-series",
    });
    for (const ordinal of [0, 1]) {
      const p = await eventually(`pod prom-${ordinal}`, () =>
        getPod(labelled, `prom-${ordinal}`).catch(() => undefined),
      );
      assert.ok(injectedPod(p), JSON.stringify(p.metadata?.annotations));
      const [sidecar] = sidecars(p);
      assert.equal(sidecars(p).length, 1);
      assert.equal(sidecar!.restartPolicy, "Always", "a native sidecar on 1.37");
      assert.deepEqual(
        p.spec.initContainers?.map((c) => c.name),
        [SIDECAR],
      );
      assert.ok(sidecar!.args!.includes("--config.file=/etc/prometheus/prometheus.yml"));
      // The data PVC from volumeClaimTemplates holds the sidecar's state.
      assert.ok(sidecar!.args!.includes("--state.dir=/prometheus/promshard"));
      assert.ok(sidecar!.volumeMounts!.some((m) => m.name === "data" && m.mountPath === "/prometheus"));
      const prom = p.spec.containers.find((c) => c.name === "prometheus")!;
      assert.deepEqual(prom.args, [
        `--config.file=${GENERATED_CONFIG}`,
        "--storage.tsdb.path=/prometheus",
        "--web.enable-lifecycle",
      ]);
      assert.equal(p.metadata?.labels?.["apps.kubernetes.io/pod-index"], String(ordinal));
    }
  });

  it("an unlabelled namespace: neither the StatefulSet nor its pods are touched", async () => {
    await ns("plain", false);
    await cp.api("POST", "/apis/apps/v1/namespaces/plain/statefulsets", {
      body: statefulSet("prom", { "promshard.io/inject": "true" }, 1),
    });
    const p = await eventually("pod plain/prom-0", () => getPod("plain", "prom-0").catch(() => undefined));
    assert.ok(!injectedPod(p));
    assert.deepEqual(sidecars(p), []);
    assert.equal(p.metadata?.annotations, undefined);
  });

  it("re-invocation after another webhook changed the pod is a no-op", async () => {
    // A second mutating webhook, called after ours (configurations run in name order), adds a label.
    const ca = readFileSync(join(dir, "ca.crt"), "utf8");
    const toyPort = await freePort();
    const toy: Server = createHttpsServer(
      { cert: readFileSync(join(dir, "tls.crt")), key: readFileSync(join(dir, "tls.key")) },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const review = JSON.parse(Buffer.concat(chunks).toString());
          const labelled_ = review.request.object.metadata.labels?.["other-webhook"] === "was-here";
          const patch = labelled_
            ? []
            : [{ op: "add", path: "/metadata/labels", value: { "other-webhook": "was-here" } }];
          res.setHeader("content-type", "application/json");
          res.end(
            JSON.stringify({
              apiVersion: "admission.k8s.io/v1",
              kind: "AdmissionReview",
              response: {
                uid: review.request.uid,
                allowed: true,
                ...(patch.length
                  ? { patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") }
                  : {}),
              },
            }),
          );
        });
      },
    );
    await new Promise<void>((r) => toy.listen(toyPort, "127.0.0.1", r));
    try {
      await ns("reinvoke", true);
      await cp.api("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
        body: {
          metadata: { name: "zz-other" },
          webhooks: [
            {
              name: "other.example.com",
              clientConfig: { url: `https://127.0.0.1:${toyPort}/`, caBundle: Buffer.from(ca).toString("base64") },
              rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "reinvoke" } },
              sideEffects: "None",
              admissionReviewVersions: ["v1"],
              failurePolicy: "Fail",
            },
          ],
        },
      });
      const calls = (result: string) => metric("promshard_webhook_admission_requests_total", { kind: "Pod", result });
      const { created, injectedCalls, unchangedCalls } = await eventually("pod with two webhooks", async () => {
        // The API server may need a moment to see the new configuration.
        const [i0, u0] = [await calls("injected"), await calls("unchanged")];
        const p = await cp.api<Pod>("POST", "/api/v1/namespaces/reinvoke/pods", {
          body: pod(`p-${Date.now()}`, { "promshard.io/inject": "true" }),
        });
        if (p.metadata?.labels?.["other-webhook"] !== "was-here") return undefined;
        return {
          created: p,
          injectedCalls: (await calls("injected")) - i0,
          unchangedCalls: (await calls("unchanged")) - u0,
        };
      });
      // Ours ran twice for this pod: injected, then re-invoked after the other webhook's change, unchanged.
      assert.equal(injectedCalls, 1);
      assert.equal(unchangedCalls, 1);
      assert.ok(injectedPod(created));
      assert.equal(sidecars(created).length, 1);
      const names = [...(created.spec.initContainers ?? []), ...created.spec.containers].map((c) => c.name);
      assert.deepEqual(names, [...new Set(names)]);
      assert.equal(created.spec.volumes!.filter((v) => v.name === "promshard-config").length, 1);
    } finally {
      await cp.api("DELETE", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/zz-other");
      toy.close();
    }
  });

  it("dry runs: kubectl --dry-run=server and dryRun=All return the injected pod and store nothing", async () => {
    const file = join(dir, "dry.json");
    writeFileSync(file, JSON.stringify(pod("dry-kubectl", { "promshard.io/inject": "true" })));
    const before_ = await metric("promshard_webhook_admission_requests_total", { dry_run: "true" });
    const r = spawnSync(
      "kubectl",
      ["--kubeconfig", cp.kubeconfigPath, "-n", labelled, "create", "--dry-run=server", "-f", file, "-o", "json"],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Pod;
    assert.ok(injectedPod(out));
    assert.equal(sidecars(out).length, 1);
    const api = await cp.api<Pod>("POST", `/api/v1/namespaces/${labelled}/pods?dryRun=All`, {
      body: pod("dry-api", { "promshard.io/inject": "true" }),
    });
    assert.ok(injectedPod(api));
    for (const name of ["dry-kubectl", "dry-api"]) {
      assert.equal((await cp.request("GET", `/api/v1/namespaces/${labelled}/pods/${name}`)).status, 404);
    }
    assert.equal((await metric("promshard_webhook_admission_requests_total", { dry_run: "true" })) - before_, 2);
  });

  it("bad annotations are refused with the annotation's name, on a pod and on a StatefulSet", async () => {
    const res = await cp.request<{ message: string }>("POST", `/api/v1/namespaces/${labelled}/pods`, {
      body: pod("bad", { "promshard.io/inject": "true", "promshard.io/max-series": "lots" }),
    });
    assert.equal(res.status, 400);
    assert.match(
      res.body.message,
      /admission webhook "pods\.promshard\.io" denied the request: promshard: annotation promshard\.io\/max-series: "lots" is not valid; accepted: a positive integer/,
    );
    const sts = await cp.request<{ message: string }>("POST", `/apis/apps/v1/namespaces/${labelled}/statefulsets`, {
      body: statefulSet("bad", { "promshard.io/inject": "true", "promshard.io/thanos": "maybe" }),
    });
    assert.equal(sts.status, 400);
    assert.match(sts.body.message, /statefulsets\.promshard\.io.*metadata annotation promshard\.io\/thanos: "maybe"/);
  });

  it("the fallback asked for by annotation: a plain sidecar container and an init step, accepted by the API", async () => {
    const p = await cp.api<Pod>("POST", `/api/v1/namespaces/${labelled}/pods`, {
      body: pod("fallback", { "promshard.io/inject": "true", "promshard.io/native-sidecar": "false" }),
    });
    assert.deepEqual(
      p.spec.initContainers?.map((c) => c.name),
      [INIT],
    );
    assert.ok(p.spec.containers.some((c) => c.name === SIDECAR && c.restartPolicy === undefined));
  });

  it("sidecar-auth kubernetes: the sidecar's own API token, even with automount off, and no token Secret", async () => {
    const sts = statefulSet("tr", { "promshard.io/inject": "true", "promshard.io/sidecar-auth": "kubernetes" }, 1);
    sts.spec.template.spec = { ...PROMETHEUS_SPEC, automountServiceAccountToken: false } as typeof PROMETHEUS_SPEC;
    await cp.api("POST", `/apis/apps/v1/namespaces/${labelled}/statefulsets`, { body: sts });
    const fromTemplate = await eventually("pod tr-0", () => getPod(labelled, "tr-0").catch(() => undefined));
    // A pod of its own: the ServiceAccount plugin mounts the token in Prometheus first.
    const direct = await cp.api<Pod>("POST", `/api/v1/namespaces/${labelled}/pods`, {
      body: pod("tr-direct", { "promshard.io/inject": "true", "promshard.io/sidecar-auth": "kubernetes" }),
    });
    const saDir = "/var/run/secrets/kubernetes.io/serviceaccount";
    for (const p of [fromTemplate, direct]) {
      assert.ok(injectedPod(p));
      const [sidecar] = sidecars(p);
      assert.ok(sidecar!.args!.includes("--api.auth=kubernetes"), JSON.stringify(sidecar!.args));
      assert.equal(
        sidecar!.args!.some((a) => a.startsWith("--api.token-file")),
        false,
      );
      assert.deepEqual(
        sidecar!.volumeMounts!.filter((m) => m.mountPath === saDir).map((m) => m.name),
        ["promshard-kube-api"],
      );
      const volume = p.spec.volumes!.find((v) => v.name === "promshard-kube-api") as unknown as {
        projected: { sources: { serviceAccountToken?: { path: string; expirationSeconds: number } }[] };
      };
      assert.deepEqual(volume.projected.sources[0]!.serviceAccountToken, { path: "token", expirationSeconds: 3600 });
      assert.equal(
        p.spec.volumes!.some((v) => v.name === "promshard-token"),
        false,
      );
    }
    const promMounts = (p: Pod) =>
      (p.spec.containers.find((c) => c.name === "prometheus")!.volumeMounts ?? []).filter((m) => m.mountPath === saDir);
    assert.deepEqual(promMounts(fromTemplate), [], "automount off: Prometheus holds no API token");
    assert.match(promMounts(direct)[0]?.name ?? "", /^kube-api-access-/, "Prometheus keeps the plugin's own");
  });

  it("the webhook down, refusing or hanging, does not block pod creation (failurePolicy Ignore)", async () => {
    await stopWebhook();
    let t = Date.now();
    const refused = await cp.api<Pod>("POST", `/api/v1/namespaces/${labelled}/pods`, {
      body: pod("while-down", { "promshard.io/inject": "true" }),
    });
    const refusedMs = Date.now() - t;
    assert.ok(!injectedPod(refused));
    assert.ok(refusedMs < 2500, `${refusedMs} ms`);
    // A webhook that accepts connections and never answers: the 3 s timeout, then admitted.
    const held = new Set<Socket>();
    const hang = createTcpServer((s) => held.add(s));
    await new Promise<void>((r) => hang.listen(port, "127.0.0.1", r));
    try {
      t = Date.now();
      const hung = await cp.api<Pod>("POST", `/api/v1/namespaces/${labelled}/pods`, {
        body: pod("while-hung", { "promshard.io/inject": "true" }),
      });
      const hungMs = Date.now() - t;
      assert.ok(!injectedPod(hung));
      assert.ok(hungMs >= 2900 && hungMs < 10_000, `${hungMs} ms`);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => hang.close(r));
    }
    webhook = await startWebhook();
    const back = await cp.api<Pod>("POST", `/api/v1/namespaces/${labelled}/pods`, {
      body: pod("after-restart", { "promshard.io/inject": "true" }),
    });
    assert.ok(injectedPod(back));
  });

  it("a CA rotation while pods are being created loses no admission", async (t) => {
    await ns("rot", true);
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
          const cert = new X509Certificate(s.getPeerX509Certificate()!.raw);
          s.end();
          resolve(cert.issuer);
        });
        s.once("error", reject);
      });
    const issuerBefore = await served();
    let stop = false;
    const created: Pod[] = [];
    const creators = [0, 1].map(async (w) => {
      for (let i = 0; !stop; i++) {
        created.push(
          await cp.api<Pod>("POST", "/api/v1/namespaces/rot/pods", {
            body: pod(`p-${w}-${i}`, { "promshard.io/inject": "true" }),
          }),
        );
        await sleep(20);
      }
    });
    const steps: string[] = [];
    let probesAfterPromote = 0;
    const run = (...args: string[]) => {
      const r = certs("--webhook.config", "promshard", `--kubeconfig=${cp.kubeconfigPath}`, "--overlap", "3s", ...args);
      assert.equal(r.code, 0, r.stderr);
      steps.push(...r.stdout.split("\n").filter((l) => /^(add-ca|promote-ca|drop-retired-ca|issue-serving):/.test(l)));
    };
    try {
      await sleep(1000);
      run("--ca.rotate"); // add: the bundle has both CAs, the old one still signs.
      assert.equal(splitPem(readFileSync(join(dir, "ca.crt"), "utf8")).length, 2);
      await sleep(3500);
      run(); // promote: a serving certificate from the new CA, which the webhook loads.
      await eventually(
        "new certificate served",
        async () => ((await served()) !== issuerBefore ? true : undefined),
        10_000,
      );
      probesAfterPromote = 1; // that last probe's handshake is logged with the new certificate too
      await sleep(3500);
      run(); // drop: only the new CA is left.
      assert.equal(splitPem(readFileSync(join(dir, "ca.crt"), "utf8")).length, 1);
      await sleep(1500);
    } finally {
      stop = true;
      await Promise.all(creators);
    }
    assert.deepEqual(
      steps.map((s) => s.split(":")[0]),
      ["add-ca", "promote-ca", "issue-serving", "drop-retired-ca"],
    );
    const lost = created.filter((p) => !injectedPod(p)).map((p) => p.metadata?.name);
    // The API server did handshake with the new certificate (not only reuse old connections).
    const fingerprint = new X509Certificate(readFileSync(join(dir, "tls.crt"))).fingerprint256;
    const handshakes = webhook!
      .output()
      .split("\n")
      .filter((l) => l.includes('"msg":"TLS connection"') && l.includes(fingerprint)).length;
    assert.ok(handshakes > probesAfterPromote, `${handshakes} handshakes with the new certificate`);
    assert.ok(created.length >= 40, `only ${created.length} pods were created`);
    assert.deepEqual(lost, [], `${lost.length} of ${created.length} pods were admitted without injection`);
    t.diagnostic(
      `${created.length} pods created during the rotation, all injected; ${handshakes} handshakes with the new certificate`,
    );
    assert.match(
      describeCert(readFileSync(join(dir, "tls.crt"), "utf8")).issuer,
      /^CN=promshard-ca-\d{8}T\d{6}Z-[0-9a-f]{6}$/,
    );

    // The control: a certificate the API server does not trust does lose admissions (so the test above could fail).
    const rogue = await testServing(await testCA("rogue"));
    const good = { cert: readFileSync(join(dir, "tls.crt"), "utf8"), key: readFileSync(join(dir, "tls.key"), "utf8") };
    writeFileSync(join(dir, "tls.key"), rogue.keyPem);
    writeFileSync(join(dir, "tls.crt"), rogue.certPem);
    await eventually(
      "rogue certificate served",
      async () => ((await served()) === "CN=rogue-ca" ? true : undefined),
      10_000,
    );
    // Connections made with the good certificate answer once more and close; the next handshake fails.
    const attempts: boolean[] = [];
    for (let i = 0; i < 10 && !attempts.includes(false); i++) {
      const p = await cp.api<Pod>("POST", "/api/v1/namespaces/rot/pods", {
        body: pod(`untrusted-${i}`, { "promshard.io/inject": "true" }),
      });
      attempts.push(injectedPod(p));
    }
    assert.ok(attempts.includes(false), `every pod was injected under an untrusted certificate: ${attempts}`);
    assert.ok(attempts.length <= 3, `the API server kept using old connections: ${attempts}`);
    t.diagnostic(
      `control: under an untrusted certificate, pod ${attempts.length} of ${attempts.length} went uninjected`,
    );
    writeFileSync(join(dir, "tls.key"), good.key);
    writeFileSync(join(dir, "tls.crt"), good.cert);
    await eventually(
      "good certificate back",
      async () => ((await served()) !== "CN=rogue-ca" ? true : undefined),
      10_000,
    );
  });

  it("promshard certs with a Secret: kubernetes.io/tls with ca.crt, the CA apart, a rotation through the API", async () => {
    await ns("promshard-system", false);
    const kc = `--kubeconfig=${cp.kubeconfigPath}`;
    const base = ["certs", "--secret", "promshard-webhook-tls", "--namespace", "promshard-system", kc];
    const r1 = promshard(base);
    assert.equal(r1.code, 0, r1.stderr);
    const secret = await cp.api<{ type: string; data: Record<string, string> }>(
      "GET",
      "/api/v1/namespaces/promshard-system/secrets/promshard-webhook-tls",
    );
    assert.equal(secret.type, "kubernetes.io/tls");
    assert.deepEqual(Object.keys(secret.data).sort(), ["ca.crt", "tls.crt", "tls.key"]);
    const cert = describeCert(Buffer.from(secret.data["tls.crt"]!, "base64").toString());
    assert.deepEqual(cert.dnsNames, [
      "promshard-webhook",
      "promshard-webhook.promshard-system",
      "promshard-webhook.promshard-system.svc",
      "promshard-webhook.promshard-system.svc.cluster.local",
    ]);
    const ca = await cp.api<{ data: Record<string, string> }>(
      "GET",
      "/api/v1/namespaces/promshard-system/secrets/promshard-webhook-tls-ca",
    );
    assert.deepEqual(Object.keys(ca.data).sort(), ["ca.crt", "ca.key"]);
    const r2 = promshard(base);
    assert.match(r2.stdout, /^up to date in secret promshard-system\/promshard-webhook-tls/);
    const r3 = promshard([...base, "--ca.rotate"]);
    assert.match(r3.stdout, /^add-ca: rotation asked for\n/);
    const rotated = await cp.api<{ data: Record<string, string> }>(
      "GET",
      "/api/v1/namespaces/promshard-system/secrets/promshard-webhook-tls",
    );
    assert.equal(splitPem(Buffer.from(rotated.data["ca.crt"]!, "base64").toString()).length, 2);
  });
});
