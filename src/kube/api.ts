/**
 * The few Kubernetes API calls the webhook, `promshard certs` and the StatefulSet scaler make (version, Secrets,
 * webhook configurations), as raw JSON requests through client-node's authentication, the way
 * src/kube/client.ts lists objects.
 */
import { type HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
import type { Dispatcher } from "undici";
import { PromshardError } from "../errors.ts";
import { type HttpAnswer, type HttpCallOptions, httpCall, unreachableReason } from "../util/http.ts";

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

/** From `kubeconfig`, else $KUBECONFIG / ~/.kube/config / the in-cluster service account. */
export function kubeApi(kubeconfig?: string): KubeApi {
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
  const request = async <T>(method: string, path: string, opts: { body?: unknown; contentType?: string } = {}) => {
    const ctx = new RequestContext(server + path, method as HttpMethod);
    await kc.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = { ...ctx.getHeaders(), accept: "application/json" };
    if (opts.body !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
    let res: HttpAnswer;
    try {
      res = await httpCall(server + path, {
        method: method as HttpCallOptions["method"],
        headers,
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
        dispatcher: ctx.getDispatcher() as Dispatcher,
        timeoutMs: 30_000,
      });
    } catch (err) {
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
