/** StatefulSets: annotations copied into the pod template (and taken back), validated at apply time. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COPIED } from "../../src/webhook/annotations.ts";
import { mutateStatefulSet } from "../../src/webhook/statefulset.ts";
import { applyPatch, type Op } from "./json-patch.ts";
import { fixture, settings } from "./support.ts";

interface Sts {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: {
    persistentVolumeClaimRetentionPolicy?: { whenDeleted: string; whenScaled: string };
    template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: unknown };
  };
}

function sts(annotations?: Record<string, string>, templateAnnotations?: Record<string, string>): Sts {
  const pod = fixture("kube-prometheus");
  return {
    metadata: { name: "prometheus", ...(annotations ? { annotations } : {}) },
    spec: {
      // What the API server defaults before admission.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
      template: {
        metadata: {
          labels: { app: "prometheus" },
          ...(templateAnnotations ? { annotations: templateAnnotations } : {}),
        },
        spec: pod.spec,
      },
    },
  };
}

function apply(s: Sts): { out: Sts; warnings: string[]; ops: Op[] } {
  const r = mutateStatefulSet(s, settings);
  assert.equal(r.outcome, "patched", JSON.stringify(r));
  if (r.outcome !== "patched") throw new Error("unreachable");
  return { out: applyPatch(s, r.patch as Op[]), warnings: r.warnings, ops: r.patch as Op[] };
}

describe("StatefulSet annotations", () => {
  it("labels a StatefulSet whose pods are injected with its coordinator (the coordinator selects by it), and unlabels it on opt-out", () => {
    const named = apply(sts({ "promshard.io/inject": "true", "promshard.io/coordinator": "team-a" })).out;
    assert.equal(named.metadata.labels?.["promshard.io/coordinator"], "team-a");
    // The webhook's default coordinator when none is named.
    const plain = apply(sts({ "promshard.io/inject": "true" })).out;
    assert.equal(plain.metadata.labels?.["promshard.io/coordinator"], settings.coordinator);
    plain.metadata.annotations = {};
    const gone = apply(plain);
    assert.equal(gone.out.metadata.labels?.["promshard.io/coordinator"], undefined);
    assert.ok(gone.ops.some((o) => o.op === "remove" && o.path === "/metadata/labels/promshard.io~1coordinator"));
    // Opted out with inject "false": no label either.
    const off = apply(sts({ "promshard.io/inject": "false" })).out;
    assert.equal(off.metadata.labels?.["promshard.io/coordinator"], undefined);
  });

  it("keeps a scaled-down shard's PVC (whenScaled Retain), with or without upload, and says why it changed one", () => {
    // Even with upload the PVC holds the drained shard's head, which no block has yet.
    const upload = sts({ "promshard.io/inject": "true", "promshard.io/thanos-objstore-secret": "thanos-objstore" });
    upload.spec.persistentVolumeClaimRetentionPolicy = { whenDeleted: "Delete", whenScaled: "Delete" };
    const kept = apply(upload);
    assert.deepEqual(kept.out.spec.persistentVolumeClaimRetentionPolicy, {
      whenDeleted: "Delete",
      whenScaled: "Retain",
    });
    assert.match(kept.warnings.join("\n"), /whenScaled Delete became Retain: .*its head/);
    // Already Retain: nothing to do.
    assert.ok(!apply(sts({ "promshard.io/inject": "true" })).ops.some((o) => o.path.includes("Retention")));
    // An object the API server did not default (a dry run of a bare object) gets the whole policy.
    const bare = sts({ "promshard.io/inject": "true" });
    delete bare.spec.persistentVolumeClaimRetentionPolicy;
    assert.deepEqual(apply(bare).out.spec.persistentVolumeClaimRetentionPolicy, {
      whenDeleted: "Retain",
      whenScaled: "Retain",
    });
    // Not injected: left as the user set it.
    const off = sts({ "promshard.io/inject": "false" });
    off.spec.persistentVolumeClaimRetentionPolicy = { whenDeleted: "Delete", whenScaled: "Delete" };
    assert.equal(apply(off).out.spec.persistentVolumeClaimRetentionPolicy?.whenScaled, "Delete");
  });

  it("copies the opt-in and settings annotations into the template and lists them", () => {
    const { out, ops } = apply(
      sts({ "promshard.io/inject": "true", "promshard.io/max-series": "30000", "argocd.argoproj.io/x": "y" }),
    );
    assert.deepEqual(out.spec.template.metadata?.annotations, {
      "promshard.io/inject": "true",
      "promshard.io/max-series": "30000",
      [COPIED]: "promshard.io/inject,promshard.io/max-series",
    });
    assert.deepEqual(
      ops.map((o) => o.path),
      ["/spec/template/metadata/annotations", "/metadata/labels"],
    );
    // Applying again changes nothing: an UPDATE that does not touch them gives no patch.
    const again = mutateStatefulSet(out, settings);
    assert.deepEqual(again, { outcome: "patched", patch: [], warnings: [] });
  });

  it("escapes the annotation keys in patch paths (RFC 6901) when the template has annotations", () => {
    const { ops, out } = apply(sts({ "promshard.io/inject": "true" }, { "a~b/c": "1" }));
    assert.deepEqual(
      ops.map((o) => o.path),
      [
        "/spec/template/metadata/annotations/promshard.io~1inject",
        "/spec/template/metadata/annotations/promshard.io~1copied-from-statefulset",
        "/metadata/labels",
      ],
    );
    assert.equal(out.spec.template.metadata?.annotations?.["a~b/c"], "1");
  });

  it("takes copied keys back when they leave the StatefulSet, and all of them when inject does", () => {
    const first = apply(sts({ "promshard.io/inject": "true", "promshard.io/thanos": "true" })).out;
    first.metadata.annotations = { "promshard.io/inject": "true" };
    const second = apply(first).out;
    assert.deepEqual(second.spec.template.metadata?.annotations, {
      "promshard.io/inject": "true",
      [COPIED]: "promshard.io/inject",
    });
    second.metadata.annotations = {};
    const third = apply(second).out;
    assert.deepEqual(third.spec.template.metadata?.annotations, {});
  });

  it("the StatefulSet's value wins over the template's, with a warning", () => {
    const { out, warnings } = apply(
      sts({ "promshard.io/inject": "true", "promshard.io/thanos": "false" }, { "promshard.io/thanos": "true" }),
    );
    assert.equal(out.spec.template.metadata?.annotations?.["promshard.io/thanos"], "false");
    assert.deepEqual(warnings, [
      "spec.template annotation promshard.io/thanos=true was replaced by the StatefulSet's value false",
    ]);
  });

  it("a template annotated directly (the GitOps way) is validated and left unchanged", () => {
    // With the coordinator label written in Git too, nothing changes.
    const labelled = sts(undefined, { "promshard.io/inject": "true" });
    labelled.metadata.labels = { "promshard.io/coordinator": "promshard" };
    const r = mutateStatefulSet(labelled, settings);
    assert.deepEqual(r, { outcome: "patched", patch: [], warnings: [] });
    // Without it, the label is all that is added.
    assert.deepEqual(mutateStatefulSet(sts(undefined, { "promshard.io/inject": "true" }), settings), {
      outcome: "patched",
      patch: [{ op: "add", path: "/metadata/labels", value: { "promshard.io/coordinator": "promshard" } }],
      warnings: [],
    });
    // What injecting its pods would say is said now, at apply time.
    const seed = sts(undefined, { "promshard.io/inject": "true" });
    seed.spec.template.spec = fixture("seed").spec;
    const w = mutateStatefulSet(seed, settings);
    assert.ok(w.outcome === "patched" && /container prometheus had no args/.test(w.warnings.join()));
    const bad = mutateStatefulSet(
      sts(undefined, { "promshard.io/inject": "true", "promshard.io/max-series": "lots" }),
      settings,
    );
    assert.equal(bad.outcome, "refused");
    if (bad.outcome === "refused") {
      assert.match(bad.message, /^spec\.template\.metadata annotation promshard\.io\/max-series: "lots" is not valid/);
    }
  });

  it("refuses bad values on the StatefulSet itself, naming where they are", () => {
    const r = mutateStatefulSet(sts({ "promshard.io/inject": "sure" }), settings);
    assert.equal(r.outcome, "refused");
    if (r.outcome === "refused")
      assert.match(r.message, /^metadata annotation promshard\.io\/inject: "sure" is not valid/);
  });

  it("refuses a template that cannot work (a port clash) and warns about one that cannot be injected", () => {
    const clash = mutateStatefulSet(
      sts({ "promshard.io/inject": "true", "promshard.io/sidecar-port": "9090" }),
      settings,
    );
    assert.equal(clash.outcome, "refused");
    const s = sts({ "promshard.io/inject": "true" });
    (s.spec.template.spec as { containers: { name: string; image: string }[] }).containers = [
      { name: "web", image: "nginx" },
    ];
    const r = mutateStatefulSet(s, settings);
    assert.equal(r.outcome, "patched");
    if (r.outcome === "patched") assert.match(r.warnings.join(), /pods will not be injected: no container/);
  });

  it("leaves StatefulSets without promshard annotations alone", () => {
    assert.deepEqual(mutateStatefulSet(sts(), settings), { outcome: "skipped", reason: "not annotated" });
    assert.equal(mutateStatefulSet({ metadata: { annotations: "x" } }, settings).outcome, "unsupported");
    assert.equal(
      mutateStatefulSet({ metadata: { annotations: { "promshard.io/inject": "true" } } }, settings).outcome,
      "unsupported",
    );
  });
});
