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
        a.post("/echo", json("the echo"), (req, res) => {
          res.json(req.body);
        });
      },
      bodyLimit: 1024,
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

  it("answers 405 with Allow, HEAD like GET without a body, and refuses bodies it cannot read as JSON", async () => {
    const app = createHttpApp({
      registry: createRegistry({ defaultMetrics: false }),
      log: createLogger({ component: "test", level: "silent" }),
      readiness: () => ({ ready: true }),
      routes: (a, { json }) => {
        a.put("/thing", json("the thing"), (req, res) => res.json({ got: req.body }));
        a.post("/maybe", json("the request", { optional: true }), (req, res) => res.json({ got: req.body ?? null }));
      },
      bodyLimit: 1024,
    });
    const srv = await listen(app, "127.0.0.1:0");
    try {
      const call = async (method: string, path: string, body?: string, headers: Record<string, string> = {}) => {
        const res = await fetch(`${srv.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
        return { status: res.status, headers: res.headers, text: await res.text() };
      };
      const json = { "content-type": "application/json" };
      const wrong = await call("GET", "/thing");
      assert.equal(wrong.status, 405);
      assert.equal(wrong.headers.get("allow"), "PUT");
      assert.match(JSON.parse(wrong.text).error, /GET is not allowed on \/thing; use PUT/);
      const head = await call("HEAD", "/healthz");
      assert.equal(head.status, 200);
      assert.equal(head.text, "");
      assert.equal((await call("GET", "/nowhere")).status, 404);
      assert.deepEqual(JSON.parse((await call("PUT", "/thing", '{"a":[1]}', json)).text), { got: { a: [1] } });
      assert.deepEqual(
        JSON.parse((await call("PUT", "/thing?x=1", "[]", { "content-type": "application/merge-patch+json" })).text),
        { got: [] },
      );
      const cases: [string, string | undefined, Record<string, string>, number, RegExp][] = [
        ["text/plain", "{}", { "content-type": "text/plain" }, 400, /send the thing as a JSON body/],
        ["no type", "{}", {}, 400, /Content-Type: application\/json/],
        ["empty", "", json, 400, /the body is empty/],
        ["a string", '"x"', json, 400, /must be a JSON object or array/],
        ["broken", '{"a":', json, 400, /not JSON/],
        ["gzip", "{}", { ...json, "content-encoding": "gzip" }, 415, /content encoding "gzip" is not supported/],
        ["latin1", "{}", { "content-type": "application/json; charset=latin1" }, 415, /charset "latin1"/],
        ["too large", JSON.stringify({ a: "x".repeat(2000) }), json, 413, /larger than the limit of 1kb/],
      ];
      for (const [name, body, headers, status, reason] of cases) {
        const r = await call("PUT", "/thing", body, headers);
        assert.equal(r.status, status, `${name}: ${r.text}`);
        assert.match(JSON.parse(r.text).error, reason, name);
      }
      assert.deepEqual(JSON.parse((await call("POST", "/maybe")).text), { got: null }, "no body: optional");
      assert.deepEqual(JSON.parse((await call("POST", "/maybe", '{"r":true}', json)).text), { got: { r: true } });
      assert.equal((await call("POST", "/maybe", "x", { "content-type": "text/plain" })).status, 400);
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
