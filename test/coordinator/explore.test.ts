/**
 * The explorer's series count against the real Prometheus: the same targets (demo exporters,
 * one behind basic auth, one gzip) scraped by Prometheus and explored once by promshard, with
 * metric_relabel_configs that drop part of the series; scrape_samples_post_metric_relabeling
 * must equal our count.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { dump } from "js-yaml";
import { exploreTarget, scrapeClientFor } from "../../src/coordinator/explore.ts";
import { type DemoExporter, demoExposition, startDemoExporter } from "../../src/demo/exporter.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { targetsForJob } from "../../src/prom/targets.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { prometheusBinaries, startPrometheus } from "../support/prometheus.ts";

/** The one job of a config (3.16 semantics) and its first active target. */
function onlyTarget(yaml: string) {
  const job = parseConfig(yaml, { dialect: dialectFor("3.16") }).scrapeConfigs[0]!;
  const [target] = targetsForJob(
    job.serviceDiscovery.flatMap((sd) => ("groups" in sd ? sd.groups : [])),
    job,
  ).active;
  return { job, target };
}

describe("explore counts series as Prometheus does", () => {
  let plain: DemoExporter;
  let secured: { port: number; close(): Promise<void> };
  before(async () => {
    plain = await startDemoExporter({ series: 1234 });
    const server = createServer((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from("prom:secret").toString("base64")}`) {
        res.writeHead(401).end();
        return;
      }
      const body = `${demoExposition(300, 1)}# TYPE other_total counter\nother_total{kind="a"} 1\nother_total{kind="b"} 2\n`;
      res
        .writeHead(200, { "Content-Type": "text/plain; version=0.0.4", "Content-Encoding": "gzip" })
        .end(gzipSync(body));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    secured = {
      port: (server.address() as AddressInfo).port,
      close: () => new Promise((r) => server.close(() => r())),
    };
  });
  after(async () => {
    await plain.close();
    await secured.close();
  });

  for (const bin of prometheusBinaries()) {
    it(`Prometheus ${bin.version}: same count for plain, authenticated+gzip and relabeled jobs`, {
      timeout: 60_000,
    }, async () => {
      const jobs = [
        { job_name: "plain", scrape_interval: "1s", static_configs: [{ targets: [`127.0.0.1:${plain.port}`] }] },
        {
          job_name: "dropping",
          scrape_interval: "1s",
          static_configs: [{ targets: [`127.0.0.1:${plain.port}`] }],
          metric_relabel_configs: [{ source_labels: ["i"], regex: "1.*", action: "drop" }],
        },
        {
          job_name: "secured",
          scrape_interval: "1s",
          basic_auth: { username: "prom", password: "secret" },
          static_configs: [{ targets: [`127.0.0.1:${secured.port}`] }],
          metric_relabel_configs: [{ source_labels: ["__name__"], regex: "other_total", action: "drop" }],
        },
      ];
      const yaml = dump({ scrape_configs: jobs });
      const prom = await startPrometheus(bin, { config: yaml });
      try {
        const config = parseConfig(yaml, { dialect: dialectFor(bin.version) });
        for (const job of config.scrapeConfigs) {
          const [target] = targetsForJob(
            job.serviceDiscovery.flatMap((sd) => ("groups" in sd ? sd.groups : [])),
            job,
          ).active;
          const ours = await exploreTarget(target!, job, scrapeClientFor(job, "."));
          let theirs: number | undefined;
          for (let i = 0; i < 100 && theirs === undefined; i++) {
            const r = await prom.query(`scrape_samples_post_metric_relabeling{job="${job.jobName}"}`);
            const v = r.resultType === "vector" ? r.result[0]?.value[1] : undefined;
            if (v !== undefined) theirs = Number(v);
            else await new Promise((res) => setTimeout(res, 200));
          }
          assert.equal(ours.series, theirs, `job ${job.jobName}`);
        }
      } finally {
        await prom.stop();
      }
    });
  }

  it("a target that answers an error, garbage or nothing in time gives a clear error", async () => {
    const { job, target: t } = onlyTarget(
      `scrape_configs:\n- job_name: x\n  scrape_timeout: 500ms\n  scrape_interval: 1s\n  static_configs: [{targets: ['127.0.0.1:${plain.port}']}]\n  metrics_path: /nothing\n`,
    );
    await assert.rejects(exploreTarget(t!, job, scrapeClientFor(job, ".")), /HTTP status 404/);
    const hang = createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    const hangUrl = { ...t!, scrapeUrl: `http://127.0.0.1:${(hang.address() as AddressInfo).port}/metrics` };
    await assert.rejects(
      exploreTarget(hangUrl, job, scrapeClientFor(job, ".")),
      /within the job's scrape_timeout of 500 ms/,
    );
    hang.closeAllConnections();
    hang.close();
    const garbage = createServer((_q, s) =>
      s.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" }).end("this is { not metrics\n"),
    );
    await new Promise<void>((r) => garbage.listen(0, "127.0.0.1", r));
    const garbageUrl = { ...t!, scrapeUrl: `http://127.0.0.1:${(garbage.address() as AddressInfo).port}/metrics` };
    await assert.rejects(exploreTarget(garbageUrl, job, scrapeClientFor(job, ".")), /line 1/);
    garbage.close();
  });

  it("follows redirects as Prometheus does (follow_redirects defaults to true), and not when it is false", async () => {
    const redirecting = createServer((req, res) => {
      if (req.url === "/metrics") res.writeHead(302, { location: `http://127.0.0.1:${plain.port}/metrics` }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => redirecting.listen(0, "127.0.0.1", r));
    const port = (redirecting.address() as AddressInfo).port;
    try {
      for (const [follow, expect] of [
        ["", 1234],
        ["  follow_redirects: false\n", /HTTP status 302/],
      ] as const) {
        const { job, target: t } = onlyTarget(
          `scrape_configs:\n- job_name: r\n${follow}  static_configs: [{targets: ['127.0.0.1:${port}']}]\n`,
        );
        if (typeof expect === "number")
          assert.equal((await exploreTarget(t!, job, scrapeClientFor(job, "."))).series, expect);
        else await assert.rejects(exploreTarget(t!, job, scrapeClientFor(job, ".")), expect);
      }
    } finally {
      redirecting.close();
    }
  });
});
