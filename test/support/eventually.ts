import { setTimeout as sleep } from "node:timers/promises";

/**
 * Polls `fn` every 100 ms until it returns something other than undefined; a throw counts as
 * "not yet". On timeout the error names `what` and carries the last throw as its cause.
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const got = await fn();
      if (got !== undefined) return got;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`, { cause: last });
    await sleep(100);
  }
}
