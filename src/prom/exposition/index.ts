/**
 * Counting a scrape's series exactly as Prometheus does, from the exposition bytes.
 *
 *   samples = scrape_samples_scraped
 *   series  = scrape_samples_post_metric_relabeling
 *
 * See parser.ts for the grammar and counter.ts for the streaming API.
 */

export { type ContentTypeOptions, type ExpositionFormat, formatFromContentType } from "./content-type.ts";
export {
  countSeries,
  createSeriesCounter,
  type SeriesCount,
  type SeriesCounter,
  type SeriesCounterOptions,
} from "./counter.ts";
