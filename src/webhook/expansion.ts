/**
 * Kubernetes' `$(VAR)` expansion of a container's command, args and env values
 * (k8s.io/kubernetes third_party/forked/golang/expansion): `$(NAME)` is replaced by the
 * variable's value when it is defined and left as written when not; `$$` is one `$`; any other
 * `$` stays. The webhook knows only literal `value`s: a variable set by `valueFrom` (or that
 * may come from `envFrom`) is known only when the pod runs.
 */

/** A variable's value; "runtime" when only the kubelet will know it; undefined when not defined. */
export type Lookup = (name: string) => string | "runtime" | undefined;

/** The result of expanding one string, with the references that could not be resolved now. */
export interface Expanded {
  readonly text: string;
  /** Referenced variables known only at run time (valueFrom, envFrom). */
  readonly runtime: readonly string[];
  /** Referenced variables that are not defined: Kubernetes leaves `$(NAME)` in the text. */
  readonly undefinedVars: readonly string[];
}

const RUNTIME = "runtime";

export function expand(input: string, lookup: Lookup): Expanded {
  let out = "";
  const runtime: string[] = [];
  const undefinedVars: string[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c !== "$" || i + 1 >= input.length) {
      out += c;
      i++;
      continue;
    }
    const next = input[i + 1]!;
    if (next === "$") {
      out += "$";
      i += 2;
    } else if (next === "(") {
      const close = input.indexOf(")", i + 2);
      if (close < 0) {
        out += "$(";
        i += 2;
        continue;
      }
      const name = input.slice(i + 2, close);
      const v = lookup(name);
      if (v === undefined) {
        undefinedVars.push(name);
        out += `$(${name})`;
      } else if (v === RUNTIME) {
        runtime.push(name);
        out += `$(${name})`;
      } else out += v;
      i = close + 1;
    } else {
      out += `$${next}`;
      i += 2;
    }
  }
  return { text: out, runtime, undefinedVars };
}

/**
 * The lookup for a container's command and args: its env in order (each literal value expanded
 * with the entries before it, as the kubelet does), valueFrom entries known only at run time,
 * and with envFrom any other name possibly defined at run time.
 */
export function containerLookup(env: readonly Record<string, unknown>[] | undefined, hasEnvFrom: boolean): Lookup {
  const vars = new Map<string, string>();
  for (const e of env ?? []) {
    if (typeof e.name !== "string") continue;
    if (e.valueFrom !== undefined) vars.set(e.name, RUNTIME);
    else {
      const value = typeof e.value === "string" ? e.value : "";
      const r = expand(value, (n) => vars.get(n) ?? (hasEnvFrom ? RUNTIME : undefined));
      // A value built from a runtime variable is itself known only at run time.
      vars.set(e.name, r.runtime.length > 0 ? RUNTIME : r.text);
    }
  }
  return (name) => vars.get(name) ?? (hasEnvFrom ? RUNTIME : undefined);
}
