/**
 * The HTTP layer every promshard server shares: routes matched by method and exact path,
 * handlers that answer or throw HttpError, JSON bodies read within a limit, JSON errors
 * without stacks, request metrics, and /metrics, /healthz, /readyz.
 *
 * Written on node:http rather than a framework: a sidecar runs beside every shard, and
 * express with its dependencies cost each one 6-7 MiB of RSS and 45 ms of CPU at every start
 * for what this file does (docs/architecture.md, "Footprint"). node:http is taken with
 * process.getBuiltinModule: an ESM import of it reads every export of its namespace, and the
 * WebSocket getter among them loads Node's bundled undici (12-15 MiB more).
 */
import type { IncomingMessage, RequestListener, Server, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
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

/** Why a request's body was refused, in the closed set the webhook counts its errors by. */
export type BodyRefusal = "too_large" | "malformed" | "unsupported_media_type";

/** A body that could not be read as JSON: 400, 413 or 415, with the reason. */
export class BodyError extends HttpError {
  readonly reason: BodyRefusal;

  constructor(status: number, message: string, reason: BodyRefusal) {
    super(status, message);
    this.name = "BodyError";
    this.reason = reason;
  }
}

export interface Request {
  readonly method: string;
  /** The URL's path as sent (not decoded), without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly socket: Socket;
  readonly raw: IncomingMessage;
  /** A header's value by its case-insensitive name; repeated ones joined with ", ". */
  header(name: string): string | undefined;
  /** The JSON body, once a `json` step has read it. */
  body: unknown;
}

export interface Response {
  status(code: number): Response;
  set(name: string, value: string): Response;
  json(value: unknown): void;
  /** Text, with its content type ("text/html; charset=utf-8"). */
  send(contentType: string, text: string): void;
  /** Whether the answer has begun (a step that answers ends the route). */
  readonly sent: boolean;
  readonly raw: ServerResponse;
}

/** One step of a route: it answers, throws (HttpError for a chosen status), or returns to let the next step run. */
export type Handler = (req: Request, res: Response) => unknown;

const METHODS_OF_GET = ["GET", "HEAD"];

type Match = { readonly steps: readonly Handler[] } | { readonly allow: string };

/** Routes by method and exact path. A GET route also answers HEAD (without a body). */
export class Routes {
  readonly #byPath = new Map<string, Map<string, readonly Handler[]>>();

  get(path: string, ...steps: Handler[]): void {
    for (const m of METHODS_OF_GET) this.#add(m, path, steps);
  }
  put(path: string, ...steps: Handler[]): void {
    this.#add("PUT", path, steps);
  }
  post(path: string, ...steps: Handler[]): void {
    this.#add("POST", path, steps);
  }
  patch(path: string, ...steps: Handler[]): void {
    this.#add("PATCH", path, steps);
  }

  #add(method: string, path: string, steps: readonly Handler[]): void {
    let methods = this.#byPath.get(path);
    if (!methods) {
      methods = new Map();
      this.#byPath.set(path, methods);
    }
    if (methods.has(method)) throw new PromshardError("internal_error", `route ${method} ${path} is defined twice`);
    methods.set(method, steps);
  }

  /** The route's steps; or, when the path has other methods only, those (405); or undefined (404). */
  match(method: string, path: string): Match | undefined {
    const methods = this.#byPath.get(path);
    if (!methods) return undefined;
    const steps = methods.get(method);
    return steps ? { steps } : { allow: [...methods.keys()].join(", ") };
  }
}

class IncomingRequest implements Request {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly raw: IncomingMessage;
  body: unknown;

  constructor(raw: IncomingMessage) {
    this.raw = raw;
    const url = raw.url ?? "/";
    const q = url.indexOf("?");
    this.path = q < 0 ? url : url.slice(0, q);
    this.query = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
  }
  get method(): string {
    return this.raw.method ?? "GET";
  }
  get socket(): Socket {
    return this.raw.socket;
  }
  header(name: string): string | undefined {
    const v = this.raw.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(", ") : v;
  }
}

class OutgoingResponse implements Response {
  readonly raw: ServerResponse;

  constructor(raw: ServerResponse) {
    this.raw = raw;
  }
  status(code: number): Response {
    this.raw.statusCode = code;
    return this;
  }
  set(name: string, value: string): Response {
    this.raw.setHeader(name, value);
    return this;
  }
  json(value: unknown): void {
    this.send("application/json; charset=utf-8", JSON.stringify(value) ?? "");
  }
  send(contentType: string, text: string): void {
    const body = Buffer.from(text);
    this.raw.setHeader("content-type", contentType);
    this.raw.setHeader("content-length", body.length);
    this.raw.end(body);
  }
  get sent(): boolean {
    return this.raw.headersSent;
  }
}

/** The request's media type without parameters, lower case ("application/json"), or "" when none is sent. */
export function mediaType(req: Request): string {
  return (req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

/** application/json, or a JSON-based type such as application/merge-patch+json. */
export function isJsonType(req: Request): boolean {
  const t = mediaType(req);
  return t === "application/json" || /^application\/[^/\s]+\+json$/.test(t);
}

/** A size as the flags write it: 64mb, 1kb, 1000b. */
function sizeText(n: number): string {
  for (const [unit, size] of [
    ["gb", 1024 ** 3],
    ["mb", 1024 ** 2],
    ["kb", 1024],
  ] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return `${n}b`;
}

/** Whether the request says it carries a body. */
function hasBody(req: Request): boolean {
  return req.header("transfer-encoding") !== undefined || Number(req.header("content-length") ?? 0) > 0;
}

/**
 * Reads the body as JSON, refusing more than `limit` bytes (413, before reading when
 * Content-Length says so), a compressed body or a charset other than UTF-8 (415), and what is
 * not a JSON object or array (400). A refused body closes the connection after the answer,
 * so the rest of it is never read.
 */
export async function readJson(req: Request, limit: number): Promise<unknown> {
  const refuse = (status: number, message: string, reason: BodyRefusal): never => {
    throw new BodyError(status, message, reason);
  };
  const encoding = (req.header("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding !== "identity" && encoding !== "") {
    refuse(
      415,
      `content encoding "${encoding.slice(0, 40)}" is not supported; send the body uncompressed`,
      "unsupported_media_type",
    );
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.header("content-type") ?? "")?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    refuse(415, `charset "${charset.slice(0, 40)}" is not supported; send UTF-8`, "unsupported_media_type");
  }
  const tooLarge = `request body too large: larger than the limit of ${sizeText(limit)}`;
  const declared = Number(req.header("content-length"));
  if (declared > limit) refuse(413, tooLarge, "too_large");
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req.raw as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) refuse(413, tooLarge, "too_large");
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof BodyError) throw err;
    refuse(400, "the request body was cut off before its end", "malformed");
  }
  const text = Buffer.concat(chunks, size).toString("utf8");
  const first = /\S/.exec(text)?.[0];
  if (first !== "{" && first !== "[") {
    refuse(
      400,
      first === undefined ? "not JSON: the body is empty" : "not JSON: the body must be a JSON object or array",
      "malformed",
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return refuse(400, `not JSON: ${(err as Error).message}`, "malformed");
  }
}

export interface ServeOptions {
  readonly routes: Routes;
  /** Runs first for every request (the webhook marks connections made with an old certificate). */
  readonly before?: (req: Request, res: Response) => void;
  /** The text of a 404's error. */
  readonly notFound: (req: Request) => string;
  /** Answers a step's error (the response may have begun: then it can only be logged). */
  readonly onError: (err: unknown, req: Request, res: Response) => void;
  /** Told when each request is answered, with the route it matched ("other" for none). */
  readonly onAnswered?: (route: string, req: Request, res: Response) => void;
}

/** A request listener for node:http or node:https that runs the matching route's steps in order. */
export function serve(opts: ServeOptions): RequestListener {
  return (rawReq, rawRes) => {
    const req = new IncomingRequest(rawReq);
    const res = new OutgoingResponse(rawRes);
    const found = opts.routes.match(req.method, req.path);
    if (opts.onAnswered) {
      const route = found === undefined ? "other" : req.path;
      rawRes.once("finish", () => opts.onAnswered?.(route, req, res));
    }
    run(opts, found, req, res).catch((err: unknown) => answerError(opts, err, req, res));
  };
}

async function run(opts: ServeOptions, found: Match | undefined, req: Request, res: Response): Promise<void> {
  opts.before?.(req, res);
  if (found === undefined) {
    res.status(404).json({ error: opts.notFound(req) });
    return;
  }
  if ("allow" in found) {
    res
      .status(405)
      .set("allow", found.allow)
      .json({ error: `${req.method.slice(0, 20)} is not allowed on ${req.path}; use ${found.allow}` });
    return;
  }
  for (const step of found.steps) {
    await step(req, res);
    if (res.sent) return;
  }
  throw new PromshardError("internal_error", `route ${req.method} ${req.path} ended without an answer`);
}

function answerError(opts: ServeOptions, err: unknown, req: Request, res: Response): void {
  // A refused body may be partly unread: the connection closes after the answer instead.
  if (err instanceof BodyError && !res.sent) res.set("connection", "close");
  opts.onError(err, req, res);
  if (!res.sent) res.raw.destroy();
}

export interface JsonStep {
  /** A request without a body (no Content-Type, no length) passes with `body` undefined. */
  readonly optional?: boolean;
}

export interface HttpAppOptions {
  readonly registry: Registry;
  readonly readiness: () => Readiness | Promise<Readiness>;
  readonly log: Logger;
  /** Largest JSON body accepted, in bytes; larger ones get 413. Default 1 MiB. */
  readonly bodyLimit?: number;
  /**
   * Adds the component's own routes beside the probes. `json(what)` is a step that reads a
   * JSON body within the limit (400 naming `what` when the Content-Type is not JSON): put it
   * after authentication, so that nobody without a token can make the server read large bodies.
   */
  readonly routes?: (routes: Routes, helpers: { readonly json: (what: string, o?: JsonStep) => Handler }) => void;
}

/**
 * What every promshard server has: `/metrics` (the component's registry), `/healthz` (the
 * process answers), `/readyz` (503 with the reason until ready), request metrics, JSON 404s and
 * 405s, and errors answered as `{error}` without a stack (5xx are logged with theirs instead).
 */
export function createHttpApp(opts: HttpAppOptions): RequestListener {
  const limit = opts.bodyLimit ?? 1024 * 1024;
  const duration = new Histogram({
    name: "promshard_http_request_duration_seconds",
    help: "Time to answer HTTP requests, by route, method and status code.",
    labelNames: ["route", "method", "code"] as const,
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10],
    registers: [opts.registry],
  });
  const routes = new Routes();
  routes.get("/metrics", async (_req, res) => {
    res.send(opts.registry.contentType, await opts.registry.metrics());
  });
  routes.get("/healthz", (_req, res) => {
    res.send("text/plain; charset=utf-8", "ok\n");
  });
  routes.get("/readyz", async (_req, res) => {
    const r = await opts.readiness();
    res
      .status(r.ready ? 200 : 503)
      .send("text/plain; charset=utf-8", r.ready ? "ready\n" : `not ready: ${r.reason ?? "starting"}\n`);
  });
  const json =
    (what: string, o: JsonStep = {}): Handler =>
    async (req) => {
      if (o.optional && !hasBody(req)) return;
      if (!isJsonType(req)) throw new HttpError(400, `send ${what} as a JSON body with Content-Type: application/json`);
      req.body = await readJson(req, limit);
    };
  opts.routes?.(routes, { json });
  const started = new WeakMap<Request, bigint>();
  return serve({
    routes,
    before: (req) => started.set(req, process.hrtime.bigint()),
    notFound: (req) => `no route for ${req.method} ${req.path.slice(0, 200)}`,
    onAnswered: (route, req, res) => {
      const t = started.get(req);
      if (t === undefined) return;
      // Only the methods a route can have are labels: a client's made-up method is "other".
      const method = METHOD_LABELS.has(req.method) ? req.method : "other";
      duration.observe({ route, method, code: String(res.raw.statusCode) }, Number(process.hrtime.bigint() - t) / 1e9);
    },
    onError: (err, req, res) => {
      if (err instanceof HttpError && err.status < 500) {
        if (!res.sent) res.status(err.status).json({ error: err.message, ...err.details });
        return;
      }
      opts.log.error({ err, path: req.path.slice(0, 200) }, "request failed");
      if (res.sent) return;
      if (err instanceof HttpError) res.status(err.status).json({ error: err.message, ...err.details });
      else res.status(500).json({ error: "internal error; see the server's log" });
    },
  });
}

const METHOD_LABELS = new Set(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"]);

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

export function listen(app: RequestListener, addr: string): Promise<Listening> {
  const { host, port } = parseListenAddress(addr);
  const server = process.getBuiltinModule("node:http").createServer(app);
  // A client that sends its headers or body slowly holds a socket: bounded (Node's defaults
  // are 60 s for headers and 5 min per request), so slow clients cannot pile up.
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  // Longer than promshard's own clients keep an idle connection (see PEER_IDLE_MS).
  server.keepAliveTimeout = PEER_IDLE_MS + 5_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
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
    });
  });
}
