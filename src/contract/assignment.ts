import { PromshardError, PromshardErrors } from "../errors.ts";
import type { PromConfig } from "../prom/config.ts";
import { ADDRESS, isValidLabelValue, type Labels } from "../prom/labels.ts";

/**
 * The coordinator <-> sidecar contract, one side of it: the assignment. Both the coordinator
 * (which sends it) and the sidecar (which validates and applies it) import it from here.
 */

/** Where the coordinator PUTs an assignment. */
export const ASSIGNMENT_PATH = "/api/v1/assignment";

/** One target as the coordinator assigns it: its job and the labels its service discovery produced. */
export interface AssignedTarget {
  readonly job: string;
  /** Target and group labels merged, `__address__` included; no job defaults. */
  readonly labels: Labels;
  /**
   * Which of the job's SD entries found it (index into the job's static_configs and
   * *_sd_configs, in config order). Lets a file_sd target keep its original file name even
   * where coordinator and sidecar mount the config at different paths.
   */
  readonly sdIndex?: number;
}

/**
 * What the coordinator sends a shard's sidecar (`PUT /api/v1/assignment`): the whole set of
 * targets the shard scrapes, with a version that only grows. An older version than the one
 * applied is refused, so a delayed or replayed request never undoes a newer one.
 */
export interface Assignment {
  readonly version: number;
  readonly targets: readonly AssignedTarget[];
}

function fail(path: string, message: string): PromshardError {
  return new PromshardError("assignment_invalid", message, { path });
}

/**
 * Validates a decoded JSON body against the shard's current config: every problem is listed,
 * and nothing is applied unless all is well (targets of a job the config does not have are
 * refused, not dropped).
 */
export function parseAssignment(body: unknown, config: PromConfig): Assignment {
  const errors: PromshardError[] = [];
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new PromshardErrors([fail("assignment", "must be a JSON object with version and targets")]);
  }
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b))
    if (k !== "version" && k !== "targets") errors.push(fail(`assignment.${k}`, "unknown field"));
  if (typeof b.version !== "number" || !Number.isSafeInteger(b.version) || b.version < 0) {
    errors.push(fail("assignment.version", "must be a non-negative integer"));
  }
  if (!Array.isArray(b.targets)) errors.push(fail("assignment.targets", "must be a list of {job, labels, sdIndex?}"));
  const jobs = new Map(config.scrapeConfigs.map((j) => [j.jobName, j]));
  const targets: AssignedTarget[] = [];
  for (const [i, raw] of (Array.isArray(b.targets) ? b.targets : []).entries()) {
    const at = `assignment.targets[${i}]`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      errors.push(fail(at, "must be an object with job and labels"));
      continue;
    }
    const t = raw as Record<string, unknown>;
    const job = typeof t.job === "string" ? jobs.get(t.job) : undefined;
    if (!job) {
      errors.push(
        fail(
          `${at}.job`,
          `${JSON.stringify(t.job)} is not a job of this shard's config; the coordinator and the sidecar read different configs`,
        ),
      );
      continue;
    }
    const labels = t.labels;
    if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
      errors.push(fail(`${at}.labels`, "must be an object of label names to string values"));
      continue;
    }
    const bad = Object.entries(labels).find(([, v]) => typeof v !== "string" || !isValidLabelValue(v));
    if (bad) {
      errors.push(fail(`${at}.labels.${bad[0]}`, "must be a string"));
      continue;
    }
    if (
      typeof (labels as Record<string, string>)[ADDRESS] !== "string" ||
      (labels as Record<string, string>)[ADDRESS] === ""
    ) {
      errors.push(fail(`${at}.labels`, "needs __address__"));
      continue;
    }
    const sdIndex = t.sdIndex;
    if (
      sdIndex !== undefined &&
      (typeof sdIndex !== "number" ||
        !Number.isInteger(sdIndex) ||
        sdIndex < 0 ||
        sdIndex >= job.serviceDiscovery.length)
    ) {
      errors.push(
        fail(
          `${at}.sdIndex`,
          `must be the index of one of job "${job.jobName}"'s ${job.serviceDiscovery.length} SD entries`,
        ),
      );
      continue;
    }
    targets.push({
      job: job.jobName,
      labels: labels as Record<string, string>,
      ...(sdIndex !== undefined ? { sdIndex } : {}),
    });
  }
  if (errors.length > 0) throw new PromshardErrors(errors);
  return { version: b.version as number, targets };
}
