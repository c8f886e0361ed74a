import { hash } from "node:crypto";
import { type FSWatcher, readFileSync, watch } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import type { Labels } from "../prom/labels.ts";
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
  /**
   * Per file, a hash of the text it last parsed and its groups by source: a refresh sends
   * only the groups that changed, so that the coordinator relabels only those; at 10,000s of
   * groups a file, every group every time was most of a round (issue 16). The groups are the
   * ones the discovery manager keeps anyway; a hash, not the text, to keep memory flat.
   */
  readonly #files = new Map<string, { hash: string; groups: Map<string, TargetGroup> }>();
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
        let digest: string;
        try {
          const text = readFileSync(file, "utf8");
          digest = hash("sha1", text);
          if (this.#files.get(file)?.hash === digest) continue;
          groups = parseFileSdContent(text, file, this.#dialect);
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
        const before = this.#files.get(file)?.groups ?? new Map<string, TargetGroup>();
        const now = new Map<string, TargetGroup>();
        for (const g of groups) {
          const was = before.get(g.source);
          if (was && sameGroup(was, g)) now.set(g.source, was);
          else {
            now.set(g.source, g);
            out.push(g);
          }
        }
        for (const old of before.keys()) if (!now.has(old)) out.push({ source: old, targets: [], labels: {} });
        this.#files.set(file, { hash: digest, groups: now });
      }
    }
    for (const [file, { groups }] of this.#files) {
      if (seen.has(file)) continue;
      // Gone: its targets go too (a broken file stays, with its last good groups).
      for (const s of groups.keys()) out.push({ source: s, targets: [], labels: {} });
      this.#files.delete(file);
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

function sameLabels(a: Labels, b: Labels): boolean {
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

function sameGroup(a: TargetGroup, b: TargetGroup): boolean {
  return (
    a.targets.length === b.targets.length &&
    sameLabels(a.labels, b.labels) &&
    a.targets.every((t, i) => sameLabels(t, b.targets[i]!))
  );
}
