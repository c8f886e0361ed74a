/**
 * A bounded hostile-input run against one listener: random and oversized bodies, wrong
 * content types and methods, slow clients and many connections at once. Counts what was tried
 * and what answered 5xx, samples the process's RSS, and collects every answer's text so the
 * caller can look for credentials in it.
 */
import { randomBytes } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { type Agent, request } from "undici";

export interface Route {
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
}

export interface HostileFigures {
  tried: number;
  answered: number;
  status5xx: number;
  /** Requests refused at the socket (connection reset by a closing server, timeouts). */
  socketErrors: number;
  slowClients: number;
  /** Milliseconds a normal request took while the slow clients held their sockets. */
  healthyDuringSlowMs: number;
  peakRssMb: number;
}

const TYPES = [
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=zz",
  "application/json; charset=utf-16",
  "application/octet-stream",
  "",
  "application/json\u0000x",
];
const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];

function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(Math.random() * xs.length)]!;
}

/** A body that is random bytes, truncated JSON, deeply nested JSON, or a huge string. */
function randomBody(): Buffer {
  switch (Math.floor(Math.random() * 5)) {
    case 0:
      return randomBytes(Math.floor(Math.random() * 32_768));
    case 1:
      return Buffer.from(`{"version": ${Math.floor(Math.random() * 1e9)}, "targets": [{"job": "`);
    case 2:
      return Buffer.from(`${"[".repeat(50_000)}${"]".repeat(50_000)}`);
    case 3:
      return Buffer.from(JSON.stringify({ version: 1, targets: [{ job: "x".repeat(200_000), labels: { a: "b" } }] }));
    default:
      return Buffer.from(JSON.stringify({ __proto__: { polluted: true }, constructor: { prototype: { x: 1 } } }));
  }
}

export async function hostileRun(opts: {
  readonly url: string;
  readonly routes: readonly Route[];
  readonly dispatcher?: Agent;
  /** Bytes of the oversized body (larger than the listener's limit). */
  readonly oversized: number;
  readonly durationMs: number;
  readonly concurrency?: number;
  readonly slowClients?: number;
  /** A path that must keep answering while slow clients hold sockets. */
  readonly healthPath: string;
  /** Each answer's text, to look for credentials. */
  readonly onAnswer: (text: string) => void;
}): Promise<HostileFigures> {
  const figures: HostileFigures = {
    tried: 0,
    answered: 0,
    status5xx: 0,
    socketErrors: 0,
    slowClients: 0,
    healthyDuringSlowMs: 0,
    peakRssMb: 0,
  };
  const sample = setInterval(() => {
    figures.peakRssMb = Math.max(figures.peakRssMb, Math.round(process.memoryUsage().rss / 1048576));
  }, 50);
  const u = new URL(opts.url);
  const tls = u.protocol === "https:";
  const big = Buffer.alloc(opts.oversized, 0x7b);
  const one = async (route: Route, body: Buffer | undefined, contentType: string, method: string) => {
    figures.tried++;
    try {
      const res = await request(`${opts.url}${route.path}`, {
        method: method as "GET",
        headers: { ...(contentType ? { "content-type": contentType } : {}), ...route.headers },
        ...(body && method !== "GET" && method !== "HEAD" ? { body } : {}),
        ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.body.text();
      figures.answered++;
      if (res.statusCode >= 500) figures.status5xx++;
      opts.onAnswer(`${JSON.stringify(res.headers)}\n${text}`);
    } catch {
      figures.socketErrors++;
    }
  };
  const deadline = Date.now() + opts.durationMs;
  await Promise.all(
    Array.from({ length: opts.concurrency ?? 32 }, async (_, w) => {
      while (Date.now() < deadline) {
        const route = pick(opts.routes);
        const kind = Math.random();
        if (kind < 0.05 && w % 4 === 0) await one(route, big, "application/json", route.method);
        else if (kind < 0.5) await one(route, randomBody(), pick(TYPES), route.method);
        else await one(route, randomBody(), pick(TYPES), pick(METHODS));
      }
    }),
  );
  // Slow clients: each sends its request line and then one header byte now and then.
  const sockets: Socket[] = [];
  const slow = opts.slowClients ?? 200;
  for (let i = 0; i < slow; i++) {
    const s: Socket = tls
      ? tlsConnect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false })
      : netConnect({ host: u.hostname, port: Number(u.port) });
    s.on("error", () => {});
    s.write(`POST ${opts.routes[0]!.path} HTTP/1.1\r\nHost: x\r\nX-Slow: `);
    sockets.push(s);
  }
  figures.slowClients = slow;
  const drip = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write("a");
  }, 200);
  await new Promise((r) => setTimeout(r, 500));
  const started = performance.now();
  const health = await request(`${opts.url}${opts.healthPath}`, {
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  await health.body.text();
  figures.healthyDuringSlowMs = Math.round(performance.now() - started);
  if (health.statusCode >= 500) figures.status5xx++;
  clearInterval(drip);
  for (const s of sockets) s.destroy();
  clearInterval(sample);
  figures.peakRssMb = Math.max(figures.peakRssMb, Math.round(process.memoryUsage().rss / 1048576));
  return figures;
}
