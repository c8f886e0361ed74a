/**
 * Invalid Prometheus configs with a secret in them, shared by the tests that check no error
 * message or output repeats it (test/prom/config-secrets.test.ts, test/coordinator/config-secrets.test.ts).
 */

/** What every message starts with: the section or file the problem is in. */
export const WHERE =
  /scrape_configs|remote_write|remote_read|global|alerting|tracing|storage|secrets|prometheus\.yml|\.yml:/;

export const job = (body: string) =>
  `scrape_configs:\n- job_name: j\n  static_configs: [{targets: ["127.0.0.1:9"]}]\n${body}`;

/**
 * Invalid configs, each with the secret `s` where a user writes one, or where a misplaced one
 * lands (a wrong type, a wrong field, broken YAML). `q` is `s` as a quoted YAML string.
 */
export const SECRET_CONFIGS: readonly [string, (s: string, q: string) => string][] = [
  ["params value written as a string", (_s, q) => job(`  params: {api_key: ${q}}\n`)],
  ["params value written as a mapping", (_s, q) => job(`  params: {api_key: {k: ${q}}}\n`)],
  [
    "static target written as a URL with a password",
    (s) => `scrape_configs:\n- job_name: j\n  static_configs: [{targets: ["https://user:${s}@127.0.0.1:9/metrics"]}]\n`,
  ],
  [
    "static target, scheme-less userinfo and a path",
    (s) => `scrape_configs:\n- job_name: j\n  static_configs: [{targets: ["user:${s}@127.0.0.1:9/x"]}]\n`,
  ],
  ["an unquoted password starting with * (a YAML alias)", (s) => job(`  basic_auth: {username: u, password: *${s}}\n`)],
  ["an unquoted password starting with ! (a YAML tag)", (s) => job(`  basic_auth: {username: u, password: !${s} x}\n`)],
  ["a verbatim tag", (s) => job(`  authorization: {credentials: !<${s}> x}\n`)],
  ["an unterminated quoted password", (s) => job(`  basic_auth:\n    password: "${s}\n    username: u\n`)],
  ["broken YAML on the line of the password", (s) => job(`  bearer_token: ${s}: x\n`)],
  ["bad indentation after a password", (s) => job(`  basic_auth:\n    password: ${s}\n   username: u\n`)],
  ["tab indentation after a token", (s) => job(`  bearer_token: ${s}\n\tscheme: https\n`)],
  ["a secret in a boolean field", (_s, q) => job(`  follow_redirects: ${q}\n`)],
  ["a secret in honor_labels", (_s, q) => job(`  honor_labels: ${q}\n`)],
  ["a secret in tls_config.insecure_skip_verify", (_s, q) => job(`  tls_config: {insecure_skip_verify: ${q}}\n`)],
  ["a secret in tls_config.min_version", (_s, q) => job(`  tls_config: {min_version: ${q}}\n`)],
  ["a secret in a duration", (_s, q) => job(`  scrape_interval: ${q}\n`)],
  ["a secret in a global duration", (_s, q) => `global: {scrape_timeout: ${q}}\n${job("")}`],
  ["a secret in metric_name_validation_scheme", (_s, q) => job(`  metric_name_validation_scheme: ${q}\n`)],
  ["http_headers value written as a string", (_s, q) => job(`  http_headers: {X-Api-Key: ${q}}\n`)],
  ["http_headers secrets written as a string", (_s, q) => job(`  http_headers: {X-Api-Key: {secrets: ${q}}}\n`)],
  ["http_headers values written as a number", (s) => job(`  http_headers: {X-Api-Key: {values: 1${s.length}}}\n`)],
  ["a misspelled password field", (_s, q) => job(`  basic_auth: {username: u, passwd: ${q}}\n`)],
  ["basic_auth written as a string", (_s, q) => job(`  basic_auth: ${q}\n`)],
  ["password next to password_file", (_s, q) => job(`  basic_auth: {username: u, password: ${q}, password_file: f}\n`)],
  ["authorization type Basic with credentials", (_s, q) => job(`  authorization: {type: Basic, credentials: ${q}}\n`)],
  ["bearer_token next to bearer_token_file", (_s, q) => job(`  bearer_token: ${q}\n  bearer_token_file: f\n`)],
  ["bearer_token next to basic_auth", (_s, q) => job(`  bearer_token: ${q}\n  basic_auth: {username: u}\n`)],
  ["oauth2 without client_id", (_s, q) => job(`  oauth2: {client_secret: ${q}, token_url: "http://127.0.0.1:1/t"}\n`)],
  ["oauth2 secret in a list", (_s, q) => job(`  oauth2: {client_id: c, client_secret: [${q}], token_url: t}\n`)],
  ["tls key next to key_file", (_s, q) => job(`  tls_config: {cert: c, key: ${q}, key_file: k}\n`)],
  ["tls key written as a list", (_s, q) => job(`  tls_config: {key: [${q}]}\n`)],
  ["proxy_url with a password and a bad port", (s) => job(`  proxy_url: "http://u:${s}@127.0.0.1:x/"\n`)],
  ["proxy_url with a password and a bad escape", (s) => job(`  proxy_url: "http://u:${s}@127.0.0.1:1/%zz"\n`)],
  [
    "proxy_url with a password next to proxy_from_environment",
    (s) => job(`  proxy_url: "http://u:${s}@127.0.0.1:1/"\n  proxy_from_environment: true\n`),
  ],
  [
    "proxy_connect_header as a string",
    (_s, q) => job(`  proxy_connect_header: ${q}\n  proxy_url: "http://127.0.0.1:1"\n`),
  ],
  [
    "kubernetes api_server with a password and a bad port",
    (s) =>
      `scrape_configs:\n- job_name: j\n  kubernetes_sd_configs: [{role: pod, api_server: "https://u:${s}@127.0.0.1:x"}]\n`,
  ],
  [
    "kubernetes SD basic_auth with a bad field",
    (_s, q) =>
      `scrape_configs:\n- job_name: j\n  kubernetes_sd_configs: [{role: pod, basic_auth: {username: u, password: ${q}, bad: 1}}]\n`,
  ],
  ["remote_write url with a password and a bad port", (s) => `remote_write: [{url: "https://u:${s}@127.0.0.1:x/w"}]\n`],
  [
    "remote_write url with a password, a duplicate name",
    (s) =>
      `remote_write: [{url: "https://u:${s}@127.0.0.1:1/w", name: a}, {url: "https://u:${s}@127.0.0.1:2/w", name: a}]\n`,
  ],
  [
    "remote_read url with a password and a bad escape",
    (s) => `remote_read: [{url: "https://u:${s}@127.0.0.1:1/%zz"}]\n`,
  ],
  [
    "an Alertmanager static target written as a URL with a password",
    (s) => `alerting:\n  alertmanagers: [{static_configs: [{targets: ["https://u:${s}@127.0.0.1:9093/x"]}]}]\n`,
  ],
  [
    "an Alertmanager with basic_auth and a bearer token",
    (_s, q) => `alerting:\n  alertmanagers: [{basic_auth: {username: u, password: ${q}}, bearer_token: ${q}}]\n`,
  ],
  [
    "a remote_write Authorization header",
    (_s, q) => `remote_write: [{url: "http://127.0.0.1:1/w", headers: {Authorization: ${q}}}]\n`,
  ],
  [
    "a remote_write header value as a list",
    (_s, q) => `remote_write: [{url: "http://127.0.0.1:1/w", headers: [${q}]}]\n`,
  ],
  [
    "a remote_write with sigv4 and basic_auth",
    (_s, q) =>
      `remote_write: [{url: "http://127.0.0.1:1/w", sigv4: {secret_key: ${q}}, basic_auth: {password: ${q}}}]\n`,
  ],
  [
    "a secret in remote_write queue_config",
    (_s, q) => `remote_write: [{url: "http://127.0.0.1:1/w", queue_config: {capacity: ${q}}}]\n`,
  ],
  [
    "a tracing Authorization header",
    (_s, q) => `tracing: {endpoint: "127.0.0.1:4317", headers: {Authorization: ${q}}}\n`,
  ],
  ["a secret in tracing.client_type", (_s, q) => `tracing: {endpoint: "127.0.0.1:4317", client_type: ${q}}\n`],
  ["a secret in a sample_limit", (_s, q) => job(`  sample_limit: ${q}\n`)],
  ["a secret in body_size_limit", (_s, q) => job(`  body_size_limit: ${q}\n`)],
  ["a secret in the storage retention size", (_s, q) => `storage: {tsdb: {retention: {size: ${q}}}}\n`],
  ["a secret in a tracing timeout", (_s, q) => `tracing: {endpoint: "127.0.0.1:4317", timeout: ${q}}\n`],
  ["a secret in the unknown top-level section", (_s, q) => `secrets: {token: ${q}}\n${job("")}`],
  ["a secret in an unknown job field", (_s, q) => job(`  api_key: ${q}\n`)],
  ["a secret in an unknown global field", (_s, q) => `global: {token: ${q}}\n${job("")}`],
  ["a secret as an external label mapping", (_s, q) => `global: {external_labels: {x: {y: ${q}}}}\n${job("")}`],
];
