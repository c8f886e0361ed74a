/**
 * The `promshard.io/*` annotations a user writes on a Prometheus StatefulSet or its pod
 * template (DESIGN §3), parsed and validated with no I/O. Every refusal names the annotation
 * and the values it accepts; an unknown `promshard.io/` key is a warning (a typo must not go
 * unnoticed, and a newer chart's annotation must not break an older webhook).
 */
import { PromshardError } from "../errors.ts";
import { isLegacyLabelName } from "../prom/labels.ts";
import { parseQuantity } from "./quantity.ts";
import { SIDECAR_AUTH_MODES, type SidecarAuth } from "./settings.ts";

export const PREFIX = "promshard.io/";

/** Written by the webhook on every pod it injected. */
export const STATUS = `${PREFIX}status`;
export const STATUS_INJECTED = "injected";
/** The injector's version, next to STATUS. */
export const VERSION = `${PREFIX}version`;
/** On a pod template: the keys the webhook copied there from its StatefulSet (comma-separated). */
export const COPIED = `${PREFIX}copied-from-statefulset`;
/** Target annotation read by the coordinator, not by the webhook; known so it is not reported as a typo. */
export const SERIES_HINT = `${PREFIX}series-hint`;

export type ContainerKind = "sidecar" | "thanos";

export interface ResourceOverrides {
  cpu?: string;
  memory?: string;
  cpuLimit?: string;
  memoryLimit?: string;
}

/** What the annotations of one pod (or pod template) ask for; undefined = use the webhook's default. */
export interface PodAnnotations {
  inject: boolean;
  coordinator?: string;
  maxSeries?: number;
  replicaGroup?: number;
  thanos?: boolean;
  objstoreSecret?: string;
  objstoreKey?: string;
  /** Volumes of the pod mounted into the injected Thanos sidecar (a FILESYSTEM bucket's). */
  thanosVolumeMounts?: readonly { name: string; mountPath: string }[];
  sidecarImage?: string;
  thanosImage?: string;
  sidecarPort?: number;
  thanosGrpcPort?: number;
  thanosHttpPort?: number;
  sidecarResources: ResourceOverrides;
  thanosResources: ResourceOverrides;
  prometheusContainer?: string;
  nativeSidecar?: boolean;
  shardLabel?: string;
  replicaLabel?: string;
  tokenSecret?: string;
  sidecarAuth?: SidecarAuth;
}

type Setter = (a: PodAnnotations, value: string, name: string) => void;

interface Spec {
  /** The accepted values, as the refusal states them. */
  readonly accepts: string;
  readonly set: Setter;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
/**
 * An image reference as the distribution project defines it (lower-case repository path,
 * optional registry host with port, tag, digest), loosely enough for every real registry.
 */
const IMAGE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$/;

function fail(name: string, value: string, accepts: string): never {
  throw new PromshardError(
    "annotation_invalid",
    `${JSON.stringify(truncate(value, 80))} is not valid; accepted: ${accepts}`,
    { path: `annotation ${name}` },
  );
}

export function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}…`;
}

const BOOL = "true or false";
function bool(name: string, v: string): boolean {
  if (v === "true") return true;
  if (v === "false") return false;
  return fail(name, v, BOOL);
}

function integer(name: string, v: string, min: number, max: number, accepts: string): number {
  if (!/^\d{1,16}$/.test(v)) fail(name, v, accepts);
  const n = Number(v);
  if (n < min || n > max) fail(name, v, accepts);
  return n;
}

function matching(re: RegExp, accepts: string, maxLength: number) {
  return (name: string, v: string): string => {
    if (v.length > maxLength || !re.test(v)) fail(name, v, accepts);
    return v;
  };
}

const dnsLabel = matching(DNS_LABEL, "a DNS label (lower-case letters, digits and '-', at most 63)", 63);
const dnsSubdomain = matching(DNS_SUBDOMAIN, "a Kubernetes object name (DNS subdomain, at most 253)", 253);
const secretKey = matching(SECRET_KEY, "a Secret data key ([-._a-zA-Z0-9]+, at most 253)", 253);
const image = matching(IMAGE, "a container image reference such as quay.io/thanos/thanos:v0.39.2", 4096);
const QUANTITY = "a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi";
function quantity(name: string, v: string): string {
  if (parseQuantity(v) === undefined) fail(name, v, QUANTITY);
  return v;
}
const PORT = "a port number from 1 to 65535";
const port = (name: string, v: string) => integer(name, v, 1, 65535, PORT);
function labelName(name: string, v: string): string {
  if (v.startsWith("__") || !isLegacyLabelName(v)) {
    fail(name, v, "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)");
  }
  return v;
}

const VOLUME_MOUNTS = "VOLUME:/absolute/path, comma-separated (volumes of the pod, each path once)";
/** `bucket:/bucket,other:/x`: few, distinct, absolute, and nothing a mount path cannot be. */
function volumeMounts(name: string, v: string): { name: string; mountPath: string }[] {
  const items = v.split(",").map((s) => s.trim());
  if (v.length > 4096 || items.length > 16) fail(name, v, VOLUME_MOUNTS);
  const out: { name: string; mountPath: string }[] = [];
  for (const item of items) {
    const m = /^([^:]+):(\/.*)$/.exec(item);
    if (!m || !DNS_LABEL.test(m[1]!) || m[1]!.length > 63) fail(name, v, VOLUME_MOUNTS);
    const path = m[2]!.replace(/\/+$/, "") || "/";
    if (path === "/" || path.split("/").includes("..") || out.some((o) => o.mountPath === path))
      fail(name, v, VOLUME_MOUNTS);
    out.push({ name: m[1]!, mountPath: path });
  }
  return out;
}

function resources(kind: ContainerKind, field: keyof ResourceOverrides): Spec {
  return {
    accepts: QUANTITY,
    set: (a, v, n) => {
      (kind === "sidecar" ? a.sidecarResources : a.thanosResources)[field] = quantity(n, v);
    },
  };
}

/** Every annotation the webhook reads, by full key. Order is the order of the docs. */
const SPECS: Readonly<Record<string, Spec>> = {
  inject: {
    accepts: BOOL,
    set: (a, v, n) => {
      a.inject = bool(n, v);
    },
  },
  coordinator: {
    accepts: "a DNS label",
    set: (a, v, n) => {
      a.coordinator = dnsLabel(n, v);
    },
  },
  "max-series": {
    accepts: "a positive integer",
    set: (a, v, n) => {
      a.maxSeries = integer(n, v, 1, Number.MAX_SAFE_INTEGER, "a positive integer");
    },
  },
  "replica-group": {
    accepts: "an integer from 0 to 1000",
    set: (a, v, n) => {
      a.replicaGroup = integer(n, v, 0, 1000, "an integer from 0 to 1000");
    },
  },
  thanos: {
    accepts: BOOL,
    set: (a, v, n) => {
      a.thanos = bool(n, v);
    },
  },
  "thanos-objstore-secret": {
    accepts: "a Secret name",
    set: (a, v, n) => {
      a.objstoreSecret = dnsSubdomain(n, v);
    },
  },
  "thanos-objstore-key": {
    accepts: "a Secret key ([-._a-zA-Z0-9]+)",
    set: (a, v, n) => {
      a.objstoreKey = secretKey(n, v);
    },
  },
  "thanos-volume-mounts": {
    accepts: VOLUME_MOUNTS,
    set: (a, v, n) => {
      a.thanosVolumeMounts = volumeMounts(n, v);
    },
  },
  "sidecar-image": {
    accepts: "an image",
    set: (a, v, n) => {
      a.sidecarImage = image(n, v);
    },
  },
  "thanos-image": {
    accepts: "an image",
    set: (a, v, n) => {
      a.thanosImage = image(n, v);
    },
  },
  "sidecar-port": {
    accepts: PORT,
    set: (a, v, n) => {
      a.sidecarPort = port(n, v);
    },
  },
  "thanos-grpc-port": {
    accepts: PORT,
    set: (a, v, n) => {
      a.thanosGrpcPort = port(n, v);
    },
  },
  "thanos-http-port": {
    accepts: PORT,
    set: (a, v, n) => {
      a.thanosHttpPort = port(n, v);
    },
  },
  "sidecar-cpu": resources("sidecar", "cpu"),
  "sidecar-memory": resources("sidecar", "memory"),
  "sidecar-cpu-limit": resources("sidecar", "cpuLimit"),
  "sidecar-memory-limit": resources("sidecar", "memoryLimit"),
  "thanos-cpu": resources("thanos", "cpu"),
  "thanos-memory": resources("thanos", "memory"),
  "thanos-cpu-limit": resources("thanos", "cpuLimit"),
  "thanos-memory-limit": resources("thanos", "memoryLimit"),
  "prometheus-container": {
    accepts: "a container name",
    set: (a, v, n) => {
      a.prometheusContainer = dnsLabel(n, v);
    },
  },
  "native-sidecar": {
    accepts: BOOL,
    set: (a, v, n) => {
      a.nativeSidecar = bool(n, v);
    },
  },
  "shard-label": {
    accepts: "a label name",
    set: (a, v, n) => {
      a.shardLabel = labelName(n, v);
    },
  },
  "replica-label": {
    accepts: "a label name",
    set: (a, v, n) => {
      a.replicaLabel = labelName(n, v);
    },
  },
  "sidecar-auth": {
    accepts: SIDECAR_AUTH_MODES.join(" or "),
    set: (a, v, n) => {
      if (!(SIDECAR_AUTH_MODES as readonly string[]).includes(v)) fail(n, v, SIDECAR_AUTH_MODES.join(" or "));
      a.sidecarAuth = v as SidecarAuth;
    },
  },
  "token-secret": {
    accepts: "a Secret name",
    set: (a, v, n) => {
      a.tokenSecret = dnsSubdomain(n, v);
    },
  },
};
export const ANNOTATIONS: ReadonlyMap<string, Spec> = new Map(Object.entries(SPECS).map(([k, v]) => [PREFIX + k, v]));

/** Unknown keys named one by one in warnings; the rest are counted in one more. */
const MAX_UNKNOWN_NAMED = 5;

/** Keys the webhook itself writes or that other components read: never copied, never "unknown". */
const OWN = new Set([STATUS, VERSION, COPIED, SERIES_HINT]);

/** The settings annotations among `annotations` (what is copied from a StatefulSet to its pod template). */
export function settingsKeys(annotations: Readonly<Record<string, string>>): string[] {
  return Object.keys(annotations).filter((k) => ANNOTATIONS.has(k));
}

export interface ParsedAnnotations {
  value: PodAnnotations;
  /** One per unknown promshard.io/ key. */
  warnings: string[];
  /** One per bad value; empty when all is well. */
  errors: PromshardError[];
}

/**
 * Parses every promshard.io/ annotation of an object. Errors are collected (all of them, so a
 * user fixes them in one go); `where` prefixes their path (e.g. `spec.template`).
 */
export function parseAnnotations(annotations: Readonly<Record<string, string>>, where = ""): ParsedAnnotations {
  const value: PodAnnotations = { inject: false, sidecarResources: {}, thanosResources: {} };
  const warnings: string[] = [];
  const errors: PromshardError[] = [];
  let unknown = 0;
  for (const [key, v] of Object.entries(annotations)) {
    if (!key.startsWith(PREFIX)) continue;
    const spec = ANNOTATIONS.get(key);
    if (!spec) {
      if (OWN.has(key)) continue;
      // Named up to a few: one object with 200k unknown keys must not become a 17 MB log line.
      if (++unknown <= MAX_UNKNOWN_NAMED)
        warnings.push(`unknown annotation ${truncate(key, 100)} is ignored; see the promshard docs`);
      continue;
    }
    try {
      spec.set(value, v, key);
    } catch (err) {
      if (!(err instanceof PromshardError)) throw err;
      errors.push(
        where ? new PromshardError(err.code, err.message.replace(/^annotation /, `${where} annotation `)) : err,
      );
    }
  }
  if (unknown > MAX_UNKNOWN_NAMED)
    warnings.push(`${unknown - MAX_UNKNOWN_NAMED} more unknown promshard.io/ annotations are ignored`);
  crossCheck(value, errors, where);
  return { value, warnings, errors };
}

function crossCheck(a: PodAnnotations, errors: PromshardError[], where: string): void {
  const at = (k: string) => `${where ? `${where} ` : ""}annotation ${PREFIX}${k}`;
  if (a.objstoreSecret !== undefined && a.thanos === false) {
    errors.push(
      new PromshardError(
        "annotation_invalid",
        `block upload needs the Thanos sidecar, but ${PREFIX}thanos is "false"; remove one of the two`,
        { path: at("thanos-objstore-secret") },
      ),
    );
  }
  if (a.thanosVolumeMounts !== undefined && a.thanos === false) {
    errors.push(
      new PromshardError(
        "annotation_invalid",
        `mounts volumes into the Thanos sidecar, but ${PREFIX}thanos is "false"; remove one of the two`,
        { path: at("thanos-volume-mounts") },
      ),
    );
  }
  if (a.objstoreKey !== undefined && a.objstoreSecret === undefined) {
    errors.push(
      new PromshardError("annotation_invalid", `only means something with ${PREFIX}thanos-objstore-secret; set it`, {
        path: at("thanos-objstore-key"),
      }),
    );
  }
  for (const kind of ["sidecar", "thanos"] as const) {
    const r = kind === "sidecar" ? a.sidecarResources : a.thanosResources;
    for (const [req, lim, name] of [
      [r.cpu, r.cpuLimit, "cpu"],
      [r.memory, r.memoryLimit, "memory"],
    ] as const) {
      if (req === undefined || lim === undefined) continue;
      if (parseQuantity(req)! > parseQuantity(lim)!) {
        errors.push(
          new PromshardError("annotation_invalid", `request ${req} is more than the limit ${lim}; lower it`, {
            path: at(`${kind}-${name}`),
          }),
        );
      }
    }
  }
  const ports = [
    ["sidecar-port", a.sidecarPort],
    ["thanos-grpc-port", a.thanosGrpcPort],
    ["thanos-http-port", a.thanosHttpPort],
  ] as const;
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      if (ports[i]![1] !== undefined && ports[i]![1] === ports[j]![1]) {
        errors.push(
          new PromshardError(
            "annotation_invalid",
            `port ${ports[j]![1]} is also ${PREFIX}${ports[i]![0]}; choose another`,
            {
              path: at(ports[j]![0]),
            },
          ),
        );
      }
    }
  }
}
