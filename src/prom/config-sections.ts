/**
 * The sections promshard keeps as written but Prometheus still refuses at load (alerting,
 * remote_write, remote_read, storage, tracing, runtime, otlp): their fields per version, so
 * `check config` refuses what the shard's promtool refuses. The field lists were read from
 * promtool 2.42 and 3.16 themselves (a field is known unless promtool says "not found in type").
 */
import {
  boolField,
  bytesField,
  describe,
  durationField,
  intField,
  type Problems,
  unknownKeys,
} from "./config-fields.ts";
import { SD_V2, SD_V3 } from "./config-keys.ts";
import { goUrlParseError } from "./go-url.ts";
import { isObj, type Obj, StrictReader, yamlBool } from "./go-yaml.ts";
import {
  decodeHttpClient,
  HTTP_CLIENT_KEYS,
  HTTP_CLIENT_KEYS_V2,
  isReservedHeader,
  TLS_KEYS,
  validateHttpClient,
} from "./http-client.ts";
import { parseRelabelConfigs } from "./relabel.ts";
import type { PromDialect } from "./version.ts";

interface Fields {
  readonly v2: readonly string[];
  /** Added in 3.x (none of these sections lost a field in 3.x). */
  readonly v3: readonly string[];
}

const keysFor = (f: Fields, major: number): string[] => (major >= 3 ? [...f.v2, ...f.v3] : [...f.v2]);

/**
 * The Go type of a field, for the type errors yaml.Unmarshal reports: a bool takes only a YAML
 * boolean, a string any scalar, a float any number, []string a list of scalars, a struct or
 * map a mapping. Ints, durations and sizes have their own readers (config-fields.ts).
 */
type Kind = "bool" | "string" | "float" | "strings" | "mapping";

const KINDS: Readonly<Record<string, Kind>> = {
  // scrape configs and global
  job_name: "string",
  honor_labels: "bool",
  honor_timestamps: "bool",
  metrics_path: "string",
  scheme: "string",
  track_timestamps_staleness: "bool",
  fallback_scrape_protocol: "string",
  scrape_native_histograms: "bool",
  always_scrape_classic_histograms: "bool",
  convert_classic_histograms_to_nhcb: "bool",
  scrape_failure_log_file: "string",
  query_log_file: "string",
  enable_compression: "bool",
  native_histogram_min_bucket_factor: "float",
  metric_name_validation_scheme: "string",
  metric_name_escaping_scheme: "string",
  extra_scrape_metrics: "bool",
  follow_redirects: "bool",
  enable_http2: "bool",
  proxy_from_environment: "bool",
  // remote_write, remote_read, alerting
  url: "string",
  name: "string",
  headers: "mapping",
  send_exemplars: "bool",
  send_native_histograms: "bool",
  round_robin_dns: "bool",
  protobuf_message: "string",
  sigv4: "mapping",
  azuread: "mapping",
  google_iam: "mapping",
  retry_on_http_429: "bool",
  send: "bool",
  read_recent: "bool",
  required_matchers: "mapping",
  filter_external_labels: "bool",
  api_version: "string",
  path_prefix: "string",
  // storage, tracing, otlp, top level
  stale_series_compaction_threshold: "float",
  endpoint: "string",
  client_type: "string",
  sampling_fraction: "float",
  insecure: "bool",
  compression: "string",
  tls_config: "mapping",
  promote_resource_attributes: "strings",
  translation_strategy: "string",
  keep_identifying_resource_attributes: "bool",
  convert_histograms_to_nhcb: "bool",
  ignore_resource_attributes: "strings",
  promote_all_resource_attributes: "bool",
  promote_scope_metadata: "bool",
  label_name_underscore_sanitization: "bool",
  label_name_preserve_multiple_underscores: "bool",
  rule_files: "strings",
  scrape_config_files: "strings",
};

const fits: Record<Kind, (v: unknown) => boolean> = {
  bool: (v) => yamlBool(v) !== undefined,
  string: (v) => !Array.isArray(v) && !isObj(v),
  float: (v) => typeof v === "number",
  strings: (v) => Array.isArray(v) && v.every((x) => !Array.isArray(x) && !isObj(x)),
  mapping: isObj,
};
const named: Record<Kind, string> = {
  bool: "true or false",
  string: "a single value",
  float: "a number",
  strings: "a list of values",
  mapping: "a mapping",
};

/**
 * Type errors for the fields of `obj` that KINDS names (null is always fine: the zero value),
 * but those in `skip`, which their own readers check.
 */
function checkKinds(obj: Obj, path: string, p: Problems, skip: readonly string[] = []): void {
  for (const [key, v] of Object.entries(obj)) {
    const kind = skip.includes(key) ? undefined : KINDS[key];
    if (kind === undefined || v === null || v === undefined || fits[kind](v)) continue;
    p.add(path ? `${path}.${key}` : key, `must be ${named[kind]}, got ${describe(v)}`);
  }
}

const ALERTING: Fields = { v2: ["alertmanagers", "alert_relabel_configs"], v3: [] };
const ALERTMANAGER: Fields = {
  v2: ["api_version", "path_prefix", "scheme", "timeout", "static_configs", "relabel_configs"],
  v3: ["alert_relabel_configs", "sigv4"],
};
const REMOTE_WRITE: Fields = {
  v2: [
    "url",
    "remote_timeout",
    "headers",
    "write_relabel_configs",
    "name",
    "send_exemplars",
    "send_native_histograms",
    "queue_config",
    "metadata_config",
    "sigv4",
  ],
  v3: ["round_robin_dns", "protobuf_message", "azuread", "google_iam"],
};
const QUEUE: Fields = {
  v2: [
    "capacity",
    "max_shards",
    "min_shards",
    "max_samples_per_send",
    "batch_send_deadline",
    "min_backoff",
    "max_backoff",
    "retry_on_http_429",
  ],
  v3: ["sample_age_limit"],
};
const METADATA: Fields = { v2: ["send", "send_interval", "max_samples_per_send"], v3: [] };
const REMOTE_READ: Fields = {
  v2: ["url", "remote_timeout", "headers", "read_recent", "name", "required_matchers", "filter_external_labels"],
  v3: [],
};
const STORAGE: Fields = { v2: ["tsdb", "exemplars"], v3: [] };
const TSDB: Fields = { v2: ["out_of_order_time_window"], v3: ["stale_series_compaction_threshold", "retention"] };
const RETENTION: Fields = { v2: [], v3: ["time", "size", "percentage"] };
const EXEMPLARS: Fields = { v2: ["max_exemplars"], v3: [] };
const TRACING: Fields = {
  v2: ["endpoint", "client_type", "sampling_fraction", "insecure", "headers", "compression", "timeout", "tls_config"],
  v3: [],
};
const SIGV4: Fields = {
  v2: ["region", "access_key", "secret_key", "profile", "role_arn"],
  v3: ["external_id", "use_fips_sts_endpoint", "service_name"],
};
const GOOGLE_IAM: Fields = { v2: [], v3: ["credentials_file"] };
const AZURE_IDENTITIES = ["managed_identity", "oauth", "sdk", "workload_identity", "certificate"];
const AZUREAD: Fields = { v2: [], v3: ["cloud", "scope", ...AZURE_IDENTITIES] };
const TLS: Fields = { v2: TLS_KEYS, v3: [] };
const RUNTIME: Fields = { v2: [], v3: ["gogc"] };
const OTLP: Fields = {
  v2: [],
  v3: [
    "promote_resource_attributes",
    "translation_strategy",
    "keep_identifying_resource_attributes",
    "convert_histograms_to_nhcb",
    "ignore_resource_attributes",
    "promote_all_resource_attributes",
    "promote_scope_metadata",
    "label_name_underscore_sanitization",
    "label_name_preserve_multiple_underscores",
  ],
};

const SCRAPE_PROTOCOLS = [
  "OpenMetricsText0.0.1",
  "OpenMetricsText1.0.0",
  "OpenMetricsText2.0.0",
  "PrometheusProto",
  "PrometheusText0.0.4",
  "PrometheusText1.0.0",
];
const ESCAPING_SCHEMES = ["allow-utf-8", "underscores", "dots", "values"];
const PROTOBUF_MESSAGES = ["prometheus.WriteRequest", "io.prometheus.write.v2.Request"];
const OTLP_STRATEGIES = [
  "UnderscoreEscapingWithSuffixes",
  "UnderscoreEscapingWithoutSuffixes",
  "NoUTF8EscapingWithSuffixes",
  "NoTranslation",
];
/** The limits of a scrape config and global's query limits: uints. */
const UINT_LIMITS = [
  "sample_limit",
  "target_limit",
  "label_limit",
  "label_name_length_limit",
  "label_value_length_limit",
  "keep_dropped_targets",
  "native_histogram_bucket_limit",
  "query_max_series",
  "query_max_samples_read",
];

/** Scrape config fields config.ts and http-client.ts read with their own type checks. */
const READ_ELSEWHERE = [
  "job_name",
  "honor_labels",
  "honor_timestamps",
  "metrics_path",
  "scheme",
  "scrape_native_histograms",
  "always_scrape_classic_histograms",
  "convert_classic_histograms_to_nhcb",
  "metric_name_validation_scheme",
  ...HTTP_CLIENT_KEYS,
];

/** A field whose value must be one of `allowed`; the message lists them, never the value. */
function oneOf(value: unknown, path: string, p: Problems, allowed: readonly string[]): void {
  if (value === undefined || value === null) return;
  if (!allowed.includes(String(value))) p.add(path, `must be one of ${allowed.join(", ")}`);
}

/**
 * The value checks global and every job share (3.x's included): limits, body_size_limit,
 * protocols, the name escaping scheme (a job's allow-utf-8, its own or global's, needs utf8 names).
 */
export function validateScrapeValues(
  obj: Obj,
  path: string,
  dialect: PromDialect,
  schemes: { names: "utf8" | "legacy"; escaping?: unknown },
  p: Problems,
): void {
  for (const k of UINT_LIMITS) intField(obj, k, path, p, 0);
  bytesField(obj, "body_size_limit", path, p);
  for (const k of ["rule_query_offset", "query_max_duration"]) durationField(obj, k, path, p);
  checkKinds(obj, path, p, READ_ELSEWHERE);
  if (dialect.major < 3) return;
  const protocols = obj.scrape_protocols;
  if (protocols !== undefined && protocols !== null) {
    if (!Array.isArray(protocols) || protocols.length === 0) {
      p.add(`${path}.scrape_protocols`, `must be a non-empty list of ${SCRAPE_PROTOCOLS.join(", ")}`);
    } else {
      for (const [i, x] of protocols.entries()) oneOf(x, `${path}.scrape_protocols[${i}]`, p, SCRAPE_PROTOCOLS);
      if (new Set(protocols.map(String)).size !== protocols.length) {
        p.add(`${path}.scrape_protocols`, "lists a protocol twice; list each once");
      }
    }
  }
  if (obj.fallback_scrape_protocol !== "") {
    oneOf(obj.fallback_scrape_protocol, `${path}.fallback_scrape_protocol`, p, SCRAPE_PROTOCOLS);
  }
  // 3.16 checks the escaping scheme of jobs only (global's is taken as written), "" meaning unset.
  if (path !== "global" && obj.metric_name_escaping_scheme !== "") {
    oneOf(obj.metric_name_escaping_scheme, `${path}.metric_name_escaping_scheme`, p, ESCAPING_SCHEMES);
  }
  // A job uses its own escaping scheme or global's; global alone is not checked, as in 3.16.
  if (schemes.escaping === "allow-utf-8" && schemes.names === "legacy") {
    p.add(
      `${path}.metric_name_escaping_scheme`,
      "allow-utf-8 needs metric_name_validation_scheme: utf8; choose another escaping scheme or utf8 names",
    );
  }
}

const QUEUE_SIZES = ["capacity", "max_shards", "min_shards", "max_samples_per_send"];

/** Alertmanager API versions each major accepts: 3.0 removed v1. */
const AM_API_VERSIONS = (major: number) => (major >= 3 ? ["v2"] : ["v1", "v2"]);

/** Checks the sections of `doc` promshard does not model, as `dialect`'s Prometheus loads them. */
export function validateSections(doc: Obj, dialect: PromDialect, p: Problems): void {
  const m = dialect.major;
  const http = m >= 3 ? HTTP_CLIENT_KEYS : HTTP_CLIENT_KEYS_V2;
  const sdKeys = new Set((m >= 3 ? SD_V3 : SD_V2).map((n) => `${n}_sd_configs`));
  /** A section: a mapping of known fields of the right types; `http` when it holds an HTTP client's fields. */
  const mapping = (raw: unknown, path: string, fields: Fields, extra?: (k: string) => boolean, http?: boolean) => {
    if (raw === undefined || raw === null) return undefined;
    if (!isObj(raw)) {
      p.add(path, `must be a mapping, got ${describe(raw)}`);
      return undefined;
    }
    unknownKeys(raw, keysFor(fields, m), path, p, extra);
    checkKinds(raw, path, p, http ? HTTP_CLIENT_KEYS : []);
    return raw;
  };
  const list = (raw: unknown, path: string, each: (item: Obj, at: string) => void): void => {
    if (raw === undefined || raw === null) return;
    if (!Array.isArray(raw)) {
      p.add(path, `must be a list, got ${describe(raw)}`);
      return;
    }
    raw.forEach((item, i) => {
      if (isObj(item)) each(item, `${path}[${i}]`);
      else p.add(`${path}[${i}]`, "empty or not a mapping; remove it or write it as a mapping");
    });
  };
  const httpClient = (item: Obj, at: string) => {
    const reader = new StrictReader(p.list);
    validateHttpClient(decodeHttpClient(item, at, reader), at, reader);
  };
  const relabel = (raw: unknown, at: string) => p.addAll(parseRelabelConfigs(raw, dialect, at).errors);
  const auths =
    m >= 3
      ? ["basic_auth", "authorization", "oauth2", "sigv4", "azuread", "google_iam"]
      : ["basic_auth", "authorization", "oauth2", "sigv4"];
  /** Remote headers: none of them reserved, credentials only through the auth fields. */
  const headers = (item: Obj, at: string) => {
    const h = item.headers;
    if (!isObj(h)) return;
    for (const name of Object.keys(h)) {
      if (name.toLowerCase() === "authorization") {
        p.add(`${at}.headers.${name}`, `set credentials with ${auths.join(", ")}, not a header`);
      } else if (isReservedHeader(name)) p.add(`${at}.headers.${name}`, "is a reserved header; it must not be changed");
    }
  };

  checkKinds(doc, "", p);
  const alerting = mapping(doc.alerting, "alerting", ALERTING);
  list(alerting?.alertmanagers, "alerting.alertmanagers", (am, at) => {
    mapping(am, at, ALERTMANAGER, (k) => http.includes(k) || sdKeys.has(k), true);
    mapping(am.sigv4, `${at}.sigv4`, SIGV4);
    const version = am.api_version;
    const allowed = AM_API_VERSIONS(m);
    if (version !== undefined && version !== null && !allowed.includes(String(version))) {
      p.add(
        `${at}.api_version`,
        `Prometheus ${dialect.version} accepts the Alertmanager API ${allowed.join(" or ")}${m >= 3 ? " (3.0 removed v1)" : ""}; set api_version: v2 or remove it`,
      );
    }
    durationField(am, "timeout", at, p);
    relabel(am.relabel_configs, `${at}.relabel_configs`);
    relabel(am.alert_relabel_configs, `${at}.alert_relabel_configs`);
    httpClient(am, at);
  });
  relabel(alerting?.alert_relabel_configs, "alerting.alert_relabel_configs");

  list(doc.remote_write, "remote_write", (rw, at) => {
    mapping(rw, at, REMOTE_WRITE, (k) => http.includes(k), true);
    mapping(rw.sigv4, `${at}.sigv4`, SIGV4);
    mapping(rw.google_iam, `${at}.google_iam`, GOOGLE_IAM);
    const azure = mapping(rw.azuread, `${at}.azuread`, AZUREAD);
    if (azure && !AZURE_IDENTITIES.some((k) => isObj(azure[k]))) {
      p.add(`${at}.azuread`, `give one of ${AZURE_IDENTITIES.join(", ")}`);
    }
    const queue = mapping(rw.queue_config, `${at}.queue_config`, QUEUE);
    const q = `${at}.queue_config`;
    if (queue) {
      for (const k of QUEUE_SIZES) intField(queue, k, q, p);
      const backoff = ["min_backoff", "max_backoff"].map((k) => durationField(queue, k, q, p));
      for (const k of ["batch_send_deadline", "sample_age_limit"]) durationField(queue, k, q, p);
      boolField(queue, "retry_on_http_429", q, p, false);
      // A null field is Go's zero value, not the default.
      const [min, max] = backoff.map(
        (ms, i) => ms ?? (queue[i ? "max_backoff" : "min_backoff"] === null ? 0 : [30, 5000][i]!),
      );
      if (m >= 3 && max! < min!) p.add(`${q}.max_backoff`, "must not be less than min_backoff");
    }
    if (m >= 3 && "queue_config" in rw) {
      // 3.x refuses a queue without room, shards or batches; a null field or section is zero.
      const fields = queue ?? {};
      for (const k of QUEUE_SIZES) {
        const v = queue ? fields[k] : null;
        if ((k in fields || !queue) && (v === null || (typeof v === "number" && v <= 0))) {
          p.add(`${q}.${k}`, "must be positive; remove it for the default");
        }
      }
    }
    const metadata = mapping(rw.metadata_config, `${at}.metadata_config`, METADATA);
    if (metadata) {
      durationField(metadata, "send_interval", `${at}.metadata_config`, p);
      intField(metadata, "max_samples_per_send", `${at}.metadata_config`, p);
      boolField(metadata, "send", `${at}.metadata_config`, p, true);
    }
    durationField(rw, "remote_timeout", at, p);
    relabel(rw.write_relabel_configs, `${at}.write_relabel_configs`);
    headers(rw, at);
    const used = auths.filter((k) => rw[k] !== undefined && rw[k] !== null);
    const bearer = rw.bearer_token !== undefined || rw.bearer_token_file !== undefined;
    if (used.length > 1 || (bearer && used.some((k) => !["basic_auth", "authorization", "oauth2"].includes(k)))) {
      p.add(at, `at most one of ${auths.join(", ")} may be set; remove the others`);
    }
    if (m >= 3 && "protobuf_message" in rw) {
      oneOf(rw.protobuf_message ?? "", `${at}.protobuf_message`, p, PROTOBUF_MESSAGES);
    }
    httpClient(rw, at);
  });
  list(doc.remote_read, "remote_read", (rr, at) => {
    mapping(rr, at, REMOTE_READ, (k) => http.includes(k), true);
    durationField(rr, "remote_timeout", at, p);
    headers(rr, at);
    httpClient(rr, at);
  });
  for (const key of ["remote_write", "remote_read"] as const) validateRemoteUrls(doc[key], key, p);

  const storage = mapping(doc.storage, "storage", STORAGE);
  const tsdb = mapping(storage?.tsdb, "storage.tsdb", TSDB);
  if (tsdb) durationField(tsdb, "out_of_order_time_window", "storage.tsdb", p);
  const retention = mapping(tsdb?.retention, "storage.tsdb.retention", RETENTION);
  if (retention) {
    const at = "storage.tsdb.retention";
    durationField(retention, "time", at, p);
    bytesField(retention, "size", at, p);
    const pct = intField(retention, "percentage", at, p, 0);
    if (pct !== undefined && pct > 100) p.add(`${at}.percentage`, "must be in the range [0, 100]");
  }
  const exemplars = mapping(storage?.exemplars, "storage.exemplars", EXEMPLARS);
  if (exemplars) intField(exemplars, "max_exemplars", "storage.exemplars", p);
  const tracing = mapping(doc.tracing, "tracing", TRACING);
  if (tracing) {
    mapping(tracing.tls_config, "tracing.tls_config", TLS);
    if (tracing.endpoint === undefined || tracing.endpoint === null || tracing.endpoint === "") {
      p.add("tracing.endpoint", "tracing endpoint must be set (host:port of an OTLP receiver)");
    }
    oneOf(tracing.client_type, "tracing.client_type", p, ["grpc", "http"]);
    if (tracing.compression !== "") oneOf(tracing.compression, "tracing.compression", p, ["gzip"]);
    durationField(tracing, "timeout", "tracing", p);
    if (isObj(tracing.headers) && Object.keys(tracing.headers).some((h) => h.toLowerCase() === "authorization")) {
      p.add("tracing.headers", "an Authorization header is not supported for tracing yet; remove it");
    }
  }
  if (m >= 3) {
    const runtime = mapping(doc.runtime, "runtime", RUNTIME);
    if (runtime) intField(runtime, "gogc", "runtime", p);
    const otlp = mapping(doc.otlp, "otlp", OTLP);
    if (otlp && otlp.translation_strategy !== "") {
      oneOf(otlp.translation_strategy, "otlp.translation_strategy", p, OTLP_STRATEGIES);
    }
    const ignored = otlp?.ignore_resource_attributes;
    if (Array.isArray(ignored) && ignored.length > 0 && yamlBool(otlp?.promote_all_resource_attributes) !== true) {
      p.add("otlp.ignore_resource_attributes", "needs promote_all_resource_attributes: true; remove it or set that");
    }
  }
}

/** remote_write/remote_read URLs: required, parseable, names unique per section. */
function validateRemoteUrls(raw: unknown, key: string, p: Problems): void {
  if (!Array.isArray(raw)) return;
  const names = new Map<string, number>();
  raw.forEach((item, i) => {
    if (!isObj(item)) return;
    if (typeof item.url !== "string" || item.url === "") p.add(`${key}[${i}].url`, "url is required");
    else {
      const err = goUrlParseError(item.url);
      if (err !== undefined) p.add(`${key}[${i}].url`, err);
    }
    if (typeof item.name === "string" && item.name !== "") {
      const first = names.get(item.name);
      if (first !== undefined) p.add(`${key}[${i}].name`, `name "${item.name}" is already used by ${key}[${first}]`);
      else names.set(item.name, i);
    }
  });
}
