/**
 * The coordinator's status page as a person sees it: renderStatusPage's HTML served over HTTP
 * on 127.0.0.1, opened in Debian's headless Chromium (driven by playwright-core, which never
 * downloads a browser here), checked in the laid-out DOM and then in the pixels of a
 * screenshot: each bar's fill covers series/budget of the bar, green under budget, red over.
 * No Chromium is a failure that says to run `make setup`, never a skip.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";
import type { ShardStatus, TargetStatus } from "../../src/coordinator/coordinator.ts";
import { renderStatusPage, type StatusEvent } from "../../src/coordinator/status-page.ts";
import { countColour, decodePng } from "../support/png.ts";

const CHROMIUM = "/usr/bin/chromium";
const GREEN = [0x33, 0xaa, 0x77] as const; // #3a7, the fill under budget
const RED = [0xcc, 0x33, 0x33] as const; // #c33, the fill over budget
const TRACK = [0xee, 0xee, 0xee] as const; // #eee, the bar's empty part

const XSS = "<script>window.__pwned = true</script>";
const target = (id: string, job: string, instance: string, series: number): TargetStatus => ({
  id,
  job,
  series,
  shard: 0,
  runtime: undefined,
  target: {
    id,
    scrapePool: job,
    discoveredLabels: { __address__: instance },
    labels: { job, instance },
    scrapeUrl: `http://${instance}/metrics`,
    scrapeIntervalMs: 15_000,
    scrapeTimeoutMs: 10_000,
  },
});
const shards: (ShardStatus & { prometheusUrl?: string })[] = [
  {
    id: 0,
    healthy: true,
    budget: 30_000,
    effectiveBudget: 30_000,
    restarts: 0,
    downSince: null,
    series: 12_000, // 40 %
    targets: [target("a", "node", "10.0.0.1:9100", 7_000), target("b", "node", "10.0.0.2:9100", 5_000)],
    prometheusUrl: "http://127.0.0.1:9090/?q=\"x\"&y='z'",
  },
  {
    id: 1,
    healthy: true,
    budget: 30_000,
    effectiveBudget: 30_000,
    restarts: 0,
    downSince: null,
    series: 36_000, // over budget: a full, red bar
    targets: [
      target("c", "api", "10.0.0.3:8080", 20_000),
      target("d", "<b>api</b>", XSS, 16_000), // label values are text, never markup
    ],
  },
  {
    id: 2,
    healthy: false,
    budget: 30_000,
    effectiveBudget: 30_000,
    restarts: 0,
    downSince: null,
    series: 7_500, // 25 %, and the shard is down
    targets: [target("e", "db", "10.0.0.5:9187", 7_500)],
  },
];
// Appended as they happen, oldest first, as the coordinator does.
const events: StatusEvent[] = [
  { at: "2026-11-25T10:00:00Z", kind: "scale", text: "scaled to 3 shards" },
  { at: "2026-11-25T10:00:05Z", kind: "move", text: "api/10.0.0.3:8080 moving 0 -> 1" },
  { at: "2026-11-25T10:00:10Z", kind: "warning", text: "shard 1 over budget: 36000 > 30000 & <growing>" },
];

const fraction = (s: ShardStatus) => Math.min(1, s.series / s.budget);
const MISSING = `${CHROMIUM} is missing: run make setup (it installs Debian's chromium)`;

// A failed test of its own, not only a failed hook (which the runner counts as cancelled tests).
it("has Debian's Chromium", () => assert.ok(existsSync(CHROMIUM), MISSING));

describe("status page in headless Chromium", () => {
  let server: Server;
  let url: string;
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(MISSING);
    const { chromium } = await import("playwright-core").catch((err: unknown) => {
      throw new Error("playwright-core is not installed: run make setup", { cause: err });
    });
    const html = renderStatusPage({ shards, events, globalQueryUrl: "http://127.0.0.1:9501/?a=1&b=2" });
    server = createServer((req, res) => {
      if (req.url !== "/") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    });
    // Port 0: the kernel's free port, bound at once (no window for another process to take it).
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Playwright gives it a fresh temporary profile (--user-data-dir) and removes it on close.
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
    const response = await page.goto(url, { waitUntil: "load" });
    assert.equal(response?.status(), 200);
  });

  after(async () => {
    await browser?.close();
    if (server?.listening) await new Promise((resolve) => server.close(resolve));
  });

  const section = (id: number): Locator => page.locator(`section.shard[data-shard="${id}"]`);
  type Prop = "backgroundColor" | "color" | `border${"Left" | "Right" | "Top" | "Bottom"}Width`;
  const style = (l: Locator, prop: Prop) =>
    // Runs in the page; the tsconfig has no DOM types, hence the cast.
    l.evaluate(
      (el, p) => (el.ownerDocument.defaultView!.getComputedStyle(el) as unknown as Record<string, string>)[p]!,
      prop,
    );
  /** The bar's inside (its bounding box less its borders), in page pixels. */
  async function barInside(id: number) {
    const bar = section(id).locator(".bar");
    const box = await bar.boundingBox();
    assert.ok(box, `shard ${id}: the bar has a box`);
    const [left, right, top, bottom] = await Promise.all(
      (["borderLeftWidth", "borderRightWidth", "borderTopWidth", "borderBottomWidth"] as const).map(async (p) =>
        Number.parseFloat(await style(bar, p)),
      ),
    );
    return {
      x: box.x + left!,
      y: box.y + top!,
      width: box.width - left! - right!,
      height: box.height - top! - bottom!,
    };
  }

  it("serves one page with the shard count, no script runs", async () => {
    assert.equal(await page.title(), "promshard");
    assert.equal(await page.locator("section.shard").count(), 3);
    assert.match((await page.locator("body > p").first().textContent()) ?? "", /^3 shard\(s\) · global query:/);
    assert.equal(
      await page.locator("body > p a").first().getAttribute("href"),
      "http://127.0.0.1:9501/?a=1&b=2",
      "the global query link survives escaping",
    );
    assert.deepEqual(pageErrors, []);
  });

  it("draws each shard's bar, its fill as wide as series/budget", async () => {
    for (const s of shards) {
      const bar = section(s.id).locator(".bar");
      const fill = bar.locator(".fill");
      assert.ok(await bar.isVisible(), `shard ${s.id}: bar visible`);
      assert.ok(await fill.isVisible(), `shard ${s.id}: fill visible`);
      assert.equal(await bar.getAttribute("aria-valuenow"), String(s.series));
      assert.equal(await bar.getAttribute("aria-valuemax"), String(s.budget));
      const inside = await barInside(s.id);
      const f = await fill.boundingBox();
      assert.ok(f, `shard ${s.id}: the fill has a box`);
      assert.ok(inside.width > 200, `shard ${s.id}: the bar is ${inside.width}px wide, too narrow to read`);
      assert.ok(Math.abs(f.x - inside.x) < 0.5, `shard ${s.id}: the fill starts at the bar's left edge`);
      assert.ok(
        Math.abs(f.y - inside.y) < 0.5 && Math.abs(f.height - inside.height) < 0.5,
        `shard ${s.id}: full height`,
      );
      const want = fraction(s) * inside.width;
      assert.ok(
        Math.abs(f.width - want) <= 1,
        `shard ${s.id}: fill ${f.width}px of ${inside.width}px, want ${want.toFixed(1)}px (${s.series}/${s.budget})`,
      );
    }
  });

  it("colours the fill green under budget and red over", async () => {
    assert.equal(await style(section(0).locator(".fill"), "backgroundColor"), "rgb(51, 170, 119)");
    assert.equal(await style(section(2).locator(".fill"), "backgroundColor"), "rgb(51, 170, 119)");
    assert.equal(await style(section(1).locator(".fill"), "backgroundColor"), "rgb(204, 51, 51)");
    assert.equal(await style(section(0).locator(".bar"), "backgroundColor"), "rgb(238, 238, 238)");
  });

  it("marks the down shard, and only it, down", async () => {
    const down = section(2).locator("h2 .down");
    assert.ok(await down.isVisible());
    assert.equal(await down.textContent(), "down");
    assert.equal(await style(down, "color"), "rgb(204, 51, 51)");
    assert.equal(await section(0).locator(".down").count(), 0);
    assert.equal(await section(1).locator(".down").count(), 0);
    assert.equal((await section(0).locator("h2").textContent())?.trim(), "Shard 0");
  });

  it("lists each shard's targets, label values as text", async () => {
    for (const s of shards) {
      const items = await section(s.id).locator("ul > li").allInnerTexts();
      assert.deepEqual(
        items,
        s.targets.map((t) => `${t.job} ${t.target.labels.instance} — ${t.series} series`),
        `shard ${s.id}'s targets`,
      );
      assert.match(
        (await section(s.id).locator("p").textContent()) ?? "",
        new RegExp(`^${s.series} / ${s.budget} series · ${s.targets.length} targets`),
      );
    }
    // The <script> label value and the <b> job are shown, not run or rendered.
    assert.equal(await page.locator("script").count(), 0);
    assert.equal(await page.locator("section b").count(), 0);
    assert.equal(await page.evaluate("typeof window.__pwned"), "undefined");
    assert.ok(await section(1).getByText(XSS).isVisible());
    assert.equal(await section(1).locator("code").nth(1).textContent(), "<b>api</b>");
    assert.equal(
      await section(0).getByRole("link", { name: "Prometheus" }).getAttribute("href"),
      shards[0]!.prometheusUrl,
    );
  });

  it("lists events newest first", async () => {
    const list = page.locator("h2:has-text('Recent moves and scaling') + ul > li");
    assert.deepEqual(
      await list.allInnerTexts(),
      events.toReversed().map((e) => `${e.at} ${e.text}`),
    );
    assert.deepEqual(
      await list.evaluateAll((els) => els.map((el) => el.className)),
      events.toReversed().map((e) => e.kind),
    );
  });

  it("shows the bars in a screenshot: fill colour over series/budget of each bar", async () => {
    const png = await page.screenshot({ fullPage: true, animations: "disabled", caret: "hide" });
    const image = decodePng(png);
    const size = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]");
    try {
      assert.deepEqual([image.width, image.height], size, "the screenshot is the whole page at 1 pixel per CSS pixel");
      for (const s of shards) {
        const inside = await barInside(s.id);
        const area = Math.round(inside.width) * Math.round(inside.height);
        const over = s.series > s.budget;
        const fillPx = countColour(image, inside, over ? RED : GREEN);
        const otherPx = countColour(image, inside, over ? GREEN : RED);
        const trackPx = countColour(image, inside, TRACK);
        const want = fraction(s);
        const what = `shard ${s.id} (${s.series}/${s.budget}): ${fillPx} ${over ? "red" : "green"}, ${trackPx} grey in a box of ${area} px`;
        // The box's edges fall between pixel rows (1.2em = 16.8 px is painted as 16 or 17 rows), so
        // the fill is measured against what the bar painted, which must be nearly all of the box.
        assert.ok(fillPx + trackPx >= 0.9 * area, `${what}: the bar is not painted where its box is`);
        assert.ok(fillPx > 0, `${what}: the fill is not drawn`);
        const got = fillPx / (fillPx + trackPx);
        assert.ok(
          Math.abs(got - want) <= 0.02,
          `${what}: ${(100 * got).toFixed(1)} % filled, want ${(100 * want).toFixed(1)} %`,
        );
        assert.equal(otherPx, 0, `${what}: no ${over ? "green" : "red"} in this bar`);
      }
    } catch (err) {
      const file = join(mkdtempSync(join(tmpdir(), "promshard-status-page-")), "status.png");
      writeFileSync(file, png);
      throw new Error(`${(err as Error).message} (screenshot: ${file})`, { cause: err });
    }
  });
});
