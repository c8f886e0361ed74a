import { PromshardError } from "../errors.ts";
import type { ScrapeJob } from "../prom/config.ts";
import type { TargetGroup } from "../prom/targets.ts";
import { readFileSd } from "./file.ts";

export interface Discovered {
  readonly groups: TargetGroup[];
  /** Files that could not be read: each one is reported, none dropped silently. */
  readonly errors: PromshardError[];
  /** SD mechanisms promshard cannot run yet: their targets are missing, and the caller says so. */
  readonly unsupported: PromshardError[];
}

/** One pass of service discovery for a job, for dry runs (`promshard targets`). */
export function discoverOnce(job: ScrapeJob): Discovered {
  const groups: TargetGroup[] = [];
  const errors: PromshardError[] = [];
  const unsupported: PromshardError[] = [];
  for (const sd of job.serviceDiscovery) {
    if ("groups" in sd) groups.push(...sd.groups);
    else if ("files" in sd) {
      const r = readFileSd(sd.files, job.dialect);
      groups.push(...r.groups);
      errors.push(...r.errors);
    } else {
      unsupported.push(
        new PromshardError(
          "discovery_failed",
          `${sd.mechanism}_sd_configs is not supported by promshard yet; this job's targets from it are not shown`,
          { path: `job "${job.jobName}".${sd.mechanism}_sd_configs[${sd.index}]` },
        ),
      );
    }
  }
  return { groups, errors, unsupported };
}
