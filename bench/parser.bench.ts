/**
 * Exposition parser throughput: MB/s and samples/s on a generated ~10 MB exposition (text and
 * OpenMetrics), whole-buffer and streamed in 64 KiB chunks, with and without a metricRelabel
 * function. Run: node bench/parser.bench.ts  (writes bench/results/parser.json)
 */
import { countSeries, createSeriesCounter, type ExpositionFormat } from "../src/prom/exposition/index.ts";
import type { Labels } from "../src/prom/labels.ts";
import { measure, printTable, writeResults } from "./lib.ts";

const TARGET_BYTES = 10 * 1024 * 1024;
const METHODS = ["GET", "POST", "PUT", "DELETE"];
const BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];

/**
 * A realistic mix: counter families (4 labels), gauges (3–6 labels), histograms with 10
 * buckets (3 labels + le), HELP/TYPE for each family, some timestamps; OpenMetrics adds
 * _created lines, an exemplar now and then and # EOF.
 */
export function generate(format: ExpositionFormat, targetBytes = TARGET_BYTES): Uint8Array {
  const om = format === "openmetrics";
  const parts: string[] = [];
  let size = 0;
  for (let fam = 0; size < targetBytes; fam++) {
    const name = `service_component_${fam}`;
    let s = "";
    switch (fam % 3) {
      case 0: {
        s += `# HELP ${name}_requests_total Total number of requests handled by the component, by method and code.\n`;
        s += om ? `# TYPE ${name}_requests counter\n` : `# TYPE ${name}_requests_total counter\n`;
        for (let k = 0; k < 24; k++) {
          const labels = `method="${METHODS[k % 4]}",handler="/api/v1/resource/${k % 6}",code="${200 + (k % 5) * 100}",zone="eu-west-${k % 3}"`;
          s += `${name}_requests_total{${labels}} ${k * 1723 + fam}${k % 8 === 0 ? (om ? ` # {trace_id="4bf92f3577b34da6a3ce929d0e0e${k}"} 1 1700000000.123` : "") : ""}\n`;
          if (om) s += `${name}_requests_created{${labels}} 1700000000.5\n`;
        }
        break;
      }
      case 1: {
        s += `# HELP ${name}_queue_depth Current depth of the work queue.\n# TYPE ${name}_queue_depth gauge\n`;
        for (let k = 0; k < 24; k++) {
          const extra = [
            "",
            `,priority="p${k % 3}"`,
            `,priority="p${k % 3}",shard="${k % 7}"`,
            `,priority="p${k % 3}",shard="${k % 7}",tenant="team-${k % 5}"`,
          ][k % 4];
          s += `${name}_queue_depth{pod="component-${fam}-7d9f8b6c4-x${k}k2p",namespace="production",container="app"${extra}} ${(k * 0.37).toFixed(2)}${k % 6 === 0 ? (om ? " 1700000000" : " 1700000000000") : ""}\n`;
        }
        break;
      }
      default: {
        s += `# HELP ${name}_duration_seconds Request latency distribution.\n# TYPE ${name}_duration_seconds histogram\n`;
        for (let k = 0; k < 4; k++) {
          const labels = `method="${METHODS[k]}",route="/v1/items/{id}/${k}",status="2xx"`;
          let cum = 0;
          for (const le of BUCKETS) {
            cum += k + 3;
            s += `${name}_duration_seconds_bucket{${labels},le="${le}"} ${cum}\n`;
          }
          s += `${name}_duration_seconds_sum{${labels}} ${(cum * 0.042).toFixed(3)}\n`;
          s += `${name}_duration_seconds_count{${labels}} ${cum}\n`;
          if (om) s += `${name}_duration_seconds_created{${labels}} 1700000000\n`;
        }
      }
    }
    parts.push(s);
    size += s.length;
  }
  if (om) parts.push("# EOF\n");
  return new TextEncoder().encode(parts.join(""));
}

/** Drops 5xx and the debug route: about as much work as a short metric_relabel_configs. */
const relabel = (l: Labels): Labels | null => (l.code?.startsWith("5") || l.route === "/v1/items/{id}/3" ? null : l);

function streamed(body: Uint8Array, format: ExpositionFormat, withRelabel: boolean): void {
  const c = createSeriesCounter({ format, ...(withRelabel ? { metricRelabel: relabel } : {}) });
  for (let at = 0; at < body.length; at += 65536) c.write(body.subarray(at, at + 65536));
  c.end();
}

async function main(): Promise<void> {
  const rows = [];
  for (const format of ["text", "openmetrics"] as const) {
    const body = generate(format);
    const { samples } = countSeries(body, { format });
    const mb = body.length / 1e6;
    for (const withRelabel of [false, true]) {
      for (const mode of ["whole", "64KiB chunks"] as const) {
        const name = `${format} ${mode}${withRelabel ? " +relabel" : ""}`;
        const fn =
          mode === "whole"
            ? () => countSeries(body, { format, ...(withRelabel ? { metricRelabel: relabel } : {}) })
            : () => streamed(body, format, withRelabel);
        const m = await measure(name, fn, { durationMs: 3000 });
        rows.push({
          ...m,
          MB: Number(mb.toFixed(1)),
          "MB/s": Math.round(mb / (m.medianMs / 1000)),
          "Msamples/s": Number((samples / (m.medianMs / 1000) / 1e6).toFixed(2)),
          samples,
        });
      }
    }
  }
  printTable(rows, "text whole");
  console.log(`wrote ${writeResults("parser", rows)}`);
}

await main();
