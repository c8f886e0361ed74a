import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type KubeJob,
  type KubeNamespace,
  type KubeNode,
  type KubePod,
  type KubeReplicaSet,
  podTargetGroup,
  sourceForPod,
} from "../../src/discovery/kubernetes/index.ts";
import { PromshardError } from "../../src/errors.ts";

// Facts from Prometheus 3.16's discovery/kubernetes/pod_test.go, restated as our own tables.

const M = "__meta_kubernetes_";

function basePod(ns = "default"): KubePod {
  return {
    metadata: { name: "web-0", namespace: ns, uid: "uid-1" },
    spec: {
      nodeName: "node-a",
      containers: [{ name: "app", image: "app:1", ports: [{ name: "http", protocol: "TCP", containerPort: 8080 }] }],
    },
    status: {
      podIP: "10.1.2.3",
      hostIP: "192.168.0.7",
      phase: "Running",
      conditions: [{ type: "Ready", status: "True" }],
      containerStatuses: [{ name: "app", containerID: "containerd://abc" }],
    },
  };
}

const baseGroupLabels = (ns = "default") => ({
  [`${M}namespace`]: ns,
  [`${M}pod_name`]: "web-0",
  [`${M}pod_uid`]: "uid-1",
  [`${M}pod_ip`]: "10.1.2.3",
  [`${M}pod_host_ip`]: "192.168.0.7",
  [`${M}pod_node_name`]: "node-a",
  [`${M}pod_phase`]: "Running",
  [`${M}pod_ready`]: "true",
});

const baseTarget = {
  __address__: "10.1.2.3:8080",
  [`${M}pod_container_name`]: "app",
  [`${M}pod_container_id`]: "containerd://abc",
  [`${M}pod_container_image`]: "app:1",
  [`${M}pod_container_port_name`]: "http",
  [`${M}pod_container_port_number`]: "8080",
  [`${M}pod_container_port_protocol`]: "TCP",
  [`${M}pod_container_init`]: "false",
};

describe("podTargetGroup", () => {
  it("makes one target per container port and a port-less one per container without ports", () => {
    const pod: KubePod = {
      metadata: {
        name: "multi",
        namespace: "default",
        uid: "u-9",
        labels: { "app.kubernetes.io/name": "shop" },
        annotations: { "prometheus.io/scrape": "true" },
        ownerReferences: [
          { apiVersion: "v1", kind: "Other", name: "not-controller", uid: "x" },
          { apiVersion: "apps/v1", kind: "StatefulSet", name: "multi", uid: "y", controller: true },
        ],
      },
      spec: {
        nodeName: "node-a",
        containers: [
          {
            name: "main",
            image: "main:2",
            ports: [
              { name: "web", protocol: "TCP", containerPort: 9000 },
              { name: "dns", protocol: "UDP", containerPort: 9001 },
            ],
          },
          { name: "sidecar", image: "side:1" },
        ],
      },
      status: {
        podIP: "1.2.3.4",
        hostIP: "2.3.4.5",
        phase: "Running",
        conditions: [{ type: "Ready", status: "True" }],
        containerStatuses: [
          { name: "main", containerID: "docker://m" },
          { name: "sidecar", containerID: "containerd://s" },
        ],
      },
    };
    const g = podTargetGroup(pod);
    assert.equal(g.source, "pod/default/multi");
    assert.deepEqual(g.labels, {
      [`${M}namespace`]: "default",
      [`${M}pod_annotation_prometheus_io_scrape`]: "true",
      [`${M}pod_annotationpresent_prometheus_io_scrape`]: "true",
      [`${M}pod_controller_kind`]: "StatefulSet",
      [`${M}pod_controller_name`]: "multi",
      [`${M}pod_host_ip`]: "2.3.4.5",
      [`${M}pod_ip`]: "1.2.3.4",
      [`${M}pod_label_app_kubernetes_io_name`]: "shop",
      [`${M}pod_labelpresent_app_kubernetes_io_name`]: "true",
      [`${M}pod_name`]: "multi",
      [`${M}pod_node_name`]: "node-a",
      [`${M}pod_phase`]: "Running",
      [`${M}pod_ready`]: "true",
      [`${M}pod_uid`]: "u-9",
    });
    assert.deepEqual(g.targets, [
      {
        __address__: "1.2.3.4:9000",
        [`${M}pod_container_id`]: "docker://m",
        [`${M}pod_container_image`]: "main:2",
        [`${M}pod_container_init`]: "false",
        [`${M}pod_container_name`]: "main",
        [`${M}pod_container_port_name`]: "web",
        [`${M}pod_container_port_number`]: "9000",
        [`${M}pod_container_port_protocol`]: "TCP",
      },
      {
        __address__: "1.2.3.4:9001",
        [`${M}pod_container_id`]: "docker://m",
        [`${M}pod_container_image`]: "main:2",
        [`${M}pod_container_init`]: "false",
        [`${M}pod_container_name`]: "main",
        [`${M}pod_container_port_name`]: "dns",
        [`${M}pod_container_port_number`]: "9001",
        [`${M}pod_container_port_protocol`]: "UDP",
      },
      {
        __address__: "1.2.3.4",
        [`${M}pod_container_id`]: "containerd://s",
        [`${M}pod_container_image`]: "side:1",
        [`${M}pod_container_init`]: "false",
        [`${M}pod_container_name`]: "sidecar",
      },
    ]);
  });

  it("adds init containers after the regular ones, with their own statuses", () => {
    const pod = basePod();
    pod.spec!.initContainers = [{ name: "setup", image: "setup:1" }];
    pod.status!.initContainerStatuses = [{ name: "setup", containerID: "containerd://init" }];
    pod.status!.phase = "Pending";
    pod.status!.conditions = [{ type: "Ready", status: "False" }];
    const g = podTargetGroup(pod);
    assert.deepEqual(g.labels, { ...baseGroupLabels(), [`${M}pod_phase`]: "Pending", [`${M}pod_ready`]: "false" });
    assert.deepEqual(g.targets, [
      baseTarget,
      {
        __address__: "10.1.2.3",
        [`${M}pod_container_id`]: "containerd://init",
        [`${M}pod_container_image`]: "setup:1",
        [`${M}pod_container_init`]: "true",
        [`${M}pod_container_name`]: "setup",
      },
    ]);
  });

  it("keeps empty values: no Ready condition is unknown, a missing status is an empty container ID", () => {
    const pod = basePod();
    pod.status = { podIP: "10.1.2.3" };
    const g = podTargetGroup(pod);
    assert.equal(g.labels[`${M}pod_ready`], "unknown");
    assert.equal(g.labels[`${M}pod_phase`], "");
    assert.equal(g.labels[`${M}pod_host_ip`], "");
    assert.equal(g.targets[0]![`${M}pod_container_id`], "");
  });

  it("gives a pod without an IP an empty group under its source, like a deletion", () => {
    const pod = basePod();
    pod.status!.podIP = "";
    assert.deepEqual(podTargetGroup(pod), { source: "pod/default/web-0", targets: [], labels: {} });
    delete pod.status!.podIP;
    assert.deepEqual(podTargetGroup(pod), { source: sourceForPod("default", "web-0"), targets: [], labels: {} });
  });

  it("brackets IPv6 pod IPs in addresses only", () => {
    const pod = basePod();
    pod.status!.podIP = "fd00::5";
    const g = podTargetGroup(pod);
    assert.equal(g.targets[0]!.__address__, "[fd00::5]:8080");
    assert.equal(g.labels[`${M}pod_ip`], "fd00::5");
  });

  it("sets controller kind and name only when non-empty, from the first controller reference", () => {
    const pod = basePod();
    pod.metadata!.ownerReferences = [
      { apiVersion: "v1", kind: "", name: "x", uid: "1", controller: true },
      { apiVersion: "v1", kind: "ReplicaSet", name: "y", uid: "2", controller: true },
    ];
    const g = podTargetGroup(pod);
    assert.equal(g.labels[`${M}pod_controller_kind`], undefined);
    assert.equal(g.labels[`${M}pod_controller_name`], "x");
  });

  it("sanitizes label and annotation names and adds the present twins", () => {
    const pod = basePod();
    pod.metadata!.labels = { "test/label": "v", "a-b.c": "" };
    pod.metadata!.annotations = { "test/annotation": "w" };
    const g = podTargetGroup(pod);
    assert.equal(g.labels[`${M}pod_label_test_label`], "v");
    assert.equal(g.labels[`${M}pod_labelpresent_test_label`], "true");
    assert.equal(g.labels[`${M}pod_label_a_b_c`], "");
    assert.equal(g.labels[`${M}pod_labelpresent_a_b_c`], "true");
    assert.equal(g.labels[`${M}pod_annotation_test_annotation`], "w");
    assert.equal(g.labels[`${M}pod_annotationpresent_test_annotation`], "true");
  });

  describe("attach_metadata.node", () => {
    const node: KubeNode = { metadata: { name: "node-a", labels: { l1: "v1" } } };
    const lookup = (name: string) => (name === "node-a" ? node : undefined);

    it("adds the node's name and labels to the group", () => {
      const g = podTargetGroup(basePod(), { attachMetadata: { node: true }, node: lookup });
      assert.deepEqual(g.labels, {
        ...baseGroupLabels(),
        [`${M}node_name`]: "node-a",
        [`${M}node_label_l1`]: "v1",
        [`${M}node_labelpresent_l1`]: "true",
      });
      assert.deepEqual(g.targets, [baseTarget]);
    });

    it("drops pods whose node is unknown (filtered by the node selector)", () => {
      const pod = basePod();
      pod.spec!.nodeName = "node-b";
      const g = podTargetGroup(pod, { attachMetadata: { node: true }, node: lookup });
      assert.deepEqual(g, { source: "pod/default/web-0", targets: [], labels: {} });
    });

    it("ignores the node lookup when the option is off", () => {
      const pod = basePod();
      pod.spec!.nodeName = "node-b";
      assert.equal(podTargetGroup(pod, { node: lookup }).targets.length, 1);
    });

    it("refuses the option without a lookup", () => {
      assert.throws(() => podTargetGroup(basePod(), { attachMetadata: { node: true } }), PromshardError);
    });
  });

  it("attach_metadata.namespace adds the namespace's labels and annotations, not its name", () => {
    const ns: KubeNamespace = {
      metadata: { name: "team", labels: { app: "web", tier: "frontend" }, annotations: { build: "v3.4.5" } },
    };
    const g = podTargetGroup(basePod("team"), {
      attachMetadata: { namespace: true },
      namespace: (n) => (n === "team" ? ns : undefined),
    });
    assert.deepEqual(g.labels, {
      ...baseGroupLabels("team"),
      [`${M}namespace_annotation_build`]: "v3.4.5",
      [`${M}namespace_annotationpresent_build`]: "true",
      [`${M}namespace_label_app`]: "web",
      [`${M}namespace_labelpresent_app`]: "true",
      [`${M}namespace_label_tier`]: "frontend",
      [`${M}namespace_labelpresent_tier`]: "true",
    });
    assert.equal(g.source, "pod/team/web-0");
  });

  describe("deployment, job and cronjob metadata", () => {
    const owned = (kind: string, name: string): KubePod => {
      const pod = basePod();
      pod.metadata!.ownerReferences = [{ apiVersion: "v1", kind, name, uid: "o", controller: true }];
      return pod;
    };
    const rs: KubeReplicaSet = {
      metadata: {
        name: "web-rs",
        namespace: "default",
        ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "d", controller: true }],
      },
    };
    const job: KubeJob = {
      metadata: {
        name: "nightly-123",
        namespace: "default",
        ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name: "nightly", uid: "c", controller: true }],
      },
    };
    const replicaSet = (ns: string, n: string) => (ns === "default" && n === "web-rs" ? rs : undefined);
    const jobs = (ns: string, n: string) => (ns === "default" && n === "nightly-123" ? job : undefined);

    const cases: { name: string; pod: KubePod; attach: Record<string, boolean>; want: Record<string, string> }[] = [
      {
        name: "deployment from the ReplicaSet's controller",
        pod: owned("ReplicaSet", "web-rs"),
        attach: { deployment: true },
        want: { controller_kind: "ReplicaSet", controller_name: "web-rs", deployment_name: "web" },
      },
      {
        name: "no deployment without the option",
        pod: owned("ReplicaSet", "web-rs"),
        attach: {},
        want: { controller_kind: "ReplicaSet", controller_name: "web-rs" },
      },
      {
        name: "no deployment for an unknown ReplicaSet",
        pod: owned("ReplicaSet", "gone"),
        attach: { deployment: true },
        want: { controller_kind: "ReplicaSet", controller_name: "gone" },
      },
      {
        name: "job name needs no lookup",
        pod: owned("Job", "nightly-123"),
        attach: { job: true },
        want: { controller_kind: "Job", controller_name: "nightly-123", job_name: "nightly-123" },
      },
      {
        name: "cronjob alone does not add the job name",
        pod: owned("Job", "nightly-123"),
        attach: { cronjob: true },
        want: { controller_kind: "Job", controller_name: "nightly-123", cronjob_name: "nightly" },
      },
      {
        name: "both",
        pod: owned("Job", "nightly-123"),
        attach: { job: true, cronjob: true },
        want: {
          controller_kind: "Job",
          controller_name: "nightly-123",
          job_name: "nightly-123",
          cronjob_name: "nightly",
        },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const g = podTargetGroup(c.pod, { attachMetadata: c.attach, replicaSet, job: jobs });
        const got = Object.fromEntries(
          Object.entries(g.labels)
            .filter(([k]) => /^__meta_kubernetes_pod_(controller|deployment|job|cronjob)_/.test(k))
            .map(([k, v]) => [k.slice(`${M}pod_`.length), v]),
        );
        assert.deepEqual(got, c.want);
      });
    }
  });

  it("sorts labels and freezes the group", () => {
    const g = podTargetGroup(basePod());
    assert.deepEqual(Object.keys(g.labels), Object.keys(g.labels).sort());
    assert.ok(Object.isFrozen(g) && Object.isFrozen(g.labels) && Object.isFrozen(g.targets[0]));
  });
});
