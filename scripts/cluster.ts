// make cluster / make cluster-down: the one-node cluster of test/support/cluster.ts, left running
// in the background for trying promshard by hand.
//   node scripts/cluster.ts up     starts it (a detached `serve` process holds it), prints the kubeconfig
//   node scripts/cluster.ts down   stops it and removes everything it set up
// The running cluster is described by $TMPDIR/promshard-cluster.json (pid, state dir, kubeconfig).
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { startCluster } from "../test/support/cluster.ts";
import { KUBERNETES_VERSION } from "../test/support/kube.ts";
import { IMAGE_NAMES } from "./images.ts";

const stateFile = join(tmpdir(), "promshard-cluster.json");
const logFile = join(tmpdir(), "promshard-cluster.log");
const stableKubeconfig = join(tmpdir(), "promshard-cluster.kubeconfig");

interface State {
  pid: number;
  dir?: string;
  kubeconfig?: string;
  ready?: boolean;
  error?: string;
  timings?: Record<string, number>;
}

const readState = (): State | undefined => {
  try {
    return JSON.parse(readFileSync(stateFile, "utf8")) as State;
  } catch {
    return undefined;
  }
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function up(): Promise<void> {
  const running = readState();
  if (running && alive(running.pid)) {
    console.log(`a cluster is already running (pid ${running.pid}); kubeconfig: ${running.kubeconfig ?? "(starting)"}`);
    return;
  }
  rmSync(stateFile, { force: true });
  const out = openSync(logFile, "w");
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "serve"], {
    detached: true,
    stdio: ["ignore", out, out],
  });
  child.unref();
  console.log(`starting the one-node cluster (pid ${child.pid}, log ${logFile})…`);
  for (;;) {
    await sleep(500);
    const s = readState();
    if (s?.ready) {
      console.log(`cluster ready in ${((s.timings?.total ?? 0) / 1000).toFixed(1)} s`);
      console.log(`state dir: ${s.dir}`);
      console.log(`kubeconfig: ${stableKubeconfig}`);
      console.log(`  export KUBECONFIG=${stableKubeconfig}   # stop with: make cluster-down`);
      console.log(
        `  ${join(homedir(), ".cache/promshard-tools", `kubernetes-${KUBERNETES_VERSION}/bin/kubectl`)} get pods -A`,
      );
      return;
    }
    if (s?.error || child.pid === undefined || !alive(child.pid)) {
      process.stderr.write(readFileSync(logFile, "utf8"));
      throw new Error(`the cluster did not start${s?.error ? `: ${s.error.split("\n")[0]}` : ""} (log above)`);
    }
  }
}

async function serve(): Promise<void> {
  writeFileSync(stateFile, JSON.stringify({ pid: process.pid }));
  try {
    // Every image scripts/images.ts builds, so any manifest of ours runs.
    const cluster = await startCluster({ images: Object.keys(IMAGE_NAMES) as (keyof typeof IMAGE_NAMES)[] });
    copyFileSync(cluster.kubeconfigPath, stableKubeconfig);
    const state: State = {
      pid: process.pid,
      dir: cluster.dir,
      kubeconfig: cluster.kubeconfigPath,
      ready: true,
      timings: cluster.timings,
    };
    writeFileSync(stateFile, JSON.stringify(state));
    console.log(JSON.stringify(state));
    // Runs until `down` sends SIGTERM. The harnesses' own signal hooks kill at once (a test
    // process that is told to go must go); here the pods are drained and everything stopped in order.
    const keepAlive = setInterval(() => {}, 1 << 30);
    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
      process.removeAllListeners(signal);
      process.once(signal, () => {
        console.log(`${signal}: stopping the cluster`);
        cluster.stop().finally(() => {
          clearInterval(keepAlive);
          process.exit(0);
        });
      });
    }
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    writeFileSync(stateFile, JSON.stringify({ pid: process.pid, error }));
    console.error(error);
    process.exit(1);
  }
}

async function down(): Promise<void> {
  const s = readState();
  if (!s || !alive(s.pid)) {
    rmSync(stateFile, { force: true });
    if (existsSync("/sys/class/net/promshard0")) {
      console.log(
        "no cluster of `make cluster` is running, but bridge promshard0 exists: a test's cluster may be running",
      );
    } else console.log("no cluster is running");
    return;
  }
  process.kill(s.pid, "SIGTERM");
  const until = Date.now() + 120_000;
  while (alive(s.pid)) {
    if (Date.now() > until) throw new Error(`pid ${s.pid} did not stop within 120 s; see ${logFile}`);
    await sleep(250);
  }
  if (s.dir && existsSync(s.dir)) {
    throw new Error(`the cluster stopped but left ${s.dir}; run scripts/cluster-cleanup.sh ${s.dir}`);
  }
  rmSync(stateFile, { force: true });
  rmSync(stableKubeconfig, { force: true });
  console.log("cluster stopped; nothing of it is left running or mounted");
}

const command = process.argv[2];
if (command === "up") await up();
else if (command === "serve") await serve();
else if (command === "down") await down();
else {
  console.error("usage: node scripts/cluster.ts up|down");
  process.exit(2);
}
