/**
 * The one-node cluster's configuration files (test/support/cluster.ts), as pure builders:
 * containerd's, the CNI network's, the kubelet's, kube-proxy's and CoreDNS's. The choices and
 * the facts behind them are in docs/cluster.md; the comments here say why each setting is there.
 */
import { join } from "node:path";
import { IMAGE_NAMES } from "../../scripts/images.ts";

export const BRIDGE = "promshard0";
export const POD_CIDR = "10.244.0.0/24";
/** The bridge's own address: the pods' gateway, the API server's, CoreDNS's and the kubelet's. */
export const NODE_IP = "10.244.0.1";
export const SERVICE_CIDR = "10.96.0.0/16";
export const NODE_NAME = "promshard-node";
export const CLUSTER_DOMAIN = "cluster.local";

export function containerdConfig(dir: string): string {
  const c = join(dir, "containerd");
  return `version = 4
root = '${c}/root'
state = '${c}/state'
# Nothing from /etc/containerd: this containerd is the cluster's own.
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.blockfile', 'io.containerd.snapshotter.v1.erofs', 'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing']

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = '${dir}/containerd.sock'
  [plugins.'io.containerd.server.v1.ttrpc']
    address = '${dir}/containerd.sock.ttrpc'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '${IMAGE_NAMES.pause}'
  [plugins.'io.containerd.cri.v1.runtime']
    # Network namespaces under the state dir, not /var/run/netns: all of the cluster's mounts
    # are under its directory, where the cleanup finds them.
    netns_mounts_under_state_dir = true
    # This machine's root lacks CAP_SYS_RESOURCE (not in the bounding set), so no process may
    # lower its oom_score_adj: runc failed every pause container ("nsexec: failed to update
    # /proc/self/oom_score_adj: Permission denied") at the kubelet's -998. Clamp to containerd's own.
    restrict_oom_score_adj = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '/usr/sbin/runc'
        Root = '${c}/runc'
        # No systemd here: cgroupfs, which containerd reports to the kubelet (RuntimeConfig).
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '${dir}/cni/net.d'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
  [plugins.'io.containerd.shim.v1.manager']
    # Shim sockets here rather than /run/containerd/s (a socket path has at most 107 bytes: the
    # directory must stay short, a sha256 follows).
    socket_dir = '${dir}/s'
`;
}

/** The pod network: a bridge of this machine only, addresses from host-local, no masquerade, no default route. */
export function cniConfig(dir: string): string {
  return `${JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "promshard",
      plugins: [
        {
          type: "bridge",
          bridge: BRIDGE,
          // The harness gives the bridge its address; isGateway would also switch on
          // net.ipv4.ip_forward for every interface of the machine.
          isGateway: false,
          isDefaultGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            dataDir: join(dir, "cni/ipam"),
            ranges: [[{ subnet: POD_CIDR, rangeStart: "10.244.0.10", gateway: NODE_IP }]],
            // Pods reach the pod range (on the bridge) and Services (through the node); no default route.
            routes: [{ dst: SERVICE_CIDR, gw: NODE_IP }],
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  )}\n`;
}

export function kubeletConfig(dir: string, caFile: string): string {
  return `${JSON.stringify(
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      address: NODE_IP,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      healthzPort: 10248,
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: caFile } },
      authorization: { mode: "Webhook" },
      // This host has the v1 hierarchies (cgroup2 mounted beside them): kubelet >= 1.35 refuses
      // to start on them unless told.
      failCgroupV1: false,
      cgroupDriver: "cgroupfs",
      containerRuntimeEndpoint: `unix://${dir}/containerd.sock`,
      clusterDomain: CLUSTER_DOMAIN,
      clusterDNS: [NODE_IP],
      // Pods with dnsPolicy Default get this, not the host's resolvers.
      resolvConf: join(dir, "resolv.conf"),
      podLogsDir: join(dir, "pod-logs"),
      failSwapOn: false,
      // A test machine's disk may be fuller than a node's: never evict, never collect the imported images.
      evictionHard: { "memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      serializeImagePulls: false,
      // Pods start and report sooner than with the production defaults.
      syncFrequency: "10s",
      nodeStatusUpdateFrequency: "4s",
      rotateCertificates: false,
      serverTLSBootstrap: false,
    },
    null,
    2,
  )}\n`;
}

export function kubeProxyConfig(kubeconfig: string, healthzPort: number, metricsPort: number): string {
  return `${JSON.stringify(
    {
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      mode: "iptables",
      clientConnection: { kubeconfig },
      hostnameOverride: NODE_NAME,
      clusterCIDR: POD_CIDR,
      detectLocalMode: "ClusterCIDR",
      bindAddress: NODE_IP,
      healthzBindAddress: `127.0.0.1:${healthzPort}`,
      metricsBindAddress: `127.0.0.1:${metricsPort}`,
      // NodePorts only on the bridge's address, not on the machine's other interfaces; none on
      // localhost (that needs route_localnet for every interface).
      nodePortAddresses: [`${NODE_IP}/32`],
      iptables: { localhostNodePorts: false, syncPeriod: "10s", minSyncPeriod: "0s" },
      // 0: leave the machine's conntrack settings as they are.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
    },
    null,
    2,
  )}\n`;
}

export function corefile(kubeconfig: string, healthPort: number, readyPort: number): string {
  // Only the cluster's zones: any other name is refused, so no query ever leaves this machine.
  return `${CLUSTER_DOMAIN}:53 in-addr.arpa:53 {
    bind ${NODE_IP}
    errors
    health 127.0.0.1:${healthPort}
    ready 127.0.0.1:${readyPort}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa {
        kubeconfig ${kubeconfig}
        pods verified
        ttl 5
    }
    cache 5
    loadbalance
}
`;
}
