/**
 * The error codes, checked from one table (src/errors.ts's ErrorCode): each is snake_case,
 * each is raised somewhere in src (no code left behind by a change), and src throws no plain
 * Error, whose message a caller could only match as text.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

const SRC = new URL("../../src/", import.meta.url).pathname;

function sources(dir: string): { file: string; text: string }[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name))
    .map((file) => ({ file, text: readFileSync(file, "utf8") }));
}

describe("error codes", () => {
  const errors = readFileSync(join(SRC, "errors.ts"), "utf8");
  const union = /export type ErrorCode =([^;]+);/.exec(errors)?.[1] ?? "";
  const codes = [...union.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
  const files = sources(SRC).filter((f) => !f.file.endsWith("/errors.ts"));

  it("the table lists codes", () => assert.ok(codes.length >= 10, union));

  it("every code is snake_case and raised somewhere in src", () => {
    for (const code of codes) {
      assert.match(code, /^[a-z]+(_[a-z]+)*$/, code);
      assert.ok(
        files.some((f) => f.text.includes(`"${code}"`)),
        `${code} is in ErrorCode but nothing in src raises it: remove it`,
      );
    }
  });

  it("src throws no plain Error", () => {
    const plain = files.flatMap((f) =>
      f.text
        .split("\n")
        .map((line, i) => [line, i + 1] as const)
        .filter(([line]) => /\bthrow new Error\(/.test(line))
        .map(([line, n]) => `${f.file.slice(SRC.length)}:${n}: ${line.trim()}`),
    );
    assert.deepEqual(plain, [], "throw a PromshardError with a code instead");
  });
});
