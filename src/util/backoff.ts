/** An exponential backoff: `initialMs` after the first failure, doubling up to `maxMs`. */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** The wait after the `failures`-th failure in a row (1 for the first); 0 before any. */
export function backoffDelay(b: Backoff, failures: number): number {
  if (failures <= 0) return 0;
  // Capped before the power, so a long outage cannot overflow to Infinity.
  return Math.min(b.maxMs, b.initialMs * 2 ** Math.min(failures - 1, 30));
}
