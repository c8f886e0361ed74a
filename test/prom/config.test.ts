import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PromshardErrors } from "../../src/errors.ts";
import { joinDir, parseConfig } from "../../src/prom/config.ts";
import { formatDuration, parseDuration } from "../../src/prom/duration.ts";
import { dialectFor } from "../../src/prom/version.ts";

const v3 = dialectFor("3.16");
const v2 = dialectFor("2.42");

function errorsOf(yaml: string, dialect = v3): string[] {
  try {
    parseConfig(yaml, { dialect });
  } catch (err) {
    assert.ok(err instanceof PromshardErrors, String(err));
    return err.errors.map((e) => e.message);
  }
  return [];
}

describe("config defaults", () => {
  it("fills Prometheus's global and job defaults", () => {
    const c = parseConfig("scrape_configs:\n- job_name: a\n", { dialect: v3 });
    assert.equal(c.global.scrapeIntervalMs, 60_000);
    assert.equal(c.global.scrapeTimeoutMs, 10_000);
    assert.equal(c.global.evaluationIntervalMs, 60_000);
    const j = c.scrapeConfigs[0]!;
    assert.equal(j.metricsPath, "/metrics");
    assert.equal(j.scheme, "http");
    assert.equal(j.honorLabels, false);
    assert.equal(j.honorTimestamps, true);
    assert.equal(j.scrapeIntervalMs, 60_000);
    assert.equal(j.scrapeTimeoutMs, 10_000);
  });

  it("caps a defaulted timeout at the job's interval", () => {
    const c = parseConfig("scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n", { dialect: v3 });
    assert.equal(c.scrapeConfigs[0]!.scrapeTimeoutMs, 5_000);
  });

  it("an empty document is a valid config", () => {
    assert.equal(parseConfig("", { dialect: v3 }).scrapeConfigs.length, 0);
  });

  it("keeps what it does not model, for a lossless round trip", () => {
    const c = parseConfig(
      "remote_write:\n- url: http://x/api\n  write_relabel_configs: []\nalerting:\n  alertmanagers: []\nscrape_configs:\n- job_name: a\n  tls_config: {insecure_skip_verify: true}\n  consul_sd_configs: [{server: 'c:8500'}]\n",
      { dialect: v3 },
    );
    assert.deepEqual(c.raw.remote_write, [{ url: "http://x/api", write_relabel_configs: [] }]);
    assert.deepEqual(c.scrapeConfigs[0]!.raw.tls_config, { insecure_skip_verify: true });
    assert.deepEqual(c.scrapeConfigs[0]!.serviceDiscovery, [
      { mechanism: "consul", index: 0, raw: { server: "c:8500" } },
    ]);
  });

  it("metric_name_validation_scheme: legacy makes a job's relabeling use legacy names", () => {
    const errs = errorsOf(
      "scrape_configs:\n- job_name: a\n  metric_name_validation_scheme: legacy\n  relabel_configs:\n  - {action: hashmod, source_labels: [x], modulus: 2, target_label: 'a.b'}\n",
    );
    assert.equal(errs.length, 1);
    assert.match(errs[0]!, /target_label/);
  });
});

describe("config validation names the field and lists every error", () => {
  const cases: { name: string; yaml: string; want: RegExp[]; dialect?: typeof v2 }[] = [
    {
      name: "duplicate job names",
      yaml: "scrape_configs:\n- job_name: a\n- job_name: a\n",
      want: [/scrape_configs\[1\]\.job_name: job "a" is already defined at scrape_configs\[0\]/],
    },
    {
      name: "timeout greater than interval",
      yaml: "scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 10s\n",
      want: [/scrape_configs\[0\] \(job "a"\)\.scrape_timeout: scrape_timeout 10s is greater than scrape_interval 5s/],
    },
    {
      name: "global timeout greater than interval",
      yaml: "global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n",
      want: [/global\.scrape_timeout/],
    },
    {
      name: "bad duration",
      yaml: "global:\n  scrape_interval: 5 seconds\n",
      want: [/global\.scrape_interval: not a valid duration/],
    },
    {
      name: "bad regex",
      yaml: "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {source_labels: [x], regex: '(', target_label: y}\n",
      want: [/relabel_configs\[0\]\.regex/],
    },
    {
      name: "unknown field",
      yaml: "scrape_configs:\n- job_name: a\n  scrape_intervall: 5s\n",
      want: [/scrape_intervall: unknown field/],
    },
    {
      name: "a 3.x-only field under 2.42",
      yaml: "scrape_configs:\n- job_name: a\n  enable_compression: false\n",
      want: [/enable_compression: unknown field/],
      dialect: v2,
    },
    { name: "empty job name", yaml: "scrape_configs:\n- job_name: ''\n", want: [/job_name is empty/] },
    {
      name: "null scrape config",
      yaml: "scrape_configs:\n- \n",
      want: [/scrape_configs\[0\]: empty or null scrape config/],
    },
    {
      name: "bad external label",
      yaml: "global:\n  external_labels:\n    bad-name: x\n",
      want: [/external_labels\.bad-name/],
      dialect: v2,
    },
    {
      name: "static target given as a URL",
      yaml: "scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: ['http://x:1/metrics']\n",
      want: [/not a valid hostname/],
    },
    {
      name: "file_sd pattern with a bad extension",
      yaml: "scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - files: ['targets.txt']\n",
      want: [/files\[0\]: "targets.txt" is not valid for file discovery/],
    },
    {
      name: "conflicting credentials",
      yaml: "scrape_configs:\n- job_name: a\n  bearer_token: x\n  bearer_token_file: y\n",
      want: [/at most one of bearer_token & bearer_token_file must be configured/],
    },
    {
      name: "YAML syntax error with line and column",
      yaml: "scrape_configs:\n  - job_name: [a\n",
      want: [/prometheus\.yml:\d+:\d+: YAML/],
    },
    {
      name: "several errors at once",
      yaml: "scrape_configs:\n- job_name: a\n  scrape_interval: x\n- job_name: b\n  relabel_configs:\n  - {action: nope}\n",
      want: [/scrape_interval/, /action: unknown relabel action "nope"/],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const errs = errorsOf(c.yaml, c.dialect ?? v3);
      assert.equal(errs.length, c.want.length, errs.join("\n"));
      for (const [i, re] of c.want.entries()) assert.match(errs[i]!, re);
    });
  }
});

describe("relative paths join the config's directory as Go's filepath.Join does", () => {
  const cases: [string, string, string][] = [
    ["/etc/prometheus", "targets/a.json", "/etc/prometheus/targets/a.json"],
    ["/etc/prometheus", "./targets/../b.json", "/etc/prometheus/b.json"],
    ["/etc/prometheus", "/abs/c.json", "/abs/c.json"],
    [".", "d.json", "d.json"],
    ["conf", "./e/", "conf/e"],
    ["/etc/prometheus", "", ""],
  ];
  for (const [dir, file, want] of cases) it(`${dir} + ${file} = ${want}`, () => assert.equal(joinDir(dir, file), want));
});

describe("durations", () => {
  const cases: [string, number, string][] = [
    ["0", 0, "0s"],
    ["15s", 15_000, "15s"],
    ["90s", 90_000, "1m30s"],
    ["1h30m", 5_400_000, "1h30m"],
    ["2w", 1_209_600_000, "2w"],
    ["8d", 691_200_000, "8d"],
    ["14d", 1_209_600_000, "2w"],
    ["100ms", 100, "100ms"],
  ];
  for (const [text, ms, formatted] of cases) {
    it(`${text} = ${ms} ms, printed ${formatted}`, () => {
      assert.equal(parseDuration(text), ms);
      assert.equal(formatDuration(ms), formatted);
    });
  }
  for (const bad of ["", "1", "1m1h", "1.5s", "-1s", "1s1s"]) {
    it(`refuses "${bad}"`, () => assert.equal(typeof parseDuration(bad), "object"));
  }
});
