/**
 * S9 (DESIGN §8, §5a): a global recording rule. The seed's `metrics_count`, a count over
 * every target, given to `promshard local` with --global.rule-file, is evaluated on the global
 * endpoint over all shards; an unsharded Prometheus with the same scrape config and the same
 * rule file runs beside it. In steady state both record the same value, 6 × 10045. And with
 * --global.remote-write-url, Thanos Ruler runs stateless and the same value arrives at a real
 * remote-write receiver (a Prometheus with --web.enable-remote-write-receiver).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { e2eBinaries, queryValue, Scenario, SERIES_PER_TARGET, until } from "./harness.ts";

const RULES = `groups:
- name: g
  rules:
  - record: metrics_count
    expr: 'count({__name__=~".+", job="demo"})'
`;

for (const bin of e2eBinaries("newest")) {
  describe(`S9 global rules, with promshard local and Prometheus ${bin.version}`, () => {
    const s = new Scenario("s9", bin);
    after(() => s.close());

    it("metrics_count on the global endpoint equals the unsharded Prometheus's: 6 × 10045", {
      timeout: 240_000,
    }, async (t) => {
      const rules = join(s.dir, "rules.yml");
      s.writeFile(rules, RULES);
      const { local } = await s.startSteady(6, { local: { flags: ["--global.rule-file", rules] } });
      const unsharded = await s.startPrometheus({ config: s.configText({ ruleFiles: [rules] }) });
      const want = 6 * SERIES_PER_TARGET;
      const both = await until(
        `metrics_count is ${want} on both`,
        async () => {
          const [global, single] = await Promise.all([
            queryValue(local.globalUrl, "metrics_count"),
            queryValue(unsharded.url, "metrics_count"),
          ]);
          if (global !== want || single !== want) throw new Error(`global ${global}, unsharded ${single}`);
          return { global, single };
        },
        { timeoutMs: 120_000, everyMs: 1000, context: () => local.tail() },
      );
      assert.equal(both.global, both.single);
      t.diagnostic(`metrics_count: global ${both.global}, unsharded ${both.single}`);
    });
  });
}

for (const bin of e2eBinaries("newest")) {
  describe(`S9 global rules written to a remote-write receiver, with promshard local and Prometheus ${bin.version}`, () => {
    const s = new Scenario("s9rw", bin);
    after(() => s.close());

    it("metrics_count arrives at the receiver: 6 × 10045", { timeout: 240_000 }, async (t) => {
      const rules = join(s.dir, "rules.yml");
      s.writeFile(rules, RULES);
      const receiver = await s.startPrometheus({
        config: "global: {scrape_interval: 1m}\n",
        args: ["--web.enable-remote-write-receiver"],
      });
      const { local } = await s.startSteady(6, {
        local: { flags: ["--global.rule-file", rules, "--global.remote-write-url", `${receiver.url}/api/v1/write`] },
      });
      const want = 6 * SERIES_PER_TARGET;
      const got = await until(
        `metrics_count is ${want} at the receiver`,
        async () => {
          const v = await queryValue(receiver.url, "metrics_count");
          if (v !== want) throw new Error(`receiver has ${v}`);
          return v;
        },
        { timeoutMs: 150_000, everyMs: 1000, context: () => local.tail() },
      );
      t.diagnostic(`metrics_count at the receiver: ${got}`);
    });
  });
}
