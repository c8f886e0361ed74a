import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  endpointsIndexKeys,
  endpointsTargetGroup,
  type KubeEndpoints,
  type KubeNode,
  type KubePod,
  type KubernetesContext,
  type KubeService,
  sourceForEndpoints,
} from "../../src/discovery/kubernetes/index.ts";

// Facts from Prometheus 3.16's discovery/kubernetes/endpoints_test.go, restated as our own tables.

const M = "__meta_kubernetes_";
type L = Record<string, string>;
const meta = (labels: L) => Object.fromEntries(Object.entries(labels).map(([k, v]) => [M + k, v]));

/** Three subsets: a ready address with hostname and node, one both ready and not ready, one targeting a Node. */
function threeSubsets(): KubeEndpoints {
  return {
    metadata: { name: "web", namespace: "default", annotations: { "test.annotation": "test" } },
    subsets: [
      {
        addresses: [{ ip: "1.2.3.4", hostname: "web-1", nodeName: "foobar" }],
        ports: [{ name: "testport", port: 9000, protocol: "TCP" }],
      },
      {
        addresses: [{ ip: "2.3.4.5" }],
        notReadyAddresses: [{ ip: "2.3.4.5" }],
        ports: [{ name: "testport", port: 9001, protocol: "TCP" }],
      },
      {
        addresses: [{ ip: "6.7.8.9", targetRef: { kind: "Node", name: "barbaz" } }],
        ports: [{ name: "testport", port: 9002, protocol: "TCP" }],
      },
    ],
  };
}

const port = (ready: string) => ({
  endpoint_port_name: "testport",
  endpoint_port_protocol: "TCP",
  endpoint_ready: ready,
});

const threeSubsetTargets = (extra: { foobar?: L; barbaz?: L } = {}) => [
  {
    __address__: "1.2.3.4:9000",
    ...meta({ ...port("true"), endpoint_hostname: "web-1", endpoint_node_name: "foobar", ...extra.foobar }),
  },
  { __address__: "2.3.4.5:9001", ...meta(port("true")) },
  { __address__: "2.3.4.5:9001", ...meta(port("false")) },
  {
    __address__: "6.7.8.9:9002",
    ...meta({
      ...port("true"),
      endpoint_address_target_kind: "Node",
      endpoint_address_target_name: "barbaz",
      ...extra.barbaz,
    }),
  },
];

const sorted = (ts: readonly L[]) => [...ts].map((t) => JSON.stringify(Object.entries(t).sort())).sort();

function pod(name: string, spec: KubePod["spec"], status: KubePod["status"] = {}): KubePod {
  return { metadata: { name, namespace: "default", uid: "deadbeef" }, spec: { nodeName: "testnode", ...spec }, status };
}

const podLabels = (over: L = {}) =>
  meta({
    pod_name: "testpod",
    pod_ip: "1.2.3.4",
    pod_ready: "unknown",
    pod_phase: "",
    pod_node_name: "testnode",
    pod_host_ip: "2.3.4.5",
    pod_uid: "deadbeef",
    ...over,
  });

const lookups = (pods: KubePod[], services: KubeService[] = []): KubernetesContext => ({
  pod: (ns, n) => pods.find((p) => p.metadata?.namespace === ns && p.metadata?.name === n),
  service: (ns, n) => services.find((s) => s.metadata?.namespace === ns && s.metadata?.name === n),
});

describe("endpointsTargetGroup", () => {
  it("makes one target per address and port, ready addresses before not-ready ones", () => {
    const g = endpointsTargetGroup(threeSubsets());
    assert.equal(g.source, "endpoints/default/web");
    assert.equal(sourceForEndpoints("default", "web"), g.source);
    assert.deepEqual(g.labels, {
      ...meta({
        namespace: "default",
        endpoints_name: "web",
        endpoints_annotation_test_annotation: "test",
        endpoints_annotationpresent_test_annotation: "true",
      }),
    });
    assert.deepEqual(g.targets, threeSubsetTargets());
  });

  it("adds the same-named service's name, labels and annotations to the group (not its ports or type)", () => {
    const service: KubeService = {
      metadata: { name: "web", namespace: "default", labels: { "app/name": "test" } },
      spec: { type: "ClusterIP", clusterIP: "10.0.0.9", ports: [{ port: 80 }] },
    };
    const g = endpointsTargetGroup(threeSubsets(), lookups([], [service]));
    assert.deepEqual(g.labels, {
      ...meta({
        namespace: "default",
        endpoints_name: "web",
        endpoints_annotation_test_annotation: "test",
        endpoints_annotationpresent_test_annotation: "true",
        service_name: "web",
        service_label_app_name: "test",
        service_labelpresent_app_name: "true",
      }),
    });
  });

  it("keeps the group labels of an Endpoints without subsets", () => {
    const g = endpointsTargetGroup({ metadata: { name: "web", namespace: "default" }, subsets: [] });
    assert.deepEqual(g, {
      source: "endpoints/default/web",
      targets: [],
      labels: meta({ namespace: "default", endpoints_name: "web" }),
    });
  });

  it("attach_metadata.node labels targets by nodeName, or by a Node targetRef", () => {
    const nodes: KubeNode[] = [
      { metadata: { name: "foobar", labels: { az: "us-east1" } } },
      { metadata: { name: "barbaz", labels: { az: "us-west2" } } },
    ];
    const g = endpointsTargetGroup(threeSubsets(), {
      attachMetadata: { node: true },
      node: (n) => nodes.find((x) => x.metadata?.name === n),
    });
    assert.deepEqual(
      g.targets,
      threeSubsetTargets({
        foobar: { node_name: "foobar", node_label_az: "us-east1", node_labelpresent_az: "true" },
        barbaz: { node_name: "barbaz", node_label_az: "us-west2", node_labelpresent_az: "true" },
      }),
    );
  });

  it("attaches pod labels to pod-backed targets and adds targets for the pod's other container ports", () => {
    const p = pod(
      "testpod",
      {
        containers: [
          { name: "c1", image: "c1:latest", ports: [{ name: "mainport", containerPort: 9000, protocol: "TCP" }] },
          { name: "c2", image: "c2:latest", ports: [{ name: "sideport", containerPort: 9001, protocol: "TCP" }] },
        ],
      },
      { hostIP: "2.3.4.5", podIP: "1.2.3.4" },
    );
    const ep: KubeEndpoints = {
      metadata: { name: "testendpoints", namespace: "default" },
      subsets: [
        {
          addresses: [{ ip: "4.3.2.1", targetRef: { kind: "Pod", name: "testpod", namespace: "default" } }],
          ports: [{ name: "testport", port: 9000, protocol: "TCP" }],
        },
      ],
    };
    const g = endpointsTargetGroup(ep, lookups([p]));
    assert.deepEqual(g.labels, meta({ namespace: "default", endpoints_name: "testendpoints" }));
    assert.deepEqual(
      sorted(g.targets),
      sorted([
        {
          __address__: "4.3.2.1:9000",
          ...meta({
            endpoint_port_name: "testport",
            endpoint_port_protocol: "TCP",
            endpoint_ready: "true",
            endpoint_address_target_kind: "Pod",
            endpoint_address_target_name: "testpod",
            pod_container_name: "c1",
            pod_container_image: "c1:latest",
            pod_container_port_name: "mainport",
            pod_container_port_number: "9000",
            pod_container_port_protocol: "TCP",
            pod_container_init: "false",
          }),
          ...podLabels(),
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
          ...podLabels(),
        },
      ]),
    );
  });

  it("matches endpoint ports against init (sidecar) containers too, and covers unmatched init ports", () => {
    const p = pod(
      "testpod",
      {
        initContainers: [
          { name: "ic1", image: "ic1:latest", ports: [{ name: "initport", containerPort: 1111, protocol: "TCP" }] },
          { name: "ic2", image: "ic2:latest", ports: [{ name: "initport", containerPort: 9111, protocol: "TCP" }] },
        ],
        containers: [
          { name: "c1", image: "c1:latest", ports: [{ name: "mainport", containerPort: 9000, protocol: "TCP" }] },
        ],
      },
      { hostIP: "2.3.4.5", podIP: "4.3.2.1" },
    );
    const ep: KubeEndpoints = {
      metadata: { name: "testsidecar", namespace: "default" },
      subsets: [
        {
          addresses: [{ ip: "4.3.2.1", targetRef: { kind: "Pod", name: "testpod", namespace: "default" } }],
          ports: [
            { name: "testport", port: 9000, protocol: "TCP" },
            { name: "initport", port: 9111, protocol: "TCP" },
          ],
        },
      ],
    };
    const g = endpointsTargetGroup(ep, lookups([p]));
    const pl = podLabels({ pod_ip: "4.3.2.1" });
    const direct = (port: string, name: string, c: string, cport: string, init: string) => ({
      __address__: `4.3.2.1:${port}`,
      ...meta({
        endpoint_address_target_kind: "Pod",
        endpoint_address_target_name: "testpod",
        endpoint_port_name: name,
        endpoint_port_protocol: "TCP",
        endpoint_ready: "true",
        pod_container_image: `${c}:latest`,
        pod_container_name: c,
        pod_container_port_name: cport,
        pod_container_port_number: port,
        pod_container_port_protocol: "TCP",
        pod_container_init: init,
      }),
      ...pl,
    });
    assert.deepEqual(
      sorted(g.targets),
      sorted([
        direct("9000", "testport", "c1", "mainport", "false"),
        direct("9111", "initport", "ic2", "initport", "true"),
        {
          __address__: "4.3.2.1:1111",
          ...meta({
            pod_container_image: "ic1:latest",
            pod_container_name: "ic1",
            pod_container_port_name: "initport",
            pod_container_port_number: "1111",
            pod_container_port_protocol: "TCP",
            pod_container_init: "true",
          }),
          ...pl,
        },
      ]),
    );
  });

  it("takes the container port protocol label from the endpoint port, and the last matching container", () => {
    const p = pod(
      "testpod",
      {
        containers: [{ name: "a", image: "a", ports: [{ name: "pa", containerPort: 53, protocol: "TCP" }] }],
        initContainers: [{ name: "b", image: "b", ports: [{ name: "pb", containerPort: 53, protocol: "SCTP" }] }],
      },
      { podIP: "1.2.3.4" },
    );
    const ep: KubeEndpoints = {
      metadata: { name: "dns", namespace: "default" },
      subsets: [
        {
          addresses: [{ ip: "1.2.3.4", targetRef: { kind: "Pod", name: "testpod", namespace: "default" } }],
          ports: [{ name: "dns", port: 53, protocol: "UDP" }],
        },
      ],
    };
    const [t, ...more] = endpointsTargetGroup(ep, lookups([p])).targets;
    assert.equal(more.length, 0);
    assert.equal(t![`${M}pod_container_name`], "b");
    assert.equal(t![`${M}pod_container_port_name`], "pb");
    assert.equal(t![`${M}pod_container_init`], "true");
    assert.equal(t![`${M}pod_container_port_protocol`], "UDP");
  });

  it("adds no extra targets for a pod without an IP, but still labels its direct targets", () => {
    const p = pod("testpod", {
      containers: [{ name: "c", image: "i", ports: [{ containerPort: 1 }, { containerPort: 2 }] }],
    });
    const ep: KubeEndpoints = {
      metadata: { name: "e", namespace: "default" },
      subsets: [
        {
          addresses: [{ ip: "9.9.9.9", targetRef: { kind: "Pod", name: "testpod", namespace: "default" } }],
          ports: [{ port: 1 }],
        },
      ],
    };
    const g = endpointsTargetGroup(ep, lookups([p]));
    assert.equal(g.targets.length, 1);
    assert.equal(g.targets[0]![`${M}pod_ip`], "");
    assert.equal(g.targets[0]![`${M}pod_container_port_protocol`], "");
  });

  it("does not look a pod up for a targetRef of another kind, or one the lookup does not know", () => {
    const ep: KubeEndpoints = {
      metadata: { name: "e", namespace: "default" },
      subsets: [
        {
          addresses: [
            { ip: "1.1.1.1", targetRef: { kind: "Service", name: "testpod", namespace: "default" } },
            { ip: "1.1.1.2", targetRef: { kind: "Pod", name: "testpod" } },
          ],
          ports: [{ port: 80 }],
        },
      ],
    };
    const p = pod("testpod", {}, { podIP: "1.1.1.1" });
    for (const t of endpointsTargetGroup(ep, lookups([p])).targets) assert.equal(t[`${M}pod_name`], undefined);
  });

  it("indexes pods and nodes of ready addresses with a targetRef, as Prometheus's informer does", () => {
    const ep = threeSubsets();
    ep.subsets![0]!.addresses![0]!.targetRef = { kind: "Pod", name: "p", namespace: "default" };
    ep.subsets![1]!.notReadyAddresses![0]!.targetRef = { kind: "Pod", name: "q", namespace: "default" };
    assert.deepEqual(endpointsIndexKeys(ep), { pods: ["default/p"], nodes: ["foobar", "barbaz"] });
  });
});
