import { type Dispatcher, request } from "undici";

export interface HttpCallOptions {
  readonly method?: "GET" | "POST" | "PUT" | "DELETE" | "PATCH";
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Whole call, answer included. Default 10 s. */
  readonly timeoutMs?: number;
  /** A client with its own TLS or auth (the Kubernetes API's); default undici's global one. */
  readonly dispatcher?: Dispatcher;
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
 * One HTTP call with undici: the status and the whole body as text. Throws only when no
 * answer came (refused, reset, timed out); every status is an answer. The one way promshard
 * calls its peers (sidecars, Prometheus, the Kubernetes API); exploring scrapes stream
 * instead (coordinator/explore.ts).
 */
export async function httpCall(url: string, opts: HttpCallOptions = {}): Promise<HttpAnswer> {
  const res = await request(url, {
    method: opts.method ?? "GET",
    ...(opts.headers ? { headers: opts.headers } : {}),
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  });
  return { status: res.statusCode, text: await res.body.text() };
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
