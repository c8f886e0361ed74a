import { createHash } from "node:crypto";
import type { KubeConfig, RequestContext } from "@kubernetes/client-node";
import { fetch } from "undici";
import { PromshardError } from "../errors.ts";
import { type HttpClient, httpClientFor } from "../http/client.ts";
import { httpClientConfig } from "../prom/http-client.ts";
import { clientNode } from "./client-node.ts";

export interface KubeList<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

/** What a kubernetes_sd_configs entry says about reaching the API server. */
export interface ApiAccess {
  /** `api_server`, when set. */
  readonly apiServer?: string | undefined;
  /** `kubeconfig_file`, when set (already resolved against the config's directory). */
  readonly kubeconfigFile?: string | undefined;
  /** The entry's inline HTTP client fields (tls_config, bearer_token[_file], authorization, basic_auth). */
  readonly httpClient?: Readonly<Record<string, unknown>>;
}

/**
 * A connection to one API server: a client-node KubeConfig (which the informers' watches use)
 * plus a raw JSON list, so that lists and watch events both hand over the API's own JSON.
 */
export interface KubeClient {
  /** Identifies the server and credentials: informers are shared per key. */
  readonly key: string;
  readonly config: KubeConfig;
  readonly server: string;
  /** GET a list (`/api/v1/pods?labelSelector=…`), returning the API's JSON. */
  list<T>(
    path: string,
    query?: Record<string, string>,
  ): Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
}

let apiServerConfig: (new (server: string, client: HttpClient) => KubeConfig) | undefined;

/**
 * A KubeConfig for one api_server whose requests (lists and client-node's watches) carry the
 * client built from the SD entry's HTTP client config (src/http/client.ts). Defined at the
 * first use: its base class is client-node's, loaded then (./client-node.ts).
 */
function ApiServerConfig(): new (server: string, client: HttpClient) => KubeConfig {
  apiServerConfig ??= class extends clientNode().KubeConfig {
    readonly #client: HttpClient;
    constructor(server: string, client: HttpClient) {
      super();
      this.#client = client;
      this.loadFromClusterAndUser({ name: "sd", server, skipTLSVerify: false }, { name: "sd" });
    }

    override async applySecurityAuthentication(context: RequestContext): Promise<void> {
      for (const [name, value] of Object.entries(this.#client.headers)) context.setHeaderParam(name, value);
      context.setDispatcher(this.#client.dispatcher);
    }
  };
  return apiServerConfig;
}

/**
 * Builds the client the way Prometheus does for an SD entry: `api_server` with the entry's
 * TLS and auth settings; else `kubeconfig_file`; else `fallbackKubeconfig` (the CLI's
 * --kubeconfig); else the in-cluster service account.
 */
export function kubeClientFor(
  access: ApiAccess,
  opts: { directory?: string; fallbackKubeconfig?: string } = {},
): KubeClient {
  const { HttpMethod, KubeConfig, RequestContext } = clientNode();
  let kc = new KubeConfig();
  /** Who the client is (user or auth headers and TLS): part of the key. */
  let identity: unknown;
  try {
    if (access.apiServer !== undefined && access.apiServer !== "") {
      const http = httpClientFor(httpClientConfig(access.httpClient ?? {}), opts.directory ?? ".");
      kc = new (ApiServerConfig())(access.apiServer.replace(/\/+$/, ""), http);
      identity = { headers: http.headers, tls: http.tls };
    } else if (access.kubeconfigFile) {
      kc.loadFromFile(access.kubeconfigFile);
    } else if (opts.fallbackKubeconfig) {
      kc.loadFromFile(opts.fallbackKubeconfig);
    } else {
      kc.loadFromCluster();
    }
    identity ??= kc.getCurrentUser();
  } catch (err) {
    throw new PromshardError(
      "discovery_failed",
      `cannot set up the Kubernetes client: ${(err as Error).message}; check api_server, kubeconfig_file and the TLS/auth files`,
      { cause: err },
    );
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new PromshardError("discovery_failed", "the kubeconfig has no current cluster; set current-context");
  }
  const key = createHash("sha256")
    .update(JSON.stringify({ cluster, user: identity }))
    .digest("hex")
    .slice(0, 16);
  return {
    key,
    config: kc,
    server: cluster.server,
    async list<T>(path: string, query: Record<string, string> = {}): Promise<KubeList<T>> {
      const url = new URL(cluster.server + path);
      for (const [k, v] of Object.entries(query)) if (v !== "") url.searchParams.set(k, v);
      const ctx = new RequestContext(url.toString(), HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      const res = await fetch(url, { headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher() });
      const text = await res.text();
      if (!res.ok) {
        let reason = text.slice(0, 300);
        try {
          reason = JSON.parse(text).message ?? reason;
        } catch {
          // not JSON: keep the text
        }
        const hint = res.status === 403 ? "; grant its ServiceAccount list and watch on it (RBAC)" : "";
        // statusCode: client-node's ListWatch relists from scratch on 410 Gone.
        throw Object.assign(new PromshardError("kube_request_failed", `GET ${path}: ${res.status} ${reason}${hint}`), {
          statusCode: res.status,
        });
      }
      return JSON.parse(text) as KubeList<T>;
    },
  };
}
