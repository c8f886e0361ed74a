/**
 * The sidecar's API and its handling of bad input, in process and without a Prometheus
 * (nothing here needs one; the proxy refuses connections as a stopped Prometheus does):
 * bearer token (401/403), malformed assignments (400, nothing changed), targets it cannot
 * apply (an unknown job: left out and listed, the rest applied),
 * older versions (409), body limit (413), a config that fails validation (the previous good
 * shard config stays, the error is in the runtime and a metric), probes and metrics.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dump, load } from "js-yaml";
import type { AssignedTarget } from "../../src/contract/assignment.ts";
import { createLogger } from "../../src/observability/log.ts";
import { Sidecar } from "../../src/sidecar/sidecar.ts";
import { type PromProxy, sidecarClient, startProxy, until } from "../fixtures/sidecar/harness.ts";

const TOKEN = "api-token-42";

const ORIGINAL = {
  global: { scrape_interval: "15s" },
  scrape_configs: [
    { job_name: "a", static_configs: [{ targets: ["10.0.0.1:9100", "10.0.0.2:9100"] }] },
    { job_name: "b", metrics_path: "/m", static_configs: [{ targets: ["10.0.0.3:80"] }] },
  ],
};

function targetsIn(out: string): Record<string, { content: string; mtime: number }> {
  const dir = join(out, "targets");
  const res: Record<string, { content: string; mtime: number }> = {};
  for (const job of readdirSync(dir)) {
    for (const f of readdirSync(join(dir, job))) {
      const p = join(dir, job, f);
      res[`${job}/${f}`] = { content: readFileSync(p, "utf8"), mtime: statSync(p).mtimeMs };
    }
  }
  return res;
}

const t1: AssignedTarget = { job: "a", labels: { __address__: "10.0.0.1:9100" }, sdIndex: 0 };
const t3: AssignedTarget = { job: "b", labels: { __address__: "10.0.0.3:80" }, sdIndex: 0 };

describe("sidecar API", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-sidecar-api-"));
  const configFile = join(dir, "prometheus.yml");
  const out = join(dir, "out");
  let proxy: PromProxy;
  let sidecar: Sidecar;
  let api: ReturnType<typeof sidecarClient>;
  /** The sidecar on this test's files; started again (same state dir) by the restart test. */
  const startSidecar = async () => {
    sidecar = new Sidecar({
      configFile,
      prometheusUrl: proxy.url,
      outputDir: out,
      stateDir: join(dir, "state"),
      listen: "127.0.0.1:0",
      tokenFile: join(dir, "token"),
      identity: { shard: 1, replica: "0" },
      prometheusVersion: "3.16",
      configCheckIntervalMs: 200,
      bodyLimit: 64 * 1024,
      log: createLogger({ component: "sidecar", level: "silent" }),
    });
    await sidecar.start();
    api = sidecarClient(sidecar.url, TOKEN);
  };

  before(async () => {
    writeFileSync(configFile, dump(ORIGINAL));
    writeFileSync(join(dir, "token"), `${TOKEN}\n`);
    proxy = await startProxy();
    await proxy.down();
    await startSidecar();
  });
  after(async () => {
    await sidecar?.stop();
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("wants a bearer token: 401 without or with a malformed header, 403 with a wrong one", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/runtime"],
      ["PUT", "/api/v1/assignment"],
    ] as const) {
      const none = await fetch(`${sidecar.url}${path}`, { method });
      assert.equal(none.status, 401, `${method} ${path}`);
      assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.match(((await none.json()) as { error: string }).error, /Authorization: Bearer/);
      for (const header of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", TOKEN]) {
        const bad = await fetch(`${sidecar.url}${path}`, { method, headers: { authorization: header } });
        assert.equal(bad.status, 401, `${method} ${path} with "${header}"`);
      }
      const wrong = await fetch(`${sidecar.url}${path}`, { method, headers: { authorization: "Bearer nope" } });
      assert.equal(wrong.status, 403);
      assert.match(((await wrong.json()) as { error: string }).error, /not this sidecar's token/);
    }
    assert.equal((await api.call("GET", "/api/v1/runtime")).status, 200);
  });

  it("refuses malformed assignments with 400 and a reason, changing nothing", async () => {
    assert.equal((await api.assign(3, [t1])).status, 200);
    const before = targetsIn(out);
    const cases: [string, unknown, RegExp][] = [
      ["not JSON", '{"version": 4,', /JSON|Unexpected|Expected/],
      ["not an object", [1, 2], /JSON object with version and targets/],
      ["bad fields", { version: "4", targets: 5, extra: true }, /assignment\.(version|targets|extra)/],
    ];
    for (const [name, body, reason] of cases) {
      const res = await api.call("PUT", "/api/v1/assignment", typeof body === "string" ? body : body);
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error ?? "", reason, name);
      assert.doesNotMatch(JSON.stringify(res.body), /\.ts:\d+|node:internal|at [A-Za-z.]+ \(/, `${name}: no stack`);
    }
    const multi = await api.call("PUT", "/api/v1/assignment", { version: "x", targets: 5, extra: 1 });
    assert.equal((multi.body.problems as string[]).length, 3, "every problem is listed");
    const noType = await api.call("PUT", "/api/v1/assignment", undefined, { "content-type": "text/plain" });
    assert.equal(noType.status, 400);
    assert.deepEqual(targetsIn(out), before, "no target file changed");
    assert.equal((await api.runtime()).assignment?.version, 3);
  });

  it("leaves out the targets it cannot apply, each with a reason, and applies the rest (200)", async () => {
    const before = targetsIn(out);
    const cases: [string, unknown, RegExp][] = [
      ["no address", { job: "a", labels: {} }, /needs __address__/],
      ["non-string label", { job: "a", labels: { __address__: "x:1", n: 1 } }, /labels\."n"/],
      ["sdIndex out of range", { ...t1, labels: { __address__: "10.0.0.2:9100" }, sdIndex: 3 }, /sdIndex/],
      [
        "unknown job",
        { job: "nope", labels: { __address__: "10.9.9.9:1" } },
        /"nope" is not a job of this shard's config/,
      ],
    ];
    for (const [name, target, reason] of cases) {
      const res = await api.call("PUT", "/api/v1/assignment", { version: 3, targets: [t1, target] });
      assert.equal(res.status, 200, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.targets, 1, name);
      const rejected = res.body.rejected as { index: number; problems: string[] }[];
      assert.equal(rejected.length, 1, name);
      assert.equal(rejected[0]!.index, 1, name);
      assert.match(rejected[0]!.problems[0]!, reason, name);
    }
    assert.deepEqual(targetsIn(out), before, "only t1, as before: no target file changed");
  });

  it("refuses an older version with 409 and takes the same or a newer one", async () => {
    assert.equal((await api.assign(5, [t1, t3])).status, 200);
    const older = await api.assign(4, [t1]);
    assert.equal(older.status, 409);
    assert.equal(older.body.appliedVersion, 5);
    assert.match(older.body.error ?? "", /older than the applied version 5/);
    assert.equal((await api.assign(5, [t1, t3])).status, 200, "the same version again is fine");
    const newer = await api.assign(6, [t3]);
    assert.equal(newer.status, 200);
    assert.deepEqual(newer.body.files, { written: 1, removed: 0, unchanged: 1 }, "only job a's file changed");
    const rt = await api.runtime();
    assert.equal(rt.assignment?.version, 6);
    assert.deepEqual(
      rt.targets.map((x) => [x.job, x.address, x.status]),
      [["b", "10.0.0.3:80", "unknown"]],
    );
  });

  it("answers 413 for a body over the limit", async () => {
    const big = {
      version: 7,
      targets: Array.from({ length: 2000 }, (_, i) => ({
        ...t1,
        labels: { __address__: `10.1.${i >> 8}.${i & 255}:1` },
      })),
    };
    const res = await api.call("PUT", "/api/v1/assignment", big);
    assert.equal(res.status, 413);
    assert.match(res.body.error ?? "", /larger than the limit of 64kb/);
  });

  it("says clearly that Prometheus is down, and keeps serving", async () => {
    const rt = await api.runtime();
    assert.equal(rt.prometheus.up, false);
    assert.equal(rt.prometheus.status, "down");
    assert.match(rt.prometheus.error ?? "", new RegExp(`Prometheus at ${proxy.url} is unreachable: ECONNREFUSED`));
    assert.equal(rt.config.reload.state, "pending");
    assert.equal((await fetch(`${sidecar.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${sidecar.url}/readyz`)).status, 200);
  });

  it("keeps the previous good config when the original fails validation, and reports it", async () => {
    const generated = readFileSync(join(out, "prometheus.yml"), "utf8");
    const hash = (await api.runtime()).config.hash;
    const broken = structuredClone(ORIGINAL) as Record<string, unknown>;
    (broken.scrape_configs as Record<string, unknown>[])[0]!.relabel_configs = [{ source_labels: ["x"], regex: "(" }];
    writeFileSync(configFile, dump(broken));
    const rt = await until("config error reported", async () => {
      const r = await api.runtime();
      return !r.config.valid && r;
    });
    assert.match(rt.config.error?.message ?? "", /relabel_configs\[0\]\.regex/);
    assert.equal(rt.config.hash, hash, "the previous good config is still the one in use");
    assert.equal(readFileSync(join(out, "prometheus.yml"), "utf8"), generated);
    const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
    assert.match(metrics, /^promshard_sidecar_config_valid 0$/m);
    assert.match(metrics, /^promshard_sidecar_config_errors_total 1$/m);
    // Assignments are still checked against the good config.
    assert.equal((await api.assign(8, [t1])).status, 200);

    // An external label promshard owns is an error that says so.
    writeFileSync(configFile, dump({ ...ORIGINAL, global: { external_labels: { shard: "x" } } }));
    const clash = await until("clash reported", async () => {
      const r = await api.runtime();
      return /--shard\.label/.test(r.config.error?.message ?? "") && r;
    });
    assert.match(clash.config.error!.message, /global\.external_labels\.shard/);

    writeFileSync(configFile, dump(ORIGINAL));
    await until("config valid again", async () => (await api.runtime()).config.valid);
    assert.match(await (await fetch(`${sidecar.url}/metrics`)).text(), /^promshard_sidecar_config_valid 1$/m);
  });

  it("picks up a config change before validating an assignment that needs it", async () => {
    const withC = structuredClone(ORIGINAL);
    withC.scrape_configs.push({ job_name: "c", static_configs: [{ targets: ["10.0.0.9:1"] }] });
    writeFileSync(configFile, dump(withC));
    // At once, before the watcher or the periodic check could run.
    const res = await api.assign(9, [{ job: "c", labels: { __address__: "10.0.0.9:1" } }]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const generated = load(readFileSync(join(out, "prometheus.yml"), "utf8")) as {
      scrape_configs: { job_name: string }[];
    };
    assert.deepEqual(
      generated.scrape_configs.map((j) => j.job_name),
      ["a", "b", "c"],
    );
  });

  it("serves probes, metrics and JSON 404s", async () => {
    const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
    for (const name of [
      'promshard_sidecar_info{shard="1",replica="0"} 1',
      "promshard_sidecar_assignment_version 9",
      "promshard_sidecar_assigned_targets 1",
      'promshard_sidecar_assignments_total{result="conflict"} 1',
      "process_cpu_seconds_total",
      "promshard_http_request_duration_seconds_bucket",
    ]) {
      assert.ok(metrics.includes(name), `metrics have ${name}`);
    }
    const missing = await fetch(`${sidecar.url}/api/v1/nothing`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /no route for GET/);
  });
  it("started again with a broken config file, runs the last good config from its state dir", async () => {
    const generated = readFileSync(join(out, "prometheus.yml"), "utf8");
    const broken = structuredClone(ORIGINAL) as Record<string, unknown>;
    (broken.scrape_configs as Record<string, unknown>[])[0]!.scrape_interval = "nope";
    await sidecar.stop();
    writeFileSync(configFile, dump(broken));
    rmSync(out, { recursive: true, force: true }); // a new pod: the shared output dir is empty
    await startSidecar();
    await until("the shard config written", async () => readdirSync(out).includes("prometheus.yml"));
    assert.equal(readFileSync(join(out, "prometheus.yml"), "utf8"), generated, "the last good one");
    const rt = await api.runtime();
    assert.equal(rt.config.valid, false, "the broken file is still reported");
    assert.match(rt.config.error?.message ?? "", /scrape_interval/);
    writeFileSync(configFile, dump(ORIGINAL));
    await until("config valid again", async () => (await api.runtime()).config.valid);
  });
});
