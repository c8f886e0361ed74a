/**
 * Prometheus's one HTTP client configuration (prometheus/common's config.HTTPClientConfig),
 * written inline in scrape configs and SD entries: its fields, its strict decoding and its
 * Validate, with Prometheus's messages under the path of the field concerned; and the typed
 * view the client builder (src/http/client.ts) reads. Pure: no file is read here.
 */
import { goQuote } from "./go-quote.ts";
import { goUrlParseError } from "./go-url.ts";
import { isObj, type Obj, type StrictReader, yamlBool, yamlKind } from "./go-yaml.ts";

const PROXY_KEYS = ["proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header"];
/** The fields HTTPClientConfig adds inline to a scrape config or an SD entry (Prometheus 3.x). */
export const HTTP_CLIENT_KEYS: readonly string[] = [
  "basic_auth",
  "authorization",
  "oauth2",
  "bearer_token",
  "bearer_token_file",
  "tls_config",
  "follow_redirects",
  "enable_http2",
  ...PROXY_KEYS,
  "http_headers",
];
/** The same for Prometheus 2.x, which has no no_proxy, proxy_from_environment or http_headers. */
export const HTTP_CLIENT_KEYS_V2: readonly string[] = HTTP_CLIENT_KEYS.filter(
  (k) => !["no_proxy", "proxy_from_environment", "http_headers"].includes(k),
);
const BASIC_AUTH_KEYS = ["username", "username_file", "username_ref", "password", "password_file", "password_ref"];
const AUTHORIZATION_KEYS = ["type", "credentials", "credentials_file", "credentials_ref"];
export const TLS_KEYS = [
  "ca",
  "cert",
  "key",
  "ca_file",
  "cert_file",
  "key_file",
  "ca_ref",
  "cert_ref",
  "key_ref",
  "server_name",
  "insecure_skip_verify",
  "min_version",
  "max_version",
];
const OAUTH2_KEYS = [
  "client_id",
  "client_secret",
  "client_secret_file",
  "client_secret_ref",
  "client_certificate_key_id",
  "client_certificate_key",
  "client_certificate_key_file",
  "client_certificate_key_ref",
  "grant_type",
  "signature_algorithm",
  "iss",
  "audience",
  "claims",
  "scopes",
  "token_url",
  "endpoint_params",
  "tls_config",
  ...PROXY_KEYS,
];
/** The OAuth2 fields that hold one string (a config.Secret, a file name or a plain string). */
const OAUTH2_STRING_KEYS = OAUTH2_KEYS.filter(
  (k) => !["claims", "scopes", "endpoint_params", "tls_config", ...PROXY_KEYS].includes(k),
);
const HEADER_KEYS = ["values", "secrets", "files"];
const TLS_VERSIONS = new Set(["TLS10", "TLS11", "TLS12", "TLS13"]);
const RESERVED_HEADERS = new Set([
  "Authorization",
  "Host",
  "Content-Encoding",
  "Content-Length",
  "Content-Type",
  "User-Agent",
  "Connection",
  "Keep-Alive",
  "Proxy-Authenticate",
  "Proxy-Authorization",
  "Www-Authenticate",
  "Accept-Encoding",
  "X-Prometheus-Remote-Write-Version",
  "X-Prometheus-Remote-Read-Version",
  "X-Prometheus-Scrape-Timeout-Seconds",
  "X-Amz-Date",
  "X-Amz-Security-Token",
  "X-Amz-Content-Sha256",
]);
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** The decoded fields HTTPClientConfig.Validate looks at. */
export interface HttpFields {
  basicAuth: Obj | undefined;
  authorization: Obj | undefined;
  oauth2: Obj | undefined;
  bearerToken: string;
  bearerTokenFile: string;
  proxyUrl: string | undefined;
  noProxy: string;
  proxyFromEnvironment: boolean;
  proxyConnectHeader: Obj | undefined;
  httpHeaders: Obj | undefined;
  /** Differs from config.DefaultHTTPClientConfig (reflect.DeepEqual). */
  custom: boolean;
}

function decodeTls(tls: Obj | undefined, path: string, r: StrictReader): boolean {
  if (!tls) return false;
  r.known(tls, TLS_KEYS, "config.plain", path);
  let nonZero = false;
  const str = (k: string) => {
    const v = r.string(tls, k, path) ?? "";
    if (v !== "") nonZero = true;
    return v;
  };
  const ca = [str("ca"), str("ca_file"), str("ca_ref")];
  const cert = [str("cert"), str("cert_file"), str("cert_ref")];
  const key = [str("key"), str("key_file"), str("key_ref")];
  str("server_name");
  if (r.bool(tls, "insecure_skip_verify", path)) nonZero = true;
  for (const k of ["min_version", "max_version"]) {
    const v = r.string(tls, k, path);
    if (v === undefined) continue;
    if (TLS_VERSIONS.has(v)) nonZero = true;
    else r.add(`${path}.${k}`, "unknown TLS version; use TLS10, TLS11, TLS12 or TLS13");
  }
  const count = (xs: string[]) => xs.filter((x) => x !== "").length;
  if (count(ca) > 1) r.add(path, "at most one of ca, ca_file & ca_ref must be configured");
  if (count(cert) > 1) r.add(path, "at most one of cert, cert_file & cert_ref must be configured");
  if (count(key) > 1) r.add(path, "at most one of key and key_file must be configured");
  if (count(cert) > 0 && count(key) === 0) {
    r.add(path, "exactly one of key or key_file must be configured when a client certificate is configured");
  } else if (count(key) > 0 && count(cert) === 0) {
    r.add(path, "exactly one of cert or cert_file must be configured when a client key is configured");
  }
  return nonZero;
}

function decodeProxy(obj: Obj, path: string, r: StrictReader) {
  let proxyUrl = r.string(obj, "proxy_url", path);
  if (proxyUrl !== undefined) {
    const err = goUrlParseError(proxyUrl);
    if (err !== undefined) {
      r.add(`${path}.proxy_url`, err);
      proxyUrl = undefined;
    }
  }
  const noProxy = r.string(obj, "no_proxy", path) ?? "";
  const proxyFromEnvironment = r.bool(obj, "proxy_from_environment", path) ?? false;
  const proxyConnectHeader = r.map(obj, "proxy_connect_header", path, "config.ProxyHeader");
  return { proxyUrl, noProxy, proxyFromEnvironment, proxyConnectHeader };
}

/** ProxyConfig.Validate. */
function validateProxy(p: ReturnType<typeof decodeProxy>, path: string, r: StrictReader): void {
  const hasUrl = p.proxyUrl !== undefined && p.proxyUrl !== "";
  if (p.proxyConnectHeader && Object.keys(p.proxyConnectHeader).length > 0 && !p.proxyFromEnvironment && !hasUrl) {
    r.add(path, "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured");
  }
  if (p.proxyFromEnvironment && hasUrl) {
    r.add(path, "if proxy_from_environment is configured, proxy_url must not be configured");
  }
  if (p.proxyFromEnvironment && p.noProxy !== "") {
    r.add(path, "if proxy_from_environment is configured, no_proxy must not be configured");
  }
  if (p.proxyUrl === undefined && p.noProxy !== "") {
    r.add(path, "if no_proxy is configured, proxy_url must also be configured");
  }
}

/** Decodes the inline HTTP client fields of `raw` as yaml.UnmarshalStrict does, recording type errors. */
export function decodeHttpClient(raw: Obj, path: string, r: StrictReader): HttpFields {
  let custom = false;
  const basicAuth = r.map(raw, "basic_auth", path, "config.BasicAuth");
  if (basicAuth) {
    r.known(basicAuth, BASIC_AUTH_KEYS, "config.plain", `${path}.basic_auth`);
    for (const k of BASIC_AUTH_KEYS) r.string(basicAuth, k, `${path}.basic_auth`);
  }
  const authorization = r.map(raw, "authorization", path, "config.Authorization");
  if (authorization) {
    r.known(authorization, AUTHORIZATION_KEYS, "config.Authorization", `${path}.authorization`);
    for (const k of AUTHORIZATION_KEYS) r.string(authorization, k, `${path}.authorization`);
  }
  const oauth2 = r.map(raw, "oauth2", path, "config.OAuth2");
  if (oauth2) {
    const at = `${path}.oauth2`;
    r.known(oauth2, OAUTH2_KEYS, "config.plain", at);
    for (const k of OAUTH2_STRING_KEYS) r.string(oauth2, k, at);
    r.strings(oauth2, "scopes", at);
    r.map(oauth2, "endpoint_params", at, "map[string]string");
    r.map(oauth2, "claims", at, "map[string]interface {}");
    decodeTls(r.map(oauth2, "tls_config", at, "config.TLSConfig"), `${at}.tls_config`, r);
    validateProxy(decodeProxy(oauth2, at, r), at, r);
  }
  const bearerToken = r.string(raw, "bearer_token", path) ?? "";
  const bearerTokenFile = r.string(raw, "bearer_token_file", path) ?? "";
  if (decodeTls(r.map(raw, "tls_config", path, "config.TLSConfig"), `${path}.tls_config`, r)) custom = true;
  if (r.bool(raw, "follow_redirects", path) === false) custom = true;
  if (r.bool(raw, "enable_http2", path) === false) custom = true;
  const proxy = decodeProxy(raw, path, r);
  const httpHeaders = r.map(raw, "http_headers", path, "config.Headers");
  if (httpHeaders) {
    for (const [name, header] of Object.entries(httpHeaders)) {
      const at = `${path}.http_headers.${name}`;
      if (header === null || header === undefined) continue;
      if (!isObj(header)) {
        r.add(
          at,
          `cannot unmarshal ${yamlKind(header)} into config.Header; write {values: [...]}, {secrets: [...]} or {files: [...]}`,
        );
        continue;
      }
      r.known(header, HEADER_KEYS, "config.Header", at);
      for (const k of HEADER_KEYS) r.strings(header, k, at);
    }
  }
  if (basicAuth || authorization || oauth2 || bearerToken !== "" || bearerTokenFile !== "") custom = true;
  if (proxy.proxyUrl !== undefined || proxy.noProxy !== "" || proxy.proxyFromEnvironment) custom = true;
  if (proxy.proxyConnectHeader || httpHeaders) custom = true;
  return { basicAuth, authorization, oauth2, bearerToken, bearerTokenFile, ...proxy, httpHeaders, custom };
}

/** HTTPClientConfig.Validate, in its order. */
export function validateHttpClient(h: HttpFields, path: string, r: StrictReader): void {
  const s = (obj: Obj | undefined, k: string) => {
    const v = obj?.[k];
    return v === undefined || v === null ? "" : String(v);
  };
  const count = (obj: Obj | undefined, keys: string[]) => keys.filter((k) => s(obj, k) !== "").length;
  const bearer = h.bearerToken !== "" || h.bearerTokenFile !== "";
  if (h.bearerToken !== "" && h.bearerTokenFile !== "") {
    r.add(`${path}.bearer_token_file`, "at most one of bearer_token & bearer_token_file must be configured");
  }
  if ((h.basicAuth || h.oauth2) && bearer) {
    r.add(path, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured");
  }
  if (h.basicAuth && count(h.basicAuth, ["username", "username_file", "username_ref"]) > 1) {
    r.add(`${path}.basic_auth`, "at most one of basic_auth username, username_file & username_ref must be configured");
  }
  if (h.basicAuth && count(h.basicAuth, ["password", "password_file", "password_ref"]) > 1) {
    r.add(`${path}.basic_auth`, "at most one of basic_auth password, password_file & password_ref must be configured");
  }
  if (h.authorization) {
    const at = `${path}.authorization`;
    if (bearer) r.add(at, "authorization is not compatible with bearer_token & bearer_token_file");
    if (count(h.authorization, ["credentials", "credentials_file", "credentials_ref"]) > 1) {
      r.add(at, "at most one of authorization credentials & credentials_file must be configured");
    }
    if (s(h.authorization, "type").trim().toLowerCase() === "basic") {
      r.add(`${at}.type`, 'authorization type cannot be set to "basic", use "basic_auth" instead');
    }
    if (h.basicAuth || h.oauth2) r.add(path, "at most one of basic_auth, oauth2 & authorization must be configured");
  }
  if (h.oauth2) {
    const at = `${path}.oauth2`;
    if (h.basicAuth) r.add(path, "at most one of basic_auth, oauth2 & authorization must be configured");
    if (s(h.oauth2, "client_id") === "") r.add(`${at}.client_id`, "oauth2 client_id must be configured");
    if (s(h.oauth2, "token_url") === "") r.add(`${at}.token_url`, "oauth2 token_url must be configured");
    if (s(h.oauth2, "grant_type") === JWT_BEARER) {
      if (
        count(h.oauth2, ["client_certificate_key", "client_certificate_key_file", "client_certificate_key_ref"]) > 1
      ) {
        r.add(
          at,
          "at most one of oauth2 client_certificate_key, client_certificate_key_file & client_certificate_key_ref must be configured using grant-type=urn:ietf:params:oauth:grant-type:jwt-bearer",
        );
      }
      const alg = s(h.oauth2, "signature_algorithm");
      if (alg !== "" && !["RS256", "RS384", "RS512"].includes(alg)) {
        r.add(`${at}.signature_algorithm`, "valid signature algorithms are RS256, RS384 and RS512");
      }
    } else if (count(h.oauth2, ["client_secret", "client_secret_file", "client_secret_ref"]) > 1) {
      r.add(
        at,
        "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured using grant-type=client_credentials",
      );
    }
  }
  validateProxy(h, path, r);
  for (const name of Object.keys(h.httpHeaders ?? {})) {
    const canonical = canonicalHeaderKey(name);
    if (RESERVED_HEADERS.has(canonical)) {
      r.add(`${path}.http_headers.${name}`, `setting header ${goQuote(canonical)} is not allowed`);
    }
  }
}

/** Headers no config may set (prometheus/common's reservedHeaders), by any spelling. */
export function isReservedHeader(name: string): boolean {
  return RESERVED_HEADERS.has(canonicalHeaderKey(name));
}

/** net/http.CanonicalHeaderKey for valid token names; others are returned unchanged. */
function canonicalHeaderKey(s: string): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(s)) return s;
  return s.toLowerCase().replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());
}

/** The settings a client is built from; files are named, not read. Empty strings are unset. */
export interface HttpClientConfig {
  readonly basicAuth:
    | {
        readonly username: string;
        readonly usernameFile: string;
        readonly password: string;
        readonly passwordFile: string;
      }
    | undefined;
  readonly authorization:
    | { readonly type: string; readonly credentials: string; readonly credentialsFile: string }
    | undefined;
  readonly bearerToken: string;
  readonly bearerTokenFile: string;
  readonly tls: {
    readonly ca: string;
    readonly caFile: string;
    readonly cert: string;
    readonly certFile: string;
    readonly key: string;
    readonly keyFile: string;
    readonly serverName: string;
    readonly insecureSkipVerify: boolean;
  };
  readonly followRedirects: boolean;
}

/** The typed view of inline HTTP client fields already checked by decodeHttpClient/validateHttpClient. */
export function httpClientConfig(raw: Readonly<Obj>): HttpClientConfig {
  const obj = (v: unknown): Obj => (isObj(v) ? v : {});
  const str = (v: unknown): string => (typeof v === "string" ? v : "");
  const basic = isObj(raw.basic_auth) ? raw.basic_auth : undefined;
  const auth = isObj(raw.authorization) ? raw.authorization : undefined;
  const tls = obj(raw.tls_config);
  return {
    basicAuth: basic && {
      username: str(basic.username),
      usernameFile: str(basic.username_file),
      password: str(basic.password),
      passwordFile: str(basic.password_file),
    },
    authorization: auth && {
      type: str(auth.type),
      credentials: str(auth.credentials),
      credentialsFile: str(auth.credentials_file),
    },
    bearerToken: str(raw.bearer_token),
    bearerTokenFile: str(raw.bearer_token_file),
    tls: {
      ca: str(tls.ca),
      caFile: str(tls.ca_file),
      cert: str(tls.cert),
      certFile: str(tls.cert_file),
      key: str(tls.key),
      keyFile: str(tls.key_file),
      serverName: str(tls.server_name),
      insecureSkipVerify: yamlBool(tls.insecure_skip_verify) === true,
    },
    followRedirects: yamlBool(raw.follow_redirects) !== false,
  };
}
