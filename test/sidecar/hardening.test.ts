/**
 * The sidecar against what leaves targets unscraped or secrets readable (issue 14), in process
 * and without a Prometheus: a corrupt assignment file keeps the target files; label names are
 * checked by the shard's Prometheus version; an unknown job is left out, not the whole push;
 * files that hold the config's credentials are not world-readable.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dump } from "js-yaml";
import type { AssignedTarget } from "../../src/contract/assignment.ts";
import { createLogger } from "../../src/observability/log.ts";
import { outputFileMode, Sidecar } from "../../src/sidecar/sidecar.ts";
import { type PromProxy, sidecarClient, startProxy } from "../fixtures/sidecar/harness.ts";

const TOKEN = "hardening-token-1";
const SECRET = "pw-in-config-7";

const ORIGINAL = {
  scrape_configs: [
    {
      job_name: "a",
      basic_auth: { username: "u", password: SECRET },
      static_configs: [{ targets: ["10.0.0.1:9100", "10.0.0.2:9100"] }],
    },
  ],
};

const t1: AssignedTarget = { job: "a", labels: { __address__: "10.0.0.1:9100" }, sdIndex: 0 };
const t2: AssignedTarget = { job: "a", labels: { __address__: "10.0.0.2:9100" }, sdIndex: 0 };

function targetFiles(out: string): Record<string, string> {
  const dir = join(out, "targets");
  const res: Record<string, string> = {};
  for (const job of readdirSync(dir))
    for (const f of readdirSync(join(dir, job))) res[`${job}/${f}`] = readFileSync(join(dir, job, f), "utf8");
  return res;
}

describe("sidecar hardening (Prometheus 2.42 dialect)", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-sidecar-hardening-"));
  const configFile = join(dir, "prometheus.yml");
  const out = join(dir, "out");
  const state = join(dir, "state");
  let proxy: PromProxy;
  let sidecar: Sidecar;
  let api: ReturnType<typeof sidecarClient>;
  const start = async () => {
    sidecar = new Sidecar({
      configFile,
      prometheusUrl: proxy.url,
      outputDir: out,
      stateDir: state,
      listen: "127.0.0.1:0",
      tokenFile: join(dir, "token"),
      identity: { shard: 0, replica: "0" },
      prometheusVersion: "2.42",
      configCheckIntervalMs: 60_000,
      log: createLogger({ component: "sidecar", level: "silent" }),
    });
    await sidecar.start();
    api = sidecarClient(sidecar.url, TOKEN);
  };
  before(async () => {
    writeFileSync(configFile, dump(ORIGINAL));
    writeFileSync(join(dir, "token"), TOKEN);
    proxy = await startProxy();
    await proxy.down();
    await start();
  });
  after(async () => {
    await sidecar?.stop();
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("files holding the config's credentials are not world-readable", async () => {
    assert.equal((await api.assign(1, [t1])).status, 200);
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.ok(readFileSync(join(out, "prometheus.yml"), "utf8").includes(SECRET));
    assert.equal(mode(join(out, "prometheus.yml")), 0o640, "Prometheus (another container) reads it by group");
    assert.equal(mode(join(state, "last-good-config.yml")), 0o600);
    assert.equal(mode(join(state, "assignment.json")), 0o600);
  });

  it("checks label names by the shard's version: 2.x refuses a name outside the legacy charset", async () => {
    const before_ = targetFiles(out);
    const bad = { ...t2, labels: { ...t2.labels, "bad name\n": "x" } };
    const res = await api.assign(2, [t1, bad]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const rejected = res.body.rejected as { index: number; problems: string[] }[];
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]!.index, 1);
    assert.match(rejected[0]!.problems[0]!, /not a valid label name for Prometheus 2\.42/);
    assert.deepEqual(targetFiles(out), before_, "the bad target was not written; the good one stays");
  });

  it("applies the valid targets of a push with an unknown job and lists the rest", async () => {
    const res = await api.assign(3, [t1, { job: "new-job", labels: { __address__: "10.9.9.9:1" } }, t2]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.targets, 2);
    assert.deepEqual(
      (res.body.rejected as { index: number; job: string; address: string }[]).map((r) => [r.index, r.job, r.address]),
      [[1, "new-job", "10.9.9.9:1"]],
    );
    assert.match(JSON.stringify(targetFiles(out)), /10\.0\.0\.2:9100/);
    assert.equal((await api.runtime()).assignment?.version, 3);
  });

  it("refuses an __address__ the job's static_configs never named (the job's credentials stay with its hosts)", async () => {
    const res = await api.assign(3, [
      t1,
      t2,
      { job: "a", labels: { __address__: "attacker.example:443" }, sdIndex: 0 },
    ]);
    assert.equal(res.status, 200);
    const rejected = res.body.rejected as { index: number; problems: string[] }[];
    assert.deepEqual(
      rejected.map((r) => r.index),
      [2],
    );
    assert.match(rejected[0]!.problems[0]!, /not among the static_configs targets of job "a"/);
    assert.doesNotMatch(JSON.stringify(targetFiles(out)), /attacker/);
  });

  it("a corrupt assignment file at start keeps the target files on disk (the last good state)", async () => {
    const kept = targetFiles(out);
    assert.match(JSON.stringify(kept), /10\.0\.0\.1:9100/);
    await sidecar.stop();
    writeFileSync(join(state, "assignment.json"), '{"format":1,"version":3,"tar');
    await start();
    assert.deepEqual(targetFiles(out), kept, "no target file emptied or removed");
    assert.ok(readdirSync(state).some((f) => f.startsWith("assignment.json.corrupt-")));
    // The next push is the new truth.
    assert.equal((await api.assign(4, [t2])).status, 200);
    assert.doesNotMatch(JSON.stringify(targetFiles(out)), /10\.0\.0\.1:9100/);
  });
});

describe("the generated config's mode", () => {
  it("0640 where Prometheus shares a group (a pod's fsGroup: setgid emptyDir) or outside a pod; else 0644 with a warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-mode-"));
    try {
      const plain = join(dir, "plain");
      const fsGroup = join(dir, "fsgroup");
      mkdirSync(plain);
      mkdirSync(fsGroup);
      chmodSync(fsGroup, 0o2775);
      const pod = { KUBERNETES_SERVICE_HOST: "10.96.0.1" };
      assert.deepEqual(outputFileMode(plain, {}), { mode: 0o640 });
      assert.deepEqual(outputFileMode(fsGroup, pod), { mode: 0o640 });
      const open = outputFileMode(plain, pod);
      assert.equal(open.mode, 0o644);
      assert.match(open.warning ?? "", /securityContext\.fsGroup/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
