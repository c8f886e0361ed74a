/**
 * What a coordinator's ServiceAccount must be granted, against a real kube-apiserver 1.37 with
 * RBAC: the Role a chart gives it for `--shards.statefulset NS/NAME` (every part the scaler and
 * the last good config's Secret use, and nothing more), and why `get` on the StatefulSet alone
 * is not enough (its informer lists and watches it by name); and found by label with no
 * --shards.namespace: list and watch on StatefulSets cluster-wide, the rest per namespace.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { StatefulSetScaler } from "../../src/coordinator/statefulset-scaler.ts";
import { kubeApi } from "../../src/kube/api.ts";
import { kubeClientFor } from "../../src/kube/client.ts";
import { InformerPool } from "../../src/kube/informers.ts";
import { LastGoodSecrets } from "../../src/kube/last-good-secret.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";

const NS = "mon";
const log = pino({ level: "silent" });

/** The rules for --shards.statefulset NS/<names> with --coordinator.name promshard, in NS. */
function coordinatorRules(names: readonly string[]) {
  return [
    // The informer lists and watches them by name (fieldSelector metadata.name), RBAC's
    // resourceNames allow that; `get` alone does not.
    { apiGroups: ["apps"], resources: ["statefulsets"], resourceNames: names, verbs: ["get", "list", "watch"] },
    { apiGroups: ["apps"], resources: ["statefulsets/scale"], resourceNames: names, verbs: ["get", "patch"] },
    // Restart counts; the pods' names are not known in advance.
    { apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] },
    // The last good config (create cannot be limited by name).
    { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
    {
      apiGroups: [""],
      resources: ["secrets"],
      resourceNames: ["promshard-last-good-config"],
      verbs: ["get", "update"],
    },
    // Warning Events on StatefulSets it cannot use.
    { apiGroups: [""], resources: ["events"], verbs: ["create"] },
  ];
}

function statefulSet(name: string, annotations: Record<string, string> = {}, labels: Record<string, string> = {}) {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name, namespace: NS, labels },
    spec: {
      replicas: 1,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations: { "promshard.io/inject": "true", ...annotations } },
        spec: { containers: [{ name: "prometheus", image: "prom/prometheus" }] },
      },
    },
  };
}

describe("the coordinator's RBAC for --shards.statefulset", { timeout: 120_000 }, () => {
  let cp: ControlPlane;
  const pools: InformerPool[] = [];

  before(async () => {
    cp = await startControlPlane();
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: NS } } });
    for (const sts of [statefulSet("shards"), statefulSet("typo", { "promshard.io/replica-group": "first" })])
      await cp.api("POST", `/apis/apps/v1/namespaces/${NS}/statefulsets`, { body: sts });
  });
  after(async () => {
    for (const p of pools) p.stopAll();
    await cp?.stop();
  });

  /** A ServiceAccount bound to a Role with `rules` in NS, and a scaler running as it. */
  async function scalerAs(sa: string, rules: unknown[], logger = log) {
    const kc = await cp.kubeconfigFor(NS, sa);
    await cp.api("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, {
      body: { metadata: { name: sa }, rules },
    });
    await cp.api("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
      body: {
        metadata: { name: sa },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: sa },
        subjects: [{ kind: "ServiceAccount", name: sa, namespace: NS }],
      },
    });
    const pool = new InformerPool({ log: logger });
    pools.push(pool);
    const api = kubeApi(kc.path);
    const scaler = new StatefulSetScaler({
      api,
      client: kubeClientFor({}, { fallbackKubeconfig: kc.path }),
      pool,
      selection: {
        coordinator: "promshard",
        namespace: "",
        statefulSets: [
          { namespace: NS, name: "shards" },
          { namespace: NS, name: "typo" },
        ],
      },
      log,
    });
    return { scaler, api };
  }

  it("the listed rules are enough: it lists, scales, reads pods, keeps the Secret, tells of an unusable StatefulSet", async () => {
    const { scaler, api } = await scalerAs("coordinator", coordinatorRules(["shards", "typo"]));
    await Promise.race([
      scaler.start(),
      sleep(30_000).then(() => assert.fail("the StatefulSets were not listed within 30 s")),
    ]);
    await scaler.refresh();
    assert.deepEqual(
      scaler.groups().map((g) => g.name),
      ["shards"],
    );
    await scaler.scaleTo(3);
    const scale = await cp.api<{ spec: { replicas: number } }>(
      "GET",
      `/apis/apps/v1/namespaces/${NS}/statefulsets/shards/scale`,
    );
    assert.equal(scale.spec.replicas, 3);
    const events = await cp.api<{ items: { reason: string; involvedObject: { name: string } }[] }>(
      "GET",
      `/api/v1/namespaces/${NS}/events`,
    );
    assert.ok(
      events.items.some((e) => e.reason === "PromshardUnusable" && e.involvedObject.name === "typo"),
      "a Warning Event on the unusable StatefulSet",
    );
    const secrets = new LastGoodSecrets(api, "promshard", log);
    secrets.set("scrape_configs: []\n");
    await secrets.sync([NS]);
    secrets.set("scrape_configs: [] # changed\n");
    await secrets.sync([NS]);
    assert.deepEqual(await new LastGoodSecrets(api, "promshard", log).read([NS]), {
      text: "scrape_configs: [] # changed\n",
      namespace: NS,
    });
    scaler.stop();
  });

  it("found by label in every namespace (no --shards.namespace): the cluster-wide and per-namespace rules are enough", async () => {
    const HOME = "home";
    await cp.api("POST", `/apis/apps/v1/namespaces/${NS}/statefulsets`, {
      body: statefulSet("labelled", {}, { "promshard.io/coordinator": "promshard" }),
    });
    const kc = await cp.kubeconfigFor(HOME, "by-label");
    const subject = { kind: "ServiceAccount", name: "by-label", namespace: HOME };
    const rbac = "/apis/rbac.authorization.k8s.io/v1";
    await cp.api("POST", `${rbac}/clusterroles`, {
      body: {
        metadata: { name: "by-label" },
        rules: [{ apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["get", "list", "watch"] }],
      },
    });
    await cp.api("POST", `${rbac}/clusterrolebindings`, {
      body: {
        metadata: { name: "by-label" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "by-label" },
        subjects: [subject],
      },
    });
    // Where shards are: scale them (names not known in advance), their pods, the Secret, Events.
    // Home: the Secret it reads back at start (and the Lease, with leader election).
    const perNamespace: [string, unknown[]][] = [
      [
        NS,
        [
          { apiGroups: ["apps"], resources: ["statefulsets/scale"], verbs: ["get", "patch"] },
          ...coordinatorRules([]).slice(2),
        ],
      ],
      [HOME, coordinatorRules([]).slice(3, 5)],
    ];
    for (const [ns, rules] of perNamespace) {
      await cp.api("POST", `${rbac}/namespaces/${ns}/roles`, { body: { metadata: { name: "by-label" }, rules } });
      await cp.api("POST", `${rbac}/namespaces/${ns}/rolebindings`, {
        body: {
          metadata: { name: "by-label" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "by-label" },
          subjects: [subject],
        },
      });
    }
    const pool = new InformerPool({ log });
    pools.push(pool);
    const api = kubeApi(kc.path);
    const scaler = new StatefulSetScaler({
      api,
      client: kubeClientFor({}, { fallbackKubeconfig: kc.path }),
      pool,
      selection: { coordinator: "promshard", namespace: "" },
      log,
    });
    await Promise.race([
      scaler.start(),
      sleep(30_000).then(() => assert.fail("the StatefulSets were not listed within 30 s")),
    ]);
    await scaler.refresh();
    assert.deepEqual(
      scaler.groups().map((g) => `${g.namespace}/${g.name}`),
      [`${NS}/labelled`],
    );
    await scaler.scaleTo(2);
    const scale = await cp.api<{ spec: { replicas: number } }>(
      "GET",
      `/apis/apps/v1/namespaces/${NS}/statefulsets/labelled/scale`,
    );
    assert.equal(scale.spec.replicas, 2);
    const secrets = new LastGoodSecrets(api, "promshard", log);
    secrets.set("scrape_configs: [] # by label\n");
    await secrets.sync([HOME, NS]);
    for (const ns of [HOME, NS])
      assert.equal(
        (await cp.request("GET", `/api/v1/namespaces/${ns}/secrets/promshard-last-good-config`)).status,
        200,
        `the Secret in ${ns}`,
      );
    assert.equal((await new LastGoodSecrets(api, "promshard", log).read([HOME]))?.namespace, HOME);
    scaler.stop();
  });

  it("get on the StatefulSet without list and watch: it is never listed", async () => {
    const rules = coordinatorRules(["shards", "typo"]);
    rules[0] = { apiGroups: ["apps"], resources: ["statefulsets"], resourceNames: ["shards", "typo"], verbs: ["get"] };
    const lines: { msg?: string; err?: { message?: string } }[] = [];
    const logger = pino({ level: "warn" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const { scaler } = await scalerAs("get-only", rules, logger);
    const listed = await Promise.race([scaler.start().then(() => true), sleep(5000).then(() => false)]);
    assert.equal(listed, false);
    const warned = lines.find((l) => l.msg === "kubernetes list/watch failed; retrying");
    assert.match(
      warned?.err?.message ?? "",
      /cannot list resource "statefulsets".*grant its ServiceAccount list and watch on it \(RBAC\)/,
      "the log line says what is missing",
    );
    scaler.stop();
  });
});
