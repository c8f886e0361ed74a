/**
 * A `kubernetes_sd_configs` entry checked as Prometheus 3.16 loads it: strict YAML fields,
 * its Role type, the inline HTTP client config (prometheus/common's Validate), then
 * SDConfig.UnmarshalYAML's own rules. Messages are Prometheus's, each under the path of the
 * field it concerns; unlike Prometheus, which stops at the first, every problem is listed.
 */
import { PromshardError } from "../../errors.ts";
import type { AttachMetadata } from "./meta.ts";
import { goQuote, parseFieldSelector, parseLabelSelector } from "./selectors.ts";

export type KubernetesRole = "pod" | "service" | "endpoints" | "endpointslice" | "node" | "ingress";

export const KUBERNETES_ROLES: readonly KubernetesRole[] = [
  "pod",
  "service",
  "endpoints",
  "endpointslice",
  "node",
  "ingress",
];

export interface KubernetesSelector {
  readonly role: KubernetesRole;
  readonly label: string;
  readonly field: string;
}

export interface KubernetesSdConfig {
  readonly role: KubernetesRole;
  /** As written; `""` is a set (empty) URL to Prometheus, undefined is unset (in-cluster). */
  readonly apiServer: string | undefined;
  /** Empty when unset. */
  readonly kubeconfigFile: string;
  readonly namespaces: { readonly ownNamespace: boolean; readonly names: readonly string[] };
  readonly selectors: readonly KubernetesSelector[];
  readonly attachMetadata: AttachMetadata;
  /** The inline HTTP client fields as written (basic_auth, tls_config …), for the client layer. */
  readonly httpClient: Readonly<Record<string, unknown>>;
  /** Whether the HTTP client fields differ from Prometheus's defaults. */
  readonly customHttpClient: boolean;
}

export interface KubernetesSdConfigResult {
  /** Undefined when there are errors. */
  readonly config: KubernetesSdConfig | undefined;
  readonly errors: readonly PromshardError[];
}

/** Which selector roles each role accepts (Prometheus's allowedSelectors, in its order). */
export const ALLOWED_SELECTORS: Readonly<Record<KubernetesRole, readonly KubernetesRole[]>> = {
  pod: ["pod", "node"],
  service: ["service"],
  endpointslice: ["pod", "service", "endpointslice"],
  endpoints: ["pod", "service", "endpoints"],
  node: ["node"],
  ingress: ["ingress"],
};

const SD_KEYS = ["api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata"];
const PROXY_KEYS = ["proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header"];
const HTTP_KEYS = [
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
const BASIC_AUTH_KEYS = ["username", "username_file", "username_ref", "password", "password_file", "password_ref"];
const AUTHORIZATION_KEYS = ["type", "credentials", "credentials_file", "credentials_ref"];
const TLS_KEYS = [
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

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const TRUE_WORDS = new Set(["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"]);
const FALSE_WORDS = new Set(["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"]);

function yamlKind(v: unknown): string {
  if (Array.isArray(v)) return "!!seq";
  if (isObj(v)) return "!!map";
  if (typeof v === "boolean") return "!!bool";
  if (typeof v === "number") return Number.isInteger(v) ? "!!int" : "!!float";
  return "!!str";
}

/** A reader of one YAML mapping that records Go-yaml-like type errors under field paths. */
class Reader {
  readonly errors: PromshardError[];
  constructor(errors: PromshardError[]) {
    this.errors = errors;
  }

  add(path: string, message: string): void {
    this.errors.push(new PromshardError("config_invalid", message, { path }));
  }

  /** Strict unmarshalling: unknown fields are errors, named after the Go type. */
  known(obj: Obj, keys: readonly string[], goType: string, path: string): void {
    for (const k of Object.keys(obj)) {
      if (!keys.includes(k)) this.add(`${path}.${k}`, `field ${k} not found in type ${goType}`);
    }
  }

  /** A mapping field: undefined when absent or null. */
  map(obj: Obj, key: string, path: string, into: string): Obj | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (isObj(v)) return v;
    this.add(`${path}.${key}`, `cannot unmarshal ${yamlKind(v)} into ${into}`);
    return undefined;
  }

  string(obj: Obj, key: string, path: string): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    this.add(`${path}.${key}`, `cannot unmarshal ${yamlKind(v)} into string`);
    return undefined;
  }

  bool(obj: Obj, key: string, path: string): boolean | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === "boolean") return v;
    if (typeof v === "string" && TRUE_WORDS.has(v)) return true;
    if (typeof v === "string" && FALSE_WORDS.has(v)) return false;
    this.add(`${path}.${key}`, `cannot unmarshal ${yamlKind(v)} \`${String(v)}\` into bool`);
    return undefined;
  }

  strings(obj: Obj, key: string, path: string): string[] | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.add(`${path}.${key}`, `cannot unmarshal ${yamlKind(v)}${isObj(v) ? "" : ` \`${String(v)}\``} into []string`);
      return undefined;
    }
    const out: string[] = [];
    v.forEach((x, i) => {
      if (x === null || x === undefined) out.push("");
      else if (typeof x === "string" || typeof x === "number" || typeof x === "boolean") out.push(String(x));
      else this.add(`${path}.${key}[${i}]`, `cannot unmarshal ${yamlKind(x)} into string`);
    });
    return out;
  }

  /** Role.UnmarshalYAML. */
  role(obj: Obj, key: string, path: string): string | undefined {
    const s = this.string(obj, key, path);
    if (s === undefined) return undefined;
    if (!(KUBERNETES_ROLES as readonly string[]).includes(s)) {
      this.add(`${path}.${key}`, `unknown Kubernetes SD role ${goQuote(s)}`);
    }
    return s;
  }
}

/**
 * Checks one `kubernetes_sd_configs` entry (already parsed from YAML) as Prometheus 3.16
 * does, and returns its typed form. `path` names the entry in messages.
 */
export function parseKubernetesSdConfig(raw: unknown, path = "kubernetes_sd_configs[0]"): KubernetesSdConfigResult {
  const errors: PromshardError[] = [];
  const r = new Reader(errors);
  if (!isObj(raw)) {
    r.add(
      path,
      `cannot unmarshal ${raw === null || raw === undefined ? "null" : yamlKind(raw)} into kubernetes.SDConfig`,
    );
    return { config: undefined, errors };
  }
  r.known(raw, [...SD_KEYS, ...HTTP_KEYS], "kubernetes.plain", path);

  // Decoding, as yaml.UnmarshalStrict does it (type errors, nested Unmarshalers).
  let apiServer = r.string(raw, "api_server", path);
  if (apiServer !== undefined) {
    const err = goUrlParseError(apiServer);
    if (err !== undefined) {
      r.add(`${path}.api_server`, err);
      apiServer = undefined;
    }
  }
  const role = r.role(raw, "role", path);
  const kubeconfigFile = r.string(raw, "kubeconfig_file", path) ?? "";

  const ns = r.map(raw, "namespaces", path, "kubernetes.plain") ?? {};
  r.known(ns, ["own_namespace", "names"], "kubernetes.plain", `${path}.namespaces`);
  const ownNamespace = r.bool(ns, "own_namespace", `${path}.namespaces`) ?? false;
  const names = r.strings(ns, "names", `${path}.namespaces`) ?? [];

  const selectors: { role: string | undefined; roleOk: boolean; label: string; field: string; index: number }[] = [];
  const rawSelectors = raw.selectors;
  if (rawSelectors !== undefined && rawSelectors !== null) {
    if (!Array.isArray(rawSelectors)) {
      r.add(`${path}.selectors`, `cannot unmarshal ${yamlKind(rawSelectors)} into []kubernetes.SelectorConfig`);
    } else {
      rawSelectors.forEach((s, i) => {
        const at = `${path}.selectors[${i}]`;
        if (s === null || s === undefined) {
          selectors.push({ role: undefined, roleOk: true, label: "", field: "", index: i });
          return;
        }
        if (!isObj(s)) {
          r.add(at, `cannot unmarshal ${yamlKind(s)} into kubernetes.SelectorConfig`);
          return;
        }
        r.known(s, ["role", "label", "field"], "kubernetes.SelectorConfig", at);
        const before = errors.length;
        const selectorRole = r.role(s, "role", at);
        selectors.push({
          role: selectorRole,
          roleOk: errors.length === before,
          label: r.string(s, "label", at) ?? "",
          field: r.string(s, "field", at) ?? "",
          index: i,
        });
      });
    }
  }

  const am = r.map(raw, "attach_metadata", path, "kubernetes.AttachMetadataConfig") ?? {};
  r.known(
    am,
    ["node", "namespace", "deployment", "job", "cronjob"],
    "kubernetes.AttachMetadataConfig",
    `${path}.attach_metadata`,
  );
  const attach = (k: string) => r.bool(am, k, `${path}.attach_metadata`) ?? false;
  const attachMetadata: AttachMetadata = {
    node: attach("node"),
    namespace: attach("namespace"),
    deployment: attach("deployment"),
    job: attach("job"),
    cronjob: attach("cronjob"),
  };

  const http = decodeHttpClient(raw, path, r);
  const decodeErrors = errors.length;

  // SDConfig.UnmarshalYAML. (Prometheus skips it for an empty document; an entry is never one.)
  if (role === undefined || role === "") {
    if (!errors.some((e) => e.path === `${path}.role`)) {
      r.add(`${path}.role`, "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)");
    }
  }
  validateHttpClient(http, path, r);
  const custom = http.custom;
  if (apiServer !== undefined && kubeconfigFile !== "") {
    r.add(`${path}.kubeconfig_file`, "cannot use 'kubeconfig_file' and 'api_server' simultaneously");
  }
  if (kubeconfigFile !== "" && custom) {
    r.add(`${path}.kubeconfig_file`, "cannot use a custom HTTP client configuration together with 'kubeconfig_file'");
  }
  if (apiServer === undefined && custom && !errors.some((e) => e.path === `${path}.api_server`)) {
    r.add(
      `${path}.api_server`,
      "to use custom HTTP client configuration please provide the 'api_server' URL explicitly",
    );
  }
  if (apiServer !== undefined && ownNamespace) {
    r.add(`${path}.namespaces.own_namespace`, "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously");
  }
  if (kubeconfigFile !== "" && ownNamespace) {
    r.add(
      `${path}.namespaces.own_namespace`,
      "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
    );
  }

  const validRole = (KUBERNETES_ROLES as readonly string[]).includes(role ?? "") ? (role as KubernetesRole) : undefined;
  const seen = new Set<string>();
  for (const s of selectors) {
    const at = `${path}.selectors[${s.index}]`;
    const sr = s.role ?? "";
    if (!s.roleOk) continue;
    if (seen.has(sr)) {
      r.add(`${at}.role`, `duplicated selector role: ${sr}`);
      continue;
    }
    seen.add(sr);
    if (!validRole) continue;
    const allowed = ALLOWED_SELECTORS[validRole];
    if (!(allowed as readonly string[]).includes(sr)) {
      r.add(`${at}.role`, `${validRole} role supports only ${allowed.join(", ")} selectors`);
      continue;
    }
    const field = parseFieldSelector(s.field);
    if (!field.ok) r.add(`${at}.field`, field.error);
    const label = parseLabelSelector(s.label);
    if (!label.ok) r.add(`${at}.label`, label.error);
  }

  if (errors.length > 0 || !validRole || decodeErrors > 0) return { config: undefined, errors };
  return {
    config: {
      role: validRole,
      apiServer,
      kubeconfigFile,
      namespaces: { ownNamespace, names },
      selectors: selectors.map((s) => ({ role: s.role as KubernetesRole, label: s.label, field: s.field })),
      attachMetadata,
      httpClient: Object.fromEntries(HTTP_KEYS.filter((k) => raw[k] !== undefined).map((k) => [k, raw[k]])),
      customHttpClient: custom,
    },
    errors,
  };
}

/** The label and field selector the config sets for one resource (mapSelector); empty strings when none. */
export function selectorFor(config: KubernetesSdConfig, resource: KubernetesRole): { label: string; field: string } {
  const s = config.selectors.find((x) => x.role === resource);
  return { label: s?.label ?? "", field: s?.field ?? "" };
}

/**
 * The namespaces Prometheus watches (getNamespaces): `[""]` (all) when none are named and
 * own_namespace is off; the own namespace (read in-cluster from the service account) is
 * appended when on and known.
 */
export function namespacesToWatch(config: KubernetesSdConfig, ownNamespace?: string): string[] {
  const { names, ownNamespace: includeOwn } = config.namespaces;
  if (names.length === 0 && !includeOwn) return [""];
  if (includeOwn && ownNamespace) return [...names, ownNamespace];
  return [...names];
}

// ---------------------------------------------------------------------------------------
// The inline HTTP client config

interface HttpFields {
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

function decodeTls(tls: Obj | undefined, path: string, r: Reader): boolean {
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
    else r.add(`${path}.${k}`, `unknown TLS version: ${v}`);
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

function decodeProxy(obj: Obj, path: string, r: Reader) {
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
function validateProxy(p: ReturnType<typeof decodeProxy>, path: string, r: Reader): void {
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

function decodeHttpClient(raw: Obj, path: string, r: Reader): HttpFields {
  let custom = false;
  const basicAuth = r.map(raw, "basic_auth", path, "config.BasicAuth");
  if (basicAuth) r.known(basicAuth, BASIC_AUTH_KEYS, "config.plain", `${path}.basic_auth`);
  const authorization = r.map(raw, "authorization", path, "config.Authorization");
  if (authorization) r.known(authorization, AUTHORIZATION_KEYS, "config.Authorization", `${path}.authorization`);
  const oauth2 = r.map(raw, "oauth2", path, "config.OAuth2");
  if (oauth2) {
    const at = `${path}.oauth2`;
    r.known(oauth2, OAUTH2_KEYS, "config.plain", at);
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
        r.add(at, `cannot unmarshal ${yamlKind(header)}${` \`${String(header)}\``} into config.Header`);
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
function validateHttpClient(h: HttpFields, path: string, r: Reader): void {
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

/** net/http.CanonicalHeaderKey for valid token names; others are returned unchanged. */
function canonicalHeaderKey(s: string): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(s)) return s;
  return s.toLowerCase().replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());
}

// ---------------------------------------------------------------------------------------
// net/url.Parse failures (Go 1.26, which Prometheus 3.16 is built with)

const HEX = /^[0-9A-Fa-f]{2}$/;
/** ASCII characters net/url accepts unescaped in a host. */
const HOST_CHARS = /^[A-Za-z0-9!"$&'()*+,\-.:;<=>[\]_~]$/;

/** url.unescape's checks: malformed %-escapes, and in hosts stray characters and escaped ASCII. */
function unescapeError(s: string, host = false): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "%") {
      const hex = s.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return `invalid URL escape ${goQuote(s.slice(i, i + 3))}`;
      if (host && Number.parseInt(hex[0]!, 16) < 8 && hex !== "25") return `invalid URL escape ${goQuote(`%${hex}`)}`;
      i += 2;
    } else if (host && c.charCodeAt(0) < 0x80 && !HOST_CHARS.test(c)) {
      return `invalid character ${goQuote(c)} in host name`;
    }
  }
  return undefined;
}

/** A zone identifier's escapes must be well-formed and stand for bytes a host may hold (or a space). */
function zoneError(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "%") continue;
    const hex = s.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return `invalid URL escape ${goQuote(s.slice(i, i + 3))}`;
    const v = String.fromCharCode(Number.parseInt(hex, 16));
    if (hex !== "25" && v !== " " && v.charCodeAt(0) < 0x80 && !HOST_CHARS.test(v)) {
      return `invalid URL escape ${goQuote(`%${hex}`)}`;
    }
    i += 2;
  }
  return undefined;
}

const validOptionalPort = (port: string) => port === "" || /^:[0-9]*$/.test(port);

/** Why Go's url.Parse rejects the string (as `parse "<url>": <reason>`), or undefined. */
export function goUrlParseError(raw: string): string | undefined {
  const hash = raw.indexOf("#");
  const main = hash >= 0 ? raw.slice(0, hash) : raw;
  const err = parseError(main);
  // A failure before the fragment quotes the URL without it; a bad fragment, the whole URL.
  if (err !== undefined) return `parse ${goQuote(main)}: ${err}`;
  const e = hash >= 0 ? unescapeError(raw.slice(hash + 1)) : undefined;
  return e === undefined ? undefined : `parse ${goQuote(raw)}: ${e}`;
}

function parseError(raw: string): string | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return "net/url: invalid control character in URL";
  }
  if (raw === "" || raw === "*") return undefined;
  let rest = raw;
  let scheme = "";
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (/[a-zA-Z]/.test(c)) continue;
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) break;
      continue;
    }
    if (c === ":") {
      if (i === 0) return "missing protocol scheme";
      scheme = rest.slice(0, i).toLowerCase();
      rest = rest.slice(i + 1);
    }
    break;
  }
  const q = rest.indexOf("?");
  if (q >= 0) rest = rest.slice(0, q);
  if (!rest.startsWith("/")) {
    if (scheme !== "") return undefined; // opaque
    const segment = rest.split("/")[0]!;
    if (segment.includes(":")) return "first path segment in URL cannot contain colon";
  }
  let path = rest;
  if ((scheme !== "" || !rest.startsWith("///")) && rest.startsWith("//")) {
    let authority = rest.slice(2);
    const slash = authority.indexOf("/");
    path = slash >= 0 ? authority.slice(slash) : "";
    if (slash >= 0) authority = authority.slice(0, slash);
    const at = authority.lastIndexOf("@");
    const hostErr = hostError(scheme, at >= 0 ? authority.slice(at + 1) : authority);
    if (hostErr) return hostErr;
    if (at >= 0) {
      const userinfo = authority.slice(0, at);
      if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(userinfo)) return "net/url: invalid userinfo";
      const e = unescapeError(userinfo);
      if (e) return e;
    }
  }
  return unescapeError(path);
}

function hostError(scheme: string, host: string): string | undefined {
  const open = host.lastIndexOf("[");
  if (open > 0) return "invalid IP-literal";
  if (open === 0) {
    const close = host.lastIndexOf("]");
    if (close < 0) return "missing ']' in host";
    const port = host.slice(close + 1);
    if (!validOptionalPort(port)) return `invalid port ${goQuote(port)} after host`;
    const name = host.slice(1, close);
    const zone = name.indexOf("%25");
    const addr = zone >= 0 ? name.slice(0, zone) : name;
    const e = unescapeError(addr, true) ?? (zone >= 0 ? zoneError(name.slice(zone)) : undefined);
    if (e) return e;
    if (isIPv4(addr)) return "invalid IP-literal";
    // netip.ParseAddr explains its refusals in several ways; this gives its most common one.
    if (!isIPv6(addr)) return `invalid host: ParseAddr(${goQuote(zone >= 0 ? name : addr)}): unable to parse IP`;
    return undefined;
  }
  const first = host.indexOf(":");
  if (first >= 0) {
    const last = host.lastIndexOf(":");
    const i = last !== first && (scheme === "http" || scheme === "https") ? first : last;
    const port = host.slice(i);
    if (!validOptionalPort(port)) return `invalid port ${goQuote(port)} after host`;
  }
  return unescapeError(host, true);
}

function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function isIPv6(s: string): boolean {
  let body = s;
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.slice(lastColon + 1).includes(".")) {
    if (!isIPv4(s.slice(lastColon + 1))) return false;
    body = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return false;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const all = halves.flatMap(groups);
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? all.length < 8 : all.length === 8;
}
