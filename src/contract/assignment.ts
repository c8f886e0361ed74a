import { PromshardError, PromshardErrors } from "../errors.ts";
import type { PromConfig, ScrapeJob } from "../prom/config.ts";
import { ADDRESS, isValidLabelName, isValidLabelValue, type Labels } from "../prom/labels.ts";

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
  /** Set when the target is bigger than a shard: this shard keeps one part of its series. */
  readonly split?: TargetSplit;
}

/**
 * Part `part` of `parts` of a target split over shards (src/scheduler/split.ts): the shard
 * keeps the series whose hashmod over the `by` labels, modulo `parts`, is `part`. Every part
 * of one target carries the same `by` and `parts`, so every series is kept by exactly one.
 */
export interface TargetSplit {
  readonly part: number;
  readonly parts: number;
  /** Label names hashed, `__name__` first; a missing label hashes as empty. */
  readonly by: readonly string[];
}

/**
 * A part's id, in the runtime report and the coordinator's plans: the target's id, `#`, its
 * part and the part count (0-based: the hashmod's residue).
 */
export function partId(target: string, part: number, parts: number): string {
  return `${target}#${part}/${parts}`;
}

export interface PartRef {
  readonly target: string;
  readonly part: number;
  readonly parts: number;
}

const PART = /^(.+)#(\d+)\/(\d+)$/;

/** The target, part and count of a part's id; undefined for a whole target's id. */
export function parsePartId(id: string): PartRef | undefined {
  // Called for every target of every round: a whole target's id has no "#" (issue 16).
  if (!id.includes("#")) return undefined;
  const m = PART.exec(id);
  if (!m) return undefined;
  return { target: m[1]!, part: Number(m[2]), parts: Number(m[3]) };
}

/** Most parts a target is split into, and most label names hashed: the generated rules stay small. */
export const MAX_PARTS = 1000;
export const MAX_SPLIT_LABELS = 64;

/**
 * What the coordinator sends a shard's sidecar (`PUT /api/v1/assignment`): the whole set of
 * targets the shard scrapes, with a version that only grows. An older version than the one
 * applied is refused, so a delayed or replayed request never undoes a newer one.
 */
export interface Assignment {
  readonly version: number;
  readonly targets: readonly AssignedTarget[];
}

/** A target of a pushed assignment that the sidecar did not apply, and why. */
export interface RejectedTarget {
  /** Its index in the pushed `targets`. */
  readonly index: number;
  readonly job: string | null;
  readonly address: string | null;
  readonly problems: readonly string[];
}

/** A valid assignment as the sidecar applies it, with the targets it had to leave out. */
export interface ParsedAssignment extends Assignment {
  readonly rejected: readonly RejectedTarget[];
}

/**
 * The sidecar's answer to `PUT /api/v1/assignment` (200): the valid targets are applied, the
 * others listed by index. One job that the shard's config does not have yet (a new config
 * reaching shards one after another) must not block every other change to the shard.
 */
export interface AssignmentReply {
  readonly version: number;
  readonly targets: number;
  readonly rejected: readonly RejectedTarget[];
}

function fail(path: string, message: string): PromshardError {
  return new PromshardError("assignment_invalid", message, { path });
}

/** Longest label name or value quoted back in a problem: the message must stay small. */
const QUOTE = 120;

function quote(s: unknown): string {
  const j = JSON.stringify(s) ?? String(s);
  return j.length <= QUOTE ? j : `${j.slice(0, QUOTE)}…`;
}

/**
 * Validates a decoded JSON body against the shard's current config. A malformed body (not an
 * object, no version, no list) is refused whole, every problem listed; a target that cannot
 * be applied (a job the config does not have, bad labels) is left out and reported in
 * `rejected`, and the rest is applied. Label names follow the shard's Prometheus: its file SD
 * refuses a whole file for one bad name (2.x: the legacy charset) and keeps its old targets.
 */
export function parseAssignment(body: unknown, config: PromConfig): ParsedAssignment {
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
  if (errors.length > 0) throw new PromshardErrors(errors);
  const jobs = new Map(config.scrapeConfigs.map((j) => [j.jobName, j]));
  const targets: AssignedTarget[] = [];
  const rejected: RejectedTarget[] = [];
  for (const [i, raw] of (b.targets as unknown[]).entries()) {
    const at = `assignment.targets[${i}]`;
    const reject = (path: string, message: string) => {
      const t = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>) : {};
      const labels = t.labels !== null && typeof t.labels === "object" ? (t.labels as Record<string, unknown>) : {};
      rejected.push({
        index: i,
        job: typeof t.job === "string" ? t.job.slice(0, QUOTE) : null,
        address: typeof labels[ADDRESS] === "string" ? (labels[ADDRESS] as string).slice(0, QUOTE) : null,
        problems: [`${path}: ${message}`],
      });
    };
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      reject(at, "must be an object with job and labels");
      continue;
    }
    const t = raw as Record<string, unknown>;
    const job = typeof t.job === "string" ? jobs.get(t.job) : undefined;
    if (!job) {
      reject(
        `${at}.job`,
        `${quote(t.job)} is not a job of this shard's config; the coordinator and the sidecar read different configs`,
      );
      continue;
    }
    const labels = t.labels;
    if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
      reject(`${at}.labels`, "must be an object of label names to string values");
      continue;
    }
    const badValue = Object.entries(labels).find(([, v]) => typeof v !== "string" || !isValidLabelValue(v));
    if (badValue) {
      reject(`${at}.labels.${quote(badValue[0])}`, "must be a string");
      continue;
    }
    const badName = Object.keys(labels).find((n) => !isValidLabelName(n, config.dialect));
    if (badName !== undefined) {
      reject(
        `${at}.labels`,
        `${quote(badName)} is not a valid label name for Prometheus ${config.dialect.version}${config.dialect.utf8Names ? "" : " ([a-zA-Z_][a-zA-Z0-9_]*)"}`,
      );
      continue;
    }
    if (
      typeof (labels as Record<string, string>)[ADDRESS] !== "string" ||
      (labels as Record<string, string>)[ADDRESS] === ""
    ) {
      reject(`${at}.labels`, "needs __address__");
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
      reject(
        `${at}.sdIndex`,
        `must be the index of one of job "${job.jobName}"'s ${job.serviceDiscovery.length} SD entries`,
      );
      continue;
    }
    const split = t.split === undefined ? undefined : parseSplit(t.split, config);
    if (typeof split === "string") {
      reject(`${at}.split`, split);
      continue;
    }
    const address = (labels as Record<string, string>)[ADDRESS]!;
    const allowed = staticAddresses(job, sdIndex as number | undefined);
    if (allowed && !allowed.has(address)) {
      reject(
        `${at}.labels.__address__`,
        `${quote(address)} is not among the static_configs targets of job "${job.jobName}"${sdIndex === undefined ? "" : ` (entry ${sdIndex})`}`,
      );
      continue;
    }
    targets.push({
      job: job.jobName,
      labels: labels as Record<string, string>,
      ...(sdIndex !== undefined ? { sdIndex } : {}),
      ...(split ? { split } : {}),
    });
  }
  return { version: b.version as number, targets, rejected };
}

/** A target's split, or what is wrong with it. */
function parseSplit(raw: unknown, config: PromConfig): TargetSplit | string {
  const shape = `must be {part, parts, by}: 0 <= part < parts <= ${MAX_PARTS}, by a list of 1 to ${MAX_SPLIT_LABELS} label names`;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return shape;
  const { part, parts, by, ...extra } = raw as Record<string, unknown>;
  const unknown = Object.keys(extra)[0];
  if (unknown !== undefined) return `unknown field ${quote(unknown)}; ${shape}`;
  if (
    typeof parts !== "number" ||
    !Number.isInteger(parts) ||
    parts < 2 ||
    parts > MAX_PARTS ||
    typeof part !== "number" ||
    !Number.isInteger(part) ||
    part < 0 ||
    part >= parts
  )
    return `part ${quote(part)} of ${quote(parts)}: ${shape}`;
  if (!Array.isArray(by) || by.length === 0 || by.length > MAX_SPLIT_LABELS) return shape;
  const bad = by.find((n) => typeof n !== "string" || !isValidLabelName(n, config.dialect));
  if (bad !== undefined) return `by: ${quote(bad)} is not a valid label name for Prometheus ${config.dialect.version}`;
  return { part, parts, by: by as string[] };
}

/**
 * The addresses a job's static discovery can produce, when the target claims to come from it
 * (its sdIndex names a static_configs entry, or the job has nothing but static_configs): an
 * assignment must not point a job, with its credentials, at a host the config never named.
 * Other discovery (kubernetes, file) is not re-run by the sidecar: undefined, not checked.
 */
function staticAddresses(job: ScrapeJob, sdIndex: number | undefined): ReadonlySet<string> | undefined {
  const entries =
    sdIndex === undefined
      ? job.serviceDiscovery.every((sd) => sd.mechanism === "static")
        ? job.serviceDiscovery
        : []
      : [job.serviceDiscovery[sdIndex]!].filter((sd) => sd.mechanism === "static");
  if (entries.length === 0) return undefined;
  const out = new Set<string>();
  for (const sd of entries)
    if (sd.mechanism === "static" && "groups" in sd)
      for (const g of sd.groups) for (const t of g.targets) if (t[ADDRESS] !== undefined) out.add(t[ADDRESS]);
  return out;
}

/** The coordinator's reading of a 200 answer to a push; an older sidecar's answer has no `rejected`. */
export function parseAssignmentReply(body: unknown): readonly RejectedTarget[] {
  if (body === null || typeof body !== "object") return [];
  const r = (body as Record<string, unknown>).rejected;
  if (!Array.isArray(r)) return [];
  return r.flatMap((x): RejectedTarget[] => {
    if (x === null || typeof x !== "object") return [];
    const o = x as Record<string, unknown>;
    if (typeof o.index !== "number" || !Number.isInteger(o.index)) return [];
    return [
      {
        index: o.index,
        job: typeof o.job === "string" ? o.job : null,
        address: typeof o.address === "string" ? o.address : null,
        problems: Array.isArray(o.problems) ? o.problems.filter((p): p is string => typeof p === "string") : [],
      },
    ];
  });
}
