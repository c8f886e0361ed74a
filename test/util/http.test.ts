/**
 * httpCall (src/util/http.ts), the way promshard calls its peers without a client of their
 * own: every status is an answer, the timeout covers the whole body, and it loads nothing a
 * process would not have loaded for its own server.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createHttpApp, listen } from "../../src/observability/http.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { httpCall, PEER_IDLE_MS, unreachableReason } from "../../src/util/http.ts";

const HTTP_TS = fileURLToPath(new URL("../../src/util/http.ts", import.meta.url));

describe("httpCall", () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === "/moved") {
        res.writeHead(302, { location: "/elsewhere" }).end("see elsewhere");
      } else if (req.url === "/stalls") {
        res.writeHead(200).write("the first part");
      } else if (req.url === "/cut") {
        res.writeHead(200, { "content-length": "1000" }).write("part", () => res.socket?.destroy());
      } else {
        const body: Buffer[] = [];
        req.on("data", (c: Buffer) => body.push(c));
        req.on("end", () =>
          res.end(JSON.stringify({ method: req.method, headers: req.headers, body: `${Buffer.concat(body)}` })),
        );
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it("sends the method, headers and body (its length in bytes) and returns status and text", async () => {
    const r = await httpCall(`${base}/echo`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: '{"name":"héllo"}',
    });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.text);
    assert.equal(echo.method, "PUT");
    assert.equal(echo.body, '{"name":"héllo"}');
    assert.equal(echo.headers["content-length"], "17");
    assert.equal(echo.headers["content-type"], "application/json");
    // Peers are on loopback or in the cluster: an answer compressed there is CPU for nothing.
    assert.equal(echo.headers["accept-encoding"], undefined);
  });

  it("a redirect is an answer, not followed", async () => {
    const r = await httpCall(`${base}/moved`);
    assert.deepEqual(r, { status: 302, text: "see elsewhere" });
  });

  it("the timeout covers the body: an answer that stalls fails as timed out", async () => {
    await assert.rejects(httpCall(`${base}/stalls`, { timeoutMs: 300 }), (err) => {
      assert.equal(unreachableReason(err), "timed out");
      return true;
    });
  });

  it("an answer cut off, or no listener, fails with the socket's code", async () => {
    await assert.rejects(httpCall(`${base}/cut`), (err) => {
      assert.match(unreachableReason(err), /^ECONNRESET/);
      return true;
    });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(httpCall(`http://127.0.0.1:${port}/`), (err) => {
      assert.equal(unreachableReason(err), "ECONNREFUSED");
      return true;
    });
  });

  it("keeps the connection to a promshard server between calls a round apart (5 s and more)", async () => {
    const app = createHttpApp({
      registry: createRegistry({ defaultMetrics: false }),
      log: createLogger({ component: "test", level: "silent" }),
      readiness: () => ({ ready: true }),
    });
    const srv = await listen(app, "127.0.0.1:0");
    let connections = 0;
    srv.server.on("connection", () => connections++);
    try {
      assert.ok(srv.server.keepAliveTimeout > PEER_IDLE_MS, "the server must keep it longer than the client");
      assert.equal((await httpCall(`${srv.url}/healthz`)).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      assert.equal((await httpCall(`${srv.url}/healthz`)).status, 200);
      assert.equal(connections, 1);
    } finally {
      await srv.close(0);
    }
  });

  it("loads neither the undici package nor Node's bundled one (fetch's): a sidecar's calls cost no more modules", () => {
    const probe = `
      const { createServer } = process.getBuiltinModule("node:http");
      const { httpCall } = await import(${JSON.stringify(HTTP_TS)});
      const server = createServer((_q, r) => r.end("ok")).listen(0, "127.0.0.1");
      await new Promise((resolve) => server.once("listening", resolve));
      const r = await httpCall("http://127.0.0.1:" + server.address().port + "/");
      server.close();
      console.log(JSON.stringify({ text: r.text, undici: process.moduleLoadList.filter((m) => /undici/.test(m)) }));
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", probe], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.text, "ok");
    assert.deepEqual(out.undici, []);
  });
});
