import { mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { AssignedTarget, Assignment, TargetSplit } from "../contract/assignment.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";

/** The applied assignment as kept on disk, with when it was applied. */
export interface StoredAssignment extends Assignment {
  readonly appliedAt: string;
}

export type LoadResult =
  | { readonly state: "none" }
  | { readonly state: "loaded"; readonly assignment: StoredAssignment }
  /** The file could not be used; it was moved aside to `movedTo` so that a human can look at it. */
  | { readonly state: "corrupt"; readonly problem: string; readonly movedTo: string };

const FILE = "assignment.json";
const FORMAT = 1;

/**
 * The last applied assignment, in the state directory (DESIGN §5: with the coordinator gone,
 * Prometheus keeps scraping what it had). Written to a temporary file, synced, renamed over
 * the old one and the directory synced, so a crash leaves the old or the new file, never half
 * of one. The jobs are not checked against a config here: the config may have changed since.
 */
export class AssignmentStore {
  readonly path: string;
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    this.path = join(dir, FILE);
  }

  async load(): Promise<LoadResult> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { state: "none" };
      throw err;
    }
    const problem = checkStored(text);
    if (typeof problem === "string") {
      const movedTo = `${this.path}.corrupt-${Date.now()}`;
      await rename(this.path, movedTo);
      return { state: "corrupt", problem, movedTo };
    }
    return { state: "loaded", assignment: problem };
  }

  async save(a: Assignment, appliedAt = new Date()): Promise<StoredAssignment> {
    const stored: StoredAssignment = { version: a.version, appliedAt: appliedAt.toISOString(), targets: a.targets };
    await mkdir(this.#dir, { recursive: true });
    await writeFileAtomic(this.path, `${JSON.stringify({ format: FORMAT, ...stored })}\n`, {
      mode: 0o600,
      durable: true,
    });
    return stored;
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isSplit(v: unknown): v is TargetSplit {
  return (
    isObj(v) &&
    Number.isInteger(v.part) &&
    Number.isInteger(v.parts) &&
    Array.isArray(v.by) &&
    v.by.every((n) => typeof n === "string")
  );
}

/** The stored assignment, or what is wrong with the file. */
function checkStored(text: string): StoredAssignment | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (!isObj(doc)) return "not a JSON object";
  if (doc.format !== FORMAT) return `format ${JSON.stringify(doc.format)} is not ${FORMAT}`;
  if (typeof doc.version !== "number" || !Number.isSafeInteger(doc.version) || doc.version < 0) {
    return "version is not a non-negative integer";
  }
  if (typeof doc.appliedAt !== "string") return "appliedAt is missing";
  if (!Array.isArray(doc.targets)) return "targets is not a list";
  const targets: AssignedTarget[] = [];
  for (const [i, t] of doc.targets.entries()) {
    if (!isObj(t) || typeof t.job !== "string" || !isObj(t.labels)) return `targets[${i}] is not {job, labels}`;
    if (!Object.values(t.labels).every((v) => typeof v === "string")) return `targets[${i}].labels has a non-string`;
    if (t.sdIndex !== undefined && !Number.isInteger(t.sdIndex)) return `targets[${i}].sdIndex is not an integer`;
    if (t.id !== undefined && typeof t.id !== "string") return `targets[${i}].id is not a string`;
    if (t.split !== undefined && !isSplit(t.split)) return `targets[${i}].split is not {part, parts, by}`;
    // The id keeps deltas applicable after a restart, the split keeps the part's rules.
    targets.push({
      ...(t.id !== undefined ? { id: t.id as string } : {}),
      job: t.job,
      labels: t.labels as Record<string, string>,
      ...(t.sdIndex !== undefined ? { sdIndex: t.sdIndex as number } : {}),
      ...(t.split !== undefined ? { split: t.split as TargetSplit } : {}),
    });
  }
  return { version: doc.version, appliedAt: doc.appliedAt, targets };
}
