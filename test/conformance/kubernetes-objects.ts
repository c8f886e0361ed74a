/**
 * A realistic cluster's worth of objects for the kubernetes_sd differential test: deployments'
 * pods (several containers and ports, init containers, the prometheus.io annotations, owner
 * references, ready and not-ready), services of every type, Endpoints and EndpointSlices with
 * ready, not-ready, serving and terminating addresses, nodes with several address types, and
 * ingresses with TLS, several hosts and paths.
 */
import type { ControlPlane } from "../support/kube.ts";
import { NO_EGRESS_PROXY } from "./generate.ts";

export const NAMESPACES = ["shop", "monitoring"];

const podSpec = (app: string, withInit: boolean) => ({
  ...(withInit
    ? {
        initContainers: [
          { name: "migrate", image: "busybox", ports: [{ name: "init-http", containerPort: 9999, protocol: "TCP" }] },
        ],
      }
    : {}),
  containers: [
    {
      name: app,
      image: "nginx",
      ports: [
        { name: "http", containerPort: 8080, protocol: "TCP" },
        { name: "metrics", containerPort: 9100, protocol: "TCP" },
        { containerPort: 5353, protocol: "UDP" },
      ],
    },
    { name: "sidecar", image: "envoy", ports: [{ name: "admin", containerPort: 9901, protocol: "TCP" }] },
    { name: "noports", image: "busybox" },
  ],
  nodeName: "node-a",
});

interface PodDef {
  ns: string;
  name: string;
  app: string;
  ip: string;
  ready: boolean;
  annotations: Record<string, string>;
  init?: boolean;
}

const PODS: PodDef[] = [
  {
    ns: "shop",
    name: "web-7d9f-abcde",
    app: "web",
    ip: "10.1.0.11",
    ready: true,
    annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "9100" },
    init: true,
  },
  {
    ns: "shop",
    name: "web-7d9f-fghij",
    app: "web",
    ip: "10.1.0.12",
    ready: false,
    annotations: {
      "prometheus.io/scrape": "true",
      "prometheus.io/path": "/custom/metrics",
      "prometheus.io/scheme": "https",
    },
  },
  {
    ns: "shop",
    name: "api-5c4b-klmno",
    app: "api",
    ip: "10.1.0.21",
    ready: true,
    annotations: { "prometheus.io/scrape": "false" },
  },
  {
    ns: "monitoring",
    name: "exporter-0",
    app: "exporter",
    ip: "10.1.1.5",
    ready: true,
    annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "9901", "example.com/team": "o11y" },
  },
];

async function create(cp: ControlPlane, path: string, body: unknown): Promise<void> {
  await cp.api("POST", path, { body });
}

async function status(cp: ControlPlane, path: string, body: unknown): Promise<void> {
  await cp.api("PATCH", `${path}/status`, { body, contentType: "application/merge-patch+json" });
}

export async function createObjects(cp: ControlPlane): Promise<void> {
  for (const ns of NAMESPACES) await create(cp, "/api/v1/namespaces", { metadata: { name: ns, labels: { team: ns } } });

  for (const [name, zone] of [
    ["node-a", "z1"],
    ["node-b", "z2"],
  ] as const) {
    await create(cp, "/api/v1/nodes", {
      metadata: {
        name,
        labels: { "topology.kubernetes.io/zone": zone, "node-role.kubernetes.io/worker": "" },
        annotations: { "node.alpha.kubernetes.io/ttl": "0" },
      },
      spec: { providerID: `test://${name}` },
    });
    await status(cp, `/api/v1/nodes/${name}`, {
      status: {
        addresses: [
          { type: "InternalIP", address: name === "node-a" ? "192.168.0.10" : "192.168.0.11" },
          { type: "ExternalIP", address: name === "node-a" ? "203.0.113.10" : "203.0.113.11" },
          { type: "Hostname", address: name },
          { type: "InternalDNS", address: `${name}.cluster.internal` },
        ],
        daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "ok",
            lastHeartbeatTime: "2026-11-25T00:00:00Z",
            lastTransitionTime: "2026-11-25T00:00:00Z",
          },
        ],
      },
    });
  }

  for (const p of PODS) {
    const base = `/api/v1/namespaces/${p.ns}/pods`;
    await create(cp, base, {
      metadata: {
        name: p.name,
        labels: { app: p.app, "app.kubernetes.io/name": p.app, "pod-template-hash": "7d9f" },
        annotations: p.annotations,
        ownerReferences: [
          {
            apiVersion: "apps/v1",
            kind: "ReplicaSet",
            name: `${p.app}-7d9f`,
            uid: "0b5e7a0e-1111-4c2d-9e3f-000000000001",
            controller: true,
          },
        ],
      },
      spec: podSpec(p.app, p.init ?? false),
    });
    await status(cp, `${base}/${p.name}`, {
      status: {
        phase: "Running",
        podIP: p.ip,
        podIPs: [{ ip: p.ip }],
        hostIP: "192.168.0.10",
        conditions: [{ type: "Ready", status: p.ready ? "True" : "False", lastTransitionTime: "2026-11-25T00:00:00Z" }],
      },
    });
  }

  const svc = (ns: string, name: string, spec: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    create(cp, `/api/v1/namespaces/${ns}/services`, {
      metadata: { name, labels: { app: name }, annotations: { "prometheus.io/probe": "true" }, ...extra },
      spec,
    });
  await svc("shop", "web", {
    type: "ClusterIP",
    selector: { app: "web" },
    ports: [
      { name: "http", port: 80, targetPort: 8080, protocol: "TCP" },
      { name: "metrics", port: 9100, targetPort: "metrics", protocol: "TCP" },
    ],
  });
  await svc("shop", "api", {
    type: "NodePort",
    selector: { app: "api" },
    ports: [{ name: "http", port: 8080, nodePort: 30080 }],
  });
  await svc("shop", "lb", { type: "LoadBalancer", selector: { app: "web" }, ports: [{ port: 443, targetPort: 8080 }] });
  await svc("shop", "external", { type: "ExternalName", externalName: "db.example.com", ports: [{ port: 5432 }] });
  await svc("monitoring", "exporter", {
    clusterIP: "None",
    selector: { app: "exporter" },
    ports: [{ name: "admin", port: 9901 }],
  });
  await status(cp, "/api/v1/namespaces/shop/services/lb", {
    status: { loadBalancer: { ingress: [{ ip: "198.51.100.7" }] } },
  });

  const podRef = (ns: string, name: string) => ({
    kind: "Pod",
    namespace: ns,
    name,
    uid: "0b5e7a0e-2222-4c2d-9e3f-000000000002",
  });
  await create(cp, "/api/v1/namespaces/shop/endpoints", {
    metadata: { name: "web", labels: { app: "web" } },
    subsets: [
      {
        addresses: [{ ip: "10.1.0.11", nodeName: "node-a", targetRef: podRef("shop", "web-7d9f-abcde") }],
        notReadyAddresses: [{ ip: "10.1.0.12", nodeName: "node-a", targetRef: podRef("shop", "web-7d9f-fghij") }],
        ports: [
          { name: "http", port: 8080, protocol: "TCP" },
          { name: "metrics", port: 9100, protocol: "TCP" },
        ],
      },
    ],
  });
  await create(cp, "/api/v1/namespaces/monitoring/endpoints", {
    metadata: { name: "exporter" },
    subsets: [
      {
        addresses: [
          { ip: "10.1.1.5", hostname: "exporter-0", targetRef: podRef("monitoring", "exporter-0") },
          { ip: "10.9.9.9" },
        ],
        ports: [{ name: "admin", port: 9901, protocol: "TCP" }],
      },
    ],
  });

  await create(cp, "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices", {
    metadata: {
      name: "web-abc12",
      labels: { "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "test" },
    },
    addressType: "IPv4",
    endpoints: [
      {
        addresses: ["10.1.0.11"],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: "node-a",
        zone: "z1",
        hostname: "web-a",
        targetRef: podRef("shop", "web-7d9f-abcde"),
      },
      {
        addresses: ["10.1.0.12"],
        conditions: { ready: false, serving: true, terminating: true },
        nodeName: "node-a",
        targetRef: podRef("shop", "web-7d9f-fghij"),
      },
      { addresses: ["10.1.0.99"], conditions: { ready: false } },
    ],
    ports: [
      { name: "http", port: 8080, protocol: "TCP" },
      { name: "metrics", port: 9100, protocol: "TCP", appProtocol: "http" },
    ],
  });

  await create(cp, "/apis/networking.k8s.io/v1/namespaces/shop/ingresses", {
    metadata: { name: "shop", labels: { app: "web" }, annotations: { "kubernetes.io/ingress.class": "nginx" } },
    spec: {
      ingressClassName: "nginx",
      tls: [{ hosts: ["shop.example.com"], secretName: "shop-tls" }],
      rules: [
        {
          host: "shop.example.com",
          http: {
            paths: [
              { path: "/", pathType: "Prefix", backend: { service: { name: "web", port: { number: 80 } } } },
              { path: "/api", pathType: "Prefix", backend: { service: { name: "api", port: { number: 8080 } } } },
            ],
          },
        },
        {
          host: "*.internal.example.com",
          http: {
            paths: [
              { path: "/metrics", pathType: "Exact", backend: { service: { name: "web", port: { name: "metrics" } } } },
            ],
          },
        },
      ],
    },
  });
}

/**
 * One job per role, plus the annotation-driven pods job every cluster runs. The objects' pod,
 * node and ingress addresses are not this machine's, so every job scrapes through the
 * generator's dead loopback proxy: nothing leaves the machine, no name is resolved.
 */
export function kubernetesJobs(access: Record<string, unknown>): Record<string, unknown>[] {
  const sd = (role: string, extra: Record<string, unknown> = {}) => [{ role, ...access, ...extra }];
  return confined([
    { job_name: "k8s-pod", kubernetes_sd_configs: sd("pod", { attach_metadata: { node: true } }) },
    { job_name: "k8s-service", kubernetes_sd_configs: sd("service") },
    { job_name: "k8s-endpoints", kubernetes_sd_configs: sd("endpoints", { attach_metadata: { node: true } }) },
    { job_name: "k8s-endpointslice", kubernetes_sd_configs: sd("endpointslice") },
    { job_name: "k8s-node", kubernetes_sd_configs: sd("node") },
    { job_name: "k8s-ingress", kubernetes_sd_configs: sd("ingress") },
    {
      job_name: "k8s-shop-only",
      kubernetes_sd_configs: sd("pod", {
        namespaces: { names: ["shop"] },
        selectors: [{ role: "pod", label: "app=web" }],
      }),
    },
    {
      job_name: "kubernetes-pods",
      kubernetes_sd_configs: sd("pod"),
      relabel_configs: [
        { source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], action: "keep", regex: "true" },
        {
          source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scheme"],
          action: "replace",
          regex: "(https?)",
          target_label: "__scheme__",
        },
        {
          source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
          action: "replace",
          target_label: "__metrics_path__",
          regex: "(.+)",
        },
        {
          source_labels: ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
          action: "replace",
          regex: "([^:]+)(?::\\d+)?;(\\d+)",
          replacement: "$1:$2",
          target_label: "__address__",
        },
        { action: "labelmap", regex: "__meta_kubernetes_pod_label_(.+)" },
        { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
        { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
        { source_labels: ["__meta_kubernetes_pod_container_name"], target_label: "container" },
      ],
    },
  ]);
}

const confined = (jobs: Record<string, unknown>[]) => jobs.map((j) => ({ ...j, proxy_url: NO_EGRESS_PROXY }));
