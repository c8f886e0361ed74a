/**
 * The admission server: node:https serving `POST /mutate` (AdmissionReview v1),
 * with the certificate reloaded from its files without a restart, and `/metrics`, `/healthz`,
 * `/readyz` on a separate plain-HTTP port (src/observability/http.ts).
 *
 * HTTP answers: 200 with an AdmissionResponse for every well-formed review; 400 for a body that
 * is not JSON or not an AdmissionReview v1 (the reason in `{error}`); 413 over the body limit;
 * 415 for a content type other than application/json (or an unsupported charset or encoding);
 * 404/405 elsewhere. No request can crash the process: review() never throws, and the error
 * handler turns anything else into a JSON answer.
 */
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import {
  BodyError,
  type BodyRefusal,
  createHttpApp,
  type Handler,
  type Listening,
  listen,
  mediaType,
  parseListenAddress,
  Routes,
  readJson,
  serve,
} from "../observability/http.ts";
import type { Registry } from "../observability/metrics.ts";
import { webhookMetrics } from "./metrics.ts";
import { type ReviewOutcome, review } from "./review.ts";
import type { InjectorSettings } from "./settings.ts";
import { checkPair, loadPair, type PairWatcher, type TlsPair, watchPair } from "./tls-files.ts";

export const ADMISSION_PATH = "/mutate";
/**
 * The API server refuses objects over 3 MiB (etcd's default request limit is 1.5 MiB), and an
 * UPDATE review carries the object twice: 8 MiB leaves room for both plus the review.
 */
export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

export interface WebhookServerOptions {
  /** HTTPS listen address: `:8443`, `127.0.0.1:0`. */
  listen: string;
  /** Plain-HTTP address of /metrics, /healthz and /readyz; none when undefined. */
  metricsListen?: string;
  /** Certificate and key files (reloaded on change), or PEM text (fixed). */
  tls: { certFile: string; keyFile: string } | { cert: string; key: string };
  settings: InjectorSettings;
  log: Logger;
  registry: Registry;
  bodyLimit?: number;
  /** How often the certificate files are re-read besides file events. Default 10 s. */
  pollMs?: number;
  /**
   * On stop: keep answering this long while unready, so that the API server, still sending
   * to this address until the Service's endpoints change, loses no review. Default 0.
   */
  shutdownDelayMs?: number;
}

export interface WebhookServer {
  /** https://host:port */
  readonly url: string;
  readonly port: number;
  /** http://host:port of the metrics server, when there is one. */
  readonly metricsUrl: string | undefined;
  /** The certificate in use. */
  certificate(): TlsPair;
  /** Re-reads the certificate files now (they are also watched). */
  reloadCertificate(): Promise<TlsPair>;
  /** Unready, then (after shutdownDelayMs) stops accepting and lets requests in flight finish. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** How a failed request is answered and counted: a refused body by its reason, anything else as internal. */
function failure(err: unknown): { status: number; metric: BodyRefusal | "internal"; message: string } {
  if (err instanceof BodyError) {
    const message = err.reason === "malformed" ? `malformed AdmissionReview: ${err.message}` : err.message;
    return { status: err.status, metric: err.reason, message };
  }
  return { status: 500, metric: "internal", message: "internal error; see the webhook's log" };
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const { log, settings } = opts;
  const metrics = webhookMetrics(opts.registry);
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  let pair: TlsPair =
    "certFile" in opts.tls
      ? await loadPair(opts.tls.certFile, opts.tls.keyFile)
      : checkPair(opts.tls.cert, opts.tls.key);
  metrics.certificateNotAfter.set(pair.notAfter.getTime() / 1000);
  let draining = false;
  let listening = false;

  // A connection made with a certificate that has since been replaced answers once more and
  // closes (Connection: close), so the client's next request does a new handshake with the new
  // certificate, without the race of closing a kept-alive connection under a client's feet.
  let generation = 0;
  const connectionGeneration = new WeakMap<object, number>();
  const requireJson: Handler = (req) => {
    // The charset (UTF-8 only) and the encoding are readJson's to check.
    if (mediaType(req) !== "application/json") {
      throw new BodyError(
        415,
        `content type ${JSON.stringify(req.header("content-type") ?? "")} is not supported; send application/json (UTF-8)`,
        "unsupported_media_type",
      );
    }
  };
  const routes = new Routes();
  routes.post(ADMISSION_PATH, requireJson, async (req, res) => {
    const body = await readJson(req, bodyLimit);
    const start = process.hrtime.bigint();
    const out = review(body, settings);
    res.status(out.status).json(out.body);
    observe(out, Number(process.hrtime.bigint() - start) / 1e9);
  });
  const app = serve({
    routes,
    before: (req, res) => {
      if (connectionGeneration.get(req.socket) !== generation) res.set("connection", "close");
    },
    notFound: (req) =>
      `no route for ${req.method.slice(0, 20)} ${req.path.slice(0, 200)}; the webhook serves POST ${ADMISSION_PATH}`,
    onError: (err, req, res) => {
      const r = failure(err);
      metrics.errors.inc({ reason: r.metric });
      if (r.status >= 500) log.error({ err, path: req.path.slice(0, 200) }, "admission request failed");
      else log.debug({ reason: r.message, status: r.status }, "admission request refused");
      if (!res.sent) res.status(r.status).json({ error: r.message });
    },
  });

  const observe = (out: ReviewOutcome, seconds: number) => {
    const operation = operationLabel(out.operation);
    metrics.requests.inc({ kind: out.kind, operation, result: out.result, dry_run: String(out.dryRun) });
    metrics.duration.observe({ kind: out.kind, operation, result: out.result }, seconds);
    if (out.result === "injected" && !out.dryRun) metrics.injections.inc({ mode: out.mode ?? "native" });
    if (out.result === "malformed") metrics.errors.inc({ reason: "malformed" });
    if (out.result === "unsupported") metrics.errors.inc({ reason: "unsupported_object" });
    if (out.result === "error") metrics.errors.inc({ reason: "internal" });
    // Every field comes from the request: each is cut, so one review logs a bounded line.
    const fields = {
      uid: out.uid === undefined ? undefined : logValue(out.uid),
      kind: out.kind,
      operation: logValue(out.operation),
      namespace: out.namespace === undefined ? undefined : logValue(out.namespace),
      name: out.name === undefined ? undefined : logValue(out.name),
      result: out.result,
      dryRun: out.dryRun,
      ...(out.reason ? { reason: logValue(out.reason, MAX_LOGGED_REASON) } : {}),
      ...(out.warnings.length > 0 ? { warnings: logWarnings(out.warnings) } : {}),
      ...(out.mode ? { mode: out.mode } : {}),
      ms: Math.round(seconds * 1e5) / 100,
    };
    if (out.result === "error") log.error(fields, "admission failed inside the webhook; object admitted unchanged");
    else if (out.result === "unsupported" || out.result === "malformed") log.warn(fields, "admission");
    else if (out.result === "unchanged") log.debug(fields, "admission");
    else log.info(fields, "admission");
  };

  const server: Server = createServer({ cert: pair.cert, key: pair.key, minVersion: "TLSv1.2" }, app);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 30_000;
  const sockets = new Set<Socket>();
  server.on("secureConnection", (s: TLSSocket) => {
    connectionGeneration.set(s, generation);
    log.debug({ fingerprint: pair.fingerprint, remote: s.remoteAddress }, "TLS connection");
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  // A client that fails the handshake (or scans the port) is not the server's problem.
  server.on("tlsClientError", (err) => log.debug({ err: err.message }, "TLS handshake failed"));
  server.on("clientError", (_err, socket) => socket.destroy());

  const { host, port } = parseListenAddress(opts.listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err }, "admission server error"));
  listening = true;
  const addr = server.address() as AddressInfo;
  const shownHost =
    addr.family === "IPv6" ? `[${addr.address}]` : addr.address === "0.0.0.0" ? "127.0.0.1" : addr.address;
  const url = `https://${shownHost}:${addr.port}`;

  const use = (next: TlsPair, how: string) => {
    server.setSecureContext({ cert: next.cert, key: next.key, minVersion: "TLSv1.2" });
    pair = next;
    generation++;
    metrics.certificateNotAfter.set(next.notAfter.getTime() / 1000);
    metrics.certificateReloads.inc({ result: "success" });
    log.info(
      { fingerprint: next.fingerprint, notAfter: next.notAfter.toISOString(), how },
      "serving certificate loaded",
    );
  };
  let watcher: PairWatcher | undefined;
  if ("certFile" in opts.tls) {
    watcher = watchPair(pair, {
      certFile: opts.tls.certFile,
      keyFile: opts.tls.keyFile,
      pollMs: opts.pollMs,
      onChange: (next) => use(next, "file change"),
      onError: (err) => {
        metrics.certificateReloads.inc({ result: "failure" });
        log.warn(
          { err: err.message },
          "certificate files changed but are not a valid pair (yet); keeping the current one",
        );
      },
    });
  }

  let metricsServer: Listening | undefined;
  if (opts.metricsListen !== undefined) {
    const healthApp = createHttpApp({
      registry: opts.registry,
      log,
      readiness: () =>
        draining
          ? { ready: false, reason: "shutting down" }
          : listening
            ? { ready: true }
            : { ready: false, reason: "starting" },
    });
    metricsServer = await listen(healthApp, opts.metricsListen);
  }
  log.info({ url: `${url}${ADMISSION_PATH}`, metrics: metricsServer?.url }, "webhook listening");

  let stopping: Promise<void> | undefined;
  return {
    url,
    port: addr.port,
    metricsUrl: metricsServer?.url,
    certificate: () => pair,
    reloadCertificate: async () => (watcher ? ((await watcher.check()) ?? pair) : pair),
    stop(graceMs = 5_000) {
      stopping ??= (async () => {
        draining = true;
        if (opts.shutdownDelayMs) await new Promise((r) => setTimeout(r, opts.shutdownDelayMs));
        watcher?.close();
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            for (const s of sockets) s.destroy();
          }, graceMs);
          force.unref();
          server.close(() => {
            clearTimeout(force);
            resolve();
          });
          server.closeIdleConnections();
        });
        listening = false;
        await metricsServer?.close(graceMs);
        log.info("webhook stopped");
      })();
      return stopping;
    },
  };
}

/** The operations Kubernetes sends; anything else is counted as "other", so input never makes a series. */
const OPERATIONS = new Set(["CREATE", "UPDATE", "DELETE", "CONNECT"]);

export function operationLabel(operation: string): string {
  return operation === "" ? "" : OPERATIONS.has(operation) ? operation : "other";
}

const MAX_LOGGED_VALUE = 256;
const MAX_LOGGED_REASON = 2048;
const MAX_LOGGED_WARNINGS = 10;

function logValue(s: string, max = MAX_LOGGED_VALUE): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`;
}

function logWarnings(ws: readonly string[]): string[] {
  const shown = ws.slice(0, MAX_LOGGED_WARNINGS).map((w) => logValue(w, MAX_LOGGED_VALUE * 2));
  if (ws.length > MAX_LOGGED_WARNINGS) shown.push(`… ${ws.length - MAX_LOGGED_WARNINGS} more warnings`);
  return shown;
}
