import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { PromshardError } from "../errors.ts";
import { parseYaml } from "../prom/config.ts";
import { ADDRESS, isValidLabelName, isValidLabelValue, type Labels, labelsFromMap } from "../prom/labels.ts";
import type { TargetGroup } from "../prom/targets.ts";
import type { PromDialect } from "../prom/version.ts";

/** The type of a value, for messages: the value itself may be a secret. */
const kind = (v: unknown) => (Array.isArray(v) ? "a list" : v === null ? "null" : typeof v);

/** Prometheus's file SD marks every group with the file it came from. */
export const FILEPATH_LABEL = "__meta_filepath";

/**
 * Parses one file_sd file's content as Prometheus does: a list of `{targets, labels}` groups,
 * JSON or YAML by extension, unknown fields refused, each group's source `<file>:<index>` and
 * `__meta_filepath` set to the file name.
 */
export function parseFileSdContent(text: string, filename: string, dialect: PromDialect): TargetGroup[] {
  const fail = (message: string): never => {
    throw new PromshardError("discovery_failed", message, { path: filename });
  };
  const ext = extname(filename).toLowerCase();
  let doc: unknown;
  if (ext === ".json") {
    try {
      doc = JSON.parse(text);
    } catch (err) {
      // V8's message quotes the text around the error, which may hold a password: keep the place only.
      const at = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)?.[0];
      fail(`invalid JSON${at ? ` ${at}` : ""}; check the file's syntax`);
    }
  } else if (ext === ".yml" || ext === ".yaml") {
    doc = parseYaml(text, filename);
  } else {
    fail(`unsupported extension "${ext}"; file_sd reads .json, .yml and .yaml`);
  }
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) fail("must be a list of target groups ({targets: [...], labels: {...}})");
  return (doc as unknown[]).map((g, i) => {
    if (g === null || typeof g !== "object" || Array.isArray(g))
      fail(`group ${i}: must be a mapping with targets and labels`);
    const group = g as Record<string, unknown>;
    for (const k of Object.keys(group)) {
      if (k !== "targets" && k !== "labels")
        fail(`group ${i}: unknown field "${k}"; a group has only targets and labels`);
    }
    const targets: Labels[] = [];
    const rawTargets = group.targets ?? [];
    if (!Array.isArray(rawTargets)) fail(`group ${i}: targets must be a list of strings`);
    (rawTargets as unknown[]).forEach((t, j) => {
      if (typeof t !== "string") fail(`group ${i}: targets[${j}] must be a string, got ${kind(t)}`);
      targets.push(Object.freeze({ [ADDRESS]: t as string }));
    });
    const labels = new Map<string, string>();
    const rawLabels = group.labels ?? {};
    if (typeof rawLabels !== "object" || Array.isArray(rawLabels)) fail(`group ${i}: labels must be a mapping`);
    for (const [name, value] of Object.entries(rawLabels as Record<string, unknown>)) {
      // File SD labels are model.LabelSet: names are checked as the binary's model checks them.
      if (!isValidLabelName(name, dialect)) fail(`group ${i}: "${name}" is not a valid label name`);
      if (typeof value !== "string" || !isValidLabelValue(value)) {
        fail(`group ${i}: label "${name}" must have a valid UTF-8 string value, got ${kind(value)}`);
      }
      labels.set(name, value as string);
    }
    labels.set(FILEPATH_LABEL, filename);
    return { source: `${filename}:${i}`, targets, labels: labelsFromMap(labels) };
  });
}

/** filepath.Match for one path element: `*`, `?`, `[...]` with ranges and `^` negation, `\` escapes. */
export function globElementToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) throw new PromshardError("discovery_failed", `bad pattern "${pattern}": unclosed [`);
      let body = pattern.slice(i + 1, end);
      if (body.startsWith("^")) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\(.)/g, "\\$1")}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, "u");
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** filepath.Glob for file_sd patterns (meta characters only in the last element); sorted like Go. */
export function globFiles(pattern: string): string[] {
  const base = basename(pattern);
  if (!/[*?[\\]/.test(base)) {
    try {
      lstatSync(pattern);
      return [pattern];
    } catch {
      return [];
    }
  }
  const dir = dirname(pattern);
  const re = globElementToRegExp(base);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  // Go joins with Clean, as path.join does: "./x/*.json" yields "x/a.json".
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n));
}

/** Reads every file a file_sd config names, once. A broken file is an error; the others still count. */
export function readFileSd(
  files: readonly string[],
  dialect: PromDialect,
): { groups: TargetGroup[]; errors: PromshardError[] } {
  const groups: TargetGroup[] = [];
  const errors: PromshardError[] = [];
  for (const pattern of files) {
    for (const file of globFiles(pattern)) {
      try {
        groups.push(...parseFileSdContent(readFileSync(file, "utf8"), file, dialect));
      } catch (err) {
        errors.push(
          err instanceof PromshardError
            ? err
            : new PromshardError("discovery_failed", `cannot read: ${(err as Error).message}`, {
                path: file,
                cause: err,
              }),
        );
      }
    }
  }
  return { groups, errors };
}
