import { ownNamespace } from "../kube/api.ts";
import { kubeClientFor } from "../kube/client.ts";
import { InformerPool } from "../kube/informers.ts";
import { createHttpApp, listen, parseListenAddress } from "../observability/http.ts";
import { createLogger, parseLogLevel } from "../observability/log.ts";
import { createRegistry } from "../observability/metrics.ts";
import { EndpointWriter } from "../thanos/endpoint-writer.ts";
import { COORDINATOR_LABEL } from "../webhook/inject.ts";
import { DEFAULT_SETTINGS } from "../webhook/settings.ts";
import { type Command, logLevelFlag, UsageError, untilSignal } from "./command.ts";
import { asUsage, durationMs, list, optional, required } from "./flag-values.ts";

export const queryEndpointsCommand: Command = {
  name: "query-endpoints",
  summary:
    "Keep Thanos Query's endpoint file naming one ready Thanos sidecar per shard index of a coordinator's shard pods (failover between replica groups)",
  flags: {
    file: {
      type: "string",
      description: "The endpoint file Thanos Query reads (--endpoint.sd-config-file), on a volume shared with it",
      default: "/etc/thanos/endpoints/endpoints.yml",
      placeholder: "FILE",
    },
    coordinator: {
      type: "string",
      description: "The coordinator whose shard pods to list (their promshard.io/coordinator label)",
      default: DEFAULT_SETTINGS.coordinator,
      placeholder: "NAME",
    },
    namespace: {
      type: "string",
      description: "Namespace of the shard pods (default: this pod's own)",
      placeholder: "NAMESPACE",
    },
    endpoint: {
      type: "string",
      multiple: true,
      description: "Another StoreAPI to list, strict (host:port of a Store Gateway or a Ruler); repeatable",
      placeholder: "HOST:PORT",
    },
    kubeconfig: {
      type: "string",
      description: "Kubeconfig (default: in-cluster, then $KUBECONFIG)",
      placeholder: "FILE",
    },
    "failover.max-wait": {
      type: "string",
      description:
        "How long a failover to another replica group waits for its pod to have scraped its assignment (its sidecar's /metrics, its Prometheus's /api/v1/targets) before taking it anyway",
      default: "2m",
      placeholder: "DURATION",
    },
    "metrics.listen": {
      type: "string",
      description: "Address of /metrics, /healthz and /readyz",
      default: ":8080",
      placeholder: "ADDR",
    },
    ...logLevelFlag,
  },
  async run(ctx) {
    const v = ctx.values;
    const metricsListen = required(v, "metrics.listen");
    asUsage(() => parseListenAddress(metricsListen, "--metrics.listen"));
    const level = asUsage(() => parseLogLevel(required(v, "log.level")));
    const namespace = optional(v, "namespace") ?? ownNamespace();
    if (!namespace) throw new UsageError("--namespace is required when not running in a cluster");
    const extra = list(v, "endpoint").map((address) => {
      if (!/^[^\s/]+:\d{1,5}$/.test(address))
        throw new UsageError(
          `--endpoint: "${address}" is not HOST:PORT (a dns+ name cannot be strict; list its address)`,
        );
      return { address, strict: true };
    });
    const log = createLogger({ component: "query-endpoints", level });
    const registry = createRegistry();
    const kubeconfig = optional(v, "kubeconfig") ?? process.env.KUBECONFIG;
    const client = asUsage(() => kubeClientFor({}, kubeconfig ? { fallbackKubeconfig: kubeconfig } : {}));
    const pool = new InformerPool({ log });
    const writer = new EndpointWriter({
      client,
      pool,
      namespace,
      selector: `${COORDINATOR_LABEL}=${required(v, "coordinator")}`,
      file: required(v, "file"),
      extra,
      log,
      registry,
      maxWaitMs: durationMs(v, "failover.max-wait", { positive: true }),
    });
    const server = await listen(createHttpApp({ registry, log, readiness: () => writer.readiness() }), metricsListen);
    log.info({ url: server.url, namespace, file: required(v, "file") }, "query-endpoints started");
    // Until the pods are listed, /readyz says so; the informers retry on their own.
    writer.start().catch((err: unknown) => log.error({ err }, "query-endpoints failed to start"));
    const signal = await untilSignal();
    log.info({ signal }, "shutting down");
    await writer.stop();
    await server.close();
    log.flush();
    return 0;
  },
};
