/**
 * Thanos Ruler evaluating the seed's global rule (`metrics_count`, a count over every target
 * of the job) through Thanos Query over two shards (Prometheus 2.42 and 3.x) gives what one
 * unsharded Prometheus scraping every target gives, where each shard alone gives its share.
 * Both ruler modes: stateful (its own TSDB, read back through Query) and stateless
 * (--remote-write.config to a real Prometheus receiver, --web.enable-remote-write-receiver).
 */
import assert from "node:assert/strict";
import { after, describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startPrometheus } from "../support/prometheus.ts";
import { ThanosStack } from "../support/thanos.ts";
import { bins, JOB, SCRAPE_INTERVAL_S, startExporters, startShard, targetsJson } from "./fixtures.ts";

const SERIES = 120;
const RULES = `groups:
  - name: global
    interval: 1s
    rules:
      - record: metrics_count
        expr: count({__name__=~".+", job="${JOB}"})
`;

async function latest(url: string, expr: string, time?: number): Promise<number | undefined> {
  const params = new URLSearchParams({ query: expr, ...(time ? { time: (time / 1000).toFixed(3) } : {}) });
  const res = await fetch(`${url}/api/v1/query?${params}`);
  const body = (await res.json()) as { data?: { result: { value: [number, string] }[] } };
  const v = body.data?.result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

describe("Thanos Ruler: the global rule over shards", () => {
  const stack = new ThanosStack();
  after(() => stack.stop());

  it("equals the unsharded count, stateful and stateless with remote write", { timeout: 120_000 }, (t: TestContext) =>
    stack.withLogs(async () => {
      const all = bins();
      const older = all[0]!;
      const newer = all.at(-1)!;
      const targets = await startExporters(stack, 3, SERIES);
      // The reference: one Prometheus scraping every target, and the remote-write receiver.
      const [unsharded, receiver, s0, s1] = await Promise.all([
        startPrometheus(newer, {
          config: `global: {scrape_interval: ${SCRAPE_INTERVAL_S}s}\nscrape_configs:\n  - job_name: ${JOB}\n    file_sd_configs: [{files: [targets.json]}]\n`,
          files: { "targets.json": targetsJson(targets) },
        }),
        startPrometheus(older, { config: "global: {}\n", args: ["--web.enable-remote-write-receiver"] }),
        startShard(stack, older, { shard: "0", replica: "0" }, targets.slice(0, 2)),
        startShard(stack, newer, { shard: "1", replica: "0" }, targets.slice(2)),
      ]);
      stack.track("prometheus, unsharded", unsharded);
      stack.track("prometheus, remote-write receiver", receiver);
      const q = await stack.query({
        endpoints: [s0, s1].map((s) => ({ address: s.sidecar.grpcAddress, strict: true })),
      });
      const [stateful] = await Promise.all([
        stack.ruler({ name: "ruler, stateful", rules: RULES, queryUrls: [q.httpUrl] }),
        stack.ruler({
          name: "ruler, stateless",
          rules: RULES,
          queryUrls: [q.httpUrl],
          labels: { ruler: "stateless" },
          remoteWriteUrl: `${receiver.url}/api/v1/write`,
        }),
      ]);
      // The stateful ruler's results are read like a shard's: through Query, as a StoreAPI.
      await q.setEndpoints([
        ...[s0, s1].map((s) => ({ address: s.sidecar.grpcAddress, strict: true })),
        { address: stateful.grpcAddress, strict: true },
      ]);

      let expected: number | undefined;
      for (let i = 0; i < 100 && expected !== 3 * (SERIES + 5); i++) {
        expected = await latest(unsharded.url, `count({__name__=~".+", job="${JOB}"})`);
        if (expected !== 3 * (SERIES + 5)) await sleep(200);
      }
      assert.equal(expected, 3 * (SERIES + 5), "the unsharded Prometheus's count");
      const rule = `count({__name__=~".+", job="${JOB}"})`;
      let shares: (number | undefined)[] = [];
      for (let i = 0; i < 100; i++) {
        shares = [await latest(s0.prom.url, rule), await latest(s1.prom.url, rule)];
        if (shares[0] === 2 * (SERIES + 5) && shares[1] === SERIES + 5) break;
        await sleep(200);
      }
      t.diagnostic(`unsharded count ${expected}; each shard alone: ${shares}`);
      assert.deepEqual(shares, [2 * (SERIES + 5), SERIES + 5]);

      const deadline = Date.now() + 60_000;
      let got: { stateful?: number | undefined; stateless?: number | undefined } = {};
      while (Date.now() < deadline) {
        got = {
          stateful: await latest(q.httpUrl, 'metrics_count{ruler="global"}'),
          stateless: await latest(receiver.url, 'metrics_count{ruler="stateless"}'),
        };
        if (got.stateful === expected && got.stateless === expected) break;
        await sleep(250);
      }
      assert.deepEqual(got, { stateful: expected, stateless: expected });
      // Not a lucky sample: every result since the first exact one is exact. The stateless
      // ruler's remote write arrives in bursts every 15 s (its WAL is read on a timer), so wait
      // for a few samples past `since`.
      const since = Date.now();
      const stateless = 'metrics_count{ruler="stateless"}';
      let window = "";
      let n: number | undefined;
      for (let i = 0; i < 200 && (n ?? 0) < 5; i++) {
        await sleep(250);
        window = `[${Math.floor((Date.now() - since) / 1000)}s]`;
        n = await latest(receiver.url, `count_over_time(${stateless}${window})`);
      }
      const end = Date.now();
      const over = (url: string, f: string, sel: string) => latest(url, `${f}_over_time(${sel}${window})`, end);
      const [min, max] = await Promise.all(["min", "max"].map((f) => over(receiver.url, f, stateless)));
      const statefulMin = await over(q.httpUrl, "min", 'metrics_count{ruler="global"}');
      t.diagnostic(
        `stateless ruler: ${n} samples over ${window} at the receiver (${Date.now() - since} ms after the first exact one), ` +
          `min ${min}, max ${max}; stateful min ${statefulMin}`,
      );
      assert.ok((n ?? 0) >= 5, `${n} remote-written samples in ${window}`);
      assert.equal(max, expected);
      assert.equal(min, expected);
      assert.equal(statefulMin, expected);
    }),
  );
});
