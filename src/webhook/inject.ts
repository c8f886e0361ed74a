/**
 * Injection (DESIGN §4) as a pure function: a pod (or pod template) and the webhook's settings
 * in, a JSON patch out. No I/O, no clock, no randomness.
 *
 * Every step is "ensure", never "append blindly": a container, volume, mount or flag that is
 * already there (by name, by path, by flag) is left alone. So a pod that was injected before,
 * a pod re-invoked after another webhook changed it, and a pod spec copied from an injected pod
 * all come out with one of each. The status annotation is the fast path, not the only guard.
 */
import { PromshardError } from "../errors.ts";
import {
  type PodAnnotations,
  PREFIX,
  parseAnnotations,
  type ResourceOverrides,
  STATUS,
  STATUS_INJECTED,
  VERSION,
} from "./annotations.ts";
import {
  type Container,
  type ContainerPort,
  checkPod,
  escapePointer,
  isObject,
  type JsonObject,
  type PatchOp,
  type Pod,
  type Volume,
  type VolumeMount,
} from "./pod.ts";
import { findPrometheus, mountCovering, type PrometheusFlags, readPrometheusFlags } from "./prometheus.ts";
import { parseQuantity } from "./quantity.ts";
import type { InjectorSettings, Resources, SidecarAuth } from "./settings.ts";

export const SIDECAR = "promshard-sidecar";
export const INIT = "promshard-init";
export const THANOS = "thanos-sidecar";
export const CONFIG_VOLUME = "promshard-config";
/** The promshard sidecar's API port's name (promshard query-endpoints finds its /metrics by it). */
export const SIDECAR_PORT_NAME = "promshard";
export const STATE_VOLUME = "promshard-state";
export const TOKEN_VOLUME = "promshard-token";
/** With kubernetes auth: the sidecar's own ServiceAccount token, for TokenReview. */
export const KUBE_API_VOLUME = "promshard-kube-api";
export const LAST_GOOD_VOLUME = "promshard-last-good";
/** Where the ServiceAccount admission plugin mounts a pod's API token in each container. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The shared emptyDir: the sidecar writes, Prometheus reads. */
export const OUTPUT_DIR = "/etc/promshard";
export const GENERATED_CONFIG = `${OUTPUT_DIR}/prometheus.yml`;
export const STATE_DIR = "/var/lib/promshard";
export const TOKEN_DIR = "/var/run/secrets/promshard.io/token";
export const LAST_GOOD_DIR = "/var/run/secrets/promshard.io/last-good";
/** The key of the coordinator's last good config in its Secret (and the file's name). */
export const LAST_GOOD_KEY = "prometheus.yml";

/**
 * The Secret in which coordinator `name` keeps its last good config, in each namespace with
 * shards of it: mounted (optional) into every sidecar, so a new pod started while the config
 * is broken runs it. A Secret, not a ConfigMap: the config holds scrape credentials.
 */
export function lastGoodSecretName(coordinator: string): string {
  return `${coordinator}-last-good-config`;
}
/** Set by the StatefulSet controller on every pod (Kubernetes >= 1.28): the ordinal. */
export const POD_INDEX_LABEL = "apps.kubernetes.io/pod-index";
export const COORDINATOR_LABEL = `${PREFIX}coordinator`;
/** How often the injected Thanos sidecar reads Prometheus's config (and retries the first read). */
export const THANOS_CONFIG_INTERVAL = "2s";

export type InjectResult =
  /** Not opted in, opted out, or already injected: admitted as it is. */
  | { outcome: "skipped"; reason: string }
  /** Opted in but not something promshard can inject: admitted as it is, with a warning. */
  | { outcome: "unsupported"; warning: string }
  /** Opted in with bad settings: refused, with every problem named. */
  | { outcome: "refused"; message: string; errors: PromshardError[] }
  | { outcome: "injected"; patch: PatchOp[]; warnings: string[]; mode: "native" | "container" };

/**
 * The patch that injects promshard into `object` (a Pod, or with `base` "/spec/template" a
 * StatefulSet's pod template, whose annotations then live under `base`).
 */
export function injectPod(object: unknown, settings: InjectorSettings, base = ""): InjectResult {
  const shapeError = checkPod(object);
  if (shapeError) return { outcome: "unsupported", warning: `not a valid pod: ${shapeError}` };
  const pod = object as Pod;
  const annotations = pod.metadata?.annotations ?? {};
  const parsed = parseAnnotations(annotations);
  if (annotations[`${PREFIX}inject`] === undefined) return { outcome: "skipped", reason: "not annotated" };
  // Opted out: the other annotations do not matter, bad or not.
  if (annotations[`${PREFIX}inject`] === "false") return { outcome: "skipped", reason: "promshard.io/inject is false" };
  if (parsed.errors.length > 0) {
    return { outcome: "refused", message: parsed.errors.map((e) => e.message).join("; "), errors: parsed.errors };
  }
  const opts = parsed.value;
  const spec = pod.spec;
  const all = [...spec.containers, ...(spec.initContainers ?? [])];
  const hasSidecar = all.some((c) => c.name === SIDECAR);
  if (annotations[STATUS] === STATUS_INJECTED && hasSidecar) return { outcome: "skipped", reason: "already injected" };

  const warnings = [...parsed.warnings];
  const found = findPrometheus(
    spec.containers,
    opts.prometheusContainer ?? settings.prometheusContainer,
    settings.prometheusImage,
  );
  if ("error" in found) return { outcome: "unsupported", warning: found.error };
  const promIndex = found.index;
  const prom = spec.containers[promIndex]!;
  const flags = readPrometheusFlags(prom);
  if ("error" in flags) return { outcome: "unsupported", warning: flags.error };
  if (flags.configFile === GENERATED_CONFIG && !hasSidecar) {
    return {
      outcome: "unsupported",
      warning: `container ${prom.name} already reads ${GENERATED_CONFIG} but the pod has no ${SIDECAR}; remove the promshard changes from the spec`,
    };
  }
  warnings.push(...flags.notes);

  const native = opts.nativeSidecar ?? settings.nativeSidecar;
  const promMounts = prom.volumeMounts ?? [];
  const dataMount = mountCovering(promMounts, flags.tsdbPath);
  const thanosWanted = opts.thanos ?? (opts.objstoreSecret !== undefined || settings.thanos);
  const upload = thanosWanted && opts.objstoreSecret !== undefined;
  const existingThanos = all.find(isThanosSidecar);
  const addThanos = thanosWanted && !existingThanos;
  if (thanosWanted && existingThanos && existingThanos.name !== THANOS) {
    warnings.push(`container ${existingThanos.name} is already a Thanos sidecar; promshard leaves it as it is`);
  }

  // Refusals: what the user asked for cannot work in this pod.
  const errors: PromshardError[] = [];
  const refuse = (annotation: string, message: string) =>
    errors.push(new PromshardError("annotation_invalid", message, { path: `annotation ${PREFIX}${annotation}` }));
  if (upload && addThanos && !dataMount) {
    refuse(
      "thanos-objstore-secret",
      `block upload needs Prometheus's data directory ${flags.tsdbPath} on a volume, and container ${prom.name} mounts none there; add a volume or drop the annotation`,
    );
  }
  const extraMounts = opts.thanosVolumeMounts ?? [];
  if (addThanos) {
    for (const m of extraMounts) {
      if (!spec.volumes?.some((v) => v.name === m.name))
        refuse("thanos-volume-mounts", `the pod has no volume ${m.name}; add it to the pod's volumes`);
      else if (upload && dataMount && m.mountPath === dataMount.mountPath.replace(/\/+$/, ""))
        refuse(
          "thanos-volume-mounts",
          `${m.mountPath} is Prometheus's data volume in the Thanos sidecar; choose another path`,
        );
    }
  } else if (extraMounts.length > 0)
    warnings.push(`${PREFIX}thanos-volume-mounts is unused: promshard injects no Thanos sidecar into this pod`);
  const sidecarPort = opts.sidecarPort ?? settings.sidecarPort;
  const grpcPort = opts.thanosGrpcPort ?? settings.thanosGrpcPort;
  const httpPort = opts.thanosHttpPort ?? settings.thanosHttpPort;
  const used = usedPorts(spec.containers, spec.initContainers ?? [], flags.port, prom.name);
  const checkPort = (annotation: string, port: number) => {
    const by = used.get(port);
    if (by) refuse(annotation, `port ${port} is already used by ${by}; choose another port`);
  };
  if (!hasSidecar) checkPort("sidecar-port", sidecarPort);
  if (addThanos) {
    checkPort("thanos-grpc-port", grpcPort);
    checkPort("thanos-http-port", httpPort);
  }
  if (errors.length > 0) return { outcome: "refused", message: errors.map((e) => e.message).join("; "), errors };

  const ops: PatchOp[] = [];
  const metaPath = `${base}/metadata`;
  // Metadata: status, version, and the coordinator label the coordinator selects its shards by.
  const meta = pod.metadata;
  if (!meta) ops.push({ op: "add", path: metaPath, value: {} });
  ensureMapEntries(ops, `${metaPath}/annotations`, meta?.annotations, {
    [STATUS]: STATUS_INJECTED,
    [VERSION]: settings.version,
  });
  ensureMapEntries(ops, `${metaPath}/labels`, meta?.labels, {
    [COORDINATOR_LABEL]: opts.coordinator ?? settings.coordinator,
  });

  // Volumes.
  const volumes: Volume[] = [{ name: CONFIG_VOLUME, emptyDir: {} }];
  if (!dataMount) volumes.push({ name: STATE_VOLUME, emptyDir: {} });
  const auth = opts.sidecarAuth ?? settings.sidecarAuth;
  if (auth === "kubernetes" && opts.tokenSecret !== undefined)
    warnings.push(
      `${PREFIX}token-secret is unused: the sidecar checks the coordinator's token with the Kubernetes API`,
    );
  volumes.push(
    auth === "kubernetes"
      ? kubeApiVolume(tokenMode(spec))
      : {
          name: TOKEN_VOLUME,
          secret: {
            secretName: opts.tokenSecret ?? settings.tokenSecret,
            items: [{ key: settings.tokenKey, path: "token" }],
            defaultMode: tokenMode(spec),
          },
        },
  );
  volumes.push({
    name: LAST_GOOD_VOLUME,
    secret: {
      secretName: lastGoodSecretName(opts.coordinator ?? settings.coordinator),
      // Absent until the coordinator has loaded a config: the pod must start without it.
      optional: true,
      defaultMode: tokenMode(spec),
    },
  });
  ensureNamed(ops, `${base}/spec/volumes`, spec.volumes, volumes);

  // A Thanos sidecar ships the TSDB: a drained shard's head is flushed there (src/sidecar/flush.ts).
  const ships = (upload || (existingThanos !== undefined && thanosUploads(existingThanos))) && dataMount !== undefined;

  const podRunAsUser = isObject(spec.securityContext) ? spec.securityContext.runAsUser : undefined;
  if (ships && !hasSidecar && typeof prom.securityContext?.runAsUser !== "number" && typeof podRunAsUser !== "number")
    warnings.push(
      `container ${prom.name} runs as its image's user and the promshard sidecar as its own: set securityContext.runAsUser on the pod (or on ${prom.name}) so that the sidecar can flush a drained shard's head into Prometheus's data directory for the Thanos sidecar (without it the coordinator waits --scale-down.wait)`,
    );

  // The promshard sidecar (+ the init step of the fallback).
  if (!hasSidecar) {
    const sidecar = sidecarContainer(
      prom,
      flags,
      opts,
      settings,
      dataMount,
      sidecarPort,
      native,
      podRunAsUser,
      auth,
      ships,
    );
    if (native) {
      ensureNamed(ops, `${base}/spec/initContainers`, spec.initContainers, [sidecar]);
    } else {
      ensureNamed(ops, `${base}/spec/initContainers`, spec.initContainers, [
        initContainer(opts, settings, prom, podRunAsUser),
      ]);
      ensureNamed(ops, `${base}/spec/containers`, spec.containers, [sidecar]);
    }
  }

  // The Thanos sidecar.
  if (addThanos) {
    ensureNamed(ops, `${base}/spec/containers`, spec.containers, [
      thanosContainer(
        flags,
        opts,
        settings,
        upload ? dataMount : undefined,
        grpcPort,
        httpPort,
        usedNames(all),
        promMounts,
      ),
    ]);
  }

  // The Prometheus container: generated config, lifecycle API, 2h blocks and the admin API
  // (the flush's snapshot and delete) when uploading.
  const promPath = `${base}/spec/containers/${promIndex}`;
  const set = new Map<string, string>([["config.file", GENERATED_CONFIG]]);
  if (upload || (existingThanos && thanosUploads(existingThanos))) {
    for (const f of ["storage.tsdb.min-block-duration", "storage.tsdb.max-block-duration"]) {
      const had = flags.values.get(f);
      if (had !== undefined && had !== "2h")
        warnings.push(`--${f}=${had} became 2h: Thanos uploads need equal 2h blocks`);
      set.set(f, "2h");
    }
  }
  const rewritten = flags.rewrite({
    set,
    enable: ["web.enable-lifecycle", ...(ships ? ["web.enable-admin-api"] : [])],
  });
  for (const field of ["command", "args"] as const) {
    const v = rewritten[field];
    if (v)
      ops.push({
        op: prom[field] === undefined || prom[field] === null ? "add" : "replace",
        path: `${promPath}/${field}`,
        value: v,
      });
  }
  // The user's own preStop stays: it may already wait, or do what that pod needs.
  const stopping = preStop(settings);
  if (stopping && !isObject(prom.lifecycle)) ops.push({ op: "add", path: `${promPath}/lifecycle`, value: stopping });
  else if (stopping && isObject(prom.lifecycle) && prom.lifecycle.preStop === undefined)
    ops.push({ op: "add", path: `${promPath}/lifecycle/preStop`, value: stopping.preStop });
  const grace = spec.terminationGracePeriodSeconds;
  if (stopping && typeof grace === "number" && grace <= settings.preStopSeconds)
    warnings.push(
      `terminationGracePeriodSeconds ${grace} ends the ${settings.preStopSeconds} s preStop pause early: Thanos Query may still ask this pod as it stops (failed queries); raise it`,
    );
  if (!promMounts.some((m) => m.name === CONFIG_VOLUME || m.mountPath === OUTPUT_DIR)) {
    const mount: VolumeMount = { name: CONFIG_VOLUME, mountPath: OUTPUT_DIR, readOnly: true };
    if (prom.volumeMounts === undefined || prom.volumeMounts === null) {
      ops.push({ op: "add", path: `${promPath}/volumeMounts`, value: [mount] });
    } else ops.push({ op: "add", path: `${promPath}/volumeMounts/-`, value: mount });
  }

  return { outcome: "injected", patch: ops, warnings, mode: native ? "native" : "container" };
}

/**
 * The pause before SIGTERM of the containers Thanos Query reads through (Prometheus and its
 * Thanos sidecar): a deleted pod is dropped from Query's endpoints by `promshard
 * query-endpoints` at once, but Query re-reads that file only every second and then needs an
 * Info round; meanwhile it still asks this pod, and a query it sends to a stopped sidecar fails
 * (partial responses are off). The same pause kube-prometheus users give endpoints behind a Service.
 */
function preStop(settings: InjectorSettings): { preStop: JsonObject } | undefined {
  const s = settings.preStopSeconds;
  if (s <= 0) return undefined;
  return { preStop: settings.sleepAction ? { sleep: { seconds: s } } : { exec: { command: ["sleep", String(s)] } } };
}

/**
 * What the ServiceAccount admission plugin would mount (token, CA, namespace), as the sidecar's
 * own volume: it needs the token to call TokenReview even where the pod or its ServiceAccount
 * sets automountServiceAccountToken: false (the chart's shards do, so that Prometheus and
 * Thanos hold no API token). The kubelet renews the token before it expires and client-node
 * reads the file again every minute.
 */
function kubeApiVolume(mode: number): Volume {
  return {
    name: KUBE_API_VOLUME,
    projected: {
      defaultMode: mode,
      sources: [
        { serviceAccountToken: { path: "token", expirationSeconds: 3600 } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        {
          downwardAPI: {
            items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
          },
        },
      ],
    },
  };
}

/**
 * The kubelet writes a Secret volume's files as root, group-owned by the pod's fsGroup when it
 * has one. With fsGroup, 0440 lets the sidecar read through the group and no one else. Without
 * it the sidecar (a non-root user) could read a 0440 file only by running as root, and it
 * exits on EACCES: then 0444. That opens the token to no one more, since only the sidecar
 * container mounts the volume and the kubelet's copy lives in a root-only directory.
 */
export function tokenMode(spec: Pod["spec"]): number {
  const sc = spec.securityContext;
  return isObject(sc) && typeof sc.fsGroup === "number" ? 0o440 : 0o444;
}

function ensureMapEntries(
  ops: PatchOp[],
  path: string,
  current: Record<string, string> | undefined | null,
  want: Record<string, string>,
): void {
  if (current === undefined || current === null) {
    ops.push({ op: "add", path, value: want });
    return;
  }
  for (const [k, v] of Object.entries(want)) {
    if (current[k] !== v) ops.push({ op: "add", path: `${path}/${escapePointer(k)}`, value: v });
  }
}

function ensureNamed<T extends { name: string }>(
  ops: PatchOp[],
  path: string,
  current: readonly { name: string }[] | undefined | null,
  want: T[],
): void {
  const missing = want.filter((w) => !current?.some((c) => c.name === w.name));
  if (missing.length === 0) return;
  if (current === undefined || current === null) {
    ops.push({ op: "add", path, value: missing });
    return;
  }
  for (const m of missing) ops.push({ op: "add", path: `${path}/-`, value: m });
}

function isThanosSidecar(c: Container): boolean {
  return c.name === THANOS || (/(?:^|\/)thanos(?:[:@]|$)/.test(c.image ?? "") && (c.args ?? [])[0] === "sidecar");
}

function thanosUploads(c: Container): boolean {
  return [...(c.args ?? []), ...(c.command ?? [])].some((a) => a.startsWith("--objstore.config"));
}

/** Every port a container of the pod declares, plus Prometheus's listen port. */
function usedPorts(
  containers: Container[],
  inits: Container[],
  promPort: number,
  promName: string,
): Map<number, string> {
  const used = new Map<number, string>([[promPort, `container ${promName} (--web.listen-address)`]]);
  for (const c of [...containers, ...inits]) {
    for (const p of c.ports ?? []) if (!used.has(p.containerPort)) used.set(p.containerPort, `container ${c.name}`);
  }
  return used;
}

function usedNames(containers: Container[]): Set<string> {
  return new Set(containers.flatMap((c) => (c.ports ?? []).flatMap((p) => (p.name ? [p.name] : []))));
}

function resources(defaults: Resources, o: ResourceOverrides): JsonObject {
  const requests: Record<string, string> = { ...defaults.requests };
  const limits: Record<string, string> = { ...defaults.limits };
  if (o.cpu !== undefined) requests.cpu = o.cpu;
  if (o.memory !== undefined) requests.memory = o.memory;
  if (o.cpuLimit !== undefined) limits.cpu = o.cpuLimit;
  if (o.memoryLimit !== undefined) limits.memory = o.memoryLimit;
  // A default that contradicts the user's value gives way, so the pod stays valid (request <= limit).
  for (const k of ["cpu", "memory"] as const) {
    const req = requests[k];
    const lim = limits[k];
    if (req === undefined || lim === undefined || parseQuantity(req)! <= parseQuantity(lim)!) continue;
    const userRequest = k === "cpu" ? o.cpu : o.memory;
    if (userRequest === undefined) requests[k] = lim;
    else limits[k] = req;
  }
  const out: JsonObject = {};
  if (Object.keys(requests).length > 0) out.requests = requests;
  if (Object.keys(limits).length > 0) out.limits = limits;
  return out;
}

/**
 * The container's own user and group as Prometheus runs with them, so that the sidecar can read
 * what Prometheus reads (config, rule and secret files) and write where it writes (the data
 * volume), plus what the "restricted" Pod Security level asks of every container.
 */
function securityContext(prom: Container, nonRoot: boolean, podRunAsUser?: unknown): JsonObject {
  const sc: JsonObject = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
  };
  const p = prom.securityContext ?? {};
  for (const k of ["runAsUser", "runAsGroup"]) if (typeof p[k] === "number") sc[k] = p[k]!;
  // Prometheus running as root (its own setting, else the pod's): asking for non-root would stop the pod.
  if (nonRoot && (p.runAsUser ?? podRunAsUser) !== 0) sc.runAsNonRoot = true;
  return sc;
}

function env(): JsonObject[] {
  const field = (fieldPath: string) => ({ valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } } });
  return [
    { name: "POD_NAME", ...field("metadata.name") },
    { name: "POD_NAMESPACE", ...field("metadata.namespace") },
    { name: "SHARD_ORDINAL", ...field(`metadata.labels['${POD_INDEX_LABEL}']`) },
  ];
}

function sidecarContainer(
  prom: Container,
  flags: PrometheusFlags,
  opts: PodAnnotations,
  settings: InjectorSettings,
  dataMount: VolumeMount | undefined,
  port: number,
  native: boolean,
  podRunAsUser: unknown,
  auth: SidecarAuth,
  ships: boolean,
): Container {
  const stateDir = dataMount ? `${dataMount.mountPath.replace(/\/+$/, "")}/promshard` : STATE_DIR;
  const args = [
    "sidecar",
    `--config.file=${flags.configFile}`,
    `--prometheus.url=${flags.url}`,
    `--output.dir=${OUTPUT_DIR}`,
    `--state.dir=${stateDir}`,
    `--listen=:${port}`,
    auth === "kubernetes" ? "--api.auth=kubernetes" : `--api.token-file=${TOKEN_DIR}/token`,
    `--config.fallback-file=${LAST_GOOD_DIR}/${LAST_GOOD_KEY}`,
    "--shard.pod-name=$(POD_NAME)",
  ];
  if (opts.replicaGroup !== undefined) args.push(`--replica=${opts.replicaGroup}`);
  if (opts.shardLabel !== undefined) args.push(`--shard.label=${opts.shardLabel}`);
  if (opts.replicaLabel !== undefined) args.push(`--replica.label=${opts.replicaLabel}`);
  if (ships) args.push(`--tsdb.path=${flags.tsdbPath}`);

  // The sidecar sees the files Prometheus sees (config, rules, secrets) read-only at the same
  // paths, so relative and absolute paths in the user's config mean the same to both; the
  // TSDB is not among them, except for the sidecar's own state directory in its volume.
  const mounts: VolumeMount[] = [{ name: CONFIG_VOLUME, mountPath: OUTPUT_DIR }];
  for (const m of prom.volumeMounts ?? []) {
    if (m === dataMount || m.name === CONFIG_VOLUME || m.mountPath === OUTPUT_DIR) continue;
    // Its own API token takes that path (kubeApiVolume).
    if (auth === "kubernetes" && m.mountPath === SERVICE_ACCOUNT_DIR) continue;
    const copy: VolumeMount = { name: m.name, mountPath: m.mountPath, readOnly: true };
    if (m.subPath) copy.subPath = m.subPath;
    if (typeof m.subPathExpr === "string" && m.subPathExpr) copy.subPathExpr = m.subPathExpr;
    mounts.push(copy);
  }
  if (dataMount) {
    const copy: VolumeMount = { name: dataMount.name, mountPath: dataMount.mountPath };
    if (dataMount.subPath) copy.subPath = dataMount.subPath;
    if (typeof dataMount.subPathExpr === "string" && dataMount.subPathExpr) copy.subPathExpr = dataMount.subPathExpr;
    mounts.push(copy);
  } else {
    mounts.push({ name: STATE_VOLUME, mountPath: STATE_DIR });
  }
  mounts.push(
    auth === "kubernetes"
      ? { name: KUBE_API_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true }
      : { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
  );
  mounts.push({ name: LAST_GOOD_VOLUME, mountPath: LAST_GOOD_DIR, readOnly: true });

  const ports: ContainerPort[] = [{ name: SIDECAR_PORT_NAME, containerPort: port, protocol: "TCP" }];
  const c: Container = {
    name: SIDECAR,
    image: opts.sidecarImage ?? settings.sidecarImage,
    args,
    env: env(),
    ports,
    resources: resources(settings.sidecarResources, opts.sidecarResources),
    volumeMounts: mounts,
    livenessProbe: {
      httpGet: { path: "/healthz", port: SIDECAR_PORT_NAME },
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 6,
    },
    securityContext: securityContext(prom, true, podRunAsUser),
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  if (native) {
    c.restartPolicy = "Always";
    // Prometheus (a later container) starts only once this passes: once the first config exists.
    c.startupProbe = {
      exec: { command: ["test", "-f", GENERATED_CONFIG] },
      periodSeconds: 1,
      timeoutSeconds: 1,
      failureThreshold: 600,
    };
  }
  return c;
}

/**
 * The fallback's init step: before Prometheus starts, a config with no scrape jobs, so that
 * Prometheus never scrapes the unsharded config; the sidecar then writes the real one and
 * reloads Prometheus through /-/reload.
 */
function initContainer(
  opts: PodAnnotations,
  settings: InjectorSettings,
  prom: Container,
  podRunAsUser: unknown,
): Container {
  return {
    name: INIT,
    image: opts.sidecarImage ?? settings.sidecarImage,
    command: [
      "/bin/sh",
      "-c",
      `test -f ${GENERATED_CONFIG} || printf '%s\\n' '# promshard: placeholder until the sidecar writes the shard config' 'scrape_configs: []' > ${GENERATED_CONFIG}`,
    ],
    volumeMounts: [{ name: CONFIG_VOLUME, mountPath: OUTPUT_DIR }],
    resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
    securityContext: securityContext(prom, true, podRunAsUser),
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function thanosContainer(
  flags: PrometheusFlags,
  opts: PodAnnotations,
  settings: InjectorSettings,
  dataMount: VolumeMount | undefined,
  grpcPort: number,
  httpPort: number,
  takenNames: Set<string>,
  promMounts: readonly VolumeMount[],
): Container {
  // prometheus-operator's conventions: ports named grpc/http (prefixed only if the pod has them already).
  const portName = (n: string) => (takenNames.has(n) ? `thanos-${n}` : n);
  const args = [
    "sidecar",
    `--prometheus.url=${flags.url}`,
    `--grpc-address=:${grpcPort}`,
    `--http-address=:${httpPort}`,
    // It starts beside Prometheus, so its first read of the external labels fails, and it
    // retries at this interval: Thanos's 30 s kept a new shard out of Thanos Query that long
    // (docs/cluster.md). The repeated read later is one small GET.
    `--prometheus.get_config_interval=${THANOS_CONFIG_INTERVAL}`,
  ];
  const c: Container = {
    name: THANOS,
    image: opts.thanosImage ?? settings.thanosImage,
    args,
    ports: [
      { name: portName("http"), containerPort: httpPort, protocol: "TCP" },
      { name: portName("grpc"), containerPort: grpcPort, protocol: "TCP" },
    ],
    // Thanos's /-/ready answers 200 once it has read Prometheus's external labels: the pod is
    // then Ready only when Thanos Query can use its sidecar (promshard query-endpoints lists
    // Ready pods), not merely when Prometheus is.
    readinessProbe: {
      httpGet: { path: "/-/ready", port: httpPort },
      periodSeconds: 5,
      failureThreshold: 3,
    },
    resources: resources(settings.thanosResources, opts.thanosResources),
    securityContext: securityContext({ name: "", securityContext: {} }, false),
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  const stopping = preStop(settings);
  if (stopping) c.lifecycle = stopping;
  if (dataMount) {
    args.push(`--tsdb.path=${flags.tsdbPath}`, "--objstore.config=$(OBJSTORE_CONFIG)");
    c.env = [
      {
        name: "OBJSTORE_CONFIG",
        valueFrom: {
          secretKeyRef: { name: opts.objstoreSecret!, key: opts.objstoreKey ?? settings.objstoreKey },
        },
      },
    ];
    const mount: VolumeMount = { name: dataMount.name, mountPath: dataMount.mountPath };
    if (dataMount.subPath) mount.subPath = dataMount.subPath;
    if (typeof dataMount.subPathExpr === "string" && dataMount.subPathExpr) mount.subPathExpr = dataMount.subPathExpr;
    c.volumeMounts = [mount];
  }
  const extra = (opts.thanosVolumeMounts ?? []).map((m) => ({ name: m.name, mountPath: m.mountPath }));
  if (extra.length > 0) c.volumeMounts = [...(c.volumeMounts ?? []), ...extra];
  // The API server's ServiceAccount plugin mounts the token into every container it finds
  // without one, and having changed the pod, calls this webhook again: mounted here as in
  // Prometheus, the pod is the same and the second call is saved.
  const token = promMounts.find((m) => m.mountPath === SERVICE_ACCOUNT_DIR);
  if (token)
    c.volumeMounts = [...(c.volumeMounts ?? []), { name: token.name, mountPath: token.mountPath, readOnly: true }];
  return c;
}
