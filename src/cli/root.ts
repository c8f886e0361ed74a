import type { Command } from "./command.ts";

/**
 * Every mode of the one binary, each loaded only when chosen (see LazyCommand); the names
 * here are the modules' own, which test/cli/cli.test.ts checks.
 */
export const root: Command = {
  name: "promshard",
  summary: "Automatic, series-aware horizontal sharding for Prometheus",
  flags: {},
  subcommands: [
    { name: "check", load: async () => (await import("./check.ts")).checkCommand },
    { name: "targets", load: async () => (await import("./targets.ts")).targetsCommand },
    { name: "plan", load: async () => (await import("./plan.ts")).planCommand },
    { name: "demo-exporter", load: async () => (await import("./demo-exporter.ts")).demoExporterCommand },
    { name: "sidecar", load: async () => (await import("./sidecar.ts")).sidecarCommand },
    { name: "coordinator", load: async () => (await import("./coordinator.ts")).coordinatorCommand },
    { name: "local", load: async () => (await import("./local.ts")).localCommand },
    { name: "webhook", load: async () => (await import("./webhook.ts")).webhookCommand },
    { name: "certs", load: async () => (await import("./certs.ts")).certsCommand },
    { name: "query-endpoints", load: async () => (await import("./query-endpoints.ts")).queryEndpointsCommand },
  ],
};
