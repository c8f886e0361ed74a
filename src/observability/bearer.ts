import { type Handler, HttpError, type Request } from "./http.ts";

/** Whether a bearer token may do what the route does; `reason` is safe to return (never the token). */
export type TokenVerdict =
  | { readonly ok: true; readonly user?: string }
  | { readonly ok: false; readonly reason: string };

/** Checks one bearer token: a static token file, or the Kubernetes API (TokenReview + SubjectAccessReview). */
export type TokenVerifier = (token: string, req: Request) => TokenVerdict | Promise<TokenVerdict>;

/** Longest bearer token looked at; a longer header is refused before any check (a ServiceAccount token is ~1 KB). */
const MAX_TOKEN = 16 * 1024;

/**
 * 401 without a well-formed `Authorization: Bearer <token>`, 403 when `verify` refuses it. The
 * token never appears in an answer or a log line.
 */
export function bearerAuth(verify: TokenVerifier, what: string): Handler {
  return async (req, res) => {
    const header = req.header("authorization");
    if (header === undefined) {
      res.set("WWW-Authenticate", 'Bearer realm="promshard"');
      throw new HttpError(401, "authentication required: send Authorization: Bearer <token>");
    }
    const m = header.length <= MAX_TOKEN + 16 ? /^Bearer +(\S+)$/i.exec(header.trim()) : null;
    if (!m) {
      res.set("WWW-Authenticate", 'Bearer realm="promshard", error="invalid_request"');
      throw new HttpError(401, "malformed Authorization header: expected Bearer <token>");
    }
    const v = await verify(m[1]!, req);
    if (!v.ok) throw new HttpError(403, `the bearer token is not ${what}${v.reason ? `: ${v.reason}` : ""}`);
  };
}
