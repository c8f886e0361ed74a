/**
 * The Thanos harness itself: a component it starts is ready and answers, stop() leaves no
 * process and no temp dir behind, withLogs() puts every component's log into a failure, a
 * component that cannot start fails with its log, and a missing binary names the command
 * that builds it.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { THANOS_VERSION, ThanosStack, thanosBinary } from "./thanos.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `needle` (a component and its watchdog both name its dir). */
function processesMentioning(needle: string): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, "utf8").includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("the Thanos test harness", () => {
  it(`runs thanos ${THANOS_VERSION} built with slicelabels`, () => {
    // kingpin prints the version on stderr.
    const { stdout, stderr } = spawnSync(thanosBinary(), ["--version"], { encoding: "utf8" });
    const out = `${stdout}${stderr}`;
    assert.match(out, new RegExp(`version ${THANOS_VERSION.replaceAll(".", "\\.")}`));
    assert.match(out, /tags:\s+netgo,slicelabels/);
  });

  it("starts a query, stops it without leftovers, and reports logs on failure", { timeout: 60_000 }, async () => {
    const stack = new ThanosStack();
    const q = await stack.query({ name: "harness query" });
    assert.equal(await q.value("vector(7)"), 7);
    assert.deepEqual(await q.stores(), {});
    const err = await stack
      .withLogs(async () => {
        throw new Error("boom");
      })
      .catch((e: Error) => e);
    assert.match(err.message, /^boom\n/);
    assert.match(err.message, /--- harness query ---\n.*msg=/s);
    const { pid } = q.process;
    await stack.stop();
    assert.equal(alive(pid), false);
    assert.equal(existsSync(q.dir), false);
    assert.deepEqual(processesMentioning(q.dir), []);
  });

  it("fails a component that cannot start with its command line and log", { timeout: 60_000 }, async () => {
    const stack = new ThanosStack();
    const err = await stack.start("bad", () => ["query", "--no-such-flag"]).catch((e: Error) => e);
    assert.ok(err instanceof Error);
    assert.match(err.message, /thanos bad .*query --no-such-flag.* did not become ready: exited with status 1/s);
    assert.match(err.message, /unknown long flag '--no-such-flag'/);
    await stack.stop();
  });

  it("names the command that builds a missing binary", () => {
    const saved = process.env.PROMSHARD_THANOS_BIN;
    process.env.PROMSHARD_THANOS_BIN = join("/nonexistent", "thanos");
    try {
      assert.throws(() => thanosBinary(), /\/nonexistent\/thanos is missing; run `make tools`/);
    } finally {
      if (saved === undefined) delete process.env.PROMSHARD_THANOS_BIN;
      else process.env.PROMSHARD_THANOS_BIN = saved;
    }
  });
});
