/**
 * A real Kubernetes control plane for tests: etcd + kube-apiserver (+ kube-controller-manager),
 * built from their Go modules by `make tools` (tools/kubernetes.mk) into ~/.cache/promshard-tools.
 * One control plane per test file: start it in `before`, stop it in `after`, and print its logs
 * when a test fails with `afterEach((t) => cp.printLogsIfFailed(t))`.
 *
 * What it is: etcd on loopback (no fsync), kube-apiserver with certificates generated per start
 * (a CA, a serving certificate for 127.0.0.1/localhost, an admin client certificate in group
 * system:masters), a service-account signing key pair, `--authorization-mode=Node,RBAC`; with
 * `controllerManager: true` also kube-controller-manager (`--controllers=*`, the same
 * service-account key, its own client certificate as system:kube-controller-manager and
 * `--use-service-account-credentials`, so each controller runs under its bootstrap RBAC role).
 * There is no kubelet and no scheduler: pods stay Pending with no node; `markPodReady` sets
 * the status a kubelet would (a StatefulSet with the default OrderedReady policy creates pod
 * N+1 only once pod N is Running and Ready).
 * test/support/cluster.ts builds a one-node cluster on it where pods run: `address` puts the
 * apiserver on the node bridge's address (pods reach it through the `kubernetes` Service),
 * `clientKubeconfig` gives each node component its own client certificate, and the apiserver
 * always has a client certificate for kubelets (logs, exec).
 * For failure tests: `stopApiserver`/`startApiserver` (same port, flags and certificates, etcd
 * keeps the data), `startExtraApiserver` (a second apiserver on the same etcd, as in an HA
 * control plane, to write while the main one is down), `etcd` (its v3 JSON gateway) and
 * `compactEtcd` (old resource versions gone: watches from them get 410 Gone).
 *
 * Facts measured against kube-apiserver 1.37.2, kube-controller-manager 1.37.2 and etcd 3.7.3
 * (2-core machine) that shape this file:
 * - Start to ready: 2.4 s without and 3.1 s with the controller manager on an idle machine,
 *   up to ~4 s while other tests run (certificates 0.2-0.9 s while etcd starts in ~0.1-0.3 s,
 *   then the apiserver 2.2-3 s, the controller manager ~0.5 s). Stop: ~1.1 s.
 * - The ServiceAccount admission plugin rejects every pod whose service account does not exist
 *   ("error looking up service account x/default"), and it is kube-controller-manager that
 *   creates each namespace's `default` account. Without the controller manager the plugin is
 *   therefore disabled: pods are stored as submitted, with no token volume. With it, ready
 *   also waits for default/default, so the controllers are running when startControlPlane returns.
 * - kube-apiserver refuses `--advertise-address=127.0.0.1` with the default lease endpoint
 *   reconciler ("may not be in the loopback range"): `--endpoint-reconciler-type=none`, so the
 *   `kubernetes` Service has no endpoints (nothing here needs them).
 * - The controller manager's clients default to 20 requests/s; with `--use-service-account-
 *   credentials` (a service account and a token per controller) that throttling alone delayed
 *   its controllers by 5.3 s. `--kube-api-qps=500 --kube-api-burst=1000` brings it to ~0.5 s.
 * - etcd elects itself after up to one election timeout (default 1 s): 100 ms here.
 * - etcd 3.7.3 logs "failed to update storage version … missing term information" (with a
 *   stack trace) once at the start of every fresh member: harmless.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { appendFile, mkdir, rm, writeFile } from "node:fs/promises";
import { Agent, request as httpsRequest } from "node:https";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CertificateAuthority, newKeyPair } from "./kube-certs.ts";
import { freePort } from "./ports.ts";
import { type Group, killGroup, onExit, spawnGroup } from "./processes.ts";

/** The versions tools/kubernetes.mk builds; keep in step with KUBERNETES_VERSION and ETCD_VERSION there. */
export const KUBERNETES_VERSION = "1.37.2";
export const ETCD_VERSION = "3.7.3";

export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager";

export interface KubeBinaries {
  etcd: string;
  kubeApiserver: string;
  /** Undefined when no directory searched holds it (envtest's assets, for one, lack it). */
  kubeControllerManager: string | undefined;
}

export interface StartOptions {
  /** Also run kube-controller-manager (StatefulSets, ReplicaSets, service accounts, garbage collection…). */
  controllerManager?: boolean;
  /** Extra flags as `--name=value`; one named like a default flag replaces it. */
  apiserverArgs?: string[];
  controllerManagerArgs?: string[];
  etcdArgs?: string[];
  /** Default 90 s: a 2-core machine running other tests can be slow. */
  readyTimeoutMs?: number;
  /**
   * The address kube-apiserver listens on and advertises (default 127.0.0.1). A cluster whose
   * pods reach the API (test/support/cluster.ts) gives the node bridge's address: then the
   * lease endpoint reconciler runs and the `kubernetes` Service has that endpoint.
   */
  address?: string;
  /** Default 10.0.0.0/24 (a /24 or wider, IPv4); its first address, the `kubernetes` Service, is in the serving certificate. */
  serviceClusterIpRange?: string;
}

export interface KubeResponse<T = unknown> {
  status: number;
  /** Parsed JSON when the body is JSON (a Kubernetes Status on errors), else the raw text. */
  body: T;
  text: string;
}

export interface RequestOptions {
  /** JSON-encoded unless a string. */
  body?: unknown;
  /** Default application/json; e.g. application/merge-patch+json for PATCH. */
  contentType?: string;
  /** A bearer token instead of the admin client certificate. */
  token?: string;
}

/** A second kube-apiserver on the same etcd, as in an HA control plane (see ControlPlane.startExtraApiserver). */
export interface ExtraApiserver {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** As ControlPlane.request, against this apiserver. */
  request<T = unknown>(method: string, path: string, opts?: RequestOptions): Promise<KubeResponse<T>>;
  /** As ControlPlane.api, against this apiserver. */
  api<T = unknown>(method: string, path: string, opts?: RequestOptions): Promise<T>;
  /** SIGTERM (SIGKILL after 10 s); idempotent. ControlPlane.stop() stops it too. */
  stop(): Promise<void>;
}

export interface ServiceAccountKubeconfig {
  /** A kubeconfig file (JSON, which is YAML) whose context defaults to the namespace. */
  path: string;
  token: string;
}

export interface ControlPlane {
  /** https://<address>:<port> (StartOptions.address, default 127.0.0.1) */
  readonly server: string;
  readonly port: number;
  /** The CA certificate (PEM) that signed the serving and client certificates. */
  readonly caPem: string;
  /** base64 of caPem: a kubeconfig's certificate-authority-data. */
  readonly caData: string;
  /** A kubeconfig for an admin in group system:masters (client certificate). */
  readonly kubeconfigPath: string;
  /**
   * Writes a kubeconfig with a client certificate for `user` in `groups`, signed by the cluster's
   * CA, and returns its path (in dir): for the node's components (system:node:<name>,
   * system:kube-scheduler, system:kube-proxy). `file` names it (default <user>.kubeconfig).
   */
  clientKubeconfig(user: string, groups?: string[], file?: string): Promise<string>;
  /** Temp dir with certificates, kubeconfigs and etcd's data; removed on stop. */
  readonly dir: string;
  readonly binaries: KubeBinaries;
  /** The pid of each component started (each leads its own process group). */
  readonly pids: Partial<Record<Component, number>>;
  /** gitVersion from /version, e.g. "v1.37.2". */
  readonly version: string;
  /**
   * Milliseconds from the call to startControlPlane until ready (total), until the certificates
   * were written and until etcd was healthy (these two run in parallel), then from both until the
   * apiserver was ready, then until the controller manager's controllers ran.
   */
  readonly timings: { total: number; certs: number; etcd: number; apiserver: number; controllerManager?: number };
  /** Creates the namespace and service account if missing and returns a kubeconfig with a TokenRequest token. */
  kubeconfigFor(namespace: string, serviceAccount: string): Promise<ServiceAccountKubeconfig>;
  /** One API request as admin (or with `token`); never throws on an HTTP status. */
  request<T = unknown>(method: string, path: string, opts?: RequestOptions): Promise<KubeResponse<T>>;
  /** Like request, but throws with the API's message unless the status is 2xx; returns the body. */
  api<T = unknown>(method: string, path: string, opts?: RequestOptions): Promise<T>;
  /** Sets the status a kubelet would set for a running, ready pod (phase Running, Ready=True, podIP). */
  markPodReady(namespace: string, name: string, podIP?: string): Promise<void>;
  /** What the components wrote so far: one, or all with a header each. */
  logs(component?: Component): string;
  /** For `afterEach((t) => cp.printLogsIfFailed(t))`: prints each component's log tail to stderr. */
  printLogsIfFailed(t: { name: string; passed?: boolean }, lines?: number): void;
  /** Stops the controller manager, then the apiserver, then etcd (SIGTERM, SIGKILL after 10 s); removes dir. Idempotent. */
  stop(): Promise<void>;
  /** etcd's client URL (plain HTTP on loopback); its v3 JSON gateway answers under /v3/. */
  readonly etcdUrl: string;
  /**
   * POST to etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/kv/deleterange`, `/v3/kv/compaction`…);
   * keys and values in the body are base64. Throws unless 2xx; returns the parsed answer.
   */
  etcd<T = unknown>(path: string, body: unknown): Promise<T>;
  /**
   * Compacts etcd's history up to its current revision and waits until the compaction is
   * physically applied: resource versions older than the returned revision are gone for good
   * (a watch or list from one gets 410 Gone once no apiserver cache can answer it).
   */
  compactEtcd(): Promise<number>;
  /**
   * Stops kube-apiserver, leaving etcd and its data, and any controller manager, running:
   * SIGTERM, SIGKILL after `graceMs` (default 10 s; 0 kills it at once, like a crash). Resolves
   * once the process has exited; no-op when stopped. A SIGTERMed apiserver closes its listener
   * at once but does not exit while a watch is open (Go's http.Server.Shutdown waits for it;
   * measured: still there after 10 s with one client-node watch): with informers running,
   * the default stop therefore takes the full 10 s and ends in SIGKILL.
   */
  stopApiserver(opts?: { graceMs?: number }): Promise<void>;
  /**
   * Starts kube-apiserver again with the same flags, certificates and port (so `server` and
   * every kubeconfig stay valid) and resolves once it is ready. Its watch cache starts afresh
   * from etcd's current revision. No-op when running.
   */
  startApiserver(): Promise<void>;
  /** stopApiserver, then startApiserver; the milliseconds each took. */
  restartApiserver(opts?: { graceMs?: number }): Promise<{ stopMs: number; startMs: number }>;
  /**
   * Starts another kube-apiserver on the same etcd and certificates but its own port: the API
   * stays writable while the main one is stopped, as in an HA control plane. Logs as
   * "kube-apiserver" too.
   */
  startExtraApiserver(): Promise<ExtraApiserver>;
}

const cacheDir = join(homedir(), ".cache/promshard-tools");
const DEFAULT_DIRS = [
  join(cacheDir, `kubernetes-${KUBERNETES_VERSION}/bin`),
  join(cacheDir, `etcd-${ETCD_VERSION}/bin`),
];

/**
 * Each binary from the first directory holding it: PROMSHARD_KUBE_ASSETS (colon-separated, the
 * Makefile exports it), else KUBEBUILDER_ASSETS and then the directories `make tools` builds into.
 */
export function kubeBinaries(): KubeBinaries & { searched: string[] } {
  const split = (v: string | undefined) => (v ?? "").split(":").filter((s) => s !== "");
  const listed = split(process.env.PROMSHARD_KUBE_ASSETS);
  const searched = listed.length > 0 ? listed : [...split(process.env.KUBEBUILDER_ASSETS), ...DEFAULT_DIRS];
  const find = (name: string) => searched.map((d) => join(d, name)).find((p) => existsSync(p));
  const missing = (name: string) =>
    new Error(
      `${name} is missing: not in ${searched.join(", ")}. Run \`make tools\` (builds kube-apiserver and ` +
        `kube-controller-manager ${KUBERNETES_VERSION} and etcd ${ETCD_VERSION} into ${cacheDir}), or set ` +
        "PROMSHARD_KUBE_ASSETS (colon-separated directories) or KUBEBUILDER_ASSETS to where you have them",
    );
  const etcd = find("etcd");
  if (!etcd) throw missing("etcd");
  const kubeApiserver = find("kube-apiserver");
  if (!kubeApiserver) throw missing("kube-apiserver");
  return { etcd, kubeApiserver, kubeControllerManager: find("kube-controller-manager"), searched };
}

// ---- processes: every one started is killed however the test process ends (as prometheus.ts does)

interface Plane {
  dir: string;
  pids: number[];
  watchdog: number | undefined;
}
const live = new Set<Plane>();

function cleanupPlanes(): void {
  for (const p of live) {
    for (const pid of p.pids) killGroup(pid, "SIGKILL");
    if (p.watchdog !== undefined) killGroup(p.watchdog, "SIGKILL");
    rmSync(p.dir, { recursive: true, force: true });
  }
  live.clear();
}

/**
 * A shell that, once this Node process is gone (SIGKILL, a crash: no hook runs), SIGKILLs the
 * process group of every pid listed in <dir>/pids and removes the dir.
 */
function startWatchdog(dir: string): number | undefined {
  const script =
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
    `for p in $(cat "$1/pids" 2>/dev/null); do kill -KILL -"$p" 2>/dev/null; done; rm -rf -- "$1"`;
  const child = spawn("sh", ["-c", script, "kube-watchdog", dir], { detached: true, stdio: "ignore" });
  child.unref();
  return child.pid;
}

interface Proc extends Group {
  name: Component;
}

async function launch(plane: Plane, name: Component, bin: string, args: string[]): Promise<Proc> {
  const group = spawnGroup(bin, args, plane.dir);
  if (group.pid > 0) {
    plane.pids.push(group.pid);
    await appendFile(join(plane.dir, "pids"), `${group.pid}\n`);
  }
  return { ...group, name };
}

/** Polls `check` until it returns true; fails as soon as `proc` exits, or at the deadline. */
async function waitFor(proc: Proc, what: string, deadline: number, check: () => Promise<boolean>): Promise<void> {
  let lastError = "";
  for (;;) {
    const status = proc.exitStatus();
    if (status !== undefined) throw new StartError(`${proc.name} ${status} before ${what}`, proc);
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new StartError(`no ${what} in time${lastError ? ` (last error: ${lastError})` : ""}`, proc);
    }
    await sleep(50);
  }
}

class StartError extends Error {
  readonly proc: Proc;
  constructor(message: string, proc: Proc) {
    super(message);
    this.proc = proc;
  }
}

const flagName = (arg: string) => arg.split("=")[0];
/** Defaults, minus those a flag in `extra` names, then `extra`. */
function mergeFlags(defaults: string[], extra: string[] = []): string[] {
  const given = new Set(extra.map(flagName));
  return [...defaults.filter((a) => !given.has(flagName(a))), ...extra];
}

const addressInUse = (log: string) => /address already in use/.test(log);

/** Starts a component on fresh ports, again (up to 5 times) when a port was taken meanwhile. */
async function launchWithPorts(
  plane: Plane,
  procs: Proc[],
  name: Component,
  bin: string,
  portCount: number,
  argsFor: (ports: number[]) => string[],
  ready: (proc: Proc, ports: number[]) => Promise<void>,
): Promise<{ proc: Proc; ports: number[] }> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    while (ports.length < portCount) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    const proc = await launch(plane, name, bin, argsFor(ports));
    procs.push(proc);
    try {
      await ready(proc, ports);
      return { proc, ports };
    } catch (err) {
      await proc.halt();
      if (attempt < 5 && addressInUse(proc.logs())) {
        procs.splice(procs.indexOf(proc), 1);
        continue;
      }
      throw err;
    }
  }
}

// ---- HTTPS to the apiserver (node:https: fetch cannot present a client certificate)

interface Client {
  server: string;
  ca: string;
  /** Presents the admin client certificate. */
  agent: Agent;
}

function kubeRequest<T>(
  client: Client,
  method: string,
  path: string,
  opts: RequestOptions = {},
): Promise<KubeResponse<T>> {
  const payload =
    opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (payload !== undefined) headers["Content-Type"] = opts.contentType ?? "application/json";
  if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, client.server),
      // A token request must not also present the admin certificate: no agent, no client certificate.
      opts.token !== undefined
        ? { method, headers, ca: client.ca, agent: false }
        : { method, headers, agent: client.agent },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (b: Buffer) => parts.push(b));
        res.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8");
          let body: unknown = text;
          if ((res.headers["content-type"] ?? "").includes("json")) {
            try {
              body = JSON.parse(text);
            } catch {
              // Keep the text.
            }
          }
          resolve({ status: res.statusCode ?? 0, body: body as T, text });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
    req.on("error", reject);
    req.end(payload);
  });
}

function kubeconfig(opts: {
  server: string;
  caPem: string;
  user: string;
  auth: Record<string, string>;
  namespace?: string;
}): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return `${JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        { name: "promshard-test", cluster: { server: opts.server, "certificate-authority-data": b64(opts.caPem) } },
      ],
      users: [{ name: opts.user, user: opts.auth }],
      contexts: [
        {
          name: opts.user,
          context: {
            cluster: "promshard-test",
            user: opts.user,
            ...(opts.namespace ? { namespace: opts.namespace } : {}),
          },
        },
      ],
      "current-context": opts.user,
    },
    null,
    2,
  )}\n`;
}

const certKubeconfig = (server: string, caPem: string, user: string, cert: { certPem: string; keyPem: string }) =>
  kubeconfig({
    server,
    caPem,
    user,
    auth: {
      "client-certificate-data": Buffer.from(cert.certPem).toString("base64"),
      "client-key-data": Buffer.from(cert.keyPem).toString("base64"),
    },
  });

const tail = (text: string, lines: number) => text.trimEnd().split("\n").slice(-lines).join("\n");

// ---- the control plane

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const t0 = Date.now();
  const withKcm = opts.controllerManager === true;
  const binaries = kubeBinaries();
  if (withKcm && !binaries.kubeControllerManager) {
    throw new Error(
      `kube-controller-manager is missing: not in ${binaries.searched.join(", ")}. Run \`make tools\`, or set ` +
        "PROMSHARD_KUBE_ASSETS to directories that hold it",
    );
  }
  onExit(cleanupPlanes);
  const address = opts.address ?? "127.0.0.1";
  const serviceRange = opts.serviceClusterIpRange ?? "10.0.0.0/24";
  // The first address of the range: the `kubernetes` Service's ClusterIP.
  const firstServiceIp = serviceRange.replace(/\.\d+\/\d+$/, ".1");
  const dir = mkdtempSync(join(tmpdir(), "promshard-kube-"));
  const plane: Plane = { dir, pids: [], watchdog: undefined };
  live.add(plane);
  plane.watchdog = startWatchdog(dir);
  const procs: Proc[] = [];
  let agent: Agent | undefined;

  const logs = (component?: Component) =>
    component !== undefined
      ? procs
          .filter((p) => p.name === component)
          .map((p) => p.logs())
          .join("")
      : procs.map((p) => `===== ${p.name} (pid ${p.pid}) =====\n${p.logs()}`).join("\n");
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Reverse start order: the apiserver still needs etcd while it shuts down.
      for (const p of [...procs].reverse()) await p.halt();
      if (plane.watchdog !== undefined) killGroup(plane.watchdog, "SIGKILL");
      agent?.destroy();
      live.delete(plane);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return stopping;
  };

  try {
    // Certificates and keys, while etcd (plain HTTP on loopback, no certificates) starts.
    const certsAndKeys = (async () => {
      const ca = await CertificateAuthority.create("promshard-test-ca");
      const [serving, admin, kcmClient, kubeletClient, saKeys] = await Promise.all([
        ca.issue({
          commonName: "kube-apiserver",
          dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
          ipAddresses: [...new Set(["127.0.0.1", address, firstServiceIp])],
          usage: "server",
        }),
        ca.issue({ commonName: "promshard-test-admin", organizations: ["system:masters"], usage: "client" }),
        ca.issue({ commonName: "system:kube-controller-manager", usage: "client" }),
        // How the apiserver authenticates to kubelets (logs, exec, port-forward), where there are any.
        ca.issue({ commonName: "kube-apiserver-kubelet-client", organizations: ["system:masters"], usage: "client" }),
        newKeyPair(),
      ]);
      await mkdir(join(dir, "pki"));
      const files: Record<string, string> = {
        "ca.crt": ca.certPem,
        "ca.key": ca.keys.keyPem,
        "apiserver.crt": serving.certPem,
        "apiserver.key": serving.keyPem,
        "apiserver-kubelet-client.crt": kubeletClient.certPem,
        "apiserver-kubelet-client.key": kubeletClient.keyPem,
        "sa.key": saKeys.keyPem,
        "sa.pub": saKeys.publicKeyPem,
      };
      for (const [name, content] of Object.entries(files)) {
        await writeFile(join(dir, "pki", name), content, { mode: 0o600 });
      }
      return { ca, admin, kcmClient, done: Date.now() };
    })();
    const etcdStarted = (async () => {
      const { ports } = await launchWithPorts(
        plane,
        procs,
        "etcd",
        binaries.etcd,
        2,
        ([client, peer]) =>
          mergeFlags(
            [
              "--name=promshard-test",
              `--data-dir=${join(dir, "etcd")}`,
              `--listen-client-urls=http://127.0.0.1:${client}`,
              `--advertise-client-urls=http://127.0.0.1:${client}`,
              `--listen-peer-urls=http://127.0.0.1:${peer}`,
              `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
              `--initial-cluster=promshard-test=http://127.0.0.1:${peer}`,
              "--unsafe-no-fsync", // Tests do not survive power loss anyway; writes get much faster.
              // A single member elects itself after one election timeout: 100 ms instead of up to 1 s.
              "--heartbeat-interval=10",
              "--election-timeout=100",
              "--log-level=warn",
            ],
            opts.etcdArgs,
          ),
        async (proc, [client]) => {
          await waitFor(proc, "200 from etcd /health", Date.now() + 30_000, async () => {
            const res = await fetch(`http://127.0.0.1:${client}/health`, { signal: AbortSignal.timeout(2_000) });
            return res.ok && ((await res.json()) as { health?: string }).health === "true";
          });
        },
      );
      return { url: `http://127.0.0.1:${ports[0]}`, done: Date.now() };
    })();
    // Both settle before going on, so a failure of one never leaves the other running unseen.
    const [pkiResult, etcdResult] = await Promise.allSettled([certsAndKeys, etcdStarted]);
    if (pkiResult.status === "rejected") throw pkiResult.reason;
    if (etcdResult.status === "rejected") throw etcdResult.reason;
    const { ca, admin, kcmClient } = pkiResult.value;
    const etcdUrl = etcdResult.value.url;
    const f = (name: string) => join(dir, "pki", name);
    const parallelDone = Date.now();
    agent = new Agent({ ca: ca.certPem, cert: admin.certPem, key: admin.keyPem, keepAlive: true });
    const client: Client = { server: "", ca: ca.certPem, agent };

    // kube-apiserver.
    const deadline = t0 + (opts.readyTimeoutMs ?? 90_000);
    let server = "";
    const apiserverArgs = (port: number) =>
      mergeFlags(
        [
          `--etcd-servers=${etcdUrl}`,
          `--bind-address=${address}`,
          `--advertise-address=${address}`,
          // The lease reconciler refuses a loopback address for the kubernetes service's endpoints.
          ...(address.startsWith("127.") ? ["--endpoint-reconciler-type=none"] : []),
          `--secure-port=${port}`,
          `--cert-dir=${join(dir, "apiserver")}`,
          `--tls-cert-file=${f("apiserver.crt")}`,
          `--tls-private-key-file=${f("apiserver.key")}`,
          `--client-ca-file=${f("ca.crt")}`,
          `--service-account-key-file=${f("sa.pub")}`,
          `--service-account-signing-key-file=${f("sa.key")}`,
          "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
          `--service-cluster-ip-range=${serviceRange}`,
          `--kubelet-client-certificate=${f("apiserver-kubelet-client.crt")}`,
          `--kubelet-client-key=${f("apiserver-kubelet-client.key")}`,
          "--authorization-mode=Node,RBAC",
          "--allow-privileged=true",
          // See the top of the file: without the controller manager no service account exists.
          ...(withKcm ? [] : ["--disable-admission-plugins=ServiceAccount"]),
        ],
        opts.apiserverArgs,
      );
    /** Ready: /readyz answers 200 and the default namespace exists. */
    const apiserverReady = async (proc: Proc, c: Client, until: number) => {
      await waitFor(proc, `200 from ${c.server}/readyz`, until, async () => {
        const res = await kubeRequest(c, "GET", "/readyz");
        return res.status === 200;
      });
      await waitFor(proc, "namespace default", until, async () => {
        const res = await kubeRequest(c, "GET", "/api/v1/namespaces/default");
        return res.status === 200;
      });
    };
    const apiserver = await launchWithPorts(
      plane,
      procs,
      "kube-apiserver",
      binaries.kubeApiserver,
      1,
      ([port]) => apiserverArgs(port as number),
      async (proc, [port]) => {
        server = `https://${address}:${port}`;
        client.server = server;
        await apiserverReady(proc, client, deadline);
      },
    );
    let apiserverProc = apiserver.proc;
    const port = apiserver.ports[0] as number;
    const apiserverDone = Date.now();
    const request = <T>(method: string, path: string, ro?: RequestOptions) => kubeRequest<T>(client, method, path, ro);
    const api = async <T>(method: string, path: string, ro?: RequestOptions): Promise<T> => {
      const res = await request<T>(method, path, ro);
      if (res.status < 200 || res.status > 299) {
        const message = (res.body as { message?: string } | undefined)?.message ?? res.text.slice(0, 500);
        throw new Error(`${method} ${path}: HTTP ${res.status}: ${message}`);
      }
      return res.body;
    };

    const adminKubeconfig = join(dir, "admin.kubeconfig");
    await writeFile(adminKubeconfig, certKubeconfig(server, ca.certPem, "promshard-test-admin", admin), {
      mode: 0o600,
    });

    // kube-controller-manager.
    let kcmDone: number | undefined;
    if (withKcm) {
      const kcmKubeconfig = join(dir, "kube-controller-manager.kubeconfig");
      await writeFile(kcmKubeconfig, certKubeconfig(server, ca.certPem, "system:kube-controller-manager", kcmClient), {
        mode: 0o600,
      });
      await launchWithPorts(
        plane,
        procs,
        "kube-controller-manager",
        binaries.kubeControllerManager as string,
        0,
        () =>
          mergeFlags(
            [
              `--kubeconfig=${kcmKubeconfig}`,
              // No HTTPS endpoint (/healthz, /metrics): no port to race for; readiness is checked below.
              "--secure-port=0",
              "--controllers=*",
              "--use-service-account-credentials=true",
              `--service-account-private-key-file=${f("sa.key")}`,
              `--root-ca-file=${f("ca.crt")}`,
              `--cluster-signing-cert-file=${f("ca.crt")}`,
              `--cluster-signing-key-file=${f("ca.key")}`,
              "--leader-elect=false",
              // Its clients default to 20 requests/s: with a client (and a token) per controller,
              // client-side throttling alone kept its controllers from starting for 5 s.
              "--kube-api-qps=500",
              "--kube-api-burst=1000",
            ],
            opts.controllerManagerArgs,
          ),
        async (proc) => {
          // Its service-account controller creates default/default: the controllers are running.
          await waitFor(proc, "service account default/default", deadline, async () => {
            const res = await request("GET", "/api/v1/namespaces/default/serviceaccounts/default");
            return res.status === 200;
          });
        },
      );
      kcmDone = Date.now();
    }

    const etcd = async <T>(path: string, body: unknown): Promise<T> => {
      const res = await fetch(`${etcdUrl}${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`etcd POST ${path}: HTTP ${res.status}: ${text.slice(0, 500)}`);
      return JSON.parse(text) as T;
    };
    const compactEtcd = async (): Promise<number> => {
      // Any range answers with the store's current revision in its header.
      const key = Buffer.from("/registry/").toString("base64");
      const head = await etcd<{ header: { revision: string } }>("/v3/kv/range", { key, count_only: true });
      const revision = Number(head.header.revision);
      // physical: the answer comes once the old revisions are really removed.
      await etcd("/v3/kv/compaction", { revision: String(revision), physical: true });
      return revision;
    };

    const pids: Partial<Record<Component, number>> = Object.fromEntries(
      procs.filter((p) => p.pid > 0).map((p) => [p.name, p.pid]),
    );
    let apiserverStopping: Promise<void> | undefined;
    let apiserverStarting: Promise<void> | undefined;
    const stopApiserver = (so: { graceMs?: number } = {}): Promise<void> => {
      apiserverStopping ??= (async () => {
        await apiserverStarting?.catch(() => {});
        await apiserverProc.halt(so.graceMs);
      })();
      return apiserverStopping;
    };
    const startApiserver = (): Promise<void> => {
      if (apiserverProc.exitStatus() === undefined && apiserverStopping === undefined) return Promise.resolve();
      apiserverStarting ??= (async () => {
        await apiserverStopping;
        // The port was ours a moment ago; retry while the kernel still holds it.
        for (let attempt = 1; ; attempt++) {
          const proc = await launch(plane, "kube-apiserver", binaries.kubeApiserver, apiserverArgs(port));
          procs.push(proc);
          apiserverProc = proc;
          if (proc.pid > 0) pids["kube-apiserver"] = proc.pid;
          try {
            await apiserverReady(proc, client, Date.now() + (opts.readyTimeoutMs ?? 90_000));
            return;
          } catch (err) {
            await proc.halt();
            if (attempt < 10 && addressInUse(proc.logs())) {
              await sleep(300);
              continue;
            }
            throw err;
          }
        }
      })().finally(() => {
        apiserverStopping = undefined;
        apiserverStarting = undefined;
      });
      return apiserverStarting;
    };
    const restartApiserver = async (so: { graceMs?: number } = {}) => {
      const t = Date.now();
      await stopApiserver(so);
      const stopped = Date.now();
      await startApiserver();
      return { stopMs: stopped - t, startMs: Date.now() - stopped };
    };
    const startExtraApiserver = async (): Promise<ExtraApiserver> => {
      const extra: Client = { server: "", ca: ca.certPem, agent: agent as Agent };
      const { proc, ports } = await launchWithPorts(
        plane,
        procs,
        "kube-apiserver",
        binaries.kubeApiserver,
        1,
        ([p]) => apiserverArgs(p as number),
        async (proc, [p]) => {
          extra.server = `https://${address}:${p}`;
          await apiserverReady(proc, extra, Date.now() + (opts.readyTimeoutMs ?? 90_000));
        },
      );
      const extraRequest = <T>(method: string, path: string, ro?: RequestOptions) =>
        kubeRequest<T>(extra, method, path, ro);
      return {
        server: extra.server,
        port: ports[0] as number,
        pid: proc.pid > 0 ? proc.pid : undefined,
        request: extraRequest,
        api: async <T>(method: string, path: string, ro?: RequestOptions): Promise<T> => {
          const res = await extraRequest<T>(method, path, ro);
          if (res.status < 200 || res.status > 299) {
            const message = (res.body as { message?: string } | undefined)?.message ?? res.text.slice(0, 500);
            throw new Error(`${method} ${path}: HTTP ${res.status}: ${message}`);
          }
          return res.body;
        },
        stop: () => proc.halt(),
      };
    };

    const version = await api<{ gitVersion: string }>("GET", "/version");
    const caData = Buffer.from(ca.certPem).toString("base64");

    const kubeconfigFor = async (namespace: string, serviceAccount: string): Promise<ServiceAccountKubeconfig> => {
      for (const [path, body] of [
        ["/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }],
        [
          `/api/v1/namespaces/${namespace}/serviceaccounts`,
          { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: serviceAccount } },
        ],
      ] as const) {
        const res = await request("POST", path, { body });
        if (res.status !== 201 && res.status !== 409) {
          throw new Error(`POST ${path}: HTTP ${res.status}: ${res.text.slice(0, 500)}`);
        }
      }
      const tr = await api<{ status: { token: string } }>(
        "POST",
        `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
        {
          body: {
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenRequest",
            spec: { expirationSeconds: 24 * 60 * 60 },
          },
        },
      );
      const token = tr.status.token;
      const path = join(dir, `sa-${namespace}-${serviceAccount}.kubeconfig`);
      const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
      await writeFile(path, kubeconfig({ server, caPem: ca.certPem, user, auth: { token }, namespace }), {
        mode: 0o600,
      });
      return { path, token };
    };

    const markPodReady = async (namespace: string, name: string, podIP = "127.0.0.1"): Promise<void> => {
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const conditions = ["PodScheduled", "Initialized", "ContainersReady", "Ready"].map((type) => ({
        type,
        status: "True",
        lastTransitionTime: now,
      }));
      await api("PATCH", `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
        contentType: "application/merge-patch+json",
        body: { status: { phase: "Running", conditions, podIP, podIPs: [{ ip: podIP }], startTime: now } },
      });
    };

    const clientKubeconfig = async (
      user: string,
      groups: string[] = [],
      file = `${user.replace(/:/g, "-")}.kubeconfig`,
    ) => {
      const cert = await ca.issue({ commonName: user, organizations: groups, usage: "client" });
      const path = join(dir, file);
      await writeFile(path, certKubeconfig(server, ca.certPem, user, cert), { mode: 0o600 });
      return path;
    };

    const done = Date.now();
    return {
      clientKubeconfig,
      server,
      port,
      caPem: ca.certPem,
      caData,
      kubeconfigPath: adminKubeconfig,
      dir,
      binaries,
      pids,
      version: version.gitVersion,
      timings: {
        total: done - t0,
        certs: pkiResult.value.done - t0,
        etcd: etcdResult.value.done - t0,
        apiserver: apiserverDone - parallelDone,
        ...(kcmDone !== undefined ? { controllerManager: kcmDone - apiserverDone } : {}),
      },
      kubeconfigFor,
      request,
      api,
      markPodReady,
      logs,
      etcdUrl,
      etcd,
      compactEtcd,
      stopApiserver,
      startApiserver,
      restartApiserver,
      startExtraApiserver,
      printLogsIfFailed: (t, lines = 60) => {
        if (t.passed !== false) return;
        const parts = procs.map((p) => `----- ${p.name} (last ${lines} lines) -----\n${tail(p.logs(), lines)}`);
        process.stderr.write(
          `\n[control plane logs after failed test "${t.name}" (dir ${dir})]\n${parts.join("\n")}\n`,
        );
      },
      stop,
    };
  } catch (err) {
    const failed = err instanceof StartError ? err.proc : undefined;
    const detail = procs
      .map((p) => `----- ${p.name}${p === failed ? " (failed)" : ""} -----\n${tail(p.logs(), p === failed ? 150 : 30)}`)
      .join("\n");
    await stop();
    throw new Error(`control plane did not start: ${err instanceof Error ? err.message : String(err)}\n${detail}`, {
      cause: err,
    });
  }
}
