import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { flagsDoc, type LoadedCommand, loadCommand, loadTree, runCommand } from "../../src/cli/command.ts";
import { root } from "../../src/cli/root.ts";

/**
 * Dashed names kept on purpose: promtool's own flag of the same meaning (--syntax-only), and
 * Kubernetes controllers' (kube-controller-manager --leader-elect, turned off by --no-leader-elect).
 */
const ALLOWED_DASHED = new Set(["syntax-only", "leader-elect"]);

const repo = fileURLToPath(new URL("../../", import.meta.url));
const cli = join(repo, "src/cli.ts");

function promshard(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: repo, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The coordinator with the flags it requires, and `extra`: each check fails before anything starts. */
function coordinator(...extra: string[]) {
  const base = ["--config", "examples/prometheus.yml", "--shards.statefulset", "ns/prom"];
  return promshard("coordinator", ...base, "--sidecar.token-file", "/nonexistent", ...extra);
}

/**
 * Run in a fresh Node with the mode's name as its argument: loads that mode as runCommand
 * does and prints the packages every import resolved to (a hook sees each resolution).
 */
const PACKAGES_OF_MODE = `
import { registerHooks } from "node:module";
const seen = new Set();
registerHooks({
  resolve(spec, ctx, next) {
    const r = next(spec, ctx);
    const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url);
    if (m) seen.add(m[1]);
    return r;
  },
});
const { root } = await import(${JSON.stringify(join(repo, "src/cli/root.ts"))});
const { loadCommand } = await import(${JSON.stringify(join(repo, "src/cli/command.ts"))});
await loadCommand(root.subcommands.find((c) => c.name === process.argv[1]));
console.log(JSON.stringify([...seen]));
`;

describe("promshard command line", () => {
  for (const path of [[], ["check"], ["check", "config"], ["targets"]]) {
    it(`${["promshard", ...path].join(" ")} --help prints usage and exits 0`, () => {
      const r = promshard(...path, "--help");
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Usage: promshard/);
      assert.match(r.stdout, /--help/);
    });
  }

  const bad: [string[], RegExp][] = [
    [["targets", "--bogus"], /^promshard targets: Unknown option '--bogus'; see --help\n$/],
    [["nosuch"], /^promshard: unknown command "nosuch"; see --help\n$/],
    [["targets"], /^promshard targets: --config FILE is required; see --help\n$/],
    [["targets", "--config", "examples/prometheus.yml", "--output", "xml"], /--output must be table or json/],
    [
      ["targets", "--config", "examples/prometheus.yml", "--prometheus.version", "two"],
      /"two" is not a Prometheus version/,
    ],
    [["targets", "--config", "examples/prometheus.yml", "--job", "nope"], /--job "nope" is not a job/],
    [["check", "config"], /give at least one config FILE/],
  ];
  for (const [args, message] of bad) {
    it(`${args.join(" ")} exits 2 with a one-line reason`, () => {
      const r = promshard(...args);
      assert.equal(r.code, 2);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1);
    });
  }

  it("a boolean flag that is on by default turns off as --no-NAME (--no-remote-write.drop-shard, --no-leader-elect)", async () => {
    const seen: unknown[] = [];
    const cmd = {
      name: "t",
      summary: "t",
      flags: { "remote-write.drop-shard": { type: "boolean" as const, description: "d" } },
      run: async (ctx: { values: Record<string, unknown> }) => {
        seen.push(ctx.values["remote-write.drop-shard"]);
        return 0;
      },
    };
    const io = { stdout: process.stdout, stderr: process.stderr };
    assert.equal(await runCommand(cmd, ["--no-remote-write.drop-shard"], io), 0);
    assert.equal(await runCommand(cmd, [], io), 0);
    assert.deepEqual(seen, [false, undefined]);
    const sidecarHelp = promshard("sidecar", "--help").stdout;
    assert.match(sidecarHelp, /--remote-write\.drop-shard/);
  });

  it("coordinator declares --leader-elect (and --no-leader-elect) and --leader-elect.lease", () => {
    // Both were read by the coordinator but not declared: parseArgs refused them as unknown.
    for (const extra of [["--no-leader-elect"], ["--leader-elect"], ["--leader-elect.lease", "ns/lease"]]) {
      const r = promshard("coordinator", "--config", "examples/prometheus.yml", ...extra);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--shards\.statefulset NAMESPACE\/NAME/, r.stderr);
    }
    const bad = coordinator("--leader-elect.lease", "no-slash");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--leader-elect\.lease: "no-slash" is not NAMESPACE\/NAME/);
  });

  it("coordinator refuses a --scale-down.store-url that is not an http(s) URL, before it starts", () => {
    const bad = coordinator("--scale-down.store-url", "http://thanos-store:10902,thanos-store-2:10902");
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--scale-down\.store-url: its entry 2 is not an http\(s\) URL; give each Store Gateway's HTTP address/,
    );
  });

  it("coordinator refuses a --scale-down.query-url that is not an http(s) URL, or one without --scale-down.store-url", () => {
    const store = ["--scale-down.store-url", "http://thanos-store:10902"];
    const bad = coordinator(...store, "--scale-down.query-url", "dns+http://query:9090,dns+query:9090");
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--scale-down\.query-url: its entry 2 is not an http\(s\) URL \(or one prefixed dns\+\); give each Thanos Query's HTTP address/,
    );
    const alone = coordinator("--scale-down.query-url", "http://query:9090");
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--scale-down\.query-url needs --scale-down\.store-url/);
  });

  it("coordinator --thanos.query-url: not http(s), or with a password, exits 2 naming the flag and not the password", () => {
    const run = (url: string) => coordinator("--thanos.query-url", url);
    const ftp = run("ftp://127.0.0.1:9090");
    assert.equal(ftp.code, 2);
    assert.match(ftp.stderr, /--thanos\.query-url must be an http:\/\/ or https:\/\/ URL of Thanos Query/);
    const secret = run("http://admin:hunter2@127.0.0.1:9090");
    assert.equal(secret.code, 2);
    assert.match(secret.stderr, /--thanos\.query-url must not carry a user or password/);
    assert.doesNotMatch(secret.stderr, /hunter2/);
  });

  it("a flag's former name still works, with a warning naming the new one", () => {
    const old = promshard(
      "targets",
      "--config",
      "examples/prometheus.yml",
      "--prometheus-version=2.42",
      "--output",
      "json",
    );
    const now = promshard(
      "targets",
      "--config",
      "examples/prometheus.yml",
      "--prometheus.version=2.42",
      "--output",
      "json",
    );
    assert.equal(old.code, 0, old.stderr);
    assert.equal(old.stdout, now.stdout);
    assert.equal(
      old.stderr,
      "promshard targets: --prometheus-version is deprecated; use --prometheus.version (the old name is accepted until promshard 0.3)\n",
    );
    assert.equal(now.stderr, "");
    const both = promshard(
      "targets",
      "--config",
      "examples/prometheus.yml",
      "--prometheus-version",
      "2.42",
      "--prometheus.version=3",
    );
    assert.equal(both.code, 2);
    assert.match(
      both.stderr,
      /--prometheus-version and --prometheus.version are the same flag; give it once, as --prometheus.version/,
    );
  });

  it("every flag is a word or dotted groups (Prometheus's style), and says its former name when it had one", async () => {
    const walk = (cmd: LoadedCommand): string[] => [
      ...Object.entries(cmd.flags).flatMap(([name, f]) =>
        /^[a-z0-9]+(-[a-z0-9]+)*$/.test(name) && name.includes("-") && !ALLOWED_DASHED.has(name)
          ? [`${cmd.name} --${name}${f.formerly ? "" : " (dashed, not grouped)"}`]
          : [],
      ),
      ...(cmd.subcommands ?? []).flatMap(walk),
    ];
    assert.deepEqual(walk(await loadTree(root)), []);
  });

  it("targets prints Prometheus's /api/v1/targets shape for the example config", () => {
    const r = promshard("targets", "--config", "examples/prometheus.yml", "--output", "json");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out).sort(), ["activeTargets", "collapsedTargets", "droppedTargets", "failedTargets"]);
    assert.equal(out.activeTargets.length, 5);
    assert.equal(out.droppedTargets.length, 1);
    const node = out.activeTargets.find(
      (t: { labels: Record<string, string> }) => t.labels.instance === "10.0.0.1:9100",
    );
    assert.deepEqual(node.labels, {
      host: "10.0.0.1",
      instance: "10.0.0.1:9100",
      job: "node",
      team: "infra",
      zone: "a",
    });
    assert.equal(node.scrapeUrl, "http://10.0.0.1:9100/metrics");
    assert.equal(node.discoveredLabels.__meta_filepath, "examples/targets/nodes.json");
  });

  it("targets prints a table on request, with a summary line", () => {
    const r = promshard("targets", "--config", "examples/prometheus.yml", "--output", "table", "--job", "node");
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^POOL +STATE +URL \/ ERROR +LABELS\n/);
    assert.match(r.stdout, /2 active, 1 dropped, 0 failed\n$/);
  });

  it("check config lists every error and exits 1", () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-cli-"));
    const file = join(dir, "bad.yml");
    writeFileSync(
      file,
      "scrape_configs:\n- job_name: a\n  scrape_interval: soon\n- job_name: a\n- job_name: b\n  relabel_configs: [{action: explode}]\n",
    );
    const r = promshard("check", "config", file);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAILED/);
    const errors = r.stderr.trimEnd().split("\n");
    assert.equal(errors.length, 3, r.stderr);
    assert.match(errors[0]!, /scrape_interval: not a valid duration/);
    assert.match(errors[1]!, /job "a" is already defined/);
    assert.match(errors[2]!, /unknown relabel action "explode"/);
  });

  it("check config reads the files a config names, unless --syntax-only", () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-cli-"));
    const file = join(dir, "p.yml");
    writeFileSync(
      file,
      "rule_files: [missing.rules.yml]\nscrape_configs:\n- job_name: a\n  file_sd_configs: [{files: [t.json]}]\n",
    );
    writeFileSync(join(dir, "t.json"), '[{"targets": ["a:1"], "labels": {"bad-name": "x"}}]');
    const full = promshard("check", "config", file, "--prometheus.version", "2.42");
    assert.equal(full.code, 1);
    assert.match(full.stderr, /rule_files\[0\]: ".*missing.rules.yml" does not point to an existing file/);
    assert.match(full.stderr, /t.json: group 0: "bad-name" is not a valid label name/);
    assert.equal(promshard("check", "config", file, "--syntax-only").code, 0);
  });

  it("check config passes the example config", () => {
    const r = promshard("check", "config", "examples/prometheus.yml");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SUCCESS: 3 scrape job\(s\) found/);
  });

  it("docs/flags.md matches --help (run `make docs` after changing flags)", async () => {
    assert.equal(readFileSync(join(repo, "docs/flags.md"), "utf8"), flagsDoc(await loadTree(root)));
  });

  it("each mode is listed by its module's own name", async () => {
    for (const sub of root.subcommands ?? []) assert.equal((await loadCommand(sub)).name, sub.name);
  });

  it("a mode loads the packages it needs only: a sidecar without --api.auth=kubernetes loads no Kubernetes client and no undici", () => {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", PACKAGES_OF_MODE, "sidecar"], {
      cwd: repo,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const loaded: string[] = JSON.parse(r.stdout);
    assert.ok(loaded.includes("pino"), `the probe sees packages: ${loaded.join(", ")}`);
    for (const heavy of ["@kubernetes/client-node", "node-forge", "undici"])
      assert.ok(!loaded.includes(heavy), `sidecar loaded ${heavy}: ${loaded.join(", ")}`);
  });

  it("local and coordinator load no Kubernetes client before they use one (kubernetes_sd_configs, the cluster's StatefulSets)", () => {
    for (const mode of ["local", "coordinator"]) {
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", PACKAGES_OF_MODE, mode], {
        cwd: repo,
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      const loaded: string[] = JSON.parse(r.stdout);
      assert.ok(loaded.includes("pino"), `the probe sees packages: ${loaded.join(", ")}`);
      assert.ok(!loaded.includes("@kubernetes/client-node"), `${mode} loaded @kubernetes/client-node`);
    }
  });

  it("the ./promshard launcher keeps Node's compile cache: a second start reads the stripped TypeScript from it", () => {
    const cache = mkdtempSync(join(tmpdir(), "promshard-launcher-"));
    const { NODE_COMPILE_CACHE: _, ...inherited } = process.env;
    const env = { ...inherited, XDG_CACHE_HOME: cache };
    const launch = (debug: boolean) =>
      spawnSync(join(repo, "promshard"), ["--help"], {
        cwd: repo,
        encoding: "utf8",
        env: debug ? { ...env, NODE_DEBUG_NATIVE: "COMPILE_CACHE" } : env,
      });
    try {
      assert.equal(launch(false).status, 0);
      const again = launch(true);
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /^Usage: promshard/);
      // Node reports each hit; a hit for the entry point means no type stripping at this start.
      const hit = `retrieving transpile cache for StrippedTypeScript ${pathToFileURL(cli).href}...success`;
      assert.ok(again.stderr.includes(hit), `no compile cache hit for src/cli.ts: ${again.stderr.slice(0, 500)}`);
      assert.ok(readdirSync(join(cache, "promshard/node-compile-cache")).length > 0);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
