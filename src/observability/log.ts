import { type Logger, pino } from "pino";
import { PromshardError } from "../errors.ts";

/** The levels `--log.level` accepts, most verbose first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Which part of promshard logs (`sidecar`, `coordinator`, `webhook` …): the `component` key of every line. */
  readonly component: string;
  readonly level?: LogLevel;
  /** Keys every line carries besides component (e.g. `{ shard: 0, replica: "0" }`). */
  readonly base?: Readonly<Record<string, unknown>>;
  /** Where lines go; stderr unless given (tests pass a stream to read them back). */
  readonly destination?: NodeJS.WritableStream;
}

/** Validates a `--log.level` value; the error names the accepted levels. */
export function parseLogLevel(value: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new PromshardError("flag_invalid", `"${value}" is not a log level; use one of ${LOG_LEVELS.join(", ")}`, {
    path: "--log.level",
  });
}

/**
 * A JSON-lines logger with stable keys: `level` (a name, not pino's number), `time`
 * (ISO 8601), `component`, the given base keys, `msg`; errors go under `err`. No pid or
 * hostname: the container runtime adds those.
 */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      base: { component: opts.component, ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    (opts.destination ?? process.stderr) as pino.DestinationStream,
  );
}
