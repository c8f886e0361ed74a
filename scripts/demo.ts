// make demo: the seed's experiment on this machine. Six demo exporters of 10045 series each
// (10040 exposed + Prometheus's 5 scrape series) and `promshard local` with a 30000-series
// budget: it settles on 3 shards of 2 targets. Leaves everything running until Ctrl-C.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startDemoExporter } from "../src/demo/exporter.ts";

const dir = fileURLToPath(new URL("../examples/local/", import.meta.url));
const exporters = await Promise.all(
  Array.from({ length: 6 }, (_, i) => startDemoExporter({ series: 10040, port: 9101 + i })),
);
writeFileSync(
  `${dir}targets.json`,
  `${JSON.stringify([{ targets: exporters.map((e) => `127.0.0.1:${e.port}`) }], null, 2)}\n`,
);
console.log(`6 demo exporters on ports 9101-9106, 10040 series each`);
const local = spawn(
  process.execPath,
  [
    fileURLToPath(new URL("../src/cli.ts", import.meta.url)),
    "local",
    "--config",
    `${dir}prometheus.yml`,
    "--shard.max-series",
    "30000",
    "--global.rule-file",
    `${dir}global-rules.yml`,
    "--storage.path",
    `${dir}data`,
    ...process.argv.slice(2),
  ],
  { stdio: "inherit" },
);
const stop = () => local.kill("SIGTERM");
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
local.once("exit", async (code) => {
  await Promise.all(exporters.map((e) => e.close()));
  process.exit(code ?? 0);
});
