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
  /**
   * The coordinator's id of the item (the target's id, or a part's id): what a delta names it
   * by. Optional: a coordinator before deltas sends none, and its sets are never patched.
   */
  readonly id?: string;
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
  /** Its index in the pushed `targets` (of a delta: in its `set` lists, job after job, in the body's order). */
  readonly index: number;
  /** Its id, when the push gave one. */
  readonly id?: string;
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

/** Longest item id a push may carry (a target id is 16 hex digits; a part's adds `#part/parts`). */
const MAX_ID = 200;

/**
 * Validates a decoded JSON body against the shard's current config. A malformed body (not an
 * object, no version, no list) is refused whole, every problem listed; a target that cannot
 * be applied (a job the config does not have, bad labels) is left out and reported in
 * `rejected`, and the rest is applied. Label names follow the shard's Prometheus: its file SD
 * refuses a whole file for one bad name (2.x: the legacy charset) and keeps its old targets.
 */
export function parseAssignment(body: unknown, config: PromConfig): ParsedAssignment {
  const errors: PromshardError[] = [];
  const b = checkShape(body, ["version", "targets"], "assignment", errors);
  if (!Array.isArray(b.targets)) errors.push(fail("assignment.targets", "must be a list of {job, labels, sdIndex?}"));
  if (errors.length > 0) throw new PromshardErrors(errors);
  const check = targetChecker(config);
  const targets: AssignedTarget[] = [];
  const rejected: RejectedTarget[] = [];
  for (const [i, raw] of (b.targets as unknown[]).entries()) {
    const t = check(raw, `assignment.targets[${i}]`, i, undefined, false);
    if ("problems" in t) rejected.push(t);
    else targets.push(t);
  }
  return { version: b.version as number, targets, rejected };
}

/** The object, its problems (a version, only the `allowed` fields) added to `errors`; throws when it is none. */
function checkShape(
  body: unknown,
  allowed: readonly string[],
  what: string,
  errors: PromshardError[],
): Record<string, unknown> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    const fields = `${allowed.slice(0, -1).join(", ")} and ${allowed.at(-1)}`;
    throw new PromshardErrors([fail(what, `must be a JSON object with ${fields}`)]);
  }
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!allowed.includes(k)) errors.push(fail(`${what}.${k}`, "unknown field"));
  nonNegativeInteger(b, what, "version", errors);
  return b;
}

/** Field `k` of `b` (a version or a count) is a non-negative integer, else a problem in `errors`. */
function nonNegativeInteger(b: Record<string, unknown>, what: string, k: string, errors: PromshardError[]): void {
  const v = b[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    errors.push(fail(`${what}.${k}`, "must be a non-negative integer"));
}

type TargetCheck = (
  raw: unknown,
  at: string,
  index: number,
  /** The job a delta names the target under (its key); undefined: the target's own `job` field. */
  jobName: string | undefined,
  needsId: boolean,
) => AssignedTarget | RejectedTarget;

/** One pushed target checked against the shard's config: the target as applied, or why not. */
function targetChecker(config: PromConfig): TargetCheck {
  const jobs = new Map(config.scrapeConfigs.map((j) => [j.jobName, j]));
  const ids = new Set<string>();
  return (raw, at, index, jobName, needsId) => {
    const reject = (path: string, message: string): RejectedTarget => {
      const t = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>) : {};
      const labels = t.labels !== null && typeof t.labels === "object" ? (t.labels as Record<string, unknown>) : {};
      const job = jobName ?? t.job;
      return {
        index,
        ...(typeof t.id === "string" ? { id: t.id.slice(0, MAX_ID) } : {}),
        job: typeof job === "string" ? job.slice(0, QUOTE) : null,
        address: typeof labels[ADDRESS] === "string" ? (labels[ADDRESS] as string).slice(0, QUOTE) : null,
        problems: [`${path}: ${message}`],
      };
    };
    if (raw === null || typeof raw !== "object" || Array.isArray(raw))
      return reject(at, `must be an object with ${jobName === undefined ? "job and " : "id and "}labels`);
    const t = raw as Record<string, unknown>;
    const id = t.id;
    if (id !== undefined || needsId) {
      if (typeof id !== "string" || id === "" || id.length > MAX_ID)
        return reject(`${at}.id`, `must be the coordinator's id of the target, 1 to ${MAX_ID} characters`);
      if (ids.has(id)) return reject(`${at}.id`, `${quote(id)} names two targets of one push`);
      ids.add(id);
    }
    const name = jobName ?? t.job;
    const job = typeof name === "string" ? jobs.get(name) : undefined;
    if (!job) {
      return reject(
        jobName === undefined ? `${at}.job` : at,
        `${quote(name)} is not a job of this shard's config; the coordinator and the sidecar read different configs`,
      );
    }
    const labels = t.labels;
    if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
      return reject(`${at}.labels`, "must be an object of label names to string values");
    }
    const badValue = Object.entries(labels).find(([, v]) => typeof v !== "string" || !isValidLabelValue(v));
    if (badValue) return reject(`${at}.labels.${quote(badValue[0])}`, "must be a string");
    const badName = Object.keys(labels).find((n) => !isValidLabelName(n, config.dialect));
    if (badName !== undefined) {
      return reject(
        `${at}.labels`,
        `${quote(badName)} is not a valid label name for Prometheus ${config.dialect.version}${config.dialect.utf8Names ? "" : " ([a-zA-Z_][a-zA-Z0-9_]*)"}`,
      );
    }
    if (
      typeof (labels as Record<string, string>)[ADDRESS] !== "string" ||
      (labels as Record<string, string>)[ADDRESS] === ""
    ) {
      return reject(`${at}.labels`, "needs __address__");
    }
    const sdIndex = t.sdIndex;
    if (
      sdIndex !== undefined &&
      (typeof sdIndex !== "number" ||
        !Number.isInteger(sdIndex) ||
        sdIndex < 0 ||
        sdIndex >= job.serviceDiscovery.length)
    ) {
      return reject(
        `${at}.sdIndex`,
        `must be the index of one of job "${job.jobName}"'s ${job.serviceDiscovery.length} SD entries`,
      );
    }
    const split = t.split === undefined ? undefined : parseSplit(t.split, config);
    if (typeof split === "string") return reject(`${at}.split`, split);
    const address = (labels as Record<string, string>)[ADDRESS]!;
    const allowed = staticAddresses(job, sdIndex as number | undefined);
    if (allowed && !allowed.has(address)) {
      return reject(
        `${at}.labels.__address__`,
        `${quote(address)} is not among the static_configs targets of job "${job.jobName}"${sdIndex === undefined ? "" : ` (entry ${sdIndex})`}`,
      );
    }
    return {
      ...(typeof id === "string" ? { id } : {}),
      job: job.jobName,
      labels: labels as Record<string, string>,
      ...(sdIndex !== undefined ? { sdIndex: sdIndex as number } : {}),
      ...(split ? { split } : {}),
    };
  };
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
        ...(typeof o.id === "string" ? { id: o.id } : {}),
        job: typeof o.job === "string" ? o.job : null,
        address: typeof o.address === "string" ? o.address : null,
        problems: Array.isArray(o.problems) ? o.problems.filter((p): p is string => typeof p === "string") : [],
      },
    ];
  });
}

/** What a sidecar that applies deltas lists in its runtime report's `features`. */
export const ASSIGNMENT_DELTA_FEATURE = "assignment-delta";

/** A target of a delta: filed under its job, named by its id. */
export type DeltaTarget = Omit<AssignedTarget, "job" | "id"> & { readonly id: string };

/**
 * `PATCH /api/v1/assignment`: what changed since the set the sidecar holds at version `base`,
 * sent only to a sidecar that lists ASSIGNMENT_DELTA_FEATURE. The sidecar applies it whole or
 * not at all; when it does not hold `base` (restarted from an older file, pushed by another
 * coordinator, a set without ids) it answers 409 `assignment_base_mismatch` and the
 * coordinator sends the whole set.
 */
export interface AssignmentDelta {
  readonly version: number;
  readonly base: number;
  /** Targets in the set once applied: both sides count the same set, or the delta is refused. */
  readonly count: number;
  /** Per job, the targets added, or changed (they replace the one with their id). */
  readonly set: Readonly<Record<string, readonly DeltaTarget[]>>;
  /** Ids of the targets that leave. */
  readonly remove: readonly string[];
}

/** A delta as the sidecar applies it: its valid targets with their job, the ones it leaves out. */
export interface ParsedDelta {
  readonly version: number;
  readonly base: number;
  readonly count: number;
  readonly set: readonly AssignedTarget[];
  readonly remove: readonly string[];
  readonly rejected: readonly RejectedTarget[];
}

function mismatch(message: string): PromshardError {
  return new PromshardError("assignment_base_mismatch", `${message}; send the whole set`, { path: "assignment.base" });
}

/**
 * Validates a decoded delta body. Its shape (versions, count, every target's id, the lists) is
 * checked first and refuses the whole delta; then each target as in a whole set, the ones that
 * cannot be applied left out (and, when they replace a held one, that one goes: the result is
 * what the whole set would have given).
 */
export function parseAssignmentDelta(body: unknown, config: PromConfig): ParsedDelta {
  const errors: PromshardError[] = [];
  const b = checkShape(body, ["version", "base", "count", "set", "remove"], "delta", errors);
  nonNegativeInteger(b, "delta", "base", errors);
  nonNegativeInteger(b, "delta", "count", errors);
  if (errors.length === 0 && (b.version as number) <= (b.base as number))
    errors.push(fail("delta.version", "must be greater than base"));
  const set = b.set;
  const setShape = "must be an object of job names to lists of {id, labels, sdIndex?, split?}";
  if (set === null || typeof set !== "object" || Array.isArray(set)) errors.push(fail("delta.set", setShape));
  else
    for (const [job, list] of Object.entries(set)) {
      if (!Array.isArray(list)) errors.push(fail(`delta.set.${quote(job)}`, setShape));
      else
        for (const [i, t] of list.entries())
          if (t === null || typeof t !== "object" || typeof (t as { id?: unknown }).id !== "string")
            errors.push(fail(`delta.set.${quote(job)}[${i}].id`, "every target of a delta needs its id"));
    }
  if (!Array.isArray(b.remove) || !b.remove.every((id) => typeof id === "string"))
    errors.push(fail("delta.remove", "must be a list of target ids"));
  if (errors.length > 0) throw new PromshardErrors(errors);
  const check = targetChecker(config);
  const out: AssignedTarget[] = [];
  const rejected: RejectedTarget[] = [];
  let index = 0;
  for (const [job, list] of Object.entries(set as Record<string, unknown[]>))
    for (const [i, raw] of list.entries()) {
      const t = check(raw, `delta.set.${quote(job)}[${i}]`, index++, job, true);
      if ("problems" in t) rejected.push(t);
      else out.push(t);
    }
  return {
    version: b.version as number,
    base: b.base as number,
    count: b.count as number,
    set: out,
    remove: b.remove as string[],
    rejected,
  };
}

/**
 * The set a delta makes of the held one (pure; the sidecar's apply). Held targets keep their
 * order, a changed one its place, new ones come last. Throws `assignment_base_mismatch` when
 * the delta was not made from this set: a held target without an id, an id removed that is
 * not held, or a count that differs.
 */
export function applyAssignmentDelta(held: readonly AssignedTarget[], delta: ParsedDelta): AssignedTarget[] {
  const byId = new Map<string, AssignedTarget>();
  for (const t of held) {
    if (t.id === undefined) throw mismatch("the held set was pushed without target ids (by an older coordinator)");
    byId.set(t.id, t);
  }
  for (const id of delta.remove)
    if (!byId.delete(id)) throw mismatch(`the delta removes ${quote(id)}, which this shard does not hold`);
  for (const t of delta.set) byId.set(t.id!, t);
  let count = byId.size;
  for (const r of delta.rejected) if (r.id !== undefined && !byId.has(r.id)) count++;
  if (count !== delta.count)
    throw mismatch(`the delta makes ${count} targets of the held set where the coordinator counts ${delta.count}`);
  for (const r of delta.rejected) if (r.id !== undefined) byId.delete(r.id);
  return [...byId.values()];
}

/**
 * What changed from `base` to `next` (maps of id to whatever stands for a target's payload),
 * as a delta's `set` and `remove` (pure; the coordinator's side). `same` says whether a
 * target kept its payload; `payload` makes the payload of one that did not.
 */
export function diffAssignment<T>(
  base: ReadonlyMap<string, T>,
  next: ReadonlyMap<string, T>,
  same: (a: T, b: T) => boolean,
  payload: (t: T) => AssignedTarget,
): Pick<AssignmentDelta, "set" | "remove"> {
  const set = new Map<string, DeltaTarget[]>();
  for (const [id, t] of next) {
    const had = base.get(id);
    if (had !== undefined && same(had, t)) continue;
    const { job, id: _, ...rest } = payload(t);
    let list = set.get(job);
    if (!list) {
      list = [];
      set.set(job, list);
    }
    list.push({ id, ...rest });
  }
  const remove: string[] = [];
  for (const id of base.keys()) if (!next.has(id)) remove.push(id);
  // fromEntries defines own properties: a job named "__proto__" stays a job.
  return { set: Object.fromEntries(set), remove };
}
