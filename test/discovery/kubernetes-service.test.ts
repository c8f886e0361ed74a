import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type KubeService, serviceTargetGroup, sourceForService } from "../../src/discovery/kubernetes/index.ts";

// Facts from Prometheus 3.16's discovery/kubernetes/service_test.go, restated as our own tables.

const M = "__meta_kubernetes_";

const svc = (name: string, spec: KubeService["spec"], status?: KubeService["status"]): KubeService => ({
  metadata: { name, namespace: "shop" },
  spec: { ports: [{ name: "web", protocol: "TCP", port: 8443 }], ...spec },
  ...(status ? { status } : {}),
});

describe("serviceTargetGroup", () => {
  it("addresses each port at <name>.<namespace>.svc and keys the group svc/<ns>/<name>", () => {
    const g = serviceTargetGroup({
      metadata: {
        name: "api",
        namespace: "shop",
        labels: { "test-label": "testvalue" },
        annotations: { "test-annotation": "x" },
      },
      spec: {
        type: "ClusterIP",
        clusterIP: "10.0.0.1",
        ports: [
          { name: "a", protocol: "TCP", port: 30900 },
          { name: "b", protocol: "UDP", port: 30901 },
        ],
      },
    });
    assert.equal(g.source, "svc/shop/api");
    assert.equal(sourceForService("shop", "api"), g.source);
    assert.deepEqual(g.labels, {
      [`${M}namespace`]: "shop",
      [`${M}service_annotation_test_annotation`]: "x",
      [`${M}service_annotationpresent_test_annotation`]: "true",
      [`${M}service_label_test_label`]: "testvalue",
      [`${M}service_labelpresent_test_label`]: "true",
      [`${M}service_name`]: "api",
    });
    assert.deepEqual(g.targets, [
      {
        __address__: "api.shop.svc:30900",
        [`${M}service_cluster_ip`]: "10.0.0.1",
        [`${M}service_port_name`]: "a",
        [`${M}service_port_number`]: "30900",
        [`${M}service_port_protocol`]: "TCP",
        [`${M}service_type`]: "ClusterIP",
      },
      {
        __address__: "api.shop.svc:30901",
        [`${M}service_cluster_ip`]: "10.0.0.1",
        [`${M}service_port_name`]: "b",
        [`${M}service_port_number`]: "30901",
        [`${M}service_port_protocol`]: "UDP",
        [`${M}service_type`]: "ClusterIP",
      },
    ]);
  });

  const cases: { name: string; service: KubeService; extra: Record<string, string> }[] = [
    {
      name: "ExternalName: external name instead of cluster IP",
      service: svc("ext", { type: "ExternalName", externalName: "FooExternalName" }),
      extra: { service_type: "ExternalName", service_external_name: "FooExternalName" },
    },
    {
      name: "LoadBalancer: the deprecated spec.loadBalancerIP without status IPs",
      service: svc("lb", { type: "LoadBalancer", clusterIP: "10.0.0.1", loadBalancerIP: "127.0.0.1" }),
      extra: { service_type: "LoadBalancer", service_cluster_ip: "10.0.0.1", service_loadbalancer_ip: "127.0.0.1" },
    },
    {
      name: "LoadBalancer: status ingress IPs joined by commas, hostnames skipped",
      service: svc(
        "lb",
        { type: "LoadBalancer", clusterIP: "10.0.0.1", loadBalancerIP: "127.0.0.1" },
        { loadBalancer: { ingress: [{ ip: "192.168.1.15" }, { hostname: "lb.example" }, { ip: "2001:db8::1" }] } },
      ),
      extra: {
        service_type: "LoadBalancer",
        service_cluster_ip: "10.0.0.1",
        service_loadbalancer_ip: "192.168.1.15,2001:db8::1",
      },
    },
    {
      name: "LoadBalancer without any IP: the label is present and empty",
      service: svc("lb", { type: "LoadBalancer", clusterIP: "10.0.0.1" }),
      extra: { service_type: "LoadBalancer", service_cluster_ip: "10.0.0.1", service_loadbalancer_ip: "" },
    },
    {
      name: "NodePort: only the cluster IP",
      service: svc("np", { type: "NodePort", clusterIP: "10.0.0.2" }),
      extra: { service_type: "NodePort", service_cluster_ip: "10.0.0.2" },
    },
    {
      name: "headless: cluster IP None",
      service: svc("h", { type: "ClusterIP", clusterIP: "None" }),
      extra: { service_type: "ClusterIP", service_cluster_ip: "None" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [t] = serviceTargetGroup(c.service).targets;
      const { __address__, ...rest } = t!;
      assert.equal(__address__, `${c.service.metadata!.name}.shop.svc:8443`);
      const want = Object.fromEntries(Object.entries(c.extra).map(([k, v]) => [M + k, v]));
      assert.deepEqual(rest, {
        [`${M}service_port_name`]: "web",
        [`${M}service_port_number`]: "8443",
        [`${M}service_port_protocol`]: "TCP",
        ...want,
      });
    });
  }

  it("has no targets without ports but keeps the group labels", () => {
    const g = serviceTargetGroup({ metadata: { name: "none", namespace: "shop" }, spec: { type: "ClusterIP" } });
    assert.deepEqual(g, {
      source: "svc/shop/none",
      targets: [],
      labels: { [`${M}namespace`]: "shop", [`${M}service_name`]: "none" },
    });
  });

  it("attach_metadata.namespace adds namespace labels and annotations", () => {
    const g = serviceTargetGroup(svc("api", { type: "ClusterIP", clusterIP: "10.0.0.1" }), {
      attachMetadata: { namespace: true },
      namespace: (n) => (n === "shop" ? { metadata: { name: "shop", labels: { team: "backend" } } } : undefined),
    });
    assert.equal(g.labels[`${M}namespace_label_team`], "backend");
    assert.equal(g.labels[`${M}namespace_labelpresent_team`], "true");
  });

  it("ignores node and pod metadata options", () => {
    const g = serviceTargetGroup(svc("api", { type: "ClusterIP" }), {
      attachMetadata: { node: true, deployment: true },
    });
    assert.equal(g.targets.length, 1);
  });
});
