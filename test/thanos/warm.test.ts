/**
 * Whether a shard pod has scraped its assignment (src/thanos/warm.ts), pure part: the sidecar's
 * assignment gauges as its own metrics registry writes them, and Prometheus's active targets in
 * the shape of /api/v1/targets. The probe against a real Prometheus runs in
 * test/thanos/query-endpoints.test.ts and on the cluster (test/chart/install.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRegistry } from "../../src/observability/metrics.ts";
import { sidecarMetrics } from "../../src/sidecar/metrics.ts";
import { appliedAssignment, scrapedAll } from "../../src/thanos/warm.ts";

describe("a shard pod's warmth", () => {
  it("the applied assignment from the sidecar's own metrics: none yet at -1, then its version and size", async () => {
    const registry = createRegistry();
    const m = sidecarMetrics(registry, { shard: 0, replica: "1" });
    m.assignmentVersion.set(-1);
    m.assignedTargets.set(0);
    assert.equal(appliedAssignment(await registry.metrics()), "its sidecar has no assignment yet");
    m.assignmentVersion.set(7);
    m.assignedTargets.set(3);
    assert.deepEqual(appliedAssignment(await registry.metrics()), { version: 7, targets: 3 });
    assert.equal(appliedAssignment("up 1\n"), "its sidecar's /metrics has no assignment gauges");
  });

  it("every active target scraped once, at least as many as assigned; a target not scraped yet says so", () => {
    const answer = (...health: string[]) => ({
      status: "success",
      data: { activeTargets: health.map((h) => ({ health: h, lastScrape: "2026-12-05T00:00:00Z" })) },
    });
    assert.deepEqual(scrapedAll(answer("up", "down"), 2), { warm: true });
    assert.deepEqual(scrapedAll(answer(), 0), { warm: true });
    assert.deepEqual(scrapedAll(answer("up", "unknown", "unknown"), 3), {
      warm: false,
      reason: "2 of 3 targets not scraped yet",
    });
    assert.deepEqual(scrapedAll(answer("up"), 2), { warm: false, reason: "its Prometheus has 1 of 2 targets" });
    assert.equal(scrapedAll({ status: "error" }, 0).warm, false);
    assert.equal(scrapedAll(null, 0).warm, false);
  });
});
