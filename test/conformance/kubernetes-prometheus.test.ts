/**
 * kubernetes_sd_configs against the real thing: a real kube-apiserver holding a realistic set
 * of objects, Prometheus 3 discovering them itself, and `promshard targets` on the same
 * config. Discovered labels, labels and scrape URLs must be identical, role by role.
 * Debian's Prometheus 2.42 is built without kubernetes SD, so only 3.x binaries take part.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { dump } from "js-yaml";
import { buildReport } from "../../src/cli/targets.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";
import { prometheusBinaries, type RunningPrometheus, startPrometheus, waitForTargets } from "../support/prometheus.ts";
import { createObjects, kubernetesJobs } from "./kubernetes-objects.ts";

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v,
  );
}

const withKubernetesSd = prometheusBinaries().filter((b) => b.major >= 3);

describe("kubernetes_sd_configs match Prometheus", () => {
  let cp: ControlPlane;
  let token: string;
  before(async () => {
    assert.ok(withKubernetesSd.length > 0, "no Prometheus 3 binary: run `make tools`");
    cp = await startControlPlane();
    await createObjects(cp);
    token = (await cp.kubeconfigFor("monitoring", "prometheus")).token;
    await cp.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
      body: {
        metadata: { name: "prometheus-discovery" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", name: "prometheus", namespace: "monitoring" }],
      },
    });
  });
  after(() => cp?.stop());
  afterEach((t) => cp?.printLogsIfFailed(t));

  for (const bin of withKubernetesSd) {
    describe(`Prometheus ${bin.version}`, () => {
      let prom: RunningPrometheus | undefined;
      after(() => prom?.stop());

      it("every role, the annotation job and a namespace/selector job: identical targets", {
        timeout: 120_000,
      }, async () => {
        const access = { api_server: cp.server, tls_config: { ca_file: "ca.pem" }, bearer_token: token };
        const config = dump(
          { global: { scrape_interval: "1h" }, scrape_configs: kubernetesJobs(access) },
          { lineWidth: -1 },
        );
        prom = await startPrometheus(bin, { config, files: { "ca.pem": cp.caPem } });

        const ours = await buildReport(loadConfigFile(join(prom.dir, "prometheus.yml"), dialectFor(bin.version)));
        assert.deepEqual(
          ours.errors.map((e) => e.message),
          [],
        );
        const pools = new Set(ours.report.activeTargets.map((t) => t.scrapePool));
        assert.equal(pools.size, 8, `every job finds targets: ${[...pools]}`);
        const expected = ours.report.activeTargets.length + ours.report.droppedTargets.length;
        const theirs = await waitForTargets(
          prom,
          (t) => t.activeTargets.length + t.droppedTargets.length >= expected,
          30_000,
        ).catch(() => prom!.targets());

        const active = (list: { scrapePool: string; discoveredLabels: object; labels: object; scrapeUrl: string }[]) =>
          list
            .map((t) => canonical({ pool: t.scrapePool, d: t.discoveredLabels, l: t.labels, url: t.scrapeUrl }))
            .sort();
        const dropped = (list: { discoveredLabels: object }[]) => list.map((t) => canonical(t.discoveredLabels)).sort();
        const o = active(ours.report.activeTargets);
        const p = active(theirs.activeTargets);
        const onlyOurs = o.filter((x) => !p.includes(x));
        const onlyTheirs = p.filter((x) => !o.includes(x));
        assert.deepEqual(
          { onlyOurs, onlyTheirs },
          { onlyOurs: [], onlyTheirs: [] },
          `active targets differ (${o.length} ours, ${p.length} Prometheus's)`,
        );
        assert.deepEqual(dropped(ours.report.droppedTargets), dropped(theirs.droppedTargets));
      });
    });
  }
});
