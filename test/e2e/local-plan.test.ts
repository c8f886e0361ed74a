/**
 * `promshard plan` against a running `promshard local` (real Prometheus shards, demo
 * exporters on loopback): the seed's six targets of 10045 series under a 30000 budget run on
 * 3 shards; plan, given the same config and --coordinator.url, reads the series the
 * coordinator measured (not --series.default, set absurdly low here), agrees with what runs
 * (3 shards, the same series per shard), and answers what-ifs of other budgets: 20000 needs
 * one shard per target, 8000 splits every target in two. The coordinator's status page
 * answers the same what-if with the same code, plots each shard's series with the scalings
 * marked, and shows the global view's count, equal to an exact count of its series; when a
 * target grows past what its shard holds and moves, the move is marked on both shards' plots.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Plan } from "../../src/coordinator/capacity-plan.ts";
import {
  e2eBinaries,
  type PromshardLocal,
  queryValue,
  Scenario,
  SERIES_PER_TARGET,
  type Shard,
  until,
} from "./harness.ts";

const CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

async function promshard(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  return { code, stdout, stderr };
}

for (const bin of e2eBinaries("newest")) {
  describe(`promshard plan against promshard local (Prometheus ${bin.version})`, () => {
    const s = new Scenario("plan", bin);
    after(() => s.close());
    let local: PromshardLocal;
    let running: Shard[];

    const plan = async (budget: number, output = "json") => {
      const r = await promshard(
        "plan",
        `--config=${s.configPath}`,
        `--coordinator.url=${local.url}`,
        `--shard.max-series=${budget}`,
        "--series.default=1",
        `--output=${output}`,
      );
      assert.equal(r.code, 0, `${r.stderr}\n${local.tail()}`);
      return r.stdout;
    };

    it("the seed's case runs on 3 shards", { timeout: 180_000 }, async () => {
      ({ local, shards: running } = await s.startSteady(6));
      assert.equal(running.length, 3);
    });

    it("plans with the coordinator's measurements what runs: 3 shards, the same series each", async () => {
      const p = JSON.parse(await plan(30_000)) as Plan;
      assert.equal(p.targets, 6);
      assert.equal(p.totalSeries, 6 * SERIES_PER_TARGET, "each target counted once with its 5 scrape series");
      for (const t of p.largest) {
        assert.equal(t.source, "coordinator");
        assert.equal(t.series, SERIES_PER_TARGET);
      }
      assert.equal(p.shards, running.length);
      assert.deepEqual(
        p.perShard.map((x) => x.series).sort(),
        running.map((x) => x.series).sort(),
        "series per shard as the coordinator counts them",
      );
    });

    it("what-if 20000: one shard per target", async () => {
      const p = JSON.parse(await plan(20_000)) as Plan;
      assert.equal(p.shards, 6);
      for (const x of p.perShard) assert.deepEqual([x.targets.length, x.series], [1, SERIES_PER_TARGET]);
    });

    it("what-if 8000: every target split in two, no shard over 8000", async () => {
      const p = JSON.parse(await plan(8_000)) as Plan;
      assert.deepEqual(
        p.largest.map((t) => t.parts),
        Array(6).fill(2),
      );
      assert.equal(p.shards, 12);
      for (const x of p.perShard) {
        assert.ok(x.series <= 8_000, `shard ${x.shard} plans ${x.series}`);
        assert.deepEqual(
          x.targets.map((t) => t.parts),
          [2],
        );
      }
      const table = await plan(8_000, "table");
      assert.match(table, new RegExp(`^6 targets, ${6 * SERIES_PER_TARGET} series: 12 shard\\(s\\) of 8000 series`));
      assert.match(
        table,
        new RegExp(`demo\\s+127\\.0\\.0\\.1:\\d+\\s+${SERIES_PER_TARGET} \\(coordinator\\)\\s+2 parts`),
      );
    });

    const page = async (query = "") => {
      const res = await fetch(`${local.url}/${query}`);
      return { status: res.status, html: await res.text() };
    };

    it("the status page plots each shard with the scalings marked and shows the global count, exact", async () => {
      const { status, html } = await page();
      assert.equal(status, 200);
      const plots = html.match(/<section class="shard"[\s\S]*?<\/section>/g) ?? [];
      assert.equal(plots.length, 3);
      for (const section of plots) {
        assert.match(section, /<polyline class="series" points="[\d., ]+"/);
        assert.match(section, /<g class="mark scale"[^>]*><title>[^<]*shards \d → \d/, "the scale-up to 3 shards");
      }
      const exact = await queryValue(local.globalUrl, 'count({__name__=~".+"})');
      assert.equal(exact, 6 * SERIES_PER_TARGET);
      await until(
        "the status page's global count",
        async () => {
          const shown = (await page()).html.match(/<span class="count">(\d+)<\/span>/)?.[1];
          if (shown !== String(exact)) throw new Error(`the page shows ${shown}`);
          return true;
        },
        { timeoutMs: 30_000, everyMs: 1000 },
      );
    });

    it("the status page's what-if: ?max-series=20000 needs 6 shards; a bad value is a 400 naming the field", async () => {
      const { status, html } = await page("?max-series=20000");
      assert.equal(status, 200);
      assert.match(
        html,
        /A budget of 20000 series needs <strong>6<\/strong> shard\(s\) for 6 targets and 60270 series \(now: 3\)/,
      );
      assert.equal(html.match(/<tr data-shard=/g)?.length, 6);
      const bad = await page("?max-series=lots");
      assert.equal(bad.status, 400);
      assert.match(bad.html, /max-series: &#34;lots&#34; is not a whole number of series above 0/);
    });

    it("a target grows and moves: the move is marked on the plots of both its shards", {
      timeout: 180_000,
    }, async () => {
      const [grown] = s.demoInstances();
      await s.growTarget(grown!, 20_040);
      const move = await until(
        "a move of a target",
        async () => {
          for (const e of await local.events()) {
            const m = e.kind === "move" ? /moves from shard (\d+) to shard (\d+)/.exec(e.text) : null;
            if (m) return { text: e.text, shards: [Number(m[1]), Number(m[2])] };
          }
          return undefined;
        },
        { timeoutMs: 120_000, everyMs: 1000, context: () => local.tail() },
      );
      const { html } = await page();
      for (const id of move.shards) {
        const section =
          html.match(new RegExp(`<section class="shard" data-shard="${id}"[\\s\\S]*?</section>`))?.[0] ?? "";
        const marks = [...section.matchAll(/<g class="mark move"[^>]*><title>([^<]*)<\/title>/g)].map((x) => x[1]);
        assert.ok(
          marks.some((t) => t?.endsWith(` ${move.text}`)),
          `shard ${id}'s plot marks ${JSON.stringify(marks)}, not "${move.text}"`,
        );
      }
    });
  });
}
