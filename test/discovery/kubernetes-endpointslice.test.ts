import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  endpointSliceIndexKeys,
  endpointSliceTargetGroup,
  type KubeEndpointSlice,
  type KubePod,
  type KubernetesContext,
  type KubeService,
  sourceForEndpointSlice,
} from "../../src/discovery/kubernetes/index.ts";

// Facts from Prometheus 3.16's discovery/kubernetes/endpointslice_test.go, restated as our own tables.

const M = "__meta_kubernetes_";
type L = Record<string, string>;
const meta = (labels: L) => Object.fromEntries(Object.entries(labels).map(([k, v]) => [M + k, v]));
const sorted = (ts: readonly L[]) => [...ts].map((t) => JSON.stringify(Object.entries(t).sort())).sort();

function slice(): KubeEndpointSlice {
  return {
    metadata: {
      name: "web-abc",
      namespace: "default",
      labels: { "kubernetes.io/service-name": "web" },
      annotations: { "test.annotation": "test" },
    },
    addressType: "IPv4",
    ports: [{ name: "testport", port: 9000, protocol: "TCP", appProtocol: "http" }],
    endpoints: [
      {
        addresses: ["1.2.3.4"],
        conditions: { ready: true, serving: true, terminating: false },
        hostname: "testendpoint1",
        targetRef: {},
        nodeName: "foobar",
        deprecatedTopology: { topology: "value" },
        zone: "us-east-1a",
      },
      { addresses: ["2.3.4.5"], conditions: { ready: true, serving: true, terminating: false }, zone: "us-east-1b" },
      { addresses: ["3.4.5.6"], conditions: { ready: false, serving: true, terminating: true }, zone: "us-east-1c" },
      {
        addresses: ["4.5.6.7"],
        conditions: { ready: true, serving: true, terminating: false },
        targetRef: { kind: "Node", name: "barbaz" },
        zone: "us-east-1a",
      },
    ],
  };
}

const portLabels = {
  endpointslice_port: "9000",
  endpointslice_port_app_protocol: "http",
  endpointslice_port_name: "testport",
  endpointslice_port_protocol: "TCP",
};
const cond = (ready: string, serving: string, terminating: string) => ({
  endpointslice_endpoint_conditions_ready: ready,
  endpointslice_endpoint_conditions_serving: serving,
  endpointslice_endpoint_conditions_terminating: terminating,
});

const sliceGroupLabels = meta({
  namespace: "default",
  endpointslice_address_type: "IPv4",
  endpointslice_name: "web-abc",
  endpointslice_label_kubernetes_io_service_name: "web",
  endpointslice_labelpresent_kubernetes_io_service_name: "true",
  endpointslice_annotation_test_annotation: "test",
  endpointslice_annotationpresent_test_annotation: "true",
});

const lookups = (pods: KubePod[], services: KubeService[] = []): KubernetesContext => ({
  pod: (ns, n) => pods.find((p) => p.metadata?.namespace === ns && p.metadata?.name === n),
  service: (ns, n) => services.find((s) => s.metadata?.namespace === ns && s.metadata?.name === n),
});

describe("endpointSliceTargetGroup", () => {
  it("labels each endpoint address with the set port and endpoint fields only", () => {
    const g = endpointSliceTargetGroup(slice());
    assert.equal(g.source, "endpointslice/default/web-abc");
    assert.equal(sourceForEndpointSlice("default", "web-abc"), g.source);
    assert.deepEqual(g.labels, sliceGroupLabels);
    assert.deepEqual(g.targets, [
      {
        __address__: "1.2.3.4:9000",
        ...meta({
          ...portLabels,
          ...cond("true", "true", "false"),
          endpointslice_address_target_kind: "",
          endpointslice_address_target_name: "",
          endpointslice_endpoint_hostname: "testendpoint1",
          endpointslice_endpoint_node_name: "foobar",
          endpointslice_endpoint_topology_present_topology: "true",
          endpointslice_endpoint_topology_topology: "value",
          endpointslice_endpoint_zone: "us-east-1a",
        }),
      },
      {
        __address__: "2.3.4.5:9000",
        ...meta({ ...portLabels, ...cond("true", "true", "false"), endpointslice_endpoint_zone: "us-east-1b" }),
      },
      {
        __address__: "3.4.5.6:9000",
        ...meta({ ...portLabels, ...cond("false", "true", "true"), endpointslice_endpoint_zone: "us-east-1c" }),
      },
      {
        __address__: "4.5.6.7:9000",
        ...meta({
          ...portLabels,
          ...cond("true", "true", "false"),
          endpointslice_address_target_kind: "Node",
          endpointslice_address_target_name: "barbaz",
          endpointslice_endpoint_zone: "us-east-1a",
        }),
      },
    ]);
  });

  it("uses the bare address for a port without a number, and omits unset port fields", () => {
    const s: KubeEndpointSlice = {
      metadata: { name: "x", namespace: "default" },
      addressType: "IPv6",
      ports: [{}],
      endpoints: [{ addresses: ["fd00::1"] }],
    };
    assert.deepEqual(endpointSliceTargetGroup(s).targets, [{ __address__: "fd00::1" }]);
    s.ports = [{ port: 80 }];
    assert.deepEqual(endpointSliceTargetGroup(s).targets, [
      { __address__: "[fd00::1]:80", ...meta({ endpointslice_port: "80" }) },
    ]);
  });

  it("makes no targets from a slice without ports", () => {
    const s = slice();
    s.ports = [];
    assert.deepEqual(endpointSliceTargetGroup(s).targets, []);
  });

  it("adds the service named by kubernetes.io/service-name", () => {
    const service: KubeService = { metadata: { name: "web", namespace: "default", labels: { "app/name": "test" } } };
    const g = endpointSliceTargetGroup(slice(), lookups([], [service]));
    assert.deepEqual(g.labels, {
      ...sliceGroupLabels,
      ...meta({ service_name: "web", service_label_app_name: "test", service_labelpresent_app_name: "true" }),
    });
  });

  it("attach_metadata.node: a Node targetRef wins over nodeName", () => {
    const s = slice();
    s.endpoints![3]!.nodeName = "foobar";
    const g = endpointSliceTargetGroup(s, {
      attachMetadata: { node: true },
      node: (n) => ({ metadata: { name: n, labels: { az: `az-${n}` } } }),
    });
    assert.equal(g.targets[0]![`${M}node_label_az`], "az-foobar");
    assert.equal(g.targets[1]![`${M}node_name`], undefined);
    assert.equal(g.targets[3]![`${M}node_label_az`], "az-barbaz");
  });

  it("attaches pod labels, takes the container protocol from the container port, adds uncovered ports", () => {
    const p: KubePod = {
      metadata: { name: "testpod", namespace: "default", uid: "deadbeef" },
      spec: {
        nodeName: "testnode",
        containers: [
          { name: "c1", image: "c1:latest", ports: [{ name: "mainport", containerPort: 9000, protocol: "SCTP" }] },
          { name: "c2", image: "c2:latest", ports: [{ name: "sideport", containerPort: 9001, protocol: "TCP" }] },
        ],
      },
      status: { hostIP: "2.3.4.5", podIP: "1.2.3.4" },
    };
    const s: KubeEndpointSlice = {
      metadata: { name: "testendpoints", namespace: "default" },
      addressType: "IPv4",
      ports: [{ name: "testport", port: 9000, protocol: "TCP" }],
      endpoints: [
        {
          addresses: ["4.3.2.1"],
          targetRef: { kind: "Pod", name: "testpod", namespace: "default" },
          conditions: { ready: false },
        },
      ],
    };
    const pl = meta({
      pod_name: "testpod",
      pod_ip: "1.2.3.4",
      pod_ready: "unknown",
      pod_phase: "",
      pod_node_name: "testnode",
      pod_host_ip: "2.3.4.5",
      pod_uid: "deadbeef",
    });
    const g = endpointSliceTargetGroup(s, lookups([p]));
    assert.deepEqual(
      g.labels,
      meta({ namespace: "default", endpointslice_address_type: "IPv4", endpointslice_name: "testendpoints" }),
    );
    assert.deepEqual(
      sorted(g.targets),
      sorted([
        {
          __address__: "4.3.2.1:9000",
          ...meta({
            endpointslice_address_target_kind: "Pod",
            endpointslice_address_target_name: "testpod",
            endpointslice_endpoint_conditions_ready: "false",
            endpointslice_port: "9000",
            endpointslice_port_name: "testport",
            endpointslice_port_protocol: "TCP",
            pod_container_name: "c1",
            pod_container_image: "c1:latest",
            pod_container_port_name: "mainport",
            pod_container_port_number: "9000",
            pod_container_port_protocol: "SCTP",
            pod_container_init: "false",
          }),
          ...pl,
        },
        {
          __address__: "1.2.3.4:9001",
          ...meta({
            pod_container_name: "c2",
            pod_container_image: "c2:latest",
            pod_container_port_name: "sideport",
            pod_container_port_number: "9001",
            pod_container_port_protocol: "TCP",
            pod_container_init: "false",
          }),
          ...pl,
        },
      ]),
    );
  });

  describe("dual-stack services (new in Prometheus 3.16)", () => {
    const dual = (policy: string, families: string[]): KubeService => ({
      metadata: { name: "testsvc", namespace: "default" },
      spec: { ipFamilyPolicy: policy, ipFamilies: families },
    });
    const s = (type: string, addr: string): KubeEndpointSlice => ({
      metadata: { name: `testsvc-${type}`, namespace: "default", labels: { "kubernetes.io/service-name": "testsvc" } },
      addressType: type,
      ports: [{ name: "http", port: 9000, protocol: "TCP" }],
      endpoints: [{ addresses: [addr], conditions: { ready: true } }],
    });
    const cases: [string, KubeService, KubeEndpointSlice, number][] = [
      [
        "PreferDualStack, IPv4 primary: IPv4 slice kept",
        dual("PreferDualStack", ["IPv4", "IPv6"]),
        s("IPv4", "1.2.3.4"),
        1,
      ],
      [
        "PreferDualStack, IPv4 primary: IPv6 slice empty",
        dual("PreferDualStack", ["IPv4", "IPv6"]),
        s("IPv6", "fd00::1"),
        0,
      ],
      ["RequireDualStack: secondary slice empty", dual("RequireDualStack", ["IPv4", "IPv6"]), s("IPv6", "fd00::1"), 0],
      ["IPv6 primary: IPv4 slice empty", dual("PreferDualStack", ["IPv6", "IPv4"]), s("IPv4", "1.2.3.4"), 0],
      ["IPv6 primary: IPv6 slice kept", dual("PreferDualStack", ["IPv6", "IPv4"]), s("IPv6", "fd00::1"), 1],
      ["SingleStack IPv6 unaffected", dual("SingleStack", ["IPv6"]), s("IPv6", "fd00::1"), 1],
      ["SingleStack with a mismatching slice unaffected", dual("SingleStack", ["IPv4"]), s("IPv6", "fd00::1"), 1],
      ["no ipFamilies: unaffected", dual("PreferDualStack", []), s("IPv6", "fd00::1"), 1],
    ];
    for (const [name, service, sl, n] of cases) {
      it(name, () => {
        const g = endpointSliceTargetGroup(sl, lookups([], [service]));
        assert.equal(g.targets.length, n);
        assert.deepEqual(
          g.labels,
          meta({
            namespace: "default",
            endpointslice_address_type: sl.addressType!,
            endpointslice_name: sl.metadata!.name!,
            endpointslice_label_kubernetes_io_service_name: "testsvc",
            endpointslice_labelpresent_kubernetes_io_service_name: "true",
            service_name: "testsvc",
          }),
        );
      });
    }
    it("an unknown service never suppresses targets", () => {
      assert.equal(endpointSliceTargetGroup(s("IPv6", "fd00::1")).targets.length, 1);
    });
  });

  it("indexes the service and the nodes of Pod- and Node-targeted endpoints", () => {
    const s = slice();
    s.endpoints![1]!.targetRef = { kind: "Pod", name: "p", namespace: "default" };
    s.endpoints![1]!.nodeName = "n1";
    assert.deepEqual(endpointSliceIndexKeys(s), { service: "default/web", nodes: ["n1", "barbaz"] });
  });
});
