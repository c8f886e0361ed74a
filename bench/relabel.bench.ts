/**
 * Relabel throughput through the job every Kubernetes cluster runs: the kubernetes-pods
 * annotation job (~15 rules) over 10,000 pod targets, relabeling alone and full target
 * building (discovered labels -> final labels, scrape URL, identity). Goal: >= 200k targets/s.
 * The baseline row is the single hashmod rule of classic hand-kept sharding.
 */
import { parseConfig } from "../src/prom/config.ts";
import type { Labels } from "../src/prom/labels.ts";
import { applyRules, relabel } from "../src/prom/relabel.ts";
import { discoveredLabels, type TargetGroup, targetsForJob } from "../src/prom/targets.ts";
import { dialectFor } from "../src/prom/version.ts";
import { KUBERNETES_PODS_RELABEL } from "./kubernetes-pods.ts";
import { measure, printTable, writeResults } from "./lib.ts";

const TARGETS = 10_000;
const config = parseConfig(
  `
scrape_configs:
- job_name: kubernetes-pods
  kubernetes_sd_configs: [{role: pod}]
${KUBERNETES_PODS_RELABEL}- job_name: hashmod
  relabel_configs:
  - {source_labels: [__address__], modulus: 8, target_label: __tmp_hash, action: hashmod}
`,
  { dialect: dialectFor("3.16") },
);
const [podsJob, hashmodJob] = config.scrapeConfigs as [
  (typeof config.scrapeConfigs)[0],
  (typeof config.scrapeConfigs)[0],
];

function pod(i: number): Labels {
  const ns = `team-${i % 100}`;
  return {
    __address__: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
    __meta_kubernetes_namespace: ns,
    __meta_kubernetes_pod_name: `web-${i}-7f9c6d5b8-x2l4q`,
    __meta_kubernetes_pod_ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    __meta_kubernetes_pod_node_name: `node-${i % 50}`,
    __meta_kubernetes_pod_phase: "Running",
    __meta_kubernetes_pod_ready: "true",
    __meta_kubernetes_pod_uid: `0f5e${i.toString(16).padStart(8, "0")}-1c2d-4e5f-8a9b-0c1d2e3f4a5b`,
    __meta_kubernetes_pod_controller_kind: "ReplicaSet",
    __meta_kubernetes_pod_controller_name: `web-${i % 300}-7f9c6d5b8`,
    __meta_kubernetes_pod_container_name: "app",
    __meta_kubernetes_pod_container_port_name: "metrics",
    __meta_kubernetes_pod_container_port_number: "8080",
    __meta_kubernetes_pod_container_port_protocol: "TCP",
    __meta_kubernetes_pod_label_app: `web-${i % 300}`,
    __meta_kubernetes_pod_label_pod_template_hash: "7f9c6d5b8",
    __meta_kubernetes_pod_labelpresent_app: "true",
    __meta_kubernetes_pod_annotation_prometheus_io_scrape: i % 10 === 0 ? "false" : "true",
    __meta_kubernetes_pod_annotation_prometheus_io_port: "8080",
    __meta_kubernetes_pod_annotation_prometheus_io_path: "/metrics",
    __meta_kubernetes_pod_annotationpresent_prometheus_io_scrape: "true",
  };
}

const pods = Array.from({ length: TARGETS }, (_, i) => pod(i));
const groups: TargetGroup[] = pods.map((p, i) => ({ source: `pod/${i}`, targets: [p], labels: {} }));
const discovered: Map<string, string>[] = pods.map((p) => discoveredLabels(p, {}, podsJob));
const discoveredObjects = discovered.map((d) => Object.freeze(Object.fromEntries(d)));

const rows = [
  // Each run relabels a fresh copy of the discovered label map, as target building does.
  await measure("hashmod sharding rule (baseline)", () => {
    for (const d of discovered) applyRules(new Map(d), hashmodJob.relabelConfigs, hashmodJob.dialect);
  }),
  await measure("kubernetes-pods relabel (15 rules)", () => {
    for (const d of discovered) applyRules(new Map(d), podsJob.relabelConfigs, podsJob.dialect);
  }),
  await measure("same, label objects in and out", () => {
    for (const d of discoveredObjects) relabel(d, podsJob.relabelConfigs, podsJob.dialect);
  }),
  await measure("full target building", () => targetsForJob(groups, podsJob)),
].map((m) => ({ ...m, "targets/s": Math.round(TARGETS / (m.medianMs / 1000)) }));

printTable(rows, "hashmod sharding rule (baseline)");
const active = targetsForJob(groups, podsJob).active.length;
console.log(`${TARGETS} pods, ${active} active after relabeling; goal: >= 200000 targets/s through the 15 rules`);
writeResults("relabel", { targets: TARGETS, active, rows });
