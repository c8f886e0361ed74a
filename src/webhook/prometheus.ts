/**
 * The Prometheus container of a pod: finding it, reading the flags that matter to injection
 * from its command and args (kingpin syntax: `--flag=value`, `--flag value`, `--[no-]flag`),
 * and rewriting only those, so that every other argument the user wrote stays where it was.
 */
import { posix } from "node:path";
import { containerLookup, type Expanded, expand } from "./expansion.ts";
import type { Container, VolumeMount } from "./pod.ts";

/** Flags injection reads or writes that take a value (so `--flag value` consumes the next token). */
const VALUE_FLAGS = new Set([
  "config.file",
  "storage.tsdb.path",
  "web.listen-address",
  "web.route-prefix",
  "web.external-url",
  "storage.tsdb.min-block-duration",
  "storage.tsdb.max-block-duration",
]);

/** The official images' defaults (Dockerfile CMD and WORKDIR of prom/prometheus, quay.io/prometheus/prometheus). */
const OFFICIAL_IMAGE =
  /^(?:(?:docker\.io\/|index\.docker\.io\/)?prom\/prometheus|quay\.io\/prometheus\/prometheus)(?:[:@]|$)/;
const OFFICIAL_DEFAULT_ARGS = ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"];
const OFFICIAL_WORKDIR = "/prometheus";

/** Matches the image of a Prometheus server (last path element `prometheus`), not its config reloader. */
export const DEFAULT_PROMETHEUS_IMAGE = /(?:^|\/)prometheus(?:[:@]|$)/;

export type Found = { index: number } | { error: string };

/**
 * The Prometheus container: the one named `name` if there is one, else the only one whose
 * image matches `image`. Several matches are ambiguous (the user names one by annotation).
 */
export function findPrometheus(containers: readonly Container[], name: string, image: RegExp): Found {
  const byName = containers.findIndex((c) => c.name === name);
  if (byName >= 0) return { index: byName };
  const byImage = containers.flatMap((c, i) => (typeof c.image === "string" && image.test(c.image) ? [i] : []));
  if (byImage.length === 1) return { index: byImage[0]! };
  const names = containers.map((c) => c.name).join(", ");
  if (byImage.length > 1) {
    return {
      error: `several containers run a Prometheus image (${byImage.map((i) => containers[i]!.name).join(", ")}); name one with promshard.io/prometheus-container`,
    };
  }
  return {
    error: `no container is named "${name}" or runs a Prometheus image (containers: ${names}); name it with promshard.io/prometheus-container`,
  };
}

/** One argv token, remembering which list it came from. */
interface Token {
  text: string;
  list: "command" | "args";
  index: number;
}

interface FlagUse {
  name: string;
  /** The token holding `--name` or `--name=value`. */
  flag: Token;
  /** The token holding the value when it was written as `--name value`. */
  valueToken?: Token;
  value?: string;
}

/** Flags whose values promshard reads (paths, address, prefix): their variables must resolve now. */
const READ_FLAGS = ["config.file", "storage.tsdb.path", "web.listen-address", "web.route-prefix", "web.external-url"];

/** What injection needs to know about a Prometheus container, plus a rewriter for its argv. */
export interface PrometheusFlags {
  /** Absolute path of the user's config file. */
  configFile: string;
  /** Absolute path of the TSDB directory. */
  tsdbPath: string;
  /** `http://localhost:9090`, with the route prefix when there is one. */
  url: string;
  port: number;
  /** The value of each flag that appears (last occurrence), by name without dashes. */
  values: ReadonlyMap<string, string>;
  /** Notes for the user (image defaults assumed, …). */
  notes: string[];
  rewrite(changes: FlagChanges): { command?: string[]; args?: string[] };
}

export interface FlagChanges {
  /** Flags whose value must be this (replaced in place, else appended as `--name=value`). */
  set: ReadonlyMap<string, string>;
  /** Boolean flags that must be on. */
  enable: readonly string[];
}

function isPrometheusBinary(s: string): boolean {
  return posix.basename(s) === "prometheus";
}

/** Reads the flags of the Prometheus container, or says why the container cannot be handled. */
export function readPrometheusFlags(c: Container): PrometheusFlags | { error: string } {
  const command = c.command ?? undefined;
  const args = c.args ?? undefined;
  const official = typeof c.image === "string" && OFFICIAL_IMAGE.test(c.image);
  const notes: string[] = [];
  let tokens: Token[] = [];
  let defaultArgs: string[] | undefined;
  if (command && command.length > 0) {
    if (!isPrometheusBinary(command[0]!)) {
      return {
        error: `container ${c.name} runs ${JSON.stringify(command[0])}, not the prometheus binary; promshard rewrites flags only when command is the prometheus binary or unset`,
      };
    }
    tokens = command.slice(1).map((text, i) => ({ text, list: "command", index: i + 1 }));
  }
  if (args && args.length > 0) tokens.push(...args.map((text, index) => ({ text, list: "args" as const, index })));
  else if (!command || command.length === 0) {
    if (!official) {
      return {
        error: `container ${c.name} runs the default arguments of image ${c.image ?? "(none)"}, which promshard cannot see; write them in args`,
      };
    }
    defaultArgs = OFFICIAL_DEFAULT_ARGS;
    tokens = defaultArgs.map((text, index) => ({ text, list: "args", index }));
    notes.push(
      `container ${c.name} had no args: the image's defaults (${OFFICIAL_DEFAULT_ARGS.join(" ")}) were written out`,
    );
  }

  // Kubernetes expands $(VAR) in command and args before Prometheus sees them: read the
  // values Prometheus will get. Tokens stay as written; only what promshard rewrites changes.
  const lookup = containerLookup(c.env, Array.isArray(c.envFrom) && c.envFrom.length > 0);
  const unresolved = new Map<Token, Expanded>();
  const seen = tokens.map((t) => {
    const e = expand(t.text, lookup);
    if (e.runtime.length + e.undefinedVars.length > 0) unresolved.set(t, e);
    return { ...t, text: e.text, original: t };
  });
  const uses: FlagUse[] = [];
  for (let i = 0; i < seen.length; i++) {
    const t = seen[i]!;
    if (!t.text.startsWith("--") || t.text === "--") continue;
    const eq = t.text.indexOf("=");
    if (eq > 0) {
      uses.push({ name: t.text.slice(2, eq), flag: t.original, value: t.text.slice(eq + 1) });
      continue;
    }
    const name = t.text.slice(2);
    const next = seen[i + 1];
    if (VALUE_FLAGS.has(name) && next !== undefined && !next.text.startsWith("--")) {
      uses.push({ name, flag: t.original, valueToken: next.original, value: next.text });
      i++;
    } else {
      uses.push({ name, flag: t.original });
    }
  }
  // A flag promshard reads must have a value known now: refused, with the variable named.
  for (const name of READ_FLAGS) {
    for (const u of uses.filter((x) => x.name === name)) {
      const e = unresolved.get(u.valueToken ?? u.flag);
      if (!e) continue;
      if (e.runtime.length > 0)
        return {
          error: `--${name} uses $(${e.runtime[0]}), which comes from valueFrom or may come from envFrom and is known only when the pod runs (a Kubernetes variable); write the value itself`,
        };
      return {
        error: `--${name} uses $(${e.undefinedVars[0]}), but $(${e.undefinedVars[0]}) is not in the container's env: Kubernetes would pass it literally (a Kubernetes variable); define it in env or write the value itself`,
      };
    }
  }
  const values = new Map<string, string>();
  for (const u of uses) if (u.value !== undefined) values.set(u.name, u.value);

  const workdir = c.workingDir || (official ? OFFICIAL_WORKDIR : undefined);
  const absolute = (p: string, flag: string): string | { error: string } => {
    const clean = (x: string) => posix.normalize(x).replace(/(.)\/+$/, "$1");
    if (posix.isAbsolute(p)) return clean(p);
    if (!workdir) {
      return {
        error: `--${flag} is ${p === "" ? "not set" : `the relative path ${JSON.stringify(p)}`} and container ${c.name} has no workingDir; write an absolute --${flag}`,
      };
    }
    return clean(posix.join(workdir, p));
  };
  const configFile = absolute(values.get("config.file") ?? "prometheus.yml", "config.file");
  if (typeof configFile !== "string") return configFile;
  const tsdbPath = absolute(values.get("storage.tsdb.path") ?? "data/", "storage.tsdb.path");
  if (typeof tsdbPath !== "string") return tsdbPath;

  const listen = parseListen(firstListen(uses) ?? "0.0.0.0:9090");
  if ("error" in listen) return { error: `container ${c.name}: --web.listen-address ${listen.error}` };
  const prefix = routePrefix(values.get("web.route-prefix"), values.get("web.external-url"));
  const url = `http://${listen.host}:${listen.port}${prefix}`;

  const rewrite = (changes: FlagChanges): { command?: string[]; args?: string[] } => {
    const out = {
      command: command ? [...command] : undefined,
      args: defaultArgs ? [...defaultArgs] : args ? [...args] : undefined,
    };
    let commandChanged = false;
    let argsChanged = defaultArgs !== undefined;
    const put = (t: Token, text: string) => {
      if (t.text === text) return;
      if (t.list === "command") {
        out.command![t.index] = text;
        commandChanged = true;
      } else {
        out.args![t.index] = text;
        argsChanged = true;
      }
    };
    const appended: string[] = [];
    for (const [name, value] of changes.set) {
      const found = uses.filter((u) => u.name === name);
      for (const u of found) {
        if (u.valueToken) put(u.valueToken, value);
        else put(u.flag, `--${name}=${value}`);
      }
      if (found.length === 0) appended.push(`--${name}=${value}`);
    }
    for (const name of changes.enable) {
      const on = uses.filter((u) => u.name === name);
      const off = uses.filter((u) => u.name === `no-${name}`);
      for (const u of on) if (u.value !== undefined && u.value !== "true") put(u.flag, `--${name}`);
      for (const u of off) put(u.flag, `--${name}`);
      if (on.length === 0 && off.length === 0) appended.push(`--${name}`);
    }
    if (appended.length > 0) {
      out.args = [...(out.args ?? []), ...appended];
      argsChanged = true;
    }
    return {
      ...(commandChanged ? { command: out.command! } : {}),
      ...(argsChanged ? { args: out.args! } : {}),
    };
  };

  return { configFile, tsdbPath, url, port: listen.port, values, notes, rewrite };
}

/** Prometheus 3 accepts the listen flag repeatedly; the first one is where the sidecars talk to it. */
function firstListen(uses: FlagUse[]): string | undefined {
  return uses.find((u) => u.name === "web.listen-address" && u.value !== undefined)?.value;
}

function parseListen(addr: string): { host: string; port: number } | { error: string } {
  const m = /^(.*):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[2]) > 65535 || Number(m[2]) === 0) return { error: `${JSON.stringify(addr)} has no port` };
  const host = m[1]!;
  const any = host === "" || host === "0.0.0.0" || host === "[::]" || host === "::";
  return { host: any ? "localhost" : host, port: Number(m[2]) };
}

/** `--web.route-prefix`, else the path of `--web.external-url`, as Prometheus derives it; "" for the root. */
function routePrefix(prefix: string | undefined, externalUrl: string | undefined): string {
  let p = prefix;
  if (p === undefined && externalUrl) {
    try {
      p = new URL(externalUrl).pathname;
    } catch {
      p = "/";
    }
  }
  p = (p ?? "/").replace(/\/+$/, "");
  return p === "" ? "" : p.startsWith("/") ? p : `/${p}`;
}

/** The mount of `mounts` under which `path` lies (the deepest one), if any. */
export function mountCovering(mounts: readonly VolumeMount[], path: string): VolumeMount | undefined {
  let best: VolumeMount | undefined;
  for (const m of mounts) {
    const mp = posix.normalize(m.mountPath).replace(/\/+$/, "") || "/";
    const covers = path === mp || path.startsWith(mp === "/" ? "/" : `${mp}/`);
    if (covers && (!best || mp.length > posix.normalize(best.mountPath).replace(/\/+$/, "").length)) best = m;
  }
  return best;
}
