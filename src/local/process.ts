import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { type Backoff, backoffDelay } from "../util/backoff.ts";

/** How a supervised process is (re)started: the same command every time. */
export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Where its stdout and stderr go (appended): a file, never a pipe, which would break when we exit. */
  readonly logFile: string;
  /**
   * An argument no other process has: the directory it owns (`--storage.tsdb.path=DIR`). It
   * tells it from another process reusing the pid, and finds a copy an earlier run left.
   */
  readonly marker: string;
}

/** Why a process was restarted: how often so far, and the last lines it wrote before it exited. */
export interface RestartInfo {
  readonly restarts: number;
  readonly lastOutput: readonly string[];
}

export interface SupervisorOptions {
  readonly log?: Logger | undefined;
  /**
   * Adopt a process an earlier run started with exactly this command line (found by the
   * marker, whatever pid was or was not recorded) instead of starting one.
   */
  readonly adopt?: boolean | undefined;
  readonly onRestart?: ((p: SupervisedProcess, info: RestartInfo) => void) | undefined;
  /** A process left by an earlier run held the marker and was stopped, so this one can start. */
  readonly onStray?: ((p: SupervisedProcess, pid: number) => void) | undefined;
  /**
   * Asked before every restart; false means this process cannot start where it is (its port
   * is taken, say) and supervision ends: the owner starts a replacement.
   */
  readonly canRestart?: (() => Promise<boolean>) | undefined;
}

const RESTART_BACKOFF: Backoff = { initialMs: 1000, maxMs: 30_000 };
/** Up this long, a process counts as recovered: the next crash starts the backoff anew. */
const STABLE_MS = 60_000;
const POLL_MS = 500;
const KILL_AFTER_MS = 10_000;
/** What of a process's own output is kept for its exit report: enough for its last error. */
const LAST_OUTPUT_BYTES = 4096;
const LAST_OUTPUT_LINES = 5;
const LAST_OUTPUT_LINE_CHARS = 500;

/** The arguments `pid` runs with, argv[0] first (Linux /proc); undefined when it is gone. */
function argv(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and has `marker` among its arguments. */
export function isRunning(pid: number, marker: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return argv(pid)?.includes(marker) ?? false;
}

/** A live process running exactly `spec`'s command line, if any. */
export function runningAs(spec: Pick<ProcessSpec, "command" | "args" | "marker">): number | undefined {
  const want = [spec.command, ...spec.args].join("\0");
  return processesWith(spec.marker).find((pid) => argv(pid)?.join("\0") === want);
}

/** Every live process whose command line contains `marker`. */
export function processesWith(marker: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .map(Number)
    .filter((pid) => isRunning(pid, marker));
}

/** SIGTERM, SIGKILL after `killAfterMs`; resolves once the process is gone. */
export async function terminate(pid: number, marker: string, killAfterMs = KILL_AFTER_MS): Promise<void> {
  if (!isRunning(pid, marker)) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + killAfterMs;
  while (isRunning(pid, marker)) {
    if (Date.now() > deadline) process.kill(pid, "SIGKILL");
    await sleep(50);
  }
}

/** The last lines `file` got from byte `from` on: what a process wrote before it exited. */
export function outputSince(file: string, from: number): string[] {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = statSync(file).size;
    const start = Math.max(from, size - LAST_OUTPUT_BYTES);
    const buf = Buffer.alloc(Math.max(0, size - start));
    readSync(fd, buf, 0, buf.length, start);
    const lines = buf.toString("utf8").split("\n");
    // A cut first line is a fragment, unless the run wrote no more than that.
    if (start > from && lines.length > 1) lines.shift();
    return lines
      .map((l) => l.trimEnd())
      .filter((l) => l.length > 0)
      .slice(-LAST_OUTPUT_LINES)
      .map((l) => (l.length > LAST_OUTPUT_LINE_CHARS ? `${l.slice(0, LAST_OUTPUT_LINE_CHARS)}…` : l));
  } catch {
    return [];
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * A local process kept running the way a kubelet keeps a container running: restarted with a
 * growing backoff when it exits on its own, counted in `restarts`, its last output lines
 * logged and reported. It runs detached, so it outlives a coordinator that is killed, and a
 * coordinator started again adopts it by pid. Before it starts, a process of an earlier run
 * that holds the same marker (the same directory) is stopped: left running, it would keep
 * the directory locked and this one would exit at every start. A child's exit is its
 * `exit` event; an adopted process, which is not this process's child, is polled by pid
 * (polling every process twice a second cost an idle `promshard local` with 3 shards a
 * quarter of its CPU).
 */
export class SupervisedProcess {
  readonly spec: ProcessSpec;
  #pid: number | undefined;
  restarts = 0;
  #stopping = false;
  #startedAt = 0;
  #failures = 0;
  #outputFrom = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The process when this one started it (not adopted): its exit event says when it ends. */
  #child: ChildProcess | undefined;
  /** A restart under way: stop() waits for it, so no process starts after stop() returned. */
  #restarting: Promise<void> | undefined;
  readonly #o: SupervisorOptions;

  private constructor(spec: ProcessSpec, opts: SupervisorOptions) {
    this.spec = spec;
    this.#o = opts;
  }

  /** Adopts a running copy (with `opts.adopt`), else starts the process; then watches it. */
  static async start(spec: ProcessSpec, opts: SupervisorOptions = {}): Promise<SupervisedProcess> {
    const p = new SupervisedProcess(spec, opts);
    const running = opts.adopt ? runningAs(spec) : undefined;
    if (running !== undefined) {
      p.#pid = running;
      p.#startedAt = Date.now();
      opts.log?.info({ process: spec.name, pid: p.#pid }, "adopted a running process");
    } else await p.#spawn();
    p.#watch();
    return p;
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  async #spawn(): Promise<void> {
    for (const pid of processesWith(this.spec.marker)) {
      this.#o.log?.warn(
        { process: this.spec.name, pid, marker: this.spec.marker },
        "stopping a process an earlier run left holding this process's directory",
      );
      await terminate(pid, this.spec.marker);
      this.#o.onStray?.(this, pid);
    }
    this.#outputFrom = fileSize(this.spec.logFile);
    const out = openSync(this.spec.logFile, "a");
    const child = spawn(this.spec.command, [...this.spec.args], { stdio: ["ignore", out, out], detached: true });
    closeSync(out);
    this.#child = child;
    // A failed spawn (no pid, an error and no exit event) is an exit like any other: restarted
    // with backoff. Node reaps the child before `exit`, so the pid is no longer alive then.
    child.on("error", (err) => {
      this.#o.log?.warn({ process: this.spec.name, err }, "cannot start");
      if (child.pid === undefined) this.#exited(child);
    });
    child.on("exit", () => this.#exited(child));
    this.#pid = child.pid;
    this.#startedAt = Date.now();
  }

  #exited(child: ChildProcess): void {
    if (child !== this.#child) return; // a child replaced by a restart already
    this.#child = undefined;
    this.#check();
  }

  /** Polls an adopted process; a child is watched through its events (see #spawn). */
  #watch(): void {
    if (this.#child !== undefined) return;
    this.#timer = setInterval(() => this.#check(), POLL_MS);
    this.#timer.unref();
  }

  /** Restarts the process, after its backoff, unless it runs or is being stopped. */
  #check(): void {
    if (this.#stopping || (this.#pid !== undefined && isRunning(this.#pid, this.spec.marker))) return;
    clearInterval(this.#timer);
    this.#pid = undefined;
    if (Date.now() - this.#startedAt >= STABLE_MS) this.#failures = 0;
    this.#failures++;
    const backoffMs = backoffDelay(RESTART_BACKOFF, this.#failures);
    const lastOutput = outputSince(this.spec.logFile, this.#outputFrom);
    this.#o.log?.warn({ process: this.spec.name, backoffMs, lastOutput }, "process exited; restarting");
    setTimeout(() => {
      this.#restarting = this.#restart(lastOutput).finally(() => {
        this.#restarting = undefined;
      });
    }, backoffMs).unref();
  }

  async #restart(lastOutput: readonly string[]): Promise<void> {
    if (this.#stopping) return;
    if (this.#o.canRestart && !(await this.#o.canRestart())) {
      this.#stopping = true;
      return;
    }
    if (this.#stopping) return;
    this.restarts++;
    await this.#spawn();
    this.#o.onRestart?.(this, { restarts: this.restarts, lastOutput });
    if (!this.#stopping) this.#watch();
  }

  /** SIGTERM, SIGKILL after 10 s; resolves once the process is gone. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#timer);
    await this.#restarting;
    if (this.#pid !== undefined) await terminate(this.#pid, this.spec.marker);
  }
}
