/**
 * Random but valid Prometheus scrape jobs for the differential tests: file_sd and static
 * target groups with `__meta_*` labels, and relabel rules of every action, built so that a
 * real Prometheus accepts them. Values include newlines, unicode and empty strings, so
 * dot-all regexes, Go's case mapping and empty-value handling are all exercised.
 */
import fc from "fast-check";

/**
 * Every generated job scrapes through this proxy, a loopback port nothing listens on. Relabeling
 * can turn any label value into `__address__` ("web", "a.b:80"), so loopback addresses alone
 * cannot keep Prometheus from resolving or dialling a name; with a fixed proxy_url Go's client
 * dials only the proxy, for http and https alike, and resolves nothing itself. Neither the
 * targets nor their labels depend on it, so what the tests compare is unchanged.
 */
export const NO_EGRESS_PROXY = "http://127.0.0.1:1";

export interface GeneratedGroup {
  targets: string[];
  labels: Record<string, string>;
}

export interface GeneratedJob {
  job: Record<string, unknown>;
  /** Groups to write to the job's file_sd file (JSON). */
  fileGroups: GeneratedGroup[];
  /** Groups to put in static_configs. */
  staticGroups: GeneratedGroup[];
}

const META_NAMES = [
  "__meta_kubernetes_namespace",
  "__meta_kubernetes_pod_name",
  "__meta_kubernetes_pod_label_app",
  "__meta_kubernetes_pod_label_app_kubernetes_io_name",
  "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
  "__meta_kubernetes_pod_annotation_prometheus_io_port",
  "__meta_kubernetes_pod_annotation_prometheus_io_path",
  "__meta_kubernetes_pod_annotation_prometheus_io_scheme",
  "__meta_kubernetes_pod_container_port_number",
  "__meta_kubernetes_pod_node_name",
  "__meta_env",
  "__meta_zone",
];
const PLAIN_NAMES = ["env", "team", "app", "region", "tier", "job", "instance", "__param_target", "__metrics_path__"];

const valueArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      "true",
      "false",
      "web",
      "api",
      "monitoring",
      "kube-system",
      "9100",
      "8080",
      "/metrics",
      "/probe",
      "https",
      "http",
      "Prod",
      "DEV",
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom("", "a\nb", "line1\nline2\n", "ÄÖÜ straße", "İstanbul", "ǅ", "ﬀ", "σΣς", "日本", "😀x"),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-zA-Z0-9_.:/-]{0,12}$/) },
);

const hostArb = fc.oneof(
  fc.constantFrom("127.0.0.1:1", "127.0.0.2", "localhost:9", "[::1]:9", "[::1]", "localhost:9100", "127.0.0.10:8080"),
  fc.integer({ min: 1, max: 250 }).map((n) => `127.0.${n % 250}.${(n * 7) % 250}:${1000 + n}`),
);

const groupArb: fc.Arbitrary<GeneratedGroup> = fc.record({
  targets: fc.uniqueArray(hostArb, { minLength: 1, maxLength: 3 }),
  labels: fc.dictionary(fc.constantFrom(...META_NAMES, ...PLAIN_NAMES.filter((n) => n !== "job" || true)), valueArb, {
    maxKeys: 6,
  }),
});

/** Regexes a user writes, plus random literal alternations built from the value pool. */
const regexArb = fc.oneof(
  fc.constantFrom(
    "(.*)",
    "(.+)",
    "true",
    "web|api",
    "(.*):(\\d+)",
    "([^:]+)(?::\\d+)?;(\\d+)",
    "([^:]+)(?::\\d+)?",
    "(?i)PROD|dev",
    "a.b",
    ".*\\n.*",
    "(?P<first>[a-z]+)(.*)",
    "(\\w+)-(\\w+)",
    "[[:alpha:]]+",
    "\\pL+",
    "",
    "(.)(.)",
    "x*",
  ),
  fc
    .uniqueArray(fc.constantFrom("web", "api", "monitoring", "9100", "true", "Prod"), { minLength: 1, maxLength: 3 })
    .map((a) => a.join("|")),
);

const templateArb = fc.constantFrom(
  "$1",
  "${1}",
  "$2",
  "${2}",
  "$1:$2",
  "${first}",
  "$first_x",
  "${1}_x",
  "$1x",
  "x",
  "",
  "$$1",
  "$0",
  "${1}${2}",
);
const targetLabelArb = fc.constantFrom(
  "env",
  "team",
  "app",
  "instance",
  "__address__",
  "__metrics_path__",
  "__scheme__",
  "__param_target",
  "job",
  "new_label",
  "__tmp_x",
);
const templatedTargetArb = fc.constantFrom("$1", "${1}_label", "lbl_$2", "${first}");
const sourcesArb = fc.uniqueArray(
  fc.constantFrom(...META_NAMES, ...PLAIN_NAMES, "__address__", "__scheme__", "__scrape_interval__", "missing"),
  {
    minLength: 1,
    maxLength: 3,
  },
);

type Rule = Record<string, unknown>;
const ruleArb: fc.Arbitrary<Rule> = fc.oneof(
  fc.record(
    {
      source_labels: sourcesArb,
      separator: fc.constantFrom(";", ":", "", "-"),
      regex: regexArb,
      target_label: fc.oneof({ weight: 4, arbitrary: targetLabelArb }, { weight: 1, arbitrary: templatedTargetArb }),
      replacement: templateArb,
    },
    { requiredKeys: ["source_labels", "target_label"] },
  ),
  fc.record(
    { action: fc.constantFrom("keep", "drop"), source_labels: sourcesArb, regex: regexArb },
    { requiredKeys: ["action", "source_labels"] },
  ),
  fc.record({
    action: fc.constantFrom("keepequal", "dropequal"),
    source_labels: sourcesArb,
    target_label: targetLabelArb,
  }),
  fc.record({
    action: fc.constant("hashmod"),
    source_labels: sourcesArb,
    modulus: fc.constantFrom(1, 2, 3, 7, 1000, 4294967296),
    target_label: fc.constantFrom("__tmp_hash", "shard"),
  }),
  fc.record({
    action: fc.constantFrom("lowercase", "uppercase"),
    source_labels: sourcesArb,
    target_label: targetLabelArb,
  }),
  // labelmap regexes whose renames never collide: Prometheus 3 walks labels in insertion
  // order, so colliding renames would make its own result depend on Go map order.
  fc.record({
    action: fc.constant("labelmap"),
    regex: fc.constantFrom("__meta_kubernetes_pod_label_(.+)", "__meta_(.+)", "__meta_(env|zone)", "__param_(.+)"),
    replacement: fc.constantFrom("$1", "k8s_$1", "${1}_copy"),
  }),
  fc.record({
    action: fc.constantFrom("labeldrop", "labelkeep"),
    regex: fc.constantFrom(
      "__meta_env",
      "env|team",
      "__meta_kubernetes_pod_label_.+",
      "(?:__|instance|job|env).*",
      "tier",
    ),
  }),
);

/** Actions the YAML spells in capitals too: Prometheus lower-cases them. */
const actionCaseArb = fc.constantFrom(
  (s: string) => s,
  (s: string) => s.toUpperCase(),
);

export function jobArb(name: string, major: number): fc.Arbitrary<GeneratedJob> {
  return fc
    .record({
      scheme: fc.constantFrom(undefined, "http", "https"),
      metrics_path: fc.constantFrom(undefined, "/metrics", "/federate", "/probe path", "/ü"),
      params: fc.option(
        fc.dictionary(
          fc.constantFrom("module", "target", "match[]"),
          fc.array(fc.constantFrom("http_2xx", "up", "a b", ""), { minLength: 0, maxLength: 2 }),
          { maxKeys: 2 },
        ),
        { nil: undefined },
      ),
      interval: fc.constantFrom(undefined, "30s", "1h", "90s"),
      timeout: fc.constantFrom(undefined, "5s", "10s"),
      rules: fc.array(fc.tuple(ruleArb, actionCaseArb), { maxLength: 6 }),
      fileGroups: fc.array(groupArb, { minLength: 0, maxLength: 3 }),
      staticGroups: fc.array(groupArb, { maxLength: 1 }),
      honorLegacy: fc.boolean(),
    })
    .map((r) => {
      const job: Record<string, unknown> = { job_name: name, proxy_url: NO_EGRESS_PROXY };
      if (r.scheme) job.scheme = r.scheme;
      if (r.metrics_path) job.metrics_path = r.metrics_path;
      if (r.params && Object.keys(r.params).length > 0) job.params = r.params;
      if (r.interval) job.scrape_interval = r.interval;
      if (r.timeout) job.scrape_timeout = r.timeout;
      if (major >= 3 && r.honorLegacy) job.metric_name_validation_scheme = "legacy";
      const rules = r.rules.map(([rule, cased]) =>
        typeof rule.action === "string" ? { ...rule, action: cased(rule.action) } : rule,
      );
      if (rules.length > 0) job.relabel_configs = rules;
      // Static targets must be host:port without relabeling; the generator keeps them so.
      // One address per job: Prometheus shows a duplicate's discovered labels from whichever
      // group its map order visits last, which no one can predict.
      const seen = new Set<string>();
      const unique = (g: GeneratedGroup) => ({ ...g, targets: g.targets.filter((t) => !seen.has(t) && seen.add(t)) });
      const fileGroups = r.fileGroups.map(unique).filter((g) => g.targets.length > 0);
      const staticGroups = r.staticGroups.map(unique).filter((g) => g.targets.length > 0);
      return { job, fileGroups, staticGroups };
    });
}

/** `count` jobs, reproducible from `seed`. */
export function generateJobs(count: number, seed: number, major: number): GeneratedJob[] {
  return Array.from(
    { length: count },
    (_, i) => fc.sample(jobArb(`case_${i}`, major), { seed: seed + i, numRuns: 1 })[0]!,
  );
}
