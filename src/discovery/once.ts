import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { InformerPool } from "../kube/informers.ts";
import type { ScrapeJob } from "../prom/config.ts";
import type { TargetGroup } from "../prom/targets.ts";
import { createProvider } from "./factory.ts";
import { FileDiscovery } from "./file-watch.ts";

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

/**
 * One pass of service discovery for a job, for dry runs (`promshard targets`): the same
 * providers as the long-running manager, with lists instead of watches, stopped once synced.
 */
export async function discoverOnce(job: ScrapeJob, opts: OnceOptions = {}): Promise<Discovered> {
  const groups = new Map<string, TargetGroup>();
  const errors: PromshardError[] = [];
  const unsupported: PromshardError[] = [];
  const pool = new InformerPool({ watch: false, ...(opts.log ? { log: opts.log } : {}) });
  try {
    for (const sd of job.serviceDiscovery) {
      const provider = createProvider(job, sd, {
        directory: opts.directory ?? ".",
        pool,
        ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      if (provider instanceof PromshardError) {
        (provider.code === "sd_unsupported" ? unsupported : errors).push(provider);
        continue;
      }
      provider.start((gs) => {
        for (const g of gs) groups.set(`${sd.mechanism}/${sd.index}/${g.source}`, g);
      });
      try {
        await withTimeout(provider.synced, opts.timeoutMs ?? 30_000, "the API server did not answer the lists in time");
        // Providers send their first complete set on the next turn of the event loop.
        await new Promise((resolve) => setImmediate(resolve));
        if (provider instanceof FileDiscovery) errors.push(...provider.errors.values());
      } catch (err) {
        errors.push(
          new PromshardError("discovery_failed", `${sd.mechanism} discovery failed: ${(err as Error).message}`, {
            path: `job "${job.jobName}".${sd.mechanism}_sd_configs[${sd.index}]`,
            cause: err,
          }),
        );
      } finally {
        provider.stop();
      }
    }
  } finally {
    pool.stopAll();
  }
  return { groups: [...groups.values()].filter((g) => g.targets.length > 0), errors, unsupported };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
