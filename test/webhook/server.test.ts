/** The admission server over real HTTPS on loopback: answers, HTTP errors, metrics, probes, certificate reload. */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "node:tls";
import { request } from "undici";
import { applyPatch, type Op } from "./json-patch.ts";
import { fixture, podReview, startTestWebhook, type TestWebhook, testCA, testServing } from "./support.ts";

function decodePatch(response: { patch?: string }): Op[] {
  return JSON.parse(Buffer.from(response.patch!, "base64").toString("utf8"));
}

/** The fingerprint of the certificate the server presents now. */
function servedFingerprint(url: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
      const fp = new X509Certificate(s.getPeerX509Certificate()!.raw).fingerprint256;
      s.end();
      resolve(fp);
    });
    s.once("error", reject);
  });
}

describe("admission server", () => {
  let wh: TestWebhook;
  before(async () => {
    wh = await startTestWebhook({ bodyLimit: 256 * 1024 });
  });
  after(() => wh.close());

  it("answers a pod CREATE with the uid, a JSON patch that applies, and no warnings when there are none", async () => {
    const pod = fixture("kube-prometheus");
    const res = await wh.post(podReview(pod));
    assert.equal(res.status, 200);
    assert.equal(res.body.apiVersion, "admission.k8s.io/v1");
    assert.equal(res.body.kind, "AdmissionReview");
    const r = res.body.response;
    assert.equal(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert.equal(r.allowed, true);
    assert.equal(r.patchType, "JSONPatch");
    assert.equal(r.warnings, undefined);
    const out = applyPatch(pod, decodePatch(r));
    assert.equal(out.metadata?.annotations?.["promshard.io/status"], "injected");
  });

  it("dry runs get the same answer and count as dry runs, not injections", async () => {
    const before_ = await wh.metric("promshard_webhook_injections_total");
    const res = await wh.post(podReview(fixture("seed"), { dryRun: true }));
    assert.equal(res.body.response.patchType, "JSONPatch");
    assert.deepEqual(res.body.response.warnings, [
      "promshard: container prometheus had no args: the image's defaults (--config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus) were written out",
    ]);
    assert.equal(await wh.metric("promshard_webhook_injections_total"), before_);
    assert.equal(
      await wh.metric("promshard_webhook_admission_requests_total", { dry_run: "true", result: "injected" }),
      1,
    );
  });

  it("refuses bad annotations without a patch, with the reason as the status message", async () => {
    const pod = fixture("seed");
    pod.metadata!.annotations!["promshard.io/max-series"] = "lots";
    const res = await wh.post(podReview(pod));
    assert.equal(res.status, 200);
    const r = res.body.response;
    assert.equal(r.allowed, false);
    assert.equal(r.patch, undefined);
    assert.equal(r.patchType, undefined);
    assert.equal(r.status.code, 400);
    assert.match(
      r.status.message,
      /^promshard: annotation promshard\.io\/max-series: "lots" is not valid; accepted: a positive integer$/,
    );
  });

  it("allows what it does not handle: other kinds, operations, subresources, unannotated and unsupported pods", async () => {
    const plain = fixture("seed");
    delete plain.metadata!.annotations;
    const cases = [
      podReview(plain),
      podReview(fixture("no-prometheus")),
      podReview(fixture("seed"), { operation: "UPDATE" }),
      podReview(fixture("seed"), { subResource: "status" }),
      podReview(fixture("seed"), { resource: { group: "", version: "v1", resource: "configmaps" } }),
      podReview(null, { operation: "DELETE", oldObject: fixture("seed") }),
    ];
    for (const review of cases) {
      const res = await wh.post(review);
      assert.equal(res.status, 200);
      assert.equal(res.body.response.allowed, true);
      assert.equal(res.body.response.patch, undefined);
    }
    assert.equal(await wh.metric("promshard_webhook_errors_total", { reason: "unsupported_object" }), 1);
  });

  it("400 for bodies that are not AdmissionReview v1, with the reason", async () => {
    const bad: [unknown, RegExp, boolean?][] = [
      ["{not json", /not JSON/, true],
      ['"a string"', /not JSON/, true],
      [[], /not a JSON object/],
      [{ ...podReview({}), apiVersion: "admission.k8s.io/v1beta1" }, /only admission\.k8s\.io\/v1 is served/],
      [{ ...podReview({}), kind: "Pod" }, /kind is "Pod"/],
      [{ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }, /request is missing/],
      [podReview({}, { uid: "" }), /request\.uid is missing/],
      [podReview({}, { uid: 7 }), /request\.uid is missing/],
      [podReview({}, { operation: undefined }), /request\.operation is missing/],
      [podReview({}, { resource: "pods" }), /request\.resource is missing/],
      [podReview({}, { dryRun: "yes" }), /dryRun is not a boolean/],
    ];
    for (const [body, reason, raw] of bad) {
      const res = await wh.post(body, { raw });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error, reason);
    }
  });

  it("415 for another content type, 413 over the limit, 404 and 405 elsewhere", async () => {
    const review = JSON.stringify(podReview(fixture("seed")));
    for (const contentType of ["text/plain", "application/yaml", "application/x-www-form-urlencoded"]) {
      const res = await wh.post(review, { raw: true, contentType });
      assert.equal(res.status, 415, contentType);
      assert.match(res.body.error, /send application\/json/);
    }
    assert.equal((await wh.post(review, { raw: true, contentType: "application/json; charset=utf-16" })).status, 415);
    assert.equal((await wh.post(review, { raw: true, contentType: "application/json; charset=utf-8" })).status, 200);
    const big = podReview({ ...fixture("seed"), padding: "x".repeat(300 * 1024) });
    const res = await wh.post(big);
    assert.equal(res.status, 413);
    assert.match(res.body.error, /too large/);
    assert.equal(await wh.metric("promshard_webhook_errors_total", { reason: "too_large" }), 1);
    const get = await request(`${wh.server.url}/mutate`, { dispatcher: wh.agent });
    assert.equal(get.statusCode, 405);
    assert.equal(get.headers.allow, "POST");
    await get.body.dump();
    const other = await request(`${wh.server.url}/validate`, { method: "POST", dispatcher: wh.agent });
    assert.equal(other.statusCode, 404);
    await other.body.dump();
  });

  it("serves /healthz, /readyz and /metrics on the plain-HTTP port, with latency by operation and result", async () => {
    for (const path of ["/healthz", "/readyz"]) {
      const res = await request(`${wh.server.metricsUrl}${path}`);
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }
    const count = await wh.metric("promshard_webhook_admission_duration_seconds_count", {
      kind: "Pod",
      operation: "CREATE",
      result: "injected",
    });
    assert.ok(count >= 2);
    assert.ok((await wh.metric("promshard_webhook_certificate_not_after_timestamp_seconds")) > Date.now() / 1000);
  });

  it("answers many reviews at once", async () => {
    const review = podReview(fixture("community-chart"));
    const all = await Promise.all(Array.from({ length: 200 }, () => wh.post(review)));
    assert.ok(all.every((r) => r.status === 200 && r.body.response.patchType === "JSONPatch"));
  });

  it("loads a new certificate from its files without a restart, and keeps the old one while a pair is half-written", async () => {
    const old = await servedFingerprint(wh.server.url);
    assert.equal(old, wh.server.certificate().fingerprint);
    const ca2 = await testCA("second");
    const next = await testServing(ca2);
    // Half-written: the new key with the old certificate.
    writeFileSync(wh.keyFile, next.keyPem);
    await sleep(400);
    assert.equal(await servedFingerprint(wh.server.url), old);
    assert.ok((await wh.metric("promshard_webhook_certificate_reloads_total", { result: "failure" })) >= 1);
    // The old pair keeps working for clients that trust the old CA.
    assert.equal((await wh.post(podReview(fixture("seed")))).status, 200);
    writeFileSync(wh.certFile, next.certPem);
    const deadline = Date.now() + 5000;
    while ((await servedFingerprint(wh.server.url)) === old && Date.now() < deadline) await sleep(50);
    const now = await servedFingerprint(wh.server.url);
    assert.notEqual(now, old);
    assert.equal(now, new X509Certificate(next.certPem).fingerprint256);
    assert.equal(await wh.metric("promshard_webhook_certificate_reloads_total", { result: "success" }), 1);
    const res = await wh.post(podReview(fixture("seed")), { agent: wh.trust(ca2.certPem) });
    assert.equal(res.status, 200);
  });
});

describe("certificate from a Secret volume", () => {
  it("follows the kubelet's atomic swap of the ..data symlink", async () => {
    // How the kubelet lays out a Secret volume: files are links through ..data to a timestamped directory.
    const dir = mkdtempSync(join(tmpdir(), "promshard-secret-volume-"));
    const ca = await testCA("volume");
    const put = (version: string, pair: { certPem: string; keyPem: string }) => {
      mkdirSync(join(dir, version));
      writeFileSync(join(dir, version, "tls.crt"), pair.certPem);
      writeFileSync(join(dir, version, "tls.key"), pair.keyPem);
      symlinkSync(version, join(dir, "..data_tmp"));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    };
    put("..2030_01_01_00_00_00.1", await testServing(ca));
    symlinkSync("..data/tls.crt", join(dir, "tls.crt"));
    symlinkSync("..data/tls.key", join(dir, "tls.key"));
    const wh = await startTestWebhook({ tls: { certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") } });
    try {
      const old = await servedFingerprint(wh.server.url);
      const next = await testServing(ca);
      put("..2030_01_01_00_01_00.2", next);
      const deadline = Date.now() + 5000;
      while ((await servedFingerprint(wh.server.url)) === old && Date.now() < deadline) await sleep(50);
      assert.equal(await servedFingerprint(wh.server.url), new X509Certificate(next.certPem).fingerprint256);
    } finally {
      await wh.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("admission server shutdown", () => {
  it("goes unready first, keeps answering for the shutdown delay, then stops", async () => {
    const wh = await startTestWebhook({ shutdownDelayMs: 600 });
    const stopping = wh.server.stop(1000);
    await sleep(100);
    const ready = await request(`${wh.server.metricsUrl}/readyz`);
    assert.equal(ready.statusCode, 503);
    assert.match(await ready.body.text(), /shutting down/);
    const res = await wh.post(podReview(fixture("seed")));
    assert.equal(res.status, 200);
    await stopping;
    await assert.rejects(wh.post(podReview(fixture("seed"))));
    await wh.close();
  });

  it("refuses to start with a certificate and key that do not belong together", async () => {
    const ca = await testCA();
    const [a, b] = await Promise.all([testServing(ca), testServing(ca)]);
    await assert.rejects(
      startTestWebhook({ tls: { cert: a.certPem, key: b.keyPem } }),
      /key does not belong to the certificate/,
    );
  });
});
