/**
 * The few Kubernetes API calls the webhook, `promshard certs`, the StatefulSet scaler and a
 * sidecar's token checks make (version, Secrets, webhook configurations, TokenReviews), as raw
 * JSON requests: in a pod with its ServiceAccount's own credentials over node:https, elsewhere
 * through client-node's authentication (kubeconfig files with every kind of user), the way
 * src/kube/client.ts lists objects.
 */
import { existsSync, readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import type { HttpMethod } from "@kubernetes/client-node";
import type { Dispatcher } from "undici";
import { PromshardError } from "../errors.ts";
import { type HttpAnswer, type HttpCallOptions, httpCall, peerAgent, unreachableReason } from "../util/http.ts";
import { clientNode } from "./client-node.ts";

export interface KubeResponse<T> {
  status: number;
  body: T;
}

export interface KubeApi {
  readonly server: string;
  /** Never throws on an HTTP status; throws kube_request_failed when the server cannot be reached. */
  request<T = unknown>(
    method: string,
    path: string,
    opts?: { body?: unknown; contentType?: string },
  ): Promise<KubeResponse<T>>;
  /** Like request, but a status other than 2xx throws kube_request_failed with the API's message. */
  call<T = unknown>(method: string, path: string, opts?: { body?: unknown; contentType?: string }): Promise<T>;
}

/** Where a pod's ServiceAccount credentials are mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The namespace of the pod's ServiceAccount (own_namespace, a sidecar's own), undefined outside a pod. */
export function ownNamespace(): string | undefined {
  try {
    return readFileSync(join(SERVICE_ACCOUNT_DIR, "namespace"), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A token file is read again when its copy is older than this: the kubelet renews projected
 * tokens well before they expire, and client-go and client-node re-read theirs each minute.
 */
const TOKEN_MAX_AGE_MS = 60_000;

type Send = (
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string | undefined,
) => Promise<HttpAnswer>;

/**
 * From `kubeconfig`; else, as client-node's loadFromDefault: $KUBECONFIG, ~/.kube/config, the
 * pod's ServiceAccount. The last is served without client-node (inClusterApi): a sidecar that
 * checks tokens would otherwise load it for that alone, 66 MiB and a quarter second in every
 * shard pod.
 */
export function kubeApi(kubeconfig?: string): KubeApi {
  if (!kubeconfig && !process.env.KUBECONFIG && !existsSync(join(homedir(), ".kube", "config"))) {
    const inCluster = inClusterApi();
    if (inCluster) return inCluster;
  }
  return clientNodeApi(kubeconfig);
}

/**
 * The pod's own ServiceAccount (client-go's rest.InClusterConfig): the API server at
 * $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, its CA and the token from `dir`, the
 * token read again when a minute old. Undefined outside a pod (no token file, or the variables
 * unset).
 */
export function inClusterApi(
  dir = SERVICE_ACCOUNT_DIR,
  env: NodeJS.ProcessEnv = process.env,
  now: () => number = Date.now,
): KubeApi | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const tokenFile = join(dir, "token");
  if (!host || !port || !existsSync(tokenFile)) return undefined;
  // client-node's rule: these ports are plain HTTP (an API server proxy), any other HTTPS.
  const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  let ca: Buffer | undefined;
  if (scheme === "https") {
    try {
      ca = readFileSync(join(dir, "ca.crt"));
    } catch (err) {
      throw new PromshardError(
        "kube_request_failed",
        `cannot read the ServiceAccount's CA ${join(dir, "ca.crt")}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
  }
  const agent = peerAgent(scheme, ca);
  let token: { text: string; readAt: number } | undefined;
  const bearer = (): string => {
    const t = now();
    if (!token || t - token.readAt > TOKEN_MAX_AGE_MS) {
      try {
        token = { text: readFileSync(tokenFile, "utf8").trim(), readAt: t };
      } catch (err) {
        // A token being renewed is briefly unreadable: the last one still serves until then.
        if (!token) throw err;
      }
    }
    return token.text;
  };
  const send: Send = async (method, path, headers, body) => {
    let authorization: string;
    try {
      authorization = `Bearer ${bearer()}`;
    } catch (err) {
      throw new PromshardError(
        "kube_request_failed",
        `cannot read the ServiceAccount token ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
    return httpCall(server + path, {
      method: method as HttpCallOptions["method"],
      headers: { ...headers, authorization },
      ...(body === undefined ? {} : { body }),
      agent,
      timeoutMs: 30_000,
    });
  };
  return jsonApi(server, send);
}

/** Through client-node's KubeConfig: every kind of kubeconfig user (certificates, tokens, exec plugins). */
function clientNodeApi(kubeconfig?: string): KubeApi {
  const { KubeConfig, RequestContext } = clientNode();
  const kc = new KubeConfig();
  try {
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new PromshardError("kube_request_failed", `cannot load the kubeconfig: ${(err as Error).message}`, {
      path: "--kubeconfig",
      cause: err,
    });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new PromshardError("kube_request_failed", "the kubeconfig has no current cluster; set current-context", {
      path: "--kubeconfig",
    });
  }
  const server = cluster.server.replace(/\/+$/, "");
  const send: Send = async (method, path, headers, body) => {
    const ctx = new RequestContext(server + path, method as HttpMethod);
    await kc.applySecurityAuthentication(ctx);
    return httpCall(server + path, {
      method: method as HttpCallOptions["method"],
      headers: { ...ctx.getHeaders(), ...headers },
      ...(body === undefined ? {} : { body }),
      dispatcher: ctx.getDispatcher() as Dispatcher,
      timeoutMs: 30_000,
    });
  };
  return jsonApi(server, send);
}

/** JSON requests and answers over `send`, which adds the credentials. */
function jsonApi(server: string, send: Send): KubeApi {
  const request = async <T>(method: string, path: string, opts: { body?: unknown; contentType?: string } = {}) => {
    const headers: Record<string, string> = { accept: "application/json" };
    if (opts.body !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
    let res: HttpAnswer;
    try {
      res = await send(method, path, headers, opts.body === undefined ? undefined : JSON.stringify(opts.body));
    } catch (err) {
      if (err instanceof PromshardError) throw err;
      throw new PromshardError("kube_request_failed", `${method} ${path}: ${unreachableReason(err)}`, { cause: err });
    }
    const text = res.text;
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: body as T };
  };
  return {
    server,
    request,
    async call<T>(method: string, path: string, opts?: { body?: unknown; contentType?: string }) {
      const res = await request<T>(method, path, opts);
      if (res.status < 200 || res.status > 299) {
        const b = res.body as { message?: string } | string;
        const message = typeof b === "object" && b?.message ? b.message : String(b).slice(0, 300);
        throw new PromshardError("kube_request_failed", `${method} ${path}: HTTP ${res.status}: ${message}`);
      }
      return res.body;
    },
  };
}
