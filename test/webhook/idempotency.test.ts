/**
 * Properties of injection over generated pods (variations of the real-world corpus): applying
 * it twice equals applying it once; it never throws; an injected pod is valid; and an injected
 * pod that lost its status annotation (another webhook, a copied spec) gets nothing but that
 * annotation back.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { STATUS } from "../../src/webhook/annotations.ts";
import { CONFIG_VOLUME, injectPod, OUTPUT_DIR, SIDECAR, THANOS } from "../../src/webhook/inject.ts";
import type { Container, Pod } from "../../src/webhook/pod.ts";
import { applyPatch, type Op } from "./json-patch.ts";
import { allContainers, assertValidPod, fixture, settings } from "./support.ts";

const corpus = ["bitnami", "command-form", "community-chart", "kube-prometheus", "operator-thanos", "seed"].map(
  fixture,
);

/** The injection as a function on pods: the pod with the patch applied, or the pod itself. */
function f(pod: Pod, nativeSidecar: boolean): Pod {
  const r = injectPod(pod, { ...settings, nativeSidecar });
  return r.outcome === "injected" ? applyPatch(pod, r.patch as Op[]) : pod;
}

const annotationsArb = fc.record(
  {
    "promshard.io/inject": fc.constantFrom("true", "true", "true", "false", "maybe"),
    "promshard.io/thanos": fc.constantFrom("true", "false"),
    "promshard.io/thanos-objstore-secret": fc.constantFrom("objstore", "s3-creds"),
    "promshard.io/replica-group": fc.integer({ min: 0, max: 3 }).map(String),
    "promshard.io/native-sidecar": fc.constantFrom("true", "false"),
    "promshard.io/sidecar-port": fc.constantFrom("9095", "9096", "8080"),
    "promshard.io/sidecar-memory": fc.constantFrom("64Mi", "1Gi"),
    "promshard.io/sidecar-memory-limit": fc.constantFrom("128Mi", "2Gi"),
    "promshard.io/coordinator": fc.constantFrom("a", "b"),
    "promshard.io/status": fc.constantFrom("injected", "other"),
    // Keys with the characters JSON Pointer escapes.
    "example.com/a~b": fc.constant("x"),
    "example.com~/c/d": fc.constant("y"),
  },
  { requiredKeys: ["promshard.io/inject"] },
);

/** Things a pod may already have: pieces of an earlier injection, other sidecars, odd arg forms. */
const variationArb = fc.record({
  base: fc.integer({ min: 0, max: corpus.length - 1 }),
  annotations: annotationsArb,
  noAnnotationsMap: fc.boolean(),
  noLabels: fc.boolean(),
  noVolumes: fc.boolean(),
  haveConfigVolume: fc.boolean(),
  haveLifecycle: fc.boolean(),
  haveOtherSidecar: fc.boolean(),
  haveOurThanos: fc.boolean(),
  mountOutputDir: fc.boolean(),
  extraArgs: fc.array(
    fc.constantFrom("--log.level=debug", "--query.timeout", "2m", "--enable-feature=native-histograms"),
    {
      maxLength: 4,
    },
  ),
});

type Variation = typeof variationArb extends fc.Arbitrary<infer T> ? T : never;

function vary(v: Variation): Pod {
  const pod = structuredClone(corpus[v.base]!);
  pod.metadata ??= {};
  if (v.noAnnotationsMap && v.annotations["promshard.io/inject"] === undefined) delete pod.metadata.annotations;
  else pod.metadata.annotations = { ...(v.noAnnotationsMap ? {} : pod.metadata.annotations), ...v.annotations };
  if (v.noLabels) delete pod.metadata.labels;
  const prom = pod.spec.containers.find((c) => /(^|\/)prometheus[:@]/.test(c.image ?? "")) as Container;
  if (v.extraArgs.length > 0 && prom.args) prom.args = [...prom.args, ...v.extraArgs];
  if (v.haveLifecycle && prom.args && !prom.args.includes("--web.enable-lifecycle"))
    prom.args.push("--web.enable-lifecycle");
  pod.spec.volumes ??= [];
  prom.volumeMounts ??= [];
  const volumes = pod.spec.volumes;
  const mounts = prom.volumeMounts;
  if (v.haveConfigVolume || v.mountOutputDir) volumes.push({ name: CONFIG_VOLUME, emptyDir: {} });
  if (v.mountOutputDir) mounts.push({ name: CONFIG_VOLUME, mountPath: OUTPUT_DIR, readOnly: true });
  const anyMounts = allContainers(pod).some((c) => (c.volumeMounts ?? []).length > 0);
  if (v.noVolumes && !anyMounts) delete pod.spec.volumes;
  if (v.haveOtherSidecar)
    pod.spec.containers.push({ name: "istio-proxy", image: "istio/proxyv2:1.27.0", ports: [{ containerPort: 15090 }] });
  if (v.haveOurThanos && !pod.spec.containers.some((c) => c.name === THANOS)) {
    pod.spec.containers.push({ name: THANOS, image: "quay.io/thanos/thanos:v0.39.2", args: ["sidecar"] });
  }
  return pod;
}

describe("injection properties", () => {
  it("applying the injection twice equals applying it once (both sidecar modes)", () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(variationArb, fc.boolean(), (v, native) => {
        const pod = vary(v);
        const outcome = injectPod(pod, { ...settings, nativeSidecar: native }).outcome;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        const once = f(pod, native);
        assert.deepEqual(f(once, native), once);
      }),
      { numRuns: 800 },
    );
    // The generator must exercise injection itself, not only refusals and skips.
    assert.ok((outcomes.get("injected") ?? 0) > 150, JSON.stringify([...outcomes]));
    assert.ok((outcomes.get("refused") ?? 0) > 10, JSON.stringify([...outcomes]));
  });

  it("an injected pod is valid, has one of each of our parts, and is recognised however it lost its status", () => {
    fc.assert(
      fc.property(variationArb, fc.boolean(), (v, native) => {
        const pod = vary(v);
        const r = injectPod(pod, { ...settings, nativeSidecar: native });
        if (r.outcome !== "injected") return;
        const once = applyPatch(pod, r.patch as Op[]);
        assertValidPod(once);
        const names = allContainers(once).map((c) => c.name);
        assert.equal(names.filter((n) => n === SIDECAR).length, 1);
        assert.ok(names.filter((n) => n === THANOS).length <= 1);
        const stripped = structuredClone(once);
        delete stripped.metadata!.annotations![STATUS];
        const again = injectPod(stripped, { ...settings, nativeSidecar: native });
        assert.equal(again.outcome, "injected");
        if (again.outcome === "injected") {
          assert.deepEqual(
            again.patch.map((o) => o.path),
            ["/metadata/annotations/promshard.io~1status"],
          );
        }
      }),
      { numRuns: 400 },
    );
  });

  it("never throws, whatever the pod looks like", () => {
    const podLike = fc.record(
      {
        metadata: fc.oneof(
          fc.constant(undefined),
          fc.record({
            annotations: fc.dictionary(fc.constantFrom("promshard.io/inject", "promshard.io/thanos", "x"), fc.string()),
          }),
          fc.anything(),
        ),
        spec: fc.oneof(
          fc.record({
            containers: fc.array(
              fc.record(
                {
                  name: fc.oneof(fc.constantFrom("prometheus", "x"), fc.anything()),
                  image: fc.oneof(fc.constant("prom/prometheus"), fc.anything()),
                  args: fc.oneof(fc.array(fc.string()), fc.anything()),
                  command: fc.oneof(fc.constant(["/bin/prometheus"]), fc.anything()),
                  volumeMounts: fc.anything(),
                  ports: fc.anything(),
                },
                { requiredKeys: [] },
              ),
            ),
            volumes: fc.anything(),
            initContainers: fc.anything(),
          }),
          fc.anything(),
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(podLike, (pod) => {
        const withOptIn = structuredClone(pod) as Record<string, unknown>;
        if (withOptIn.metadata && typeof withOptIn.metadata === "object" && !Array.isArray(withOptIn.metadata)) {
          (withOptIn.metadata as Record<string, unknown>).annotations = { "promshard.io/inject": "true" };
        }
        for (const p of [pod, withOptIn]) {
          const r = injectPod(p, settings);
          assert.ok(["skipped", "unsupported", "refused", "injected"].includes(r.outcome));
          if (r.outcome === "injected") applyPatch(p, r.patch as Op[]);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
