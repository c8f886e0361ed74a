/**
 * Reading the fields of a Prometheus config: the problems of one pass (all listed, like
 * promtool), and typed readers that record a problem instead of stopping at it.
 */
import { posix } from "node:path";
import { PromshardError } from "../errors.ts";
import { parseDuration } from "./duration.ts";
import { isObj, type Obj, yamlBool } from "./go-yaml.ts";
import { isValidLabelName, isValidLabelValue, type Labels, labelsFromMap } from "./labels.ts";
import type { PromDialect } from "./version.ts";

/** Collects every problem of one pass, so a check lists them all like promtool does. */
export class Problems {
  readonly list: PromshardError[] = [];
  add(path: string, message: string): void {
    this.list.push(new PromshardError("config_invalid", message, { path }));
  }
  addAll(errors: readonly PromshardError[]): void {
    this.list.push(...errors);
  }
}

export function describe(v: unknown): string {
  return Array.isArray(v) ? "a list" : v === null ? "null" : typeof v === "object" ? "a mapping" : typeof v;
}

/** Fields configs still carry that no supported Prometheus knows, with what to write instead. */
const GONE: Readonly<Record<string, string>> = {
  scrape_classic_histograms:
    "unknown field: Prometheus 3 calls it always_scrape_classic_histograms; check the Prometheus version (--prometheus.version)",
  max_retries:
    "unknown field: Prometheus has no queue_config.max_retries (it retries recoverable errors until they succeed); remove it",
};

export function unknownKeys(
  obj: Obj,
  known: readonly string[],
  path: string,
  p: Problems,
  extra?: (k: string) => boolean,
): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key) && !extra?.(key)) {
      p.add(
        path ? `${path}.${key}` : key,
        GONE[key] ?? "unknown field; check its spelling and the Prometheus version (--prometheus.version)",
      );
    }
  }
}

export function durationField(obj: Obj, key: string, path: string, p: Problems): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  const ms = parseDuration(String(v));
  if (typeof ms === "object") {
    p.add(`${path}.${key}`, `${ms.error}; write it like 30s, 1m or 1h30m`);
    return undefined;
  }
  return ms;
}

/** Go's YAML 1.1 reader takes yes/no/on/off as booleans too. */
export function boolField(obj: Obj, key: string, path: string, p: Problems, fallback: boolean): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  const b = yamlBool(v);
  if (b !== undefined) return b;
  p.add(`${path}.${key}`, `must be true or false, got ${describe(v)}`);
  return fallback;
}

/**
 * An integer field as Go's YAML reader fills an int or uint: a YAML number (it truncates a
 * float), never a string; `min` is 0 for uints.
 */
export function intField(obj: Obj, key: string, path: string, p: Problems, min?: number): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number") {
    p.add(`${path}.${key}`, `must be a number, got ${describe(v)}`);
    return undefined;
  }
  if (min !== undefined && v < min) {
    p.add(`${path}.${key}`, `must be ${min} or more`);
    return undefined;
  }
  return v;
}

/** units.Base2Bytes: one or more <number><unit> with B, KB, KiB … EB, EiB; or a bare 0. */
const BYTES = /^(?:0|(?:\d+(?:\.\d+)?(?:[KMGTPE]i?)?B)+)$/;

export function bytesField(obj: Obj, key: string, path: string, p: Problems): void {
  const v = obj[key];
  if (v === undefined || v === null) return;
  if (!BYTES.test(String(v))) p.add(`${path}.${key}`, "not a size; write it like 512MiB, 10MB or 1GB");
}

export function stringField(obj: Obj, key: string, path: string, p: Problems, fallback: string): string {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  p.add(`${path}.${key}`, `must be a string, got ${describe(v)}`);
  return fallback;
}

export function parseLabelMap(raw: unknown, dialect: PromDialect, path: string, p: Problems): Labels {
  if (raw === undefined || raw === null) return Object.freeze({});
  if (!isObj(raw)) {
    p.add(path, `must be a mapping of label names to values, got ${describe(raw)}`);
    return Object.freeze({});
  }
  const out = new Map<string, string>();
  for (const [name, value] of Object.entries(raw)) {
    if (!isValidLabelName(name, dialect)) {
      p.add(`${path}.${name}`, `"${name}" is not a valid label name`);
      continue;
    }
    const v = value === null ? "" : typeof value === "object" ? undefined : String(value);
    if (v === undefined || !isValidLabelValue(v)) {
      p.add(`${path}.${name}`, `the value must be a string, got ${describe(value)}`);
      continue;
    }
    out.set(name, v);
  }
  return labelsFromMap(out);
}

/**
 * prometheus/common's config.JoinDir: a relative path joins the config file's directory, and
 * filepath.Join cleans the result ("./a/../b" becomes "b"; no trailing slash). Pure string work.
 */
export function joinDir(directory: string, file: string): string {
  if (file === "" || file.startsWith("/")) return file;
  const joined = posix.normalize(directory === "" ? file : `${directory}/${file}`);
  return joined.length > 1 && joined.endsWith("/") ? joined.slice(0, -1) : joined;
}
