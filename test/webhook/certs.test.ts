/** Certificates (node-forge) and their rotation: names, chains, and no moment where the API server and the webhook disagree. */
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Agent, request } from "undici";
import { directoryStore, runCerts } from "../../src/webhook/cert-store.ts";
import {
  createCA,
  describeCert,
  issueServing,
  newKeyPair,
  serviceDnsNames,
  signedBy,
  splitPem,
} from "../../src/webhook/certs.ts";
import { bundleOf, type CertState, type RotationPolicy, rotate } from "../../src/webhook/rotation.ts";

const DAY = 24 * 3600 * 1000;
const MIN = 60 * 1000;
const t0 = new Date("2030-01-01T00:00:00Z");

const policy: RotationPolicy = {
  commonName: "promshard-webhook.monitoring.svc",
  dnsNames: serviceDnsNames("promshard-webhook", "monitoring"),
  ipAddresses: [],
  caValidityMs: 300 * DAY,
  certValidityMs: 30 * DAY,
  caRenewBeforeMs: 100 * DAY,
  certRenewBeforeMs: 10 * DAY,
  overlapMs: 10 * MIN,
};

const at = (ms: number) => new Date(t0.getTime() + ms);
const trusted = (certPem: string, bundle: string) => splitPem(bundle).some((ca) => signedBy(certPem, ca));

describe("webhook certificates", () => {
  it("the Service's four DNS names", () => {
    assert.deepEqual(serviceDnsNames("svc", "ns"), ["svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local"]);
    assert.deepEqual(serviceDnsNames("svc", "ns", "k8s.local").at(-1), "svc.ns.svc.k8s.local");
  });

  it("a CA and a serving certificate a TLS client accepts for every name", async () => {
    const ca = await createCA({ commonName: "test-ca", validityMs: 10 * DAY, now: new Date() });
    const names = serviceDnsNames("promshard-webhook", "monitoring");
    const serving = await issueServing(ca, {
      commonName: "promshard-webhook.monitoring.svc",
      dnsNames: names,
      ipAddresses: ["127.0.0.1", "::1"],
      validityMs: 5 * DAY,
      now: new Date(),
    });
    const caInfo = describeCert(ca.certPem);
    assert.equal(caInfo.isCA, true);
    const info = describeCert(serving.certPem);
    assert.equal(info.isCA, false);
    assert.deepEqual(info.dnsNames, names);
    assert.deepEqual(info.ipAddresses, ["127.0.0.1", "0:0:0:0:0:0:0:1"]);
    assert.ok(signedBy(serving.certPem, ca.certPem));
    assert.ok(!signedBy(ca.certPem, serving.certPem));
    assert.ok(new X509Certificate(serving.certPem).checkPrivateKey(createPrivateKey(serving.keyPem)));
    // Valid from an hour back (clock skew), never beyond its CA.
    assert.ok(info.notBefore.getTime() < Date.now() - 59 * MIN);
    const longer = await issueServing(ca, { ...policy, validityMs: 100 * DAY, now: new Date() });
    assert.deepEqual(describeCert(longer.certPem).notAfter, caInfo.notAfter);

    // A real TLS handshake with hostname verification, for a DNS name and the IP.
    const server = createServer({ cert: serving.certPem, key: serving.keyPem }, (_req, res) => res.end("ok"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    for (const servername of ["promshard-webhook.monitoring.svc", "promshard-webhook"]) {
      const agent = new Agent({ connect: { ca: ca.certPem, servername } });
      const res = await request(`https://127.0.0.1:${port}/`, { dispatcher: agent });
      assert.equal(await res.body.text(), "ok");
      await agent.close();
    }
    const wrong = new Agent({ connect: { ca: ca.certPem, servername: "other.monitoring.svc" } });
    await assert.rejects(request(`https://127.0.0.1:${port}/`, { dispatcher: wrong }), /altnames|Hostname/i);
    await wrong.close();
    server.close();
  });

  it("keys from node-forge (its default delegates to Node) work like Node's", async () => {
    const k = await newKeyPair("forge");
    const ca = await createCA({ commonName: "forge-ca", validityMs: DAY, now: new Date(), key: k });
    assert.ok(new X509Certificate(ca.certPem).checkPrivateKey(createPrivateKey(ca.keyPem)));
  });
});

describe("certificate rotation", () => {
  it("first run: a CA and a serving certificate; the next run has nothing to do until renewal is due", async () => {
    const r = await rotate({ retired: [] }, policy, t0);
    assert.deepEqual(
      r.steps.map((s) => s.step),
      ["create-ca", "issue-serving"],
    );
    assert.equal(splitPem(bundleOf(r.state)).length, 1);
    assert.deepEqual(r.nextRun, new Date(describeCert(r.state.serving!.certPem).notAfter.getTime() - 10 * DAY));
    const again = await rotate(r.state, policy, at(DAY));
    assert.deepEqual(again.steps, []);
    assert.deepEqual(again.state, r.state);
  });

  it("a CA rotation goes add, promote, drop, one overlap apart, and is trusted throughout", async () => {
    const first = (await rotate({ retired: [] }, policy, t0)).state;
    const add = await rotate(first, policy, at(MIN), { ca: true });
    assert.deepEqual(
      add.steps.map((s) => s.step),
      ["add-ca"],
    );
    assert.equal(add.state.serving, first.serving, "the serving certificate stays during add");
    assert.equal(splitPem(bundleOf(add.state)).length, 2);
    assert.deepEqual(add.nextRun, at(MIN + policy.overlapMs));
    assert.deepEqual((await rotate(add.state, policy, at(MIN + policy.overlapMs - 1))).steps, []);
    const promote = await rotate(add.state, policy, at(MIN + policy.overlapMs));
    assert.deepEqual(
      promote.steps.map((s) => s.step),
      ["promote-ca", "issue-serving"],
    );
    assert.equal(promote.state.ca!.certPem, add.state.nextCa!.certPem);
    assert.equal(splitPem(bundleOf(promote.state)).length, 2);
    const drop = await rotate(promote.state, policy, at(MIN + 2 * policy.overlapMs));
    assert.deepEqual(
      drop.steps.map((s) => s.step),
      ["drop-retired-ca"],
    );
    assert.deepEqual(splitPem(bundleOf(drop.state)), [promote.state.ca!.certPem]);
    // Whichever of the two (API server, webhook) sees a change first, the other's view still trusts.
    for (const [a, b] of [
      [first, add.state],
      [add.state, promote.state],
      [promote.state, drop.state],
    ] as const) {
      assert.ok(trusted(a.serving!.certPem, bundleOf(b)), "old certificate, new bundle");
      assert.ok(trusted(b.serving!.certPem, bundleOf(a)), "new certificate, old bundle");
    }
  });

  it("renews by itself: the serving certificate under the same CA, the CA through the overlap, fresh after expiry", async () => {
    const s0 = (await rotate({ retired: [] }, policy, t0)).state;
    const renew = await rotate(s0, policy, at(21 * DAY));
    assert.deepEqual(
      renew.steps.map((s) => s.step),
      ["issue-serving"],
    );
    assert.match(renew.steps[0]!.reason, /expires/);
    assert.equal(renew.state.ca, s0.ca);
    const caDue = await rotate(s0, policy, at(201 * DAY));
    assert.deepEqual(
      caDue.steps.map((s) => s.step),
      ["add-ca", "issue-serving"],
    );
    const expired = await rotate(s0, policy, at(400 * DAY));
    assert.deepEqual(
      expired.steps.map((s) => s.step),
      ["create-ca", "issue-serving"],
    );
    assert.match(expired.steps[0]!.reason, /expired/);
    const renamed = await rotate(s0, { ...policy, ipAddresses: ["127.0.0.1"] }, at(DAY));
    assert.deepEqual(
      renamed.steps.map((s) => [s.step, s.reason]),
      [["issue-serving", "its names differ from the ones asked for"]],
    );
  });

  it("property: over any sequence of runs, consecutive states trust each other's certificates", async () => {
    const s0 = (await rotate({ retired: [] }, policy, t0)).state;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ gapMs: fc.integer({ min: 0, max: 40 * DAY }), forceCa: fc.boolean(), forceCert: fc.boolean() }),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        async (runs) => {
          let state: CertState = s0;
          let t = 0;
          for (const run of runs) {
            t += run.gapMs;
            const next = (await rotate(state, policy, at(t), { ca: run.forceCa, cert: run.forceCert })).state;
            const created = next.ca !== state.ca && !splitPem(bundleOf(state)).includes(next.ca!.certPem);
            const expired = describeCert(state.ca!.certPem).notAfter.getTime() <= at(t).getTime();
            if (!(created && expired)) {
              assert.ok(trusted(state.serving!.certPem, bundleOf(next)), `t=${t}: old certificate, new bundle`);
              assert.ok(trusted(next.serving!.certPem, bundleOf(state)), `t=${t}: new certificate, old bundle`);
            }
            assert.ok(signedBy(next.serving!.certPem, next.ca!.certPem));
            state = next;
          }
        },
      ),
      { numRuns: 15 },
    );
  });
});

describe("certs in a directory", () => {
  it("writes tls.crt, tls.key, ca.crt (keys private), and a second run changes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-certs-"));
    try {
      const store = directoryStore(dir);
      const r1 = await runCerts({ store, policy, now: new Date() });
      assert.equal(r1.steps.length, 2);
      for (const f of ["tls.key", "ca-signing.key"]) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600);
      const loaded = await store.load();
      assert.equal(loaded.serving?.certPem, r1.state.serving?.certPem);
      assert.equal(loaded.storedBundle, r1.bundle);
      const r2 = await runCerts({ store, policy, now: new Date() });
      assert.deepEqual(r2.steps, []);
      const r3 = await runCerts({ store, policy, now: new Date(), force: { ca: true } });
      assert.deepEqual(
        r3.steps.map((s) => s.step),
        ["add-ca"],
      );
      assert.equal(splitPem((await store.load()).storedBundle!).length, 2);
      assert.ok((await store.load()).nextCa);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
