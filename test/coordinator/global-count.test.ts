/**
 * The status page's global count against the real Prometheus (its query API is the one Thanos
 * Query serves): two demo exporters on loopback, one of them kept in two parts by the hashmod
 * a split adds, so the count must add up the parts' kept series and their own up and scrape
 * series; it equals an exact count of every series the Prometheus holds. A query endpoint that
 * does not answer is a global_query_failed naming only its origin (no path, no credentials).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { GLOBAL_SERIES_QUERY, globalSeries } from "../../src/coordinator/global-count.ts";
import { type DemoExporter, startDemoExporter } from "../../src/demo/exporter.ts";
import { PromshardError } from "../../src/errors.ts";
import { freePort } from "../../src/util/ports.ts";
import { prometheusBinaries, type RunningPrometheus, startPrometheus } from "../support/prometheus.ts";

const WHOLE = 1_000;
const SPLIT = 3_000;

for (const bin of prometheusBinaries()) {
  describe(`global series count (Prometheus ${bin.version})`, () => {
    let prom: RunningPrometheus;
    const exporters: DemoExporter[] = [];

    before(async () => {
      for (const series of [WHOLE, SPLIT]) exporters.push(await startDemoExporter({ series, host: "127.0.0.1" }));
      const [whole, split] = exporters.map((e) => `127.0.0.1:${e.port}`);
      // The split target twice, each keeping one hashmod residue, as two shards' parts would.
      const part = (i: number) => `
- job_name: split-${i}
  scrape_interval: 1s
  static_configs: [{targets: ['${split}'], labels: {promshard_part: '${i}/2'}}]
  metric_relabel_configs:
  - {action: hashmod, source_labels: [__name__, i], modulus: 2, target_label: __tmp_hash}
  - {action: keep, source_labels: [__tmp_hash], regex: '${i}'}`;
      prom = await startPrometheus(bin, {
        config: `scrape_configs:
- job_name: whole
  scrape_interval: 1s
  static_configs: [{targets: ['${whole}']}]${part(0)}${part(1)}
`,
      });
    });

    after(async () => {
      await prom?.stop();
      for (const e of exporters) await e.close();
    });

    it("counts every series once, the parts' shares and their own series added up", async () => {
      const exact = WHOLE + 5 + SPLIT + 2 * 5;
      let got = { count: -1, exact: -1 };
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(500)) {
        const r = await prom.query('count({__name__=~".+"})');
        got = {
          count: await globalSeries(prom.url),
          exact: r.resultType === "vector" ? Number(r.result[0]?.value[1] ?? 0) : -1,
        };
        if (got.exact === exact && got.count === exact) break;
      }
      assert.deepEqual(got, { count: exact, exact }, GLOBAL_SERIES_QUERY);
    });

    it("a query endpoint that does not answer is global_query_failed naming its origin only", async () => {
      const port = await freePort();
      await assert.rejects(globalSeries(`http://127.0.0.1:${port}/some/path?token=abc`, 2_000), (err: unknown) => {
        assert.ok(err instanceof PromshardError);
        assert.equal(err.code, "global_query_failed");
        assert.match(err.message, new RegExp(`^global view http://127\\.0\\.0\\.1:${port}: cannot query it`));
        assert.doesNotMatch(err.message, /token|abc|some\/path/);
        return true;
      });
    });
  });
}
