import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ingressTargetGroup,
  type KubeIngress,
  matchesHostnamePattern,
  sourceForIngress,
} from "../../src/discovery/kubernetes/index.ts";

// Facts from Prometheus 3.16's discovery/kubernetes/ingress_test.go, restated as our own tables.

const M = "__meta_kubernetes_";

function ingress(tls?: string[]): KubeIngress {
  return {
    metadata: {
      name: "shop",
      namespace: "default",
      labels: { "test/label": "testvalue" },
      annotations: { "test/annotation": "testannotationvalue" },
    },
    spec: {
      ingressClassName: "testclass",
      ...(tls ? { tls: [{ hosts: tls }] } : {}),
      rules: [
        {
          host: "example.com",
          http: {
            paths: [
              { path: "/", pathType: "Prefix" },
              { path: "/foo", pathType: "Prefix" },
            ],
          },
        },
        { host: "nobackend.example.com", http: {} },
        { host: "test.example.com", http: { paths: [{ pathType: "Prefix" }] } },
      ],
    },
  };
}

const target = (host: string, path: string, scheme: string) => ({
  __address__: host,
  [`${M}ingress_host`]: host,
  [`${M}ingress_path`]: path,
  [`${M}ingress_scheme`]: scheme,
});

describe("ingressTargetGroup", () => {
  const modes: [string, string[] | undefined, string, string][] = [
    ["no TLS", undefined, "http", "http"],
    ["TLS for both hosts", ["example.com", "test.example.com"], "https", "https"],
    ["TLS for one host", ["example.com"], "https", "http"],
    ["wildcard TLS host", ["*.example.com"], "http", "https"],
  ];
  for (const [name, tls, scheme1, scheme2] of modes) {
    it(`one target per path: ${name}`, () => {
      const g = ingressTargetGroup(ingress(tls));
      assert.equal(g.source, "ingress/default/shop");
      assert.deepEqual(g.targets, [
        target("example.com", "/", scheme1),
        target("example.com", "/foo", scheme1),
        target("test.example.com", "/", scheme2),
      ]);
      assert.deepEqual(g.labels, {
        [`${M}ingress_annotation_test_annotation`]: "testannotationvalue",
        [`${M}ingress_annotationpresent_test_annotation`]: "true",
        [`${M}ingress_class_name`]: "testclass",
        [`${M}ingress_label_test_label`]: "testvalue",
        [`${M}ingress_labelpresent_test_label`]: "true",
        [`${M}ingress_name`]: "shop",
        [`${M}namespace`]: "default",
      });
    });
  }

  it("treats a rule without http as the single path /, and keeps an empty host", () => {
    const g = ingressTargetGroup({ metadata: { name: "x", namespace: "ns" }, spec: { rules: [{}, { host: "a.b" }] } });
    assert.deepEqual(g.targets, [target("", "/", "http"), target("a.b", "/", "http")]);
    assert.equal(g.labels[`${M}ingress_class_name`], undefined);
    assert.equal(sourceForIngress("ns", "x"), g.source);
  });

  it("matches TLS host patterns label by label, the wildcard only in front", () => {
    const cases: [string, string, boolean][] = [
      ["example.com", "example.com", true],
      ["*.example.com", "a.example.com", true],
      ["*.example.com", "a.b.example.com", false],
      ["*.example.com", "example.com", false],
      ["a.*.com", "a.b.com", false],
      ["*", "", true],
      ["*", "x", true],
    ];
    for (const [pattern, host, want] of cases)
      assert.equal(matchesHostnamePattern(pattern, host), want, `${pattern} ~ ${host}`);
  });

  it("attach_metadata.namespace adds the namespace's labels", () => {
    const g = ingressTargetGroup(ingress(), {
      attachMetadata: { namespace: true },
      namespace: () => ({ metadata: { name: "default", annotations: { owner: "web" } } }),
    });
    assert.equal(g.labels[`${M}namespace_annotation_owner`], "web");
    assert.equal(g.labels[`${M}namespace_annotationpresent_owner`], "true");
  });
});
