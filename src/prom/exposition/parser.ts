/**
 * A byte-level re-implementation of the Prometheus text (0.0.4) and OpenMetrics 1.0 parsers
 * (model/textparse in Prometheus 2.42 and 3.16), reproducing what they accept and reject,
 * token for token, including the quirks of their golex scanners: no backtracking after a
 * partial match, NUL bytes skipped inside label values / HELP text / comments, a NUL at the
 * start of a text line ending the scrape, and so on. It counts samples the way the scrape
 * loop does (scrape/scrape.go `append`): every series line is one sample of
 * `scrape_samples_scraped`; those left after metric relabeling are
 * `scrape_samples_post_metric_relabeling` (duplicates included).
 *
 * Input arrives in chunks. A record (one entry, usually one line; label values may span lines
 * in the text format) is parsed from its first byte; when the data ends inside it, the parser
 * rewinds to the record's start and waits for more, so chunks may split anything.
 */
import { Lexer } from "./lexer.ts";
import { nextOM } from "./om-parser.ts";
import { onSample } from "./series-checks.ts";
import { nextText } from "./text-parser.ts";
import * as tokens from "./tokens.ts";

// Module-local copies of the shared constants, for speed (see tokens.ts).
const { NEED_MORE } = tokens;

/** Counts the samples and series of one scrape, fed chunk by chunk (counter.ts drives it). */
export class ExpositionParser extends Lexer {
  get finished(): boolean {
    return this.done;
  }

  /**
   * Parses b[from:end] (b[0:from] is already consumed). Returns the offset of the first byte
   * not consumed: the start of an incomplete record, or `end`.
   */
  feed(b: Uint8Array, from: number, end: number, final: boolean): number {
    this.b = b;
    this.i = from;
    this.end = end;
    this.final = final;
    this.ckI = from;
    this.ckState = this.state;
    if (this.done) return end;
    const max = this.cfg.maxLineBytes;
    for (;;) {
      let r: number;
      try {
        r = this.om ? nextOM(this) : nextText(this);
      } catch (e) {
        if (e !== NEED_MORE) throw e;
        this.i = this.ckI;
        this.state = this.ckState;
        if (end - this.ckI > max) this.tooLong(this.ckI);
        return this.ckI;
      }
      if (this.i - this.recStart > max) this.tooLong(this.recStart);
      if (r === 0) {
        this.done = true;
        return end;
      }
      if (r === 2) onSample(this);
      this.ckI = this.i;
      this.ckState = this.state;
    }
  }
}
