/**
 * Leader election on a Lease in a real kube-apiserver 1.37: one leader among candidates, a
 * released lease taken over at once, an abandoned one only after it expires, and a race of
 * candidates on a fresh lease won by exactly one (the resourceVersion check).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { kubeApi } from "../../src/kube/api.ts";
import { LeaderElector, untilLeading } from "../../src/kube/leader.ts";
import { type ControlPlane, startControlPlane } from "../support/kube.ts";

describe("leader election against a real kube-apiserver", { timeout: 180_000 }, () => {
  let cp: ControlPlane;
  const electors: LeaderElector[] = [];
  before(async () => {
    cp = await startControlPlane();
    await cp.api("POST", "/api/v1/namespaces", { body: { metadata: { name: "ha" } } });
  });
  after(async () => {
    for (const e of electors) await e.stop({ release: false });
    await cp?.stop();
  });

  const elector = (name: string, identity: string, changes: boolean[] = []) => {
    const e = new LeaderElector({
      api: kubeApi(cp.kubeconfigPath),
      namespace: "ha",
      name,
      identity,
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 200,
      onChange: (leading) => changes.push(leading),
    });
    electors.push(e);
    return e;
  };
  const lease = (name: string) =>
    cp.api<{ spec: { holderIdentity: string | null; leaseTransitions: number } }>(
      "GET",
      `/apis/coordination.k8s.io/v1/namespaces/ha/leases/${name}`,
    );

  it("one of two leads; a released lease is taken over at once", async () => {
    const a = elector("l1", "a");
    const b = elector("l1", "b");
    a.start();
    assert.ok(await untilLeading(a, 5000), "the first candidate leads");
    b.start();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(b.leading, false, "never two leaders");
    assert.equal((await lease("l1")).spec.holderIdentity, "a");
    const released = Date.now();
    await a.stop();
    assert.ok(await untilLeading(b, 5000));
    const took = Date.now() - released;
    assert.ok(took < 1500, `taken over ${took} ms after the release, before the 2 s lease would expire`);
    const l = await lease("l1");
    assert.equal(l.spec.holderIdentity, "b");
    assert.equal(l.spec.leaseTransitions, 1);
  });

  it("an abandoned lease (a crashed leader) is taken over only after it expires", async () => {
    const changes: boolean[] = [];
    const a = elector("l2", "a", changes);
    const b = elector("l2", "b");
    a.start();
    assert.ok(await untilLeading(a, 5000));
    b.start();
    const crashed = Date.now();
    await a.stop({ release: false });
    assert.ok(await untilLeading(b, 10_000));
    const took = Date.now() - crashed;
    assert.ok(took >= 1800, `took over after ${took} ms: not before the lease expired`);
    assert.deepEqual(changes, [true, false]);
  });

  it("candidates racing for a fresh lease: exactly one wins", async () => {
    const candidates = Array.from({ length: 6 }, (_, i) => elector("l3", `c${i}`));
    const won = await Promise.all(candidates.map((c) => c.tryAcquireOrRenew()));
    assert.equal(won.filter(Boolean).length, 1, JSON.stringify(won));
    const winner = won.indexOf(true);
    assert.equal((await lease("l3")).spec.holderIdentity, `c${winner}`);
    const again = await Promise.all(candidates.map((c) => c.tryAcquireOrRenew()));
    assert.deepEqual(
      again.map((w, i) => w === (i === winner)),
      again.map(() => true),
      "only the holder renews",
    );
  });
});
