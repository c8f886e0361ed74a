/** `promshard sidecar` flags: every mistake exits 2 with one line naming it. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "promshard-sidecar-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, "prometheus.yml"), "scrape_configs: []\n");
writeFileSync(join(dir, "token"), "t0k3n\n");
writeFileSync(join(dir, "empty"), "\n");

const base = [
  `--config.file=${join(dir, "prometheus.yml")}`,
  `--output.dir=${join(dir, "out")}`,
  `--state.dir=${join(dir, "state")}`,
  `--api.token-file=${join(dir, "token")}`,
];

describe("promshard sidecar flags", () => {
  const cases: [string, string[], RegExp][] = [
    ["no config", base.slice(1), /--config\.file is required/],
    ["unreadable config", [...base, "--config.file=/nonexistent.yml", "--shard=0"], /--config\.file: cannot read/],
    ["no identity", base, /give --shard N, or --shard.pod-name/],
    ["bad shard", [...base, "--shard=x"], /--shard: "x" is not a shard ordinal/],
    ["bad pod name", [...base, "--shard.pod-name=prometheus"], /pod name "prometheus" does not end in -<ordinal>/],
    ["bad listen", [...base, "--shard=0", "--listen=9095"], /not a listen address/],
    ["bad version", [...base, "--shard=0", "--prometheus.version=latest"], /"latest" is not a Prometheus version/],
    ["bad level", [...base, "--shard=0", "--log.level=loud"], /"loud" is not a log level/],
    ["same labels", [...base, "--shard=0", "--replica.label=shard"], /must differ/],
    ["bad label", [...base, "--shard=0", "--shard.label=a-b"], /not a label name/],
    ["bad url", [...base, "--shard=0", "--prometheus.url=localhost:9090"], /not an http\(s\) URL/],
    ["bad duration", [...base, "--shard=0", "--config.check-interval=soon"], /--config\.check-interval/],
    ["missing token", [...base, "--shard=0", "--api.token-file=/nonexistent"], /cannot read \/nonexistent/],
    ["empty token", [...base, "--shard=0", `--api.token-file=${join(dir, "empty")}`], /is empty/],
    ["unknown flag", [...base, "--shard=0", "--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [name, args, reason] of cases) {
    it(name, () => {
      const listen = args.some((a) => a.startsWith("--listen=")) ? [] : ["--listen=127.0.0.1:0"];
      const r = spawnSync(process.execPath, [CLI, "sidecar", ...args, ...listen], {
        encoding: "utf8",
        env: { ...process.env, POD_NAME: "" },
        timeout: 20_000,
      });
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, reason);
    });
  }
});
