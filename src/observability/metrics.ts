import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * How often Node's event-loop delay is sampled for the nodejs_eventloop_lag_* metrics.
 * prom-client's 10 ms wakes an idle process 100 times a second: 2.7 ms of CPU a second, 0.8 s
 * over 5 minutes, more than the rest of an idle sidecar. Once a second costs 0.07 ms a second
 * and still sees every stall longer than a second (shorter ones by chance), which is what a
 * process with a 5 s control loop, scraped every 15 s or more, is watched for.
 */
const EVENT_LOOP_PRECISION_MS = 1000;

/**
 * One registry per process (never prom-client's global one, so tests can run several
 * components in one process), with Node's default process metrics unless switched off.
 * Every metric of a component is created against this registry.
 */
export function createRegistry(opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {}): Registry {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
  return registry;
}
