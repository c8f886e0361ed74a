import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from "express";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { PEER_IDLE_MS } from "../util/http.ts";
import { Histogram, type Registry } from "./metrics.ts";

/** Whether a component can take work; `reason` says what it waits for when it cannot. */
export interface Readiness {
  readonly ready: boolean;
  readonly reason?: string;
}

/** An error a handler throws to answer with this status and message (as `{error: message, …details}`). */
export class HttpError extends Error {
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(status: number, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.details = details;
  }
}

export interface HttpAppOptions {
  readonly registry: Registry;
  readonly readiness: () => Readiness | Promise<Readiness>;
  readonly log: Logger;
  /** Largest JSON body accepted (bytes or a string like "32mb"); larger ones get 413. Default 1mb. */
  readonly bodyLimit?: string | number;
  /**
   * Adds the component's own routes, between the probes and the 404/error handlers. `json`
   * parses a JSON body within the limit: put it after authentication, so that nobody without
   * a token can make the server parse large bodies.
   */
  readonly routes?: (app: Express, helpers: { readonly json: RequestHandler }) => void;
}

/**
 * An express 5 app with what every promshard server has: `/metrics` (the component's
 * registry), `/healthz` (the process answers), `/readyz` (503 with the reason until ready),
 * a JSON body parser with a size limit for the routes to use, request metrics, JSON 404s,
 * and an error handler that answers `{error}` and never sends a stack (5xx are logged with
 * theirs instead).
 */
export function createHttpApp(opts: HttpAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  const duration = new Histogram({
    name: "promshard_http_request_duration_seconds",
    help: "Time to answer HTTP requests, by route, method and status code.",
    labelNames: ["route", "method", "code"] as const,
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10],
    registers: [opts.registry],
  });
  app.use(((req, res, next) => {
    const end = duration.startTimer();
    res.once("finish", () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      end({ route: typeof route === "string" ? route : "other", method: req.method, code: String(res.statusCode) });
    });
    next();
  }) satisfies RequestHandler);
  const json = express.json({ limit: opts.bodyLimit ?? "1mb", type: ["application/json", "application/*+json"] });

  app.get("/metrics", async (_req, res) => {
    res.type(opts.registry.contentType).send(await opts.registry.metrics());
  });
  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok\n");
  });
  app.get("/readyz", async (_req, res) => {
    const r = await opts.readiness();
    res
      .status(r.ready ? 200 : 503)
      .type("text/plain")
      .send(r.ready ? "ready\n" : `not ready: ${r.reason ?? "starting"}\n`);
  });
  opts.routes?.(app, { json });

  app.use(((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  }) satisfies RequestHandler);
  app.use(((err, req, res, _next) => {
    const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
    const status = Number(e.status ?? e.statusCode);
    if (err instanceof HttpError) {
      if (status >= 500) opts.log.error({ err, path: req.path }, "request failed");
      res.status(err.status).json({ error: err.message, ...err.details });
    } else if (status >= 400 && status < 500) {
      // body-parser's errors (bad JSON, too large, bad charset): their messages are meant for clients.
      const message =
        e.type === "entity.too.large"
          ? `request body is larger than the limit of ${String(opts.bodyLimit ?? "1mb")}`
          : `${String(e.message)}`;
      res.status(status).json({ error: message });
    } else {
      opts.log.error({ err, path: req.path }, "request failed");
      if (res.headersSent) return;
      res.status(500).json({ error: "internal error; see the server's log" });
    }
  }) satisfies ErrorRequestHandler);
  return app;
}

/** `:8080`, `0.0.0.0:8080`, `127.0.0.1:0`, `[::1]:9000` → host (default all interfaces) and port. */
export function parseListenAddress(addr: string, flag = "--listen"): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.%]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new PromshardError(
      "flag_invalid",
      `"${addr}" is not a listen address; give HOST:PORT, :PORT or [IPv6]:PORT`,
      {
        path: flag,
      },
    );
  }
  const host = m[1] ?? m[2];
  return { host: host === "" ? undefined : host, port };
}

export interface Listening {
  readonly server: Server;
  /** `http://host:port`, with the port the kernel picked when 0 was asked for. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then drops what is left. */
  close(graceMs?: number): Promise<void>;
}

export function listen(app: Express, addr: string): Promise<Listening> {
  const { host, port } = parseListenAddress(addr);
  return new Promise((resolve, reject) => {
    const onListening = (err?: Error) => {
      if (err) return reject(err);
      const a = server.address() as AddressInfo;
      const shownHost = a.family === "IPv6" ? `[${a.address === "::" ? "::1" : a.address}]` : a.address;
      let closing: Promise<void> | undefined;
      resolve({
        server,
        port: a.port,
        url: `http://${shownHost === "0.0.0.0" ? "127.0.0.1" : shownHost}:${a.port}`,
        close: (graceMs = 5_000) => {
          closing ??= new Promise<void>((done) => {
            const force = setTimeout(() => server.closeAllConnections(), graceMs);
            force.unref();
            server.close(() => {
              clearTimeout(force);
              done();
            });
            server.closeIdleConnections();
          });
          return closing;
        },
      });
    };
    const server = host === undefined ? app.listen(port, onListening) : app.listen(port, host, onListening);
    // A client that sends its headers or body slowly holds a socket: bounded (Node's defaults
    // are 60 s for headers and 5 min per request), so slow clients cannot pile up.
    server.headersTimeout = 10_000;
    server.requestTimeout = 60_000;
    // Longer than promshard's own clients keep an idle connection (see PEER_IDLE_MS).
    server.keepAliveTimeout = PEER_IDLE_MS + 5_000;
  });
}
