/**
 * No config error repeats a credential: for invalid configs with a secret in every place a
 * credential is written (or ends up by mistake), the secret is in no message or path of
 * parsing, validation or `promshard check config`. Those messages reach the coordinator's
 * APIs, events, status page and logs and the sidecar's /readyz (test/coordinator/config-secrets.test.ts).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { runCommand } from "../../src/cli/command.ts";
import { root } from "../../src/cli/root.ts";
import { buildReport } from "../../src/cli/targets.ts";
import { checkReferencedFiles } from "../../src/config/check.ts";
import { PromshardError, PromshardErrors } from "../../src/errors.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { redactUrl } from "../../src/prom/go-url.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { job, SECRET_CONFIGS, WHERE } from "./secret-configs.ts";

const DIALECTS = [dialectFor("2.42"), dialectFor("3.16")];
/** Secrets made of characters that need no escaping in a URL's userinfo or a plain YAML scalar. */
const secret = fc.stringMatching(/^[A-Za-z0-9]{10,20}$/).map((s) => `Sx${s}`);

/** Every message and path an error carries, the nested ones included. */
function texts(err: unknown): string[] {
  if (err instanceof PromshardErrors) return [err.message, ...err.errors.flatMap(texts)];
  if (err instanceof PromshardError) return [err.message, err.path ?? "", ...(err.cause ? texts(err.cause) : [])];
  return [String(err)];
}

function configErrors(text: string, directory: string): string[] {
  const out: string[] = [];
  for (const dialect of DIALECTS) {
    try {
      const config = parseConfig(text, { dialect, directory });
      const { errors, warnings } = checkReferencedFiles(config, { syntaxOnly: false });
      out.push(...errors.flatMap(texts), ...warnings.flatMap(texts));
    } catch (err) {
      const t = texts(err);
      assert.ok(err instanceof PromshardError, `not a PromshardError: ${t.join("\n")}`);
      out.push(...t);
    }
  }
  return out;
}

describe("config errors never repeat a secret", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-secrets-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [name, make] of SECRET_CONFIGS) {
    it(name, () => {
      fc.assert(
        fc.property(secret, (s) => {
          const messages = configErrors(make(s, JSON.stringify(s)), dir);
          assert.ok(messages.length > 0, "the config is invalid, so there is an error to look at");
          for (const m of messages) assert.ok(!m.includes(s), `the secret is in: ${m}`);
        }),
        { numRuns: 25 },
      );
    });
  }

  it("promshard check config prints no secret (both versions), with the problems still named", async () => {
    const file = join(dir, "prometheus.yml");
    for (const [name, make] of SECRET_CONFIGS) {
      const s = `Sx${name.length}Q9zT4kLm`;
      writeFileSync(file, make(s, JSON.stringify(s)));
      for (const version of ["2.42", "3.16"]) {
        let out = "";
        const sink = new Writable({
          write(chunk, _enc, done) {
            out += String(chunk);
            done();
          },
        });
        const code = await runCommand(root, ["check", "config", "--prometheus.version", version, file], {
          stdout: sink,
          stderr: sink,
        });
        assert.equal(code, 1, `${name} (${version}) fails the check:\n${out}`);
        assert.ok(!out.includes(s), `${name} (${version}): the secret is in the output:\n${out}`);
        assert.match(out, WHERE, `${name}: names where`);
      }
    }
  });

  it("file_sd files: a syntax error, a wrong type and a refused URL target repeat no secret", async () => {
    const s = "SxFileSd9Qw2";
    const files: Record<string, string> = {
      "bad.json": `[{"targets": ["127.0.0.1:9"], "labels": {"token": ${s}}}]`,
      "type.json": `[{"targets": [{"password": "${s}"}], "labels": {"token": ["${s}"]}}]`,
      "label.json": `[{"targets": ["127.0.0.1:9"], "labels": {"token": ["${s}"]}}]`,
      "url.json": `[{"targets": ["https://user:${s}@127.0.0.1:9/metrics"]}]`,
    };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const config = `scrape_configs:\n${Object.keys(files)
      .map((f) => `- job_name: ${f}\n  file_sd_configs: [{files: [${f}]}]\n`)
      .join("")}`;
    const messages = configErrors(config, dir);
    assert.equal(messages.length >= 4, true, messages.join("\n"));
    for (const m of messages) assert.ok(!m.includes(s), `the secret is in: ${m}`);
    const report = await buildReport(parseConfig(config, { dialect: DIALECTS[1]!, directory: dir }));
    assert.ok(report.report.failedTargets.length > 0, "the URL target is refused");
    assert.ok(!JSON.stringify(report).includes(s), JSON.stringify(report.report.failedTargets));
    assert.equal(
      report.report.failedTargets[0]!.discoveredLabels.__address__,
      "https://user:xxxxx@127.0.0.1:9/metrics",
    );
  });

  it("URLs in messages have their password replaced as Go's URL.Redacted does", () => {
    assert.equal(redactUrl("https://user:pw@host:1/metrics?x=1"), "https://user:xxxxx@host:1/metrics?x=1");
    assert.equal(redactUrl("https://user:p@w:d@host/x"), "https://user:xxxxx@host/x");
    assert.equal(redactUrl("user:pw@host:9090/x"), "user:xxxxx@host:9090/x");
    assert.equal(redactUrl("https://user@host/x"), "https://user@host/x");
    assert.equal(redactUrl("https://host:1/x@y:z"), "https://host:1/x@y:z");
    assert.equal(redactUrl("host:9090"), "host:9090");
  });

  it("the messages still say where and what: the params value and the static URL", () => {
    const params = configErrors(job("  params: {api_key: Sxabc}\n"), dir);
    assert.ok(params.some((m) => /params\.api_key: must be a list of values: write it as \[value\]/.test(m)));
    const url = configErrors(
      'scrape_configs:\n- job_name: j\n  static_configs: [{targets: ["https://user:Sxabc@127.0.0.1:9/metrics"]}]\n',
      dir,
    );
    assert.ok(
      url.some((m) => m.includes('"https://user:xxxxx@127.0.0.1:9/metrics" is not a valid hostname; give host:port')),
      url.join("\n"),
    );
  });
});
