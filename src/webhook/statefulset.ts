/**
 * StatefulSets (DESIGN §3): on CREATE and UPDATE, the opt-in and settings annotations written
 * on the StatefulSet itself are copied into its pod template, so that
 * `kubectl annotate statefulset prometheus promshard.io/inject=true` and a rollout inject the
 * pods. The keys copied are listed in promshard.io/copied-from-statefulset on the template; a
 * key later removed from the StatefulSet is removed from the template too, so
 * `kubectl annotate statefulset prometheus promshard.io/inject-` undoes it.
 *
 * A StatefulSet whose pods will be injected also gets the label promshard.io/coordinator (the
 * coordinator selects its shard StatefulSets by it) and the PVC retention its scale-downs
 * need (retentionPatch says which and why).
 *
 * Validation happens here as well as on the pods: a bad value, or a template promshard cannot
 * inject, is reported when the user applies the StatefulSet (refused, or a warning) instead of
 * as FailedCreate events of the StatefulSet controller later.
 *
 * GitOps drift: copying changes spec.template, which is in Git; Argo CD and Flux then show the
 * StatefulSet as out of sync (and server-side apply sees a second field manager). To avoid it,
 * write the annotations on spec.template.metadata in Git directly: the webhook then copies
 * nothing and only validates.
 */
import { ANNOTATIONS, COPIED, PREFIX, parseAnnotations, settingsKeys } from "./annotations.ts";
import { COORDINATOR_LABEL, injectPod } from "./inject.ts";
import { annotationsOf, checkMetadata, checkPod, escapePointer, isObject, type PatchOp } from "./pod.ts";
import type { InjectorSettings } from "./settings.ts";

export type StatefulSetResult =
  | { outcome: "skipped"; reason: string }
  | { outcome: "unsupported"; warning: string }
  | { outcome: "refused"; message: string }
  /** `patch` is empty when the template already had everything. */
  | { outcome: "patched"; patch: PatchOp[]; warnings: string[] };

const INJECT = `${PREFIX}inject`;

export function mutateStatefulSet(object: unknown, settings: InjectorSettings): StatefulSetResult {
  if (!isObject(object)) return { outcome: "unsupported", warning: "not a valid StatefulSet: not an object" };
  const metaError = checkMetadata(object.metadata);
  if (metaError) return { outcome: "unsupported", warning: `not a valid StatefulSet: ${metaError}` };
  const stsAnnotations = annotationsOf(object.metadata);
  const spec = object.spec;
  const template = isObject(spec) ? spec.template : undefined;
  const templateError = isObject(template) ? checkMetadata(template.metadata, "spec.template.metadata") : undefined;
  const templateAnnotations = isObject(template) ? annotationsOf(template.metadata) : {};
  const optedIn = stsAnnotations[INJECT] !== undefined;
  const previouslyCopied = (templateAnnotations[COPIED] ?? "").split(",").filter((k) => ANNOTATIONS.has(k));
  if (!optedIn && templateAnnotations[INJECT] === undefined && previouslyCopied.length === 0) {
    return { outcome: "skipped", reason: "not annotated" };
  }
  if (!isObject(spec) || !isObject(template) || templateError) {
    return {
      outcome: "unsupported",
      warning: `not a valid StatefulSet: ${templateError ?? "spec.template is missing"}`,
    };
  }

  const warnings: string[] = [];
  const want: Record<string, string | undefined> = { ...templateAnnotations };
  if (optedIn) {
    const parsed = parseAnnotations(stsAnnotations, "metadata");
    if (parsed.errors.length > 0)
      return { outcome: "refused", message: parsed.errors.map((e) => e.message).join("; ") };
    warnings.push(...parsed.warnings);
    const keys = settingsKeys(stsAnnotations).sort();
    for (const k of previouslyCopied) if (!keys.includes(k)) want[k] = undefined;
    for (const k of keys) {
      const had = templateAnnotations[k];
      if (had !== undefined && had !== stsAnnotations[k] && !previouslyCopied.includes(k)) {
        warnings.push(
          `spec.template annotation ${k}=${had} was replaced by the StatefulSet's value ${stsAnnotations[k]}`,
        );
      }
      want[k] = stsAnnotations[k];
    }
    want[COPIED] = keys.join(",");
  } else if (previouslyCopied.length > 0) {
    for (const k of previouslyCopied) want[k] = undefined;
    want[COPIED] = undefined;
  }

  const patch = annotationPatch(template, templateAnnotations, want);
  const finalAnnotations = Object.fromEntries(
    Object.entries(want).filter((e): e is [string, string] => e[1] !== undefined),
  );

  // Validate what the pods will get, with the template's own spec.
  let coordinator: string | undefined;
  if (finalAnnotations[INJECT] !== undefined) {
    const parsed = parseAnnotations(finalAnnotations, "spec.template.metadata");
    if (parsed.errors.length > 0)
      return { outcome: "refused", message: parsed.errors.map((e) => e.message).join("; ") };
    if (!optedIn) warnings.push(...parsed.warnings);
    if (parsed.value.inject) {
      coordinator = parsed.value.coordinator ?? settings.coordinator;
      patch.push(...retentionPatch(spec, warnings));
      const podShape = checkPod(template, "spec.template");
      if (podShape) return { outcome: "unsupported", warning: `pods cannot be injected: ${podShape}` };
      const trial = injectPod(
        { metadata: { ...(template.metadata as object), annotations: finalAnnotations }, spec: template.spec },
        settings,
      );
      if (trial.outcome === "refused") return { outcome: "refused", message: trial.message };
      if (trial.outcome === "unsupported") warnings.push(`pods will not be injected: ${trial.warning}`);
      if (trial.outcome === "injected") warnings.push(...trial.warnings.filter((w) => !warnings.includes(w)));
    }
  }
  patch.push(...coordinatorLabelPatch(object.metadata, coordinator));
  return { outcome: "patched", patch, warnings };
}

/**
 * The coordinator finds its shard StatefulSets by this label (a label, unlike an annotation,
 * can select in a watch); it follows the template's opt-in, and goes when that does.
 */
function coordinatorLabelPatch(metadata: unknown, coordinator: string | undefined): PatchOp[] {
  const labels = isObject(metadata) && isObject(metadata.labels) ? (metadata.labels as Record<string, string>) : {};
  const had = labels[COORDINATOR_LABEL];
  if (had === coordinator) return [];
  const path = `/metadata/labels/${escapePointer(COORDINATOR_LABEL)}`;
  if (coordinator === undefined) return [{ op: "remove", path }];
  if (!isObject(metadata))
    return [{ op: "add", path: "/metadata", value: { labels: { [COORDINATOR_LABEL]: coordinator } } }];
  if (!isObject(metadata.labels))
    return [{ op: "add", path: "/metadata/labels", value: { [COORDINATOR_LABEL]: coordinator } }];
  return [{ op: "add", path, value: coordinator }];
}

/**
 * What happens to a shard's PVC when the coordinator scales the StatefulSet down: Retain, so
 * the PVC comes back with the ordinal. Without object storage it is the only copy of the
 * shard's history (the coordinator waits --scale-down.wait before it goes). With upload the
 * coordinator has had the head flushed into the bucket first (src/sidecar/flush.ts), and
 * retained, nothing is uploaded twice when the ordinal returns: the Thanos sidecar's shipper
 * file on the volume lists what it shipped.
 * `whenDeleted` is the user's (Retain by default: uninstalling keeps the data).
 */
function retentionPatch(spec: Record<string, unknown>, warnings: string[]): PatchOp[] {
  const policy = isObject(spec.persistentVolumeClaimRetentionPolicy)
    ? spec.persistentVolumeClaimRetentionPolicy
    : undefined;
  const had = policy?.whenScaled;
  if (had === "Retain") return [];
  if (had !== undefined)
    warnings.push(
      `spec.persistentVolumeClaimRetentionPolicy.whenScaled ${String(had)} became Retain: a scaled-down shard's PVC holds data that may be nowhere else (its head, or its whole history without object storage)`,
    );
  if (!policy)
    return [
      {
        op: "add",
        path: "/spec/persistentVolumeClaimRetentionPolicy",
        value: { whenDeleted: "Retain", whenScaled: "Retain" },
      },
    ];
  return [{ op: "add", path: "/spec/persistentVolumeClaimRetentionPolicy/whenScaled", value: "Retain" }];
}

/** The ops turning the template's annotations into `want` (undefined = remove). */
function annotationPatch(
  template: Record<string, unknown>,
  current: Record<string, string>,
  want: Record<string, string | undefined>,
): PatchOp[] {
  const changed = Object.entries(want).filter(([k, v]) => current[k] !== v);
  if (changed.length === 0) return [];
  const meta = template.metadata;
  const present = Object.fromEntries(Object.entries(want).filter((e): e is [string, string] => e[1] !== undefined));
  if (!isObject(meta)) return [{ op: "add", path: "/spec/template/metadata", value: { annotations: present } }];
  if (!isObject(meta.annotations)) return [{ op: "add", path: "/spec/template/metadata/annotations", value: present }];
  return changed.map(([k, v]): PatchOp => {
    const path = `/spec/template/metadata/annotations/${escapePointer(k)}`;
    return v === undefined ? { op: "remove", path } : { op: "add", path, value: v };
  });
}
