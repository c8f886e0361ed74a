/**
 * ServiceAccount tokens checked by a real kube-apiserver 1.37 (TokenReview + SubjectAccessReview):
 * the sidecar's API takes the coordinator's token when RBAC grants it update/get on
 * shards/assignment|runtime.promshard.io, refuses another account's and a forged one, and
 * says nothing of the token; the coordinator's reload check works the same way.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dump } from "js-yaml";
import { inClusterApi, kubeApi } from "../../src/kube/api.ts";
import { reloadAccess, sidecarAccess, tokenReviewVerifier } from "../../src/kube/token-review.ts";
import type { Request } from "../../src/observability/http.ts";
import { createLogger } from "../../src/observability/log.ts";
import { Sidecar } from "../../src/sidecar/sidecar.ts";
import { type PromProxy, sidecarClient, startProxy } from "../fixtures/sidecar/harness.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";

const NS = "monitoring";

describe("TokenReview authentication against a real kube-apiserver", { timeout: 180_000 }, () => {
  let cp: ControlPlane;
  let proxy: PromProxy;
  let sidecar: Sidecar;
  let coordinatorToken: string;
  let otherToken: string;
  const dir = mkdtempSync(join(tmpdir(), "promshard-tokenreview-"));
  before(async () => {
    cp = await startControlPlane();
    coordinatorToken = (await cp.kubeconfigFor(NS, "promshard-coordinator")).token;
    otherToken = (await cp.kubeconfigFor(NS, "someone-else")).token;
    await cp.api("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, {
      body: {
        metadata: { name: "promshard-shards" },
        rules: [
          {
            apiGroups: ["promshard.io"],
            resources: ["shards/assignment", "shards/runtime", "coordinators/reload"],
            verbs: ["get", "update", "create"],
          },
        ],
      },
    });
    await cp.api("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
      body: {
        metadata: { name: "promshard-coordinator" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "promshard-shards" },
        subjects: [{ kind: "ServiceAccount", name: "promshard-coordinator", namespace: NS }],
      },
    });
    const configFile = join(dir, "prometheus.yml");
    writeFileSync(configFile, dump({ scrape_configs: [{ job_name: "a", static_configs: [{ targets: ["x:1"] }] }] }));
    proxy = await startProxy();
    await proxy.down();
    sidecar = new Sidecar({
      configFile,
      prometheusUrl: proxy.url,
      outputDir: join(dir, "out"),
      stateDir: join(dir, "state"),
      listen: "127.0.0.1:0",
      // The sidecar checks with its own credentials (here the admin's; in a pod its
      // ServiceAccount bound to system:auth-delegator).
      tokenVerifier: tokenReviewVerifier({
        api: kubeApi(cp.kubeconfigPath),
        access: (req) => sidecarAccess(req.method, NS, "prometheus-0"),
      }),
      identity: { shard: 0, replica: "0", podName: "prometheus-0" },
      prometheusVersion: "3.16",
      log: createLogger({ component: "sidecar", level: "silent" }),
    });
    await sidecar.start();
  });
  after(async () => {
    await sidecar?.stop();
    await proxy?.close();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the coordinator's ServiceAccount token may push and read; RBAC decides", async () => {
    const api = sidecarClient(sidecar.url, coordinatorToken);
    const pushed = await api.assign(1, [{ job: "a", labels: { __address__: "x:1" }, sdIndex: 0 }]);
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
    assert.equal((await api.call("GET", "/api/v1/runtime")).status, 200);
  });

  it("another account's token, a forged one and none are refused, and no answer repeats the token", async () => {
    for (const [token, status, reason] of [
      [
        otherToken,
        403,
        /system:serviceaccount:monitoring:someone-else may not update shards\/assignment\.promshard\.io/,
      ],
      [`${coordinatorToken.slice(0, -4)}AAAA`, 403, /the Kubernetes API does not know it/],
      ["not-a-jwt", 403, /does not know it/],
    ] as const) {
      const res = await fetch(`${sidecar.url}/api/v1/assignment`, {
        method: "PUT",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ version: 2, targets: [] }),
      });
      const text = await res.text();
      assert.equal(res.status, status, text);
      assert.match(text, reason);
      assert.ok(token.length < 60 || !text.includes(token.slice(20, 60)), "the token is not repeated");
    }
    assert.equal((await fetch(`${sidecar.url}/api/v1/runtime`)).status, 401);
  });

  it("in a pod, the ServiceAccount's own token and CA check tokens without client-node, and a renewed token is read again", async () => {
    await cp.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
      body: {
        metadata: { name: "promshard-sidecar-auth-delegator" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:auth-delegator" },
        subjects: [{ kind: "ServiceAccount", name: "promshard-sidecar", namespace: NS }],
      },
    });
    const sa = join(dir, "serviceaccount");
    mkdirSync(sa);
    const podToken = (await cp.kubeconfigFor(NS, "promshard-sidecar")).token;
    writeFileSync(join(sa, "token"), podToken);
    writeFileSync(join(sa, "ca.crt"), cp.caPem);
    let clock = 0;
    const env = { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(cp.port) };
    assert.equal(inClusterApi(sa, {}), undefined, "outside a pod: none");
    const api = inClusterApi(sa, env, () => clock);
    assert.ok(api);
    assert.equal(api.server, `https://127.0.0.1:${cp.port}`);
    const verify = tokenReviewVerifier({
      api,
      access: (req) => sidecarAccess(req.method, NS, "prometheus-0"),
      cacheMs: 0,
    });
    const put = { method: "PUT" } as Request;
    assert.deepEqual(await verify(coordinatorToken, put), {
      ok: true,
      user: "system:serviceaccount:monitoring:promshard-coordinator",
    });
    assert.equal((await verify(otherToken, put)).ok, false);
    // The pod's token renewed as one its account no longer may use: read again after a minute.
    writeFileSync(join(sa, "token"), "revoked");
    clock += 30_000;
    assert.equal((await verify(coordinatorToken, put)).ok, true, "the token read a moment ago still serves");
    clock += 31_000;
    await assert.rejects(Promise.resolve(verify(coordinatorToken, put)), /could not check the bearer token/);
    writeFileSync(join(sa, "token"), podToken);
    const loaded = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { registerHooks } = await import("node:module");
         const seen = new Set();
         registerHooks({ resolve(s, c, n) { const r = n(s, c); if (r.url.includes("/node_modules/")) seen.add(r.url.split("/node_modules/")[1].split("/")[0]); return r; } });
         const { inClusterApi } = await import(${JSON.stringify(join(import.meta.dirname, "../../src/kube/api.ts"))});
         await import(${JSON.stringify(join(import.meta.dirname, "../../src/kube/token-review.ts"))});
         const api = inClusterApi(${JSON.stringify(sa)}, ${JSON.stringify(env)});
         await api.call("GET", "/version");
         console.log(JSON.stringify([...seen]));`,
      ],
      { encoding: "utf8" },
    );
    assert.equal(loaded.status, 0, loaded.stderr);
    const packages: string[] = JSON.parse(loaded.stdout);
    for (const heavy of ["@kubernetes", "undici"])
      assert.ok(!packages.includes(heavy), `loaded ${packages.join(", ")}`);
  });

  it("the coordinator's reload check: allowed for its account, refused for another", async () => {
    const verify = tokenReviewVerifier({ api: kubeApi(cp.kubeconfigPath), access: () => reloadAccess(NS) });
    const req = {} as Request;
    assert.deepEqual(await verify(coordinatorToken, req), {
      ok: true,
      user: "system:serviceaccount:monitoring:promshard-coordinator",
    });
    assert.equal((await verify(otherToken, req)).ok, false);
  });
});
