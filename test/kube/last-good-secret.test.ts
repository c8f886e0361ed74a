/**
 * The coordinator's last good config in a Secret, read back by a coordinator that starts while
 * its config file is invalid (real kube-apiserver 1.37): it runs that config instead of exiting.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { kubeApi } from "../../src/kube/api.ts";
import { LastGoodSecrets } from "../../src/kube/last-good-secret.ts";
import { sha256 } from "../../src/util/hash.ts";
import { freePort } from "../../src/util/ports.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const NS = "mon";
const log = pino({ level: "silent" });
const GOOD = [
  "global: {scrape_interval: 15s}",
  "scrape_configs:",
  "  - job_name: kept",
  "    static_configs: [{targets: ['127.0.0.1:1']}]",
  "",
].join("\n");

describe("the last good config's Secret", { timeout: 120_000 }, () => {
  let cp: ControlPlane;
  const dir = mkdtempSync(join(tmpdir(), "promshard-last-good-"));
  const children: ChildProcess[] = [];

  before(async () => {
    cp = await startControlPlane();
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: NS } } });
  });
  after(async () => {
    for (const c of children)
      if (c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGTERM");
        await exited;
      }
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is read back by another instance; absent, there is none", async () => {
    const api = kubeApi(cp.kubeconfigPath);
    assert.equal(await new LastGoodSecrets(api, "promshard", log).read([NS]), undefined);
    const writer = new LastGoodSecrets(api, "promshard", log);
    writer.set(GOOD);
    await writer.sync([NS]);
    assert.deepEqual(await new LastGoodSecrets(api, "promshard", log).read(["absent", NS]), {
      text: GOOD,
      namespace: NS,
    });
    assert.equal(await new LastGoodSecrets(api, "team-b", log).read([NS]), undefined, "another coordinator's");
  });

  it("a coordinator started with an invalid config file runs the last good one from it", async () => {
    const config = join(dir, "prometheus.yml");
    writeFileSync(config, "scrape_configs:\n  - job_name: broken\n    scrape_interval: soon\n");
    writeFileSync(join(dir, "token"), "t\n");
    const port = await freePort();
    let output = "";
    const c = spawn(
      process.execPath,
      [
        cli,
        "coordinator",
        "--config",
        config,
        "--kubeconfig",
        cp.kubeconfigPath,
        "--shards.namespace",
        NS,
        "--sidecar.token-file",
        join(dir, "token"),
        "--no-leader-elect",
        "--listen",
        `127.0.0.1:${port}`,
        "--interval",
        "1s",
        "--log.level",
        "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(c);
    c.stdout!.on("data", (d) => (output += d));
    c.stderr!.on("data", (d) => (output += d));
    type Status = { config: { hash: string; lastReloadSuccessful: boolean; error: string | null } };
    let status: Status | undefined;
    for (let i = 0; i < 300 && !status && c.exitCode === null; i++) {
      try {
        const s = (await (await fetch(`http://127.0.0.1:${port}/api/v1/status`)).json()) as Status;
        // The first round has checked the file once its error shows.
        if (s.config.error) status = s;
      } catch {
        // not listening yet
      }
      if (!status) await sleep(100);
    }
    assert.equal(c.exitCode, null, `the coordinator exited:\n${output}`);
    assert.ok(status, `no status:\n${output}`);
    assert.equal(status.config.hash, sha256(GOOD), "it runs the Secret's config");
    assert.equal(status.config.lastReloadSuccessful, false);
    assert.match(
      status.config.error!,
      /job "broken"\).scrape_interval: not a valid duration/,
      "and says what is wrong with the file",
    );
    assert.match(output, /running the last good config a previous run kept/);
    assert.match(output, new RegExp(`${NS}/promshard-last-good-config`));
  });
});
