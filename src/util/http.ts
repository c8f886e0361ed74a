import type { Dispatcher } from "undici";

export interface HttpCallOptions {
  readonly method?: "GET" | "POST" | "PUT" | "DELETE" | "PATCH";
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Whole call, answer included. Default 10 s. */
  readonly timeoutMs?: number;
  /** A client with its own TLS or auth (the Kubernetes API's through client-node): undici's. */
  readonly dispatcher?: Dispatcher;
  /** node:http's way to the same: an agent with its own TLS (peerAgent); default one shared agent a protocol. */
  readonly agent?: import("node:http").Agent;
}

export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

/** Why a call got no answer, in the words an operator needs: `ECONNREFUSED`, `timed out`. */
export function unreachableReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError" || err.name === "AbortError") return "timed out";
  // undici puts the socket's error on the error itself; fetch hides it in `cause`.
  const e = ((err as { code?: string }).code ? err : (err.cause ?? err)) as { code?: string; message?: string };
  if (e.code) return `${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : ""}`;
  return e.message ?? err.message;
}

/**
 * One HTTP call: the status and the whole body as text. Throws only when no
 * answer came (refused, reset, timed out); every status is an answer. The one way promshard
 * calls its peers (sidecars, Prometheus, the Kubernetes API); exploring scrapes stream
 * instead (coordinator/explore.ts).
 */
export async function httpCall(url: string, opts: HttpCallOptions = {}): Promise<HttpAnswer> {
  const init = {
    method: opts.method ?? "GET",
    ...(opts.headers ? { headers: opts.headers } : {}),
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  };
  if (opts.dispatcher) {
    // A client of its own is undici's; the package is loaded by the processes that have one.
    const { request } = await import("undici");
    const res = await request(url, { ...init, dispatcher: opts.dispatcher });
    return { status: res.statusCode, text: await res.body.text() };
  }
  return nodeCall(url, init.method, opts.headers, opts.body, init.signal, opts.agent);
}

/**
 * How long a connection to a peer is kept open between calls. Node's default agent closes an
 * idle one after 5 s, just before the coordinator's next round (every 5 s) and the sidecar's
 * next report would use it: each round then paid a TCP connect and close on both sides.
 * Servers keep theirs longer (PEER_IDLE_MS + 5 s, src/observability/http.ts), so the client
 * closes first and never sends on a connection the server is closing.
 */
export const PEER_IDLE_MS = 30_000;

type Protocol = "http" | "https";
const clients = new Map<Protocol, { request: typeof import("node:http").request; agent: import("node:http").Agent }>();

function peerClient(protocol: Protocol) {
  let c = clients.get(protocol);
  if (!c) {
    // Not `import("node:http")`: its module namespace reads every export, and the WebSocket
    // getter among them loads the bundled undici, the cost nodeCall is here to avoid.
    const m = process.getBuiltinModule(protocol === "https" ? "node:https" : "node:http");
    c = { request: m.request, agent: new m.Agent({ keepAlive: true, timeout: PEER_IDLE_MS }) };
    clients.set(protocol, c);
  }
  return c;
}

/** An agent for httpCall's `agent` that trusts `ca` (PEM) for https peers, connections kept as for every peer. */
export function peerAgent(protocol: Protocol, ca?: string | Buffer): import("node:http").Agent {
  if (protocol === "http") return peerClient("http").agent;
  const { Agent } = process.getBuiltinModule("node:https");
  return new Agent({ keepAlive: true, timeout: PEER_IDLE_MS, ...(ca !== undefined ? { ca } : {}) });
}

/**
 * A call through node:http (node:https for https URLs), which every promshard process has
 * loaded already for its own server. Node's fetch would load its bundled undici on the first
 * call: 12 MiB more RSS and 40 ms more CPU in a sidecar, which calls only its own Prometheus.
 * No Accept-Encoding is sent: peers are on loopback or in the cluster, where compressing
 * costs both sides CPU for nothing. Redirects are answers, as with undici's request().
 */
function nodeCall(
  url: string,
  method: string,
  headers: Readonly<Record<string, string>> | undefined,
  body: string | undefined,
  signal: AbortSignal,
  ownAgent: import("node:http").Agent | undefined,
): Promise<HttpAnswer> {
  const { request, agent: shared } = peerClient(url.startsWith("https:") ? "https" : "http");
  const agent = ownAgent ?? shared;
  const payload = body === undefined ? undefined : Buffer.from(body);
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = request(url, {
      agent,
      method,
      headers: payload ? { "content-length": String(payload.length), ...headers } : headers,
      signal,
    });
    // The timeout covers the body too: an abort while it streams fails the call with the
    // timeout's own error, whichever of the request or the response sees it first.
    const fail = (err: unknown) => reject(signal.aborted ? signal.reason : err);
    req.once("error", fail);
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("error", fail);
      res.once("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.end(payload);
  });
}

/** Resolves once `url` answers 2xx, or after `timeoutMs` (the caller's next look says what is wrong). */
export async function untilAnswers(url: string, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    try {
      const { status } = await httpCall(url, { timeoutMs: 2000 });
      if (status >= 200 && status < 300) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
