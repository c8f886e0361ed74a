import { mkdir, readdir, readFile, rmdir, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PromshardError } from "../errors.ts";
import { isTempName, writeFileAtomic } from "../util/atomic-write.ts";

export interface WriteResult {
  /** Paths (relative to the targets directory) written because new or changed. */
  readonly written: string[];
  /** Paths removed because no longer produced. */
  readonly removed: string[];
  readonly unchanged: number;
}

/** `<job dir>/<name>.json`, nothing else: the only shape targetFiles produces. */
const REL = /^[A-Za-z0-9_.-]+\/[^/]+\.json$/;

/**
 * Keeps the targets directory equal to a set of files: a file is written (temporary file,
 * then rename, so file SD never reads half of one) only when its content changed, and files
 * no longer produced are removed. What is on disk is read once at start, so a restarted
 * sidecar rewrites nothing that is already right.
 */
export class TargetFileWriter {
  readonly dir: string;
  readonly #current = new Map<string, string>();
  #initialised = false;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Reads the files already there; removes temporary files left by a crash. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.#current.clear();
    for (const sub of await readdir(this.dir, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      for (const f of await readdir(join(this.dir, sub.name), { withFileTypes: true })) {
        const rel = `${sub.name}/${f.name}`;
        if (!f.isFile()) continue;
        if (isTempName(f.name)) await unlink(join(this.dir, rel)).catch(() => {});
        else if (REL.test(rel)) this.#current.set(rel, await readFile(join(this.dir, rel), "utf8"));
      }
    }
    this.#initialised = true;
  }

  /** Makes the directory hold exactly `files` (relative path → content). */
  async write(files: ReadonlyMap<string, string>): Promise<WriteResult> {
    if (!this.#initialised) await this.init();
    for (const rel of files.keys()) {
      if (!REL.test(rel) || rel.includes(".."))
        throw new PromshardError("internal_error", `refusing to write target file "${rel}"`);
    }
    const written: string[] = [];
    let unchanged = 0;
    for (const [rel, content] of files) {
      if (this.#current.get(rel) === content) {
        unchanged++;
        continue;
      }
      const path = join(this.dir, rel);
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, content);
      this.#current.set(rel, content);
      written.push(rel);
    }
    const removed: string[] = [];
    for (const rel of [...this.#current.keys()]) {
      if (files.has(rel)) continue;
      await unlink(join(this.dir, rel)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
      this.#current.delete(rel);
      removed.push(rel);
    }
    // A job that left the config leaves an empty directory behind; remove it.
    for (const jobDir of new Set(removed.map((r) => r.split("/")[0]!))) {
      if (![...this.#current.keys()].some((r) => r.startsWith(`${jobDir}/`))) {
        await rmdir(join(this.dir, jobDir)).catch(() => {});
      }
    }
    return { written, removed, unchanged };
  }

  /** The files as last written, relative path → content. */
  files(): ReadonlyMap<string, string> {
    return this.#current;
  }
}
