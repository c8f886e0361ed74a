import { checkReferencedFiles } from "../config/check.ts";
import { loadConfigFile } from "../config/load.ts";
import { PromshardError } from "../errors.ts";
import { type Command, dialectFromFlag, prometheusVersionFlag, UsageError } from "./command.ts";
import { printErrors } from "./targets.ts";

const checkConfigCommand: Command = {
  name: "config",
  summary:
    "Validate Prometheus config files as promtool check config does (files it names, static and file_sd targets included), listing every error",
  args: "FILE...",
  flags: {
    "syntax-only": {
      type: "boolean",
      description:
        "Only check the config file and its static targets, not the rule, credential, TLS and file_sd files it names",
    },
    ...prometheusVersionFlag,
  },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError("give at least one config FILE");
    const dialect = dialectFromFlag(ctx.values);
    let failed = 0;
    for (const file of ctx.positionals) {
      ctx.stdout.write(`Checking ${file}\n`);
      try {
        const config = loadConfigFile(file, dialect);
        const { errors, warnings } = checkReferencedFiles(config, { syntaxOnly: ctx.values["syntax-only"] === true });
        printErrors(ctx.stderr, warnings, "warning");
        if (errors.length > 0) {
          failed++;
          ctx.stdout.write(`  FAILED: ${errors.length} error(s)\n`);
          printErrors(ctx.stderr, errors);
          continue;
        }
        ctx.stdout.write(`  SUCCESS: ${config.scrapeConfigs.length} scrape job(s) found\n`);
      } catch (err) {
        if (!(err instanceof PromshardError)) throw err;
        failed++;
        ctx.stdout.write("  FAILED\n");
        printErrors(ctx.stderr, [err]);
      }
    }
    return failed > 0 ? 1 : 0;
  },
};

export const checkCommand: Command = {
  name: "check",
  summary: "Check configuration files",
  flags: {},
  subcommands: [checkConfigCommand],
};
