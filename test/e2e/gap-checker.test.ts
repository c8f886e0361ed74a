/**
 * The gap checker checked: one real Prometheus scrapes two demo exporters every 2 s; one is
 * stopped for three scrape intervals and started again on its port. checkNoGaps must fail
 * and name that target's hole (its `up` samples go on, as up == 0; the exporter's counter has
 * the hole), and pass for the other.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startDemoExporter } from "../../src/demo/exporter.ts";
import { checkNoGaps, e2eBinaries, JOB, MAX_GAP_MS, SCRAPE_INTERVAL_MS, Scenario, until } from "./harness.ts";

for (const bin of e2eBinaries("newest")) {
  describe(`the e2e gap checker, with Prometheus ${bin.version}`, () => {
    const s = new Scenario("gaps", bin);
    after(() => s.close());

    it("finds a hole of three missed scrapes and passes a target without one", { timeout: 90_000 }, async () => {
      const [steady, paused] = await s.addDemoTargets(2);
      const prom = await s.startPrometheus({
        config: `global: {scrape_interval: ${SCRAPE_INTERVAL_MS / 1000}s}\nscrape_configs:\n- job_name: ${JOB}\n  static_configs: [{targets: ['${steady}', '${paused}']}]\n`,
      });
      const targets = s.gapTargets();
      await until("a few scrapes", async () => (await checkNoGaps(prom.url, targets, { tailWaitMs: 0 })).length, {
        timeoutMs: 30_000,
      });
      await sleep(2 * SCRAPE_INTERVAL_MS);

      const port = Number(paused!.split(":")[1]);
      await s.exporter(paused!).close();
      await sleep(3 * SCRAPE_INTERVAL_MS);
      const again = await startDemoExporter({ series: 10, port });
      await sleep(3 * SCRAPE_INTERVAL_MS);

      const err = await checkNoGaps(prom.url, targets).then(
        () => undefined,
        (e: Error) => e,
      );
      await again.close();
      assert.ok(err, "the gap checker found no hole");
      const lines = err.message.split("\n");
      const hole = lines.find((l) => l.startsWith(`FAIL ${paused} demo_scrapes_total`));
      assert.ok(hole, `names the hole:\n${err.message}`);
      const gap = Number(/max gap (\d+) ms/.exec(hole)?.[1]);
      assert.ok(gap > MAX_GAP_MS && gap < 10 * SCRAPE_INTERVAL_MS, hole);
      assert.ok(
        lines.some((l) => l.startsWith(`ok   ${paused} up`)),
        `up of the paused target has no hole (up == 0 samples):\n${err.message}`,
      );
      assert.ok(
        lines.filter((l) => l.includes(steady!)).every((l) => l.startsWith("ok")),
        `the steady target passes:\n${err.message}`,
      );
    });
  });
}
