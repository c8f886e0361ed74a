import { PromshardError } from "../errors.ts";
import { parseDuration } from "../prom/duration.ts";
import { type RunContext, UsageError } from "./command.ts";

/**
 * Reading flag values: each reader names the flag in its error, which is a UsageError (exit
 * status 2). One set for every command, so that the same kind of value is checked the same way.
 */
type Values = RunContext["values"];

/** The value, or undefined when the flag is absent or "". */
export function optional(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function required(values: Values, name: string): string {
  const v = optional(values, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

/** Every value of a repeatable flag. */
export function list(values: Values, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === "string" && v !== "" ? [v] : [];
}

export function int(values: Values, name: string, min: number): number {
  const v = values[name];
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer >= ${min}, got "${String(v)}"`);
  return n;
}

export function port(values: Values, name: string): number {
  const v = required(values, name);
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535)
    throw new UsageError(`--${name}: "${v}" is not a port number (1-65535)`);
  return Number(v);
}

/** A Prometheus duration (`30s`, `1h30m`) in milliseconds; `positive` refuses 0. */
export function durationMs(values: Values, name: string, opts: { positive?: boolean } = {}): number {
  const ms = parseDuration(required(values, name));
  if (typeof ms === "object") throw new UsageError(`--${name}: ${ms.error}`);
  if (opts.positive && ms <= 0) throw new UsageError(`--${name}: must be more than 0`);
  return ms;
}

export function optionalDurationMs(values: Values, name: string): number | undefined {
  return optional(values, name) === undefined ? undefined : durationMs(values, name);
}

/** A size such as `8mb` (b, kb, mb, gb; powers of 1024) in bytes. */
export function bytes(values: Values, name: string): number {
  const v = required(values, name);
  const m = /^(\d+)(b|kb|mb|gb)?$/i.exec(v);
  if (!m) throw new UsageError(`--${name}: "${v}" is not a size like 8mb`);
  const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? "b").toLowerCase() as "b"];
  return Number(m[1]) * mult;
}

/** Turns a PromshardError from checking a flag's value into a usage error (exit 2). */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PromshardError) throw new UsageError(err.message);
    throw err;
  }
}
