/**
 * Local mode's shards across coordinator deaths, with a real sidecar and Prometheus per
 * shard: a coordinator (a LocalScaler in a child process) killed half way through starting a
 * shard leaves a record the next run adopts; processes left with no record at all are
 * stopped before the shard starts again (left running, the old Prometheus keeps the TSDB
 * locked and every new one exits at once: issue 10); a shard whose port another process
 * took comes back on a free port; a process that keeps exiting reports its last output.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import fs, { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { CoordinatorEvent } from "../../src/coordinator/shards.ts";
import { isRunning, processesWith, SupervisedProcess, terminate } from "../../src/local/process.ts";
import { LocalScaler } from "../../src/local/scaler.ts";
import { processesUnder } from "../e2e/harness.ts";
import { eventually } from "../support/eventually.ts";
import { prometheusBinaries } from "../support/prometheus.ts";
import { thanosBinary } from "../support/thanos.ts";

const FIXTURE = new URL("../fixtures/local/scaler.ts", import.meta.url).pathname;

describe("local scaler: shard processes across coordinator deaths", () => {
  const bin = prometheusBinaries()[0]!;
  const thanos = thanosBinary();
  const root = mkdtempSync(join(tmpdir(), "promshard-local-scaler-"));
  const config = join(root, "prometheus.yml");
  writeFileSync(config, "global: {scrape_interval: 1s}\nscrape_configs: [{job_name: demo, static_configs: []}]\n");
  const scalers: LocalScaler[] = [];
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    for (const s of scalers) await s.stopAll().catch(() => {});
    for (const pid of processesUnder(root)) process.kill(pid, "SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });

  const markersOf = (dataDir: string) => ({
    sidecar: `--state.dir=${join(dataDir, "shard-0", "state")}`,
    prometheus: `--storage.tsdb.path=${join(dataDir, "shard-0", "tsdb")}`,
  });

  /** A coordinator in a child process starting one shard; `until` says when to SIGKILL it. */
  async function killedCoordinator(dataDir: string, until: "prometheus-spawned" | "started"): Promise<void> {
    const child = spawn(process.execPath, [FIXTURE, dataDir, config, bin.bin, thanos, "1"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    let out = "";
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
    });
    const prometheus = markersOf(dataDir).prometheus;
    // Polled every 10 ms: the kill must land while the shard is still starting.
    const deadline = Date.now() + 120_000;
    while (!(until === "started" ? out.includes("started") : processesWith(prometheus).length > 0)) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `the coordinator did not reach "${until}": ${out}`);
      await sleep(10);
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }

  function scaler(dataDir: string, events: CoordinatorEvent[]): LocalScaler {
    const s = new LocalScaler({
      dataDir,
      configFile: config,
      prometheusBin: bin.bin,
      thanosBin: thanos,
      onEvent: (e) => events.push(e),
    });
    scalers.push(s);
    return s;
  }

  async function ready(url: string): Promise<void> {
    await eventually(`${url} ready`, async () => ((await fetch(`${url}/-/ready`)).ok ? true : undefined));
  }

  it("a coordinator killed while it starts a shard leaves a record: the next run adopts its processes", async () => {
    const dataDir = join(root, "mid-start");
    await killedCoordinator(dataDir, "prometheus-spawned");
    const m = markersOf(dataDir);
    const [sidecarPid, promPid] = [processesWith(m.sidecar), processesWith(m.prometheus)];
    assert.equal(sidecarPid.length, 1);
    assert.equal(promPid.length, 1);

    const events: CoordinatorEvent[] = [];
    const next = scaler(dataDir, events);
    assert.equal(await next.adopt(), 1, "the half-started shard is in shards.json");
    const shard = next.shards()[0]!;
    assert.equal(shard.prometheus.pid, promPid[0], "its Prometheus is adopted, not started again");
    assert.equal(shard.sidecar.pid, sidecarPid[0]);
    await ready(shard.prometheusUrl);
    assert.deepEqual(events, []);
    await next.stopAll();
    assert.deepEqual([...processesWith(m.sidecar), ...processesWith(m.prometheus)], []);
  });

  it("processes an earlier run left without a record are stopped, and the shard starts again", async () => {
    const dataDir = join(root, "no-record");
    await killedCoordinator(dataDir, "started");
    const m = markersOf(dataDir);
    const old = [...processesWith(m.sidecar), ...processesWith(m.prometheus)];
    assert.equal(old.length, 2);
    rmSync(join(dataDir, "shards.json"));

    const events: CoordinatorEvent[] = [];
    const next = scaler(dataDir, events);
    assert.equal(await next.adopt(), 0);
    await next.scaleTo(1);
    const shard = next.shards()[0]!;
    await ready(shard.prometheusUrl);
    for (const pid of old) assert.ok(!isRunning(pid, root), `the old process ${pid} is gone`);
    assert.deepEqual(processesWith(m.prometheus), [shard.prometheus.pid], "one Prometheus on the directory");
    assert.deepEqual(processesWith(m.sidecar), [shard.sidecar.pid], "one sidecar on the directory");
    const texts = events.map((e) => e.text);
    for (const name of ["sidecar", "prometheus"])
      assert.ok(
        texts.some((t) => t.includes(`stopped a ${name} (pid`) && t.includes("an earlier run left running")),
        `an event says the old ${name} was stopped: ${JSON.stringify(texts)}`,
      );

    // Its Prometheus dies and another process takes its port before the restart: the shard
    // comes back on free ports, with an event that says why.
    const port = Number(new URL(shard.prometheusUrl).port);
    const squatter = await takePortOfKilled(() => next.shards()[0]!.prometheus, port);
    try {
      await eventually("the shard on a new port", () =>
        next.shards()[0]!.prometheusUrl !== shard.prometheusUrl ? true : undefined,
      );
      await ready(next.shards()[0]!.prometheusUrl);
      assert.ok(
        events.some((e) => e.text.includes(`port ${port} is taken by another process`)),
        JSON.stringify(events.map((e) => e.text)),
      );
    } finally {
      squatter.close();
    }
  });

  it("a recorded shard whose Prometheus port was taken meanwhile starts on a free one, with a new sidecar", async () => {
    const dataDir = join(root, "port-taken");
    await killedCoordinator(dataDir, "started");
    const m = markersOf(dataDir);
    const [oldSidecar] = processesWith(m.sidecar);
    const [oldProm] = processesWith(m.prometheus);
    const [record] = JSON.parse(readFileSync(join(dataDir, "shards.json"), "utf8")) as { prometheusPort: number }[];
    const port = record!.prometheusPort;
    await terminate(oldProm!, m.prometheus);
    const squatter = await listenOn(port);
    try {
      const events: CoordinatorEvent[] = [];
      const next = scaler(dataDir, events);
      assert.equal(await next.adopt(), 1);
      const shard = next.shards()[0]!;
      assert.notEqual(Number(new URL(shard.prometheusUrl).port), port);
      await ready(shard.prometheusUrl);
      assert.notEqual(shard.sidecar.pid, oldSidecar, "the sidecar pointing at the old port was replaced");
      assert.ok(!isRunning(oldSidecar!, m.sidecar));
      assert.ok(
        events.some((e) => e.text.includes(`Prometheus moved from port ${port}`)),
        JSON.stringify(events),
      );
    } finally {
      squatter.close();
    }
  });
});

describe("supervised process", () => {
  it("a process that keeps exiting is restarted with its last output reported", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-supervised-"));
    try {
      const seen: string[][] = [];
      const marker = `promshard-test-${process.pid}-exits`;
      const p = await SupervisedProcess.start(
        {
          name: "failing",
          command: "sh",
          // The marker is $0: an argument of its own, as markers are.
          args: ["-c", 'echo starting; echo "error: cannot lock $0" >&2; sleep 0.2; exit 1', marker],
          logFile: join(dir, "out.log"),
          marker,
        },
        { onRestart: (_p, info) => seen.push([...info.lastOutput]) },
      );
      await eventually("two restarts", () => (seen.length >= 2 ? true : undefined), 15_000);
      await p.stop();
      assert.equal(p.restarts, seen.length);
      for (const lines of seen) assert.deepEqual(lines, ["starting", `error: cannot lock ${marker}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("supervised process, idle", () => {
  it("a process it started is not polled while it runs; its exit is still seen and it is restarted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-supervised-"));
    const marker = `promshard-test-${process.pid}-idle`;
    // Counts reads of /proc/<pid>/cmdline, the poll's way of telling whether a pid still runs.
    const original = fs.readFileSync;
    let procReads = 0;
    fs.readFileSync = ((path: unknown, ...rest: unknown[]) => {
      if (typeof path === "string" && /^\/proc\/\d+\/cmdline$/.test(path)) procReads++;
      return (original as (...a: unknown[]) => unknown)(path, ...rest);
    }) as typeof fs.readFileSync;
    syncBuiltinESMExports();
    let p: SupervisedProcess | undefined;
    try {
      p = await SupervisedProcess.start({
        name: "sleeper",
        command: "sh",
        args: ["-c", "sleep 30", marker],
        logFile: join(dir, "out.log"),
        marker,
      });
      const first = p.pid!;
      procReads = 0;
      await sleep(1_600);
      assert.equal(procReads, 0, "the running child was polled");
      process.kill(first, "SIGKILL");
      await eventually("the restart", () => (p!.pid !== undefined && p!.pid !== first ? true : undefined), 10_000);
      assert.equal(p.restarts, 1);
    } finally {
      fs.readFileSync = original;
      syncBuiltinESMExports();
      await p?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * SIGKILLs the supervised process and listens on its port before the supervisor restarts it
 * (a second after it sees the exit). The dead process's connections hold the port for a
 * moment (FIN-WAIT sockets refuse a bind), so binding is retried; should the restart still
 * win, it starts over (at most 3 times).
 */
async function takePortOfKilled(current: () => SupervisedProcess, port: number): Promise<Server> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const p = current();
    const pid = p.pid!;
    process.kill(pid, "SIGKILL");
    while (isRunning(pid, p.spec.marker)) await sleep(5);
    for (const deadline = Date.now() + 900; Date.now() < deadline; await sleep(10)) {
      const server = await listenOn(port).catch(() => undefined);
      if (server) return server;
    }
    await eventually("the restart", () => (current().pid !== pid && current().pid !== undefined ? true : undefined));
  }
  throw new Error(`port ${port}: the supervisor restarted the process before the test could take its port, 3 times`);
}

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}
