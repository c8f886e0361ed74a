/**
 * Where `promshard certs` keeps the rotation state (src/webhook/rotation.ts), and the run that
 * advances it: load, rotate, store the CAs, publish the bundle as caBundle of the webhook
 * configurations, and only then store the serving certificate the webhook reads.
 *
 * In a cluster: the Secret `<name>` (type kubernetes.io/tls: tls.crt, tls.key, ca.crt = the
 * bundle) is what the webhook mounts; the Secret `<name>-ca` holds the CA keys, which the
 * webhook never sees. Locally: the same files in a directory (tls.crt, tls.key, ca.crt, and
 * ca-signing.*, ca-next.*, ca-retired.crt, rotation.json).
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { PromshardError } from "../errors.ts";
import type { KubeApi } from "../kube/api.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { splitPem } from "./certs.ts";
import { bundleOf, type CertState, type Force, type RotationPolicy, rotate, type Step } from "./rotation.ts";

export interface CertStore {
  /** For messages: `secret monitoring/promshard-webhook-tls`, `directory certs/`. */
  readonly where: string;
  load(): Promise<CertState>;
  /** The CAs (signing, next, retired) and their timestamps. */
  saveAuthority(state: CertState): Promise<void>;
  /** The serving pair and the bundle, as the webhook reads them. */
  saveServing(state: CertState, bundle: string): Promise<void>;
}

// ---- directory

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

interface RotationFile {
  nextCaSince?: string;
  retiredSince?: string;
}

export function directoryStore(dir: string): CertStore {
  const f = (name: string) => join(dir, name);
  return {
    where: `directory ${dir}`,
    async load() {
      const [caCert, caKey, nextCert, nextKey, retired, tlsCrt, tlsKey, rotation, bundle] = await Promise.all(
        [
          "ca-signing.crt",
          "ca-signing.key",
          "ca-next.crt",
          "ca-next.key",
          "ca-retired.crt",
          "tls.crt",
          "tls.key",
          "rotation.json",
          "ca.crt",
        ].map((n) => readOptional(f(n))),
      );
      const times = (rotation ? JSON.parse(rotation) : {}) as RotationFile;
      return {
        ...(caCert && caKey ? { ca: { certPem: caCert, keyPem: caKey } } : {}),
        ...(nextCert && nextKey
          ? { nextCa: { certPem: nextCert, keyPem: nextKey, since: new Date(times.nextCaSince ?? 0) } }
          : {}),
        retired: splitPem(retired ?? ""),
        ...(times.retiredSince ? { retiredSince: new Date(times.retiredSince) } : {}),
        ...(tlsCrt && tlsKey ? { serving: { certPem: tlsCrt, keyPem: tlsKey } } : {}),
        ...(bundle !== undefined ? { storedBundle: bundle } : {}),
      };
    },
    async saveAuthority(s) {
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(f("ca-signing.key"), s.ca!.keyPem, { mode: 0o600 });
      await writeFileAtomic(f("ca-signing.crt"), s.ca!.certPem, { mode: 0o644 });
      await writeFileAtomic(f("ca-next.key"), s.nextCa?.keyPem ?? "", { mode: 0o600 });
      await writeFileAtomic(f("ca-next.crt"), s.nextCa?.certPem ?? "", { mode: 0o644 });
      await writeFileAtomic(f("ca-retired.crt"), s.retired.join(""), { mode: 0o644 });
      const times: RotationFile = {
        ...(s.nextCa ? { nextCaSince: s.nextCa.since.toISOString() } : {}),
        ...(s.retiredSince ? { retiredSince: s.retiredSince.toISOString() } : {}),
      };
      await writeFileAtomic(f("rotation.json"), `${JSON.stringify(times, null, 2)}\n`, { mode: 0o644 });
    },
    async saveServing(s, bundle) {
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(f("ca.crt"), bundle, { mode: 0o644 });
      // Key first: until the certificate follows, the webhook sees a mismatched pair and keeps the old one.
      await writeFileAtomic(f("tls.key"), s.serving!.keyPem, { mode: 0o600 });
      await writeFileAtomic(f("tls.crt"), s.serving!.certPem, { mode: 0o644 });
    },
  };
}

// ---- Kubernetes Secrets

interface Secret {
  metadata: { name: string; namespace?: string; resourceVersion?: string; annotations?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

const NEXT_SINCE = "promshard.io/next-ca-since";
const RETIRED_SINCE = "promshard.io/retired-ca-since";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, "base64").toString("utf8") : undefined);

export function secretStore(api: KubeApi, namespace: string, name: string): CertStore {
  const caName = `${name}-ca`;
  const path = (n: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(n)}`;
  const versions = new Map<string, string | undefined>();
  const get = async (n: string): Promise<Secret | undefined> => {
    const res = await api.request<Secret>("GET", path(n));
    if (res.status === 404) {
      versions.set(n, undefined);
      return undefined;
    }
    if (res.status !== 200) {
      throw new PromshardError(
        "kube_request_failed",
        `reading secret ${namespace}/${n}: HTTP ${res.status}: ${(res.body as { message?: string }).message ?? ""}`,
      );
    }
    versions.set(n, res.body.metadata.resourceVersion);
    return res.body;
  };
  /** Create, or replace the version read: a concurrent run makes this fail with a conflict instead of mixing states. */
  const put = async (n: string, type: string, data: Record<string, string>, annotations: Record<string, string>) => {
    const rv = versions.get(n);
    const body: Secret = {
      metadata: {
        name: n,
        namespace,
        annotations,
        ...(rv ? { resourceVersion: rv } : {}),
      },
      type,
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    };
    const res = rv
      ? await api.request<Secret>("PUT", path(n), { body: { apiVersion: "v1", kind: "Secret", ...body } })
      : await api.request<Secret>("POST", `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`, {
          body: { apiVersion: "v1", kind: "Secret", ...body },
        });
    if (res.status === 409) {
      throw new PromshardError(
        "kube_request_failed",
        `secret ${namespace}/${n} changed while this run worked (another promshard certs?); run again`,
      );
    }
    if (res.status < 200 || res.status > 299) {
      throw new PromshardError(
        "kube_request_failed",
        `writing secret ${namespace}/${n}: HTTP ${res.status}: ${(res.body as { message?: string }).message ?? ""}`,
      );
    }
    versions.set(n, res.body.metadata.resourceVersion);
  };
  return {
    where: `secret ${namespace}/${name}`,
    async load() {
      const [serving, ca] = await Promise.all([get(name), get(caName)]);
      const d = ca?.data ?? {};
      const a = ca?.metadata.annotations ?? {};
      const caCert = unb64(d["ca.crt"]);
      const caKey = unb64(d["ca.key"]);
      const nextCert = unb64(d["next-ca.crt"]);
      const nextKey = unb64(d["next-ca.key"]);
      const tlsCrt = unb64(serving?.data?.["tls.crt"]);
      const tlsKey = unb64(serving?.data?.["tls.key"]);
      return {
        ...(caCert && caKey ? { ca: { certPem: caCert, keyPem: caKey } } : {}),
        ...(nextCert && nextKey
          ? { nextCa: { certPem: nextCert, keyPem: nextKey, since: new Date(a[NEXT_SINCE] ?? 0) } }
          : {}),
        retired: splitPem(unb64(d["retired-ca.crt"]) ?? ""),
        ...(a[RETIRED_SINCE] ? { retiredSince: new Date(a[RETIRED_SINCE]) } : {}),
        ...(tlsCrt && tlsKey ? { serving: { certPem: tlsCrt, keyPem: tlsKey } } : {}),
        ...(serving?.data?.["ca.crt"] ? { storedBundle: unb64(serving.data["ca.crt"]) } : {}),
      };
    },
    async saveAuthority(s) {
      const data: Record<string, string> = { "ca.crt": s.ca!.certPem, "ca.key": s.ca!.keyPem };
      if (s.nextCa) Object.assign(data, { "next-ca.crt": s.nextCa.certPem, "next-ca.key": s.nextCa.keyPem });
      if (s.retired.length > 0) data["retired-ca.crt"] = s.retired.join("");
      const annotations: Record<string, string> = { "promshard.io/managed-by": "promshard certs" };
      if (s.nextCa) annotations[NEXT_SINCE] = s.nextCa.since.toISOString();
      if (s.retiredSince && s.retired.length > 0) annotations[RETIRED_SINCE] = s.retiredSince.toISOString();
      await put(caName, "Opaque", data, annotations);
    },
    async saveServing(s, bundle) {
      await put(
        name,
        "kubernetes.io/tls",
        { "tls.crt": s.serving!.certPem, "tls.key": s.serving!.keyPem, "ca.crt": bundle },
        { "promshard.io/managed-by": "promshard certs" },
      );
    },
  };
}

// ---- caBundle

interface WebhookConfiguration {
  metadata: { name: string };
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

/**
 * Sets clientConfig.caBundle of every webhook of the MutatingWebhookConfiguration `name` to
 * `bundle`, in one JSON patch guarded by a test of each webhook's name (so a concurrent
 * reordering fails the patch rather than writing to the wrong webhook). Returns how many changed.
 */
export async function patchCaBundle(api: KubeApi, name: string, bundle: string): Promise<number> {
  const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(name)}`;
  const res = await api.request<WebhookConfiguration>("GET", path);
  if (res.status === 404) {
    throw new PromshardError(
      "kube_request_failed",
      `MutatingWebhookConfiguration ${name} does not exist; install it first (the Helm chart does) or leave out --webhook.config`,
      { path: "--webhook.config" },
    );
  }
  if (res.status !== 200) {
    throw new PromshardError("kube_request_failed", `reading MutatingWebhookConfiguration ${name}: HTTP ${res.status}`);
  }
  const want = b64(bundle);
  const ops: unknown[] = [];
  for (const [i, w] of (res.body.webhooks ?? []).entries()) {
    if (w.clientConfig?.caBundle === want) continue;
    ops.push({ op: "test", path: `/webhooks/${i}/name`, value: w.name });
    ops.push({ op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: want });
  }
  if (ops.length === 0) return 0;
  await api.call("PATCH", path, { body: ops, contentType: "application/json-patch+json" });
  return ops.length / 2;
}

// ---- one run

export interface CertsRun {
  steps: Step[];
  nextRun: Date;
  bundle: string;
  state: CertState;
  /** Webhooks whose caBundle changed. */
  patchedWebhooks: number;
}

export async function runCerts(opts: {
  store: CertStore;
  policy: RotationPolicy;
  now: Date;
  force?: Force;
  api?: KubeApi;
  webhookConfigs?: readonly string[];
}): Promise<CertsRun> {
  const loaded = await opts.store.load();
  const { state, steps, nextRun } = await rotate(loaded, opts.policy, opts.now, opts.force);
  const bundle = bundleOf(state);
  const authorityChanged = steps.some((s) => s.step !== "issue-serving");
  if (authorityChanged) await opts.store.saveAuthority(state);
  // The API server must trust the new bundle before the webhook can serve a certificate from it.
  let patchedWebhooks = 0;
  for (const name of opts.webhookConfigs ?? []) patchedWebhooks += await patchCaBundle(opts.api!, name, bundle);
  if (steps.length > 0 || loaded.storedBundle !== bundle) await opts.store.saveServing(state, bundle);
  return { steps, nextRun, bundle, state, patchedWebhooks };
}
