import { certsCommand } from "./certs.ts";
import { checkCommand } from "./check.ts";
import type { Command } from "./command.ts";
import { coordinatorCommand } from "./coordinator.ts";
import { demoExporterCommand } from "./demo-exporter.ts";
import { localCommand } from "./local.ts";
import { queryEndpointsCommand } from "./query-endpoints.ts";
import { sidecarCommand } from "./sidecar.ts";
import { targetsCommand } from "./targets.ts";
import { webhookCommand } from "./webhook.ts";

/** Every mode of the one binary. */
export const root: Command = {
  name: "promshard",
  summary: "Automatic, series-aware horizontal sharding for Prometheus",
  flags: {},
  subcommands: [
    checkCommand,
    targetsCommand,
    demoExporterCommand,
    sidecarCommand,
    coordinatorCommand,
    localCommand,
    webhookCommand,
    certsCommand,
    queryEndpointsCommand,
  ],
};
