import { type FSWatcher, readFileSync, watch } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import type { TargetGroup } from "../prom/targets.ts";
import type { PromDialect } from "../prom/version.ts";
import { globFiles, parseFileSdContent } from "./file.ts";
import type { Provider } from "./provider.ts";

/**
 * file_sd_configs with Prometheus's behaviour: files are re-read when their directory
 * changes and every refresh_interval; a file that stops parsing keeps its last good groups
 * (the error is logged and counted); a file that disappears, or has fewer groups than
 * before, sends empty groups for the sources it no longer has.
 */
export class FileDiscovery implements Provider {
  readonly #patterns: readonly string[];
  readonly #dialect: PromDialect;
  readonly #refreshMs: number;
  readonly #log: Logger | undefined;
  /** Sources each file produced last time it parsed. */
  readonly #sources = new Map<string, string[]>();
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #onUpdate: ((groups: TargetGroup[]) => void) | undefined;
  /** Read errors of the last refresh, by file. */
  readonly errors = new Map<string, PromshardError>();
  readonly synced = Promise.resolve();

  constructor(opts: { files: readonly string[]; dialect: PromDialect; refreshIntervalMs: number; log?: Logger }) {
    this.#patterns = opts.files;
    this.#dialect = opts.dialect;
    this.#refreshMs = opts.refreshIntervalMs;
    this.#log = opts.log;
  }

  start(onUpdate: (groups: TargetGroup[]) => void): void {
    this.#onUpdate = onUpdate;
    for (const dir of new Set(this.#patterns.map((p) => dirname(p)))) {
      try {
        const w = watch(dir, { persistent: false }, () => this.#schedule());
        w.on("error", (err) =>
          this.#log?.warn({ dir, err }, "file_sd directory watch failed; refresh_interval still applies"),
        );
        this.#watchers.push(w);
      } catch (err) {
        this.#log?.warn({ dir, err }, "cannot watch file_sd directory; refresh_interval still applies");
      }
    }
    this.refresh();
    this.#timer = setInterval(() => this.refresh(), this.#refreshMs);
    this.#timer.unref();
  }

  /** Coalesces bursts of file events (an editor's write, rename, chmod) into one read. */
  #schedule(): void {
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.refresh();
    }, 50);
    this.#debounce.unref();
  }

  /** Reads every matching file now and sends what changed. */
  refresh(): void {
    const out: TargetGroup[] = [];
    const seen = new Set<string>();
    for (const pattern of this.#patterns) {
      for (const file of globFiles(pattern)) {
        seen.add(file);
        let groups: TargetGroup[];
        try {
          groups = parseFileSdContent(readFileSync(file, "utf8"), file, this.#dialect);
        } catch (err) {
          const e =
            err instanceof PromshardError
              ? err
              : new PromshardError("discovery_failed", `cannot read: ${(err as Error).message}`, {
                  path: file,
                  cause: err,
                });
          if (this.errors.get(file)?.message !== e.message) {
            this.#log?.error({ file, err: e }, "file_sd file is broken; keeping its last good targets");
          }
          this.errors.set(file, e);
          continue;
        }
        this.errors.delete(file);
        const sources = groups.map((g) => g.source);
        for (const old of this.#sources.get(file) ?? []) {
          if (!sources.includes(old)) out.push({ source: old, targets: [], labels: {} });
        }
        this.#sources.set(file, sources);
        out.push(...groups);
      }
    }
    for (const [file, sources] of this.#sources) {
      if (seen.has(file)) continue;
      // Gone: its targets go too (a broken file stays, with its last good groups).
      for (const s of sources) out.push({ source: s, targets: [], labels: {} });
      this.#sources.delete(file);
      this.errors.delete(file);
    }
    if (out.length > 0) this.#onUpdate?.(out);
  }

  stop(): void {
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    this.#onUpdate = undefined;
  }
}
