import { createHash } from "node:crypto";
import { PromshardError } from "../errors.ts";
import { goToLower, goToUpper } from "./gocase.ts";
import { compareNames, isLegacyLabelName, isValidLabelName, type Labels, labelsFromMap } from "./labels.ts";
import { compileRelabelRegex, type PromRegex } from "./regex.ts";
import type { PromDialect } from "./version.ts";

export const RELABEL_ACTIONS = [
  "replace",
  "keep",
  "drop",
  "keepequal",
  "dropequal",
  "hashmod",
  "labelmap",
  "labeldrop",
  "labelkeep",
  "lowercase",
  "uppercase",
] as const;
export type RelabelAction = (typeof RELABEL_ACTIONS)[number];

/** One validated relabel rule, with Prometheus's defaults filled in. */
export interface RelabelRule {
  readonly action: RelabelAction;
  readonly sourceLabels: readonly string[];
  readonly separator: string;
  readonly regex: PromRegex;
  /** True when the user left `regex` out: Prometheus's fast path for `replace` keys on it. */
  readonly regexIsDefault: boolean;
  readonly modulus: bigint;
  readonly targetLabel: string;
  readonly replacement: string;
  /** Whether target_label or replacement has a `$` reference to expand. */
  readonly templated: boolean;
}

const DEFAULT_SEPARATOR = ";";
const DEFAULT_REGEX = "(.*)";
const DEFAULT_REPLACEMENT = "$1";
const KNOWN_FIELDS = new Set([
  "source_labels",
  "separator",
  "regex",
  "modulus",
  "target_label",
  "replacement",
  "action",
]);
const NEEDS_TARGET = new Set<RelabelAction>(["replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"]);
const NO_REPLACEMENT = new Set<RelabelAction>(["lowercase", "uppercase", "keepequal", "dropequal"]);
/** What Prometheus accepts as a target label or labelmap replacement with `$` references in it. */
const TEMPLATE_NAME = /^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$/;

/**
 * Parses and validates `relabel_configs` / `metric_relabel_configs` as Prometheus's
 * relabel.Config unmarshalling and Validate do, collecting every error rather than
 * stopping at the first, so `check config` can list them all.
 */
export function parseRelabelConfigs(
  raw: unknown,
  dialect: PromDialect,
  path: string,
): { rules: RelabelRule[]; errors: PromshardError[] } {
  const rules: RelabelRule[] = [];
  const errors: PromshardError[] = [];
  if (raw === undefined || raw === null) return { rules, errors };
  if (!Array.isArray(raw)) {
    errors.push(new PromshardError("relabel_invalid", "must be a list of relabel rules", { path }));
    return { rules, errors };
  }
  raw.forEach((item, i) => {
    try {
      rules.push(parseRelabelConfig(item, dialect, `${path}[${i}]`));
    } catch (err) {
      if (!(err instanceof PromshardError)) throw err;
      errors.push(err);
    }
  });
  return { rules, errors };
}

function fail(path: string, message: string): never {
  throw new PromshardError("relabel_invalid", message, { path });
}

function stringField(obj: Record<string, unknown>, key: string, path: string, fallback: string): string {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (v === null) return "";
  // YAML scalars that are not strings (numbers, booleans) are read as their text by Go's yaml.
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return fail(`${path}.${key}`, `must be a string, got ${describe(v)}`);
}

function describe(v: unknown): string {
  return Array.isArray(v) ? "a list" : v === null ? "null" : typeof v === "object" ? "a mapping" : typeof v;
}

export function parseRelabelConfig(raw: unknown, dialect: PromDialect, path: string): RelabelRule {
  if (raw === null || raw === undefined) fail(path, "empty or null relabeling rule; remove it or give it an action");
  if (typeof raw !== "object" || Array.isArray(raw)) fail(path, `must be a mapping, got ${describe(raw)}`);
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!KNOWN_FIELDS.has(key)) {
      fail(`${path}.${key}`, `unknown field; a relabel rule has only ${[...KNOWN_FIELDS].join(", ")}`);
    }
  }

  const actionText = stringField(obj, "action", path, "replace");
  const action = actionText.toLowerCase() as RelabelAction;
  if (!RELABEL_ACTIONS.includes(action)) {
    fail(`${path}.action`, `unknown relabel action "${actionText}"; use one of ${RELABEL_ACTIONS.join(", ")}`);
  }

  let sourceLabels: string[] = [];
  const src = obj.source_labels;
  if (src !== undefined && src !== null) {
    if (!Array.isArray(src)) fail(`${path}.source_labels`, `must be a list of label names, got ${describe(src)}`);
    sourceLabels = src.map((n, i) => {
      const name = typeof n === "string" ? n : typeof n === "number" || typeof n === "boolean" ? String(n) : undefined;
      // model.LabelName checks against the binary's global scheme (UTF-8 in 3.x), not the job's.
      const valid =
        dialect.major >= 3
          ? name !== undefined && name.length > 0 && name.isWellFormed()
          : isLegacyLabelName(name ?? "");
      if (name === undefined || !valid) {
        fail(`${path}.source_labels[${i}]`, `"${String(n)}" is not a valid label name`);
      }
      return name;
    });
  }

  const separator = stringField(obj, "separator", path, DEFAULT_SEPARATOR);
  const targetLabel = stringField(obj, "target_label", path, "");
  const replacement = stringField(obj, "replacement", path, DEFAULT_REPLACEMENT);
  const regexIsDefault = obj.regex === undefined;
  // An explicit `regex:` with no value unmarshals to no regexp, which Prometheus turns into "".
  const regexSource = regexIsDefault ? DEFAULT_REGEX : stringField(obj, "regex", path, "");
  const regex = compileRelabelRegex(regexSource, dialect, `${path}.regex`);

  let modulus = 0n;
  const mod = obj.modulus;
  if (mod !== undefined && mod !== null) {
    if (typeof mod !== "number" || !Number.isInteger(mod) || mod < 0) {
      fail(`${path}.modulus`, `must be a non-negative integer, got ${JSON.stringify(mod)}`);
    }
    if (!Number.isSafeInteger(mod)) {
      fail(`${path}.modulus`, `${mod} is above 2^53 and cannot be read exactly; use a smaller modulus`);
    }
    modulus = BigInt(mod);
  }

  if (action === "hashmod" && modulus === 0n) {
    fail(`${path}.modulus`, "hashmod needs a non-zero modulus");
  }
  if (NEEDS_TARGET.has(action) && targetLabel === "") {
    fail(`${path}.target_label`, `the ${action} action needs a target_label`);
  }
  validateTarget(action, targetLabel, dialect, path);
  if (NO_REPLACEMENT.has(action) && replacement !== DEFAULT_REPLACEMENT) {
    fail(`${path}.replacement`, `replacement cannot be set for the ${action} action`);
  }
  if (action === "labelmap" && !isValidTemplateName(replacement, dialect)) {
    fail(`${path}.replacement`, `"${replacement}" is not a valid label name (with $ references) for labelmap`);
  }
  if (
    (action === "keepequal" || action === "dropequal") &&
    (!regexIsDefault || modulus !== 0n || separator !== DEFAULT_SEPARATOR || replacement !== DEFAULT_REPLACEMENT)
  ) {
    fail(path, `the ${action} action takes only source_labels and target_label, no other fields`);
  }
  if (
    (action === "labeldrop" || action === "labelkeep") &&
    (src !== undefined ||
      targetLabel !== "" ||
      modulus !== 0n ||
      separator !== DEFAULT_SEPARATOR ||
      replacement !== DEFAULT_REPLACEMENT)
  ) {
    fail(path, `the ${action} action takes only regex, no other fields`);
  }

  const templated = targetLabel.includes("$") || replacement.includes("$");
  return { action, sourceLabels, separator, regex, regexIsDefault, modulus, targetLabel, replacement, templated };
}

function isValidTemplateName(name: string, dialect: PromDialect): boolean {
  return dialect.utf8Names ? isValidLabelName(name, dialect) : TEMPLATE_NAME.test(name);
}

/** Target-label checks; 2.x and 3.x word these differently, the cases they reject are listed per version. */
function validateTarget(action: RelabelAction, target: string, dialect: PromDialect, path: string): void {
  if (!NEEDS_TARGET.has(action)) return;
  const bad = () => fail(`${path}.target_label`, `"${target}" is not a valid target_label for the ${action} action`);
  if (dialect.major < 3) {
    // Prometheus 2.x: replace/lowercase/uppercase/keepequal/dropequal take the template
    // pattern (even where no expansion happens), hashmod a plain label name.
    if (action === "hashmod" ? !isLegacyLabelName(target) : !TEMPLATE_NAME.test(target)) bad();
    return;
  }
  if (action === "replace") {
    if (target.includes("$") ? !isValidTemplateName(target, dialect) : !isValidLabelName(target, dialect)) bad();
    return;
  }
  if (!isValidLabelName(target, dialect)) bad();
}

/**
 * Applies the rules to a label set and returns the result with names in Prometheus's order,
 * or null when a rule dropped it. Empty values mean "absent", as in Prometheus's label builder.
 */
export function relabel(labels: Labels, rules: readonly RelabelRule[], dialect: PromDialect): Labels | null {
  const lb = new Map<string, string>();
  for (const name in labels) lb.set(name, labels[name]!);
  if (!applyRules(lb, rules, dialect)) return null;
  return labelsFromMap(lb);
}

/** Relabels in place; false when the set was dropped. Used where a builder is already at hand. */
export function applyRules(lb: Map<string, string>, rules: readonly RelabelRule[], dialect: PromDialect): boolean {
  for (const rule of rules) {
    if (!applyRule(lb, rule, dialect)) return false;
  }
  return true;
}

function set(lb: Map<string, string>, name: string, value: string): void {
  if (value === "") lb.delete(name);
  else lb.set(name, value);
}

function sourceValue(lb: Map<string, string>, names: readonly string[], separator: string): string {
  if (names.length === 1) return lb.get(names[0]!) ?? "";
  let out = "";
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += separator;
    out += lb.get(names[i]!) ?? "";
  }
  return out;
}

function applyRule(lb: Map<string, string>, rule: RelabelRule, dialect: PromDialect): boolean {
  const val = sourceValue(lb, rule.sourceLabels, rule.separator);
  switch (rule.action) {
    case "drop":
      return !rule.regex.matches(val);
    case "keep":
      return rule.regex.matches(val);
    case "dropequal":
      return (lb.get(rule.targetLabel) ?? "") !== val;
    case "keepequal":
      return (lb.get(rule.targetLabel) ?? "") === val;
    case "replace": {
      // Templates without "$" expand to themselves, and a literal target was validated at load.
      if (!rule.templated) {
        if (rule.regex.matches(val)) set(lb, rule.targetLabel, rule.replacement);
        return true;
      }
      const m = rule.regex.match(val);
      if (m === null) return true;
      const literalTarget = !rule.targetLabel.includes("$");
      const target = literalTarget ? rule.targetLabel : rule.regex.expand(rule.targetLabel, m);
      const legacyTargetDelete = dialect.major < 3;
      if (!literalTarget && !isValidLabelName(target, dialect)) {
        // 2.x deletes the label named by the unexpanded template; 3.x leaves the set alone.
        if (legacyTargetDelete) lb.delete(rule.targetLabel);
        return true;
      }
      const res = rule.regex.expand(rule.replacement, m);
      if (res === "") {
        lb.delete(legacyTargetDelete ? rule.targetLabel : target);
        return true;
      }
      lb.set(target, res);
      return true;
    }
    case "lowercase":
      set(lb, rule.targetLabel, goToLower(val));
      return true;
    case "uppercase":
      set(lb, rule.targetLabel, goToUpper(val));
      return true;
    case "hashmod": {
      const hash = createHash("md5").update(val, "utf8").digest();
      set(lb, rule.targetLabel, (hash.readBigUInt64BE(8) % rule.modulus).toString());
      return true;
    }
    case "labelmap": {
      // Prometheus walks a snapshot in name order, so a rename cannot feed a later one and,
      // where two names map to the same new name, the one sorting last wins.
      let renames: Map<string, [from: string, value: string]> | undefined;
      for (const [name, value] of lb) {
        if (!rule.regex.matches(name)) continue;
        const to = rule.regex.replaceAll(name, rule.replacement);
        renames ??= new Map();
        const prev = renames.get(to);
        if (!prev || compareNames(name, prev[0]) > 0) renames.set(to, [name, value]);
      }
      if (renames) for (const [to, [, value]] of renames) set(lb, to, value);
      return true;
    }
    // A Map iterator skips what is deleted behind it and is not disturbed by deleting the current entry.
    case "labeldrop":
      for (const name of lb.keys()) if (rule.regex.matches(name)) lb.delete(name);
      return true;
    case "labelkeep":
      for (const name of lb.keys()) if (!rule.regex.matches(name)) lb.delete(name);
      return true;
  }
}
