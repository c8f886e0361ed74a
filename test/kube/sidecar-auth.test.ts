/**
 * `promshard sidecar --api.auth=kubernetes` as the chart (sidecarToken.auth=kubernetes) sets it
 * up, against a real kube-apiserver 1.37: the chart's RBAC applied (the coordinator's Role, the
 * shard ServiceAccount bound to system:auth-delegator), the coordinator's token requested as the
 * chart's projected volume asks for it (audience promshard.io/sidecar) and read the way the
 * coordinator reads it. The sidecar, a process with its shard ServiceAccount's kubeconfig,
 * takes that token; it refuses another account's, the coordinator's own API-audience token, a
 * static token and none, with the reason, and logs nothing of any token.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { dump, loadAll } from "js-yaml";
import { httpShardClient, tokenFromFile } from "../../src/coordinator/shard-client.ts";
import { SIDECAR_AUDIENCE } from "../../src/kube/token-review.ts";
import { CHART_DIR, helm } from "../support/helm.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";
import { freePort } from "../support/ports.ts";

const NS = "monitoring";
const repo = fileURLToPath(new URL("../../", import.meta.url));

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  [k: string]: any;
}

interface Sidecar {
  url: string;
  child: ChildProcess;
  output: () => string;
}

describe("sidecar --api.auth=kubernetes as the chart sets it up", { timeout: 180_000 }, () => {
  let cp: ControlPlane;
  let objects: Obj[];
  let sidecar: Sidecar;
  let undelegated: Sidecar;
  const sent: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), "promshard-sidecar-auth-"));
  const coordinatorSA = "t-promshard-coordinator";
  const shardSA = "t-promshard-shard";

  /** A TokenRequest as the kubelet makes it for a projected volume. */
  const requestToken = async (sa: string, audiences?: string[]) => {
    const tr = await cp.api<{ status: { token: string } }>(
      "POST",
      `/api/v1/namespaces/${NS}/serviceaccounts/${sa}/token`,
      { body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences } } },
    );
    sent.push(tr.status.token);
    return tr.status.token;
  };

  const startSidecar = async (name: string, kubeconfig: string): Promise<Sidecar> => {
    const port = await freePort();
    const closed = await freePort();
    const configFile = join(dir, `${name}.yml`);
    writeFileSync(configFile, dump({ scrape_configs: [{ job_name: "a", static_configs: [{ targets: ["x:1"] }] }] }));
    const chunks: string[] = [];
    const child = spawn(
      process.execPath,
      [
        join(repo, "src/cli.ts"),
        "sidecar",
        `--config.file=${configFile}`,
        `--output.dir=${join(dir, name, "out")}`,
        `--state.dir=${join(dir, name, "state")}`,
        `--listen=127.0.0.1:${port}`,
        // Nothing listens there: the API is what is tested, not Prometheus.
        `--prometheus.url=http://127.0.0.1:${closed}`,
        "--prometheus.version=3.16",
        "--api.auth=kubernetes",
        `--kubeconfig=${kubeconfig}`,
        "--shard.pod-name=t-promshard-shard-0",
        "--log.level=debug",
      ],
      { cwd: repo, env: { ...process.env, POD_NAMESPACE: NS }, stdio: ["ignore", "pipe", "pipe"] },
    );
    for (const s of [child.stdout!, child.stderr!]) s.on("data", (d: Buffer) => chunks.push(d.toString()));
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`sidecar ${name} exited: ${chunks.join("")}`);
      const ok = await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 300) throw new Error(`sidecar ${name} not up: ${chunks.join("")}`);
      await sleep(100);
    }
    return { url, child, output: () => chunks.join("") };
  };

  const stop = async (s: Sidecar | undefined) => {
    if (!s || s.child.exitCode !== null) return;
    const exited = new Promise((r) => s.child.once("exit", r));
    s.child.kill("SIGTERM");
    await exited;
  };

  const put = (s: Sidecar, token: string) =>
    fetch(`${s.url}/api/v1/assignment`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ version: 1, targets: [] }),
    });

  before(async () => {
    cp = await startControlPlane();
    const r = helm(["template", "t", CHART_DIR, "-n", NS, "--set", "sidecarToken.auth=kubernetes"]);
    assert.equal(r.status, 0, r.stderr);
    objects = (loadAll(r.stdout) as (Obj | null)[]).filter((o): o is Obj => o !== null);
    // The namespace and the ServiceAccounts, each with a kubeconfig of its own.
    const shard = await cp.kubeconfigFor(NS, shardSA);
    await cp.kubeconfigFor(NS, coordinatorSA);
    await cp.kubeconfigFor(NS, "someone-else");
    const lonely = await cp.kubeconfigFor(NS, "not-delegated");
    // The chart's RBAC as it renders.
    for (const o of objects) {
      const base = o.apiVersion === "rbac.authorization.k8s.io/v1" ? "/apis/rbac.authorization.k8s.io/v1" : undefined;
      if (!base || !["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"].includes(o.kind)) continue;
      const plural = `${o.kind.toLowerCase()}s`;
      const path = o.metadata.namespace ? `${base}/namespaces/${o.metadata.namespace}/${plural}` : `${base}/${plural}`;
      await cp.api("POST", path, { body: o });
    }
    [sidecar, undelegated] = await Promise.all([
      startSidecar("shard", shard.path),
      startSidecar("undelegated", lonely.path),
    ]);
  });
  after(async () => {
    await Promise.all([stop(sidecar), stop(undelegated)]);
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the chart binds the shard ServiceAccount to system:auth-delegator and makes no token Secret", () => {
    const binding = objects.find((o) => o.kind === "ClusterRoleBinding" && o.roleRef.name === "system:auth-delegator");
    assert.deepEqual(binding?.subjects, [{ kind: "ServiceAccount", name: shardSA, namespace: NS }]);
    assert.equal(
      objects.some((o) => o.kind === "Secret" && o.metadata.name.endsWith("sidecar-token")),
      false,
    );
    const webhook = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "t-promshard-webhook");
    assert.ok(webhook?.spec.template.spec.containers[0].args.includes("--sidecar.auth=kubernetes"));
  });

  it("the coordinator's projected token, re-read from its file, may push and read; RBAC decides", async () => {
    const coordinator = objects.find((o) => o.kind === "Deployment" && o.metadata.name === coordinatorSA)!;
    const pod = coordinator.spec.template.spec;
    const args: string[] = pod.containers[0].args;
    assert.ok(args.includes("--sidecar.token-file=/var/run/secrets/promshard.io/token/token"));
    const projected = pod.volumes.find((v: { name: string }) => v.name === "token").projected.sources[0]
      .serviceAccountToken;
    assert.deepEqual(projected, { audience: SIDECAR_AUDIENCE, expirationSeconds: 3600, path: "token" });
    const file = join(dir, "coordinator-token");
    const token = tokenFromFile(file);
    // First the pod's default token (the API server's audience), which the sidecar refuses;
    // then, as the kubelet writes the projected one, the next read sends it.
    writeFileSync(file, await requestToken(coordinatorSA));
    await assert.rejects(httpShardClient(sidecar.url, token()).runtime(), /HTTP 403: .*promshard\.io\/sidecar/);
    writeFileSync(file, `${await requestToken(coordinatorSA, [projected.audience])}\n`);
    const client = httpShardClient(sidecar.url, token());
    assert.deepEqual(await client.assign(1, [{ job: "a", labels: { __address__: "x:1" }, sdIndex: 0 }]), []);
    const runtime = await client.runtime();
    assert.equal(runtime.version, 1);
    // A renewed token (the kubelet's, at 80% of its life) is taken as well.
    writeFileSync(file, await requestToken(coordinatorSA, [projected.audience]));
    assert.equal((await httpShardClient(sidecar.url, token()).runtime()).version, 1);
  });

  it("refused: another account's token, the coordinator's API token, a static token, none; the reason says why", async () => {
    const cases: [string, number, RegExp][] = [
      [
        await requestToken("someone-else", [SIDECAR_AUDIENCE]),
        403,
        /system:serviceaccount:monitoring:someone-else may not update shards\/assignment\.promshard\.io in monitoring/,
      ],
      [
        await requestToken(coordinatorSA),
        403,
        /the Kubernetes API does not know it as a token for the audience promshard\.io\/sidecar/,
      ],
      ["static-token-of-the-chart-secret-0123456789", 403, /does not know it/],
    ];
    for (const [token, status, reason] of cases) {
      sent.push(token);
      const res = await put(sidecar, token);
      const text = await res.text();
      assert.equal(res.status, status, text);
      assert.match(text, reason);
      assert.ok(!text.includes(token.slice(-24)), "the answer does not repeat the token");
    }
    const none = await fetch(`${sidecar.url}/api/v1/runtime`);
    assert.equal(none.status, 401);
    assert.match(await none.text(), /authentication required/);
  });

  it("a sidecar whose ServiceAccount is not an auth-delegator: 503, and its log says which binding is missing", async () => {
    const res = await put(undelegated, await requestToken(coordinatorSA, [SIDECAR_AUDIENCE]));
    assert.equal(res.status, 503);
    assert.match(await res.text(), /could not check the bearer token/);
    assert.match(undelegated.output(), /TokenReview answered HTTP 403: .*system:auth-delegator/);
  });

  it("hostile tokens (random, forged, oversized, many at once): 403 (431 over 16 KiB) only, the sidecar stays up", async () => {
    const valid = await requestToken(coordinatorSA, [SIDECAR_AUDIENCE]);
    const tokens = [
      ...Array.from({ length: 150 }, (_, i) => `random-${i}-${Math.random().toString(36).slice(2)}`),
      ...Array.from({ length: 20 }, (_, i) => `${valid.slice(0, -8)}${String(i).padStart(8, "A")}`),
      "x".repeat(12 * 1024),
      "x".repeat(64 * 1024),
    ];
    sent.push(...tokens);
    const statuses = await Promise.all(
      tokens.map((t) =>
        put(sidecar, t).then(
          async (r) => {
            await r.text();
            return r.status;
          },
          () => 0,
        ),
      ),
    );
    const counts: Record<number, number> = {};
    for (const st of statuses) counts[st] = (counts[st] ?? 0) + 1;
    // 431: Node refuses headers over 16 KiB before the sidecar sees them.
    assert.deepEqual(counts, { 403: tokens.length - 1, 431: 1 });
    // And the coordinator still gets through.
    assert.equal((await httpShardClient(sidecar.url, valid).runtime()).version, 1);
  });

  it("no token appears in either sidecar's log", () => {
    assert.ok(sent.length >= 6);
    for (const s of [sidecar, undelegated]) {
      const log = s.output();
      assert.match(log, /"msg"/, "the log was captured");
      for (const t of sent) assert.ok(!log.includes(t.slice(-24)), "a token is in the log");
    }
  });
});
