/**
 * The scale benchmark's fleet, in a process of its own so that its memory and CPU are not the
 * coordinator's: one loopback HTTP server that is
 *
 * - an exporter serving every target (`/t/<i>`, `seriesOf(i)` series, text format), and
 * - sidecar-like shard endpoints (`/s/<k>/api/v1/runtime`, `PUT /s/<k>/api/v1/assignment`, and
 *   `PATCH` for a delta, applied with the sidecar's own contract code) with no Prometheus behind them: a shard reports every target it was assigned as scraped
 *   and up, with the series the exporter serves for it. Only this benchmark uses such shards.
 *
 *   node bench/scale-fleet.ts <config.yml>   prints {"port": N} once listening on 127.0.0.1
 *
 * Each exporter answer waits SCALE_EXPORTER_LATENCY_MS (default 30), a scrape's latency on a
 * cluster network. `POST /control/grow` ({ids, factor}) multiplies some targets' series; `GET /control/stats`
 * answers the bytes and pushes (whole, delta, refused delta) received since the last call.
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import { fileURLToPath } from "node:url";
import {
  ASSIGNMENT_DELTA_FEATURE,
  type AssignedTarget,
  applyAssignmentDelta,
  parseAssignmentDelta,
} from "../src/contract/assignment.ts";
import { RUNTIME_REMOVALS_PARAM, RUNTIME_SINCE_FEATURE, RuntimeChanges } from "../src/contract/runtime-report.ts";
import { PromshardError } from "../src/errors.ts";
import { parseConfig } from "../src/prom/config.ts";
import type { Labels } from "../src/prom/labels.ts";
import { targetsFromGroup } from "../src/prom/targets.ts";
import { dialectFor } from "../src/prom/version.ts";

/** Where the fleet's pods say their path is: the index of the target is in it. */
export const PATH_LABEL = "__meta_kubernetes_pod_annotation_prometheus_io_path";

/** mulberry32 over the index: every process draws the same series for a target. */
function unit(i: number, salt: number): number {
  let t = (Math.imul(i, 0x9e3779b1) ^ salt) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}

/**
 * Series of target `i` as real fleets skew: 199 in 200 log-uniform between 20 and 500 over u²
 * (half under ~45), one in 200 log-uniform between 5,000 and 50,000; two significant digits, so
 * the exporter keeps a few hundred distinct bodies.
 */
export function seriesOf(i: number): number {
  const u = unit(i, 0x5ca1e);
  const n = unit(i, 0xb16) < 0.005 ? 5000 * 10 ** u : 20 * 25 ** (u * u);
  const p = 10 ** Math.max(0, Math.floor(Math.log10(n)) - 1);
  return Math.round(n / p) * p;
}

/** Index of the target an exporter path `/t/<i>` names (NaN for any other path). */
export const indexOfPath = (path: string | undefined) => (path?.startsWith("/t/") ? Number(path.slice(3)) : Number.NaN);

const bodies = new Map<number, Buffer>();
/** What a target with `n` series answers (text format), made once per `n`. */
export function exposition(n: number): Buffer {
  let b = bodies.get(n);
  if (!b) {
    const lines: string[] = ["# TYPE bench_series gauge"];
    for (let k = 0; k < n; k++) lines.push(`bench_series{k="${k}",pod_role="app"} 1`);
    b = Buffer.from(`${lines.join("\n")}\n`);
    bodies.set(n, b);
  }
  return b;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const configFile = process.argv[2];
  if (!configFile) {
    console.error("usage: node bench/scale-fleet.ts <config.yml>");
    process.exit(2);
  }
  const config = parseConfig(readFileSync(configFile, "utf8"), { dialect: dialectFor("3.16") });
  const jobs = new Map(config.scrapeConfigs.map((j) => [j.jobName, j]));
  const grown = new Map<number, number>();
  const series = (i: number) => Math.round(seriesOf(i) * (grown.get(i) ?? 1));
  /** Per target index, its id and runtime-report entry without the series (what a sidecar maps once). */
  const entries = new Map<number, { id: string | null; json: string }>();
  const entry = (t: { job: string; labels: Labels; sdIndex?: number }) => {
    const i = indexOfPath(t.labels[PATH_LABEL]);
    let e = entries.get(i);
    if (e === undefined) {
      const job = jobs.get(t.job);
      const active = job && targetsFromGroup({ source: "", targets: [t.labels], labels: {} }, job).active[0];
      const id = active?.id ?? null;
      e = {
        id,
        json: JSON.stringify({
          job: t.job,
          address: t.labels.__address__ ?? "",
          ...(t.sdIndex === undefined ? {} : { sdIndex: t.sdIndex }),
          id,
          status: active ? "scraped" : "dropped",
          labels: active?.labels ?? null,
          scrapeUrl: active?.scrapeUrl ?? null,
          health: active ? "up" : null,
          lastScrape: "2026-01-01T00:00:00.000Z",
          lastScrapeDurationSeconds: 0.003,
          lastError: null,
        }).slice(0, -1),
      };
      entries.set(i, e);
    }
    const n = series(i);
    return {
      id: e.id,
      status: "scraped" as const,
      health: "up" as const,
      series: n,
      lastError: null,
      text: `${e.json},"series":${n}}`,
    };
  };
  const shards = new Map<number, { version: number; targets: AssignedTarget[] }>();
  /**
   * Each shard's report, built once per change: many sidecars build theirs in parallel on
   * their own machines, and this one process must not be what a round waits for. As a
   * sidecar's, it answers `?since=` through the contract's RuntimeChanges: `partial` is what
   * changed since the token before (`removed` included), the one a coordinator holds.
   */
  const reports = new Map<
    number,
    { token: string; before?: string; full: () => string; partial?: string; removals: boolean; none: string }
  >();
  const changes = new Map<number, RuntimeChanges>();
  /** Each shard's last token, kept across changes: the one a coordinator asks with next. */
  const tokens = new Map<number, string>();
  const reportOf = (k: number) => {
    let report = reports.get(k);
    if (report !== undefined) return report;
    const s = shards.get(k);
    const targets = (s?.targets ?? []).map(entry);
    const c = changes.get(k) ?? new RuntimeChanges(`fleet${k}`);
    changes.set(k, c);
    const before = tokens.get(k);
    const { token, changed, removed } = c.note("fleet", targets, before, true);
    tokens.set(k, token);
    const head = `{"features":["${ASSIGNMENT_DELTA_FEATURE}","${RUNTIME_SINCE_FEATURE}"],"token":"${token}","prometheus":{"ready":true,"headSeries":null},"config":{"reload":{"state":"ok"}},"assignment":${
      s ? JSON.stringify({ version: s.version, targets: s.targets.length }) : "null"
    }`;
    const list = (ts: readonly { text: string }[]) =>
      `"targets":[${ts.map((t) => t.text).join(",")}],"unmappedTargets":[]}`;
    let full: string | undefined;
    report = {
      token,
      before,
      // Made only when asked: a coordinator holding the last token never is.
      full: () => (full ??= `${head},${list(targets)}`),
      partial: changed && `${head},"partial":true,"removed":${JSON.stringify(removed)},${list(changed)}`,
      removals: removed.length > 0,
      none: `${head},"partial":true,"removed":[],${list([])}`,
    };
    reports.set(k, report);
    return report;
  };
  const latencyMs = Number(process.env.SCALE_EXPORTER_LATENCY_MS ?? 30);
  let bytesIn = 0;
  /** Pushes by kind: whole sets, deltas applied, deltas refused (then the whole set follows). */
  let pushes = { whole: 0, delta: 0, refused: 0 };

  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const server = createServer(async (req, res) => {
    const url = req.url ?? "/";
    const json = (status: number, text: string) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(text);
    };
    if (url.startsWith("/t/")) {
      // A real exporter answers over a network after collecting: explore waits on latency.
      setTimeout(() => {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        res.end(exposition(series(indexOfPath(url))));
      }, latencyMs);
      return;
    }
    const shard = /^\/s\/(\d+)\/api\/v1\/(runtime|assignment)(?:\?.*)?$/.exec(url);
    if (shard) {
      const k = Number(shard[1]);
      if (shard[2] === "assignment" && req.method === "PUT") {
        const raw = await read(req);
        bytesIn += raw.length;
        pushes.whole++;
        const a = JSON.parse(raw.toString()) as { version: number; targets: AssignedTarget[] };
        shards.set(k, a);
        reports.delete(k);
        json(200, JSON.stringify({ version: a.version, targets: a.targets.length, rejected: [] }));
        return;
      }
      if (shard[2] === "assignment" && req.method === "PATCH") {
        // A delta, checked and applied as the sidecar does (src/contract/assignment.ts).
        const raw = await read(req);
        bytesIn += raw.length;
        const held = shards.get(k);
        try {
          const delta = parseAssignmentDelta(JSON.parse(raw.toString()), config);
          if (held?.version !== delta.base)
            throw new PromshardError("assignment_base_mismatch", "another base", { path: "delta.base" });
          const targets = applyAssignmentDelta(held.targets, delta);
          shards.set(k, { version: delta.version, targets });
          pushes.delta++;
          reports.delete(k);
          json(200, JSON.stringify({ version: delta.version, targets: targets.length, rejected: delta.rejected }));
        } catch (err) {
          pushes.refused++;
          json(409, JSON.stringify({ error: (err as Error).message, code: (err as PromshardError).code }));
        }
        return;
      }
      const report = reportOf(k);
      const since = new URL(url, "http://fleet").searchParams;
      const token = since.get("since");
      json(
        200,
        token === report.token
          ? report.none
          : token === report.before && report.partial && (!report.removals || since.get(RUNTIME_REMOVALS_PARAM) === "1")
            ? report.partial
            : report.full(),
      );
      return;
    }
    if (url === "/control/grow" && req.method === "POST") {
      const { ids, factor } = JSON.parse((await read(req)).toString()) as { ids: number[]; factor: number };
      for (const i of ids) grown.set(i, factor);
      reports.clear();
      json(200, "{}");
      return;
    }
    if (url === "/control/stats") {
      json(200, JSON.stringify({ bytesIn, pushes, rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20) }));
      bytesIn = 0;
      pushes = { whole: 0, delta: 0, refused: 0 };
      return;
    }
    json(404, "{}");
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    console.log(JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 }));
  });
  process.on("SIGTERM", () => process.exit(0));
  // The benchmark holds stdin open: when it dies (out of memory, killed) the fleet goes too.
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
}
