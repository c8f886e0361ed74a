/**
 * What every bench/*.bench.ts uses: time a function, print a table with a ratio against a
 * baseline measured in the same process, and keep the numbers with the machine they came from.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";

export interface Measurement {
  name: string;
  /** Timed runs (warm-up runs excluded). */
  runs: number;
  medianMs: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
}

export interface MeasureOptions {
  /** Timed runs; or give durationMs. Default: durationMs 1000. */
  iterations?: number;
  /** Keep running until this much time was spent timing. */
  durationMs?: number;
  /** Untimed runs first, for the JIT and caches. Default: a tenth of the iterations, or a tenth of the duration. */
  warmup?: number;
}

/** Runs `fn` repeatedly (awaiting it if it returns a promise) and reports per-run times. */
export async function measure(name: string, fn: () => unknown, opts: MeasureOptions = {}): Promise<Measurement> {
  const durationMs = opts.iterations === undefined ? (opts.durationMs ?? 1000) : undefined;
  const warmup = opts.warmup ?? (opts.iterations === undefined ? undefined : Math.ceil(opts.iterations / 10));
  if (warmup === undefined) {
    const until = performance.now() + (durationMs ?? 0) / 10;
    do await fn();
    while (performance.now() < until);
  } else {
    for (let i = 0; i < warmup; i++) await fn();
  }
  const times: number[] = [];
  const end = performance.now() + (durationMs ?? 0);
  while (
    opts.iterations === undefined ? performance.now() < end || times.length === 0 : times.length < opts.iterations
  ) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.max(0, Math.ceil(q * times.length) - 1))]!;
  const mid = times.length >> 1;
  return {
    name,
    runs: times.length,
    medianMs: times.length % 2 === 1 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2,
    p99Ms: at(0.99),
    meanMs: times.reduce((s, t) => s + t, 0) / times.length,
    minMs: times[0]!,
    maxMs: times[times.length - 1]!,
  };
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toPrecision(3));

/**
 * console.table of the rows; "× baseline" is each row's median time over the baseline row's
 * (below 1 is faster than the baseline). Extra fields on a row become extra columns.
 */
export function printTable(rows: readonly (Measurement & Record<string, unknown>)[], baseline?: string): void {
  const base = baseline === undefined ? undefined : rows.find((r) => r.name === baseline);
  if (baseline !== undefined && base === undefined) {
    throw new Error(`printTable: no row named "${baseline}" to use as the baseline; rows: ${rows.map((r) => r.name)}`);
  }
  console.table(
    rows.map(({ name, runs, medianMs, p99Ms, meanMs: _mean, minMs: _min, maxMs: _max, ...extra }) => ({
      name,
      runs,
      "median ms": fmt(medianMs),
      "p99 ms": fmt(p99Ms),
      "ops/s": Math.round(1000 / medianMs),
      ...(base ? { "× baseline": `${(medianMs / base.medianMs).toFixed(2)}×` } : {}),
      ...extra,
    })),
  );
}

/** Writes bench/results/<name>.json ({name, machine, data}); returns its path. */
export function writeResults(name: string, data: unknown): string {
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const path = `${dir}${name}.json`;
  const cpu = cpus();
  const machine = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}/${process.arch}`,
    cpu: cpu[0]?.model ?? "unknown",
    cpus: cpu.length,
    memoryMiB: Math.round(totalmem() / 2 ** 20),
  };
  writeFileSync(path, `${JSON.stringify({ name, machine, data }, null, 2)}\n`);
  return path;
}
