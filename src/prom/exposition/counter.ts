import { PromshardError } from "../../errors.ts";
import type { Labels } from "../labels.ts";
import { dialectFor, type PromDialect } from "../version.ts";
import { type ExpositionFormat, isV3 } from "./content-type.ts";
import { ExpositionParser } from "./parser.ts";

export interface SeriesCount {
  /** scrape_samples_scraped: every sample line (histogram/summary lines each count). */
  samples: number;
  /** scrape_samples_post_metric_relabeling: samples not dropped by metric relabeling (duplicates included). */
  series: number;
}

export interface SeriesCounter {
  write(chunk: Uint8Array | string): void;
  end(): SeriesCount;
}

export interface SeriesCounterOptions {
  format: ExpositionFormat;
  /**
   * Applied to each sample's labels (with `__name__`), as metric_relabel_configs would be
   * after the target labels are attached; returns the new labels, or null to drop. Labels with
   * an empty value are already removed (as labels.Builder does). When absent, labels are
   * never materialised.
   */
  metricRelabel?: (labels: Labels) => Labels | null;
  /** Longest entry (usually a line) accepted, in bytes; default 16 MiB. */
  maxLineBytes?: number;
  /** The Prometheus whose parser to follow; default 3.16. */
  dialect?: PromDialect;
  /**
   * 3.x with --enable-feature=created-timestamp-zero-ingestion (or st-storage): OpenMetrics
   * `_created` lines of counters, histograms and summaries are start timestamps, not samples.
   */
  skipCreatedSeries?: boolean;
  /** Named in error messages (e.g. the target's URL). */
  source?: string;
}

const DEFAULT_MAX_LINE = 16 * 1024 * 1024;
const encoder = new TextEncoder();

class Counter implements SeriesCounter {
  private readonly parser: ExpositionParser;
  private readonly text: boolean;
  private readonly v3: boolean;
  private tail = new Uint8Array(0);
  private tailLen = 0;
  /** Tail length at which re-parsing is worth trying (doubles while one entry stays incomplete). */
  private retryAt = 0;
  private total = 0;
  private lastByte = -1;
  private pendingHigh = "";
  private ended = false;

  constructor(opts: SeriesCounterOptions) {
    if (opts.format !== "text" && opts.format !== "openmetrics") {
      throw new PromshardError("exposition_invalid", `unknown exposition format ${JSON.stringify(opts.format)}`);
    }
    const dialect = opts.dialect ?? dialectFor();
    this.v3 = isV3(dialect);
    if (opts.skipCreatedSeries && !this.v3) {
      throw new PromshardError("exposition_invalid", "skipCreatedSeries exists only in Prometheus 3.x");
    }
    const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE;
    if (!(max > 0)) throw new PromshardError("exposition_invalid", "maxLineBytes must be positive");
    this.text = opts.format === "text";
    this.parser = new ExpositionParser({
      openMetrics: !this.text,
      v3: this.v3,
      utf8Names: dialect.utf8Names,
      skipCreatedSeries: opts.skipCreatedSeries ?? false,
      metricRelabel: opts.metricRelabel,
      maxLineBytes: max,
      source: opts.source,
    });
  }

  write(chunk: Uint8Array | string): void {
    if (this.ended) throw new PromshardError("exposition_invalid", "write after end()");
    let bytes: Uint8Array;
    if (typeof chunk === "string") {
      let s = this.pendingHigh + chunk;
      this.pendingHigh = "";
      const last = s.charCodeAt(s.length - 1);
      if (last >= 0xd800 && last <= 0xdbff) {
        // Half a surrogate pair: wait for the other half.
        this.pendingHigh = s.slice(-1);
        s = s.slice(0, -1);
      }
      bytes = encoder.encode(s);
    } else {
      bytes = chunk;
    }
    if (bytes.length === 0) return;
    this.total += bytes.length;
    this.lastByte = bytes[bytes.length - 1]!;
    this.push(bytes, false);
  }

  end(): SeriesCount {
    if (this.ended) throw new PromshardError("exposition_invalid", "end() called twice");
    if (this.pendingHigh !== "") {
      const b = encoder.encode(this.pendingHigh);
      this.pendingHigh = "";
      this.total += b.length;
      this.lastByte = b[b.length - 1]!;
      this.push(b, false);
    }
    this.ended = true;
    // Prometheus 3 returns before parsing an empty body (scrape.go append: len(b) == 0).
    if (this.total === 0 && this.v3) return { samples: 0, series: 0 };
    // The text parser adds a final newline: 2.42 always, 3.x when missing.
    const extra = this.text && (!this.v3 || this.lastByte !== 0x0a) ? new Uint8Array([0x0a]) : new Uint8Array(0);
    this.push(extra, true);
    return { samples: this.parser.samples, series: this.parser.series };
  }

  private push(bytes: Uint8Array, final: boolean): void {
    const p = this.parser;
    if (p.finished) return;
    if (this.tailLen === 0) {
      const used = p.feed(bytes, 0, bytes.length, final);
      if (used < bytes.length && !p.finished) {
        p.discard(bytes, used);
        this.keep(bytes, used, bytes.length);
      }
      return;
    }
    // Append to the pending entry and parse from its start.
    const need = this.tailLen + bytes.length;
    if (need > this.tail.length) {
      const grown = new Uint8Array(Math.max(need, this.tail.length * 2, 4096));
      grown.set(this.tail.subarray(0, this.tailLen));
      this.tail = grown;
    }
    this.tail.set(bytes, this.tailLen);
    this.tailLen = need;
    if (!final && this.tailLen < this.retryAt) return;
    const used = p.feed(this.tail, 0, this.tailLen, final);
    if (p.finished) {
      this.tailLen = 0;
      return;
    }
    p.discard(this.tail, used);
    this.tail.copyWithin(0, used, this.tailLen);
    this.tailLen -= used;
    // Still inside one entry: try again once it has doubled, keeping long entries linear.
    this.retryAt = used === 0 ? this.tailLen * 2 : 0;
  }

  private keep(b: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n > this.tail.length) this.tail = new Uint8Array(Math.max(n * 2, 4096));
    this.tail.set(b.subarray(from, to), 0);
    this.tailLen = n;
    this.retryAt = 0;
  }
}

/** A streaming counter: write() chunks as they arrive (split anywhere), end() for the counts. */
export function createSeriesCounter(opts: SeriesCounterOptions): SeriesCounter {
  return new Counter(opts);
}

/** Counts a whole body. Throws PromshardError("exposition_invalid") where Prometheus would fail the scrape. */
export function countSeries(body: Uint8Array | string, opts: SeriesCounterOptions): SeriesCount {
  const c = createSeriesCounter(opts);
  c.write(body);
  return c.end();
}
