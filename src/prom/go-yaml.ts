/**
 * Reading a YAML document as Prometheus's Go YAML reader does: its YAML 1.1 booleans, and
 * strict decoding into typed fields (yaml.UnmarshalStrict) with its error messages, recorded
 * under the path of each field instead of stopping at the first.
 */
import { CORE_SCHEMA, loadAll, mergeTag, YAMLException } from "js-yaml";
import { PromshardError } from "../errors.ts";

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const TRUE_WORDS = new Set(["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"]);
const FALSE_WORDS = new Set(["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"]);

/** A YAML boolean as Go's YAML 1.1 reader takes it (yes/no/on/off too); undefined when it is none. */
export function yamlBool(v: unknown): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && TRUE_WORDS.has(v)) return true;
  if (typeof v === "string" && FALSE_WORDS.has(v)) return false;
  return undefined;
}

/** The YAML tag Go's reader names in type errors. */
export function yamlKind(v: unknown): string {
  if (Array.isArray(v)) return "!!seq";
  if (isObj(v)) return "!!map";
  if (typeof v === "boolean") return "!!bool";
  if (typeof v === "number") return Number.isInteger(v) ? "!!int" : "!!float";
  return "!!str";
}

/**
 * A reader of YAML mappings that records Go-yaml-like type errors under field paths. Unlike
 * Go's messages these never quote the value: it may be a password in the wrong place, and
 * config errors reach logs, APIs and the status page.
 */
export class StrictReader {
  readonly errors: PromshardError[];
  constructor(errors: PromshardError[] = []) {
    this.errors = errors;
  }

  add(path: string, message: string): void {
    this.errors.push(new PromshardError("config_invalid", message, { path }));
  }

  /** Strict unmarshalling: unknown fields are errors, named after the Go type. */
  known(obj: Obj, keys: readonly string[], goType: string, path: string): void {
    for (const k of Object.keys(obj)) {
      if (!keys.includes(k)) this.add(`${path}.${k}`, `field ${k} not found in type ${goType}`);
    }
  }

  /** A mapping field: undefined when absent or null. */
  map(obj: Obj, key: string, path: string, into: string): Obj | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (isObj(v)) return v;
    this.add(`${path}.${key}`, `cannot unmarshal ${yamlKind(v)} into ${into}`);
    return undefined;
  }

  string(obj: Obj, key: string, path: string): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    this.add(`${path}.${key}`, `cannot unmarshal ${yamlKind(v)} into string`);
    return undefined;
  }

  bool(obj: Obj, key: string, path: string): boolean | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    const b = yamlBool(v);
    if (b === undefined) this.add(`${path}.${key}`, `cannot unmarshal ${yamlKind(v)} into bool; write true or false`);
    return b;
  }

  strings(obj: Obj, key: string, path: string): string[] | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.add(`${path}.${key}`, `cannot unmarshal ${yamlKind(v)} into []string; write a list, for example [a, b]`);
      return undefined;
    }
    const out: string[] = [];
    v.forEach((x, i) => {
      if (x === null || x === undefined) out.push("");
      else if (typeof x === "string" || typeof x === "number" || typeof x === "boolean") out.push(String(x));
      else this.add(`${path}.${key}[${i}]`, `cannot unmarshal ${yamlKind(x)} into string`);
    });
    return out;
  }
}

/**
 * js-yaml's reason without the source text some reasons quote (an alias or tag name: an
 * unquoted password starting with `*` or `!` is read as one), with what to do instead.
 */
function yamlReason(reason: string): string {
  if (reason === "") return "cannot parse the document";
  // The reasons with source text in them quote it, or end with it after "characters: ".
  if (!/["<]|characters: /.test(reason)) return reason;
  if (/alias/.test(reason)) {
    return "unknown or recursive alias; a plain value starting with * is an alias: quote the value";
  }
  return "unknown or invalid tag; a plain value starting with ! is a tag: quote the value";
}

/** YAML 1.2 core types plus `<<` merge keys, which Go's YAML reader (and so Prometheus) accepts. */
const SCHEMA = CORE_SCHEMA.withTags(mergeTag);

/**
 * Parses YAML into a plain document, or throws config_invalid with line and column. Like
 * Go's yaml.Unmarshal, an empty source is an empty document and only the first document counts.
 */
export function parseYaml(text: string, source: string): unknown {
  try {
    return loadAll(text, { schema: SCHEMA, filename: source })[0] ?? null;
  } catch (err) {
    if (err instanceof YAMLException) {
      const where = err.mark ? `:${err.mark.line + 1}:${err.mark.column + 1}` : "";
      // No `cause`: the YAMLException's message carries a snippet of the source lines, and
      // pino's error serializer logs causes' messages.
      throw new PromshardError("config_invalid", `YAML: ${yamlReason(err.reason ?? "")}`, {
        path: `${source}${where}`,
      });
    }
    throw err;
  }
}
