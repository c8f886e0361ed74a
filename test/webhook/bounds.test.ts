/** What one hostile AdmissionReview can cost: metric series from closed sets only, a bounded log line. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { request } from "undici";
import { fixture, podReview, startTestWebhook, type TestWebhook } from "./support.ts";

describe("admission server bounds", () => {
  let wh: TestWebhook;
  before(async () => {
    wh = await startTestWebhook({ bodyLimit: 16 * 1024 * 1024 });
  });
  after(() => wh.close());

  const metricsSize = async () => (await (await request(`${wh.server.metricsUrl}/metrics`)).body.text()).length;

  it("5000 reviews with distinct operations keep /metrics small (operation is a closed set)", async () => {
    const pod = fixture("seed");
    await wh.post(podReview(pod));
    const before_ = await metricsSize();
    const queue = Array.from({ length: 5000 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = queue.pop(); i !== undefined; i = queue.pop()) {
          const r = await wh.post(podReview(pod, { operation: `OP-${i}-${"x".repeat(64)}` }));
          assert.equal(r.status, 200);
        }
      }),
    );
    const grown = (await metricsSize()) - before_;
    assert.ok(grown < 8 * 1024, `/metrics grew by ${grown} bytes`);
    const text = await (await request(`${wh.server.metricsUrl}/metrics`)).body.text();
    assert.doesNotMatch(text, /OP-\d/);
    assert.ok((await wh.metric("promshard_webhook_admission_requests_total", { operation: "other" })) >= 5000);
  });

  it("a review with 200k unknown promshard.io/ keys logs one bounded line and answers with bounded warnings", async () => {
    const pod = structuredClone(fixture("seed")) as { metadata: { annotations?: Record<string, string> } };
    const annotations: Record<string, string> = { ...pod.metadata.annotations };
    for (let i = 0; i < 200_000; i++) annotations[`promshard.io/unknown-${i}`] = "v";
    pod.metadata.annotations = annotations;
    const long = "n".repeat(100_000);
    wh.logs.length = 0;
    const r = await wh.post(podReview(pod, { name: long, namespace: long, uid: "u".repeat(1024) }));
    assert.equal(r.status, 200);
    assert.ok((r.body.response.warnings ?? []).length <= 10);
    const line = wh.logs.find((l) => l.msg === "admission");
    assert.ok(line, "the admission was logged");
    const size = JSON.stringify(line).length;
    assert.ok(size < 16 * 1024, `the log line is ${size} bytes`);
    assert.match(JSON.stringify(line), /199995 more unknown promshard\.io\/ annotations/);
  });
});
