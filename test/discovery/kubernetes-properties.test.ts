import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  type KubeEndpointSlice,
  type KubeEndpoints,
  type KubeIngress,
  type KubeNamespace,
  type KubeNode,
  type KubePod,
  type KubeReplicaSet,
  type KubernetesContext,
  type KubeService,
  type RoleObjects,
  sanitizeLabelName,
  sourceFor,
  targetGroupFor,
} from "../../src/discovery/kubernetes/index.ts";
import { isLegacyLabelName, type Labels } from "../../src/prom/labels.ts";
import type { KubernetesRole } from "../../src/prom/sd/kubernetes.ts";
import type { TargetGroup } from "../../src/prom/targets.ts";

type Named = { metadata?: { name?: string | null; namespace?: string | null } | null };
type Objects = {
  pods?: KubePod[];
  services?: KubeService[];
  endpoints?: KubeEndpoints[];
  endpointslices?: KubeEndpointSlice[];
  nodes?: KubeNode[];
  ingresses?: KubeIngress[];
  namespaces?: KubeNamespace[];
  replicasets?: KubeReplicaSet[];
  jobs?: KubeReplicaSet[];
};

const PRIMARY: Record<KubernetesRole, keyof Objects> = {
  pod: "pods",
  service: "services",
  endpoints: "endpoints",
  endpointslice: "endpointslices",
  node: "nodes",
  ingress: "ingresses",
};

/** Lookups answering from object lists, keyed like Prometheus's informer stores. */
function contextFor(objects: Objects, attachMetadata: KubernetesContext["attachMetadata"]): KubernetesContext {
  const find =
    <T extends Named>(list: T[] | undefined) =>
    (namespace: string, name: string) =>
      list?.find((o) => (o.metadata?.namespace ?? "") === namespace && (o.metadata?.name ?? "") === name);
  return {
    attachMetadata,
    pod: find(objects.pods),
    service: find(objects.services),
    node: (name) => find(objects.nodes)("", name),
    namespace: (name) => find(objects.namespaces)("", name),
    replicaSet: find(objects.replicasets),
    job: find(objects.jobs),
  };
}

const canonical = (l: Labels) => JSON.stringify(Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1)));
const comparable = (g: TargetGroup | null) =>
  g === null ? null : { source: g.source, labels: canonical(g.labels), targets: g.targets.map(canonical).sort() };

describe("groups Prometheus 3.16 produced (fixture)", () => {
  const fixture = JSON.parse(
    readFileSync(new URL("../fixtures/kubernetes/prometheus-3.16-groups.json", import.meta.url), "utf8"),
  ) as {
    cases: {
      role: KubernetesRole;
      attachMetadata: KubernetesContext["attachMetadata"];
      objects: Objects;
      expected: (TargetGroup | null)[];
    }[];
  };
  fixture.cases.forEach((c, i) => {
    it(`case ${i} (${c.role})`, () => {
      const ctx = contextFor(c.objects, c.attachMetadata);
      const objs = (c.objects[PRIMARY[c.role]] ?? []) as RoleObjects[KubernetesRole][];
      assert.equal(objs.length, c.expected.length);
      objs.forEach((o, j) => {
        assert.deepEqual(comparable(targetGroupFor(c.role, o, ctx)), comparable(c.expected[j] ?? null));
      });
    });
  });
});

// ---------------------------------------------------------------------------------------
// Properties over generated objects.

const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const anyText = fc.string({ maxLength: 12, unit: "grapheme" });
const key = fc.oneof(fc.constantFrom("app", "a.b", "x/y", "kubernetes.io/service-name", "1x", "Ünï"), anyText);
const labelMap = opt(fc.dictionary(key, anyText, { maxKeys: 4 }));
const name = fc.constantFrom("a", "b", "c");
const ns = fc.constantFrom("default", "other");
const metaArb = fc.record({
  name,
  namespace: ns,
  uid: opt(anyText),
  labels: labelMap,
  annotations: labelMap,
  ownerReferences: opt(
    fc.array(
      fc.record({
        kind: fc.constantFrom("ReplicaSet", "Job", "StatefulSet", ""),
        name,
        controller: opt(fc.boolean()),
        apiVersion: fc.constant("v1"),
        uid: fc.constant("u"),
      }),
      { maxLength: 2 },
    ),
  ),
});
const ip = fc.constantFrom("10.0.0.1", "fd00::1", "1.2.3.4");
const port = fc.integer({ min: 1, max: 65535 });
const container = fc.record({
  name: fc.constantFrom("c1", "c2"),
  image: opt(anyText),
  ports: opt(
    fc.array(fc.record({ containerPort: port, name: opt(anyText), protocol: opt(fc.constantFrom("TCP", "UDP")) }), {
      maxLength: 3,
    }),
  ),
});
const podArb: fc.Arbitrary<KubePod> = fc.record({
  metadata: metaArb,
  spec: fc.record({
    nodeName: opt(fc.constantFrom("n1", "n2")),
    containers: fc.array(container, { maxLength: 3 }),
    initContainers: opt(fc.array(container, { maxLength: 2 })),
  }),
  status: fc.record({
    podIP: ip,
    phase: opt(anyText),
    conditions: opt(
      fc.array(fc.record({ type: fc.constantFrom("Ready", "X"), status: fc.constantFrom("True", "False") })),
    ),
  }),
});
const serviceArb: fc.Arbitrary<KubeService> = fc.record({
  metadata: metaArb,
  spec: fc.record({
    type: opt(fc.constantFrom("ClusterIP", "LoadBalancer", "ExternalName")),
    ports: opt(
      fc.array(fc.record({ port, name: opt(anyText), protocol: opt(fc.constantFrom("TCP", "UDP")) }), { maxLength: 3 }),
    ),
  }),
});
const ref = opt(fc.record({ kind: fc.constantFrom("Pod", "Node"), name, namespace: ns }));
const endpointsArb: fc.Arbitrary<KubeEndpoints> = fc.record({
  metadata: metaArb,
  subsets: opt(
    fc.array(
      fc.record({
        addresses: opt(
          fc.array(fc.record({ ip, nodeName: opt(fc.constantFrom("n1", "n2")), targetRef: ref }), { maxLength: 2 }),
        ),
        notReadyAddresses: opt(fc.array(fc.record({ ip, targetRef: ref }), { maxLength: 2 })),
        ports: opt(fc.array(fc.record({ port, name: opt(anyText) }), { maxLength: 2 })),
      }),
      { maxLength: 2 },
    ),
  ),
});
const sliceArb: fc.Arbitrary<KubeEndpointSlice> = fc.record({
  metadata: metaArb,
  addressType: fc.constantFrom("IPv4", "IPv6"),
  ports: opt(fc.array(fc.record({ port, name: opt(anyText) }), { maxLength: 2 })),
  endpoints: opt(
    fc.array(
      fc.record({
        addresses: fc.array(ip, { minLength: 1, maxLength: 2 }),
        conditions: opt(fc.record({ ready: opt(fc.boolean()) })),
        targetRef: ref,
        deprecatedTopology: labelMap,
      }),
      { maxLength: 3 },
    ),
  ),
});
const nodeArb: fc.Arbitrary<KubeNode> = fc.record({
  metadata: fc.record({ name: fc.constantFrom("n1", "n2"), labels: labelMap, annotations: labelMap }),
  status: fc.record({
    addresses: fc.array(fc.record({ type: fc.constantFrom("InternalIP", "Hostname", "Odd-Type"), address: ip }), {
      minLength: 1,
      maxLength: 3,
    }),
    conditions: opt(fc.array(fc.record({ type: anyText, status: fc.constantFrom("True", "False") }), { maxLength: 2 })),
    daemonEndpoints: fc.record({ kubeletEndpoint: fc.record({ Port: port }) }),
  }),
});
const ingressArb: fc.Arbitrary<KubeIngress> = fc.record({
  metadata: metaArb,
  spec: fc.record({
    rules: opt(
      fc.array(
        fc.record({
          host: fc.constantFrom("a.example.com", "example.com"),
          http: opt(
            fc.record({
              paths: fc.array(fc.record({ path: opt(anyText), pathType: fc.constant("Prefix") }), { maxLength: 2 }),
            }),
          ),
        }),
        { maxLength: 3 },
      ),
    ),
    tls: opt(
      fc.array(fc.record({ hosts: fc.array(fc.constantFrom("*.example.com", "example.com"), { maxLength: 2 }) }), {
        maxLength: 1,
      }),
    ),
  }),
});
const namespaceArb: fc.Arbitrary<KubeNamespace> = fc.record({ metadata: fc.record({ name: ns, labels: labelMap }) });

const world = fc.record({
  pods: fc.array(podArb, { maxLength: 4 }),
  services: fc.array(serviceArb, { maxLength: 2 }),
  endpoints: fc.array(endpointsArb, { maxLength: 2 }),
  endpointslices: fc.array(sliceArb, { maxLength: 2 }),
  nodes: fc.array(nodeArb, { maxLength: 2 }),
  ingresses: fc.array(ingressArb, { maxLength: 2 }),
  namespaces: fc.array(namespaceArb, { maxLength: 2 }),
  attach: fc.record({
    node: fc.boolean(),
    namespace: fc.boolean(),
    deployment: fc.boolean(),
    job: fc.boolean(),
    cronjob: fc.boolean(),
  }),
});

type World = typeof world extends fc.Arbitrary<infer T> ? T : never;

function everyGroup(w: World & Objects, fn: (role: KubernetesRole, obj: Named, g: TargetGroup | null) => void) {
  const ctx = contextFor(w, w.attach);
  for (const role of Object.keys(PRIMARY) as KubernetesRole[]) {
    for (const obj of (w as Objects)[PRIMARY[role]] as RoleObjects[KubernetesRole][])
      fn(role, obj as Named, targetGroupFor(role, obj, ctx));
  }
}

describe("properties", () => {
  it("every target has a non-empty __address__; every label name is a valid legacy name", () => {
    fc.assert(
      fc.property(world, (w) => {
        everyGroup(w, (_role, _obj, g) => {
          if (g === null) return;
          for (const n of Object.keys(g.labels)) assert.ok(isLegacyLabelName(n), n);
          for (const t of g.targets) {
            assert.ok((t.__address__ ?? "") !== "");
            for (const n of Object.keys(t)) assert.ok(isLegacyLabelName(n), n);
          }
        });
      }),
    );
  });

  it("is deterministic and leaves its inputs untouched", () => {
    fc.assert(
      fc.property(world, (w) => {
        const before = JSON.stringify(w);
        const first: unknown[] = [];
        everyGroup(w, (_r, _o, g) => first.push(g));
        const second: unknown[] = [];
        everyGroup(structuredClone(w), (_r, _o, g) => second.push(g));
        assert.deepEqual(second, first);
        assert.equal(JSON.stringify(w), before);
      }),
    );
  });

  it("keys each group by the object, as sourceFor does, with sorted labels", () => {
    fc.assert(
      fc.property(world, (w) => {
        everyGroup(w, (role, obj, g) => {
          if (g === null) return;
          assert.equal(g.source, sourceFor(role, obj.metadata?.namespace ?? "", obj.metadata?.name ?? ""));
          for (const l of [g.labels, ...g.targets]) assert.deepEqual(Object.keys(l), Object.keys(l).sort());
        });
      }),
    );
  });

  it("sanitizes to [a-zA-Z0-9_] one character per code point", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (s) => {
        const out = sanitizeLabelName(s);
        assert.match(out, /^[a-zA-Z0-9_]*$/);
        assert.equal(out.length, [...s].length);
      }),
    );
  });
});
