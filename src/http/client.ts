/**
 * The one place an HTTP client is built from Prometheus's HTTP client config
 * (src/prom/http-client.ts): the explorer's scrapes and the Kubernetes API client both use it.
 * Files it names (passwords, tokens, CA, client certificate and key) are read here, relative
 * to the config's directory, once per build.
 *
 * What it sends, as Prometheus's round trippers do: `Authorization` from basic_auth (when a
 * username is given), else bearer_token[_file], else authorization (`<type or Bearer>
 * <credentials>`); TLS from tls_config. Not applied yet: oauth2, proxies, http_headers,
 * enable_http2, follow_redirects (undici's Agent follows no redirects).
 */
import { readFileSync } from "node:fs";
import { Agent } from "undici";
import { joinDir } from "../prom/config-fields.ts";
import type { HttpClientConfig } from "../prom/http-client.ts";

export interface HttpClient {
  readonly dispatcher: Agent;
  /** The headers the config adds to every request (Authorization). */
  readonly headers: Readonly<Record<string, string>>;
  /** The TLS settings the dispatcher connects with (for telling clients apart). */
  readonly tls: Readonly<Record<string, string | boolean>>;
}

/** Builds the client a config describes; throws the file system's error when a named file cannot be read. */
export function httpClientFor(config: HttpClientConfig, directory: string): HttpClient {
  const read = (file: string) => readFileSync(joinDir(directory, file), "utf8");
  const secret = (value: string, file: string) => value || (file ? read(file).trim() : "");
  const headers: Record<string, string> = {};
  const { basicAuth: basic, authorization: auth } = config;
  if (basic && (basic.username || basic.usernameFile)) {
    const user = secret(basic.username, basic.usernameFile);
    const pass = secret(basic.password, basic.passwordFile);
    headers.Authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
  } else if (config.bearerToken || config.bearerTokenFile) {
    headers.Authorization = `Bearer ${secret(config.bearerToken, config.bearerTokenFile)}`;
  } else if (auth && (auth.type || auth.credentials || auth.credentialsFile)) {
    headers.Authorization = `${auth.type || "Bearer"} ${secret(auth.credentials, auth.credentialsFile)}`;
  }
  const t = config.tls;
  const tls: Record<string, string | boolean> = {
    rejectUnauthorized: !t.insecureSkipVerify,
    ...(t.caFile ? { ca: read(t.caFile) } : t.ca ? { ca: t.ca } : {}),
    ...(t.certFile ? { cert: read(t.certFile) } : t.cert ? { cert: t.cert } : {}),
    ...(t.keyFile ? { key: read(t.keyFile) } : t.key ? { key: t.key } : {}),
    ...(t.serverName ? { servername: t.serverName } : {}),
  };
  return { dispatcher: new Agent({ connect: tls }), headers, tls };
}
