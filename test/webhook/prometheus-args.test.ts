/** Reading and rewriting the Prometheus container's flags without touching the others. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Container } from "../../src/webhook/pod.ts";
import {
  DEFAULT_PROMETHEUS_IMAGE,
  findPrometheus,
  mountCovering,
  readPrometheusFlags,
} from "../../src/webhook/prometheus.ts";

function flags(c: Partial<Container>) {
  const r = readPrometheusFlags({ name: "prometheus", image: "quay.io/prometheus/prometheus:v3.5.0", ...c });
  if ("error" in r) throw new Error(r.error);
  return r;
}

const enable = { set: new Map([["config.file", "/gen.yml"]]), enable: ["web.enable-lifecycle"] };

describe("Prometheus flags", () => {
  it("finds the container by name, else by an image whose last path element is prometheus", () => {
    const cs = (...images: string[]) => images.map((image, i) => ({ name: `c${i}`, image }));
    const f = (c: Container[]) => findPrometheus(c, "prometheus", DEFAULT_PROMETHEUS_IMAGE);
    assert.deepEqual(
      f([
        { name: "x", image: "a" },
        { name: "prometheus", image: "b" },
      ]),
      { index: 1 },
    );
    assert.deepEqual(f(cs("quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0", "prom/prometheus")), {
      index: 1,
    });
    assert.deepEqual(f(cs("docker.io/bitnami/prometheus:3.5.0-debian-12-r0")), { index: 0 });
    assert.deepEqual(f(cs("registry.local/prometheus@sha256:abcd")), { index: 0 });
    assert.deepEqual(f(cs("prometheus")), { index: 0 });
    for (const miss of ["quay.io/prometheus/alertmanager", "prometheus-adapter", "my/prometheusx:1"]) {
      assert.ok("error" in f(cs(miss)), miss);
    }
    const both = f(cs("prom/prometheus:v2", "quay.io/prometheus/prometheus:v3"));
    assert.ok("error" in both && /several containers.*c0, c1/.test(both.error));
  });

  it("reads paths, listen address and route prefix as Prometheus derives them", () => {
    const a = flags({ args: ["--config.file=/c/p.yml", "--storage.tsdb.path=/d"] });
    assert.equal(a.configFile, "/c/p.yml");
    assert.equal(a.tsdbPath, "/d");
    assert.equal(a.url, "http://localhost:9090");
    const b = flags({
      args: ["--config.file", "conf/p.yml", "--web.listen-address=[::]:9999", "--web.external-url=http://x/a/b/"],
      workingDir: "/w",
    });
    assert.equal(b.configFile, "/w/conf/p.yml");
    assert.equal(b.tsdbPath, "/w/data");
    assert.equal(b.url, "http://localhost:9999/a/b");
    const c = flags({ args: ["--web.route-prefix=/prom/", "--web.external-url=http://x/ignored", "--config.file=/a"] });
    assert.equal(c.url, "http://localhost:9090/prom");
    // Prometheus 3 listens on several addresses when the flag repeats: the first is used.
    const d = flags({
      args: ["--config.file=/a", "--web.listen-address=127.0.0.1:9001", "--web.listen-address=:9002"],
    });
    assert.equal(d.url, "http://127.0.0.1:9001");
    assert.equal(d.port, 9001);
  });

  it("says why it cannot: a relative path with no working directory, a variable, a wrapper, unknown image defaults", () => {
    const cases: [Partial<Container>, RegExp][] = [
      [{ image: "my/prom:1", args: ["--config.file=p.yml", "--storage.tsdb.path=/d"] }, /no workingDir/],
      [{ args: ["--config.file=$(CONFIG)"] }, /Kubernetes variable/],
      [{ command: ["sh", "-c", "prometheus"] }, /runs "sh"/],
      [{ image: "my/prom:1" }, /default arguments of image my\/prom:1/],
      [{ args: ["--config.file=/a", "--web.listen-address=nowhere"] }, /has no port/],
    ];
    for (const [c, re] of cases) {
      const r = readPrometheusFlags({ name: "prometheus", image: "quay.io/prometheus/prometheus:v3.5.0", ...c });
      assert.ok("error" in r && re.test(r.error), `${JSON.stringify(c)}: ${JSON.stringify(r)}`);
    }
  });

  it("expands $(VAR) in any argument as Kubernetes would, from the container's env, or says why it cannot", () => {
    const env = [
      { name: "HOST", value: "127.0.0.1" },
      { name: "PORT", value: "9091" },
      { name: "ADDR", value: "$(HOST):$(PORT)" }, // earlier entries expand in later ones
      { name: "DIR", value: "/etc/prom" },
      { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
    ];
    const d = flags({ env, args: ["--config.file=$(DIR)/p.yml", "--web.listen-address=$(HOST):$(PORT)"] });
    assert.equal(d.configFile, "/etc/prom/p.yml");
    assert.equal(d.url, "http://127.0.0.1:9091");
    assert.equal(flags({ env, args: ["--config.file=/a", "--web.listen-address=$(ADDR)"] }).port, 9091);
    // $$ escapes: Prometheus gets the literal text.
    assert.equal(flags({ env, args: ["--config.file=/a/$$(DIR)/x.yml"] }).configFile, "/a/$(DIR)/x.yml");
    // Other arguments are left for Kubernetes to expand; a rewrite keeps them as written.
    const other = flags({ env, args: ["--config.file=/a", "--web.external-url=http://$(HOST)/"] });
    assert.deepEqual(other.rewrite(enable).args, [
      "--config.file=/gen.yml",
      "--web.external-url=http://$(HOST)/",
      "--web.enable-lifecycle",
    ]);
    const cases: [Partial<Container>, RegExp][] = [
      [
        { env, args: ["--config.file=/a", "--web.listen-address=$(POD_IP):9090"] },
        /--web\.listen-address uses \$\(POD_IP\), which comes from valueFrom/,
      ],
      [
        { env, args: ["--config.file=/a", "--web.listen-address=$(NOPE):9090"] },
        /\$\(NOPE\) is not in the container's env/,
      ],
      [
        { envFrom: [{ configMapRef: { name: "x" } }], args: ["--storage.tsdb.path=$(DATA)", "--config.file=/a"] },
        /--storage\.tsdb\.path uses \$\(DATA\), which comes from valueFrom or may come from envFrom/,
      ],
    ];
    for (const [c, re] of cases) {
      const r = readPrometheusFlags({ name: "prometheus", image: "quay.io/prometheus/prometheus:v3.5.0", ...c });
      assert.ok("error" in r && re.test(r.error), `${JSON.stringify(c.args)}: ${JSON.stringify(r)}`);
    }
  });

  it("rewrites values in place, in the form the user wrote, and appends only what is missing", () => {
    const args = ["--a=1", "--config.file", "/x.yml", "--b", "--web.enable-lifecycle=false", "--c=3"];
    assert.deepEqual(flags({ args }).rewrite(enable), {
      args: ["--a=1", "--config.file", "/gen.yml", "--b", "--web.enable-lifecycle", "--c=3"],
    });
    assert.deepEqual(flags({ args: ["--config.file=/gen.yml", "--web.enable-lifecycle"] }).rewrite(enable), {});
    assert.deepEqual(flags({ args: ["--config.file=/x"] }).rewrite(enable), {
      args: ["--config.file=/gen.yml", "--web.enable-lifecycle"],
    });
    // Flags in command stay in command; additions go to args.
    assert.deepEqual(
      flags({ command: ["/bin/prometheus", "--config.file=/x"], args: undefined }).rewrite({
        set: new Map([
          ["config.file", "/gen.yml"],
          ["storage.tsdb.min-block-duration", "2h"],
        ]),
        enable: [],
      }),
      { command: ["/bin/prometheus", "--config.file=/gen.yml"], args: ["--storage.tsdb.min-block-duration=2h"] },
    );
    // An unknown flag's separate value is never mistaken for a flag of ours.
    assert.deepEqual(flags({ args: ["--log.level", "debug", "--config.file=/x"] }).rewrite(enable), {
      args: ["--log.level", "debug", "--config.file=/gen.yml", "--web.enable-lifecycle"],
    });
  });

  it("finds the deepest mount covering a path, on path boundaries", () => {
    const m = (name: string, mountPath: string) => ({ name, mountPath });
    const mounts = [m("root", "/"), m("data", "/data"), m("deep", "/data/prom/"), m("datax", "/datax")];
    assert.equal(mountCovering(mounts, "/data/prom/wal")?.name, "deep");
    assert.equal(mountCovering(mounts, "/data/other")?.name, "data");
    assert.equal(mountCovering(mounts, "/data")?.name, "data");
    assert.equal(mountCovering(mounts, "/datay/x")?.name, "root");
    assert.equal(mountCovering([m("d", "/data")], "/datax"), undefined);
  });
});
