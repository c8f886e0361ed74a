/**
 * The status page's plots, global count and what-if as a person sees them in Debian's headless
 * Chromium (see status-page-browser.test.ts for the bars): each shard's series over the last
 * hour is a line whose vertices sit where time and series put them, and whose pixels are
 * there in a screenshot; a move is an orange line on the plots of its two shards only, a
 * scaling a purple line on every plot; the global count is shown with its own plot, or, with
 * no global endpoint, a sentence saying so; `?max-series` answers with the plan of the same
 * code as `promshard plan`, and a bad value with a message naming the field.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";
import { capacityPlan } from "../../src/coordinator/capacity-plan.ts";
import type { ShardStatus, TargetStatus } from "../../src/coordinator/coordinator.ts";
import { SeriesHistory } from "../../src/coordinator/series-history.ts";
import { PLOT, renderStatusPage } from "../../src/coordinator/status-page.ts";
import { getStrategy } from "../../src/scheduler/index.ts";
import { countColour, decodePng, type Image } from "../support/png.ts";

const CHROMIUM = "/usr/bin/chromium";
const BLUE = [0x33, 0x66, 0xcc] as const; // #36c, the series line
const ORANGE = [0xee, 0x88, 0x00] as const; // #e80, a move
const PURPLE = [0x99, 0x33, 0xcc] as const; // #93c, a scaling
const HOUR = 3_600_000;
const NOW = Date.parse("2026-11-25T11:00:00Z");
const BUDGET = 30_000;

const target = (id: string, instance: string, series: number): TargetStatus => ({
  id,
  job: "node",
  series,
  shard: 0,
  runtime: undefined,
  target: {
    id,
    scrapePool: "node",
    discoveredLabels: { __address__: instance },
    labels: { job: "node", instance },
    scrapeUrl: `http://${instance}/metrics`,
    scrapeIntervalMs: 15_000,
    scrapeTimeoutMs: 10_000,
  },
});
const shard = (id: number, targets: TargetStatus[]): ShardStatus => ({
  id,
  healthy: true,
  budget: BUDGET,
  effectiveBudget: BUDGET,
  restarts: 0,
  downSince: null,
  series: targets.reduce((n, t) => n + t.series, 0),
  targets,
});
const shards = [
  shard(0, [target("a", "10.0.0.1:9100", 12_000)]),
  shard(1, [target("b", "10.0.0.2:9100", 20_000), target("c", "10.0.0.3:9100", 16_000)]),
  shard(2, [target("d", "10.0.0.4:9100", 7_500)]),
];
/** Shard 0: 6000 series for the first half hour, 12000 after; the others flat at today's count. */
const seriesAt = (id: number, at: number) => (id === 0 ? (at < NOW - HOUR / 2 ? 6_000 : 12_000) : shards[id]!.series);
const MOVE_AT = NOW - HOUR / 2;
const SCALE_AT = NOW - (3 * HOUR) / 4;
const GLOBAL = 55_500;

const history = new SeriesHistory();
for (let at = NOW - HOUR; at <= NOW; at += 5_000) {
  history.record(
    at,
    shards.map((s) => ({ id: s.id, series: seriesAt(s.id, at) })),
  );
  history.recordGlobal(at, GLOBAL);
}
history.mark({ at: SCALE_AT, kind: "scale", text: "shards 2 → 3" });
history.mark({ at: MOVE_AT, kind: "move", text: "node/10.0.0.3:9100 moves from shard 0 to shard 1", shards: [0, 1] });

/** A global view that answered for the first half hour only. */
const stopped = new SeriesHistory();
for (let at = NOW - HOUR; at <= NOW - HOUR / 2; at += 10_000) stopped.recordGlobal(at, GLOBAL);

const WHAT_IF = 20_000;
const GLOBAL_ERROR = "global view http://127.0.0.1:9501: cannot query it (connect ECONNREFUSED 127.0.0.1:9501)";
const plan = capacityPlan(
  shards.flatMap((s) =>
    s.targets.map((t) => ({ target: t.target, series: t.series - 5, source: "coordinator" as const })),
  ),
  { budget: WHAT_IF, minShards: 1, maxShards: 16, strategy: getStrategy("series-balanced")! },
);

const pages: Record<string, string> = {
  "/": renderStatusPage({
    shards,
    events: [],
    history: { now: NOW, history },
    global: { queryUrl: "http://127.0.0.1:9501/", points: history.global(NOW), error: null },
    whatIf: { plan },
  }),
  "/no-global": renderStatusPage({
    shards,
    events: [],
    history: { now: NOW, history },
    global: { points: [], error: null },
    whatIf: { error: 'max-series: "lots" is not a whole number of series above 0; give a shard\'s budget' },
  }),
  "/global-error": renderStatusPage({
    shards,
    events: [],
    history: { now: NOW, history },
    global: { queryUrl: "http://127.0.0.1:9501/", points: stopped.global(NOW), error: GLOBAL_ERROR },
  }),
};

const MISSING = `${CHROMIUM} is missing: run make setup (it installs Debian's chromium)`;
it("has Debian's Chromium", () => assert.ok(existsSync(CHROMIUM), MISSING));

describe("status page plots in headless Chromium", () => {
  let server: Server;
  let base: string;
  let browser: Browser | undefined;
  let page: Page;
  let image: Image;
  let png: Buffer;
  const pageErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(MISSING);
    const { chromium } = await import("playwright-core").catch((err: unknown) => {
      throw new Error("playwright-core is not installed: run make setup", { cause: err });
    });
    server = createServer((req, res) => {
      const html = pages[req.url ?? ""];
      if (html === undefined) res.writeHead(404).end();
      else res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      timeout: 60_000,
    });
    page = await browser.newPage({ viewport: { width: 1000, height: 700 }, deviceScaleFactor: 1 });
    page.on("pageerror", (err) => pageErrors.push(err.message));
    assert.equal((await page.goto(`${base}/`, { waitUntil: "load" }))?.status(), 200);
    png = await page.screenshot({ fullPage: true, animations: "disabled", caret: "hide" });
    image = decodePng(png);
  });

  after(async () => {
    await browser?.close();
    if (server?.listening) await new Promise((resolve) => server.close(resolve));
  });

  /** Keeps the screenshot of a failed pixel check. */
  const withShot = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      const file = join(mkdtempSync(join(tmpdir(), "promshard-status-plots-")), "status.png");
      writeFileSync(file, png);
      throw new Error(`${(err as Error).message} (screenshot: ${file})`, { cause: err });
    }
  };

  const plotOf = (id: number): Locator => page.locator(`section.shard[data-shard="${id}"] svg.plot`);
  /** The plot's inside in page pixels (its box less its 1 px border). */
  async function inside(l: Locator) {
    const box = await l.boundingBox();
    assert.ok(box);
    return { x: box.x + 1, y: box.y + 1, width: box.width - 2, height: box.height - 2 };
  }
  const xOf = (at: number) => ((at - (NOW - HOUR)) / HOUR) * PLOT.width;
  /** The top of shard plots: the budget (every shard's points are below it but shard 1's 36000) with 10 % headroom. */
  const yOf = (v: number, top: number) => PLOT.height - (v / top) * PLOT.height;

  it("draws one plot per shard, PLOT.width × PLOT.height, no script runs", async () => {
    assert.equal(await page.locator("script").count(), 0);
    for (const s of shards) {
      const p = await inside(plotOf(s.id));
      assert.deepEqual([p.width, p.height], [PLOT.width, PLOT.height], `shard ${s.id}'s plot size`);
      assert.match(
        (await plotOf(s.id).getAttribute("aria-label")) ?? "",
        new RegExp(
          `^series of shard ${s.id} from 10:00:00 to 11:00:00 UTC: ${s.series} now, ${s.id < 2 ? 1 : 0} move\\(s\\), 1 scaling\\(s\\)$`,
        ),
      );
    }
    assert.deepEqual(pageErrors, []);
  });

  it("puts each point of a shard's line where its time and series say", async () => {
    for (const s of shards) {
      const points = history.shard(s.id, NOW);
      const top = Math.max(BUDGET, ...points.map((p) => p.value)) * 1.1;
      const drawn = ((await plotOf(s.id).locator("polyline.series").getAttribute("points")) ?? "")
        .split(" ")
        .map((xy) => xy.split(",").map(Number));
      assert.equal(drawn.length, points.length, `shard ${s.id}: one vertex per point`);
      assert.equal(points.length, 361, "an hour at one point per 10 s");
      for (const [i, p] of points.entries()) {
        const [x, y] = drawn[i]!;
        assert.ok(
          Math.abs(x! - xOf(p.at)) <= 0.05 && Math.abs(y! - yOf(p.value, top)) <= 0.05,
          `shard ${s.id} point ${i}`,
        );
      }
    }
  });

  it("shows the line in the screenshot: shard 0 low in the first half hour, higher in the second", async () => {
    await withShot(async () => {
      const p = await inside(plotOf(0));
      const top = BUDGET * 1.1;
      const band = (from: number, to: number, v: number) => ({
        x: p.x + xOf(from) + 4,
        y: p.y + yOf(v, top) - 3,
        width: xOf(to) - xOf(from) - 8,
        height: 6,
      });
      const early = band(NOW - HOUR, MOVE_AT - 30_000, 6_000);
      const late = band(MOVE_AT + 30_000, NOW, 12_000);
      assert.ok(countColour(image, early, BLUE) >= early.width, "the first half hour's line at 6000");
      assert.ok(countColour(image, late, BLUE) >= late.width, "the second half hour's line at 12000");
      const above = { x: p.x, y: p.y, width: p.width, height: yOf(12_000, top) - 4 };
      assert.equal(countColour(image, above, BLUE), 0, "nothing of the line above 12000");
    });
  });

  it("marks the move on its two shards' plots only, and the scaling on every plot, at their times", async () => {
    await withShot(async () => {
      for (const s of shards) {
        const p = await inside(plotOf(s.id));
        const column = (at: number) => ({ x: p.x + xOf(at) - 2, y: p.y, width: 4, height: p.height });
        const whole = { x: p.x, y: p.y, width: p.width, height: p.height };
        const moved = s.id === 0 || s.id === 1;
        const orange = countColour(image, column(MOVE_AT), ORANGE);
        if (moved) assert.ok(orange >= 0.9 * PLOT.height, `shard ${s.id}: the move's line (${orange} px)`);
        assert.equal(countColour(image, whole, ORANGE), moved ? orange : 0, `shard ${s.id}: orange only at the move`);
        const purple = countColour(image, column(SCALE_AT), PURPLE);
        assert.ok(purple >= 0.9 * PLOT.height, `shard ${s.id}: the scaling's line (${purple} px)`);
        assert.equal(countColour(image, whole, PURPLE), purple, `shard ${s.id}: purple only at the scaling`);
      }
      assert.equal(
        await plotOf(1).locator("g.mark.move title").textContent(),
        "10:30:00 node/10.0.0.3:9100 moves from shard 0 to shard 1",
      );
    });
  });

  it("shows the global view's count with its plot", async () => {
    const g = page.locator("section.global");
    assert.equal(await g.locator(".count").textContent(), String(GLOBAL));
    assert.match((await g.locator("p").first().textContent()) ?? "", new RegExp(`against ${55_500} on the shards`));
    assert.equal(await g.locator("a").getAttribute("href"), "http://127.0.0.1:9501/");
    const drawn = ((await g.locator("polyline.series").getAttribute("points")) ?? "").split(" ");
    assert.equal(drawn.length, 361);
    assert.ok(
      drawn.every((xy) => xy.endsWith(`,${yOf(GLOBAL, GLOBAL * 1.1).toFixed(1)}`)),
      "a flat line",
    );
  });

  it("answers the what-if with the plan: its shard count and one row per shard", async () => {
    const w = page.locator("section.whatif");
    assert.equal(await w.locator("input[name=max-series]").inputValue(), String(WHAT_IF));
    assert.match(
      (await w.locator(".answer").textContent()) ?? "",
      new RegExp(
        `^A budget of ${WHAT_IF} series needs ${plan.shards} shard\\(s\\) for 4 targets and 55500 series \\(now: 3\\)`,
      ),
    );
    // 20000, 16000 and 12000 cannot share a 20000 budget; 7500 goes beside 12000.
    assert.equal(plan.shards, 3);
    assert.deepEqual(
      await w.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.children[1]!.textContent)),
      plan.perShard.map((s) => String(s.series)),
    );
  });

  it("offers half and double the budget as links; a what-if page does not reload itself, the plain page does", async () => {
    assert.deepEqual(
      await page.locator("section.whatif .presets a").evaluateAll((as) => as.map((a) => a.getAttribute("href"))),
      ["?max-series=15000", "?max-series=60000"],
    );
    assert.equal(await page.locator('meta[http-equiv="refresh"]').count(), 0);
    assert.match(
      renderStatusPage({ shards, events: [], history: { now: NOW, history }, whatIf: null }),
      /<meta http-equiv="refresh" content="5">/,
    );
  });

  it("a global view that stopped answering: its error in red, its last count and when it was taken", async () => {
    const other = await browser!.newPage();
    try {
      await other.goto(`${base}/global-error`);
      const error = other.locator("section.global .global-error");
      assert.equal(await error.textContent(), GLOBAL_ERROR);
      assert.equal(
        await error.evaluate(
          (el) => (el.ownerDocument.defaultView!.getComputedStyle(el) as unknown as { color: string }).color,
        ),
        "rgb(204, 51, 51)",
      );
      assert.match(
        (await other.locator("section.global p").first().textContent()) ?? "",
        /^55500 series at 10:30:00 UTC/,
      );
      const drawn = ((await other.locator("section.global polyline.series").getAttribute("points")) ?? "").split(" ");
      assert.ok(Number(drawn.at(-1)!.split(",")[0]) <= PLOT.width / 2 + 0.05, "the line ends where the counts stopped");
    } finally {
      await other.close();
    }
  });

  it("without a global endpoint says so; a bad what-if names the field", async () => {
    const other = await browser!.newPage();
    try {
      await other.goto(`${base}/no-global`);
      assert.match(
        (await other.locator("section.global p.none").textContent()) ?? "",
        /^No global query endpoint is configured \(--thanos\.query-url\), so there is no global count; the shards hold 55500 series/,
      );
      assert.equal(await other.locator("section.global svg").count(), 0);
      assert.match(
        (await other.locator(".whatif-error").textContent()) ?? "",
        /^max-series: "lots" is not a whole number/,
      );
      assert.equal(await other.locator("section.whatif table").count(), 0);
    } finally {
      await other.close();
    }
  });
});
