import { PromshardError } from "../errors.ts";
import { kubeApi } from "../kube/api.ts";
import { parseListenAddress } from "../observability/http.ts";
import { createLogger, parseLogLevel } from "../observability/log.ts";
import { createRegistry } from "../observability/metrics.ts";
import { parseAnnotations } from "../webhook/annotations.ts";
import { DEFAULT_BODY_LIMIT, startWebhookServer } from "../webhook/server.ts";
import {
  DEFAULT_SETTINGS,
  type InjectorSettings,
  type ServerVersion,
  supportsNativeSidecars,
  supportsSleepAction,
} from "../webhook/settings.ts";
import { type Command, logLevelFlag, type RunContext, UsageError, untilSignal } from "./command.ts";
import { bytes, durationMs, optional, port, required } from "./flag-values.ts";

/** Checks an image flag with the same rule as the annotation that overrides it. */
function image(values: RunContext["values"], name: string, annotation: string): string {
  const v = required(values, name);
  const { errors } = parseAnnotations({ "promshard.io/inject": "true", [`promshard.io/${annotation}`]: v });
  if (errors.length > 0) throw new UsageError(`--${name}: "${v}" is not a container image reference`);
  return v;
}

const d = DEFAULT_SETTINGS;

export const webhookCommand: Command = {
  name: "webhook",
  summary:
    "Run the mutating admission webhook: inject the promshard and Thanos sidecars into opted-in Prometheus pods, copy StatefulSet annotations into pod templates",
  flags: {
    listen: { type: "string", description: "HTTPS address of POST /mutate", default: ":8443", placeholder: "ADDR" },
    "metrics.listen": {
      type: "string",
      description: "Plain-HTTP address of /metrics, /healthz and /readyz",
      default: ":8080",
      placeholder: "ADDR",
    },
    "tls.cert-file": {
      type: "string",
      description: "Serving certificate (PEM); re-read when it changes",
      default: "/etc/promshard/webhook/tls.crt",
      placeholder: "FILE",
    },
    "tls.key-file": {
      type: "string",
      description: "Its private key (PEM); re-read when it changes",
      default: "/etc/promshard/webhook/tls.key",
      placeholder: "FILE",
    },
    "tls.poll-interval": {
      type: "string",
      description: "How often the certificate files are re-read besides file events",
      default: "10s",
      placeholder: "DURATION",
    },
    "sidecar.mode": {
      type: "string",
      description:
        "How the promshard sidecar is injected: native (init container with restartPolicy Always, Kubernetes >= 1.29), container (plain container + init step), or auto (native if the API server is 1.29 or newer; container if it cannot be asked)",
      default: "auto",
      placeholder: "MODE",
    },
    kubeconfig: {
      type: "string",
      description:
        "Kubeconfig for asking the API server's version (default: $KUBECONFIG, ~/.kube/config or in-cluster)",
      placeholder: "FILE",
    },
    "sidecar.image": {
      type: "string",
      description: "promshard image of the sidecar (annotation promshard.io/sidecar-image overrides)",
      default: d.sidecarImage,
      placeholder: "IMAGE",
    },
    "sidecar.port": {
      type: "string",
      description: "Port of the sidecar's API (promshard.io/sidecar-port overrides)",
      default: String(d.sidecarPort),
      placeholder: "PORT",
    },
    "sidecar.auth": {
      type: "string",
      description:
        "How sidecars check the coordinator: token (the Secret of --sidecar.token-secret) or kubernetes (the coordinator's ServiceAccount token for the audience promshard.io/sidecar, checked by TokenReview; the shard's ServiceAccount needs system:auth-delegator) (promshard.io/sidecar-auth overrides)",
      default: d.sidecarAuth,
      placeholder: "MODE",
    },
    "sidecar.token-secret": {
      type: "string",
      description:
        "Secret in the pod's namespace whose key `token` is the coordinator's bearer token (promshard.io/token-secret overrides)",
      default: d.tokenSecret,
      placeholder: "NAME",
    },
    "thanos.image": {
      type: "string",
      description: "Thanos image of the Thanos sidecar (promshard.io/thanos-image overrides)",
      default: d.thanosImage,
      placeholder: "IMAGE",
    },
    "thanos.default": {
      type: "boolean",
      description: 'Inject the Thanos sidecar unless a pod says promshard.io/thanos: "false" (the default)',
    },
    "no-thanos.default": {
      type: "boolean",
      description: 'Inject the Thanos sidecar only where a pod says promshard.io/thanos: "true"',
    },
    "thanos.objstore-key": {
      type: "string",
      description: "Key of the object storage config in promshard.io/thanos-objstore-secret",
      default: d.objstoreKey,
      placeholder: "KEY",
    },
    "prometheus.container": {
      type: "string",
      description:
        "Name of the Prometheus container; else the one container whose image is a Prometheus (promshard.io/prometheus-container overrides)",
      default: d.prometheusContainer,
      placeholder: "NAME",
    },
    "prometheus.image-regex": {
      type: "string",
      description: "What a Prometheus image looks like, when no container has that name",
      default: d.prometheusImage.source,
      placeholder: "REGEX",
    },
    coordinator: {
      type: "string",
      description: "Coordinator of pods that do not name one in promshard.io/coordinator",
      default: d.coordinator,
      placeholder: "NAME",
    },
    "pre-stop.delay": {
      type: "string",
      description:
        "Pause of the Prometheus and Thanos sidecar containers before they stop (preStop: Kubernetes's sleep action from 1.30, else an exec of sleep), so Thanos Query stops asking a deleted shard pod before it stops answering; 0s: none",
      default: `${d.preStopSeconds}s`,
      placeholder: "DURATION",
    },
    "pre-stop.action": {
      type: "string",
      description:
        "How the pause is written: sleep (Kubernetes's sleep action, >= 1.30), exec (sleep in the container's image), or auto (sleep if the API server is 1.30 or newer; exec if it cannot be asked)",
      default: "auto",
      placeholder: "ACTION",
    },
    "web.body-limit": {
      type: "string",
      description: "Largest AdmissionReview accepted (larger: HTTP 413)",
      default: `${DEFAULT_BODY_LIMIT / 1024 / 1024}mb`,
      placeholder: "SIZE",
      formerly: "body-limit",
    },
    "web.shutdown-delay": {
      type: "string",
      description:
        "On SIGTERM, keep answering (unready) this long so the API server's calls in flight to this pod are not lost",
      default: "5s",
      placeholder: "DURATION",
      formerly: "shutdown-delay",
    },
    ...logLevelFlag,
  },
  async run(ctx) {
    const v = ctx.values;
    const listen = required(v, "listen");
    const metricsListen = required(v, "metrics.listen");
    for (const [flag, addr] of [
      ["--listen", listen],
      ["--metrics.listen", metricsListen],
    ] as const) {
      try {
        parseListenAddress(addr, flag);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    const level = (() => {
      try {
        return parseLogLevel(required(v, "log.level"));
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    })();
    const mode = required(v, "sidecar.mode");
    if (!["auto", "native", "container"].includes(mode)) {
      throw new UsageError(`--sidecar.mode must be auto, native or container, not "${mode}"`);
    }
    let prometheusImage: RegExp;
    try {
      prometheusImage = new RegExp(required(v, "prometheus.image-regex"));
    } catch (err) {
      throw new UsageError(`--prometheus.image-regex: ${(err as Error).message}`);
    }
    // The flags that set an annotation's default are checked as that annotation is.
    const annotationFlags: Record<string, string> = {
      coordinator: "coordinator",
      "token-secret": "sidecar.token-secret",
      "sidecar-auth": "sidecar.auth",
      "prometheus-container": "prometheus.container",
    };
    const names = parseAnnotations({
      "promshard.io/inject": "true",
      ...Object.fromEntries(Object.entries(annotationFlags).map(([a, f]) => [`promshard.io/${a}`, required(v, f)])),
    });
    if (names.errors.length > 0)
      throw new UsageError(
        names.errors[0]!.message.replace(
          /^annotation promshard\.io\/([-a-z]+)/,
          (_, a: string) => `--${annotationFlags[a] ?? a}`,
        ),
      );
    const settings: InjectorSettings = {
      ...d,
      sidecarImage: image(v, "sidecar.image", "sidecar-image"),
      thanosImage: image(v, "thanos.image", "thanos-image"),
      sidecarPort: port(v, "sidecar.port"),
      tokenSecret: required(v, "sidecar.token-secret"),
      sidecarAuth: names.value.sidecarAuth!,
      thanos: v["no-thanos.default"] !== true,
      objstoreKey: required(v, "thanos.objstore-key"),
      prometheusContainer: required(v, "prometheus.container"),
      prometheusImage,
      coordinator: required(v, "coordinator"),
    };
    const bodyLimit = bytes(v, "web.body-limit");
    const pollMs = durationMs(v, "tls.poll-interval");
    const shutdownDelayMs = durationMs(v, "web.shutdown-delay");
    const log = createLogger({ component: "webhook", level });

    const preStopMs = durationMs(v, "pre-stop.delay");
    if (preStopMs % 1000 !== 0) throw new UsageError("--pre-stop.delay must be whole seconds (a preStop sleep's unit)");
    settings.preStopSeconds = preStopMs / 1000;

    const action = required(v, "pre-stop.action");
    if (!["auto", "sleep", "exec"].includes(action))
      throw new UsageError(`--pre-stop.action must be auto, sleep or exec, not "${action}"`);

    let version: ServerVersion | undefined;
    if (mode === "auto" || (action === "auto" && settings.preStopSeconds > 0)) {
      try {
        version = await kubeApi(optional(v, "kubeconfig")).call<ServerVersion>("GET", "/version");
      } catch (err) {
        log.warn(
          { err },
          mode === "auto"
            ? "cannot ask the API server's version; injecting the plain-container sidecar, which works on every version (set --sidecar.mode to choose), and a preStop exec of sleep"
            : "cannot ask the API server's version; the preStop pause is an exec of sleep",
        );
      }
    }
    settings.nativeSidecar =
      mode === "auto" ? version !== undefined && supportsNativeSidecars(version) : mode === "native";
    settings.sleepAction =
      action === "auto" ? version !== undefined && supportsSleepAction(version) : action === "sleep";
    if (version)
      log.info(
        {
          apiserver: version.gitVersion,
          mode: settings.nativeSidecar ? "native" : "container",
          preStop: settings.sleepAction ? "sleep" : "exec",
        },
        "injection chosen by the API server's version",
      );

    const registry = createRegistry();
    let server: Awaited<ReturnType<typeof startWebhookServer>>;
    try {
      server = await startWebhookServer({
        listen,
        metricsListen,
        tls: { certFile: required(v, "tls.cert-file"), keyFile: required(v, "tls.key-file") },
        settings,
        log,
        registry,
        bodyLimit,
        pollMs,
        shutdownDelayMs,
      });
    } catch (err) {
      ctx.stderr.write(`promshard webhook: ${err instanceof PromshardError ? err.message : (err as Error).message}\n`);
      return 1;
    }
    const signal = await untilSignal();
    log.info({ signal }, "shutting down");
    await server.stop();
    log.flush();
    return 0;
  },
};
