import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type KubeNode, nodeTargetGroup, sourceForNode } from "../../src/discovery/kubernetes/index.ts";

// Facts from Prometheus 3.16's discovery/kubernetes/node_test.go, restated as our own tables.

const M = "__meta_kubernetes_";

function node(addresses: { type: string; address: string }[], extra: Partial<KubeNode> = {}): KubeNode {
  return {
    metadata: { name: "test", labels: { "test-label": "testvalue" }, annotations: { "test-annotation": "x" } },
    spec: { providerID: "aws:///nl-north-7b/i-0314" },
    status: { addresses, daemonEndpoints: { kubeletEndpoint: { Port: 10250 } } },
    ...extra,
  };
}

describe("nodeTargetGroup", () => {
  it("targets the kubelet port, sets instance to the node name, and labels the group", () => {
    const g = nodeTargetGroup(node([{ type: "InternalIP", address: "1.2.3.4" }]));
    assert.deepEqual(g, {
      source: "node/test",
      targets: [{ __address__: "1.2.3.4:10250", instance: "test", [`${M}node_address_InternalIP`]: "1.2.3.4" }],
      labels: {
        [`${M}node_annotation_test_annotation`]: "x",
        [`${M}node_annotationpresent_test_annotation`]: "true",
        [`${M}node_label_test_label`]: "testvalue",
        [`${M}node_labelpresent_test_label`]: "true",
        [`${M}node_name`]: "test",
        [`${M}node_provider_id`]: "aws:///nl-north-7b/i-0314",
      },
    });
    assert.equal(sourceForNode("test"), "node/test");
  });

  const priority: [string, { type: string; address: string }[], string][] = [
    [
      "InternalIP first",
      [
        { type: "Hostname", address: "h" },
        { type: "ExternalIP", address: "9.9.9.9" },
        { type: "InternalIP", address: "10.0.0.1" },
        { type: "InternalIP", address: "10.0.0.2" },
      ],
      "10.0.0.1:10250",
    ],
    [
      "then InternalDNS",
      [
        { type: "ExternalIP", address: "9.9.9.9" },
        { type: "InternalDNS", address: "n.internal" },
      ],
      "n.internal:10250",
    ],
    [
      "then ExternalIP",
      [
        { type: "ExternalDNS", address: "n.example" },
        { type: "ExternalIP", address: "9.9.9.9" },
      ],
      "9.9.9.9:10250",
    ],
    [
      "then ExternalDNS",
      [
        { type: "Hostname", address: "h" },
        { type: "ExternalDNS", address: "n.example" },
      ],
      "n.example:10250",
    ],
    [
      "then LegacyHostIP",
      [
        { type: "Hostname", address: "h" },
        { type: "LegacyHostIP", address: "8.8.8.8" },
      ],
      "8.8.8.8:10250",
    ],
    ["then Hostname", [{ type: "Hostname", address: "h" }], "h:10250"],
    ["IPv6 bracketed", [{ type: "InternalIP", address: "fd00::2" }], "[fd00::2]:10250"],
    ["an empty address still counts", [{ type: "InternalIP", address: "" }], ":10250"],
  ];
  for (const [name, addresses, want] of priority) {
    it(`address: ${name}`, () => assert.equal(nodeTargetGroup(node(addresses))?.targets[0]?.__address__, want));
  }

  it("labels the first address of every type, sanitizing the type", () => {
    const g = nodeTargetGroup(
      node([
        { type: "InternalIP", address: "10.0.0.1" },
        { type: "InternalIP", address: "10.0.0.2" },
        { type: "Custom.Type", address: "c" },
        { type: "Hostname", address: "h" },
      ]),
    );
    assert.deepEqual(g?.targets[0], {
      __address__: "10.0.0.1:10250",
      instance: "test",
      [`${M}node_address_Custom_Type`]: "c",
      [`${M}node_address_Hostname`]: "h",
      [`${M}node_address_InternalIP`]: "10.0.0.1",
    });
  });

  it("returns null (Prometheus sends nothing) without a usable address type", () => {
    assert.equal(nodeTargetGroup(node([])), null);
    assert.equal(nodeTargetGroup(node([{ type: "Other", address: "1.1.1.1" }])), null);
    assert.equal(nodeTargetGroup({ metadata: { name: "bare" } }), null);
  });

  it("uses port 0 when the kubelet endpoint is missing", () => {
    const n = node([{ type: "InternalIP", address: "1.2.3.4" }]);
    n.status!.daemonEndpoints = {};
    assert.equal(nodeTargetGroup(n)?.targets[0]?.__address__, "1.2.3.4:0");
  });

  const conditions: [string, { type: string; status: string }[], Record<string, string>][] = [
    ["ready true", [{ type: "Ready", status: "True" }], { condition_ready: "true" }],
    ["ready false", [{ type: "Ready", status: "False" }], { condition_ready: "false" }],
    ["ready unknown", [{ type: "Ready", status: "Unknown" }], { condition_ready: "unknown" }],
    ["none", [], {}],
    [
      "several",
      [
        { type: "MemoryPressure", status: "False" },
        { type: "Ready", status: "True" },
        { type: "DiskPressure", status: "False" },
      ],
      { condition_memorypressure: "false", condition_ready: "true", condition_diskpressure: "false" },
    ],
    [
      "custom type lower-cased and sanitized",
      [{ type: "Kernel.Deadlock", status: "True" }],
      { condition_kernel_deadlock: "true" },
    ],
  ];
  for (const [name, conds, want] of conditions) {
    it(`conditions (new in 3.x): ${name}`, () => {
      const n = node([{ type: "InternalIP", address: "1.2.3.4" }], { metadata: { name: "test" } });
      n.status!.conditions = conds;
      const got = Object.fromEntries(
        Object.entries(nodeTargetGroup(n)!.labels)
          .filter(([k]) => k.startsWith(`${M}node_condition_`))
          .map(([k, v]) => [k.slice(`${M}node_`.length), v]),
      );
      assert.deepEqual(got, want);
    });
  }
});
