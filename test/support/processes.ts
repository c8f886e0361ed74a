/**
 * Child processes for tests that none outlives: each runs in its own process group (so its
 * children go with it), is killed with its temp dir removed when Node exits however it exits
 * (exit and signal hooks; a watchdog shell for SIGKILL or a crash of Node itself), and keeps
 * its output for error messages. Prometheus (test/support/prometheus.ts) and Thanos
 * (test/support/thanos.ts) run through it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import type { Readable } from "node:stream";

export interface Tracked {
  readonly pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** undefined while it runs; then "exited with status N", "killed by SIGX" or "failed to start: …". */
  exitStatus(): string | undefined;
  readonly exited: Promise<void>;
  /** SIGTERM to the group, SIGKILL after `graceMs` (default 10 s); resolves once it exited. Idempotent. */
  halt(graceMs?: number): Promise<void>;
  /** halt(), then removes `dir`. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<{ pid: number; watchdog: number | undefined; dir: string }>();
const exitCleanups = new Set<() => void>();

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Runs `cleanup` when Node exits however it can still run code: exit, SIGINT, SIGTERM, SIGHUP. */
export function onExit(cleanup: () => void): void {
  if (exitCleanups.size === 0) {
    const runAll = () => {
      for (const c of exitCleanups) c();
      exitCleanups.clear();
    };
    process.once("exit", runAll);
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      const onSignal = () => {
        runAll();
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      };
      process.on(signal, onSignal);
    }
  }
  exitCleanups.add(cleanup);
}

function cleanupTracked(): void {
  for (const p of live) {
    killGroup(p.pid, "SIGKILL");
    if (p.watchdog !== undefined) killGroup(p.watchdog, "SIGKILL");
    rmSync(p.dir, { recursive: true, force: true });
  }
  live.clear();
}

function startWatchdog(pid: number, dir: string): number | undefined {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -KILL -${pid} 2>/dev/null; rm -rf -- "$1"`;
  const child = spawn("sh", ["-c", script, "watchdog", dir], { detached: true, stdio: "ignore" });
  child.unref();
  return child.pid;
}

/** A process in its own group, its output kept; who cleans up after Node is the caller's choice. */
export interface Group {
  /** -1 when it could not be started (exitStatus says why). */
  readonly pid: number;
  logs(): string;
  /** undefined while it runs; then "exited with status N", "killed by SIGX" or "failed to start: …". */
  exitStatus(): string | undefined;
  readonly exited: Promise<void>;
  /** SIGTERM to the group, SIGKILL after `graceMs` (default 10 s; 0: SIGKILL at once); resolves once it exited. Idempotent. */
  halt(graceMs?: number): Promise<void>;
}

export function spawnGroup(bin: string, args: readonly string[], cwd: string): Group {
  // detached: its own process group, so halt() reaches anything it forks.
  const child: ChildProcess = spawn(bin, args, { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const chunks: string[] = [];
  for (const stream of [child.stdout, child.stderr] as Readable[]) {
    stream.setEncoding("utf8");
    stream.on("data", (s: string) => chunks.push(s));
    // A test that forgets to stop it must not keep Node alive; the exit hooks then kill the group.
    (stream as Readable & { unref?: () => void }).unref?.();
  }
  let status: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      status = signal ? `killed by ${signal}` : `exited with status ${code}`;
      resolve();
    });
    child.once("error", (err) => {
      status = `failed to start: ${err.message}`;
      resolve();
    });
  });
  child.unref();
  const pid = child.pid ?? -1;
  let halting: Promise<void> | undefined;
  return {
    pid,
    logs: () => chunks.join(""),
    exitStatus: () => status,
    exited,
    halt: (graceMs = 10_000) => {
      halting ??= (async () => {
        if (pid <= 0) return;
        if (status === undefined) {
          killGroup(pid, graceMs > 0 ? "SIGTERM" : "SIGKILL");
          const killer = setTimeout(() => killGroup(pid, "SIGKILL"), graceMs);
          await exited;
          clearTimeout(killer);
        }
        killGroup(pid, "SIGKILL"); // Anything the group might have left.
      })();
      return halting;
    },
  };
}

/** Starts `bin args` in `cwd`; `dir` (removed on stop and on exit) is usually the same temp dir. */
export function spawnTracked(bin: string, args: readonly string[], opts: { cwd: string; dir: string }): Tracked {
  onExit(cleanupTracked);
  const group = spawnGroup(bin, args, opts.cwd);
  const pid = group.pid;
  const entry = { pid, watchdog: pid > 0 ? startWatchdog(pid, opts.dir) : undefined, dir: opts.dir };
  if (pid > 0) live.add(entry);
  let halting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  const halt = (graceMs = 10_000) => {
    halting ??= (async () => {
      await group.halt(graceMs);
      if (entry.watchdog !== undefined) killGroup(entry.watchdog, "SIGKILL");
      live.delete(entry);
    })();
    return halting;
  };
  return {
    pid,
    logs: group.logs,
    exitStatus: group.exitStatus,
    exited: group.exited,
    halt,
    stop: (graceMs = 10_000) => {
      stopping ??= (async () => {
        await halt(graceMs);
        await rm(opts.dir, { recursive: true, force: true, maxRetries: 3 });
      })();
      return stopping;
    },
  };
}
