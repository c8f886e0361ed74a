/**
 * A rotated token file: the Helm chart's Secret lists the new token above the previous ones
 * while the kubelet brings it to each pod, so a sidecar accepts every token listed, and one
 * dropped from the file stops working.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { PromshardError } from "../../src/errors.ts";
import { TokenFile } from "../../src/sidecar/api.ts";

const dir = mkdtempSync(join(tmpdir(), "promshard-token-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("TokenFile with several tokens", () => {
  it("accepts every listed token and, after a rotation, not the one dropped", () => {
    const path = join(dir, "token");
    writeFileSync(path, "new-token\nprevious-token\n");
    const file = new TokenFile(path);
    assert.equal(file.matches("new-token"), true);
    assert.equal(file.matches("previous-token"), true);
    assert.equal(file.matches("other"), false);
    assert.equal(file.matches("new-token\nprevious-token"), false, "the file's whole text is no token");
    // Another size, so the stamp changes even within the file system's mtime granularity.
    writeFileSync(path, "newest-token\nnew-token\n");
    assert.equal(file.matches("newest-token"), true);
    assert.equal(file.matches("new-token"), true);
    assert.equal(file.matches("previous-token"), false);
  });

  it("refuses a line with a space, naming the line", () => {
    const path = join(dir, "spaced");
    writeFileSync(path, "good\nnot one\n");
    assert.throws(
      () => new TokenFile(path),
      (err: unknown) =>
        err instanceof PromshardError &&
        err.code === "flag_invalid" &&
        /line 2 holds more than one word/.test(err.message),
    );
  });

  it("still refuses an empty file", () => {
    const path = join(dir, "empty");
    writeFileSync(path, "\n\n");
    assert.throws(() => new TokenFile(path), /is empty/);
  });
});
