/**
 * One AdmissionReview (admission.k8s.io/v1) in, one answer out, with no I/O: the HTTP status,
 * the JSON body and what happened (for metrics and logs). A review that is not well-formed is
 * HTTP 400 with the reason; everything else is HTTP 200 with an AdmissionResponse that echoes
 * the uid. Objects promshard does not handle are allowed unchanged; an exception inside
 * injection (a bug) also allows the object unchanged, with a warning, and is reported as
 * result "error" so that it shows up in metrics and logs, never as a crash.
 */
import { injectPod } from "./inject.ts";
import { isObject, type PatchOp } from "./pod.ts";
import type { InjectorSettings } from "./settings.ts";
import { mutateStatefulSet } from "./statefulset.ts";

export type ReviewResult =
  /** A pod was injected. */
  | "injected"
  /** A StatefulSet's pod template was changed. */
  | "patched"
  /** Allowed as it is: not ours, not opted in, already injected. */
  | "unchanged"
  /** Opted in but not injectable: allowed unchanged with a warning. */
  | "unsupported"
  | "refused"
  /** The review itself was malformed: HTTP 400. */
  | "malformed"
  /** A bug inside the webhook: allowed unchanged with a warning. */
  | "error";

export interface ReviewOutcome {
  status: number;
  body: unknown;
  result: ReviewResult;
  /** CREATE, UPDATE, … ("" when malformed). */
  operation: string;
  /** Pod, StatefulSet, other. */
  kind: "Pod" | "StatefulSet" | "other";
  dryRun: boolean;
  warnings: string[];
  /** Set when the answer carries a patch. */
  patch?: PatchOp[];
  /** The refusal or malformation reason, or the internal error. */
  reason?: string;
  uid?: string;
  namespace?: string;
  name?: string;
  mode?: "native" | "container";
}

const MAX_WARNINGS = 10;
const MAX_WARNING_LENGTH = 256;

/** Warnings become HTTP headers on the way to the client: one line, printable, bounded. */
export function cleanWarning(w: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const s = w.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ");
  return s.length > MAX_WARNING_LENGTH ? `${s.slice(0, MAX_WARNING_LENGTH - 1)}…` : s;
}

function malformed(reason: string): ReviewOutcome {
  return {
    status: 400,
    body: { error: `malformed AdmissionReview: ${reason}` },
    result: "malformed",
    operation: "",
    kind: "other",
    dryRun: false,
    warnings: [],
    reason,
  };
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function review(body: unknown, settings: InjectorSettings): ReviewOutcome {
  if (!isObject(body)) return malformed("the body is not a JSON object");
  if (body.apiVersion !== "admission.k8s.io/v1") {
    return malformed(
      `apiVersion is ${JSON.stringify(body.apiVersion)}; only admission.k8s.io/v1 is served (admissionReviewVersions: ["v1"])`,
    );
  }
  if (body.kind !== "AdmissionReview") return malformed(`kind is ${JSON.stringify(body.kind)}, not AdmissionReview`);
  const req = body.request;
  if (!isObject(req)) return malformed("request is missing");
  const uid = str(req.uid);
  if (!uid || uid.length > 1024) return malformed("request.uid is missing");
  const operation = str(req.operation);
  if (!operation) return malformed("request.operation is missing");
  const resource = req.resource;
  if (!isObject(resource) || typeof resource.resource !== "string" || typeof resource.group !== "string") {
    return malformed("request.resource is missing");
  }
  if (req.subResource !== undefined && typeof req.subResource !== "string") {
    return malformed("request.subResource is not a string");
  }
  if (req.dryRun !== undefined && typeof req.dryRun !== "boolean") return malformed("request.dryRun is not a boolean");
  const dryRun = req.dryRun === true;
  const sub = req.subResource ?? "";
  const kind =
    resource.group === "" && resource.resource === "pods" && sub === ""
      ? "Pod"
      : resource.group === "apps" && resource.resource === "statefulsets" && sub === ""
        ? "StatefulSet"
        : "other";
  const object = req.object;
  const meta = isObject(object) && isObject(object.metadata) ? object.metadata : {};
  const base = {
    operation,
    kind,
    dryRun,
    uid,
    namespace: str(req.namespace) ?? str(meta.namespace),
    name: str(req.name) || str(meta.name) || str(meta.generateName),
  } as const;

  const answer = (
    result: ReviewResult,
    warnings: string[],
    extra: { patch?: PatchOp[]; refusal?: string; reason?: string; mode?: "native" | "container" } = {},
  ): ReviewOutcome => {
    const shown = warnings.slice(0, MAX_WARNINGS).map(cleanWarning);
    const response: Record<string, unknown> = { uid, allowed: extra.refusal === undefined };
    if (extra.refusal !== undefined) {
      response.status = { status: "Failure", code: 400, reason: "BadRequest", message: extra.refusal };
    }
    if (extra.patch && extra.patch.length > 0) {
      response.patchType = "JSONPatch";
      response.patch = Buffer.from(JSON.stringify(extra.patch)).toString("base64");
    }
    if (shown.length > 0) response.warnings = shown;
    return {
      ...base,
      status: 200,
      body: { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response },
      result,
      warnings,
      ...(extra.patch && extra.patch.length > 0 ? { patch: extra.patch } : {}),
      ...(extra.refusal !== undefined || extra.reason !== undefined ? { reason: extra.refusal ?? extra.reason } : {}),
      ...(extra.mode ? { mode: extra.mode } : {}),
    };
  };

  try {
    if (kind === "Pod" && operation === "CREATE") {
      const r = injectPod(object, settings);
      switch (r.outcome) {
        case "skipped":
          return answer("unchanged", [], { reason: r.reason });
        case "unsupported":
          return answer("unsupported", [`promshard: pod not injected: ${r.warning}`], { reason: r.warning });
        case "refused":
          return answer("refused", [], { refusal: `promshard: ${r.message}` });
        case "injected":
          return answer(
            "injected",
            r.warnings.map((w) => `promshard: ${w}`),
            { patch: r.patch, mode: r.mode },
          );
      }
    }
    if (kind === "StatefulSet" && (operation === "CREATE" || operation === "UPDATE")) {
      const r = mutateStatefulSet(object, settings);
      switch (r.outcome) {
        case "skipped":
          return answer("unchanged", [], { reason: r.reason });
        case "unsupported":
          return answer("unsupported", [`promshard: ${r.warning}`], { reason: r.warning });
        case "refused":
          return answer("refused", [], { refusal: `promshard: ${r.message}` });
        case "patched":
          return answer(
            r.patch.length > 0 ? "patched" : "unchanged",
            r.warnings.map((w) => `promshard: ${w}`),
            { patch: r.patch },
          );
      }
    }
    return answer("unchanged", [], { reason: "not a pod CREATE or StatefulSet CREATE/UPDATE" });
  } catch (err) {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return answer("error", ["promshard: internal error; the object was admitted unchanged (see the webhook's log)"], {
      reason,
    });
  }
}
