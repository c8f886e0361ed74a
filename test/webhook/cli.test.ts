/** `promshard webhook` and `promshard certs` as a user runs them: flags, exit codes, a local round trip. */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { freePort } from "../support/ports.ts";
import { fixture, podReview } from "./support.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const cli = join(repo, "src/cli.ts");

function promshard(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: repo, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("promshard webhook and certs command lines", () => {
  const dir = mkdtempSync(join(tmpdir(), "promshard-cli-"));
  let child: ChildProcess | undefined;
  after(() => {
    if (child?.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  for (const cmd of ["webhook", "certs"]) {
    it(`${cmd} --help prints usage and exits 0`, () => {
      const r = promshard(cmd, "--help");
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^Usage: promshard ${cmd}`));
    });
  }

  const bad: [string[], RegExp][] = [
    [["webhook", "--sidecar.mode", "sometimes"], /--sidecar\.mode must be auto, native or container/],
    [["webhook", "--listen", "8443"], /"8443" is not a listen address/],
    [["webhook", "--sidecar.image", "Not An Image"], /--sidecar\.image: "Not An Image" is not a container image/],
    [["webhook", "--sidecar.port", "0"], /--sidecar\.port: "0" is not a port number/],
    [["webhook", "--pre-stop.delay", "1500ms"], /--pre-stop\.delay must be whole seconds/],
    [["webhook", "--pre-stop.delay", "soon"], /--pre-stop\.delay/],
    [["webhook", "--pre-stop.action", "wait"], /--pre-stop\.action must be auto, sleep or exec/],
    [["webhook", "--prometheus.image-regex", "("], /--prometheus\.image-regex/],
    [["webhook", "--coordinator", "Team A"], /--coordinator: "Team A" is not valid/],
    [
      ["webhook", "--sidecar.auth", "tokenreview"],
      /--sidecar\.auth: "tokenreview" is not valid; accepted: token or kubernetes/,
    ],
    [["webhook", "--sidecar.token-secret", "My Secret"], /--sidecar\.token-secret: "My Secret" is not valid/],
    [["webhook", "--log.level", "loud"], /not a log level/],
    [["webhook", "--web.body-limit", "lots"], /--web.body-limit: "lots" is not a size/],
    [["certs", "--output.dir", "x", "--secret", "y"], /give one of --secret NAME or --output.dir DIR, not both/],
    [["certs", "--output.dir", "x", "--ip", "localhost"], /--ip: "localhost" is not an IP address/],
    [["certs", "--output.dir", "x", "--cert.validity", "1 year"], /--cert.validity: not a valid duration/],
    [["certs", "--output.dir", "x", "--cert.validity", "1d", "--cert.renew-before", "2d"], /must be less than/],
    [["certs", "--output.dir", "x", "--service", "My_Svc"], /is not a Service name/],
  ];
  for (const [args, message] of bad) {
    it(`${args.join(" ")} exits 2 with a one-line reason`, () => {
      const r = promshard(...args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    });
  }

  it("webhook without its certificate files exits 1 saying which file", () => {
    const r = promshard(
      "webhook",
      "--sidecar.mode=native",
      "--pre-stop.action=sleep",
      "--tls.cert-file",
      join(dir, "none.crt"),
      "--tls.key-file",
      join(dir, "none.key"),
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^promshard webhook: --tls.cert-file: cannot read \S+none\.crt: ENOENT/);
  });

  it("certs into a directory, then the webhook serving with them, until SIGTERM", async () => {
    const r = promshard("certs", "--output.dir", dir, "--ip", "127.0.0.1", "--namespace", "monitoring");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^create-ca: no CA yet\nissue-serving: no serving certificate yet\nstored in directory /);
    const again = promshard("certs", "--output.dir", dir, "--ip", "127.0.0.1", "--namespace", "monitoring");
    assert.match(again.stdout, /^up to date in directory .*; next step due \S+ \(in 243d\d+h\d+m\d+s\)\n$/);

    const [port, metricsPort] = [await freePort(), await freePort()];
    child = spawn(
      process.execPath,
      [
        cli,
        "webhook",
        `--listen=127.0.0.1:${port}`,
        `--metrics.listen=127.0.0.1:${metricsPort}`,
        `--tls.cert-file=${join(dir, "tls.crt")}`,
        `--tls.key-file=${join(dir, "tls.key")}`,
        "--sidecar.mode=container",
        "--web.shutdown-delay=0s",
        "--sidecar.image=registry.example.com/promshard:test",
        "--sidecar.auth=kubernetes",
      ],
      { cwd: repo, stdio: ["ignore", "pipe", "pipe"] },
    );
    let logs = "";
    child.stderr!.on("data", (d: Buffer) => {
      logs += d.toString();
    });
    const agent = new Agent({ connect: { ca: readFileSync(join(dir, "ca.crt"), "utf8") } });
    for (let i = 0; ; i++) {
      try {
        const res = await request(`http://127.0.0.1:${metricsPort}/readyz`);
        await res.body.dump();
        if (res.statusCode === 200) break;
      } catch {
        // not listening yet
      }
      assert.ok(i < 100, `webhook did not start: ${logs}`);
      await sleep(100);
    }
    const res = await request(`https://127.0.0.1:${port}/mutate`, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(podReview(fixture("kube-prometheus"))),
    });
    const body = (await res.body.json()) as { response: { patch: string } };
    const patch = JSON.parse(Buffer.from(body.response.patch, "base64").toString()) as {
      path: string;
      value: { name?: string; image?: string; args?: string[] };
    }[];
    const sidecar = patch.find((op) => op.path === "/spec/containers/-" && op.value.name === "promshard-sidecar");
    assert.equal(sidecar?.value.image, "registry.example.com/promshard:test");
    assert.ok(sidecar?.value.args?.includes("--api.auth=kubernetes"), JSON.stringify(sidecar?.value.args));
    await agent.close();
    const exited = new Promise<number | null>((r) => child!.once("exit", r));
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.match(logs, /"msg":"webhook stopped"/);
  });
});
