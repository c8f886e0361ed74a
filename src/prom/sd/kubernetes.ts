/**
 * A `kubernetes_sd_configs` entry checked as Prometheus 3.16 loads it: strict YAML fields,
 * its Role type, the inline HTTP client config (prometheus/common's Validate), then
 * SDConfig.UnmarshalYAML's own rules. Messages are Prometheus's, each under the path of the
 * field it concerns; unlike Prometheus, which stops at the first, every problem is listed.
 */
import type { PromshardError } from "../../errors.ts";
import { goQuote } from "../go-quote.ts";
import { goUrlParseError } from "../go-url.ts";
import { isObj, type Obj, StrictReader, yamlKind } from "../go-yaml.ts";
import { decodeHttpClient, HTTP_CLIENT_KEYS, validateHttpClient } from "../http-client.ts";
import { parseFieldSelector, parseLabelSelector } from "./selectors.ts";

export type KubernetesRole = "pod" | "service" | "endpoints" | "endpointslice" | "node" | "ingress";

export const KUBERNETES_ROLES: readonly KubernetesRole[] = [
  "pod",
  "service",
  "endpoints",
  "endpointslice",
  "node",
  "ingress",
];

/** `attach_metadata` of a kubernetes_sd_configs entry. */
export interface AttachMetadata {
  readonly node: boolean;
  readonly namespace: boolean;
  readonly deployment: boolean;
  readonly job: boolean;
  readonly cronjob: boolean;
}

export interface KubernetesSelector {
  readonly role: KubernetesRole;
  readonly label: string;
  readonly field: string;
}

export interface KubernetesSdConfig {
  readonly role: KubernetesRole;
  /** As written; `""` is a set (empty) URL to Prometheus, undefined is unset (in-cluster). */
  readonly apiServer: string | undefined;
  /** Empty when unset. */
  readonly kubeconfigFile: string;
  readonly namespaces: { readonly ownNamespace: boolean; readonly names: readonly string[] };
  readonly selectors: readonly KubernetesSelector[];
  readonly attachMetadata: AttachMetadata;
  /** The inline HTTP client fields as written (basic_auth, tls_config …), for the client layer. */
  readonly httpClient: Readonly<Record<string, unknown>>;
  /** Whether the HTTP client fields differ from Prometheus's defaults. */
  readonly customHttpClient: boolean;
}

export interface KubernetesSdConfigResult {
  /** Undefined when there are errors. */
  readonly config: KubernetesSdConfig | undefined;
  readonly errors: readonly PromshardError[];
}

/** Which selector roles each role accepts (Prometheus's allowedSelectors, in its order). */
export const ALLOWED_SELECTORS: Readonly<Record<KubernetesRole, readonly KubernetesRole[]>> = {
  pod: ["pod", "node"],
  service: ["service"],
  endpointslice: ["pod", "service", "endpointslice"],
  endpoints: ["pod", "service", "endpoints"],
  node: ["node"],
  ingress: ["ingress"],
};

const SD_KEYS = ["api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata"];

/** Role.UnmarshalYAML. */
function readRole(r: StrictReader, obj: Obj, key: string, path: string): string | undefined {
  const s = r.string(obj, key, path);
  if (s === undefined) return undefined;
  if (!(KUBERNETES_ROLES as readonly string[]).includes(s)) {
    r.add(`${path}.${key}`, `unknown Kubernetes SD role ${goQuote(s)}`);
  }
  return s;
}

/**
 * Checks one `kubernetes_sd_configs` entry (already parsed from YAML) as Prometheus 3.16
 * does, and returns its typed form. `path` names the entry in messages.
 */
export function parseKubernetesSdConfig(raw: unknown, path = "kubernetes_sd_configs[0]"): KubernetesSdConfigResult {
  const errors: PromshardError[] = [];
  const r = new StrictReader(errors);
  if (!isObj(raw)) {
    r.add(
      path,
      `cannot unmarshal ${raw === null || raw === undefined ? "null" : yamlKind(raw)} into kubernetes.SDConfig`,
    );
    return { config: undefined, errors };
  }
  r.known(raw, [...SD_KEYS, ...HTTP_CLIENT_KEYS], "kubernetes.plain", path);

  // Decoding, as yaml.UnmarshalStrict does it (type errors, nested Unmarshalers).
  let apiServer = r.string(raw, "api_server", path);
  if (apiServer !== undefined) {
    const err = goUrlParseError(apiServer);
    if (err !== undefined) {
      r.add(`${path}.api_server`, err);
      apiServer = undefined;
    }
  }
  const role = readRole(r, raw, "role", path);
  const kubeconfigFile = r.string(raw, "kubeconfig_file", path) ?? "";

  const ns = r.map(raw, "namespaces", path, "kubernetes.plain") ?? {};
  r.known(ns, ["own_namespace", "names"], "kubernetes.plain", `${path}.namespaces`);
  const ownNamespace = r.bool(ns, "own_namespace", `${path}.namespaces`) ?? false;
  const names = r.strings(ns, "names", `${path}.namespaces`) ?? [];

  const selectors: { role: string | undefined; roleOk: boolean; label: string; field: string; index: number }[] = [];
  const rawSelectors = raw.selectors;
  if (rawSelectors !== undefined && rawSelectors !== null) {
    if (!Array.isArray(rawSelectors)) {
      r.add(`${path}.selectors`, `cannot unmarshal ${yamlKind(rawSelectors)} into []kubernetes.SelectorConfig`);
    } else {
      rawSelectors.forEach((s, i) => {
        const at = `${path}.selectors[${i}]`;
        if (s === null || s === undefined) {
          selectors.push({ role: undefined, roleOk: true, label: "", field: "", index: i });
          return;
        }
        if (!isObj(s)) {
          r.add(at, `cannot unmarshal ${yamlKind(s)} into kubernetes.SelectorConfig`);
          return;
        }
        r.known(s, ["role", "label", "field"], "kubernetes.SelectorConfig", at);
        const before = errors.length;
        const selectorRole = readRole(r, s, "role", at);
        selectors.push({
          role: selectorRole,
          roleOk: errors.length === before,
          label: r.string(s, "label", at) ?? "",
          field: r.string(s, "field", at) ?? "",
          index: i,
        });
      });
    }
  }

  const am = r.map(raw, "attach_metadata", path, "kubernetes.AttachMetadataConfig") ?? {};
  r.known(
    am,
    ["node", "namespace", "deployment", "job", "cronjob"],
    "kubernetes.AttachMetadataConfig",
    `${path}.attach_metadata`,
  );
  const attach = (k: string) => r.bool(am, k, `${path}.attach_metadata`) ?? false;
  const attachMetadata: AttachMetadata = {
    node: attach("node"),
    namespace: attach("namespace"),
    deployment: attach("deployment"),
    job: attach("job"),
    cronjob: attach("cronjob"),
  };

  const http = decodeHttpClient(raw, path, r);
  const decodeErrors = errors.length;

  // SDConfig.UnmarshalYAML. (Prometheus skips it for an empty document; an entry is never one.)
  if (role === undefined || role === "") {
    if (!errors.some((e) => e.path === `${path}.role`)) {
      r.add(`${path}.role`, "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)");
    }
  }
  validateHttpClient(http, path, r);
  const custom = http.custom;
  if (apiServer !== undefined && kubeconfigFile !== "") {
    r.add(`${path}.kubeconfig_file`, "cannot use 'kubeconfig_file' and 'api_server' simultaneously");
  }
  if (kubeconfigFile !== "" && custom) {
    r.add(`${path}.kubeconfig_file`, "cannot use a custom HTTP client configuration together with 'kubeconfig_file'");
  }
  if (apiServer === undefined && custom && !errors.some((e) => e.path === `${path}.api_server`)) {
    r.add(
      `${path}.api_server`,
      "to use custom HTTP client configuration please provide the 'api_server' URL explicitly",
    );
  }
  if (apiServer !== undefined && ownNamespace) {
    r.add(`${path}.namespaces.own_namespace`, "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously");
  }
  if (kubeconfigFile !== "" && ownNamespace) {
    r.add(
      `${path}.namespaces.own_namespace`,
      "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
    );
  }

  const validRole = (KUBERNETES_ROLES as readonly string[]).includes(role ?? "") ? (role as KubernetesRole) : undefined;
  const seen = new Set<string>();
  for (const s of selectors) {
    const at = `${path}.selectors[${s.index}]`;
    const sr = s.role ?? "";
    if (!s.roleOk) continue;
    if (seen.has(sr)) {
      r.add(`${at}.role`, `duplicated selector role: ${sr}`);
      continue;
    }
    seen.add(sr);
    if (!validRole) continue;
    const allowed = ALLOWED_SELECTORS[validRole];
    if (!(allowed as readonly string[]).includes(sr)) {
      r.add(`${at}.role`, `${validRole} role supports only ${allowed.join(", ")} selectors`);
      continue;
    }
    const field = parseFieldSelector(s.field);
    if (!field.ok) r.add(`${at}.field`, field.error);
    const label = parseLabelSelector(s.label);
    if (!label.ok) r.add(`${at}.label`, label.error);
  }

  if (errors.length > 0 || !validRole || decodeErrors > 0) return { config: undefined, errors };
  return {
    config: {
      role: validRole,
      apiServer,
      kubeconfigFile,
      namespaces: { ownNamespace, names },
      selectors: selectors.map((s) => ({ role: s.role as KubernetesRole, label: s.label, field: s.field })),
      attachMetadata,
      httpClient: Object.fromEntries(HTTP_CLIENT_KEYS.filter((k) => raw[k] !== undefined).map((k) => [k, raw[k]])),
      customHttpClient: custom,
    },
    errors,
  };
}

/** The label and field selector the config sets for one resource (mapSelector); empty strings when none. */
export function selectorFor(config: KubernetesSdConfig, resource: KubernetesRole): { label: string; field: string } {
  const s = config.selectors.find((x) => x.role === resource);
  return { label: s?.label ?? "", field: s?.field ?? "" };
}

/**
 * The namespaces Prometheus watches (getNamespaces): `[""]` (all) when none are named and
 * own_namespace is off; the own namespace (read in-cluster from the service account) is
 * appended when on and known.
 */
export function namespacesToWatch(config: KubernetesSdConfig, ownNamespace?: string): string[] {
  const { names, ownNamespace: includeOwn } = config.namespaces;
  if (names.length === 0 && !includeOwn) return [""];
  if (includeOwn && ownNamespace) return [...names, ownNamespace];
  return [...names];
}
