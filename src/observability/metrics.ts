import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * One registry per process (never prom-client's global one, so tests can run several
 * components in one process), with Node's default process metrics unless switched off.
 * Every metric of a component is created against this registry.
 */
export function createRegistry(opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {}): Registry {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}
