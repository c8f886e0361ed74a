import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { FlushReport } from "../contract/flush.ts";
import { PromshardError } from "../errors.ts";
import { writeFileAtomicSync } from "../util/atomic-write.ts";
import { deleteRange, headMaxTime, noTargetsLeft, snapshotWithHead } from "./tsdb-admin.ts";

/** The file where the Thanos sidecar's shipper lists the blocks it uploaded (its --shipper.meta-file-name default). */
export const SHIPPER_FILE = "thanos.shipper.json";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

interface BlockMeta {
  readonly minTime: number;
  readonly maxTime: number;
  readonly stats?: { numSamples?: number };
  readonly compaction?: { level?: number };
}

/** What the state dir keeps of a flush, so that a restarted sidecar neither flushes twice nor forgets to release. */
interface FlushRecord {
  readonly blocks: { ulid: string; minTime: number; maxTime: number }[];
  /** The head's newest sample when flushed: a newer one means the shard scraped again since. */
  readonly headMaxTime: number;
  readonly released: boolean;
}

function readMeta(dir: string): BlockMeta | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as BlockMeta;
  } catch {
    return undefined;
  }
}

export interface HeadFlushOptions {
  readonly prometheusUrl: string;
  /** Prometheus's --storage.tsdb.path, as mounted in the sidecar; the Thanos sidecar ships from it. */
  readonly tsdbPath: string;
  readonly stateDir: string;
  readonly log: Logger;
}

/**
 * A drained shard's head, into the bucket, in a cluster. A drained shard gets no samples, so
 * Prometheus never cuts its head into a block, and the Thanos sidecar ships only blocks in the
 * TSDB directory (thanos 0.42.4 pkg/shipper: every level-1 block with samples that is not in
 * its meta file, every 30 s; it has no call to ship anything else, and `thanos tools bucket
 * upload-blocks` would need the bucket's credentials here). So, once every target's
 * staleness markers are written: a TSDB snapshot with the head (admin API, as local mode
 * takes it), whose head block is moved into the TSDB directory, where the shipper uploads it
 * with the shard's external labels like any other block. The shipper's meta file then says
 * which blocks are in the bucket (it records a block after its meta.json, uploaded last).
 *
 * Release, once the coordinator has confirmed the bucket serves them: the flushed range is
 * deleted from the head and the moved block from the disk. Otherwise the PVC (kept when
 * scaled down) would bring the same samples back with the ordinal, cut them into a second
 * block, and a Thanos Compactor halts on overlapping blocks of one stream.
 */
export class HeadFlush {
  readonly #o: HeadFlushOptions;
  readonly #file: string;
  #running: Promise<FlushReport> | undefined;

  constructor(opts: HeadFlushOptions) {
    this.#o = opts;
    this.#file = join(opts.stateDir, "flush.json");
  }

  /** One step forward (concurrent calls share one). */
  flush(release: boolean): Promise<FlushReport> {
    this.#running ??= this.#step(release).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  #read(): FlushRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.#file, "utf8")) as FlushRecord;
    } catch {
      return undefined;
    }
  }

  #write(r: FlushRecord): void {
    mkdirSync(this.#o.stateDir, { recursive: true });
    writeFileAtomicSync(this.#file, JSON.stringify(r));
  }

  /** The level-1 blocks with samples in the TSDB directory that the shipper has not recorded. */
  #unshipped(): string[] {
    const { tsdbPath } = this.#o;
    let shipped = new Set<string>();
    try {
      const meta = JSON.parse(readFileSync(join(tsdbPath, SHIPPER_FILE), "utf8")) as { uploaded?: string[] };
      shipped = new Set(meta.uploaded ?? []);
    } catch {
      // No meta file yet: the shipper has uploaded nothing.
    }
    return readdirSync(tsdbPath)
      .filter((b) => ULID.test(b) && !shipped.has(b))
      .filter((b) => {
        const m = readMeta(join(tsdbPath, b));
        // What the shipper never uploads (empty, or compacted by Prometheus) is not waited for.
        return m !== undefined && (m.stats?.numSamples ?? 0) > 0 && (m.compaction?.level ?? 1) === 1;
      })
      .sort();
  }

  async #step(release: boolean): Promise<FlushReport> {
    const { prometheusUrl, tsdbPath, log } = this.#o;
    let rec = this.#read();
    if (rec && (await headMaxTime(prometheusUrl)) > rec.headMaxTime) {
      // The drain was called off and the shard scraped again: this is a new drain, whose
      // flush must not overlap the last one's block. That block leaves the disk (and its range
      // the head) once shipped, as in a release, before the head is flushed again.
      if (!rec.released) {
        const pending = new Set(this.#unshipped());
        const blocks = rec.blocks.map((b) => b.ulid);
        if (blocks.some((b) => pending.has(b))) return { state: "shipping", blocks, unshipped: [...pending] };
        await this.#release(rec);
      }
      rec = undefined;
      rmSync(this.#file, { force: true });
    }
    if (rec?.released) return { state: "released", blocks: rec.blocks.map((b) => b.ulid), unshipped: [] };
    if (!rec) {
      if (!(await noTargetsLeft(prometheusUrl))) return { state: "draining", blocks: [], unshipped: this.#unshipped() };
      const head = await headMaxTime(prometheusUrl);
      const snapshot = join(tsdbPath, "snapshots", await snapshotWithHead(prometheusUrl));
      const moved: FlushRecord["blocks"] = [];
      try {
        // The snapshot hard-links the blocks already on disk: only the head's is new.
        for (const b of readdirSync(snapshot)) {
          const meta = readMeta(join(snapshot, b));
          if (!ULID.test(b) || existsSync(join(tsdbPath, b)) || !meta) continue;
          try {
            renameSync(join(snapshot, b), join(tsdbPath, b));
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code !== "EACCES" && code !== "EPERM") throw err;
            throw new PromshardError(
              "shard_data_unsafe",
              `cannot move the head's block ${b} into ${tsdbPath} (${code}): Prometheus owns its data directory, so run the promshard sidecar as Prometheus's user (securityContext.runAsUser on the pod)`,
              { path: "--tsdb.path" },
            );
          }
          moved.push({ ulid: b, minTime: meta.minTime, maxTime: meta.maxTime });
        }
      } finally {
        rmSync(snapshot, { recursive: true, force: true });
      }
      rec = { blocks: moved, headMaxTime: head, released: false };
      this.#write(rec);
      log.info(
        { blocks: moved.map((b) => b.ulid) },
        "drained shard's head flushed into a block for the Thanos sidecar",
      );
    }
    const blocks = rec.blocks.map((b) => b.ulid);
    const unshipped = this.#unshipped();
    if (unshipped.length > 0) return { state: "shipping", blocks, unshipped };
    if (!release) return { state: "shipped", blocks, unshipped };
    await this.#release(rec);
    this.#write({ ...rec, released: true });
    log.info({ blocks }, "drained shard's flushed range released: it is served from the bucket");
    return { state: "released", blocks, unshipped: [] };
  }

  /** Deletes the flushed range from the head, and the moved blocks from the disk (shipped). */
  async #release(rec: FlushRecord): Promise<void> {
    if (rec.blocks.length === 0) return;
    // Block ranges are half-open [minTime, maxTime); delete_series takes both ends.
    await deleteRange(
      this.#o.prometheusUrl,
      Math.min(...rec.blocks.map((b) => b.minTime)),
      Math.max(...rec.blocks.map((b) => b.maxTime)) - 1,
    );
    for (const b of rec.blocks) rmSync(join(this.#o.tsdbPath, b.ulid), { recursive: true, force: true });
  }
}
