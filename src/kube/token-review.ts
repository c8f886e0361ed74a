import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import type { TokenVerdict, TokenVerifier } from "../observability/bearer.ts";
import { HttpError, type Request } from "../observability/http.ts";
import { sha256 } from "../util/hash.ts";
import type { KubeApi } from "./api.ts";

/**
 * What a caller must be allowed to do, as a SubjectAccessReview's resourceAttributes. promshard
 * defines its own resources (nothing stores them; RBAC can still grant them):
 * - the sidecar: group `promshard.io`, resource `shards`, subresource `assignment` (verb
 *   `update`, PUT or PATCH /api/v1/assignment) or `runtime` (verb `get`), in the pod's namespace, named
 *   after the pod;
 * - the coordinator: group `promshard.io`, resource `coordinators`, subresource `reload`, verb
 *   `create` (POST /-/reload), in its namespace.
 */
export interface AccessCheck {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
}

/**
 * The audience of the tokens a sidecar accepts with --api.auth=kubernetes. A token for the API
 * server's own audience (a pod's default one) is refused: a sidecar, or whoever reads its
 * plain-HTTP traffic, could otherwise act as the coordinator against the API server. The
 * coordinator sends a projected token for this audience (the chart mounts one).
 */
export const SIDECAR_AUDIENCE = "promshard.io/sidecar";

export interface TokenReviewOptions {
  readonly api: KubeApi;
  /** Audiences the token must be for (default: the API server's own). */
  readonly audiences?: readonly string[];
  /** The access the request needs. */
  readonly access: (req: Request) => AccessCheck;
  /** How long an answer is reused for the same token and access (default 10 s). */
  readonly cacheMs?: number;
  /** Most answers kept (default 1000): random tokens cannot grow the cache without bound. */
  readonly maxEntries?: number;
  readonly log?: Logger;
  readonly now?: () => number;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  audiences?: string[];
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
}

/**
 * A bearer token checked by the Kubernetes API: TokenReview says who holds it (a ServiceAccount
 * token, for the coordinator), SubjectAccessReview whether RBAC lets that identity do what the
 * request does. The caller's own ServiceAccount needs `system:auth-delegator`. Answers are cached
 * by the token's hash (never the token); an unreachable API is a 503, not a refusal.
 */
export function tokenReviewVerifier(opts: TokenReviewOptions): TokenVerifier {
  const cacheMs = opts.cacheMs ?? 10_000;
  const max = opts.maxEntries ?? 1000;
  const now = opts.now ?? Date.now;
  const audiences = opts.audiences?.length ? opts.audiences : undefined;
  const cache = new Map<string, { at: number; verdict: Promise<TokenVerdict> }>();
  const review = async (token: string, access: AccessCheck): Promise<TokenVerdict> => {
    const tr = await opts.api.request<{ status?: TokenReviewStatus }>(
      "POST",
      "/apis/authentication.k8s.io/v1/tokenreviews",
      {
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenReview",
          spec: { token, ...(audiences ? { audiences } : {}) },
        },
      },
    );
    if (tr.status !== 201 && tr.status !== 200) throw reviewFailed("TokenReview", tr.status);
    const st = tr.body.status ?? {};
    if (!st.authenticated || !st.user?.username)
      return {
        ok: false,
        reason: `the Kubernetes API does not know it${audiences ? ` as a token for the audience ${audiences.join(" or ")}` : ""}`,
      };
    // An authenticator that ignores audiences answers without them: not proof of the audience.
    if (audiences && !st.audiences?.some((a) => audiences.includes(a)))
      return {
        ok: false,
        reason: `the Kubernetes API did not confirm it is for the audience ${audiences.join(" or ")}`,
      };
    const user = st.user;
    const sar = await opts.api.request<{ status?: { allowed?: boolean; reason?: string } }>(
      "POST",
      "/apis/authorization.k8s.io/v1/subjectaccessreviews",
      {
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: user.username,
            ...(user.uid ? { uid: user.uid } : {}),
            groups: user.groups ?? [],
            ...(user.extra ? { extra: user.extra } : {}),
            resourceAttributes: access,
          },
        },
      },
    );
    if (sar.status !== 201 && sar.status !== 200) throw reviewFailed("SubjectAccessReview", sar.status);
    const what = `${access.verb} ${access.resource}${access.subresource ? `/${access.subresource}` : ""}.${access.group}`;
    return sar.body.status?.allowed
      ? { ok: true, user: user.username }
      : { ok: false, reason: `${user.username} may not ${what}${access.namespace ? ` in ${access.namespace}` : ""}` };
  };
  return (token, req) => {
    const access = opts.access(req);
    const key = sha256(`${token}\0${JSON.stringify(access)}`);
    const t = now();
    const hit = cache.get(key);
    if (hit && t - hit.at < cacheMs) return hit.verdict;
    if (cache.size >= max) {
      for (const [k, v] of cache) if (t - v.at >= cacheMs) cache.delete(k);
      // Still full of fresh answers: drop the oldest (Map order is insertion order).
      while (cache.size >= max) cache.delete(cache.keys().next().value!);
    }
    const verdict = review(token, access).catch((err: unknown) => {
      cache.delete(key);
      opts.log?.error({ err }, "cannot check a bearer token with the Kubernetes API");
      throw new HttpError(503, "the Kubernetes API could not check the bearer token; try again");
    });
    cache.set(key, { at: t, verdict });
    return verdict;
  };
}

function reviewFailed(kind: string, status: number): PromshardError {
  return new PromshardError(
    "kube_request_failed",
    status === 401 || status === 403
      ? `${kind} answered HTTP ${status}: the ServiceAccount this process runs as may not create ${kind.toLowerCase()}s; bind it to the ClusterRole system:auth-delegator`
      : `${kind} answered HTTP ${status}`,
  );
}

/** What a request to the sidecar's API needs (see AccessCheck). */
export function sidecarAccess(method: string, namespace: string, pod: string): AccessCheck {
  const read = method === "GET" || method === "HEAD";
  return {
    verb: read ? "get" : "update",
    group: "promshard.io",
    resource: "shards",
    subresource: read ? "runtime" : "assignment",
    namespace,
    name: pod,
  };
}

/** What POST /-/reload on the coordinator needs (see AccessCheck). */
export function reloadAccess(namespace: string): AccessCheck {
  return { verb: "create", group: "promshard.io", resource: "coordinators", subresource: "reload", namespace };
}
