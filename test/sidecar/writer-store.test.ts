/**
 * Target files and the persisted assignment on disk: files written through a temporary
 * file that Prometheus's `*.json` glob cannot match, only when changed, stale ones removed;
 * the assignment saved atomically, loaded back, a corrupt file moved aside.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { AssignedTarget } from "../../src/contract/assignment.ts";
import { AssignmentStore } from "../../src/sidecar/store.ts";
import { TargetFileWriter } from "../../src/sidecar/writer.ts";

const dir = mkdtempSync(join(tmpdir(), "promshard-writer-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("target file writer", () => {
  const targets = join(dir, "targets");

  it("writes only what changed and removes what is no longer produced", async () => {
    const w = new TargetFileWriter(targets);
    const first = await w.write(
      new Map([
        ["a-1/sd.json", "[]\n"],
        ["b-2/sd.json", '[{"targets":["x:1"]}]\n'],
        ["b-2/f0_x.json.json", "[]\n"],
      ]),
    );
    assert.deepEqual(first, {
      written: ["a-1/sd.json", "b-2/sd.json", "b-2/f0_x.json.json"],
      removed: [],
      unchanged: 0,
    });
    const mtime = statSync(join(targets, "a-1/sd.json")).mtimeMs;
    const second = await w.write(
      new Map([
        ["a-1/sd.json", "[]\n"],
        ["b-2/sd.json", "[]\n"],
      ]),
    );
    assert.deepEqual(second, { written: ["b-2/sd.json"], removed: ["b-2/f0_x.json.json"], unchanged: 1 });
    assert.equal(statSync(join(targets, "a-1/sd.json")).mtimeMs, mtime);
    const third = await w.write(new Map([["a-1/sd.json", "[]\n"]]));
    assert.deepEqual(third.removed, ["b-2/sd.json"]);
    assert.ok(!existsSync(join(targets, "b-2")), "an empty job directory goes too");
  });

  it("a new writer reads what is there: nothing rewritten, crash leftovers removed", async () => {
    mkdirSync(join(targets, "a-1"), { recursive: true });
    writeFileSync(join(targets, "a-1", ".0badc0de.tmp"), "half");
    const w = new TargetFileWriter(targets);
    const res = await w.write(new Map([["a-1/sd.json", "[]\n"]]));
    assert.deepEqual(res, { written: [], removed: [], unchanged: 1 });
    assert.deepEqual(readdirSync(join(targets, "a-1")), ["sd.json"]);
  });

  it("refuses paths outside the targets directory", async () => {
    const w = new TargetFileWriter(targets);
    await assert.rejects(w.write(new Map([["../x/sd.json", "[]"]])), /refusing/);
    await assert.rejects(w.write(new Map([["sd.json", "[]"]])), /refusing/);
  });
});

describe("assignment store", () => {
  const stateDir = join(dir, "state");

  it("saves atomically and loads back", async () => {
    const store = new AssignmentStore(stateDir);
    assert.deepEqual(await store.load(), { state: "none" });
    const targets: AssignedTarget[] = [
      { job: "a", labels: { __address__: "x:1", l: "v" }, sdIndex: 0 },
      { job: "b", labels: { __address__: "y:1" } },
    ];
    const saved = await store.save({ version: 7, targets }, new Date("2026-01-02T03:04:05Z"));
    assert.deepEqual(await store.load(), { state: "loaded", assignment: saved });
    assert.deepEqual(saved, { version: 7, appliedAt: "2026-01-02T03:04:05.000Z", targets });
    assert.deepEqual(readdirSync(stateDir), ["assignment.json"], "no temporary file left");
  });

  it("moves a corrupt file aside and starts with none", async () => {
    const store = new AssignmentStore(stateDir);
    writeFileSync(store.path, '{"format":1,"version":');
    const res = await store.load();
    assert.equal(res.state, "corrupt");
    assert.ok(res.state === "corrupt" && /not JSON/.test(res.problem));
    assert.ok(res.state === "corrupt" && readFileSync(res.movedTo, "utf8").startsWith('{"format"'));
    assert.deepEqual(await store.load(), { state: "none" });
  });
});
