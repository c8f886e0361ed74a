/**
 * Query's endpoints when replica groups run each shard index more than once
 * (src/thanos/endpoint-choice.ts, pure): one sidecar per index, sticky while ready, failover
 * to the lowest ready group, loud (strict) when an index that had data has no ready pod.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { chooseEndpoints, type ShardReplica } from "../../src/thanos/endpoint-choice.ts";
import { shardCount, shardReplicaOf } from "../../src/thanos/shard-pods.ts";

const pod = (index: number, group: number, ready = true): ShardReplica => ({
  index,
  group,
  address: `10.0.${group}.${index}:10901`,
  ready,
});

describe("chooseEndpoints", () => {
  it("one strict sidecar per shard index, of the lowest ready group, plus the extra endpoints", () => {
    const c = chooseEndpoints([pod(0, 1), pod(0, 0), pod(1, 0, false), pod(1, 1)], 2, new Map(), [
      { address: "store:10901", strict: true },
    ]);
    assert.deepEqual(c.endpoints, [
      { address: "store:10901", strict: true },
      { address: "10.0.0.0:10901", strict: true },
      { address: "10.0.1.1:10901", strict: true },
    ]);
    assert.deepEqual(
      [...c.chosen],
      [
        [0, "10.0.0.0:10901"],
        [1, "10.0.1.1:10901"],
      ],
    );
    assert.deepEqual(c.failovers, []);
  });

  it("keeps the group it asked before while that pod is ready: a recovered lower group takes nothing back", () => {
    const c = chooseEndpoints([pod(0, 0), pod(0, 1)], 1, new Map([[0, "10.0.1.0:10901"]]));
    assert.deepEqual(c.endpoints, [{ address: "10.0.1.0:10901", strict: true }]);
    assert.deepEqual(c.failovers, []);
  });

  it("fails over to another group's ready pod when the chosen one is not ready", () => {
    const c = chooseEndpoints([pod(0, 0, false), pod(0, 1)], 1, new Map([[0, "10.0.0.0:10901"]]));
    assert.deepEqual(c.endpoints, [{ address: "10.0.1.0:10901", strict: true }]);
    assert.deepEqual(c.failovers, [0]);
  });

  it("fails over only to a warm pod (scraped its assignment); until then the chosen one stays listed, strict", () => {
    const probe = { prometheus: "http://10.0.1.0:9090" };
    const cold = { ...pod(0, 1), probe };
    const previous = new Map([[0, "10.0.0.0:10901"]]);
    for (const pods of [[pod(0, 0, false), cold], [cold]]) {
      const c = chooseEndpoints(pods, 1, previous, [], () => false);
      assert.deepEqual(c.endpoints, [{ address: "10.0.0.0:10901", strict: true }]);
      assert.deepEqual(c.failovers, []);
      assert.deepEqual(c.unavailable, []);
      assert.deepEqual(c.waiting, [{ index: 0, candidates: [cold] }]);
      assert.equal(c.chosen.get(0), "10.0.0.0:10901");
    }
    // The lowest warm group, not the lowest ready one.
    const warmer = { ...pod(0, 2), probe };
    const c = chooseEndpoints([pod(0, 0, false), cold, warmer], 1, previous, [], (r) => r === warmer);
    assert.deepEqual(c.endpoints, [{ address: "10.0.2.0:10901", strict: true }]);
    assert.deepEqual([c.failovers, c.waiting], [[0], []]);
    // The chosen pod ready again, or a new index: no one waits for warmth.
    assert.deepEqual(chooseEndpoints([pod(0, 0), cold], 1, previous, [], () => false).waiting, []);
    const fresh = chooseEndpoints([cold], 1, new Map(), [], () => false);
    assert.deepEqual([fresh.endpoints, fresh.waiting], [[{ address: "10.0.1.0:10901", strict: true }], []]);
  });

  it("an index that had data and has no ready pod stays listed, strict: queries fail instead of undercounting", () => {
    for (const pods of [[pod(0, 0, false), pod(0, 1, false)], []]) {
      const c = chooseEndpoints(pods, 1, new Map([[0, "10.0.0.0:10901"]]));
      assert.deepEqual(c.endpoints, [{ address: "10.0.0.0:10901", strict: true }]);
      assert.deepEqual(c.unavailable, [0]);
      assert.equal(c.chosen.get(0), "10.0.0.0:10901");
    }
  });

  it("an index that never had a ready pod has no data yet: listed non-strict, not remembered", () => {
    const c = chooseEndpoints([pod(2, 1, false), pod(2, 0, false)], 3, new Map());
    assert.deepEqual(c.endpoints, [{ address: "10.0.0.2:10901" }]);
    assert.deepEqual([...c.chosen], []);
    assert.deepEqual(c.unavailable, []);
  });

  it("indices at or above the shard count are dropped, remembered or not (scaled down: the data is in the bucket)", () => {
    const c = chooseEndpoints([pod(0, 0), pod(1, 0)], 1, new Map([[1, "10.0.0.1:10901"]]));
    assert.deepEqual(c.endpoints, [{ address: "10.0.0.0:10901", strict: true }]);
    assert.equal(c.chosen.has(1), false);
  });

  it("properties: at most one endpoint per index; a ready pod is always preferred; a ready previous choice is kept", () => {
    const replica = fc.record({
      index: fc.integer({ min: 0, max: 4 }),
      group: fc.integer({ min: 0, max: 2 }),
      ready: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(replica, { selector: (r) => `${r.index}/${r.group}` }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 2 }))),
        (raw, shards, prev) => {
          const replicas = raw.map((r) => pod(r.index, r.group, r.ready));
          const previous = new Map(prev.map(([i, g]) => [i, `10.0.${g}.${i}:10901`] as const));
          const c = chooseEndpoints(replicas, shards, previous);
          const indexOf = (a: string) => Number(a.split(":")[0]!.split(".")[3]);
          const indices = c.endpoints.map((e) => indexOf(e.address));
          assert.equal(new Set(indices).size, indices.length, "one endpoint per index");
          for (const i of indices) assert.ok(i < shards);
          for (let i = 0; i < shards; i++) {
            const ready = replicas.filter((r) => r.index === i && r.ready);
            const listed = c.endpoints.find((e) => indexOf(e.address) === i);
            if (ready.length > 0) {
              assert.ok(listed?.strict && ready.some((r) => r.address === listed.address), `index ${i}: a ready pod`);
              const before = previous.get(i);
              if (before && ready.some((r) => r.address === before)) assert.equal(listed.address, before);
            } else if (previous.has(i)) {
              assert.deepEqual(listed, { address: previous.get(i), strict: true });
              assert.ok(c.unavailable.includes(i));
            } else if (listed) assert.equal(listed.strict, undefined);
          }
        },
      ),
    );
  });
});

describe("shard pods as endpoints", () => {
  const base = {
    metadata: {
      name: "prom-b-2",
      labels: { "apps.kubernetes.io/pod-index": "2" },
      annotations: { "promshard.io/replica-group": "1" },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "StatefulSet", name: "prom-b", uid: "u-b" }],
    },
    spec: {
      containers: [
        { name: "prometheus" },
        {
          name: "thanos-sidecar",
          ports: [
            { name: "http", containerPort: 10902 },
            { name: "grpc", containerPort: 10901 },
          ],
        },
      ],
    },
    status: { podIP: "10.1.0.7", phase: "Running", conditions: [{ type: "Ready", status: "True" }] },
  };

  it("index from the pod-index label (else the name), group from the annotation, the sidecar's grpc port", () => {
    assert.deepEqual(shardReplicaOf(base as never), { index: 2, group: 1, address: "10.1.0.7:10901", ready: true });
    const noLabel = { ...base, metadata: { ...base.metadata, labels: {}, annotations: {} } };
    assert.deepEqual(shardReplicaOf(noLabel as never), { index: 2, group: 0, address: "10.1.0.7:10901", ready: true });
    const v6 = { ...base, status: { ...base.status, podIP: "fd00::7" } };
    assert.equal(shardReplicaOf(v6 as never)?.address, "[fd00::7]:10901");
  });

  it("asks its Prometheus where its Thanos sidecar does (loopback: the pod's IP) and its promshard sidecar's port", () => {
    const thanos = (args: string[]) => ({ ...base.spec.containers[1], args });
    const withArgs = (args: string[], sidecar = true) => ({
      ...base,
      spec: {
        initContainers: sidecar
          ? [{ name: "promshard-sidecar", ports: [{ name: "promshard", containerPort: 9095 }] }]
          : [],
        containers: [base.spec.containers[0], thanos(args)],
      },
    });
    assert.deepEqual(shardReplicaOf(withArgs(["sidecar", "--prometheus.url=http://localhost:9090"]) as never)?.probe, {
      prometheus: "http://10.1.0.7:9090",
      sidecarMetrics: "http://10.1.0.7:9095/metrics",
    });
    assert.deepEqual(
      shardReplicaOf(withArgs(["sidecar", "--prometheus.url", "http://127.0.0.1:9090/prom/"], false) as never)?.probe,
      { prometheus: "http://10.1.0.7:9090/prom" },
    );
    const v6 = { ...withArgs(["--prometheus.url=http://[::1]:9090"]), status: { ...base.status, podIP: "fd00::7" } };
    assert.equal(shardReplicaOf(v6 as never)?.probe?.prometheus, "http://[fd00::7]:9090");
    // Another host, or nothing said: nothing to ask (the pod is taken as warm).
    assert.equal(shardReplicaOf(withArgs(["--prometheus.url=http://prom.other:9090"]) as never)?.probe, undefined);
    assert.equal(shardReplicaOf(base as never)?.probe, undefined);
  });

  it("not ready while being deleted, not Running or not Ready; nothing without an IP or a Thanos sidecar", () => {
    const deleting = { ...base, metadata: { ...base.metadata, deletionTimestamp: "2026-12-04T00:00:00Z" } };
    assert.equal(shardReplicaOf(deleting as never)?.ready, false);
    const unready = { ...base, status: { ...base.status, conditions: [{ type: "Ready", status: "False" }] } };
    assert.equal(shardReplicaOf(unready as never)?.ready, false);
    assert.equal(shardReplicaOf({ ...base, status: { phase: "Pending" } } as never), undefined);
    assert.equal(shardReplicaOf({ ...base, spec: { containers: [{ name: "prometheus" }] } } as never), undefined);
  });

  it("the shard count is the most replicas an owning StatefulSet asks for; unknown while an owner is not seen", () => {
    const sts = (name: string, uid: string, replicas: number) => ({ metadata: { name, uid }, spec: { replicas } });
    const a = { metadata: { ownerReferences: [{ kind: "StatefulSet", name: "prom-a", uid: "u-a" }] } };
    assert.equal(shardCount([a, base] as never, [sts("prom-a", "u-a", 3), sts("prom-b", "u-b", 4)] as never), 4);
    assert.equal(shardCount([a, base] as never, [sts("prom-a", "u-a", 3)] as never), undefined);
    assert.equal(shardCount([a] as never, [sts("prom-a", "other-uid", 3)] as never), undefined);
  });
});
