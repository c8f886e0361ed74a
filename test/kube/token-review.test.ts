/**
 * ServiceAccount tokens checked by a real kube-apiserver 1.37 (TokenReview + SubjectAccessReview):
 * the sidecar's API takes the coordinator's token when RBAC grants it update/get on
 * shards/assignment|runtime.promshard.io, refuses another account's and a forged one, and
 * says nothing of the token; the coordinator's reload check works the same way.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dump } from "js-yaml";
import { kubeApi } from "../../src/kube/api.ts";
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
