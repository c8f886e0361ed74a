import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { InformerPool } from "../kube/informers.ts";
import type { PromConfig, ScrapeJob, ServiceDiscovery } from "../prom/config.ts";
import type { TargetGroup } from "../prom/targets.ts";
import { createProvider } from "./factory.ts";
import type { Provider } from "./provider.ts";

/** Called with the job whose groups changed; read them with `groups(job)`. */
export type JobListener = (job: string) => void;

interface Running {
  /** The SD config as JSON: a provider is kept across config reloads while this stays the same. */
  readonly key: string;
  /** Position of its entry in the job's serviceDiscovery. */
  sdIndex: number;
  readonly provider: Provider;
  readonly groups: Map<string, TargetGroup>;
}

/**
 * Runs the service discovery of every scrape job, as Prometheus's discovery manager does:
 * one provider per SD config entry, groups kept per provider and source, providers whose
 * config did not change kept across reloads (no relist, no target flapping), informers
 * shared between jobs. SD mechanisms promshard cannot run are reported in `unsupported`,
 * never skipped silently.
 */
export class DiscoveryManager {
  readonly #log: Logger | undefined;
  readonly #pool: InformerPool;
  readonly #kubeconfig: string | undefined;
  readonly #jobs = new Map<string, Running[]>();
  readonly #listeners = new Set<JobListener>();
  readonly unsupported: PromshardError[] = [];

  constructor(opts: { log?: Logger; kubeconfig?: string } = {}) {
    this.#log = opts.log;
    this.#pool = new InformerPool(opts.log ? { log: opts.log } : {});
    this.#kubeconfig = opts.kubeconfig;
  }

  onChange(listener: JobListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts, keeps or stops providers to match the config. */
  apply(config: PromConfig): void {
    this.unsupported.length = 0;
    const wanted = new Set(config.scrapeConfigs.map((j) => j.jobName));
    for (const [job, running] of this.#jobs) {
      if (wanted.has(job)) continue;
      for (const r of running) r.provider.stop();
      this.#jobs.delete(job);
      this.#notify(job);
    }
    for (const job of config.scrapeConfigs) this.#applyJob(job, config.directory);
  }

  #applyJob(job: ScrapeJob, directory: string): void {
    const before = this.#jobs.get(job.jobName) ?? [];
    const next: Running[] = [];
    const kept = new Set<Running>();
    for (const [sdIndex, sd] of job.serviceDiscovery.entries()) {
      const key = JSON.stringify([sd, job.dialect.major, job.dialect.utf8Names]);
      const same = before.find((r) => r.key === key && !kept.has(r));
      if (same) {
        same.sdIndex = sdIndex;
        kept.add(same);
        next.push(same);
        continue;
      }
      const provider = this.#provider(job, sd, directory);
      if (!provider) continue;
      const running: Running = { key, sdIndex, provider, groups: new Map() };
      next.push(running);
      provider.start((groups) => {
        for (const g of groups) {
          if (g.targets.length === 0) running.groups.delete(g.source);
          else running.groups.set(g.source, g);
        }
        this.#notify(job.jobName);
      });
    }
    for (const r of before) if (!kept.has(r)) r.provider.stop();
    this.#jobs.set(job.jobName, next);
    // New providers announce their own groups; removed ones take theirs away here.
    if (before.some((r) => !kept.has(r))) this.#notify(job.jobName);
  }

  #provider(job: ScrapeJob, sd: ServiceDiscovery, directory: string): Provider | undefined {
    const made = createProvider(job, sd, {
      directory,
      pool: this.#pool,
      ...(this.#kubeconfig ? { kubeconfig: this.#kubeconfig } : {}),
      ...(this.#log ? { log: this.#log } : {}),
    });
    if (made instanceof PromshardError) {
      this.#log?.error({ job: job.jobName, err: made }, "service discovery not started");
      this.unsupported.push(made);
      return undefined;
    }
    return made;
  }

  /** The job's current groups, every provider's. */
  groups(job: string): TargetGroup[] {
    return (this.#jobs.get(job) ?? []).flatMap((r) => [...r.groups.values()]);
  }

  /** The job's current groups by the SD entry that found them (its position in the job's serviceDiscovery). */
  groupsBySd(job: string): { sdIndex: number; groups: TargetGroup[] }[] {
    return (this.#jobs.get(job) ?? []).map((r) => ({ sdIndex: r.sdIndex, groups: [...r.groups.values()] }));
  }

  jobs(): string[] {
    return [...this.#jobs.keys()];
  }

  /** Resolves once every provider has sent its first complete set. */
  async ready(): Promise<void> {
    await Promise.all([...this.#jobs.values()].flat().map((r) => r.provider.synced));
  }

  stop(): void {
    for (const running of this.#jobs.values()) for (const r of running) r.provider.stop();
    this.#jobs.clear();
    this.#pool.stopAll();
  }

  #notify(job: string): void {
    for (const l of this.#listeners) l(job);
  }
}
