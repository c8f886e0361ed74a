import { createRequire } from "node:module";
import type * as PromClient from "prom-client";

/**
 * prom-client's metric classes, loaded from their own files. Its index also loads the
 * Pushgateway client (node:http, node:https), the cluster aggregator (node:cluster), Summary
 * (tdigest) and, through the default CPU metrics, @opentelemetry/api: 19 MiB of RSS and ~90 ms
 * of CPU at every start of every process, for parts promshard never uses (the classes alone:
 * 2 MiB, 10 ms; docs/architecture.md, "Footprint"). Every promshard module takes them from
 * here, never from "prom-client" itself.
 */
const require = createRequire(import.meta.url);
export const Registry: typeof PromClient.Registry = require("prom-client/lib/registry");
export const Counter: typeof PromClient.Counter = require("prom-client/lib/counter");
export const Gauge: typeof PromClient.Gauge = require("prom-client/lib/gauge");
export const Histogram: typeof PromClient.Histogram = require("prom-client/lib/histogram");
export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;

type DefaultMetric = (registry: Registry, config: { eventLoopMonitoringPrecision?: number }) => void;

/**
 * prom-client's default metrics but its process CPU counters (see processCpu), in its order,
 * under the same names.
 */
const DEFAULT_METRICS = [
  "processStartTime",
  "osMemoryHeap",
  "processOpenFileDescriptors",
  "processMaxFileDescriptors",
  "eventLoopLag",
  "processResources",
  "processHandles",
  "processRequests",
  "heapSizeAndUsed",
  "heapSpacesSizeAndUsed",
  "version",
  "gc",
] as const;

/**
 * How often Node's event-loop delay is sampled for the nodejs_eventloop_lag_* metrics.
 * prom-client's 10 ms wakes an idle process 100 times a second: 2.7 ms of CPU a second, 0.8 s
 * over 5 minutes, more than the rest of an idle sidecar. Once a second costs 0.07 ms a second
 * and still sees every stall longer than a second (shorter ones by chance), which is what a
 * process with a 5 s control loop, scraped every 15 s or more, is watched for.
 */
const EVENT_LOOP_PRECISION_MS = 1000;

/**
 * process_cpu_{user,system}_seconds_total and process_cpu_seconds_total as prom-client's own
 * (the same names, help and values), without the exemplar support that makes its module load
 * @opentelemetry/api (10 MiB of RSS in every process).
 */
function processCpu(registry: Registry): void {
  let last = process.cpuUsage();
  const counter = (name: string, help: string, collect?: () => void) =>
    new Counter({ name, help, registers: [registry], ...(collect ? { collect } : {}) });
  const user = counter("process_cpu_user_seconds_total", "Total user CPU time spent in seconds.", () => {
    const now = process.cpuUsage();
    user.inc((now.user - last.user) / 1e6);
    system.inc((now.system - last.system) / 1e6);
    total.inc((now.user - last.user + now.system - last.system) / 1e6);
    last = now;
  });
  const system = counter("process_cpu_system_seconds_total", "Total system CPU time spent in seconds.");
  const total = counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
}

/**
 * One registry per process (never prom-client's global one, so tests can run several
 * components in one process), with Node's default process metrics unless switched off.
 * Every metric of a component is created against this registry.
 */
export function createRegistry(opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {}): Registry {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics ?? true) {
    processCpu(registry);
    for (const name of DEFAULT_METRICS)
      (require(`prom-client/lib/metrics/${name}`) as DefaultMetric)(registry, {
        eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS,
      });
  }
  return registry;
}
