import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { open, rename, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** Mode of the new file (default 0o644); 0o600 for anything that can hold a secret. */
  readonly mode?: number;
  /** fsync the file and its directory: the new content survives a power loss, not only a crash. */
  readonly durable?: boolean;
}

/**
 * The temporary file beside `path`: hidden and ending in `.tmp`, so that it never matches a
 * glob a reader watches (Prometheus's file SD reads `*.json`), and random, so that two
 * writers never share one.
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Whether `name` is a temporary file such as `tempPathFor` makes (left behind by a crash). */
export function isTempName(name: string): boolean {
  return /^\..+\.tmp$/.test(name);
}

/**
 * Writes `content` to a temporary file beside `path` and renames it over `path`: a reader
 * sees the old file or the new one, never half of one. On failure the temporary file is
 * removed and the old file stays.
 */
export async function writeFileAtomic(path: string, content: string, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    if (opts.durable) {
      const fh = await open(tmp, "w", opts.mode ?? 0o644);
      try {
        await fh.writeFile(content);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else await writeFile(tmp, content, { mode: opts.mode ?? 0o644 });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  if (opts.durable) await syncDir(dirname(path));
}

/** writeFileAtomic for callers that cannot wait (state saved between two steps of a start). */
export function writeFileAtomicSync(path: string, content: string, opts: AtomicWriteOptions = {}): void {
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, "w", opts.mode ?? 0o644);
    try {
      writeFileSync(fd, content);
      if (opts.durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await fh.close();
  }
}
