/**
 * Exploring many new targets: the scrapes at once start at 16 and double while that makes
 * them finish faster (they wait on the network), up to the configured most; work that the
 * coordinator's own CPU limits stops growing. Every target once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { growingParallel } from "../../src/coordinator/explore.ts";

/** Runs growingParallel over n items with `work`; the most in flight at once and the items seen. */
async function run(n: number, max: number, work: () => Promise<void>) {
  let inFlight = 0;
  let peak = 0;
  const seen: number[] = [];
  await growingParallel(
    Array.from({ length: n }, (_, i) => i),
    max,
    async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      try {
        await work();
        seen.push(i);
      } finally {
        inFlight--;
      }
    },
  );
  return { peak, seen: seen.sort((a, b) => a - b) };
}

describe("explore concurrency", () => {
  it("grows past 16 while scrapes wait on the network, up to the most allowed, each target once", async () => {
    const { peak, seen } = await run(3000, 128, () => sleep(10));
    assert.equal(peak, 128);
    assert.deepEqual(
      seen,
      Array.from({ length: 3000 }, (_, i) => i),
    );
  });

  it("stops growing when the coordinator's CPU is the limit", async () => {
    const { peak, seen } = await run(2000, 256, async () => {
      const until = performance.now() + 1;
      while (performance.now() < until);
    });
    // One doubling is how it finds out; a second can come from a preempted first window.
    assert.ok(peak <= 64, `peak ${peak}`);
    assert.equal(seen.length, 2000);
  });

  it("never runs more than the most allowed, even below the start", async () => {
    const { peak } = await run(200, 4, () => sleep(1));
    assert.equal(peak, 4);
  });
});
