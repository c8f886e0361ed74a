/**
 * The admission endpoint under malformed and hostile AdmissionReviews, over real HTTPS:
 * no crash, no 5xx, no internal error, the uid always echoed, never a patch for a refused
 * object, and every patch applies to the object it was made for.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { request } from "undici";
import { applyPatch, type Op } from "./json-patch.ts";
import { fixture, fixtureNames, type Json, podReview, startTestWebhook, type TestWebhook } from "./support.ts";

const corpus = fixtureNames().map(fixture);

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "~1/~0",
    "a/b~c",
    "\u0000\u001b[31m\r\n",
    "$(POD_NAME)",
    "${jndi:ldap://x}",
    "../../etc/passwd",
    "--config.file=/etc/shadow",
    "\ud800",
    "x".repeat(5000),
  ),
);

const annotationValue = fc.oneof(
  hostileString,
  fc.constantFrom("true", "false", "0", "-1", "1e309", "30000", "9095", "8080", "1Gi", "99999999999999999999"),
);

const annotations = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      "promshard.io/inject",
      "promshard.io/thanos",
      "promshard.io/thanos-objstore-secret",
      "promshard.io/max-series",
      "promshard.io/sidecar-port",
      "promshard.io/sidecar-memory",
      "promshard.io/sidecar-memory-limit",
      "promshard.io/prometheus-container",
      "promshard.io/native-sidecar",
      "promshard.io/status",
      "promshard.io/copied-from-statefulset",
    ),
    hostileString,
  ),
  annotationValue,
  { maxKeys: 8 },
);

/** A corpus pod with hostile metadata and random damage to its spec. */
const hostilePod = fc
  .record({
    base: fc.integer({ min: 0, max: corpus.length - 1 }),
    annotations,
    optIn: fc.boolean(),
    damage: fc.array(
      fc.record({
        path: fc.constantFrom("containers", "initContainers", "volumes", "args", "command", "mounts", "ports", "name"),
        value: fc.oneof(fc.anything({ maxDepth: 3 }), hostileString),
      }),
      { maxLength: 3 },
    ),
  })
  .map(({ base, annotations: a, optIn, damage }) => {
    const pod = structuredClone(corpus[base]!) as Json;
    pod.metadata.annotations = { ...a, ...(optIn ? { "promshard.io/inject": "true" } : {}) };
    const c = pod.spec.containers[0];
    for (const d of damage) {
      if (d.path === "containers" || d.path === "initContainers" || d.path === "volumes") pod.spec[d.path] = d.value;
      else if (d.path === "args" || d.path === "command") c[d.path] = d.value;
      else if (d.path === "mounts") c.volumeMounts = d.value;
      else if (d.path === "ports") c.ports = d.value;
      else c.name = d.value;
    }
    return pod;
  });

const envelopeDamage = fc.oneof(
  fc.constant({}),
  fc.record(
    {
      uid: fc.oneof(fc.uuid(), hostileString, fc.anything()),
      operation: fc.oneof(fc.constantFrom("CREATE", "UPDATE", "DELETE", "CONNECT"), fc.anything()),
      resource: fc.oneof(
        fc.constant({ group: "", version: "v1", resource: "pods" }),
        fc.constant({ group: "apps", version: "v1", resource: "statefulsets" }),
        fc.anything(),
      ),
      subResource: fc.oneof(fc.constantFrom("status", "scale", "ephemeralcontainers"), fc.anything()),
      dryRun: fc.oneof(fc.boolean(), fc.anything()),
      namespace: fc.oneof(hostileString, fc.anything()),
      oldObject: fc.anything({ maxDepth: 2 }),
    },
    { requiredKeys: [] },
  ),
);

const review = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(hostilePod, envelopeDamage).map(([pod, extra]) => podReview(pod, extra)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(hostilePod, envelopeDamage)
      .map(([pod, extra]) =>
        podReview(
          { metadata: { name: "sts", annotations: pod.metadata.annotations }, spec: { template: pod } },
          { resource: { group: "apps", version: "v1", resource: "statefulsets" }, ...extra },
        ),
      ),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 4 }).map((request) => ({ ...podReview({}), request })) },
);

describe("admission endpoint fuzzing", () => {
  let wh: TestWebhook;
  before(async () => {
    wh = await startTestWebhook({ bodyLimit: 512 * 1024 });
  });
  after(() => wh.close());

  it("well-formed JSON of any shape: 200 or 400, uid echoed, no patch when refused, patches apply", async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(review, async (body) => {
        let text: string;
        try {
          text = JSON.stringify(body);
        } catch {
          return; // BigInt and such: not JSON
        }
        if (text === undefined) return;
        const res = await wh.post(text, { raw: true });
        assert.ok([200, 400, 413].includes(res.status), `HTTP ${res.status} for ${text.slice(0, 300)}`);
        if (res.status !== 200) {
          assert.equal(typeof res.body.error, "string");
          seen.set(String(res.status), (seen.get(String(res.status)) ?? 0) + 1);
          return;
        }
        const req = JSON.parse(text).request;
        const r = res.body.response;
        assert.equal(r.uid, req.uid);
        assert.equal(typeof r.allowed, "boolean");
        for (const w of r.warnings ?? []) {
          assert.ok(w.length <= 256 && !/\p{Cc}/u.test(w), JSON.stringify(w));
        }
        const kind = r.allowed ? (r.patch ? "patched" : "allowed") : "refused";
        seen.set(kind, (seen.get(kind) ?? 0) + 1);
        if (!r.allowed) {
          assert.equal(r.patch, undefined);
          assert.equal(r.patchType, undefined);
          assert.equal(typeof r.status.message, "string");
        }
        if (r.patch) {
          assert.equal(r.patchType, "JSONPatch");
          const ops = JSON.parse(Buffer.from(r.patch, "base64").toString("utf8")) as Op[];
          assert.ok(Array.isArray(ops) && ops.length > 0);
          applyPatch(req.object, ops);
        }
      }),
      { numRuns: 600 },
    );
    // Each kind of answer was reached, so the generator tests all of them.
    for (const k of ["400", "allowed", "patched", "refused"])
      assert.ok((seen.get(k) ?? 0) > 5, JSON.stringify([...seen]));
  });

  it("raw bytes, truncated JSON and odd content types: 400, 413 or 415, never 5xx", async () => {
    const valid = JSON.stringify(podReview(fixture("seed")));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)),
          fc.integer({ min: 0, max: valid.length - 1 }).map((n) => valid.slice(0, n)),
          fc.constant(`${"[".repeat(100_000)}${"]".repeat(100_000)}`),
          fc.constant(`{"a":${"[".repeat(50_000)}`),
          fc.constant(" "),
        ),
        fc.constantFrom("application/json", "text/plain", "application/json; charset=latin1", "", "application/cbor"),
        async (body, contentType) => {
          const res = await request(`${wh.server.url}/mutate`, {
            method: "POST",
            dispatcher: wh.agent,
            headers: contentType ? { "content-type": contentType } : {},
            body,
          });
          await res.body.dump();
          assert.ok([200, 400, 413, 415].includes(res.statusCode), `HTTP ${res.statusCode}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a deeply nested object inside a valid review is allowed unchanged, not a crash", async () => {
    const n = 20_000;
    const deep = `${'{"a":'.repeat(n)}{}${"}".repeat(n)}`;
    const text = JSON.stringify(podReview({ ...fixture("seed"), deep: "DEEP" })).replace('"DEEP"', deep);
    const res = await wh.post(text, { raw: true });
    assert.ok([200, 400].includes(res.status));
  });

  it("afterwards: the process is healthy, no internal error was logged or counted, no prototype was polluted", async () => {
    const health = await request(`${wh.server.metricsUrl}/healthz`);
    assert.equal(health.statusCode, 200);
    await health.body.dump();
    assert.equal(await wh.metric("promshard_webhook_errors_total", { reason: "internal" }), 0);
    assert.deepEqual(
      wh.logs.filter((l) => l.level === "error"),
      [],
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
  });
});
