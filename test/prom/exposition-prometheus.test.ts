/**
 * Differential test: real Prometheus (every binary from prometheusBinaries()) scrapes each
 * exposition from a local server, one job per exposition; its scrape_samples_scraped and
 * scrape_samples_post_metric_relabeling must equal countSeries(). Where our counter throws,
 * Prometheus must have failed the scrape (up == 0).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { PromshardError } from "../../src/errors.ts";
import {
  countSeries,
  type ExpositionFormat,
  formatFromContentType,
  type SeriesCount,
} from "../../src/prom/exposition/index.ts";
import type { Labels } from "../../src/prom/labels.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { prometheusBinaries, type RunningPrometheus, startPrometheus } from "../support/prometheus.ts";

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/exposition/${name}`, import.meta.url), "utf8");

const TEXT = "text/plain; version=0.0.4; charset=utf-8";
const OM = "application/openmetrics-text; version=1.0.0; charset=utf-8";

interface Exposition {
  job: string;
  body: string;
  contentType: string | undefined;
  /** metric_relabel_configs (YAML list items, indented for the job) and the same rule as a function. */
  relabelYaml?: string;
  relabel?: (l: Labels) => Labels | null;
}

const EXPOSITIONS: Exposition[] = [
  { job: "text_basic", body: fixture("basic.txt"), contentType: TEXT },
  { job: "text_histogram_summary", body: fixture("histogram.txt"), contentType: TEXT },
  { job: "om_full", body: fixture("openmetrics.txt"), contentType: OM },
  { job: "text_duplicates", body: fixture("duplicates.txt"), contentType: TEXT },
  {
    job: "text_relabel_drop",
    body: fixture("relabel.txt"),
    contentType: TEXT,
    relabelYaml: [
      "      - source_labels: [__name__]",
      "        regex: go_.*",
      "        action: drop",
      "      - source_labels: [code]",
      "        regex: 5..",
      "        action: drop",
    ].join("\n"),
    relabel: (l) => (/^go_.*$/.test(l.__name__ ?? "") || /^5..$/.test(l.code ?? "") ? null : l),
  },
  {
    job: "om_relabel_drop_created",
    body: fixture("openmetrics.txt"),
    contentType: OM,
    relabelYaml: ["      - source_labels: [__name__]", "        regex: .*_created", "        action: drop"].join("\n"),
    relabel: (l) => (/^.*_created$/.test(l.__name__ ?? "") ? null : l),
  },
  // Accepted by one version and not the other.
  { job: "text_no_content_type", body: "a 1\nb 2\n", contentType: undefined },
  { job: "text_leading_blank", body: "ok_metric 1\n  indented_metric 2\n", contentType: TEXT },
  { job: "text_utf8_name", body: '{"my.metric", a="b"} 1\nplain 2\n', contentType: TEXT },
  { job: "om_trailing_comma", body: 'm{a="1",} 1\n# EOF\n', contentType: OM },
  { job: "om_exemplar_on_gauge", body: 'g 1 # {t="x"} 2\n# EOF\n', contentType: OM },
  // Rejected by both.
  { job: "text_duplicate_label", body: 'm{a="1",a="2"} 1\n', contentType: TEXT },
  { job: "text_bad_value", body: "m 1e400\n", contentType: TEXT },
  { job: "om_missing_eof", body: "m_total 1\n", contentType: OM },
  { job: "om_plain_comment", body: "# just a comment\nm 1\n# EOF\n", contentType: OM },
  { job: "text_bad_escape_is_fine", body: 'm{a="\\q"} 1\n', contentType: TEXT },
];

function ours(e: Exposition, version: string): SeriesCount | PromshardError {
  const dialect = dialectFor(version);
  try {
    const format: ExpositionFormat = formatFromContentType(e.contentType, { dialect });
    return countSeries(e.body, { format, dialect, metricRelabel: e.relabel });
  } catch (err) {
    if (err instanceof PromshardError) return err;
    throw err;
  }
}

let server: Server;
let target = "";

before(async () => {
  const byPath = new Map(EXPOSITIONS.map((e) => [`/${e.job}`, e]));
  server = createServer((req, res) => {
    const e = byPath.get(req.url ?? "");
    if (!e) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = {};
    if (e.contentType !== undefined) headers["Content-Type"] = e.contentType;
    res.writeHead(200, headers).end(e.body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((r) => server.close(() => r())));

function config(): string {
  const jobs = EXPOSITIONS.map((e) =>
    [
      `  - job_name: ${e.job}`,
      `    metrics_path: /${e.job}`,
      "    scrape_interval: 1s",
      "    scrape_timeout: 1s",
      `    static_configs: [{targets: ["${target}"]}]`,
      ...(e.relabelYaml ? ["    metric_relabel_configs:", e.relabelYaml] : []),
    ].join("\n"),
  );
  return `global:\n  scrape_interval: 1s\nscrape_configs:\n${jobs.join("\n")}\n`;
}

async function byJob(p: RunningPrometheus, expr: string): Promise<Map<string, number>> {
  const r = await p.query(expr);
  assert.equal(r.resultType, "vector");
  const out = new Map<string, number>();
  if (r.resultType === "vector") for (const s of r.result) out.set(s.metric.job ?? "", Number(s.value[1]));
  return out;
}

for (const bin of prometheusBinaries()) {
  describe(`Prometheus ${bin.version}`, () => {
    let prom: RunningPrometheus;
    before(async () => {
      prom = await startPrometheus(bin, { config: config() });
    });
    after(() => prom?.stop());

    test("scrape_samples_scraped and _post_metric_relabeling equal our counts", { timeout: 90_000 }, async () => {
      // Wait until every job was scraped at least twice (the second scrape has a warm cache).
      const deadline = Date.now() + 60_000;
      for (;;) {
        const up = await byJob(prom, "count_over_time(up[1m])");
        if (EXPOSITIONS.every((e) => (up.get(e.job) ?? 0) >= 2)) break;
        assert.ok(Date.now() < deadline, `not every job scraped twice: ${JSON.stringify([...up])}`);
        await sleep(500);
      }
      const up = await byJob(prom, "up");
      const scraped = await byJob(prom, "scrape_samples_scraped");
      const post = await byJob(prom, "scrape_samples_post_metric_relabeling");
      const rows: string[] = [];
      for (const e of EXPOSITIONS) {
        const got = ours(e, bin.version);
        const prometheus = { up: up.get(e.job), samples: scraped.get(e.job), series: post.get(e.job) };
        rows.push(
          `${e.job}: prometheus ${JSON.stringify(prometheus)} ours ${got instanceof Error ? `error: ${got.message}` : JSON.stringify(got)}`,
        );
        if (got instanceof PromshardError) {
          assert.equal(
            prometheus.up,
            0,
            `${e.job}: we reject (${got.message}) but Prometheus ${bin.version} scraped it`,
          );
        } else {
          assert.equal(
            prometheus.up,
            1,
            `${e.job}: we count ${JSON.stringify(got)} but Prometheus ${bin.version} failed it`,
          );
          assert.deepEqual({ samples: prometheus.samples, series: prometheus.series }, got, e.job);
        }
      }
      console.log(`Prometheus ${bin.version}:\n  ${rows.join("\n  ")}`);
    });
  });
}
