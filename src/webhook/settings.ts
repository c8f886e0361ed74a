/**
 * The webhook's cluster-wide settings (flags of `promshard webhook`), their defaults, and the
 * choice between a native sidecar and the plain-container fallback from the API server's version.
 */
import { readFileSync } from "node:fs";
import { DEFAULT_PROMETHEUS_IMAGE } from "./prometheus.ts";

/**
 * This build's version, written to every injected pod as promshard.io/version. Read at run time
 * (src/webhook/ and dist/webhook/ are both two levels below package.json, in the repo and in
 * the image), because the build's rootDir is src/.
 */
export const PROMSHARD_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export interface Resources {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

/**
 * How an injected sidecar checks the coordinator: `token`, the static token of a Secret (the
 * same for every shard); `kubernetes`, the coordinator's ServiceAccount token for the audience
 * SIDECAR_AUDIENCE, checked by TokenReview and SubjectAccessReview.
 */
export type SidecarAuth = "token" | "kubernetes";
export const SIDECAR_AUTH_MODES: readonly SidecarAuth[] = ["token", "kubernetes"];

export interface InjectorSettings {
  /** Written to promshard.io/version. */
  version: string;
  sidecarImage: string;
  thanosImage: string;
  /** Native sidecar (init container with restartPolicy Always, K8s >= 1.29) or plain container + init step. */
  nativeSidecar: boolean;
  /** The Prometheus container's name; else the one container whose image matches prometheusImage. */
  prometheusContainer: string;
  prometheusImage: RegExp;
  /** promshard.io/coordinator when a pod does not say. */
  coordinator: string;
  /** Default of promshard.io/sidecar-auth. */
  sidecarAuth: SidecarAuth;
  /** Secret (in the pod's namespace) holding the bearer token the coordinator sends to the sidecar. */
  tokenSecret: string;
  tokenKey: string;
  sidecarPort: number;
  thanosGrpcPort: number;
  thanosHttpPort: number;
  /** Default of promshard.io/thanos. */
  thanos: boolean;
  /** Default key of the object storage config in promshard.io/thanos-objstore-secret. */
  objstoreKey: string;
  sidecarResources: Resources;
  thanosResources: Resources;
  /**
   * A preStop pause of the Prometheus and Thanos sidecar containers, in seconds (0: none): a
   * stopping shard pod keeps answering Thanos Query until `promshard query-endpoints` has
   * listed another copy and Query has re-read its endpoint file (about 2 s, docs/thanos.md).
   */
  preStopSeconds: number;
  /** The preStop as Kubernetes's `sleep` action (>= 1.30), else an exec of `sleep` in the container's image. */
  sleepAction: boolean;
}

export const DEFAULT_SETTINGS: InjectorSettings = {
  version: PROMSHARD_VERSION,
  sidecarImage: `ghcr.io/promshard/promshard:v${PROMSHARD_VERSION}`,
  // The version `make tools` builds and the tests run (tools/thanos.mk).
  thanosImage: "quay.io/thanos/thanos:v0.42.4",
  nativeSidecar: true,
  prometheusContainer: "prometheus",
  prometheusImage: DEFAULT_PROMETHEUS_IMAGE,
  coordinator: "promshard",
  // The static token by default: sidecars injected before this setting existed keep working.
  sidecarAuth: "token",
  tokenSecret: "promshard-sidecar-token",
  tokenKey: "token",
  sidecarPort: 9095,
  thanosGrpcPort: 10901,
  thanosHttpPort: 10902,
  thanos: true,
  objstoreKey: "objstore.yml",
  sidecarResources: { requests: { cpu: "20m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  thanosResources: { requests: { cpu: "50m", memory: "128Mi" } },
  preStopSeconds: 5,
  sleepAction: false,
};

/** First Kubernetes minor version whose kubelets run native sidecars by default (SidecarContainers beta). */
export const NATIVE_SIDECAR_MINOR = 29;

/**
 * Whether a cluster whose API server reports `gitVersion` (`v1.29.3`, `v1.30.2-eks-1234`, or the
 * `major`/`minor` pair as `1`/`29+`) runs native sidecars. Unknown means no: on an older
 * kubelet an init container with restartPolicy Always never ends and the pod never starts,
 * whereas the fallback works everywhere.
 */
export function supportsNativeSidecars(version: ServerVersion): boolean {
  return atLeast(version, NATIVE_SIDECAR_MINOR);
}

/** First Kubernetes minor version whose kubelets run the preStop `sleep` action by default (PodLifecycleSleepAction beta). */
export const SLEEP_ACTION_MINOR = 30;

/** Whether the cluster runs the `sleep` lifecycle action; unknown means no (an exec of `sleep` works everywhere `sleep` exists). */
export function supportsSleepAction(version: ServerVersion): boolean {
  return atLeast(version, SLEEP_ACTION_MINOR);
}

/** The API server's `/version`. */
export interface ServerVersion {
  gitVersion?: string;
  major?: string;
  minor?: string;
}

function atLeast(version: ServerVersion, wantMinor: number): boolean {
  let major: number | undefined;
  let minor: number | undefined;
  const m = /^v?(\d+)\.(\d+)/.exec(version.gitVersion ?? "");
  if (m) {
    major = Number(m[1]);
    minor = Number(m[2]);
  } else {
    const ma = /^(\d+)/.exec(version.major ?? "");
    const mi = /^(\d+)/.exec(version.minor ?? "");
    if (ma && mi) {
      major = Number(ma[1]);
      minor = Number(mi[1]);
    }
  }
  if (major === undefined || minor === undefined) return false;
  return major > 1 || (major === 1 && minor >= wantMinor);
}
