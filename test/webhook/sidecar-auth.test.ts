/**
 * The sidecar's authentication as the webhook injects it: `--sidecar.auth` (the default) and
 * `promshard.io/sidecar-auth` (per pod or StatefulSet). With kubernetes the sidecar checks the
 * caller's token with TokenReview, so it gets no token Secret but an API token of its own,
 * whatever the pod says about automounting one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  injectPod,
  KUBE_API_VOLUME,
  SERVICE_ACCOUNT_DIR,
  SIDECAR,
  TOKEN_DIR,
  TOKEN_VOLUME,
} from "../../src/webhook/inject.ts";
import type { Pod } from "../../src/webhook/pod.ts";
import type { InjectorSettings } from "../../src/webhook/settings.ts";
import { allContainers, assertValidPod, container, fixture, injected, settings, sidecarFlags } from "./support.ts";

const INJECTABLE = ["bitnami", "command-form", "community-chart", "kube-prometheus", "operator-thanos", "seed"];
const kubernetes: InjectorSettings = { ...settings, sidecarAuth: "kubernetes" };

function inject(name: string, s: InjectorSettings, annotations: Record<string, string> = {}): Pod {
  const pod = fixture(name);
  pod.metadata!.annotations = { ...pod.metadata!.annotations, ...annotations };
  return injected(pod, injectPod(pod, s));
}

function volume<T>(pod: Pod, name: string): T {
  const v = pod.spec.volumes?.find((x) => x.name === name);
  assert.ok(v, `volume ${name}`);
  return v as unknown as T;
}

function assertKubernetesAuth(pod: Pod): void {
  assertValidPod(pod);
  const sidecar = container(pod, SIDECAR);
  const flags = sidecarFlags(sidecar);
  assert.equal(flags["api.auth"], "kubernetes");
  assert.equal(flags["api.token-file"], undefined);
  assert.equal(
    pod.spec.volumes?.some((v) => v.name === TOKEN_VOLUME),
    false,
    "no token Secret",
  );
  const volume = pod.spec.volumes?.find((v) => v.name === KUBE_API_VOLUME) as
    | { projected: { sources: Record<string, unknown>[] } }
    | undefined;
  assert.ok(volume, "the sidecar's API token volume");
  assert.deepEqual(
    volume.projected.sources.map((s) => Object.keys(s)[0]),
    ["serviceAccountToken", "configMap", "downwardAPI"],
    "what client-node's in-cluster config reads: token, ca.crt, namespace",
  );
  assert.deepEqual(
    sidecar.volumeMounts?.filter((m) => m.mountPath === SERVICE_ACCOUNT_DIR),
    [{ name: KUBE_API_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true }],
  );
  assert.equal(
    sidecar.volumeMounts?.some((m) => m.mountPath === TOKEN_DIR),
    false,
  );
  for (const c of allContainers(pod)) {
    if (c.name !== SIDECAR)
      assert.equal(
        (c.volumeMounts ?? []).some((m) => m.name === KUBE_API_VOLUME),
        false,
        `${c.name} gets no token from promshard`,
      );
  }
}

describe("--sidecar.auth=kubernetes", () => {
  for (const name of INJECTABLE) {
    it(`${name}: the sidecar checks tokens with the API, with its own ServiceAccount token and no token Secret`, () => {
      assertKubernetesAuth(inject(name, kubernetes));
    });
  }

  it("a pod that mounts the API token in Prometheus already: the sidecar gets one token mount, its own", () => {
    const before = fixture("kube-prometheus");
    assert.ok(container(before, "prometheus").volumeMounts?.some((m) => m.mountPath === SERVICE_ACCOUNT_DIR));
    const after = inject("kube-prometheus", kubernetes);
    assertKubernetesAuth(after);
    assert.deepEqual(
      container(after, "prometheus").volumeMounts?.find((m) => m.mountPath === SERVICE_ACCOUNT_DIR)?.name,
      "kube-api-access-7xk2p",
      "Prometheus keeps its own",
    );
  });

  it("the token is readable by the sidecar with or without fsGroup, as the token Secret is", () => {
    const mode = (p: Pod) => volume<{ projected: { defaultMode: number } }>(p, KUBE_API_VOLUME).projected.defaultMode;
    assert.equal(mode(inject("kube-prometheus", kubernetes)), 0o440);
    assert.equal(mode(inject("seed", kubernetes)), 0o444);
  });

  it("injecting twice changes nothing", () => {
    const once = inject("seed", kubernetes);
    const again = injectPod(once, kubernetes);
    assert.equal(again.outcome, "skipped");
    const copied = structuredClone(once);
    delete copied.metadata!.annotations!["promshard.io/status"];
    assert.deepEqual(injected(copied, injectPod(copied, kubernetes)).spec, once.spec);
  });
});

describe("promshard.io/sidecar-auth", () => {
  it("kubernetes on a pod overrides the token default", () => {
    assertKubernetesAuth(inject("seed", settings, { "promshard.io/sidecar-auth": "kubernetes" }));
  });

  it("kubernetes with promshard.io/token-secret: a warning that the Secret is unused", () => {
    const pod = fixture("seed");
    pod.metadata!.annotations = {
      ...pod.metadata!.annotations,
      "promshard.io/sidecar-auth": "kubernetes",
      "promshard.io/token-secret": "mine",
    };
    const r = injectPod(pod, settings);
    assert.equal(r.outcome, "injected");
    assert.ok(
      r.outcome === "injected" && r.warnings.some((w) => /promshard\.io\/token-secret is unused/.test(w)),
      JSON.stringify(r),
    );
  });

  it("token on a pod overrides the kubernetes default: the Secret of promshard.io/token-secret", () => {
    const pod = inject("seed", kubernetes, {
      "promshard.io/sidecar-auth": "token",
      "promshard.io/token-secret": "mine",
    });
    assertValidPod(pod);
    const sidecar = container(pod, SIDECAR);
    assert.equal(sidecarFlags(sidecar)["api.auth"], undefined, "token is the sidecar's default");
    assert.equal(sidecarFlags(sidecar)["api.token-file"], `${TOKEN_DIR}/token`);
    assert.deepEqual(volume<{ secret: { secretName: string } }>(pod, TOKEN_VOLUME).secret.secretName, "mine");
    assert.equal(
      pod.spec.volumes?.some((v) => v.name === KUBE_API_VOLUME),
      false,
    );
  });

  it("another value is refused, naming the annotation and what it accepts", () => {
    const pod = fixture("seed");
    pod.metadata!.annotations = { ...pod.metadata!.annotations, "promshard.io/sidecar-auth": "TokenReview" };
    const r = injectPod(pod, settings);
    assert.equal(r.outcome, "refused");
    assert.equal(
      r.outcome === "refused" && r.message,
      'annotation promshard.io/sidecar-auth: "TokenReview" is not valid; accepted: token or kubernetes',
    );
  });
});
