import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { Express, Request, RequestHandler } from "express";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { ASSIGNMENT_PATH } from "../contract/assignment.ts";
import { RUNTIME_PATH } from "../contract/runtime-report.ts";
import { PromshardError } from "../errors.ts";
import { createHttpApp, HttpError, type Readiness } from "../observability/http.ts";

/** What the API needs from the sidecar. */
export interface SidecarControl {
  runtime(): Promise<unknown>;
  /** Validates and applies a decoded body; throws HttpError (400, 409, 503) when it does not. */
  applyAssignment(body: unknown): Promise<unknown>;
  readiness(): Readiness;
}

/**
 * The bearer token from a file, read again when the file changes (a rotated Secret is picked
 * up without a restart). An empty or unreadable file at start is an error; later, the last
 * good token stays in use and the problem is logged.
 */
export class TokenFile {
  readonly path: string;
  #token: Buffer;
  #stamp: string;
  readonly #log: Logger | undefined;

  constructor(path: string, log?: Logger) {
    this.path = path;
    this.#log = log;
    const read = TokenFile.#read(path);
    if (typeof read === "string") throw new PromshardError("flag_invalid", read, { path: "--api.token-file" });
    this.#token = read.token;
    this.#stamp = read.stamp;
  }

  static #read(path: string): { token: Buffer; stamp: string } | string {
    try {
      const st = statSync(path);
      const token = readFileSync(path, "utf8").trim();
      if (token === "") return `${path} is empty; put the API token in it`;
      if (/\s/.test(token)) return `${path} holds more than one word; the token is one line without spaces`;
      return { token: digest(token), stamp: `${st.mtimeMs}:${st.size}:${st.ino}` };
    } catch (err) {
      return `cannot read ${path}: ${(err as Error).message}`;
    }
  }

  /** Whether `candidate` is the current token (constant time). */
  matches(candidate: string): boolean {
    this.#refresh();
    return timingSafeEqual(digest(candidate), this.#token);
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
    this.#token = read.token;
    this.#stamp = read.stamp;
    this.#log?.info({ path: this.path }, "API token reloaded");
  }
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** 401 without a well-formed `Authorization: Bearer <token>`, 403 with a wrong token. */
export function bearerAuth(token: TokenFile): RequestHandler {
  return (req: Request, res, next) => {
    const header = req.get("authorization");
    if (header === undefined) {
      res.set("WWW-Authenticate", 'Bearer realm="promshard"');
      throw new HttpError(401, "authentication required: send Authorization: Bearer <token>");
    }
    const m = /^Bearer +(\S+)$/i.exec(header.trim());
    if (!m) {
      res.set("WWW-Authenticate", 'Bearer realm="promshard", error="invalid_request"');
      throw new HttpError(401, "malformed Authorization header: expected Bearer <token>");
    }
    if (!token.matches(m[1]!)) throw new HttpError(403, "the bearer token is not this sidecar's token");
    next();
  };
}

export interface SidecarApiOptions {
  readonly control: SidecarControl;
  readonly token: TokenFile;
  readonly registry: Registry;
  readonly log: Logger;
  readonly bodyLimit?: string | number;
}

/**
 * The sidecar's HTTP API (DESIGN §2): `GET /api/v1/runtime`, `PUT /api/v1/assignment`, both
 * behind the bearer token; `/metrics`, `/healthz`, `/readyz` open.
 */
export function createSidecarApi(opts: SidecarApiOptions): Express {
  const auth = bearerAuth(opts.token);
  return createHttpApp({
    registry: opts.registry,
    log: opts.log,
    readiness: () => opts.control.readiness(),
    bodyLimit: opts.bodyLimit ?? "64mb",
    routes: (app, { json }) => {
      app.get(RUNTIME_PATH, auth, async (_req, res) => {
        res.json(await opts.control.runtime());
      });
      app.put(ASSIGNMENT_PATH, auth, json, async (req, res) => {
        if (!req.is(["application/json", "application/*+json"])) {
          throw new HttpError(400, "send the assignment as a JSON body with Content-Type: application/json");
        }
        res.json(await opts.control.applyAssignment(req.body));
      });
    },
  });
}
