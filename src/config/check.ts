import { statSync } from "node:fs";
import { globFiles, readFileSd } from "../discovery/file.ts";
import { PromshardError } from "../errors.ts";
import { joinDir, type PromConfig, type ScrapeJob } from "../prom/config.ts";
import { redactUrl } from "../prom/go-url.ts";
import { targetsForJob } from "../prom/targets.ts";

export interface CheckResult {
  readonly errors: PromshardError[];
  readonly warnings: PromshardError[];
}

/**
 * What `promtool check config` checks beyond the file itself: rule files and credential/TLS
 * files exist, file_sd files parse, and every static or file target builds (no address, a
 * URL as address, a bad relabeled interval …). Unlike promtool it lists every problem.
 * `syntaxOnly` skips the files, as promtool's --syntax-only does; static targets are still built.
 */
export function checkReferencedFiles(config: PromConfig, opts: { syntaxOnly?: boolean } = {}): CheckResult {
  const errors: PromshardError[] = [];
  const warnings: PromshardError[] = [];
  const fail = (path: string, message: string) => errors.push(new PromshardError("config_invalid", message, { path }));

  const files = !opts.syntaxOnly;
  const ruleFiles = config.raw.rule_files;
  if (files && Array.isArray(ruleFiles)) {
    ruleFiles.forEach((rf, i) => {
      const pattern = joinDir(config.directory, String(rf));
      if (!pattern.includes("*") && globFiles(pattern).length === 0) {
        fail(`rule_files[${i}]`, `"${pattern}" does not point to an existing file`);
      }
    });
  }

  for (const job of config.scrapeConfigs) {
    const at = `scrape_configs[${job.index}] (job "${job.jobName}")`;
    for (const [field, file] of files ? referencedFiles(job) : []) {
      const path = joinDir(config.directory, file);
      if (!exists(path)) fail(`${at}.${field}`, `"${path}" does not exist or cannot be read`);
    }
    const tls = isObj(job.raw.tls_config) ? job.raw.tls_config : {};
    if (tls.cert_file && !tls.key_file) fail(`${at}.tls_config`, "cert_file is set without key_file");
    if (tls.key_file && !tls.cert_file) fail(`${at}.tls_config`, "key_file is set without cert_file");

    for (const sd of job.serviceDiscovery) {
      if ("groups" in sd) {
        for (const f of targetsForJob(sd.groups, job).failures) {
          fail(
            `${at}.static_configs[${sd.index}]`,
            `target ${JSON.stringify(redactUrl(f.discoveredLabels.__address__ ?? ""))}: ${f.error}`,
          );
        }
      } else if (files && "files" in sd) {
        for (const pattern of sd.files) {
          if (globFiles(pattern).length === 0) {
            warnings.push(
              new PromshardError("discovery_failed", `file "${pattern}" for file_sd does not exist`, {
                path: `${at}.file_sd_configs[${sd.index}]`,
              }),
            );
          }
        }
        const read = readFileSd(sd.files, job.dialect);
        errors.push(...read.errors);
        for (const f of targetsForJob(read.groups, job).failures) {
          fail(
            `${at}.file_sd_configs[${sd.index}]`,
            `target ${JSON.stringify(redactUrl(f.discoveredLabels.__address__ ?? ""))} from ${f.discoveredLabels.__meta_filepath}: ${f.error}`,
          );
        }
      }
    }
  }
  return { errors, warnings };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Credential and TLS files a job names, by field path. */
function referencedFiles(job: ScrapeJob): [string, string][] {
  const out: [string, string][] = [];
  const add = (field: string, v: unknown) => {
    if (typeof v === "string" && v !== "") out.push([field, v]);
  };
  add("bearer_token_file", job.raw.bearer_token_file);
  if (isObj(job.raw.authorization)) add("authorization.credentials_file", job.raw.authorization.credentials_file);
  if (isObj(job.raw.basic_auth)) add("basic_auth.password_file", job.raw.basic_auth.password_file);
  if (isObj(job.raw.tls_config)) {
    for (const k of ["ca_file", "cert_file", "key_file"]) add(`tls_config.${k}`, job.raw.tls_config[k]);
  }
  return out;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
