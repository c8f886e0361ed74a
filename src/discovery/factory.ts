/** The factory: the provider for one service-discovery entry of a job (provider.ts holds the interface). */
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { ownNamespace } from "../kube/api.ts";
import { kubeClientFor } from "../kube/client.ts";
import type { InformerPool } from "../kube/informers.ts";
import type { ScrapeJob, ServiceDiscovery } from "../prom/config.ts";
import { FileDiscovery } from "./file-watch.ts";
import { KubernetesDiscovery } from "./kubernetes/provider.ts";
import { type Provider, StaticDiscovery } from "./provider.ts";

export interface ProviderContext {
  /** Directory relative paths in the config resolve against. */
  readonly directory: string;
  readonly pool: InformerPool;
  /** For kubernetes_sd_configs without api_server or kubeconfig_file (instead of in-cluster). */
  readonly kubeconfig?: string;
  readonly log?: Logger;
}

/** The provider for one SD config entry, or the reason there is none (unsupported, bad client settings). */
export function createProvider(job: ScrapeJob, sd: ServiceDiscovery, ctx: ProviderContext): Provider | PromshardError {
  const path = `job "${job.jobName}".${sd.mechanism === "static" ? "static_configs" : `${sd.mechanism}_sd_configs`}[${sd.index}]`;
  const log = ctx.log?.child({ job: job.jobName, sd: sd.mechanism });
  if ("groups" in sd) return new StaticDiscovery(sd.groups);
  if ("files" in sd) {
    return new FileDiscovery({
      files: sd.files,
      dialect: job.dialect,
      refreshIntervalMs: sd.refreshIntervalMs,
      ...(log ? { log } : {}),
    });
  }
  if ("kubernetes" in sd) {
    try {
      const client = kubeClientFor(sd.kubernetes, {
        directory: ctx.directory,
        ...(ctx.kubeconfig ? { fallbackKubeconfig: ctx.kubeconfig } : {}),
      });
      return new KubernetesDiscovery({
        config: sd.kubernetes,
        client,
        pool: ctx.pool,
        ownNamespace: ownNamespace(),
        ...(log ? { log: log.child({ role: sd.kubernetes.role }) } : {}),
      });
    } catch (err) {
      return new PromshardError("discovery_failed", (err as Error).message, { path, cause: err });
    }
  }
  return new PromshardError(
    "sd_unsupported",
    `${sd.mechanism}_sd_configs is not supported by promshard yet; this job's targets from it are not discovered`,
    { path },
  );
}
