/** Which StatefulSets are a coordinator's replica groups, and what is said of the others (readShardGroups). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readShardGroups, type StatefulSetObject } from "../../src/coordinator/statefulset-scaler.ts";

const sts = (name: string, annotations: Record<string, string> | undefined, created = "2026-01-01T00:00:00Z") =>
  ({
    metadata: { name, namespace: "mon", uid: `uid-${name}`, creationTimestamp: created },
    spec: {
      replicas: 1,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: { metadata: annotations ? { annotations } : {} },
    },
  }) as unknown as StatefulSetObject;

const optIn = (extra: Record<string, string> = {}) => ({ "promshard.io/inject": "true", ...extra });

describe("shard StatefulSets", () => {
  it("one StatefulSet per replica group, ordered by group, with its port and upload", () => {
    const { groups, unusable } = readShardGroups(
      [
        sts("rep-1", optIn({ "promshard.io/replica-group": "1", "promshard.io/sidecar-port": "9100" })),
        sts("rep-0", optIn({ "promshard.io/thanos-objstore-secret": "bucket" })),
      ],
      "promshard",
      false,
    );
    assert.deepEqual(unusable, []);
    assert.deepEqual(
      groups.map((g) => [g.name, g.replicaGroup, g.sidecarPort, g.upload, g.podSelector, g.serviceName]),
      [
        ["rep-0", 0, undefined, true, "app=rep-0", "rep-0"],
        ["rep-1", 1, 9100, false, "app=rep-1", "rep-1"],
      ],
    );
  });

  it("names each unusable StatefulSet with what to do", () => {
    const { groups, unusable } = readShardGroups(
      [
        sts("newer", optIn(), "2026-01-02T00:00:00Z"),
        sts("older", optIn(), "2026-01-01T00:00:00Z"),
        sts("plain", undefined),
        sts("theirs", optIn({ "promshard.io/coordinator": "team-b" })),
        sts("typo", optIn({ "promshard.io/replica-group": "first" })),
      ],
      "promshard",
      false,
    );
    assert.deepEqual(
      groups.map((g) => g.name),
      ["older"],
      "the older StatefulSet keeps a contested group",
    );
    const problem = Object.fromEntries(unusable.map((u) => [u.name, u.problem]));
    assert.match(problem.newer!, /replica group 0 is already StatefulSet mon\/older; give this one another/);
    assert.match(problem.plain!, /does not carry promshard\.io\/inject: "true".*kubectl annotate statefulset plain/);
    assert.match(problem.theirs!, /names coordinator "team-b".*this coordinator is "promshard"/);
    assert.match(problem.typo!, /promshard\.io\/replica-group: "first" is not valid; accepted: an integer/);
  });

  it("an explicit --shards.statefulset needs no opt-in annotation", () => {
    assert.deepEqual(
      readShardGroups([sts("plain", undefined)], "promshard", true).groups.map((g) => g.name),
      ["plain"],
    );
  });
});
