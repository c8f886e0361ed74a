/**
 * One base error for everything promshard reports to a user. `code` is stable (tests
 * and callers switch on it); `message` names the object or field and says what to do.
 */
export type ErrorCode =
  | "config_invalid"
  | "config_unreadable"
  | "regex_invalid"
  | "relabel_invalid"
  | "exposition_invalid"
  | "discovery_failed"
  | "sd_unsupported"
  | "flag_invalid"
  | "version_invalid"
  | "annotation_invalid"
  | "certificate_invalid"
  | "kube_request_failed"
  | "assignment_invalid"
  /** A delta push made from another set than the one the sidecar holds: the whole set is sent instead. */
  | "assignment_base_mismatch"
  | "runtime_report_invalid"
  | "sidecar_request_failed"
  | "coordinator_request_failed"
  | "shard_start_failed"
  | "shard_data_unsafe"
  /** A StatefulSet meant as shards that cannot be (or none at all). */
  | "shard_set_invalid"
  | "global_query_failed"
  /** A promshard bug: an invariant did not hold. */
  | "internal_error";

export class PromshardError extends Error {
  readonly code: ErrorCode;
  /** Where the problem is, as a dotted path or object name (e.g. `scrape_configs[2].relabel_configs[0].regex`). */
  readonly path: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(options?.path ? `${options.path}: ${message}` : message, { cause: options?.cause });
    this.name = "PromshardError";
    this.code = code;
    this.path = options?.path;
  }
}

/** Several errors found in one pass (a config check reports them all, like promtool). */
export class PromshardErrors extends PromshardError {
  readonly errors: readonly PromshardError[];

  constructor(errors: readonly PromshardError[]) {
    const first = errors[0];
    super(first?.code ?? "config_invalid", errors.map((e) => e.message).join("\n"));
    this.name = "PromshardErrors";
    this.errors = errors;
  }
}
