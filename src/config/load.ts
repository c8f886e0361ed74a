import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { PromshardError, PromshardErrors } from "../errors.ts";
import { type PromConfig, parseConfig } from "../prom/config.ts";
import type { PromDialect } from "../prom/version.ts";

/**
 * Reads and validates a Prometheus config file; relative paths in it resolve against its
 * directory, or `directory` for a copy kept elsewhere (local mode's last good config).
 */
export function loadConfigFile(file: string, dialect: PromDialect, directory = dirname(file)): PromConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new PromshardError("config_unreadable", `cannot read the config file: ${(err as Error).message}`, {
      path: file,
      cause: err,
    });
  }
  return parseConfigFile(text, file, dialect, directory);
}

/** The checks of loadConfigFile on text already read (so that what is checked is what is kept). */
export function parseConfigFile(
  text: string,
  file: string,
  dialect: PromDialect,
  directory = dirname(file),
): PromConfig {
  const config = parseConfig(text, { dialect, source: file, directory });
  const extraFiles = config.raw.scrape_config_files;
  if (extraFiles !== undefined && extraFiles !== null && !(Array.isArray(extraFiles) && extraFiles.length === 0)) {
    // Refused rather than ignored: skipping them would hide every job they define.
    throw new PromshardErrors([
      new PromshardError(
        "config_invalid",
        "scrape_config_files is not supported by promshard yet; move those scrape configs into scrape_configs",
        { path: `${file}: scrape_config_files` },
      ),
    ]);
  }
  return config;
}
