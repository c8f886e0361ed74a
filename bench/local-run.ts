/**
 * What the benches that run a real `promshard local` share: starting it through the ./promshard
 * launcher (as a user runs it) and stopping it, its process tree read from /proc (each
 * process's role from its command line, CPU seconds and peak RSS, sampled each second), and
 * instant queries at its global view.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The ./promshard launcher, with the Node flags and compile cache it sets. */
export const LAUNCHER = fileURLToPath(new URL("../promshard", import.meta.url));

/** `promshard local <args>` in a process group of its own; `stderr()` is its last 20 kB of stderr. */
export function startLocal(args: readonly string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(LAUNCHER, ["local", ...args], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    stderr = (stderr + s).slice(-20_000);
  });
  if (child.pid === undefined) throw new Error("promshard local did not start");
  return { child, stderr: () => stderr };
}

/** SIGTERM (it stops its shards), then SIGKILL to the whole group after 30 s. */
export async function stopLocal(child: ChildProcess | undefined): Promise<void> {
  if (child?.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(child.pid, "SIGTERM");
  const killer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 30_000);
  await exited;
  clearTimeout(killer);
}

/** The first value of an instant query's answer at `base` (the global view, or one shard's Prometheus), or NaN while it does not answer. */
export async function instantValue(base: string, query: string, timeoutMs = 2_000): Promise<number> {
  try {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(query)}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
    return Number(body.data?.result?.[0]?.value[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

interface ProcRead {
  readonly ppid: number;
  readonly cpuSeconds: number;
  readonly rssMiB: number;
}

function readProc(pid: number): ProcRead | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "pid (comm) " start at field 3 (state): ppid is 4, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return {
      ppid: Number(f[1]),
      cpuSeconds: (Number(f[11]) + Number(f[12])) / CLK_TCK,
      rssMiB: rss ? Number(rss[1]) / 1024 : 0,
    };
  } catch {
    return undefined; // gone between the listing and the read
  }
}

/** What a process of the tree is, from its command line. */
export function roleOf(pid: number, root: number): string {
  if (pid === root) return "coordinator (promshard local)";
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return "?";
  }
  const exe = argv[0]!.split("/").pop()!;
  if (exe === "prometheus") {
    const data = argv.find((a) => a.startsWith("--storage.tsdb.path="));
    return `prometheus ${/shard-(\d+)/.exec(data ?? "")?.[1] ?? "?"}`;
  }
  if (exe === "node" && argv.includes("sidecar")) return `sidecar ${argv[argv.indexOf("--shard") + 1]}`;
  if (exe === "thanos") {
    const shard = /shard-(\d+)/.exec(argv.join(" "))?.[1];
    return `thanos ${argv[1]}${shard === undefined ? "" : ` ${shard}`}`;
  }
  // A process caught between fork and exec has no command line yet, or still its parent's:
  // asked again next second.
  if (exe === "" || (exe === "node" && argv.includes("local"))) return "";
  return argv.join(" ").slice(0, 60);
}

export interface Row {
  role: string;
  pid: number;
  cpuSeconds: number;
  peakRssMiB: number;
  lastRssMiB: number;
  /** CPU seconds when steady() was last called. */
  cpuAtSteady: number | undefined;
}

/** Samples the tree under `root` every second until stop(); one row per pid ever seen. */
export function sampleTree(root: number): { rows: Map<number, Row>; steady: () => void; stop: () => void } {
  const rows = new Map<number, Row>();
  const tick = () => {
    const all = new Map<number, ProcRead>();
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const r = readProc(Number(name));
      if (r) all.set(Number(name), r);
    }
    const inTree = new Set<number>([root]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const [pid, r] of all)
        if (!inTree.has(pid) && inTree.has(r.ppid)) {
          inTree.add(pid);
          grew = true;
        }
    }
    for (const pid of inTree) {
      const r = all.get(pid);
      if (!r) continue;
      const row = rows.get(pid) ?? {
        role: "",
        pid,
        cpuSeconds: 0,
        peakRssMiB: 0,
        lastRssMiB: 0,
        cpuAtSteady: undefined,
      };
      if (row.role === "") row.role = roleOf(pid, root);
      row.cpuSeconds = r.cpuSeconds;
      row.peakRssMiB = Math.max(row.peakRssMiB, r.rssMiB);
      row.lastRssMiB = r.rssMiB;
      rows.set(pid, row);
    }
    // A process that is gone holds no memory: the rows' last RSS sum to the tree's now.
    for (const [pid, row] of rows) if (!inTree.has(pid)) row.lastRssMiB = 0;
  };
  tick();
  const timer = setInterval(tick, 1000);
  return {
    rows,
    steady: () => {
      tick();
      for (const row of rows.values()) row.cpuAtSteady = row.cpuSeconds;
    },
    stop: () => {
      clearInterval(timer);
      tick();
    },
  };
}
