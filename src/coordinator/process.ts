import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";

/** How a supervised process is (re)started: the same command every time. */
export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Where its stdout and stderr go (appended): a file, never a pipe, which would break when we exit. */
  readonly logFile: string;
  /** A string its command line must contain, to tell it from another process reusing the pid. */
  readonly marker: string;
}

const RESTART_BACKOFF_MS = [1000, 30_000] as const;
/** Up this long, a process counts as recovered: the next crash starts the backoff anew. */
const STABLE_MS = 60_000;
const POLL_MS = 500;
const KILL_AFTER_MS = 10_000;

/** Whether `pid` is alive and its command line contains `marker` (Linux /proc). */
export function isRunning(pid: number, marker: string): boolean {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").includes(marker);
  } catch {
    return false;
  }
}

/**
 * A local process kept running the way a kubelet keeps a container running: restarted with a
 * growing backoff when it exits on its own, counted in `restarts`. It runs detached, so it
 * outlives a coordinator that is killed, and a coordinator started again adopts it by pid.
 * Exits are seen by polling the pid, which works the same for a child and an adopted process.
 */
export class SupervisedProcess {
  readonly spec: ProcessSpec;
  #pid: number | undefined;
  restarts = 0;
  #stopping = false;
  #startedAt = 0;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #log: Logger | undefined;
  readonly #onRestart: ((p: SupervisedProcess, code: string) => void) | undefined;

  constructor(
    spec: ProcessSpec,
    opts: { log?: Logger; onRestart?: (p: SupervisedProcess, code: string) => void; adoptPid?: number } = {},
  ) {
    this.spec = spec;
    this.#log = opts.log;
    this.#onRestart = opts.onRestart;
    if (opts.adoptPid !== undefined && isRunning(opts.adoptPid, spec.marker)) {
      this.#pid = opts.adoptPid;
      this.#startedAt = Date.now();
      this.#log?.info({ process: spec.name, pid: this.#pid }, "adopted a running process");
    } else this.#spawn();
    this.#watch();
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  #spawn(): void {
    const out = openSync(this.spec.logFile, "a");
    const child = spawn(this.spec.command, [...this.spec.args], { stdio: ["ignore", out, out], detached: true });
    closeSync(out);
    // A failed spawn is an exit like any other: the poll sees no pid and restarts with backoff.
    child.on("error", (err) => this.#log?.warn({ process: this.spec.name, err: err.message }, "cannot start"));
    // Reaped here so the pid does not linger as a zombie that the poll would take for alive.
    child.on("exit", () => undefined);
    this.#pid = child.pid;
    this.#startedAt = Date.now();
  }

  #watch(): void {
    this.#timer = setInterval(() => {
      if (this.#stopping || (this.#pid !== undefined && isRunning(this.#pid, this.spec.marker))) return;
      this.#pid = undefined;
      if (Date.now() - this.#startedAt >= STABLE_MS) this.#failures = 0;
      const backoff = Math.min(RESTART_BACKOFF_MS[1], RESTART_BACKOFF_MS[0] * 2 ** this.#failures);
      this.#failures++;
      clearInterval(this.#timer);
      this.#log?.warn({ process: this.spec.name, backoffMs: backoff }, "process exited; restarting");
      setTimeout(() => {
        if (this.#stopping) return;
        this.restarts++;
        this.#spawn();
        this.#onRestart?.(this, `restart ${this.restarts}`);
        this.#watch();
      }, backoff).unref();
    }, POLL_MS);
    this.#timer.unref();
  }

  /** SIGTERM, SIGKILL after 10 s; resolves once the process is gone. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#timer);
    const pid = this.#pid;
    if (pid === undefined || !isRunning(pid, this.spec.marker)) return;
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + KILL_AFTER_MS;
    while (isRunning(pid, this.spec.marker)) {
      if (Date.now() > deadline) process.kill(pid, "SIGKILL");
      await sleep(50);
    }
  }
}
