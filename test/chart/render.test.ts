/**
 * The chart as text: `helm lint`, `helm template` with the default values and a matrix of
 * options, every rendered object accepted by a real kube-apiserver (server-side dry run, so
 * the API's own validation and defaulting judge it), and bad values refused by the schema with
 * a message naming the field. The cluster install is test/chart/install.test.ts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadAll } from "js-yaml";
import { CHART_DIR, helm } from "../support/helm.ts";
import { type ControlPlane, kubeBinaries, startControlPlane } from "../support/kube.ts";

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  [k: string]: any;
}

const RELEASE_NS = "monitoring";
const SHARDS_NS = "shards";
const dir = mkdtempSync(join(tmpdir(), "promshard-chart-"));
let cp: ControlPlane;
let kubectl: string;

/** Enough of cert-manager's and prometheus-operator's CRDs for their objects to be validated as objects. */
function crd(group: string, kind: string, plural: string, version: string): unknown {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      scope: "Namespaced",
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  };
}

before(async () => {
  cp = await startControlPlane();
  kubectl = join(dirname(kubeBinaries().kubeApiserver), "kubectl");
  for (const ns of [RELEASE_NS, SHARDS_NS])
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: ns } } });
  for (const c of [
    crd("cert-manager.io", "Certificate", "certificates", "v1"),
    crd("cert-manager.io", "Issuer", "issuers", "v1"),
    crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors", "v1"),
  ])
    await cp.api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { body: c });
});
after(async () => {
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function template(args: readonly string[]): { objects: Obj[]; text: string } {
  const r = helm(["template", "t", CHART_DIR, "-n", RELEASE_NS, ...args]);
  assert.equal(r.status, 0, `helm template ${args.join(" ")}: ${r.stderr}`);
  const objects = (loadAll(r.stdout) as (Obj | null)[]).filter((o): o is Obj => o !== null);
  return { objects, text: r.stdout };
}

/** kubectl's server-side apply, dry run: the API server validates and defaults each object, stores none. */
function dryRun(name: string, text: string): void {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  const r = spawnSync(
    kubectl,
    [
      "--kubeconfig",
      cp.kubeconfigPath,
      "apply",
      "--server-side",
      "--dry-run=server",
      "--field-manager=helm",
      "-f",
      file,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, `${name}: the API server refused an object:\n${r.stderr}`);
}

function podSpecs(objects: readonly Obj[]): { owner: string; spec: Obj["spec"] }[] {
  return objects.flatMap((o) => {
    const owner = `${o.kind}/${o.metadata.name}`;
    if (o.kind === "CronJob") return [{ owner, spec: o.spec.jobTemplate.spec.template.spec }];
    if (["Deployment", "StatefulSet", "Job", "DaemonSet"].includes(o.kind))
      return [{ owner, spec: o.spec.template.spec }];
    return [];
  });
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

function coordinatorArgs(objects: readonly Obj[]): string[] {
  const d = objects.find((o) => o.kind === "Deployment" && o.metadata.name.endsWith("-coordinator"));
  assert.ok(d, "no coordinator Deployment");
  return d.spec.template.spec.containers[0].args;
}

/** The rules of the chart's ClusterRole(s), or of one Role. */
function rules(objects: readonly Obj[], kind: "ClusterRole" | "Role", namespace?: string, name?: string): Rule[] {
  const found = objects.filter(
    (o) =>
      o.kind === kind &&
      o.metadata.name.includes("-coordinator") &&
      (namespace === undefined || o.metadata.namespace === namespace) &&
      (name === undefined || o.metadata.name === name),
  );
  assert.ok(found.length > 0, `no ${kind} ${namespace ?? ""}/${name ?? ""}`);
  return found.flatMap((o) => o.rules as Rule[]);
}

function grants(rs: readonly Rule[], group: string, resource: string, verb: string): boolean {
  return rs.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}

const matrix: Record<string, string[]> = {
  defaults: [],
  "cert-manager, own issuer": ["--set", "certManager.enabled=true"],
  "cert-manager, given issuer": [
    "--set",
    "certManager.enabled=true",
    "--set",
    "certManager.issuerRef.name=ca",
    "--set",
    "certManager.issuerRef.kind=ClusterIssuer",
  ],
  "Store Gateway, Ruler, upload, PVCs": [
    "--set",
    "thanos.objstore.existingSecret=bucket",
    "--set",
    "thanos.storeGateway.enabled=true",
    "--set",
    "thanos.ruler.enabled=true",
    "--set-string",
    "thanos.ruler.rules.up\\.yml=groups: []",
    "--set",
    "shards.upload=true",
    "--set",
    "shards.storage.enabled=true",
  ],
  "a FILESYSTEM bucket on a hostPath, shards in their own namespace, Store Gateway, upload": [
    "--set",
    "thanos.objstore.filesystem.volume.hostPath.path=/var/lib/promshard-bucket",
    "--set",
    "thanos.objstore.filesystem.volume.hostPath.type=Directory",
    "--set",
    `shards.namespace=${SHARDS_NS}`,
    "--set",
    "thanos.storeGateway.enabled=true",
    "--set",
    "thanos.ruler.enabled=true",
    "--set",
    "shards.upload=true",
  ],
  "shards in their own namespace, webhook Ignore, web auth": [
    "--set",
    `shards.namespace=${SHARDS_NS}`,
    "--set",
    "webhook.failurePolicy=Ignore",
    "--set",
    "coordinator.webAuth=kubernetes",
    "--set",
    "shards.maxSeries=20000",
  ],
  "no example shards, own StatefulSets, no rotation, no Query": [
    "--set",
    "shards.enabled=false",
    "--set",
    `coordinator.shards.statefulsets={${SHARDS_NS}/prometheus-a,${SHARDS_NS}/prometheus-b}`,
    "--set",
    "certs.rotation.enabled=false",
    "--set",
    "thanos.query.enabled=false",
    "--set",
    "grafanaDashboard.enabled=false",
  ],
  "prometheus-operator present": ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"],
  "shards found in one namespace, two replica groups, no leader election": [
    "--set",
    `shards.namespace=${SHARDS_NS}`,
    "--set",
    `coordinator.shards.namespace=${SHARDS_NS}`,
    "--set",
    "shards.replicaGroups=2",
    "--set",
    "coordinator.leaderElect=false",
    "--set",
    "coordinator.replicas=1",
  ],
  "sidecars checking the coordinator with TokenReview": [
    "--set",
    "sidecarToken.auth=kubernetes",
    "--set",
    `sidecarToken.serviceAccounts[0]=${SHARDS_NS}/prometheus`,
  ],
};

describe("helm chart rendering", () => {
  it("helm lint --strict passes", () => {
    const r = helm(["lint", "--strict", CHART_DIR]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  for (const [name, args] of Object.entries(matrix)) {
    it(`${name}: every object is accepted by kube-apiserver (server-side dry run)`, () => {
      const { objects, text } = template(args);
      assert.ok(objects.length > 10, text);
      dryRun(name.replace(/\W+/g, "-"), text);
    });
  }

  it("every container runs non-root, read-only, without privilege escalation or capabilities, seccomp RuntimeDefault", () => {
    const { objects } = template(matrix["Store Gateway, Ruler, upload, PVCs"] ?? []);
    const specs = podSpecs(objects);
    assert.ok(specs.length >= 6, specs.map((s) => s.owner).join(", "));
    for (const { owner, spec } of specs) {
      assert.equal(spec.securityContext?.runAsNonRoot, true, `${owner}: runAsNonRoot`);
      assert.equal(spec.securityContext?.seccompProfile?.type, "RuntimeDefault", `${owner}: seccomp`);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        const where = `${owner} container ${c.name}`;
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"], `${where}: capabilities`);
        assert.equal(c.imagePullPolicy, "IfNotPresent", `${where}: imagePullPolicy`);
        assert.ok(c.resources?.requests?.memory, `${where}: resources`);
      }
    }
  });

  it("pins the images scripts/images.ts builds, each overridable", () => {
    const images = (objects: Obj[]) =>
      new Set(
        podSpecs(objects).flatMap(({ spec }) =>
          [...(spec.initContainers ?? []), ...spec.containers].map((c: { image: string }) => c.image),
        ),
      );
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    assert.deepEqual([...images(template([]).objects)].sort(), [
      `ghcr.io/promshard/promshard:v${version}`,
      "quay.io/prometheus/prometheus:v3.16.0",
      "quay.io/thanos/thanos:v0.42.4",
    ]);
    assert.ok(images(template(["--set", "image.thanos.tag=v0.43.0"]).objects).has("quay.io/thanos/thanos:v0.43.0"));
  });

  it("the webhook: opted-in namespaces and pods only, sideEffects None, reinvoked; pods Fail by default, StatefulSets Ignore", () => {
    const mwc = template([]).objects.find((o) => o.kind === "MutatingWebhookConfiguration");
    assert.ok(mwc);
    for (const w of mwc.webhooks) {
      assert.deepEqual(w.namespaceSelector, { matchLabels: { "promshard.io/inject": "enabled" } }, w.name);
      assert.equal(w.sideEffects, "None");
      assert.equal(w.reinvocationPolicy, "IfNeeded");
      assert.equal(w.failurePolicy, w.name.startsWith("pods.") ? "Fail" : "Ignore", w.name);
      assert.equal(w.timeoutSeconds, 5);
    }
    const pods = mwc.webhooks.find((w: { name: string }) => w.name.startsWith("pods."));
    assert.match(pods.matchConditions[0].expression, /promshard\.io\/inject/);
  });

  it("Thanos Query: partial responses off, endpoints from promshard query-endpoints beside it", () => {
    const query = template([]).objects.find((o) => o.kind === "Deployment" && o.metadata.name.endsWith("-query"));
    assert.ok(query);
    const [q] = query.spec.template.spec.containers;
    // A native sidecar, started (its endpoint file written) before Query, which needs the file.
    const [writer] = query.spec.template.spec.initContainers;
    assert.equal(writer.restartPolicy, "Always");
    assert.equal(writer.startupProbe.httpGet.path, "/readyz");
    assert.ok(q.args.includes("--no-query.partial-response"), q.args.join(" "));
    assert.ok(q.args.includes("--endpoint.sd-config-file=/etc/thanos/endpoints/endpoints.yml"));
    assert.equal(writer.args[0], "query-endpoints");
    assert.ok(writer.args.includes("--file=/etc/thanos/endpoints/endpoints.yml"));
    assert.ok(writer.args.includes("--coordinator=t-promshard"), writer.args.join(" "));
    assert.ok(writer.args.includes(`--namespace=${RELEASE_NS}`), writer.args.join(" "));
    const replicaLabels = q.args.filter((a: string) => a.startsWith("--query.replica-label="));
    assert.deepEqual(replicaLabels, ["--query.replica-label=replica", "--query.replica-label=shard"]);
  });

  it("the coordinator finds its shards by label, cluster-wide by default: StatefulSets read everywhere, written only where shards run", () => {
    const { objects } = template([]);
    const args: string[] = coordinatorArgs(objects);
    assert.ok(args.includes("--coordinator.name=t-promshard"), args.join(" "));
    assert.ok(!args.some((a) => a.startsWith("--shards.statefulset") || a.startsWith("--shards.namespace")));
    assert.ok(args.includes(`--leader-elect.lease=${RELEASE_NS}/t-promshard-coordinator`), args.join(" "));
    const cluster = rules(objects, "ClusterRole");
    assert.ok(grants(cluster, "apps", "statefulsets", "watch"), "no cluster-wide StatefulSet watch");
    assert.ok(!grants(cluster, "apps", "statefulsets/scale", "patch"), "scale granted cluster-wide");
    assert.ok(!grants(cluster, "", "secrets", "create"), "secrets granted cluster-wide");
    const role = rules(objects, "Role", RELEASE_NS, "t-promshard-coordinator-monitoring");
    for (const [group, resource, verb] of [
      ["apps", "statefulsets/scale", "patch"],
      ["", "events", "create"],
      ["", "secrets", "create"],
      ["", "secrets", "update"],
    ] as const)
      assert.ok(grants(role, group, resource, verb), `Role: ${resource} ${verb}`);
    const secretUpdate = role.find((r) => r.resources.includes("secrets") && r.verbs.includes("update"));
    assert.deepEqual(secretUpdate?.resourceNames, ["t-promshard-last-good-config"]);
    const lease = rules(objects, "Role", RELEASE_NS, "t-promshard-coordinator-lease");
    assert.ok(grants(lease, "coordination.k8s.io", "leases", "update"));
  });

  it("the coordinator is told Query's address, and with a Store Gateway waits for it before a shard goes", () => {
    const plain = coordinatorArgs(template([]).objects);
    assert.ok(plain.includes(`--thanos.query-url=http://t-promshard-query.${RELEASE_NS}.svc:9090`), plain.join(" "));
    assert.ok(!plain.some((a) => a.startsWith("--scale-down.store-url")), plain.join(" "));
    const { objects } = template(matrix["Store Gateway, Ruler, upload, PVCs"] ?? []);
    const args = coordinatorArgs(objects);
    assert.ok(args.includes(`--scale-down.store-url=http://t-promshard-store.${RELEASE_NS}.svc:10902`), args.join(" "));
    assert.ok(
      args.includes(`--scale-down.query-url=dns+http://t-promshard-query-headless.${RELEASE_NS}.svc:9090`),
      args.join(" "),
    );
    const headless = objects.find((o) => o.kind === "Service" && o.metadata.name === "t-promshard-query-headless");
    assert.equal(headless?.spec.clusterIP, "None");
    assert.deepEqual(
      headless?.spec.selector,
      objects.find((o) => o.kind === "Service" && o.metadata.name === "t-promshard-query")?.spec.selector,
    );
    const store = objects.find((o) => o.kind === "StatefulSet" && o.metadata.name === "t-promshard-store");
    assert.ok(store, "no Store Gateway");
    assert.ok(store.spec.template.spec.containers[0].args.includes("--sync-block-duration=1m"));
    const noQuery = coordinatorArgs(template(["--set", "thanos.query.enabled=false"]).objects);
    assert.ok(!noQuery.some((a) => a.startsWith("--thanos.query-url")), noQuery.join(" "));
    const storeNoQuery = coordinatorArgs(
      template([...(matrix["Store Gateway, Ruler, upload, PVCs"] ?? []), "--set", "thanos.query.enabled=false"])
        .objects,
    );
    assert.ok(
      storeNoQuery.some((a) => a.startsWith("--scale-down.store-url")),
      storeNoQuery.join(" "),
    );
    assert.ok(!storeNoQuery.some((a) => a.startsWith("--scale-down.query-url")), storeNoQuery.join(" "));
  });

  it("a FILESYSTEM bucket: the chart's objstore Secret beside the shards and the Store Gateway, the volume in each, mounted into the shards' Thanos sidecars by annotation", () => {
    const { objects } = template(
      matrix["a FILESYSTEM bucket on a hostPath, shards in their own namespace, Store Gateway, upload"] ?? [],
    );
    const secrets = objects.filter((o) => o.kind === "Secret" && o.metadata.name === "t-promshard-objstore");
    assert.deepEqual(secrets.map((o) => o.metadata.namespace).sort(), [RELEASE_NS, SHARDS_NS]);
    for (const o of secrets)
      assert.equal(o.stringData["objstore.yml"], "type: FILESYSTEM\nconfig:\n  directory: /var/thanos/bucket\n");
    const volume = { name: "thanos-bucket", hostPath: { path: "/var/lib/promshard-bucket", type: "Directory" } };
    const sts = objects.find((o) => o.kind === "StatefulSet" && o.metadata.name === "t-promshard-shard");
    const annotations = sts?.spec.template.metadata.annotations;
    assert.equal(annotations["promshard.io/thanos-objstore-secret"], "t-promshard-objstore");
    assert.equal(annotations["promshard.io/thanos-volume-mounts"], "thanos-bucket:/var/thanos/bucket");
    assert.deepEqual(
      sts?.spec.template.spec.volumes.find((v: { name: string }) => v.name === "thanos-bucket"),
      volume,
    );
    // The user's containers do not see it: the webhook mounts it into its Thanos sidecar alone.
    for (const c of sts?.spec.template.spec.containers ?? [])
      assert.ok(!c.volumeMounts.some((m: { name: string }) => m.name === "thanos-bucket"), c.name);
    for (const [name, readOnly] of [
      ["t-promshard-store", true],
      ["t-promshard-ruler", false],
    ] as const) {
      const spec = objects.find((o) => o.kind === "StatefulSet" && o.metadata.name === name)?.spec.template.spec;
      assert.deepEqual(
        spec.volumes.find((v: { name: string }) => v.name === "thanos-bucket"),
        volume,
        name,
      );
      assert.deepEqual(
        spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === "thanos-bucket"),
        { name: "thanos-bucket", mountPath: "/var/thanos/bucket", readOnly },
        name,
      );
      assert.equal(
        spec.volumes.find((v: { name: string }) => v.name === "objstore").secret.secretName,
        "t-promshard-objstore",
      );
    }
    assert.ok(
      coordinatorArgs(objects).includes("--scale-down.store-url=http://t-promshard-store.monitoring.svc:10902"),
    );
  });

  it("the webhook pauses stopping shard pods (preStop) by the API server's version, 5 s by default", () => {
    const webhookArgs = (args: string[]) =>
      template(args).objects.find((o) => o.kind === "Deployment" && o.metadata.name === "t-promshard-webhook")?.spec
        .template.spec.containers[0].args as string[];
    const preStop = (args: string[]) => webhookArgs(args).filter((a) => a.startsWith("--pre-stop."));
    assert.deepEqual(preStop([]), ["--pre-stop.delay=5s", "--pre-stop.action=auto"]);
    assert.deepEqual(preStop(["--set", "webhook.preStop.seconds=0", "--set", "webhook.preStop.action=exec"]), [
      "--pre-stop.delay=0s",
      "--pre-stop.action=exec",
    ]);
  });

  it("without the example, found by label: the release namespace is where it may scale", () => {
    const { objects } = template(["--set", "shards.enabled=false"]);
    const roles = objects.filter((o) => o.kind === "Role" && o.metadata.name === "t-promshard-coordinator-monitoring");
    assert.deepEqual(
      roles.map((o) => o.metadata.namespace),
      [RELEASE_NS],
    );
    assert.ok(
      grants(
        rules(objects, "Role", RELEASE_NS, "t-promshard-coordinator-monitoring"),
        "apps",
        "statefulsets/scale",
        "patch",
      ),
    );
  });

  it("coordinator.shards.namespace: StatefulSets read in that namespace only, Query lists its pods", () => {
    const { objects } = template(matrix["shards found in one namespace, two replica groups, no leader election"] ?? []);
    const args = coordinatorArgs(objects);
    assert.ok(args.includes(`--shards.namespace=${SHARDS_NS}`), args.join(" "));
    assert.ok(args.includes("--no-leader-elect"), args.join(" "));
    assert.ok(
      !grants(rules(objects, "ClusterRole"), "apps", "statefulsets", "watch"),
      "cluster-wide StatefulSet watch",
    );
    const role = rules(objects, "Role", SHARDS_NS, "t-promshard-coordinator-monitoring");
    assert.ok(grants(role, "apps", "statefulsets", "watch"));
    assert.ok(!objects.some((o) => o.kind === "Role" && o.metadata.name.endsWith("-lease")));
    const query = objects.find((o) => o.kind === "Deployment" && o.metadata.name.endsWith("-query"));
    assert.ok(query?.spec.template.spec.initContainers[0].args.includes(`--namespace=${SHARDS_NS}`));
  });

  it("shards.replicaGroups: one labelled StatefulSet per group, selectors apart, annotated with its group", () => {
    const sets = template(
      matrix["shards found in one namespace, two replica groups, no leader election"] ?? [],
    ).objects.filter((o) => o.kind === "StatefulSet");
    assert.deepEqual(
      sets.map((o) => o.metadata.name),
      ["t-promshard-shard", "t-promshard-shard-g1"],
    );
    for (const [g, o] of sets.entries()) {
      assert.equal(o.metadata.labels?.["promshard.io/coordinator"], "t-promshard");
      assert.equal(o.spec.selector.matchLabels["promshard.io/replica-group"], String(g));
      assert.equal(o.spec.template.metadata.annotations["promshard.io/replica-group"], String(g));
      assert.equal(o.spec.serviceName, "t-promshard-shard");
    }
  });

  it("the example shards carry the inject annotations and start at 0 replicas", () => {
    const sts = template([]).objects.find((o) => o.kind === "StatefulSet");
    assert.ok(sts);
    assert.equal(sts.spec.replicas, 0);
    assert.equal(sts.spec.template.metadata.annotations["promshard.io/inject"], "true");
    assert.equal(sts.spec.template.metadata.annotations["promshard.io/coordinator"], "t-promshard");
  });

  it("a ServiceMonitor only when the cluster serves its CRD", () => {
    const kinds = (args: string[]) => template(args).objects.map((o) => o.kind);
    assert.ok(!kinds([]).includes("ServiceMonitor"));
    assert.ok(kinds(matrix["prometheus-operator present"] ?? []).includes("ServiceMonitor"));
  });

  it("the Grafana dashboard queries only metrics promshard exports", () => {
    const cm = template([]).objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.endsWith("-dashboard"));
    assert.ok(cm);
    const used = new Set(String(cm.data["promshard.json"]).match(/promshard_[a-z_]+/g));
    assert.ok(used.size >= 10, [...used].join(", "));
    const src = spawnSync(
      "grep",
      ["-rhoE", 'name: "promshard_[a-z_]+"', fileURLToPath(new URL("../../src", import.meta.url))],
      {
        encoding: "utf8",
      },
    ).stdout;
    const exported = new Set([...src.matchAll(/"(promshard_[a-z_]+)"/g)].map((m) => m[1]));
    for (const name of used)
      assert.ok(exported.has(name.replace(/_bucket$/, "")), `${name} is not a metric src exports`);
  });

  const bad: [string, string[], RegExp][] = [
    ["an unknown key", ["--set", "coordinator.maxSerie=5"], /coordinator.*additional properties 'maxSerie'/],
    ["a budget below 1", ["--set", "coordinator.maxSeries=0"], /\/coordinator\/maxSeries/],
    ["a failure policy", ["--set", "webhook.failurePolicy=Maybe"], /\/webhook\/failurePolicy.*'Ignore', 'Fail'/],
    ["a duration", ["--set", "coordinator.interval=5 seconds"], /\/coordinator\/interval/],
    [
      "a StatefulSet reference",
      ["--set", "coordinator.shards.statefulsets={a/b/c}"],
      /\/coordinator\/shards\/statefulsets\/0/,
    ],
    ["a shards namespace", ["--set", "coordinator.shards.namespace=Shards"], /\/coordinator\/shards\/namespace/],
    ["no replica group", ["--set", "shards.replicaGroups=0"], /\/shards\/replicaGroups/],
    ["a pull policy", ["--set", "image.pullPolicy=Sometimes"], /\/image\/pullPolicy/],
    ["a log level", ["--set", "coordinator.logLevel=loud"], /\/coordinator\/logLevel/],
    ["an endpoint", ["--set", "thanos.query.extraEndpoints[0]=http://x"], /\/thanos\/query\/extraEndpoints\/0/],
    ["upload without a bucket", ["--set", "shards.upload=true"], /shards\.upload: .*thanos\.objstore\.existingSecret/],
    [
      "Store Gateway without a bucket",
      ["--set", "thanos.storeGateway.enabled=true"],
      /thanos\.objstore\.existingSecret/,
    ],
    [
      "example shards where the coordinator does not look",
      ["--set", `coordinator.shards.namespace=${SHARDS_NS}`],
      /coordinator\.shards\.namespace: .*shards\.namespace/,
    ],
    ["a sidecar auth mode", ["--set", "sidecarToken.auth=tokenreview"], /\/sidecarToken\/auth.*'token', 'kubernetes'/],
    ["a preStop action", ["--set", "webhook.preStop.action=wait"], /\/webhook\/preStop\/action/],
    ["a negative preStop pause", ["--set", "webhook.preStop.seconds=-1"], /\/webhook\/preStop\/seconds/],
    [
      "a relative bucket mount path",
      ["--set", "thanos.objstore.filesystem.mountPath=bucket"],
      /\/thanos\/objstore\/filesystem\/mountPath/,
    ],
    [
      "a named bucket volume",
      [
        "--set",
        "thanos.objstore.filesystem.volume.name=x",
        "--set",
        "thanos.objstore.filesystem.volume.emptyDir.medium=",
      ],
      /\/thanos\/objstore\/filesystem\/volume/,
    ],
    [
      "a bucket volume and a Secret of one's own",
      ["--set", "thanos.objstore.existingSecret=bucket", "--set", "thanos.objstore.filesystem.volume.hostPath.path=/x"],
      /thanos\.objstore\.filesystem\.volume: .*existingSecret/,
    ],
    [
      "TokenReview for sidecars of no known ServiceAccount",
      [
        "--set",
        "sidecarToken.auth=kubernetes",
        "--set",
        "shards.enabled=false",
        "--set",
        `coordinator.shards.statefulsets={${SHARDS_NS}/p}`,
      ],
      /sidecarToken\.serviceAccounts: /,
    ],
  ];
  for (const [what, args, message] of bad) {
    it(`refuses ${what}, naming the field`, () => {
      const r = helm(["template", "t", CHART_DIR, "-n", RELEASE_NS, ...args]);
      assert.notEqual(r.status, 0, `accepted ${args.join(" ")}`);
      assert.match(r.stderr, message);
    });
  }
});
