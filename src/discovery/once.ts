import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { kubeClientFor, ownNamespace } from "../kube/client.ts";
import { InformerPool } from "../kube/informers.ts";
import type { ScrapeJob } from "../prom/config.ts";
import type { TargetGroup } from "../prom/targets.ts";
import { readFileSd } from "./file.ts";
import { KubernetesDiscovery } from "./kubernetes/provider.ts";

export interface Discovered {
  readonly groups: TargetGroup[];
  /** Files or API servers that could not be read: each one is reported, none dropped silently. */
  readonly errors: PromshardError[];
  /** SD mechanisms promshard cannot run yet: their targets are missing, and the caller says so. */
  readonly unsupported: PromshardError[];
}

export interface OnceOptions {
  /** Directory relative paths in the config resolve against. */
  readonly directory?: string;
  /** For kubernetes_sd_configs without api_server or kubeconfig_file (instead of in-cluster). */
  readonly kubeconfig?: string;
  /** How long to wait for the API server's lists. */
  readonly timeoutMs?: number;
  readonly log?: Logger;
}

/** One pass of service discovery for a job, for dry runs (`promshard targets`): lists, no watches. */
export async function discoverOnce(job: ScrapeJob, opts: OnceOptions = {}): Promise<Discovered> {
  const groups: TargetGroup[] = [];
  const errors: PromshardError[] = [];
  const unsupported: PromshardError[] = [];
  const pool = new InformerPool({ watch: false, ...(opts.log ? { log: opts.log } : {}) });
  try {
    for (const sd of job.serviceDiscovery) {
      const path = `job "${job.jobName}".${sd.mechanism === "static" ? "static_configs" : `${sd.mechanism}_sd_configs`}[${sd.index}]`;
      if ("groups" in sd) groups.push(...sd.groups);
      else if ("files" in sd) {
        const r = readFileSd(sd.files, job.dialect);
        groups.push(...r.groups);
        errors.push(...r.errors);
      } else if ("kubernetes" in sd) {
        try {
          const client = kubeClientFor(sd.kubernetes, {
            ...(opts.directory ? { directory: opts.directory } : {}),
            ...(opts.kubeconfig ? { fallbackKubeconfig: opts.kubeconfig } : {}),
          });
          const k8s = new KubernetesDiscovery({ config: sd.kubernetes, client, pool, ownNamespace: ownNamespace() });
          await withTimeout(k8s.synced, opts.timeoutMs ?? 30_000, `listing from ${client.server} took too long`);
          groups.push(...k8s.groups());
          k8s.stop();
        } catch (err) {
          errors.push(
            new PromshardError("discovery_failed", `kubernetes discovery failed: ${(err as Error).message}`, {
              path,
              cause: err,
            }),
          );
        }
      } else {
        unsupported.push(
          new PromshardError(
            "discovery_failed",
            `${sd.mechanism}_sd_configs is not supported by promshard yet; this job's targets from it are not shown`,
            { path },
          ),
        );
      }
    }
  } finally {
    pool.stopAll();
  }
  return { groups, errors, unsupported };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
