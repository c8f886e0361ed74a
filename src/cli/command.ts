import { parseArgs } from "node:util";
import { PromshardError } from "../errors.ts";
import { LOG_LEVELS } from "../observability/log.ts";
import { dialectFor, type PromDialect } from "../prom/version.ts";

/** A flag as both the parser and the generated help need it. */
export interface Flag {
  readonly type: "string" | "boolean";
  readonly description: string;
  readonly default?: string;
  readonly multiple?: boolean;
  readonly short?: string;
  readonly placeholder?: string;
  /**
   * The name this flag had before flags followed Prometheus's dotted style (`group.name`,
   * dashes only inside a part): still accepted, with a warning, until promshard 0.3.
   */
  readonly formerly?: string;
}
export type Flags = Readonly<Record<string, Flag>>;

export interface Command<F extends Flags = Flags> {
  readonly name: string;
  readonly summary: string;
  /** Positional arguments, for the usage line only. */
  readonly args?: string;
  readonly flags: F;
  readonly subcommands?: readonly Subcommand[];
  readonly run?: (ctx: RunContext) => Promise<number>;
}

/**
 * A subcommand known by its name only until it runs (or help lists it): a process loads the
 * modules of its own mode and no other's. Every mode in one import graph cost each process
 * about 180 MiB and 0.9 s before its first line of work (the Kubernetes client alone ~80 MiB).
 */
export interface LazyCommand {
  readonly name: string;
  readonly load: () => Promise<Command>;
}
export type Subcommand = Command | LazyCommand;

/** A command whose subcommands are all loaded, as help and the flags page need them. */
export interface LoadedCommand extends Command {
  readonly subcommands?: readonly LoadedCommand[];
}

export function loadCommand(c: Subcommand): Promise<Command> {
  return "load" in c ? c.load() : Promise.resolve(c);
}

/** Loads every subcommand under `cmd`: for help, the flags page and tests, never for a run. */
export async function loadTree(cmd: Subcommand): Promise<LoadedCommand> {
  const c = await loadCommand(cmd);
  if (!c.subcommands) return c as LoadedCommand;
  return { ...c, subcommands: await Promise.all(c.subcommands.map(loadTree)) };
}

export interface RunContext {
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: string[];
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
}

/** Shared flag groups: one definition wherever the same setting appears. */
export const prometheusVersionFlag: Flags = {
  "prometheus.version": {
    type: "string",
    description:
      "Prometheus version whose semantics to follow (relabel regexes, label names, default ports): 2.x or 3.x",
    default: "3.16",
    placeholder: "VERSION",
    formerly: "prometheus-version",
  },
};

/** The dialect named by --prometheus.version; a bad value is a flag error (exit 2). */
export function dialectFromFlag(values: RunContext["values"]): PromDialect {
  try {
    return dialectFor(String(values["prometheus.version"]));
  } catch (err) {
    if (err instanceof PromshardError) throw new UsageError(err.message);
    throw err;
  }
}

export const configFlag: Flags = {
  config: { type: "string", description: "Prometheus config file", placeholder: "FILE" },
};

/** --config's value, which the commands that read a Prometheus config require. */
export function configFile(values: RunContext["values"]): string {
  const file = values.config;
  if (typeof file !== "string") throw new UsageError("--config FILE is required");
  return file;
}

export const outputFlag: Flags = {
  output: {
    type: "string",
    description: "table or json; table on a terminal, json otherwise",
    placeholder: "FORMAT",
  },
};

/** --output's value, or its default for where the output goes. */
export function outputFormat(ctx: RunContext): "table" | "json" {
  const output = ctx.values.output ?? (ctx.stdout.isTTY ? "table" : "json");
  if (output !== "table" && output !== "json") throw new UsageError(`--output must be table or json, got "${output}"`);
  return output;
}

export const logLevelFlag: Flags = {
  "log.level": {
    type: "string",
    description: `Log level: ${LOG_LEVELS.join(", ")}`,
    default: "info",
    placeholder: "LEVEL",
  },
};

export const helpFlag: Flags = { help: { type: "boolean", short: "h", description: "Show help for this command" } };

export function usage(cmd: LoadedCommand, path: string[]): string {
  const lines = [
    `Usage: ${[...path, cmd.name].join(" ")}${cmd.subcommands ? " COMMAND" : ""}${cmd.args ? ` ${cmd.args}` : ""}`,
  ];
  lines.push("", cmd.summary);
  if (cmd.subcommands?.length) {
    lines.push("", "Commands:");
    const w = Math.max(...cmd.subcommands.map((c) => c.name.length));
    for (const c of cmd.subcommands) lines.push(`  ${c.name.padEnd(w)}  ${c.summary}`);
  }
  const flags = { ...cmd.flags, ...helpFlag };
  lines.push("", "Flags:");
  const names = Object.entries(flags).map(([n, f]) => {
    const head = `${f.short ? `-${f.short}, ` : ""}--${n}${f.type === "string" ? ` ${f.placeholder ?? "VALUE"}` : ""}`;
    return [head, f] as const;
  });
  const w = Math.max(...names.map(([h]) => h.length));
  for (const [head, f] of names) {
    const def = f.default !== undefined ? ` (default: ${f.default})` : "";
    const was = f.formerly ? ` (formerly --${f.formerly})` : "";
    lines.push(`  ${head.padEnd(w)}  ${f.description}${f.multiple ? " (repeatable)" : ""}${def}${was}`);
  }
  return `${lines.join("\n")}\n`;
}

export class UsageError extends PromshardError {
  constructor(message: string) {
    super("flag_invalid", message);
  }
}

/**
 * Runs a command tree: picks the subcommand, parses its flags strictly, prints help on
 * --help, and turns every flag mistake into exit code 2 with a one-line reason.
 */
export async function runCommand(
  root: Command,
  argv: string[],
  io: { stdout: RunContext["stdout"]; stderr: RunContext["stderr"] },
): Promise<number> {
  const path: string[] = [];
  let cmd = root;
  let rest = argv;
  while (cmd.subcommands && rest.length > 0 && !rest[0]!.startsWith("-")) {
    const next = cmd.subcommands.find((c) => c.name === rest[0]);
    if (!next) {
      io.stderr.write(`${[...path, cmd.name].join(" ")}: unknown command "${rest[0]}"; see --help\n`);
      return 2;
    }
    path.push(cmd.name);
    cmd = await loadCommand(next);
    rest = rest.slice(1);
  }
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [n, f] of Object.entries({ ...cmd.flags, ...helpFlag })) {
    options[n] = { type: f.type, ...(f.multiple ? { multiple: true } : {}), ...(f.short ? { short: f.short } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    const renamed = renameFormerFlags(cmd.flags, rest);
    for (const w of renamed.warnings) io.stderr.write(`${[...path, cmd.name].join(" ")}: ${w}\n`);
    // allowNegative: a boolean flag that defaults to on is turned off as --no-NAME (--no-leader-elect).
    parsed = parseArgs({ args: renamed.args, options, allowPositionals: true, strict: true, allowNegative: true });
  } catch (err) {
    io.stderr.write(`${[...path, cmd.name].join(" ")}: ${firstLine((err as Error).message)}; see --help\n`);
    return 2;
  }
  if (parsed.values.help || !cmd.run) {
    (parsed.values.help ? io.stdout : io.stderr).write(usage(await loadTree(cmd), path));
    return parsed.values.help ? 0 : 2;
  }
  const values = { ...parsed.values } as RunContext["values"];
  for (const [n, f] of Object.entries(cmd.flags))
    if (values[n] === undefined && f.default !== undefined) values[n] = f.default;
  try {
    return await cmd.run({ values, positionals: parsed.positionals, ...io });
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${[...path, cmd.name].join(" ")}: ${err.message}; see --help\n`);
      return 2;
    }
    throw err;
  }
}

/**
 * Rewrites flags given by their former names (`--token-file x`, `--token-file=x`) to their
 * names now, with one warning per flag; a flag given by both names is a usage error, since
 * which one wins would be a guess.
 */
export function renameFormerFlags(flags: Flags, args: readonly string[]): { args: string[]; warnings: string[] } {
  const now = new Map(Object.entries(flags).flatMap(([n, f]) => (f.formerly ? [[f.formerly, n] as const] : [])));
  if (now.size === 0) return { args: [...args], warnings: [] };
  const out: string[] = [];
  const warnings: string[] = [];
  const warned = new Set<string>();
  for (const [i, arg] of args.entries()) {
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const m = /^--([^=]+)(=.*)?$/s.exec(arg);
    const to = m ? now.get(m[1]!) : undefined;
    if (!m || to === undefined) {
      out.push(arg);
      continue;
    }
    if (!warned.has(m[1]!)) {
      warned.add(m[1]!);
      warnings.push(`--${m[1]} is deprecated; use --${to} (the old name is accepted until promshard 0.3)`);
    }
    out.push(`--${to}${m[2] ?? ""}`);
  }
  for (const [former, to] of now)
    if (warned.has(former) && args.some((a) => a === `--${to}` || a.startsWith(`--${to}=`)))
      throw new UsageError(`--${former} and --${to} are the same flag; give it once, as --${to}`);
  return { args: out, warnings };
}

/** parseArgs explains at length; the first sentence is the reason. */
function firstLine(s: string): string {
  return s.split("\n")[0]!.split(". ")[0]!.replace(/\.$/, "");
}

/** Every command's help as one Markdown page: docs/flags.md is this output, and a test keeps it so. */
export function flagsDoc(root: LoadedCommand): string {
  const out = [
    "# promshard commands and flags",
    "",
    "Generated from `--help` by `make docs`; do not edit by hand.",
    "",
  ];
  const walk = (cmd: LoadedCommand, path: string[]) => {
    out.push(`## ${[...path, cmd.name].join(" ")}`, "", "```", usage(cmd, path).trimEnd(), "```", "");
    for (const sub of cmd.subcommands ?? []) walk(sub, [...path, cmd.name]);
  };
  walk(root, []);
  return out.join("\n");
}

/**
 * Resolves with the first SIGTERM or SIGINT: long-running modes stop cleanly on either. The
 * handlers stay: a second signal during the shutdown (a process group signalled as well as
 * the process, a second Ctrl-C) must not kill it half way, leaving detached shards behind.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => resolve(s);
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}
