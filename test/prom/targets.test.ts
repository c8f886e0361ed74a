import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../../src/prom/config.ts";
import { scrapeUrl, sdLabels, splitHostPort, type TargetGroup, targetsForJob } from "../../src/prom/targets.ts";
import { dialectFor } from "../../src/prom/version.ts";

function job(yaml: string, version = "3.16") {
  const config = parseConfig(`scrape_configs:\n${yaml}`, { dialect: dialectFor(version) });
  return config.scrapeConfigs[0]!;
}

const group = (targets: string[], labels: Record<string, string> = {}): TargetGroup => ({
  source: "0",
  targets: targets.map((t) => ({ __address__: t })),
  labels,
});

describe("target building", () => {
  it("adds job, interval, timeout, path and scheme to discovered labels, and instance to labels", () => {
    const j = job("- job_name: node\n  scrape_interval: 30s\n");
    const set = targetsForJob([group(["a:9100"], { env: "prod" })], j);
    assert.equal(set.active.length, 1);
    const t = set.active[0]!;
    assert.deepEqual(t.discoveredLabels, {
      __address__: "a:9100",
      __always_scrape_classic_histograms__: "false",
      __convert_classic_histograms_to_nhcb__: "false",
      __metrics_path__: "/metrics",
      __scheme__: "http",
      __scrape_interval__: "30s",
      __scrape_native_histograms__: "false",
      __scrape_timeout__: "10s",
      env: "prod",
      job: "node",
    });
    assert.deepEqual(t.labels, { env: "prod", instance: "a:9100", job: "node" });
    assert.equal(t.scrapeUrl, "http://a:9100/metrics");
  });

  it("labels named like Object.prototype's properties are labels like any other", () => {
    const j = job(
      '- job_name: node\n  static_configs:\n  - targets: ["a:9100"]\n    labels: {constructor: c, toString: t, __proto__: p, hasOwnProperty: h}\n',
    );
    const sd = j.serviceDiscovery[0];
    assert.ok(sd?.mechanism === "static" && "groups" in sd);
    const t = targetsForJob(sd.groups, j).active[0]!;
    assert.deepEqual(Object.keys(t.labels), ["constructor", "hasOwnProperty", "instance", "job", "toString"]);
    assert.equal(Object.getOwnPropertyDescriptor(t.discoveredLabels, "__proto__")?.value, "p");
    assert.equal(Object.getPrototypeOf(t.discoveredLabels), Object.prototype);
    const fromSd = sdLabels({ __address__: "a:1" }, { constructor: "c", ["__proto__"]: "p" });
    assert.deepEqual(Object.keys(fromSd), ["__address__", "__proto__", "constructor"]);
  });

  it("Prometheus 2 adds the scheme's default port; 3 does not", () => {
    const y = "- job_name: x\n  scheme: https\n";
    assert.equal(targetsForJob([group(["host"])], job(y, "2.42")).active[0]!.labels.instance, "host:443");
    assert.equal(targetsForJob([group(["host"])], job(y, "3.16")).active[0]!.labels.instance, "host");
  });

  it("params become __param_ labels; 2.x lets the job override discovery, 3.x the reverse", () => {
    const y = "- job_name: blackbox\n  params:\n    module: [http_2xx]\n";
    const g = group(["a:1"], { __param_module: "from_sd" });
    assert.equal(targetsForJob([g], job(y, "2.42")).active[0]!.internalLabels.__param_module, "http_2xx");
    assert.equal(targetsForJob([g], job(y, "3.16")).active[0]!.internalLabels.__param_module, "from_sd");
  });

  it("drops __meta_ labels after relabeling and keeps discovered labels of dropped targets", () => {
    const j = job(
      "- job_name: k\n  relabel_configs:\n  - {action: keep, source_labels: [__meta_keep], regex: 'yes'}\n  - {source_labels: [__meta_keep], target_label: kept}\n",
    );
    const set = targetsForJob([group(["a:1"], { __meta_keep: "yes" }), group(["b:1"], { __meta_keep: "no" })], j);
    assert.deepEqual(set.active[0]!.labels, { instance: "a:1", job: "k", kept: "yes" });
    assert.equal(set.dropped.length, 1);
    assert.equal(set.dropped[0]!.discoveredLabels.__meta_keep, "no");
  });

  it("reports targets Prometheus refuses instead of dropping them silently", () => {
    const j = job(
      "- job_name: k\n  relabel_configs:\n  - {source_labels: [__address__], target_label: __address__, regex: '(.*)', replacement: 'http://$1/x'}\n",
    );
    const set = targetsForJob([group(["a:1"])], j);
    assert.equal(set.active.length, 0);
    assert.equal(set.failures.length, 1);
    assert.match(set.failures[0]!.error, /not a valid hostname/);
  });

  it("a relabeled __scrape_timeout__ above the interval is refused", () => {
    const j = job("- job_name: k\n  relabel_configs:\n  - {target_label: __scrape_timeout__, replacement: 2h}\n");
    assert.match(targetsForJob([group(["a:1"])], j).failures[0]!.error, /timeout cannot be greater/);
  });

  it("collapses duplicate targets like a scrape pool does", () => {
    const set = targetsForJob([group(["a:1", "a:1"]), group(["a:1"])], job("- job_name: k\n"));
    assert.equal(set.active.length, 1);
  });
});

describe("scrape URL", () => {
  it("encodes params sorted, with the first value replaced by a __param_ label", () => {
    const url = scrapeUrl(
      { __scheme__: "http", __address__: "h:1", __metrics_path__: "/probe path", __param_target: "x y&z" },
      { target: ["a", "b"], module: ["http_2xx"] },
    );
    assert.equal(url, "http://h:1/probe%20path?module=http_2xx&target=x+y%26z&target=b");
  });
});

describe("net.SplitHostPort", () => {
  const cases: [string, boolean][] = [
    ["a:1", true],
    ["a", false],
    ["[::1]:9", true],
    ["[::1]", false],
    ["::1", false],
    ["a:b:1", false],
    ["[a]b:1", false],
    ["a]:1", false],
    [":80", true],
    ["a:", true],
  ];
  for (const [addr, ok] of cases) it(`${addr} -> ${ok}`, () => assert.equal(splitHostPort(addr), ok));
});
