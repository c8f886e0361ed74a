/**
 * The parts of Kubernetes objects the webhook reads, as narrow types, and the checks that turn
 * untrusted JSON into them. Anything that is not shaped like a pod the API server would send is
 * reported as a reason (the pod is then admitted unchanged), never thrown.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: unknown };

export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  subPathExpr?: string;
  readOnly?: boolean;
  [k: string]: unknown;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
  [k: string]: unknown;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  ports?: ContainerPort[];
  volumeMounts?: VolumeMount[];
  env?: JsonObject[];
  restartPolicy?: string;
  securityContext?: JsonObject;
  [k: string]: unknown;
}

export interface Volume {
  name: string;
  [k: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  [k: string]: unknown;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  [k: string]: unknown;
}

export interface Pod {
  metadata?: ObjectMeta;
  spec: PodSpec;
  [k: string]: unknown;
}

export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === "string");
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((s) => typeof s === "string");
}

/** A reason the containers at `path` are not usable, or undefined. */
function checkContainers(v: unknown, path: string): string | undefined {
  if (!Array.isArray(v)) return `${path} is not a list`;
  for (const [i, c] of v.entries()) {
    const at = `${path}[${i}]`;
    if (!isObject(c)) return `${at} is not an object`;
    if (typeof c.name !== "string") return `${at}.name is not a string`;
    for (const f of ["image", "workingDir", "restartPolicy"] as const) {
      if (c[f] !== undefined && typeof c[f] !== "string") return `${at}.${f} is not a string`;
    }
    for (const f of ["command", "args"] as const) {
      if (c[f] !== undefined && c[f] !== null && !isStringArray(c[f])) return `${at}.${f} is not a list of strings`;
    }
    if (c.ports !== undefined && c.ports !== null) {
      if (!Array.isArray(c.ports)) return `${at}.ports is not a list`;
      for (const p of c.ports) {
        if (!isObject(p) || typeof p.containerPort !== "number")
          return `${at}.ports has an entry without containerPort`;
        if (p.name !== undefined && typeof p.name !== "string") return `${at}.ports has a name that is not a string`;
      }
    }
    if (c.volumeMounts !== undefined && c.volumeMounts !== null) {
      if (!Array.isArray(c.volumeMounts)) return `${at}.volumeMounts is not a list`;
      for (const m of c.volumeMounts) {
        if (!isObject(m) || typeof m.name !== "string" || typeof m.mountPath !== "string") {
          return `${at}.volumeMounts has an entry without name or mountPath`;
        }
        if (m.subPath !== undefined && typeof m.subPath !== "string") return `${at}.volumeMounts has a bad subPath`;
      }
    }
    if (c.env !== undefined && c.env !== null && !(Array.isArray(c.env) && c.env.every(isObject))) {
      return `${at}.env is not a list of objects`;
    }
    if (c.securityContext !== undefined && c.securityContext !== null && !isObject(c.securityContext)) {
      return `${at}.securityContext is not an object`;
    }
  }
  return undefined;
}

/** Checks the metadata of any object: annotations and labels must be string maps. */
export function checkMetadata(v: unknown, path = "metadata"): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) return `${path} is not an object`;
  if (v.annotations !== undefined && v.annotations !== null && !isStringMap(v.annotations)) {
    return `${path}.annotations is not a map of strings`;
  }
  if (v.labels !== undefined && v.labels !== null && !isStringMap(v.labels)) {
    return `${path}.labels is not a map of strings`;
  }
  for (const f of ["name", "generateName", "namespace"] as const) {
    if (v[f] !== undefined && typeof v[f] !== "string") return `${path}.${f} is not a string`;
  }
  return undefined;
}

/** A reason `v` (at `path`) is not a pod-shaped object (a Pod, or a pod template), or undefined. */
export function checkPod(v: unknown, path = ""): string | undefined {
  const p = (s: string) => (path ? `${path}.${s}` : s);
  if (!isObject(v)) return `${path || "object"} is not an object`;
  const meta = checkMetadata(v.metadata, p("metadata"));
  if (meta) return meta;
  if (!isObject(v.spec)) return `${p("spec")} is missing`;
  const spec = v.spec;
  const c = checkContainers(spec.containers, p("spec.containers"));
  if (c) return c;
  if (spec.initContainers !== undefined && spec.initContainers !== null) {
    const i = checkContainers(spec.initContainers, p("spec.initContainers"));
    if (i) return i;
  }
  if (spec.volumes !== undefined && spec.volumes !== null) {
    if (!Array.isArray(spec.volumes) || !spec.volumes.every((vol) => isObject(vol) && typeof vol.name === "string")) {
      return `${p("spec.volumes")} is not a list of named volumes`;
    }
  }
  return undefined;
}

/** Annotations of an object's metadata (empty when there are none). */
export function annotationsOf(meta: unknown): Record<string, string> {
  return isObject(meta) && isStringMap(meta.annotations) ? meta.annotations : {};
}

/** RFC 6901: `~` -> `~0`, `/` -> `~1`. */
export function escapePointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

export type PatchOp = { op: "add" | "replace" | "test"; path: string; value: unknown } | { op: "remove"; path: string };
