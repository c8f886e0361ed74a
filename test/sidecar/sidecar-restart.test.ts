/**
 * The sidecar as its own process (`node src/cli.ts sidecar …`) beside the real Prometheus,
 * both versions: killed with SIGKILL and restarted it re-applies nothing it need not (no file
 * rewritten, no reload) and keeps its assignment; after a whole pod restart (output directory
 * gone, Prometheus restarted, no coordinator) Prometheus scrapes the persisted assignment
 * again; with Prometheus down the runtime says so and the sidecar keeps serving, and it
 * recovers when Prometheus returns; SIGTERM ends it cleanly.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { AssignedTarget } from "../../src/contract/assignment.ts";
import { dialectFor } from "../../src/prom/version.ts";
import {
  discoverAll,
  type PromProxy,
  type Setup,
  sidecarClient,
  startProxy,
  startSetup,
  until,
  writeFiles,
} from "../fixtures/sidecar/harness.ts";
import { freePort } from "../support/ports.ts";
import { prometheusBinaries, type RunningPrometheus, startPrometheus, waitForTargets } from "../support/prometheus.ts";

const TOKEN = "restart-token-abcdef";
const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

interface SidecarProcess {
  readonly child: ChildProcess;
  readonly url: string;
  logs(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startSidecarProcess(args: string[], port: number): Promise<SidecarProcess> {
  const child = spawn(process.execPath, [CLI, "sidecar", ...args, `--listen=127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, POD_NAME: "prometheus-2", PROMSHARD_REPLICA: "1" },
  });
  const chunks: string[] = [];
  child.stdout!.on("data", (b: Buffer) => chunks.push(b.toString()));
  child.stderr!.on("data", (b: Buffer) => chunks.push(b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  await until(
    "sidecar ready",
    async () => {
      if (child.exitCode !== null) throw new Error(`sidecar exited ${child.exitCode}: ${chunks.join("")}`);
      return (await fetch(`${url}/readyz`)).status === 200;
    },
    20_000,
  );
  return { child, url, logs: () => chunks.join(""), exited };
}

function mtimes(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const job of readdirSync(dir)) {
    for (const f of readdirSync(join(dir, job))) out[`${job}/${f}`] = statSync(join(dir, job, f)).mtimeMs;
  }
  return out;
}

for (const bin of prometheusBinaries()) {
  describe(`sidecar process restarts, Prometheus ${bin.version}`, () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-sidecar-restart-"));
    const orig = join(dir, "orig");
    const out = join(dir, "out");
    const state = join(dir, "state");
    let setup: Setup;
    let proxy: PromProxy;
    let prom: RunningPrometheus | undefined;
    const children: ChildProcess[] = [];

    before(async () => {
      setup = await startSetup(join(dir, "certs"));
      writeFiles(orig, setup.files);
      writeFileSync(join(dir, "token"), TOKEN);
      proxy = await startProxy();
    });
    after(async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      await prom?.stop();
      await proxy?.close();
      await setup?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("keeps scraping the persisted assignment through sidecar and Prometheus restarts", {
      timeout: 240_000,
    }, async (t) => {
      const port = await freePort();
      const args = [
        `--config.file=${join(orig, "prometheus.yml")}`,
        `--prometheus.url=${proxy.url}`,
        `--output.dir=${out}`,
        `--state.dir=${state}`,
        `--api.token-file=${join(dir, "token")}`,
        "--config.check-interval=1s",
      ];
      const startSidecar = async () => {
        const p = await startSidecarProcess(args, port);
        children.push(p.child);
        return p;
      };
      const startProm = async () => {
        const p = await startPrometheus(bin, {
          config: "# not used\n",
          args: [`--config.file=${join(out, "prometheus.yml")}`],
        });
        await proxy.setUpstream(p.url);
        return p;
      };
      let sidecar = await startSidecar();
      prom = await startProm();
      const api = sidecarClient(sidecar.url, TOKEN);
      const all = await discoverAll(join(orig, "prometheus.yml"), dialectFor(bin.version));
      const live = all.filter((x) => x.labels.__address__ !== "127.0.0.1:9");
      assert.equal((await api.assign(1, all)).status, 200);
      const scraping = (p: RunningPrometheus, targets: AssignedTarget[]) =>
        waitForTargets(
          p,
          (r) =>
            r.activeTargets.length === targets.filter((x) => x.labels.__address__ !== "127.0.0.1:9").length &&
            r.activeTargets.filter((a) => a.health === "up").length ===
              targets.filter(
                (x) => x.labels.__address__ !== setup.deadAddress && x.labels.__address__ !== "127.0.0.1:9",
              ).length,
          40_000,
        );
      await scraping(prom, all);
      const rt = await api.runtime();
      assert.deepEqual(
        { shard: rt.shard.shard, replica: rt.shard.replica, pod: rt.shard.podName },
        { shard: 2, replica: "1", pod: "prometheus-2" },
        "identity from POD_NAME and PROMSHARD_REPLICA",
      );

      // 1. SIGKILL the sidecar and start it again: nothing rewritten, nothing reloaded.
      const before = mtimes(join(out, "targets"));
      const reloads = proxy.reloads();
      sidecar.child.kill("SIGKILL");
      await sidecar.exited;
      sidecar = await startSidecar();
      const after1 = await api.runtime();
      assert.equal(after1.assignment?.version, 1);
      assert.equal(after1.config.reload.state, "ok");
      assert.deepEqual(mtimes(join(out, "targets")), before, "no target file rewritten");
      assert.equal(proxy.reloads(), reloads, "no reload after a sidecar restart");
      await until("runtime after restart", async () => (await api.runtime()).summary.up === 6);

      // 2. A whole pod restart: output dir gone (emptyDir), Prometheus restarted, no coordinator.
      sidecar.child.kill("SIGKILL");
      await sidecar.exited;
      await prom.stop();
      await proxy.down();
      rmSync(out, { recursive: true, force: true });
      sidecar = await startSidecar();
      prom = await startProm();
      await scraping(prom, all);
      t.diagnostic("after a pod restart Prometheus scrapes the persisted assignment");

      // 3. Prometheus down: the runtime says so, the sidecar keeps serving and takes assignments.
      await prom.stop();
      await proxy.down();
      const down = await api.runtime();
      assert.equal(down.prometheus.up, false);
      assert.equal(down.prometheus.status, "down");
      assert.match(down.prometheus.error ?? "", /unreachable: ECONNREFUSED/);
      assert.ok(down.targets.every((x) => x.status === "unknown" || x.status === "dropped"));
      assert.equal((await fetch(`${sidecar.url}/healthz`)).status, 200);
      const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
      assert.match(metrics, /^promshard_sidecar_prometheus_up 0$/m);
      const some = live.filter((x) => x.job === "plain" || x.job === "auth");
      const put = await api.assign(2, some);
      assert.equal(put.status, 200, JSON.stringify(put.body));

      prom = await startProm();
      await scraping(prom, some);
      const back = await until("runtime recovers", async () => {
        const r = await api.runtime();
        return r.prometheus.status === "ready" && r.summary.up === 3 && r;
      });
      assert.equal(back.assignment?.version, 2);
      assert.equal(back.summary.assigned, 4);
      assert.deepEqual(back.unmappedTargets, []);

      // 4. SIGTERM: a clean exit.
      sidecar.child.kill("SIGTERM");
      const exit = await sidecar.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, sidecar.logs());
      assert.match(sidecar.logs(), /"msg":"shutting down"/);
    });
  });
}
