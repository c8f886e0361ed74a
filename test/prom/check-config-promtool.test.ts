/**
 * `promshard check config --syntax-only --prometheus.version X` accepts exactly what promtool
 * X accepts, for a table of configs on the fields that differ between 2.42 and 3.16 (removed,
 * renamed and added fields, Alertmanager API versions) and on the sections promshard keeps as
 * written (alerting, remote_write/read, storage, tracing, runtime, otlp). Each config runs
 * through the real promtool of every Prometheus binary and through ours.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import { runCommand } from "../../src/cli/command.ts";
import { root } from "../../src/cli/root.ts";
import { prometheusBinaries, promtoolCheckConfig } from "../support/prometheus.ts";

const job = (fields: string) =>
  `scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n${fields}`;
const rw = (fields: string) => `remote_write:\n- url: http://127.0.0.1:1/w\n${fields}`;
const rr = (fields: string) => `remote_read:\n- url: http://127.0.0.1:1/r\n${fields}`;
const am = (fields: string) =>
  `alerting:\n  alertmanagers:\n  - static_configs: [{targets: ['127.0.0.1:9093']}]\n${fields}`;

const CASES: readonly [string, string][] = [
  ["a plain job", job("")],
  ["job scrape_classic_histograms (gone in 3.x, not yet in 2.42)", job("  scrape_classic_histograms: true\n")],
  ["global scrape_classic_histograms", `global: {scrape_classic_histograms: true}\n${job("")}`],
  ["job always_scrape_classic_histograms", job("  always_scrape_classic_histograms: true\n")],
  ["job scrape_protocols", job("  scrape_protocols: [PrometheusText0.0.4]\n")],
  ["job enable_compression", job("  enable_compression: false\n")],
  ["job http_headers", job("  http_headers: {X-A: {values: [b]}}\n")],
  ["global sample_limit", `global: {sample_limit: 10}\n${job("")}`],
  ["global query_log_file", `global: {query_log_file: q.log}\n${job("")}`],
  ["alertmanager api_version v1", am("    api_version: v1\n")],
  ["alertmanager api_version v2", am("    api_version: v2\n")],
  ["alertmanager api_version V2", am("    api_version: V2\n")],
  ["alertmanager api_version v3", am("    api_version: v3\n")],
  ["alertmanager path_prefix, scheme, timeout", am("    path_prefix: /am\n    scheme: https\n    timeout: 5s\n")],
  ["alertmanager bad timeout", am("    timeout: soon\n")],
  ["alertmanager alert_relabel_configs", am("    alert_relabel_configs: []\n")],
  ["alertmanager sigv4", am("    sigv4: {region: eu-west-1}\n")],
  ["alertmanager http_headers", am("    http_headers: {X-A: {values: [b]}}\n")],
  ["alertmanager basic_auth", am("    basic_auth: {username: u, password: p}\n")],
  ["alertmanager basic_auth and bearer_token", am("    basic_auth: {username: u}\n    bearer_token: t\n")],
  ["alertmanager unknown field", am("    retries: 3\n")],
  ["alerting alert_relabel_configs", "alerting:\n  alert_relabel_configs: []\n"],
  ["alerting unknown field", "alerting:\n  amanagers: []\n"],
  ["remote_write queue_config.max_retries", rw("  queue_config: {max_retries: 3}\n")],
  ["remote_write queue_config.sample_age_limit", rw("  queue_config: {sample_age_limit: 1m}\n")],
  [
    "remote_write queue_config, the shared fields",
    rw(
      "  queue_config: {capacity: 10, max_shards: 2, min_shards: 1, batch_send_deadline: 5s, retry_on_http_429: true}\n",
    ),
  ],
  ["remote_write metadata_config", rw("  metadata_config: {send: true, send_interval: 1m}\n")],
  ["remote_write metadata_config unknown", rw("  metadata_config: {sent: true}\n")],
  ["remote_write round_robin_dns", rw("  round_robin_dns: true\n")],
  ["remote_write protobuf_message", rw("  protobuf_message: prometheus.WriteRequest\n")],
  ["remote_write google_iam", rw("  google_iam: {credentials_file: f}\n")],
  ["remote_write sigv4", rw("  sigv4: {region: eu-west-1}\n")],
  ["remote_write http_headers", rw("  http_headers: {X-A: {values: [b]}}\n")],
  ["remote_write no_proxy", rw("  no_proxy: example\n  proxy_url: http://127.0.0.1:3128\n")],
  ["remote_write send_exemplars, headers, name", rw("  send_exemplars: true\n  headers: {X-A: b}\n  name: one\n")],
  ["remote_write unknown field", rw("  retries: 3\n")],
  ["remote_write bad remote_timeout", rw("  remote_timeout: later\n")],
  ["remote_write url with a bad port", "remote_write:\n- url: http://127.0.0.1:x/w\n"],
  ["remote_read read_recent, required_matchers", rr("  read_recent: true\n  required_matchers: {a: b}\n")],
  ["remote_read filter_external_labels", rr("  filter_external_labels: false\n")],
  ["remote_read http_headers", rr("  http_headers: {X-A: {values: [b]}}\n")],
  ["remote_read unknown field", rr("  write_relabel_configs: []\n")],
  ["storage tsdb out_of_order_time_window", "storage:\n  tsdb: {out_of_order_time_window: 10m}\n"],
  ["storage tsdb retention", "storage:\n  tsdb:\n    retention: {time: 15d}\n"],
  ["storage tsdb stale_series_compaction_threshold", "storage:\n  tsdb: {stale_series_compaction_threshold: 0.5}\n"],
  ["storage tsdb retention_time (a flag, not a field)", "storage:\n  tsdb: {retention_time: 15d}\n"],
  ["storage exemplars", "storage:\n  exemplars: {max_exemplars: 10}\n"],
  ["storage unknown section", "storage:\n  wal: {}\n"],
  ["tracing", "tracing: {endpoint: '127.0.0.1:4317', client_type: grpc, insecure: true}\n"],
  ["tracing unknown field", "tracing: {url: '127.0.0.1:4317'}\n"],
  ["runtime gogc", "runtime: {gogc: 75}\n"],
  ["otlp promote_resource_attributes", "otlp: {promote_resource_attributes: [service.name]}\n"],
  ["otlp unknown field", "otlp: {promote: true}\n"],
];

/** Values: types, units, ranges and closed sets, section by section. */
const VALUE_CASES: readonly [string, string][] = [
  [
    "job scrape_protocols bad",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  scrape_protocols: [Nope]\n",
  ],
  [
    "job scrape_protocols dup",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  scrape_protocols: [PrometheusText0.0.4, PrometheusText0.0.4]\n",
  ],
  [
    "job fallback_scrape_protocol bad",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  fallback_scrape_protocol: Nope\n",
  ],
  [
    "job fallback ok",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  fallback_scrape_protocol: PrometheusText0.0.4\n",
  ],
  [
    "job metric_name_escaping_scheme bad",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  metric_name_escaping_scheme: nope\n",
  ],
  [
    "job metric_name_escaping_scheme underscores",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  metric_name_escaping_scheme: underscores\n",
  ],
  [
    "job escaping allow-utf-8 with legacy",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  metric_name_escaping_scheme: allow-utf-8\n  metric_name_validation_scheme: legacy\n",
  ],
  [
    "job sample_limit negative",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  sample_limit: -1\n",
  ],
  [
    "job body_size_limit 10MB",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: 10MB\n",
  ],
  [
    "job body_size_limit bad",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: lots\n",
  ],
  [
    "job native_histogram_min_bucket_factor",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  native_histogram_min_bucket_factor: 1.1\n",
  ],
  ["job scheme ftp", "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  scheme: ftp\n"],
  [
    "job metrics_path no slash",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  metrics_path: metrics\n",
  ],
  [
    "job honor_timestamps string",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  honor_timestamps: maybe\n",
  ],
  [
    "job scrape_interval 0",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  scrape_interval: 0s\n",
  ],
  [
    "job scrape_timeout 0",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  scrape_timeout: 0s\n",
  ],
  [
    "job keep_dropped_targets",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  keep_dropped_targets: 5\n",
  ],
  [
    "job extra_scrape_metrics",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  extra_scrape_metrics: true\n",
  ],
  [
    "job track_timestamps_staleness",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  track_timestamps_staleness: true\n",
  ],
  [
    "job native_histogram_bucket_limit",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  native_histogram_bucket_limit: 10\n",
  ],
  [
    "job enable_compression str",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  enable_compression: maybe\n",
  ],
  [
    "job scrape_failure_log_file",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  scrape_failure_log_file: f.log\n",
  ],
  ["global scrape_protocols bad", "global: {scrape_protocols: [Nope]}\n"],
  ["global rule_query_offset", "global: {rule_query_offset: 1m}\n"],
  ["global rule_query_offset bad", "global: {rule_query_offset: soon}\n"],
  ["global query_max_series", "global: {query_max_series: 5}\n"],
  ["global external_labels __name__", "global: {external_labels: {__name__: x}}\n"],
  ["global evaluation_interval bad", "global: {evaluation_interval: x}\n"],
  ["global metric_name_escaping_scheme", "global: {metric_name_escaping_scheme: dots}\n"],
  ["rw protobuf bad", "remote_write:\n- url: http://127.0.0.1:1/w\n  protobuf_message: nope\n"],
  [
    "rw protobuf v2",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  protobuf_message: io.prometheus.write.v2.Request\n",
  ],
  ["rw headers reserved", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {Content-Type: x}\n"],
  ["rw headers ok", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {X-Scope-OrgID: x}\n"],
  ["rw duplicate", "remote_write:\n- url: http://127.0.0.1:1/w\n- url: http://127.0.0.1:1/w\n"],
  ["rw url no scheme", "remote_write:\n- url: 127.0.0.1:1/w\n"],
  ["rw url ftp", "remote_write:\n- url: ftp://127.0.0.1:1/w\n"],
  ["rw url empty host", "remote_write:\n- url: http:///w\n"],
  ["rw null entry", "remote_write:\n- null\n"],
  ["rw queue capacity str", "remote_write:\n- url: http://127.0.0.1:1/w\n  queue_config: {capacity: many}\n"],
  ["rw queue deadline bad", "remote_write:\n- url: http://127.0.0.1:1/w\n  queue_config: {batch_send_deadline: x}\n"],
  ["rw metadata interval bad", "remote_write:\n- url: http://127.0.0.1:1/w\n  metadata_config: {send_interval: x}\n"],
  [
    "rw sigv4 with basic_auth",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  sigv4: {region: x}\n  basic_auth: {username: u}\n",
  ],
  [
    "rw azuread",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  azuread: {cloud: AzurePublic, managed_identity: {client_id: 00000000-0000-0000-0000-000000000000}}\n",
  ],
  ["rw write_relabel bad", "remote_write:\n- url: http://127.0.0.1:1/w\n  write_relabel_configs: [{action: nope}]\n"],
  [
    "rw write_relabel ok",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  write_relabel_configs: [{action: drop, source_labels: [a], regex: x}]\n",
  ],
  ["rw send_native_histograms", "remote_write:\n- url: http://127.0.0.1:1/w\n  send_native_histograms: true\n"],
  ["rr required_matchers list", "remote_read:\n- url: http://127.0.0.1:1/r\n  required_matchers: [a]\n"],
  ["rr headers reserved", "remote_read:\n- url: http://127.0.0.1:1/r\n  headers: {Authorization: x}\n"],
  [
    "am relabel bad",
    "alerting:\n  alertmanagers:\n  - static_configs: [{targets: ['127.0.0.1:9093']}]\n    relabel_configs: [{action: nope}]\n",
  ],
  [
    "am scheme ftp",
    "alerting:\n  alertmanagers:\n  - static_configs: [{targets: ['127.0.0.1:9093']}]\n    scheme: ftp\n",
  ],
  [
    "am path_prefix",
    "alerting:\n  alertmanagers:\n  - static_configs: [{targets: ['127.0.0.1:9093']}]\n    path_prefix: am\n",
  ],
  ["am sd file", "alerting:\n  alertmanagers:\n  - file_sd_configs: [{files: [a.json]}]\n"],
  ["am sd file bad", "alerting:\n  alertmanagers:\n  - file_sd_configs: [{files: [a.txt]}]\n"],
  ["am static bad target", "alerting:\n  alertmanagers:\n  - static_configs: [{targets: ['http://a/b']}]\n"],
  ["am null", "alerting:\n  alertmanagers:\n  - null\n"],
  ["alert_relabel bad", "alerting:\n  alert_relabel_configs: [{action: nope}]\n"],
  ["tracing client_type bad", "tracing: {client_type: tcp}\n"],
  ["tracing compression bad", "tracing: {compression: zstd}\n"],
  ["tracing sampling 2", "tracing: {sampling_fraction: 2}\n"],
  ["tracing timeout bad", "tracing: {timeout: x}\n"],
  ["tracing tls", "tracing: {endpoint: 'a:1', tls_config: {insecure_skip_verify: true}}\n"],
  ["tracing no endpoint with insecure", "tracing: {insecure: true}\n"],
  ["storage ooo bad", "storage:\n  tsdb: {out_of_order_time_window: x}\n"],
  ["storage ooo negative", "storage:\n  tsdb: {out_of_order_time_window: -1m}\n"],
  ["storage exemplars negative", "storage:\n  exemplars: {max_exemplars: -1}\n"],
  ["storage retention size", "storage:\n  tsdb:\n    retention: {size: 1GB}\n"],
  ["storage retention size bad", "storage:\n  tsdb:\n    retention: {size: huge}\n"],
  ["storage retention time bad", "storage:\n  tsdb:\n    retention: {time: x}\n"],
  ["otlp translation bad", "otlp: {translation_strategy: nope}\n"],
  ["otlp translation ok", "otlp: {translation_strategy: NoUTF8EscapingWithSuffixes}\n"],
  ["runtime gogc str", "runtime: {gogc: x}\n"],
  ["rule_files bad glob", "rule_files: ['[']\n"],
  ["rule_files ok", "rule_files: ['r/*.yml']\n"],
  ["top null", "global: null\n"],
  [
    "job static labels bad name",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  static_configs: [{targets: ['127.0.0.1:9'], labels: {'a-b': x}}]\n",
  ],
  ["dup job", "scrape_configs:\n- job_name: a\n- job_name: a\n"],
  ["tracing empty", "tracing: {}\n"],
  ["tracing compression zstd", "tracing: {endpoint: 'a:1', compression: zstd}\n"],
  ["tracing compression gzip", "tracing: {endpoint: 'a:1', compression: gzip}\n"],
  ["tracing sampling 2 (2)", "tracing: {endpoint: 'a:1', sampling_fraction: 2}\n"],
  ["tracing client http", "tracing: {endpoint: 'a:1', client_type: http}\n"],
  ["tracing client empty", "tracing: {endpoint: 'a:1', client_type: ''}\n"],
  ["tracing headers", "tracing: {endpoint: 'a:1', headers: {Authorization: x}}\n"],
  ["tracing null", "tracing: null\n"],
  ["rw hdr host", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {Host: x}\n"],
  ["rw hdr content-length", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {content-length: x}\n"],
  ["rw hdr user-agent", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {User-Agent: x}\n"],
  ["rw hdr content-encoding", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {Content-Encoding: x}\n"],
  [
    "rw hdr rw version",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {X-Prometheus-Remote-Write-Version: x}\n",
  ],
  [
    "rw hdr rr version",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {X-Prometheus-Remote-Read-Version: x}\n",
  ],
  ["rw hdr authorization lower", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {authorization: x}\n"],
  ["rw hdr x-amz-date", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {X-Amz-Date: x}\n"],
  ["rw hdr accept-encoding", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {Accept-Encoding: x}\n"],
  ["rw hdr connection", "remote_write:\n- url: http://127.0.0.1:1/w\n  headers: {Connection: x}\n"],
  [
    "body 10MiB",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: 10MiB\n",
  ],
  ["body 0", "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: 0\n"],
  [
    "body 10",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: 10\n",
  ],
  [
    "body 1.5MB",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: 1.5MB\n",
  ],
  [
    "body 10mb",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: 10mb\n",
  ],
  [
    "body 1GB512MB",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: 1GB512MB\n",
  ],
  [
    "body 10K",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  body_size_limit: 10K\n",
  ],
  [
    "sample_limit float",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  sample_limit: 1.5\n",
  ],
  [
    "sample_limit quoted",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  sample_limit: '10'\n",
  ],
  ["rw capacity float", "remote_write:\n- url: http://127.0.0.1:1/w\n  queue_config: {capacity: 1.5}\n"],
  ["rw capacity negative", "remote_write:\n- url: http://127.0.0.1:1/w\n  queue_config: {capacity: -1}\n"],
  ["rw max_shards 0", "remote_write:\n- url: http://127.0.0.1:1/w\n  queue_config: {max_shards: 0}\n"],
  ["exemplars -1", "storage:\n  exemplars: {max_exemplars: -1}\n"],
  ["exemplars str", "storage:\n  exemplars: {max_exemplars: x}\n"],
  ["gogc -1", "runtime: {gogc: -1}\n"],
  [
    "rw sigv4+authorization",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  sigv4: {region: x}\n  authorization: {credentials: c}\n",
  ],
  [
    "rw oauth2+basic",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  oauth2: {client_id: a, token_url: 'http://127.0.0.1:1'}\n  basic_auth: {username: u}\n",
  ],
  [
    "rw google+sigv4",
    "remote_write:\n- url: http://127.0.0.1:1/w\n  google_iam: {credentials_file: f}\n  sigv4: {region: x}\n",
  ],
  ["rw bearer+sigv4", "remote_write:\n- url: http://127.0.0.1:1/w\n  bearer_token: t\n  sigv4: {region: x}\n"],
  [
    "escaping values",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  metric_name_escaping_scheme: values\n",
  ],
  [
    "escaping allow-utf-8",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  metric_name_escaping_scheme: allow-utf-8\n",
  ],
  [
    "global escaping legacy+allow",
    "global: {metric_name_escaping_scheme: allow-utf-8, metric_name_validation_scheme: legacy}\n",
  ],
  [
    "proto list all",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  scrape_protocols: [OpenMetricsText0.0.1, OpenMetricsText1.0.0, OpenMetricsText2.0.0, PrometheusProto, PrometheusText0.0.4, PrometheusText1.0.0]\n",
  ],
  [
    "proto empty list",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  scrape_protocols: []\n",
  ],
  [
    "fallback empty",
    "scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['127.0.0.1:9']}]\n  fallback_scrape_protocol: ''\n",
  ],
  ["rr matchers empty", "remote_read:\n- url: http://127.0.0.1:1/r\n  required_matchers: {}\n"],
  ["otlp strategies", "otlp: {translation_strategy: UnderscoreEscapingWithSuffixes}\n"],
  ["otlp strategies2", "otlp: {translation_strategy: NoTranslation}\n"],
  ["otlp strategies3", "otlp: {translation_strategy: UnderscoreEscapingWithoutSuffixes}\n"],
  ["otlp strategies4", "otlp: {translation_strategy: NoUTF8EscapingWithSuffixes}\n"],
  ["global query_max_duration", "global: {query_max_duration: x}\n"],
  ["global query_max_series neg", "global: {query_max_series: -1}\n"],
  ["ooo 0", "storage:\n  tsdb: {out_of_order_time_window: 0s}\n"],
  ["retention size 0", "storage:\n  tsdb:\n    retention: {size: 0}\n"],
  ["retention percentage 200", "storage:\n  tsdb:\n    retention: {percentage: 200}\n"],
  ["retention percentage str", "storage:\n  tsdb:\n    retention: {percentage: x}\n"],
  [
    "global allow-utf-8 escaping inherited by a legacy job",
    "global: {metric_name_escaping_scheme: allow-utf-8, metric_name_validation_scheme: legacy}\nscrape_configs:\n- job_name: a\n",
  ],
  [
    "job allow-utf-8 escaping, global legacy names",
    "global: {metric_name_validation_scheme: legacy}\nscrape_configs:\n- job_name: a\n  metric_name_escaping_scheme: allow-utf-8\n",
  ],
  ["alertmanager file_sd", "alerting:\n  alertmanagers:\n  - file_sd_configs: [{files: [am/*.json]}]\n"],
];

describe("check config accepts and refuses as promtool does", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-check-promtool-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const bin of prometheusBinaries()) {
    it(`promtool ${bin.version}: ${CASES.length + VALUE_CASES.length} configs`, { timeout: 120_000 }, async () => {
      const differ: string[] = [];
      for (const [i, [name, config]] of [...CASES, ...VALUE_CASES].entries()) {
        const file = join(dir, `c${i}.yml`);
        writeFileSync(file, config);
        const theirs = await promtoolCheckConfig(bin, file, ["--syntax-only"]);
        let out = "";
        const sink = new Writable({
          write(chunk, _enc, done) {
            out += String(chunk);
            done();
          },
        });
        const code = await runCommand(
          root,
          ["check", "config", "--syntax-only", "--prometheus.version", bin.version, file],
          { stdout: sink, stderr: sink },
        );
        if (theirs.ok !== (code === 0)) {
          differ.push(
            `${name}: promtool ${theirs.ok ? "accepts" : "refuses"}, promshard ${code === 0 ? "accepts" : "refuses"}\n  promtool: ${theirs.output.trim().split("\n").slice(1).join(" / ")}\n  promshard: ${out.trim().split("\n").slice(1).join(" / ")}`,
          );
        }
      }
      assert.deepEqual(differ, [], differ.join("\n"));
    });
  }
});
