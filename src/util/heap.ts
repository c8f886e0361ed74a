import { setFlagsFromString } from "node:v8";

/**
 * How far V8 lets the old generation grow past what survived the last full GC before the next
 * one. By default up to four times; a long-running promshard process keeps a steady live set and
 * makes its garbage in bursts (a sidecar's PUTs, a coordinator's rounds that move targets), so
 * its heap settled at several times its live set. Growing by 25 % holds it near that:
 * - a sidecar: 300 whole-set pushes of 6.45 MiB in a row went from 210 to 223 MiB (peak 223)
 *   instead of 346 to 446 (peak 464), for PUTs ~25 % slower (385 instead of 295 ms median for a
 *   re-PUT of 10,000 targets); `--optimize-for-size` held 153 MiB but made PUTs 7 times slower;
 * - the coordinator at 1,000,000 targets and 500 shards (bench/scale.bench.ts): peak RSS 3,672
 *   -> 2,881-2,913 MiB, steady rounds as fast (79-111 ms), rounds that move targets 10.9-15.3 s
 *   instead of 8.2-12.7 (more full GCs of a 1.6 GiB heap). 10 % slowed the first assignment's
 *   explore to a crawl (its adaptive concurrency took the GC pauses for slow targets).
 * Set by the process itself, so that it holds however the process was started (a pod's
 * container, `promshard local`, a benchmark).
 */
export function limitHeapGrowth(): void {
  setFlagsFromString("--heap-growing-percent=25");
}
