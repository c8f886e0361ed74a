/** AdmissionReview dispatch without HTTP: StatefulSets, warnings, and a bug inside injection. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cleanWarning, review } from "../../src/webhook/review.ts";
import { fixture, podReview, settings } from "./support.ts";

function stsReview(operation: string, annotations: Record<string, string>) {
  const pod = fixture("kube-prometheus");
  return podReview(
    {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "prometheus-k8s", namespace: "monitoring", annotations },
      spec: { template: { metadata: { labels: { app: "p" } }, spec: pod.spec } },
    },
    {
      kind: { group: "apps", version: "v1", kind: "StatefulSet" },
      resource: { group: "apps", version: "v1", resource: "statefulsets" },
      operation,
    },
  );
}

describe("AdmissionReview dispatch", () => {
  it("patches StatefulSets on CREATE and UPDATE, not on DELETE or the scale subresource", () => {
    for (const op of ["CREATE", "UPDATE"]) {
      const out = review(stsReview(op, { "promshard.io/inject": "true" }), settings);
      assert.equal(out.result, "patched");
      assert.equal(out.kind, "StatefulSet");
      // The bare object lacks the retention policy the API server would have defaulted.
      assert.deepEqual(
        out.patch?.map((p) => p.path),
        ["/spec/template/metadata/annotations", "/spec/persistentVolumeClaimRetentionPolicy", "/metadata/labels"],
      );
    }
    assert.equal(review(stsReview("DELETE", { "promshard.io/inject": "true" }), settings).result, "unchanged");
    const scale = stsReview("UPDATE", { "promshard.io/inject": "true" });
    scale.request.subResource = "scale";
    assert.equal(review(scale, settings).kind, "other");
  });

  it("refuses a StatefulSet with bad values at apply time", () => {
    const out = review(stsReview("CREATE", { "promshard.io/inject": "true", "promshard.io/thanos": "yes" }), settings);
    assert.equal(out.result, "refused");
    const body = out.body as { response: { allowed: boolean; status: { message: string } } };
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /metadata annotation promshard\.io\/thanos: "yes" is not valid/);
  });

  it("a bug inside injection admits the object unchanged with a warning, reported as result error", () => {
    const broken = {
      ...settings,
      prometheusImage: {
        test() {
          throw new TypeError("boom");
        },
      } as unknown as RegExp,
    };
    const pod = fixture("kube-prometheus");
    pod.spec.containers[0]!.name = "not-prometheus";
    const out = review(podReview(pod), broken);
    assert.equal(out.result, "error");
    assert.equal(out.reason, "TypeError: boom");
    const body = out.body as { response: { allowed: boolean; patch?: string; warnings: string[] } };
    assert.equal(body.response.allowed, true);
    assert.equal(body.response.patch, undefined);
    assert.match(body.response.warnings[0]!, /internal error; the object was admitted unchanged/);
  });

  it("warnings are one printable line of at most 256 characters", () => {
    assert.equal(cleanWarning("a\nb\u0000c\u001b[0m"), "a b c [0m");
    assert.equal(cleanWarning("x".repeat(1000)).length, 256);
  });
});
