/**
 * The shared HTTP app (src/observability/http.ts): probes, errors as JSON without stacks,
 * listen-address parsing, graceful close.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createHttpApp, HttpError, listen, parseListenAddress } from "../../src/observability/http.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createRegistry } from "../../src/observability/metrics.ts";

describe("observability http", () => {
  it("answers probes, maps errors to JSON and never sends a stack", async () => {
    let ready = false;
    const lines: string[] = [];
    const log = createLogger({
      component: "test",
      destination: { write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream,
    });
    const app = createHttpApp({
      registry: createRegistry({ defaultMetrics: false }),
      log,
      readiness: () => (ready ? { ready } : { ready, reason: "waiting for the first config" }),
      routes: (a, { json }) => {
        a.get("/boom", () => {
          throw new Error("secret detail at /src/x.ts:12");
        });
        a.get("/teapot", () => {
          throw new HttpError(418, "short and stout", { spout: true });
        });
        a.post("/echo", json, (req, res) => {
          res.json(req.body);
        });
      },
      bodyLimit: "1kb",
    });
    const srv = await listen(app, "127.0.0.1:0");
    try {
      const get = (p: string, init?: RequestInit) => fetch(`${srv.url}${p}`, init);
      assert.equal((await get("/healthz")).status, 200);
      const notReady = await get("/readyz");
      assert.equal(notReady.status, 503);
      assert.match(await notReady.text(), /waiting for the first config/);
      ready = true;
      assert.equal((await get("/readyz")).status, 200);
      const boom = await get("/boom");
      assert.equal(boom.status, 500);
      const body = await boom.text();
      assert.equal(body, '{"error":"internal error; see the server\'s log"}');
      assert.ok(
        lines.some((l) => l.includes("secret detail")),
        "logged with its stack instead",
      );
      assert.deepEqual(await (await get("/teapot")).json(), { error: "short and stout", spout: true });
      const post = (b: string) =>
        get("/echo", { method: "POST", body: b, headers: { "content-type": "application/json" } });
      assert.deepEqual(await (await post('{"a":1}')).json(), { a: 1 });
      const bad = await post("{");
      assert.equal(bad.status, 400);
      assert.doesNotMatch(await bad.text(), /\n\s+at |node_modules|\.js:\d+/);
      const big = await post(JSON.stringify({ a: "x".repeat(2000) }));
      assert.equal(big.status, 413);
      assert.match(
        await (await get("/metrics")).text(),
        /promshard_http_request_duration_seconds_count\{route="\/boom",method="GET",code="500"\} 1/,
      );
    } finally {
      await srv.close();
    }
  });

  it("parses listen addresses", () => {
    assert.deepEqual(parseListenAddress(":9095"), { host: undefined, port: 9095 });
    assert.deepEqual(parseListenAddress("0.0.0.0:80"), { host: "0.0.0.0", port: 80 });
    assert.deepEqual(parseListenAddress("[::1]:0"), { host: "::1", port: 0 });
    for (const bad of ["9095", "host:", "a:b", ":70000", "[::1]"])
      assert.throws(() => parseListenAddress(bad), /listen address/);
  });
});
