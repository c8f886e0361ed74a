import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The seed experiment's synthetic target: exactly N series, N-1 of one gauge
 * (`demo_series{i="…"}`) and a counter of scrapes (which shows gaps in scraping), in the
 * text format. Prometheus adds its 5 scrape series (up, scrape_*), so N = 10040 makes the
 * seed's 10045 series per target. The count can change at run time (`/-/series?n=…`).
 */
export function demoExposition(series: number, scrapes: number): string {
  const lines = ["# HELP demo_series A synthetic series.", "# TYPE demo_series gauge"];
  for (let i = 0; i < series - 1; i++) lines.push(`demo_series{i="${i}"} ${i % 100}`);
  lines.push(
    "# HELP demo_scrapes_total Scrapes served.",
    "# TYPE demo_scrapes_total counter",
    `demo_scrapes_total ${scrapes}`,
  );
  return `${lines.join("\n")}\n`;
}

export interface DemoExporter {
  readonly url: string;
  readonly port: number;
  /** Current number of series in the exposition. */
  series: number;
  close(): Promise<void>;
}

export async function startDemoExporter(opts: { series: number; port?: number; host?: string }): Promise<DemoExporter> {
  let scrapes = 0;
  let cache = { series: -1, text: "" };
  const state = { series: opts.series };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/-/series") {
      const n = Number(url.searchParams.get("n"));
      if (!Number.isSafeInteger(n) || n < 0) {
        res.writeHead(400).end("n must be a non-negative integer\n");
        return;
      }
      state.series = n;
      res.writeHead(200).end(`${n}\n`);
      return;
    }
    if (url.pathname !== "/metrics") {
      res.writeHead(404).end("not found; metrics are at /metrics\n");
      return;
    }
    scrapes++;
    if (cache.series !== state.series) cache = { series: state.series, text: demoExposition(state.series, 0) };
    // The counter line changes every scrape; the rest is cached.
    const body = cache.text.replace(/demo_scrapes_total 0\n$/, `demo_scrapes_total ${scrapes}\n`);
    res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}/metrics`,
    port,
    get series() {
      return state.series;
    },
    set series(n: number) {
      state.series = n;
    },
    // Scrapers keep connections alive: closing waits for none of them.
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
