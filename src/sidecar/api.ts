import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { RequestListener } from "node:http";
import type { Logger } from "pino";
import { ASSIGNMENT_PATH } from "../contract/assignment.ts";
import { FLUSH_PATH, type FlushReport } from "../contract/flush.ts";
import { RUNTIME_PATH, RUNTIME_REMOVALS_PARAM } from "../contract/runtime-report.ts";
import { PromshardError } from "../errors.ts";
import { bearerAuth, type TokenVerifier } from "../observability/bearer.ts";
import { createHttpApp, HttpError, type Readiness } from "../observability/http.ts";
import type { Registry } from "../observability/metrics.ts";

/** What the API needs from the sidecar. */
export interface SidecarControl {
  /**
   * The runtime report; with `since` (a report's token) only the targets changed after it,
   * and with `removals` the ids gone after it (RUNTIME_REMOVALS_PARAM).
   */
  runtime(since?: string, removals?: boolean): Promise<unknown>;
  /** Validates and applies a decoded body; throws HttpError (400, 409, 503) when it does not. */
  applyAssignment(body: unknown): Promise<unknown>;
  /** The same for a delta (contract/assignment.ts, AssignmentDelta); 409 when it was not made from the held set. */
  applyAssignmentDelta(body: unknown): Promise<unknown>;
  readiness(): Readiness;
  /** A drained shard's head into the bucket; absent when no Thanos sidecar ships this TSDB. */
  readonly flusher?: { flush(release: boolean): Promise<FlushReport> } | undefined;
}

/**
 * The bearer token from a file, read again when the file changes (a rotated Secret is picked
 * up without a restart). An empty or unreadable file at start is an error; later, the last
 * good token stays in use and the problem is logged.
 *
 * The file may hold several tokens, one a line, each accepted: a rotation (the Helm chart's)
 * lists the new token beside the previous ones, since the kubelet brings a changed Secret to
 * each pod at its own time and the caller may still send an older one for a while.
 */
export class TokenFile {
  readonly path: string;
  #tokens: Buffer[];
  #stamp: string;
  readonly #log: Logger | undefined;

  constructor(path: string, log?: Logger, flag = "--api.token-file") {
    this.path = path;
    this.#log = log;
    const read = TokenFile.#read(path);
    if (typeof read === "string") throw new PromshardError("flag_invalid", read, { path: flag });
    this.#tokens = read.tokens;
    this.#stamp = read.stamp;
  }

  static #read(path: string): { tokens: Buffer[]; stamp: string } | string {
    try {
      const st = statSync(path);
      const lines = readFileSync(path, "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "");
      if (lines.length === 0) return `${path} is empty; put the API token in it`;
      const bad = lines.findIndex((l) => /\s/.test(l));
      if (bad >= 0) return `${path} line ${bad + 1} holds more than one word; put one token a line, without spaces`;
      return { tokens: lines.map(digest), stamp: `${st.mtimeMs}:${st.size}:${st.ino}` };
    } catch (err) {
      return `cannot read ${path}: ${(err as Error).message}`;
    }
  }

  /** Whether `candidate` is one of the file's tokens (constant time: every one is compared). */
  matches(candidate: string): boolean {
    this.#refresh();
    const d = digest(candidate);
    let found = false;
    for (const t of this.#tokens) found = timingSafeEqual(d, t) || found;
    return found;
  }

  #refresh(): void {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (err) {
      this.#log?.error({ err, path: this.path }, "token file unreadable; keeping the last token");
      return;
    }
    if (stamp === this.#stamp) return;
    const read = TokenFile.#read(this.path);
    if (typeof read === "string") {
      this.#log?.error({ err: read, path: this.path }, "token file unusable; keeping the last token");
      return;
    }
    this.#tokens = read.tokens;
    this.#stamp = read.stamp;
    this.#log?.info({ path: this.path }, "API token reloaded");
  }
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** The static token's check, for bearerAuth. */
export function staticToken(token: TokenFile): TokenVerifier {
  return (candidate) => (token.matches(candidate) ? { ok: true } : { ok: false, reason: "" });
}

export interface SidecarApiOptions {
  readonly control: SidecarControl;
  /** The static token (local mode), or a TokenReview check (in a cluster). */
  readonly token: TokenFile | TokenVerifier;
  readonly registry: Registry;
  readonly log: Logger;
  /** Largest assignment body, in bytes (default 64 MiB). */
  readonly bodyLimit?: number;
}

/**
 * The sidecar's HTTP API (DESIGN §2): `GET /api/v1/runtime`, `PUT /api/v1/assignment` (a whole
 * set), `PATCH /api/v1/assignment` (a delta),
 * `POST /api/v1/flush` (contract/flush.ts), behind the bearer token; `/metrics`, `/healthz`, `/readyz` open.
 */
export function createSidecarApi(opts: SidecarApiOptions): RequestListener {
  const verify = opts.token instanceof TokenFile ? staticToken(opts.token) : opts.token;
  const auth = bearerAuth(
    verify,
    opts.token instanceof TokenFile ? "this sidecar's token" : "one allowed to use this sidecar",
  );
  return createHttpApp({
    registry: opts.registry,
    log: opts.log,
    readiness: () => opts.control.readiness(),
    bodyLimit: opts.bodyLimit ?? 64 * 1024 * 1024,
    routes: (app, { json }) => {
      app.get(RUNTIME_PATH, auth, async (req, res) => {
        const since = req.query.get("since") ?? undefined;
        res.json(await opts.control.runtime(since, req.query.get(RUNTIME_REMOVALS_PARAM) === "1"));
      });
      app.put(ASSIGNMENT_PATH, auth, json("the assignment"), async (req, res) => {
        res.json(await opts.control.applyAssignment(req.body));
      });
      app.patch(ASSIGNMENT_PATH, auth, json("the delta"), async (req, res) => {
        res.json(await opts.control.applyAssignmentDelta(req.body));
      });
      app.post(FLUSH_PATH, auth, json("the flush request", { optional: true }), async (req, res) => {
        const flusher = opts.control.flusher;
        if (!flusher)
          throw new HttpError(
            404,
            "this sidecar flushes nothing: start it with --tsdb.path (the webhook does when the pod uploads blocks)",
          );
        try {
          res.json(await flusher.flush((req.body as { release?: unknown } | undefined)?.release === true));
        } catch (err) {
          // The coordinator logs it and asks again next round: it must say what failed.
          if (err instanceof PromshardError) throw new HttpError(503, err.message);
          throw err;
        }
      });
    },
  });
}
