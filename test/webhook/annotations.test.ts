/** Annotation parsing: every bad value is refused with a message naming the annotation and what it accepts. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANNOTATIONS, parseAnnotations } from "../../src/webhook/annotations.ts";
import { injectPod } from "../../src/webhook/inject.ts";
import { parseQuantity } from "../../src/webhook/quantity.ts";
import { fixture, settings } from "./support.ts";

const on = { "promshard.io/inject": "true" };

describe("promshard.io annotations", () => {
  const bad: [string, string, RegExp][] = [
    ["inject", "yes", /accepted: true or false/],
    ["inject", "True", /accepted: true or false/],
    ["coordinator", "Team_A", /DNS label/],
    ["max-series", "0", /positive integer/],
    ["max-series", "-5", /positive integer/],
    ["max-series", "30k", /positive integer/],
    ["max-series", "99999999999999999", /positive integer/],
    ["replica-group", "1001", /integer from 0 to 1000/],
    ["thanos", "1", /true or false/],
    ["thanos-objstore-secret", "My Secret", /Kubernetes object name/],
    ["sidecar-image", "not an image", /container image reference/],
    ["thanos-image", "Quay.io/UPPER/thanos", /container image reference/],
    ["sidecar-port", "0", /port number from 1 to 65535/],
    ["thanos-grpc-port", "70000", /port number/],
    ["sidecar-cpu", "lots", /Kubernetes quantity/],
    ["sidecar-memory", "-1Gi", /Kubernetes quantity/],
    ["thanos-memory-limit", "1GB", /Kubernetes quantity/],
    ["prometheus-container", "Prometheus", /DNS label/],
    ["native-sidecar", "auto", /true or false/],
    ["shard-label", "__shard", /label name/],
    ["replica-label", "replica-label", /label name/],
    ["token-secret", "", /Kubernetes object name/],
    ["sidecar-auth", "Kubernetes", /token or kubernetes/],
    ["thanos-volume-mounts", "bucket", /VOLUME:\/absolute\/path/],
    ["thanos-volume-mounts", "bucket:/", /VOLUME:\/absolute\/path/],
    ["thanos-volume-mounts", "bucket:/a/../etc", /VOLUME:\/absolute\/path/],
    ["thanos-volume-mounts", "a:/x,b:/x/", /each path once/],
  ];
  for (const [key, value, accepts] of bad) {
    it(`refuses promshard.io/${key}: ${JSON.stringify(value)}`, () => {
      const { errors } = parseAnnotations({ ...on, [`promshard.io/${key}`]: value });
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.code, "annotation_invalid");
      assert.equal(errors[0]!.path, `annotation promshard.io/${key}`);
      assert.match(errors[0]!.message, new RegExp(`^annotation promshard\\.io/${key}: .* is not valid; accepted: `));
      assert.match(errors[0]!.message, accepts);
    });
  }

  it("accepts good values of every annotation", () => {
    const good: Record<string, string> = {
      inject: "true",
      coordinator: "team-a",
      "max-series": "30000",
      "replica-group": "2",
      thanos: "true",
      "thanos-objstore-secret": "thanos-objstore",
      "thanos-objstore-key": "thanos.yaml",
      "thanos-volume-mounts": "bucket:/bucket, cache:/var/cache/thanos/",
      "sidecar-image": "registry.example.com:5000/team/promshard:v1.2.3@sha256:" + "a".repeat(64),
      "thanos-image": "quay.io/thanos/thanos:v0.39.2",
      "sidecar-port": "9096",
      "thanos-grpc-port": "20901",
      "thanos-http-port": "20902",
      "sidecar-cpu": "50m",
      "sidecar-memory": "100Mi",
      "sidecar-cpu-limit": "1",
      "sidecar-memory-limit": "1Gi",
      "thanos-cpu": "0.1",
      "thanos-memory": "1e8",
      "thanos-cpu-limit": "2",
      "thanos-memory-limit": "2G",
      "prometheus-container": "prometheus-server",
      "native-sidecar": "false",
      "shard-label": "shard_id",
      "replica-label": "prometheus_replica",
      "token-secret": "promshard-token",
      "sidecar-auth": "kubernetes",
    };
    assert.deepEqual(Object.keys(good).sort(), [...ANNOTATIONS.keys()].map((k) => k.slice(13)).sort());
    const r = parseAnnotations(Object.fromEntries(Object.entries(good).map(([k, v]) => [`promshard.io/${k}`, v])));
    assert.deepEqual(r.errors, []);
    assert.equal(r.value.maxSeries, 30000);
    assert.equal(r.value.replicaGroup, 2);
    assert.equal(r.value.sidecarAuth, "kubernetes");
    assert.deepEqual(r.value.thanosVolumeMounts, [
      { name: "bucket", mountPath: "/bucket" },
      { name: "cache", mountPath: "/var/cache/thanos" },
    ]);
    assert.deepEqual(r.value.thanosResources, { cpu: "0.1", memory: "1e8", cpuLimit: "2", memoryLimit: "2G" });
  });

  it("reports every error at once, and contradictions between annotations", () => {
    const { errors } = parseAnnotations({
      ...on,
      "promshard.io/max-series": "many",
      "promshard.io/thanos": "false",
      "promshard.io/thanos-objstore-secret": "store",
      "promshard.io/sidecar-memory": "1Gi",
      "promshard.io/sidecar-memory-limit": "512Mi",
      "promshard.io/thanos-grpc-port": "9095",
      "promshard.io/sidecar-port": "9095",
    });
    assert.deepEqual(
      errors.map((e) => e.path),
      [
        "annotation promshard.io/max-series",
        "annotation promshard.io/thanos-objstore-secret",
        "annotation promshard.io/sidecar-memory",
        "annotation promshard.io/thanos-grpc-port",
      ],
    );
    assert.match(errors[2]!.message, /request 1Gi is more than the limit 512Mi/);
  });

  it("warns about unknown promshard.io keys but not about its own or the coordinator's", () => {
    const r = parseAnnotations({
      ...on,
      "promshard.io/max_series": "1",
      "promshard.io/status": "injected",
      "promshard.io/series-hint": "100",
      "example.com/other": "x",
    });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, ["unknown annotation promshard.io/max_series is ignored; see the promshard docs"]);
  });

  it("a pod with bad values is refused with every message; a pod with inject=false is skipped", () => {
    const pod = fixture("seed");
    pod.metadata!.annotations = { ...on, "promshard.io/max-series": "0", "promshard.io/sidecar-port": "x" };
    const r = injectPod(pod, settings);
    assert.equal(r.outcome, "refused");
    if (r.outcome === "refused") {
      assert.match(r.message, /promshard\.io\/max-series.*; annotation promshard\.io\/sidecar-port/);
    }
    pod.metadata!.annotations = { "promshard.io/inject": "false", "promshard.io/max-series": "0" };
    assert.equal(injectPod(pod, settings).outcome, "skipped");
  });

  it("refuses what cannot work in this pod: a port in use, upload without a data volume", () => {
    const pod = fixture("kube-prometheus");
    pod.metadata!.annotations = { ...on, "promshard.io/sidecar-port": "8080" };
    const r = injectPod(pod, settings);
    assert.equal(r.outcome, "refused");
    if (r.outcome === "refused") {
      assert.match(r.message, /promshard\.io\/sidecar-port: port 8080 is already used by container config-reloader/);
    }
    pod.metadata!.annotations = { ...on, "promshard.io/sidecar-port": "9090" };
    const r2 = injectPod(pod, settings);
    assert.ok(r2.outcome === "refused" && /--web\.listen-address/.test(r2.message));

    const noData = fixture("bitnami");
    noData.spec.containers[0]!.volumeMounts = noData.spec.containers[0]!.volumeMounts!.filter((m) => m.name !== "data");
    noData.metadata!.annotations = { ...on, "promshard.io/thanos-objstore-secret": "s3" };
    const r3 = injectPod(noData, settings);
    assert.equal(r3.outcome, "refused");
    if (r3.outcome === "refused") assert.match(r3.message, /data directory \/bitnami\/prometheus\/data on a volume/);
  });

  it("quantities: Kubernetes's grammar, compared by value", () => {
    for (const [q, v] of [
      ["100m", 0.1],
      ["1", 1],
      ["1.5Gi", 1.5 * 2 ** 30],
      ["2e3", 2000],
      ["0.5", 0.5],
      [".5", 0.5],
      ["1k", 1000],
      ["+1", 1],
    ] as const) {
      assert.equal(parseQuantity(q), v, q);
    }
    for (const q of ["", "1.2.3", "1Gb", "abc", "1 Gi", "-1", "Gi"]) assert.equal(parseQuantity(q), undefined, q);
  });
});
