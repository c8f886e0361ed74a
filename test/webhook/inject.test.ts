/**
 * The patch builder on real-world Prometheus pods (test/fixtures/webhook): each patch applied
 * with an RFC 6902 applier, and the resulting pod checked field by field.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { identityFromFlags } from "../../src/cli/sidecar.ts";
import { STATUS, VERSION } from "../../src/webhook/annotations.ts";
import {
  CONFIG_VOLUME,
  GENERATED_CONFIG,
  INIT,
  injectPod,
  OUTPUT_DIR,
  SIDECAR,
  THANOS,
  TOKEN_VOLUME,
} from "../../src/webhook/inject.ts";
import type { Pod } from "../../src/webhook/pod.ts";
import {
  allContainers,
  assertValidPod,
  container,
  fixture,
  fixtureNames,
  injected,
  settings,
  sidecarFlags,
} from "./support.ts";

const INJECTABLE = ["bitnami", "command-form", "community-chart", "kube-prometheus", "operator-thanos", "seed"];

function inject(name: string, s = settings): { before: Pod; after: Pod; warnings: string[] } {
  const before = fixture(name);
  const r = injectPod(before, s);
  const after = injected(before, r);
  return { before, after, warnings: r.outcome === "injected" ? r.warnings : [] };
}

describe("injection into real-world Prometheus pods", () => {
  it("the corpus is the one listed in its README", () => {
    assert.deepEqual(fixtureNames(), [...INJECTABLE, "no-prometheus", "shell-wrapped"].sort());
  });

  for (const name of INJECTABLE) {
    describe(name, () => {
      const { before, after } = inject(name);

      it("gives a valid pod with one promshard sidecar, the status annotations and the shared volume", () => {
        assertValidPod(after);
        assert.equal(allContainers(after).filter((c) => c.name === SIDECAR).length, 1);
        assert.equal(after.metadata?.annotations?.[STATUS], "injected");
        assert.equal(after.metadata?.annotations?.[VERSION], "9.9.9-test");
        assert.deepEqual(
          after.spec.volumes?.find((v) => v.name === CONFIG_VOLUME),
          { name: CONFIG_VOLUME, emptyDir: {} },
        );
        assert.ok(after.spec.volumes?.some((v) => v.name === TOKEN_VOLUME));
      });

      it("keeps everything the user wrote: other containers, volumes, annotations, labels", () => {
        for (const c of allContainers(before)) {
          const now = allContainers(after).find((x) => x.name === c.name)!;
          if (c.args?.some((a) => a.includes("config.file")) || c.command?.some((a) => a.includes("config.file")))
            continue;
          if (c.name === "prometheus" || c.name === "server") continue;
          assert.deepEqual(now, c, `container ${c.name} unchanged`);
        }
        for (const v of before.spec.volumes ?? []) assert.ok(after.spec.volumes?.some((x) => x.name === v.name));
        for (const [k, v] of Object.entries(before.metadata?.annotations ?? {})) {
          assert.equal(after.metadata?.annotations?.[k], v);
        }
        for (const [k, v] of Object.entries(before.metadata?.labels ?? {}))
          assert.equal(after.metadata?.labels?.[k], v);
        // Order of existing containers is kept; ours come last.
        const names = (p: Pod, f: "containers" | "initContainers") => (p.spec[f] ?? []).map((c) => c.name);
        for (const f of ["containers", "initContainers"] as const) {
          assert.deepEqual(names(after, f).slice(0, names(before, f).length), names(before, f));
        }
      });

      it("points Prometheus at the generated config with the lifecycle API, every other argument in place", () => {
        const promIndex = before.spec.containers.findIndex((c) => /prometheus(:|$)/.test(c.image ?? ""));
        const b = before.spec.containers[promIndex]!;
        const a = after.spec.containers[promIndex]!;
        const argv = [...(a.command ?? []), ...(a.args ?? [])];
        const flat = argv.join(" ");
        assert.ok(
          flat.includes(`--config.file=${GENERATED_CONFIG}`) || flat.includes(`--config.file ${GENERATED_CONFIG}`),
          flat,
        );
        assert.equal(argv.filter((x) => x === "--web.enable-lifecycle").length, 1);
        assert.ok(!argv.includes("--no-web.enable-lifecycle"));
        // Every original argument except the config file's value and the lifecycle switch is still there, in order.
        const kept = [...(b.command ?? []), ...(b.args ?? [])].filter(
          (x) => !/config\.file|^\/config\/|lifecycle/.test(x),
        );
        const after_ = argv.filter((x) => kept.includes(x));
        assert.deepEqual(after_.slice(0, kept.length), kept);
        assert.deepEqual(
          a.volumeMounts?.find((m) => m.name === CONFIG_VOLUME),
          { name: CONFIG_VOLUME, mountPath: OUTPUT_DIR, readOnly: true },
        );
      });

      it("gives the sidecar args that `promshard sidecar` accepts, and the shard ordinal from the pod name", () => {
        const sidecar = container(after, SIDECAR);
        const flags = sidecarFlags(sidecar);
        assert.equal(flags["output.dir"], OUTPUT_DIR);
        assert.equal(flags["shard.pod-name"], "$(POD_NAME)");
        assert.match(String(flags["api.token-file"]), /^\/var\/run\/secrets\/promshard\.io\/token\/token$/);
        const podName = after.metadata!.name!;
        const identity = identityFromFlags({ ...flags, "shard.pod-name": undefined }, { POD_NAME: podName });
        assert.equal(identity.shard, Number(podName.split("-").pop()));
        const env = (sidecar.env ?? []).map((e) => e.name);
        assert.deepEqual(env, ["POD_NAME", "POD_NAMESPACE", "SHARD_ORDINAL"]);
        // The original config file is visible to the sidecar at the same path.
        const configFile = String(flags["config.file"]);
        assert.ok(
          (sidecar.volumeMounts ?? []).some((m) => configFile.startsWith(`${m.mountPath.replace(/\/$/, "")}/`)),
          `${configFile} is under a mount of the sidecar`,
        );
      });

      it("is idempotent: the injected pod is left alone, and without its status annotation only that comes back", () => {
        const again = injectPod(after, settings);
        assert.deepEqual(again, { outcome: "skipped", reason: "already injected" });
        const stripped = structuredClone(after);
        delete stripped.metadata!.annotations![STATUS];
        const r = injectPod(stripped, settings);
        assert.equal(r.outcome, "injected");
        if (r.outcome === "injected") {
          assert.deepEqual(
            r.patch.map((op) => op.path),
            ["/metadata/annotations/promshard.io~1status"],
          );
        }
      });
    });
  }

  it("kube-prometheus: a native sidecar after the operator's init container, the operator's paths", () => {
    const { after } = inject("kube-prometheus");
    assert.deepEqual(
      after.spec.initContainers?.map((c) => c.name),
      ["init-config-reloader", SIDECAR],
    );
    const s = container(after, SIDECAR);
    assert.equal(s.restartPolicy, "Always");
    assert.deepEqual(s.startupProbe, {
      exec: { command: ["test", "-f", GENERATED_CONFIG] },
      periodSeconds: 1,
      timeoutSeconds: 1,
      failureThreshold: 600,
    });
    const f = sidecarFlags(s);
    assert.equal(f["config.file"], "/etc/prometheus/config_out/prometheus.env.yaml");
    assert.equal(f["prometheus.url"], "http://localhost:9090");
    assert.equal(f["state.dir"], "/prometheus/promshard");
    assert.equal(f.replica, undefined);
    assert.deepEqual(
      s.volumeMounts?.map((m) => [m.name, m.mountPath, m.subPath ?? "", m.readOnly ?? false]),
      [
        ["promshard-config", "/etc/promshard", "", false],
        ["config-out", "/etc/prometheus/config_out", "", true],
        ["tls-assets", "/etc/prometheus/certs", "", true],
        ["prometheus-k8s-rulefiles-0", "/etc/prometheus/rules/prometheus-k8s-rulefiles-0", "", true],
        ["web-config", "/etc/prometheus/web_config/web-config.yaml", "web-config.yaml", true],
        ["kube-api-access-7xk2p", "/var/run/secrets/kubernetes.io/serviceaccount", "", true],
        ["prometheus-k8s-db", "/prometheus", "prometheus-db", false],
        ["promshard-token", "/var/run/secrets/promshard.io/token", "", true],
        ["promshard-last-good", "/var/run/secrets/promshard.io/last-good", "", true],
      ],
    );
    // The pod runs as 1000 at the pod level: the sidecar inherits it.
    assert.deepEqual(s.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      runAsNonRoot: true,
    });
    const prom = container(after, "prometheus");
    assert.equal(prom.args?.[2], `--config.file=${GENERATED_CONFIG}`);
    assert.equal(prom.args?.length, 9, "--web.enable-lifecycle was there already");
    // The Thanos sidecar is on by default (promshard.io/thanos: "false" opts out), without
    // upload: no data mount, no block-duration flags; the pod's API token as Prometheus has it.
    const thanos = container(after, THANOS);
    assert.deepEqual(
      thanos.volumeMounts?.map((m) => [m.name, m.mountPath, m.readOnly ?? false]),
      [["kube-api-access-7xk2p", "/var/run/secrets/kubernetes.io/serviceaccount", true]],
    );
    assert.equal(after.metadata?.labels?.["promshard.io/coordinator"], "promshard");
  });

  it("operator with Thanos: the operator's Thanos sidecar is kept and not doubled; replica group passed on", () => {
    const { after, warnings } = inject("operator-thanos");
    assert.equal(allContainers(after).filter((c) => /thanos/.test(c.image ?? "")).length, 1);
    assert.deepEqual(warnings, []);
    const prom = container(after, "prometheus");
    assert.equal(prom.args?.filter((a) => a.includes("block-duration")).length, 2);
    assert.equal(sidecarFlags(container(after, SIDECAR)).replica, "1");
    assert.equal(sidecarFlags(container(after, SIDECAR))["state.dir"], "/prometheus/promshard");
  });

  it("community chart: found by image, Thanos with upload from the Secret, 2h blocks, resource overrides", () => {
    const { after, warnings } = inject("community-chart");
    assert.deepEqual(warnings, []);
    const prom = container(after, "prometheus-server");
    assert.deepEqual(prom.args?.slice(-3), [
      "--storage.tsdb.min-block-duration=2h",
      "--storage.tsdb.max-block-duration=2h",
      // A drained shard's head is flushed for the Thanos sidecar through the admin API (snapshot, delete).
      "--web.enable-admin-api",
    ]);
    assert.equal(prom.args?.filter((a) => a === "--web.enable-lifecycle").length, 1);
    assert.equal(sidecarFlags(container(after, SIDECAR))["tsdb.path"], "/data");
    const t = container(after, THANOS);
    assert.deepEqual(t.args, [
      "sidecar",
      "--prometheus.url=http://localhost:9090",
      "--grpc-address=:10901",
      "--http-address=:10902",
      "--prometheus.get_config_interval=2s",
      "--tsdb.path=/data",
      "--objstore.config=$(OBJSTORE_CONFIG)",
    ]);
    assert.deepEqual(t.env, [
      { name: "OBJSTORE_CONFIG", valueFrom: { secretKeyRef: { name: "thanos-objstore", key: "objstore.yml" } } },
    ]);
    assert.deepEqual(t.volumeMounts, [{ name: "storage-volume", mountPath: "/data" }]);
    assert.deepEqual(
      t.ports?.map((p) => [p.name, p.containerPort]),
      [
        ["http", 10902],
        ["grpc", 10901],
      ],
    );
    const s = container(after, SIDECAR);
    assert.deepEqual(s.resources, { requests: { cpu: "20m", memory: "128Mi" }, limits: { memory: "512Mi" } });
  });

  it("uploading without a known Prometheus user: a warning that the sidecar cannot flush a drained head", () => {
    const pod = fixture("community-chart");
    delete (pod.spec.securityContext as Record<string, unknown>).runAsUser;
    const r = injectPod(pod, settings);
    assert.equal(r.outcome, "injected");
    const warnings = r.outcome === "injected" ? r.warnings : [];
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /set securityContext\.runAsUser on the pod .* flush a drained shard's head/);
    assert.equal(sidecarFlags(container(injected(pod, r), SIDECAR))["tsdb.path"], "/data");
  });

  it("Bitnami: the container's own user for the sidecar, Thanos without upload and without the data volume", () => {
    const { after } = inject("bitnami");
    const s = container(after, SIDECAR);
    assert.equal(s.securityContext?.runAsUser, 1001);
    assert.equal(s.securityContext?.runAsGroup, 1001);
    const t = container(after, THANOS);
    assert.equal(t.volumeMounts, undefined);
    assert.ok(!t.args?.some((a) => a.startsWith("--tsdb.path") || a.startsWith("--objstore")));
    // Bitnami names Prometheus's port "http": the Thanos one gets a prefix instead of a clash.
    assert.deepEqual(
      t.ports?.map((p) => p.name),
      ["thanos-http", "grpc"],
    );
    assert.equal(after.metadata?.labels?.["promshard.io/coordinator"], "team-a");
    const prom = container(after, "prometheus");
    assert.equal(prom.args?.[prom.args.length - 1], "--web.enable-lifecycle");
    assert.ok(!prom.args?.some((a) => a.includes("block-duration")));
  });

  it("seed: the official image's default arguments are written out and then changed", () => {
    const { after, warnings } = inject("seed");
    assert.deepEqual(container(after, "prometheus").args, [
      `--config.file=${GENERATED_CONFIG}`,
      "--storage.tsdb.path=/prometheus",
      "--web.enable-lifecycle",
    ]);
    assert.equal(sidecarFlags(container(after, SIDECAR))["config.file"], "/etc/prometheus/prometheus.yml");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /had no args/);
  });

  it("the token volume is readable by the sidecar with or without the pod's fsGroup", () => {
    const tokenVolume = (p: Pod) =>
      p.spec.volumes?.find((v) => v.name === TOKEN_VOLUME)?.secret as { defaultMode: number } | undefined;
    // kube-prometheus sets fsGroup: the file is root:2000, and the group alone may read it.
    assert.equal(tokenVolume(inject("kube-prometheus").after)?.defaultMode, 0o440);
    // The seed sets none: root:root 0440 gave the sidecar (uid 1000) EACCES and the pod never started.
    const seed = fixture("seed");
    assert.equal((seed.spec.securityContext as { fsGroup?: number } | undefined)?.fsGroup, undefined);
    assert.equal(tokenVolume(inject("seed").after)?.defaultMode, 0o444);
  });

  it("the Thanos sidecar reads Prometheus's external labels every 2 s, so it is ready seconds after Prometheus", () => {
    const t = container(inject("seed").after, THANOS);
    assert.ok(t.args?.includes("--prometheus.get_config_interval=2s"), JSON.stringify(t.args));
  });

  it("a new pod runs the coordinator's last good config when the config file is broken: its Secret, optional, mounted", () => {
    for (const [name, coordinator] of [
      ["seed", "promshard"],
      ["bitnami", "team-a"],
    ] as const) {
      const { after } = inject(name);
      const v = after.spec.volumes?.find((x) => x.name === "promshard-last-good")?.secret as
        | { secretName: string; optional: boolean }
        | undefined;
      assert.equal(v?.secretName, `${coordinator}-last-good-config`, name);
      assert.equal(v?.optional, true, "the pod starts before the coordinator wrote it");
      assert.equal(
        sidecarFlags(container(after, SIDECAR))["config.fallback-file"],
        "/var/run/secrets/promshard.io/last-good/prometheus.yml",
      );
    }
  });

  it("the pod is Ready only when its Thanos sidecar is (promshard query-endpoints lists Ready pods)", () => {
    for (const name of ["seed", "community-chart", "bitnami"]) {
      const t = container(inject(name).after, THANOS);
      const http = t.ports?.find((p) => /http$/.test(p.name ?? ""))?.containerPort;
      assert.deepEqual(
        (t.readinessProbe as { httpGet?: unknown } | undefined)?.httpGet,
        { path: "/-/ready", port: http },
        name,
      );
    }
  });

  it("a stopping pod pauses Prometheus and Thanos before SIGTERM: the sleep action from 1.30, else an exec of sleep; a user's preStop stays", () => {
    const lifecycle = (pod: Pod, name: string) => container(pod, name).lifecycle;
    const sleep = inject("seed", { ...settings, preStopSeconds: 5, sleepAction: true }).after;
    for (const name of ["prometheus", THANOS])
      assert.deepEqual(lifecycle(sleep, name), { preStop: { sleep: { seconds: 5 } } }, name);
    assert.equal(lifecycle(sleep, SIDECAR), undefined, "the promshard sidecar is not on Query's path");
    const exec = inject("community-chart", { ...settings, preStopSeconds: 7, sleepAction: false }).after;
    for (const name of ["prometheus-server", THANOS])
      assert.deepEqual(lifecycle(exec, name), { preStop: { exec: { command: ["sleep", "7"] } } }, name);
    const none = inject("seed", { ...settings, preStopSeconds: 0 }).after;
    for (const name of ["prometheus", THANOS]) assert.equal(lifecycle(none, name), undefined, name);

    const own = fixture("seed");
    const prom = own.spec.containers.find((c) => c.name === "prometheus")!;
    prom.lifecycle = {
      preStop: { httpGet: { path: "/quit", port: 9090 } },
      postStart: { exec: { command: ["true"] } },
    };
    const kept = injected(own, injectPod(structuredClone(own), { ...settings, preStopSeconds: 5, sleepAction: true }));
    assert.deepEqual(lifecycle(kept, "prometheus"), prom.lifecycle);
    const half = fixture("seed");
    half.spec.containers.find((c) => c.name === "prometheus")!.lifecycle = {
      postStart: { exec: { command: ["true"] } },
    };
    assert.deepEqual(lifecycle(injected(half, injectPod(structuredClone(half), settings)), "prometheus"), {
      postStart: { exec: { command: ["true"] } },
      preStop: { exec: { command: ["sleep", "5"] } },
    });

    const short = fixture("seed");
    short.spec.terminationGracePeriodSeconds = 3;
    const r = injectPod(short, { ...settings, preStopSeconds: 5, sleepAction: true });
    assert.equal(r.outcome, "injected");
    assert.match(
      r.outcome === "injected" ? r.warnings.join("\n") : "",
      /terminationGracePeriodSeconds 3 ends the 5 s preStop pause early/,
    );
  });

  it("promshard.io/thanos-volume-mounts: the pod's volumes in the Thanos sidecar (a FILESYSTEM bucket), checked", () => {
    const pod = fixture("community-chart");
    pod.spec.volumes = [...(pod.spec.volumes ?? []), { name: "bucket", hostPath: { path: "/srv/bucket" } }];
    pod.metadata!.annotations!["promshard.io/thanos-volume-mounts"] = "bucket:/bucket";
    const after = injected(pod, injectPod(structuredClone(pod), settings));
    assertValidPod(after);
    assert.deepEqual(container(after, THANOS).volumeMounts, [
      { name: "storage-volume", mountPath: "/data" },
      { name: "bucket", mountPath: "/bucket" },
    ]);
    assert.ok(!container(after, SIDECAR).volumeMounts?.some((m) => m.name === "bucket"), "only Thanos ships blocks");

    const refused = (annotation: string, volumes = pod.spec.volumes) => {
      const p = structuredClone(pod);
      p.spec.volumes = volumes;
      p.metadata!.annotations!["promshard.io/thanos-volume-mounts"] = annotation;
      const r = injectPod(p, settings);
      assert.equal(r.outcome, "refused", annotation);
      return r.outcome === "refused" ? r.message : "";
    };
    assert.match(
      refused(
        "bucket:/bucket",
        pod.spec.volumes?.filter((v) => v.name !== "bucket"),
      ),
      /no volume bucket/,
    );
    assert.match(refused("bucket:/data"), /Prometheus's data volume/);
    assert.match(refused("bucket:relative"), /promshard\.io\/thanos-volume-mounts.*VOLUME:\/absolute\/path/);
    assert.match(refused("bucket:/a,bucket:/a"), /thanos-volume-mounts/);
    assert.match(refused("Bucket:/a"), /thanos-volume-mounts/);

    const seed = fixture("seed");
    seed.metadata!.annotations!["promshard.io/thanos-volume-mounts"] = "bucket:/bucket";
    seed.metadata!.annotations!["promshard.io/thanos"] = "false";
    const off = injectPod(seed, settings);
    assert.equal(off.outcome, "refused");
    assert.match(
      off.outcome === "refused" ? off.message : "",
      /thanos-volume-mounts.*promshard\.io\/thanos is "false"/,
    );
  });

  it("command form: values after the flag, the switch turned on, the fallback sidecar with its init step", () => {
    const { after } = inject("command-form");
    const prom = container(after, "server");
    assert.deepEqual(prom.command, ["/bin/prometheus", "--config.file", GENERATED_CONFIG]);
    assert.deepEqual(prom.args, [
      "--storage.tsdb.path",
      "/var/lib/prometheus",
      "--web.enable-lifecycle",
      "--web.listen-address=127.0.0.1:9091",
      "--web.external-url=https://example.com/prometheus/",
    ]);
    assert.deepEqual(
      after.spec.containers.map((c) => c.name),
      ["server", SIDECAR, THANOS],
    );
    assert.deepEqual(
      after.spec.initContainers?.map((c) => c.name),
      [INIT],
    );
    const s = container(after, SIDECAR);
    assert.equal(s.restartPolicy, undefined);
    assert.equal(s.startupProbe, undefined);
    const f = sidecarFlags(s);
    assert.equal(f["prometheus.url"], "http://127.0.0.1:9091/prometheus");
    assert.equal(f.listen, ":19095");
    assert.equal(f["config.file"], "/config/prometheus.yml");
    const init = container(after, INIT);
    assert.equal(init.command?.[0], "/bin/sh");
    assert.match(init.command![2]!, /scrape_configs: \[\]/);
  });

  it("a Prometheus running as root (pod or container setting): the sidecar does not demand non-root", () => {
    for (const where of ["pod", "container"] as const) {
      const pod = fixture("seed");
      if (where === "pod") pod.spec.securityContext = { runAsUser: 0 };
      else pod.spec.containers[0]!.securityContext = { runAsUser: 0 };
      const after = injected(pod, injectPod(pod, settings));
      assert.equal(container(after, SIDECAR).securityContext?.runAsNonRoot, undefined, where);
    }
    const after = injected(fixture("seed"), injectPod(fixture("seed"), settings));
    assert.equal(container(after, SIDECAR).securityContext?.runAsNonRoot, true);
  });

  it("the mode setting decides native or plain container when no annotation does", () => {
    const native = inject("kube-prometheus", { ...settings, nativeSidecar: true }).after;
    const plain = inject("kube-prometheus", { ...settings, nativeSidecar: false }).after;
    assert.ok(native.spec.initContainers?.some((c) => c.name === SIDECAR));
    assert.ok(plain.spec.containers.some((c) => c.name === SIDECAR));
    assert.deepEqual(
      plain.spec.initContainers?.map((c) => c.name),
      ["init-config-reloader", INIT],
    );
  });

  for (const [name, pattern] of [
    ["shell-wrapped", /runs "\/bin\/sh", not the prometheus binary/],
    ["no-prometheus", /no container is named "prometheus" or runs a Prometheus image \(containers: nginx\)/],
  ] as const) {
    it(`${name}: allowed unchanged with a warning that says why`, () => {
      const r = injectPod(fixture(name), settings);
      assert.equal(r.outcome, "unsupported");
      if (r.outcome === "unsupported") assert.match(r.warning, pattern);
    });
  }
});
