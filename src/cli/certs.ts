import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { PromshardError } from "../errors.ts";
import { type KubeApi, kubeApi } from "../kube/api.ts";
import { formatDuration } from "../prom/duration.ts";
import { type CertStore, directoryStore, runCerts, secretStore } from "../webhook/cert-store.ts";
import { serviceDnsNames } from "../webhook/certs.ts";
import type { RotationPolicy } from "../webhook/rotation.ts";
import { type Command, UsageError } from "./command.ts";
import { list, optional, optionalDurationMs } from "./flag-values.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_NAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function ownNamespace(): string | undefined {
  try {
    return readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

export const certsCommand: Command = {
  name: "certs",
  summary:
    "Create or rotate the webhook's CA and serving certificate (in a Secret or a directory) and patch caBundle of its MutatingWebhookConfiguration; CA changes go through an overlap so the API server and the webhook never disagree",
  flags: {
    service: {
      type: "string",
      description:
        "The webhook's Service: the certificate is for svc, svc.ns, svc.ns.svc and svc.ns.svc.<cluster domain>",
      default: "promshard-webhook",
      placeholder: "NAME",
    },
    namespace: {
      type: "string",
      description: "Namespace of the Service and the Secret (default: this pod's, else default)",
      placeholder: "NS",
    },
    "cluster.domain": {
      type: "string",
      description: "The cluster's DNS domain",
      default: "cluster.local",
      placeholder: "DOMAIN",
      formerly: "cluster-domain",
    },
    "cert.dns-name": {
      type: "string",
      description: "Another DNS name for the certificate",
      multiple: true,
      placeholder: "NAME",
      formerly: "dns-name",
    },
    ip: {
      type: "string",
      description: "An IP address for the certificate (e.g. 127.0.0.1 for a webhook run locally)",
      multiple: true,
      placeholder: "IP",
    },
    secret: {
      type: "string",
      description: "Keep the certificates in this Secret (tls.crt, tls.key, ca.crt) and the CA in <name>-ca",
      placeholder: "NAME",
    },
    "output.dir": {
      type: "string",
      description:
        "Keep the certificates in this directory instead (tls.crt, tls.key, ca.crt, ca-*); the default without --secret is certs",
      placeholder: "DIR",
      formerly: "out-dir",
    },
    "webhook.config": {
      type: "string",
      description: "MutatingWebhookConfiguration whose webhooks get the CA bundle as caBundle",
      multiple: true,
      placeholder: "NAME",
      formerly: "webhook-config",
    },
    kubeconfig: {
      type: "string",
      description: "Kubeconfig (default: $KUBECONFIG, ~/.kube/config or in-cluster)",
      placeholder: "FILE",
    },
    "ca.validity": {
      type: "string",
      description: "Lifetime of a new CA",
      default: "5y",
      placeholder: "DURATION",
      formerly: "ca-validity",
    },
    "cert.validity": {
      type: "string",
      description: "Lifetime of a serving certificate",
      default: "1y",
      placeholder: "DURATION",
      formerly: "cert-validity",
    },
    "ca.renew-before": {
      type: "string",
      description: "Start a CA rotation when the CA has less than this left (default: a third of --ca.validity)",
      placeholder: "DURATION",
      formerly: "ca-renew-before",
    },
    "cert.renew-before": {
      type: "string",
      description:
        "Renew the serving certificate when it has less than this left (default: a third of --cert.validity)",
      placeholder: "DURATION",
      formerly: "cert-renew-before",
    },
    overlap: {
      type: "string",
      description:
        "How long each step of a CA rotation waits for the API server and the webhook's mounted Secret to catch up",
      default: "10m",
      placeholder: "DURATION",
    },
    "ca.rotate": {
      type: "boolean",
      description: "Start a CA rotation now (still add, promote, drop, one overlap apart)",
      formerly: "rotate-ca",
    },
    renew: { type: "boolean", description: "Issue a new serving certificate now" },
    interval: {
      type: "string",
      description:
        "Keep running: check again every DURATION (and when the next rotation step is due) instead of exiting",
      placeholder: "DURATION",
    },
  },
  async run(ctx) {
    const v = ctx.values;
    const service = optional(v, "service")!;
    if (!DNS_LABEL.test(service)) throw new UsageError(`--service: "${service}" is not a Service name`);
    const namespace = optional(v, "namespace") ?? ownNamespace() ?? "default";
    if (!DNS_LABEL.test(namespace)) throw new UsageError(`--namespace: "${namespace}" is not a namespace name`);
    const domain = optional(v, "cluster.domain")!;
    const extraNames = list(v, "cert.dns-name");
    for (const n of [domain, ...extraNames]) {
      if (!DNS_NAME.test(n)) throw new UsageError(`"${n}" is not a DNS name`);
    }
    const ips = list(v, "ip");
    for (const ip of ips) if (isIP(ip) === 0) throw new UsageError(`--ip: "${ip}" is not an IP address`);
    const secret = optional(v, "secret");
    if (secret !== undefined && optional(v, "output.dir") !== undefined) {
      throw new UsageError("give one of --secret NAME or --output.dir DIR, not both");
    }
    const outDir = secret === undefined ? (optional(v, "output.dir") ?? "certs") : undefined;
    if (secret !== undefined && !DNS_LABEL.test(secret))
      throw new UsageError(`--secret: "${secret}" is not a Secret name`);
    const webhookConfigs = list(v, "webhook.config");
    const caValidityMs = optionalDurationMs(v, "ca.validity")!;
    const certValidityMs = optionalDurationMs(v, "cert.validity")!;
    if (caValidityMs <= 0 || certValidityMs <= 0) throw new UsageError("validities must be more than 0");
    const caRenewBeforeMs = optionalDurationMs(v, "ca.renew-before") ?? Math.floor(caValidityMs / 3);
    const certRenewBeforeMs = optionalDurationMs(v, "cert.renew-before") ?? Math.floor(certValidityMs / 3);
    if (caRenewBeforeMs >= caValidityMs) throw new UsageError("--ca.renew-before must be less than --ca.validity");
    if (certRenewBeforeMs >= certValidityMs)
      throw new UsageError("--cert.renew-before must be less than --cert.validity");
    const overlapMs = optionalDurationMs(v, "overlap")!;
    const intervalMs = optionalDurationMs(v, "interval");
    if (intervalMs !== undefined && intervalMs < 1000) throw new UsageError("--interval must be at least 1s");

    const policy: RotationPolicy = {
      commonName: `${service}.${namespace}.svc`,
      dnsNames: [...serviceDnsNames(service, namespace, domain), ...extraNames],
      ipAddresses: ips,
      caValidityMs,
      certValidityMs,
      caRenewBeforeMs,
      certRenewBeforeMs,
      overlapMs,
    };
    let api: KubeApi | undefined;
    try {
      if (secret !== undefined || webhookConfigs.length > 0) api = kubeApi(optional(v, "kubeconfig"));
    } catch (err) {
      ctx.stderr.write(`promshard certs: ${(err as Error).message}\n`);
      return 1;
    }
    const store: CertStore = secret !== undefined ? secretStore(api!, namespace, secret) : directoryStore(outDir!);
    let force = { ca: v["ca.rotate"] === true, cert: v.renew === true };

    for (;;) {
      try {
        const r = await runCerts({ store, policy, now: new Date(), force, api, webhookConfigs });
        force = { ca: false, cert: false };
        for (const s of r.steps) ctx.stdout.write(`${s.step}: ${s.reason}\n`);
        if (r.patchedWebhooks > 0) {
          ctx.stdout.write(`caBundle set on ${r.patchedWebhooks} webhook(s) of ${webhookConfigs.join(", ")}\n`);
        }
        const wait = r.nextRun.getTime() - Date.now();
        ctx.stdout.write(
          `${r.steps.length === 0 ? "up to date" : "stored"} in ${store.where}; next step due ${r.nextRun.toISOString()} (in ${formatDuration(Math.max(0, wait - (wait % 1000)))})\n`,
        );
        if (intervalMs === undefined) return 0;
        await new Promise((res) => setTimeout(res, Math.max(1000, Math.min(intervalMs, wait))));
      } catch (err) {
        if (!(err instanceof PromshardError)) throw err;
        ctx.stderr.write(`promshard certs: ${err.message}\n`);
        if (intervalMs === undefined) return 1;
        await new Promise((res) => setTimeout(res, Math.min(intervalMs, 30_000)));
      }
    }
  },
};
