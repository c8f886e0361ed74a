import { startDemoExporter } from "../demo/exporter.ts";
import { type Command, UsageError, untilSignal } from "./command.ts";

export const demoExporterCommand: Command = {
  name: "demo-exporter",
  summary: "Serve N synthetic series at /metrics (the seed experiment's target); /-/series?n=M changes N",
  flags: {
    series: {
      type: "string",
      description: "Series in the exposition (Prometheus adds 5 scrape series: 10040 makes the seed's 10045)",
      default: "10040",
      placeholder: "N",
    },
    port: { type: "string", description: "Port to listen on (0 picks a free one)", default: "0", placeholder: "PORT" },
    host: { type: "string", description: "Address to listen on", default: "127.0.0.1", placeholder: "HOST" },
  },
  async run(ctx) {
    const series = Number(ctx.values.series);
    const port = Number(ctx.values.port);
    if (!Number.isSafeInteger(series) || series < 0)
      throw new UsageError(`--series must be a non-negative integer, got "${ctx.values.series}"`);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--port must be 0-65535, got "${ctx.values.port}"`);
    const exporter = await startDemoExporter({ series, port, host: String(ctx.values.host) });
    ctx.stdout.write(`demo exporter serving ${series} series at ${exporter.url}\n`);
    await untilSignal();
    await exporter.close();
    return 0;
  },
};
