/**
 * The one HTTP client builder (src/http/client.ts) against a real TLS server on port 0 that
 * asks for a client certificate: auth headers, files read relative to the config's directory,
 * and the Kubernetes client's lists and watches going through the same client.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Watch } from "@kubernetes/client-node";
import { request } from "undici";
import { httpClientFor } from "../../src/http/client.ts";
import { kubeClientFor } from "../../src/kube/client.ts";
import { httpClientConfig } from "../../src/prom/http-client.ts";
import { CertificateAuthority } from "../support/kube-certs.ts";

describe("httpClientFor", () => {
  let server: Server;
  let url: string;
  let dir: string;
  const seen: { authorization?: string | undefined; clientCert: boolean; path: string }[] = [];

  before(async () => {
    const ca = await CertificateAuthority.create("test-ca");
    const serving = await ca.issue({ commonName: "server", ipAddresses: ["127.0.0.1"], usage: "server" });
    const client = await ca.issue({ commonName: "client", usage: "client" });
    dir = mkdtempSync(join(tmpdir(), "promshard-http-"));
    writeFileSync(join(dir, "ca.pem"), ca.certPem);
    writeFileSync(join(dir, "client.pem"), client.certPem);
    writeFileSync(join(dir, "client.key"), client.keyPem);
    writeFileSync(join(dir, "token"), "file-token\n");
    writeFileSync(join(dir, "password"), "file-password\n");
    server = createServer(
      { cert: serving.certPem, key: serving.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const socket = req.socket as import("node:tls").TLSSocket;
        seen.push({ authorization: req.headers.authorization, clientCert: socket.authorized, path: req.url ?? "" });
        res.setHeader("Content-Type", "application/json");
        if (req.url?.includes("watch=true")) {
          res.end(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "p" } } })}\n`);
        } else {
          res.end(JSON.stringify({ items: [{ metadata: { name: "p" } }], metadata: { resourceVersion: "7" } }));
        }
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tls = { ca_file: "ca.pem", cert_file: "client.pem", key_file: "client.key" };
  const get = async (raw: Record<string, unknown>) => {
    const client = httpClientFor(httpClientConfig(raw), dir);
    const res = await request(`${url}/metrics`, { headers: client.headers, dispatcher: client.dispatcher });
    await res.body.dump();
    await client.dispatcher.close();
    return seen.at(-1)!;
  };

  it("connects with the CA and client certificate files, relative to the directory", async () => {
    const s = await get({ tls_config: tls });
    assert.equal(s.clientCert, true);
    assert.equal(s.authorization, undefined);
  });

  it("sends bearer_token_file's content, trimmed", async () => {
    assert.equal((await get({ tls_config: tls, bearer_token_file: "token" })).authorization, "Bearer file-token");
  });

  it("sends basic_auth with password_file", async () => {
    const s = await get({ tls_config: tls, basic_auth: { username: "u", password_file: "password" } });
    assert.equal(s.authorization, `Basic ${Buffer.from("u:file-password").toString("base64")}`);
  });

  it("sends authorization with its type, Bearer by default", async () => {
    assert.equal(
      (await get({ tls_config: tls, authorization: { type: "Custom", credentials: "c" } })).authorization,
      "Custom c",
    );
    assert.equal(
      (await get({ tls_config: tls, authorization: { credentials_file: "token" } })).authorization,
      "Bearer file-token",
    );
  });

  it("refuses a server its CA does not vouch for, unless insecure_skip_verify", async () => {
    await assert.rejects(get({}));
    assert.equal((await get({ tls_config: { insecure_skip_verify: true } })).clientCert, false);
  });

  it("gives the Kubernetes client's lists and watches the same TLS and auth", async () => {
    const client = kubeClientFor(
      { apiServer: `${url}/`, httpClient: { tls_config: tls, bearer_token: "k8s-token" } },
      { directory: dir },
    );
    assert.equal(client.server, url);
    const list = await client.list<{ metadata: { name: string } }>("/api/v1/pods");
    assert.deepEqual(list.items, [{ metadata: { name: "p" } }]);
    assert.deepEqual(seen.at(-1), { authorization: "Bearer k8s-token", clientCert: true, path: "/api/v1/pods" });
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      new Watch(client.config)
        .watch(
          "/api/v1/pods",
          {},
          (type) => events.push(type),
          (err) => (err ? reject(err) : resolve()),
        )
        .catch(reject);
    });
    assert.deepEqual(events, ["ADDED"]);
    assert.equal(seen.at(-1)?.authorization, "Bearer k8s-token");
    assert.equal(seen.at(-1)?.clientCert, true);
    const other = kubeClientFor(
      { apiServer: url, httpClient: { tls_config: tls, bearer_token: "other" } },
      { directory: dir },
    );
    assert.notEqual(other.key, client.key, "different credentials, different informers");
  });
});
