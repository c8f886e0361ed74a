/**
 * Runs every bench/*.bench.ts, one after another, each in its own Node process (the same
 * binary and flags as this one), so one benchmark's heap and JIT state cannot skew the next.
 *
 *   node bench/run.ts             all of them
 *   node bench/run.ts a b.bench.ts   only these (by name, with or without .bench.ts)
 *   node bench/run.ts --list      list them and exit
 *
 * Exits 1 if any benchmark fails, 2 on an unknown name.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const all = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .sort();
const args = process.argv.slice(2);

if (args.includes("--list")) {
  console.log(all.length > 0 ? all.map((f) => f.replace(/\.bench\.ts$/, "")).join("\n") : "(no bench/*.bench.ts)");
  process.exit(0);
}

const chosen: string[] = [];
for (const arg of args) {
  const file = `${basename(arg).replace(/\.bench\.ts$/, "")}.bench.ts`;
  if (!all.includes(file)) {
    console.error(`bench/run.ts: no bench/${file}; there are: ${all.join(", ") || "none"}`);
    process.exit(2);
  }
  chosen.push(file);
}

const run = (file: string) =>
  new Promise<{ file: string; status: string; seconds: number }>((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...process.execArgv, join(dir, file)], { stdio: "inherit" });
    const done = (status: string) => resolve({ file, status, seconds: (performance.now() - started) / 1000 });
    child.once("error", (err) => done(`failed to start: ${err.message}`));
    child.once("exit", (code, signal) => done(signal ? `killed by ${signal}` : code === 0 ? "ok" : `exit ${code}`));
  });

const results = [];
for (const file of chosen.length > 0 ? chosen : all) {
  console.log(`\n== ${file}`);
  results.push(await run(file));
}
if (results.length === 0) console.log("no bench/*.bench.ts to run");
else console.table(results.map((r) => ({ ...r, seconds: r.seconds.toFixed(1) })));
process.exitCode = results.some((r) => r.status !== "ok") ? 1 : 0;
