/**
 * Relabel regex speed: promshard's Go-compatible regex (src/prom/regex.ts: fast paths, else
 * re2js) against re2js used directly, JS's built-in RegExp (the speed reference; it is not
 * Go-exact) and, when it can be loaded, the native `re2` binding (not a dependency: point
 * RE2_MODULE at an installed copy, e.g. RE2_MODULE=/tmp/re2eval/node_modules/re2).
 * matches = MatchString, match = FindStringSubmatchIndex as texts; ops/s over mixed inputs.
 */
import { createRequire } from "node:module";
import { RE2JS } from "re2js";
import { compileRelabelRegex } from "../src/prom/regex.ts";
import { dialectFor } from "../src/prom/version.ts";
import { measure, writeResults } from "./lib.ts";

const V3 = dialectFor("3.16");
const CASES: [regex: string, inputs: string[]][] = [
  ["true", ["true", "false", ""]],
  ["(.+)", ["/metrics", "app-7f9c6d5b8-x2l4q", ""]],
  ["([^:]+)(?::\\d+)?;(\\d+)", ["10.0.0.1:8080;9090", "10.0.0.1;9090", "web;http"]],
  [
    "__meta_kubernetes_pod_label_(.+)",
    ["__meta_kubernetes_pod_label_app_kubernetes_io_name", "__meta_kubernetes_pod_ip"],
  ],
  ["kube-system|monitoring", ["monitoring", "default", "kube-system"]],
  ["(https?)", ["https", "ftp"]],
  ["(\\d+);((([0-9]+?)(\\.|$)){4})", ["8080;10.1.2.3", "8080;fe80::1"]],
  ["Pending|Succeeded|Failed|Completed", ["Running", "Succeeded"]],
];
const BATCH = 1000;

interface Engine {
  name: string;
  compile(re: string): { matches(s: string): boolean; match(s: string): unknown } | null;
}

const engines: Engine[] = [
  { name: "promshard", compile: (re) => compileRelabelRegex(re, V3) },
  {
    name: "re2js",
    compile: (re) => {
      const p = RE2JS.compile(`^(?s:${re})$`).re2();
      return { matches: (s) => p.match(s), match: (s) => p.findSubmatchIndex(s) };
    },
  },
  {
    name: "RegExp",
    compile: (re) => {
      const r = new RegExp(`^(?:${re})$`, "su");
      return { matches: (s) => r.test(s), match: (s) => r.exec(s) };
    },
  },
];
const re2Path = process.env.RE2_MODULE;
if (re2Path !== undefined) {
  const RE2 = createRequire(import.meta.url)(re2Path) as new (p: string, f: string) => RegExp;
  engines.push({
    name: "re2 (native)",
    compile: (re) => {
      const r = new RE2(`^(?s:${re})$`, "u");
      return { matches: (s) => r.test(s), match: (s) => r.exec(s) };
    },
  });
}

const rows: Record<string, string | number>[] = [];
for (const [re, inputs] of CASES) {
  for (const op of ["matches", "match"] as const) {
    const row: Record<string, string | number> = { regex: re, op };
    for (const engine of engines) {
      const compiled = engine.compile(re);
      if (compiled === null) continue;
      let sink = 0;
      const m = await measure(
        `${engine.name} ${op} ${re}`,
        () => {
          for (let i = 0; i < BATCH; i++) if (compiled[op](inputs[i % inputs.length] as string)) sink++;
        },
        { durationMs: 250 },
      );
      if (sink < 0) console.log(sink);
      row[`${engine.name} Mops/s`] = Number((((BATCH / m.medianMs) * 1e3) / 1e6).toFixed(2));
    }
    rows.push(row);
  }
}
console.table(rows);
console.log(`wrote ${writeResults("regex", { batch: BATCH, engines: engines.map((e) => e.name), rows })}`);
