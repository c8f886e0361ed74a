import { PromshardError } from "../errors.ts";

/**
 * The semantics that differ between the Prometheus versions promshard supports. Shards run
 * one Prometheus; relabeling must follow that one, so every relabeling entry point takes a
 * dialect rather than guessing.
 */
export interface PromDialect {
  /** Major.minor as given, for messages. */
  readonly version: string;
  readonly major: number;
  /** Prometheus 3.0 made relabel regexes dot-all: `^(?s:…)$` instead of `^(?:…)$`. */
  readonly dotAll: boolean;
  /**
   * Prometheus 3.0 accepts any UTF-8 label name unless `metric_name_validation_scheme: legacy`;
   * 2.x accepts only `[a-zA-Z_][a-zA-Z0-9_]*`.
   */
  readonly utf8Names: boolean;
  /** Go before 1.22 (Prometheus 2.x builds) rejects the `(?<name>…)` group syntax. */
  readonly perlNamedGroups: boolean;
}

export const DEFAULT_PROMETHEUS_VERSION = "3.16";

/** Parses `2.42`, `v2.42.0`, `3`, `3.16.0+ds` into the dialect of that Prometheus. */
export function dialectFor(version: string = DEFAULT_PROMETHEUS_VERSION): PromDialect {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.\d+)?(?:[-+].*)?$/.exec(version.trim());
  if (!m) {
    throw new PromshardError(
      "version_invalid",
      `"${version}" is not a Prometheus version; give it as MAJOR.MINOR, for example 2.42 or 3.16`,
      { path: "--prometheus.version" },
    );
  }
  const major = Number(m[1]);
  if (major < 2) {
    throw new PromshardError("version_invalid", `Prometheus ${version} is not supported; use 2.x or 3.x`, {
      path: "--prometheus.version",
    });
  }
  const v3 = major >= 3;
  return {
    version: m[2] === undefined ? `${major}` : `${major}.${m[2]}`,
    major,
    dotAll: v3,
    utf8Names: v3,
    perlNamedGroups: v3,
  };
}

/** The dialect with UTF-8 names switched off, for `metric_name_validation_scheme: legacy`. */
export function withLegacyNames(d: PromDialect): PromDialect {
  return d.utf8Names ? { ...d, utf8Names: false } : d;
}
