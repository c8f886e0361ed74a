/**
 * The network rule for the differential tests: the jobs they give the real Prometheus never
 * make it dial or resolve anything off this machine. Every generated job (and every
 * Kubernetes conformance job) scrapes through a loopback proxy, and its literal addresses are
 * loopback; the real Prometheus, both versions, is shown to send a scrape to the proxy and not
 * to the target's address, as Go's client does with a fixed proxy_url.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { dump } from "js-yaml";
import { prometheusBinaries, startPrometheus } from "../support/prometheus.ts";
import { generateJobs, NO_EGRESS_PROXY } from "./generate.ts";
import { kubernetesJobs } from "./kubernetes-objects.ts";

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/;

describe("the generated jobs stay on this machine", () => {
  it("every generated job scrapes through the loopback proxy; every literal address is loopback", () => {
    assert.match(new URL(NO_EGRESS_PROXY).hostname, /^127\./);
    for (const major of [2, 3]) {
      for (const g of generateJobs(400, 1, major)) {
        assert.equal(g.job.proxy_url, NO_EGRESS_PROXY, `${g.job.job_name} (${major}.x)`);
        for (const group of [...g.fileGroups, ...g.staticGroups]) {
          for (const t of group.targets) assert.match(t, LOOPBACK, `${g.job.job_name} (${major}.x)`);
        }
      }
    }
    for (const job of kubernetesJobs({ api_server: "https://127.0.0.1:6443" })) {
      assert.equal(job.proxy_url, NO_EGRESS_PROXY, String(job.job_name));
    }
  });

  describe("Prometheus sends scrapes to the proxy_url, not to the target", () => {
    const servers: Server[] = [];
    after(() => {
      for (const s of servers) s.close();
    });
    const serve = async (onRequest: (url: string) => void) => {
      const server = createServer((req, res) => {
        onRequest(req.url ?? "");
        res.writeHead(502).end();
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return (server.address() as AddressInfo).port;
    };

    for (const bin of prometheusBinaries()) {
      it(`Prometheus ${bin.version}`, { timeout: 60_000 }, async () => {
        const atTarget: string[] = [];
        const atProxy: string[] = [];
        const target = await serve((u) => atTarget.push(u));
        const proxy = await serve((u) => atProxy.push(u));
        const config = dump({
          scrape_configs: [
            {
              job_name: "via-proxy",
              scrape_interval: "1s",
              proxy_url: `http://127.0.0.1:${proxy}`,
              static_configs: [{ targets: [`127.0.0.1:${target}`] }],
            },
          ],
        });
        const p = await startPrometheus(bin, { config });
        try {
          const deadline = Date.now() + 30_000;
          while (atProxy.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        } finally {
          await p.stop();
        }
        assert.ok(atProxy.length > 0, "the proxy got the scrape");
        // A proxy gets the absolute URL: the client left the name to it.
        assert.equal(atProxy[0], `http://127.0.0.1:${target}/metrics`);
        assert.deepEqual(atTarget, [], "nothing went to the target itself");
      });
    }
  });
});
