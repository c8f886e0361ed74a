/**
 * A real one-node Kubernetes cluster where pods run, for tests and `make cluster`
 * (docs/cluster.md): the control plane of test/support/kube.ts, plus containerd 2.x (runc,
 * CNI bridge/host-local/loopback/portmap), kubelet, kube-scheduler, kube-proxy and CoreDNS, all
 * built on this machine (`make cluster-tools`), and the images of scripts/images.ts imported
 * into containerd (`make images`). One cluster per test file: `startCluster()` in `before`,
 * `stop()` in `after`, `afterEach((t) => cluster.printLogsIfFailed(t))`.
 *
 * Needs root: it creates a bridge, mounts (container root filesystems, volumes, network
 * namespaces) and iptables rules. One cluster per machine at a time (the bridge's name and
 * addresses, and the kubelet's port 10250, are fixed).
 *
 * The network stays on this machine (docs/cluster.md, "Network"): pods and Services live on
 * the bridge promshard0 (10.244.0.0/24; Services 10.96.0.0/16, routed onto the bridge), pods
 * get routes to those two ranges only (no default route), nothing is masqueraded to the
 * outside, forwarding is switched on for the bridge alone, and a mangle FORWARD rule drops
 * anything that would be forwarded between the bridge and another interface. Cluster DNS
 * answers cluster names only; it forwards nothing.
 *
 * Facts that shape this file (kubelet 1.37.2, containerd 2.4.2, runc 1.1.5, CNI plugins 1.1.1):
 * - kubelet >= 1.35 refuses a cgroup v1 host unless `failCgroupV1: false`; 1.37 takes the
 *   cgroup driver from the runtime's RuntimeConfig answer (containerd 2.x gives it: cgroupfs
 *   here, SystemdCgroup = false, there is no systemd).
 * - CoreDNS runs as a process on the host, bound to the bridge's address 10.244.0.1, which is
 *   the kubelet's clusterDNS: pods reach it without a Service hop, and it is up before any pod.
 */
import { execFile as execFileCb, spawn } from "node:child_process";
import { Resolver } from "node:dns/promises";
import { existsSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { appendFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { get as httpsGet } from "node:https";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { IMAGE_NAMES } from "../../scripts/images.ts";
import {
  BRIDGE,
  CLUSTER_DOMAIN,
  cniConfig,
  containerdConfig,
  corefile,
  kubeletConfig,
  kubeProxyConfig,
  NODE_IP,
  NODE_NAME,
  POD_CIDR,
  SERVICE_CIDR,
} from "./cluster-config.ts";
import { type ControlPlane, KUBERNETES_VERSION, startControlPlane } from "./kube.ts";
import { freePort } from "./ports.ts";

const execFile = promisify(execFileCb);

/** The versions tools/cluster.mk builds; keep in step with CONTAINERD_VERSION and COREDNS_VERSION there. */
export const CONTAINERD_VERSION = "2.4.2";
export const COREDNS_VERSION = "1.15.0";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const cacheDir = join(homedir(), ".cache/promshard-tools");
const CLEANUP = join(repo, "scripts/cluster-cleanup.sh");

export { BRIDGE, CLUSTER_DOMAIN, NODE_IP, NODE_NAME, POD_CIDR, SERVICE_CIDR };

export type NodeComponent = "containerd" | "kubelet" | "kube-scheduler" | "kube-proxy" | "coredns";

export interface ClusterOptions {
  /** Images to import (keys of IMAGE_NAMES; each costs 1-5 s); default promshard and prometheus3. pause is always imported. */
  images?: (keyof typeof IMAGE_NAMES)[];
  /** Default 180 s. */
  readyTimeoutMs?: number;
}

export interface Cluster {
  readonly controlPlane: ControlPlane;
  /** Admin kubeconfig (system:masters); its server is https://10.244.0.1:<port>. */
  readonly kubeconfigPath: string;
  /** State dir: configs, logs/<component>.log, containerd's and the kubelet's data. */
  readonly dir: string;
  /** The image references imported, by key. */
  readonly images: Readonly<Record<string, string>>;
  /** Milliseconds: total start to Ready, and of its parts (the control plane and containerd+images run in parallel). */
  readonly timings: Record<string, number>;
  /** As ControlPlane.request / api, as admin. */
  request: ControlPlane["request"];
  api: ControlPlane["api"];
  /** Resolves a name through the cluster DNS (A records, or SRV). */
  resolve(name: string, type?: "A" | "SRV"): Promise<string[]>;
  /** Polls until the pod is Ready; throws with its status and events if it is not within timeoutMs (default 120 s). */
  waitForPodReady(namespace: string, name: string, timeoutMs?: number): Promise<PodStatus>;
  /** A container's log through the API (the kubelet serves it), like `kubectl logs`. */
  podLogs(namespace: string, pod: string, container?: string): Promise<string>;
  /**
   * Packets the forward guard dropped so far (PROMSHARD-FORWARD's DROP rules): anything that
   * tried to cross between the bridge and another interface. 0 when nothing did.
   */
  forwardGuardDrops(): Promise<number>;
  /** Every component's log, or one. */
  logs(component?: NodeComponent): string;
  printLogsIfFailed(t: { name: string; passed?: boolean }, lines?: number): void;
  /** Deletes every pod, stops every component and removes all state (scripts/cluster-cleanup.sh). Idempotent. */
  stop(): Promise<void>;
}

export interface PodStatus {
  phase?: string;
  podIP?: string;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
  containerStatuses?: { name: string; ready: boolean; restartCount: number; state?: Record<string, unknown> }[];
  initContainerStatuses?: { name: string; ready: boolean; restartCount: number; state?: Record<string, unknown> }[];
}

// ---- binaries

interface NodeBinaries {
  kubelet: string;
  kubeScheduler: string;
  kubeProxy: string;
  containerd: string;
  shim: string;
  ctr: string;
  coredns: string;
}

/** Each from PROMSHARD_CLUSTER_ASSETS (colon-separated, the Makefile exports it), else from where `make cluster-tools` builds. */
export function nodeBinaries(): NodeBinaries {
  const listed = (process.env.PROMSHARD_CLUSTER_ASSETS ?? "").split(":").filter((s) => s !== "");
  const dirs =
    listed.length > 0
      ? listed
      : [
          join(cacheDir, `kubernetes-${KUBERNETES_VERSION}/bin`),
          join(cacheDir, `containerd-${CONTAINERD_VERSION}/bin`),
          join(cacheDir, `coredns-${COREDNS_VERSION}/bin`),
        ];
  const find = (name: string) => {
    const found = dirs.map((d) => join(d, name)).find((p) => existsSync(p));
    if (!found) {
      throw new Error(
        `${name} is missing: not in ${dirs.join(", ")}. Run \`make cluster-tools\` (builds kubelet, kube-scheduler, ` +
          `kube-proxy ${KUBERNETES_VERSION}, containerd ${CONTAINERD_VERSION}, CoreDNS ${COREDNS_VERSION} into ${cacheDir} ` +
          "and installs Debian's runc, CNI plugins and iptables), or set PROMSHARD_CLUSTER_ASSETS",
      );
    }
    return found;
  };
  for (const [path, pkg] of [
    ["/usr/sbin/runc", "runc"],
    ["/usr/lib/cni/bridge", "containernetworking-plugins"],
    ["/usr/sbin/iptables", "iptables"],
  ] as const) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run \`make cluster-tools\` (installs Debian's ${pkg})`);
  }
  return {
    kubelet: find("kubelet"),
    kubeScheduler: find("kube-scheduler"),
    kubeProxy: find("kube-proxy"),
    containerd: find("containerd"),
    shim: find("containerd-shim-runc-v2"),
    ctr: find("ctr"),
    coredns: find("coredns"),
  };
}

/** The image archives `make images` writes. */
export function imageArchives(keys: readonly (keyof typeof IMAGE_NAMES)[]): Record<string, string> {
  const dir = process.env.PROMSHARD_IMAGES_DIR ?? join(repo, ".images");
  const out: Record<string, string> = {};
  for (const key of keys) {
    const path = join(dir, `${key}.oci.tar`);
    if (!existsSync(path)) throw new Error(`${path} is missing: run \`make images\` (node scripts/images.ts ${key})`);
    out[key] = path;
  }
  return out;
}

// ---- processes

interface Proc {
  name: NodeComponent;
  pid: number | undefined;
  logPath: string;
  exitStatus(): string | undefined;
  halt(graceMs?: number): Promise<void>;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

async function launch(
  dir: string,
  name: NodeComponent,
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Proc> {
  const logPath = join(dir, "logs", `${name}.log`);
  const fd = openSync(logPath, "a");
  // Detached: its own process group (halt reaches what it forks); output straight to its log
  // file, so `make cluster`'s components keep logging whatever their parent does.
  const child = spawn(bin, args, { cwd: dir, detached: true, stdio: ["ignore", fd, fd], env });
  let exitStatus: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitStatus = signal ? `killed by ${signal}` : `exited with status ${code}`;
      resolve();
    });
    child.once("error", (err) => {
      exitStatus = `failed to start: ${err.message}`;
      resolve();
    });
  });
  child.unref();
  const pid = child.pid;
  if (pid !== undefined) await appendFile(join(dir, "pids"), `${pid}\n`);
  let halting: Promise<void> | undefined;
  return {
    name,
    pid,
    logPath,
    exitStatus: () => exitStatus,
    halt: (graceMs = 10_000) => {
      halting ??= (async () => {
        if (pid === undefined) return;
        if (exitStatus === undefined) {
          killGroup(pid, "SIGTERM");
          const killer = setTimeout(() => killGroup(pid, "SIGKILL"), graceMs);
          await exited;
          clearTimeout(killer);
        }
        killGroup(pid, "SIGKILL");
      })();
      return halting;
    },
  };
}

async function waitFor(proc: Proc | undefined, what: string, deadline: number, check: () => Promise<boolean>) {
  let lastError = "";
  for (;;) {
    const status = proc?.exitStatus();
    if (proc && status !== undefined) throw new Error(`${proc.name} ${status} before ${what}`);
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`no ${what} in time${lastError ? ` (last error: ${lastError})` : ""}`);
    await sleep(200);
  }
}

/** 200 from a component's own HTTPS endpoint (a self-signed certificate: only whether it answers matters). */
function httpsOk(url: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer within 2 s`)));
    req.on("error", reject);
  });
}

const run = async (cmd: string, args: string[]) => (await execFile(cmd, args, { maxBuffer: 64 << 20 })).stdout;
const tail = (text: string, lines: number) => text.trimEnd().split("\n").slice(-lines).join("\n");

// ---- network setup

const sysctlPath = (key: string) => `/proc/sys/${key.replace(/\./g, "/")}`;

async function setUpNetwork(dir: string): Promise<void> {
  // What iptables chains exist now: the cleanup removes only those that appear later.
  const chains: string[] = [];
  for (const cmd of ["iptables", "ip6tables"]) {
    for (const table of ["filter", "nat", "mangle", "raw"]) {
      const out = await run(`${cmd}-save`, ["-t", table]).catch(() => "");
      for (const m of out.matchAll(/^:(\S+) /gm)) chains.push(`${cmd} ${table} ${m[1]}`);
    }
  }
  await writeFile(join(dir, "iptables-chains-before"), `${chains.join("\n")}\n`);
  // bridge-nf-call-iptables: bridged packets pass iptables, so a reply from a Service's pod to
  // a pod on the same bridge is un-NATed. Machine-wide, restored by the cleanup.
  const key = "net.bridge.bridge-nf-call-iptables";
  const before = (await readFile(sysctlPath(key), "utf8").catch(() => "")).trim();
  if (before === "") {
    throw new Error(`${sysctlPath(key)} is missing: the kernel needs br_netfilter (modprobe br_netfilter)`);
  }
  await writeFile(join(dir, "sysctl-before"), `${key} ${before}\n`);
  const sh = async (...args: string[]) => {
    const [cmd, ...rest] = args;
    await execFile(cmd as string, rest).catch((err: Error & { stderr?: string }) => {
      throw new Error(`${args.join(" ")}: ${err.stderr?.trim() || err.message}`);
    });
  };
  await sh("ip", "link", "add", BRIDGE, "type", "bridge");
  await sh("ip", "addr", "add", `${NODE_IP}/24`, "dev", BRIDGE);
  await sh("ip", "link", "set", BRIDGE, "up");
  // Service addresses go onto the bridge, never to the machine's default route, even before
  // kube-proxy has written its rules.
  await sh("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP);
  await sh("sysctl", "-qw", `${key}=1`);
  // Forwarding for packets that arrive on the bridge only (a pod's packet to a Service is
  // DNATed to another pod on the same bridge: routed, bridge to bridge). net.ipv4.ip_forward
  // (every interface) stays as it is.
  await sh("sysctl", "-qw", `net.ipv4.conf.${BRIDGE}.forwarding=1`);
  await sh("sysctl", "-qw", `net.ipv6.conf.${BRIDGE}.disable_ipv6=1`);
  // And whatever the rest of the machine's settings: nothing is forwarded between the bridge
  // and any other interface. mangle FORWARD runs before filter FORWARD, where kube-proxy and
  // portmap put their ACCEPT rules.
  await sh("iptables", "-t", "mangle", "-N", "PROMSHARD-FORWARD");
  await sh("iptables", "-t", "mangle", "-A", "PROMSHARD-FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN");
  await sh("iptables", "-t", "mangle", "-A", "PROMSHARD-FORWARD", "-i", BRIDGE, "-j", "DROP");
  await sh("iptables", "-t", "mangle", "-A", "PROMSHARD-FORWARD", "-o", BRIDGE, "-j", "DROP");
  await sh("iptables", "-t", "mangle", "-I", "FORWARD", "1", "-j", "PROMSHARD-FORWARD");
}

// ---- the cluster

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const t0 = Date.now();
  if (process.getuid?.() !== 0) {
    throw new Error(
      "the one-node cluster needs root (it creates a bridge, mounts and iptables rules); run the cluster tests as root",
    );
  }
  const bins = nodeBinaries();
  const imageKeys = [
    ...new Set<keyof typeof IMAGE_NAMES>(["pause", ...(opts.images ?? (["promshard", "prometheus3"] as const))]),
  ];
  const archives = imageArchives(imageKeys);
  if (existsSync(`/sys/class/net/${BRIDGE}`)) {
    throw new Error(
      `network interface ${BRIDGE} exists: another one-node cluster is running (or a crashed one left it). ` +
        "Stop it with `make cluster-down`",
    );
  }
  const deadline = t0 + (opts.readyTimeoutMs ?? 180_000);
  const dir = mkdtempSync(join(tmpdir(), "promshard-cluster-"));
  for (const d of ["logs", "cni/net.d", "containerd", "kubelet", "pod-logs", "s"])
    await mkdir(join(dir, d), { recursive: true });
  await writeFile(join(dir, "kube-proxy.path"), bins.kubeProxy);
  const watchdog = startWatchdog(dir);
  const procs: Proc[] = [];
  let controlPlane: ControlPlane | undefined;
  const timings: Record<string, number> = {};

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await drain(controlPlane, procs, bins, dir).catch((err) => {
        process.stderr.write(
          `cluster: draining pods failed (${err instanceof Error ? err.message : err}); killing them\n`,
        );
      });
      for (const p of [...procs].reverse()) await p.halt(5_000);
      await controlPlane?.stop();
      await execFile(CLEANUP, [dir, BRIDGE]).catch((err: Error & { stderr?: string }) => {
        process.stderr.write(`cluster: ${CLEANUP} failed: ${err.stderr ?? err.message}\n`);
      });
      if (watchdog !== undefined) killGroup(watchdog, "SIGKILL");
      live.delete(dir);
    })();
    return stopping;
  };
  live.set(dir, stop);
  installExitHooks();

  const logs = (component?: NodeComponent): string => {
    const read = (p: Proc) => {
      try {
        return readFileSync(p.logPath, "utf8");
      } catch {
        return "";
      }
    };
    if (component)
      return procs
        .filter((p) => p.name === component)
        .map(read)
        .join("");
    return procs.map((p) => `===== ${p.name} (pid ${p.pid}) =====\n${read(p)}`).join("\n");
  };

  try {
    await setUpNetwork(dir);
    await writeFile(join(dir, "cni/net.d/10-promshard.conflist"), cniConfig(dir));
    await writeFile(join(dir, "resolv.conf"), `nameserver ${NODE_IP}\n`);
    await writeFile(join(dir, "containerd.toml"), containerdConfig(dir));

    // containerd and the images, while the control plane starts.
    const runtime = (async () => {
      const env = { ...process.env, PATH: `${join(bins.shim, "..")}:/usr/sbin:/usr/bin:/sbin:/bin` };
      const proc = await launch(dir, "containerd", bins.containerd, ["--config", join(dir, "containerd.toml")], env);
      procs.push(proc);
      const ctr = (...args: string[]) =>
        run(bins.ctr, ["--address", join(dir, "containerd.sock"), "--namespace", "k8s.io", ...args]);
      await waitFor(proc, "containerd answering", deadline, async () => {
        await ctr("version");
        return true;
      });
      timings.containerd = Date.now() - t0;
      const t = Date.now();
      // Side by side: each import is reading, hashing and unpacking, and the two cores share them better than one after the other.
      await Promise.all(Object.values(archives).map((archive) => ctr("images", "import", archive)));
      timings.images = Date.now() - t;
    })();
    const plane = (async () => {
      controlPlane = await startControlPlane({
        controllerManager: true,
        address: NODE_IP,
        serviceClusterIpRange: SERVICE_CIDR,
        // The kubelet by its address, never by its node name: that name would be looked up
        // through the machine's resolvers (measured: the API server asked 10.255.255.53 for
        // "promshard-node" to fetch a pod's log), a query leaving the machine.
        apiserverArgs: ["--kubelet-preferred-address-types=InternalIP"],
        readyTimeoutMs: opts.readyTimeoutMs ?? 180_000,
      });
      timings.controlPlane = Date.now() - t0;
      return controlPlane;
    })();
    const [rt, cp] = await Promise.allSettled([runtime, plane]);
    if (rt.status === "rejected") throw rt.reason;
    if (cp.status === "rejected") throw cp.reason;
    const cpl = cp.value;
    const caFile = join(cpl.dir, "pki/ca.crt");

    // The node's credentials: each component as the user its bootstrap RBAC role names.
    const [kubeletKc, schedulerKc, proxyKc, dnsKc] = await Promise.all([
      cpl.clientKubeconfig(`system:node:${NODE_NAME}`, ["system:nodes"], "kubelet.kubeconfig"),
      cpl.clientKubeconfig("system:kube-scheduler", [], "kube-scheduler.kubeconfig"),
      cpl.clientKubeconfig("system:kube-proxy", [], "kube-proxy.kubeconfig"),
      cpl.clientKubeconfig("promshard:coredns", [], "coredns.kubeconfig"),
    ]);
    await grantCoreDns(cpl);

    await writeFile(join(dir, "kubelet.json"), kubeletConfig(dir, caFile));
    const kubelet = await launch(dir, "kubelet", bins.kubelet, [
      `--config=${join(dir, "kubelet.json")}`,
      `--kubeconfig=${kubeletKc}`,
      `--root-dir=${join(dir, "kubelet")}`,
      `--cert-dir=${join(dir, "kubelet/pki")}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${NODE_IP}`,
      "--v=1",
    ]);
    procs.push(kubelet);
    const schedulerPort = await freePort();
    const scheduler = await launch(dir, "kube-scheduler", bins.kubeScheduler, [
      `--kubeconfig=${schedulerKc}`,
      `--authentication-kubeconfig=${schedulerKc}`,
      `--authorization-kubeconfig=${schedulerKc}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${schedulerPort}`,
      "--leader-elect=false",
    ]);
    procs.push(scheduler);
    const [proxyHealth, proxyMetrics, dnsHealth, dnsReady] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    await writeFile(join(dir, "kube-proxy.json"), kubeProxyConfig(proxyKc, proxyHealth, proxyMetrics));
    const proxy = await launch(dir, "kube-proxy", bins.kubeProxy, [`--config=${join(dir, "kube-proxy.json")}`]);
    procs.push(proxy);
    await writeFile(join(dir, "Corefile"), corefile(dnsKc, dnsHealth, dnsReady));
    const coredns = await launch(dir, "coredns", bins.coredns, ["-conf", join(dir, "Corefile")]);
    procs.push(coredns);

    await Promise.all([
      waitFor(kubelet, `node ${NODE_NAME} Ready`, deadline, async () => {
        const node = await cpl.request<{ status?: { conditions?: { type: string; status: string }[] } }>(
          "GET",
          `/api/v1/nodes/${NODE_NAME}`,
        );
        return (
          node.status === 200 && !!node.body.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")
        );
      }).then(() => {
        timings.nodeReady = Date.now() - t0;
      }),
      waitFor(
        proxy,
        "kube-proxy healthy",
        deadline,
        async () => (await fetch(`http://127.0.0.1:${proxyHealth}/healthz`)).ok,
      ),
      waitFor(coredns, "CoreDNS ready", deadline, async () => (await fetch(`http://127.0.0.1:${dnsReady}/ready`)).ok),
      waitFor(scheduler, "kube-scheduler healthy", deadline, () =>
        httpsOk(`https://127.0.0.1:${schedulerPort}/healthz`),
      ),
    ]);
    timings.total = Date.now() - t0;

    const resolver = new Resolver({ timeout: 2_000, tries: 2 });
    resolver.setServers([NODE_IP]);
    const imageNames = Object.fromEntries(imageKeys.map((k) => [k, IMAGE_NAMES[k]]));
    return {
      controlPlane: cpl,
      kubeconfigPath: cpl.kubeconfigPath,
      dir,
      images: imageNames,
      timings,
      request: cpl.request,
      api: cpl.api,
      resolve: async (name, type = "A") => {
        if (type === "SRV") return (await resolver.resolveSrv(name)).map((r) => `${r.name}:${r.port}`);
        return resolver.resolve4(name);
      },
      waitForPodReady: (namespace, name, timeoutMs = 120_000) => waitForPodReady(cpl, namespace, name, timeoutMs),
      podLogs: async (namespace, pod, container) => {
        const q = container ? `?container=${encodeURIComponent(container)}` : "";
        const res = await cpl.request("GET", `/api/v1/namespaces/${namespace}/pods/${pod}/log${q}`);
        if (res.status !== 200)
          throw new Error(`logs of ${namespace}/${pod}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
        return res.text;
      },
      forwardGuardDrops: async () => {
        const out = await run("iptables", ["-t", "mangle", "-L", "PROMSHARD-FORWARD", "-v", "-x", "-n"]);
        return out
          .split("\n")
          .filter((l) => /\sDROP\s/.test(l))
          .reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0]), 0);
      },
      logs,
      printLogsIfFailed: (t, lines = 60) => {
        if (t.passed !== false) return;
        const parts = procs.map((p) => {
          let text = "";
          try {
            text = readFileSync(p.logPath, "utf8");
          } catch {}
          return `----- ${p.name} (last ${lines} lines) -----\n${tail(text, lines)}`;
        });
        process.stderr.write(`\n[cluster logs after failed test "${t.name}" (dir ${dir})]\n${parts.join("\n")}\n`);
        cpl.printLogsIfFailed(t, lines);
      },
      stop,
    };
  } catch (err) {
    const detail = procs.map((p) => {
      let text = "";
      try {
        text = readFileSync(p.logPath, "utf8");
      } catch {}
      return `----- ${p.name}${p.exitStatus() ? ` (${p.exitStatus()})` : ""} -----\n${tail(text, 40)}`;
    });
    await stop();
    throw new Error(
      `cluster did not start: ${err instanceof Error ? err.message : String(err)}\n${detail.join("\n")}`,
      {
        cause: err,
      },
    );
  }
}

/** CoreDNS's kubernetes plugin reads Services, EndpointSlices, pods and namespaces. */
async function grantCoreDns(cp: ControlPlane): Promise<void> {
  await cp.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "promshard:coredns" },
      rules: [
        { apiGroups: [""], resources: ["services", "pods", "namespaces"], verbs: ["list", "watch"] },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      ],
    },
  });
  await cp.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "promshard:coredns" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "promshard:coredns" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "promshard:coredns" }],
    },
  });
}

async function waitForPodReady(
  cp: ControlPlane,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<PodStatus> {
  const until = Date.now() + timeoutMs;
  let last: PodStatus | undefined;
  for (;;) {
    const res = await cp.request<{ status?: PodStatus }>("GET", `/api/v1/namespaces/${namespace}/pods/${name}`);
    if (res.status === 200) {
      last = res.body.status;
      if (last?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) return last;
    }
    if (Date.now() > until) {
      const events = await cp
        .request<{ items?: { reason?: string; message?: string; involvedObject?: { name?: string } }[] }>(
          "GET",
          `/api/v1/namespaces/${namespace}/events`,
        )
        .then((r) =>
          (r.body.items ?? [])
            .filter((e) => e.involvedObject?.name === name)
            .map((e) => `${e.reason}: ${e.message}`)
            .join("\n"),
        )
        .catch(() => "");
      // Each container's log (and its previous run's, after a restart): why it is not ready.
      const containers = [...(last?.initContainerStatuses ?? []), ...(last?.containerStatuses ?? [])];
      const logs: string[] = [];
      for (const c of containers) {
        for (const previous of c.restartCount > 0 ? [false, true] : [false]) {
          const q = `?container=${encodeURIComponent(c.name)}&tailLines=30${previous ? "&previous=true" : ""}`;
          const r = await cp
            .request("GET", `/api/v1/namespaces/${namespace}/pods/${name}/log${q}`)
            .catch(() => undefined);
          logs.push(`--- ${c.name}${previous ? " (previous)" : ""}:\n${r?.text ?? ""}`);
        }
      }
      throw new Error(
        `pod ${namespace}/${name} not Ready within ${timeoutMs / 1000} s; status: ${JSON.stringify(last ?? res.text)}\nevents:\n${events}\nlogs:\n${logs.join("\n")}`,
      );
    }
    await sleep(250);
  }
}

/**
 * Stops every pod the way a node drain would end them, so that the kubelet tears down each
 * sandbox (CNI DEL, network namespace, mounts) itself: no new pods (scheduler and controller
 * manager stopped first), every pod deleted at once, then wait until containerd runs no task.
 */
async function drain(cp: ControlPlane | undefined, procs: Proc[], bins: NodeBinaries, dir: string): Promise<void> {
  const kubelet = procs.find((p) => p.name === "kubelet");
  const containerd = procs.find((p) => p.name === "containerd");
  if (!cp || !kubelet || kubelet.exitStatus() !== undefined || !containerd || containerd.exitStatus() !== undefined)
    return;
  await procs.find((p) => p.name === "kube-scheduler")?.halt(5_000);
  if (cp.pids["kube-controller-manager"] !== undefined) killGroup(cp.pids["kube-controller-manager"], "SIGTERM");
  const pods = await cp.api<{ items: { metadata: { namespace: string; name: string } }[] }>("GET", "/api/v1/pods");
  await Promise.all(
    pods.items.map((p) =>
      cp.request("DELETE", `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`, {
        body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 },
      }),
    ),
  );
  const until = Date.now() + 30_000;
  for (;;) {
    const tasks = await run(bins.ctr, ["--address", join(dir, "containerd.sock"), "-n", "k8s.io", "tasks", "ls", "-q"]);
    if (tasks.trim() === "") return;
    if (Date.now() > until)
      throw new Error(`containers still running after 30 s: ${tasks.trim().split("\n").join(", ")}`);
    await sleep(250);
  }
}

// ---- cleanup however the process ends

const live = new Map<string, () => Promise<void>>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // On exit no async work runs: the watchdog (below) does the cleanup once this process is gone.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      process.removeListener(signal, onSignal);
      Promise.allSettled([...live.values()].map((stop) => stop())).finally(() => process.kill(process.pid, signal));
    };
    process.on(signal, onSignal);
  }
}

/** A shell that, once this Node process is gone without stopping the cluster, runs the cleanup script on its dir. */
function startWatchdog(dir: string): number | undefined {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; [ -d "$1" ] && exec "$2" "$1" "$3"`;
  const child = spawn("sh", ["-c", script, "cluster-watchdog", dir, CLEANUP, BRIDGE], {
    detached: true,
    stdio: "ignore",
  });
  child.unref();
  return child.pid;
}
