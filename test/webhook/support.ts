/** Shared by the webhook tests: fixtures, settings, applying a result's patch, pod invariants. */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { load } from "js-yaml";
import { Agent, request } from "undici";
import { sidecarCommand } from "../../src/cli/sidecar.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { createCA, type Issued, issueServing } from "../../src/webhook/certs.ts";
import type { InjectResult } from "../../src/webhook/inject.ts";
import type { Container, Pod } from "../../src/webhook/pod.ts";
import { startWebhookServer, type WebhookServer, type WebhookServerOptions } from "../../src/webhook/server.ts";
import { DEFAULT_SETTINGS, type InjectorSettings } from "../../src/webhook/settings.ts";
import { applyPatch, type Op } from "./json-patch.ts";

const FIXTURES = new URL("../fixtures/webhook/", import.meta.url);

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => f.replace(/\.yaml$/, ""))
    .sort();
}

export function fixture(name: string): Pod {
  return load(readFileSync(new URL(`${name}.yaml`, FIXTURES), "utf8")) as Pod;
}

export const settings: InjectorSettings = { ...DEFAULT_SETTINGS, version: "9.9.9-test", nativeSidecar: true };

export function injected(pod: unknown, result: InjectResult): Pod {
  assert.equal(result.outcome, "injected", JSON.stringify(result));
  if (result.outcome !== "injected") throw new Error("unreachable");
  return applyPatch(pod as Pod, result.patch as Op[]);
}

export function allContainers(pod: Pod): Container[] {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
}

export function container(pod: Pod, name: string): Container {
  const c = allContainers(pod).find((x) => x.name === name);
  assert.ok(c, `container ${name} in ${allContainers(pod).map((x) => x.name)}`);
  return c;
}

/** What the API server's validation would refuse, checked on an injected pod. */
export function assertValidPod(pod: Pod): void {
  const names = allContainers(pod).map((c) => c.name);
  assert.deepEqual(names, [...new Set(names)], "container names are unique");
  const volumes = (pod.spec.volumes ?? []).map((v) => v.name);
  assert.deepEqual(volumes, [...new Set(volumes)], "volume names are unique");
  for (const c of allContainers(pod)) {
    const paths = (c.volumeMounts ?? []).map((m) => m.mountPath);
    assert.deepEqual(paths, [...new Set(paths)], `mount paths of ${c.name} are unique`);
    for (const m of c.volumeMounts ?? []) assert.ok(volumes.includes(m.name), `volume ${m.name} of ${c.name} exists`);
    const portNames = (c.ports ?? []).flatMap((p) => (p.name ? [p.name] : []));
    for (const n of portNames) assert.ok(n.length <= 15 && /^[a-z0-9-]+$/.test(n), `port name ${n}`);
  }
  const ports = allContainers(pod).flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
  assert.deepEqual(ports, [...new Set(ports)], "container ports are unique in the pod");
}

/** The sidecar's args as `promshard sidecar` parses them (strict: an unknown flag throws). */
export function sidecarFlags(c: Container): Record<string, string | boolean | undefined> {
  assert.equal(c.args?.[0], "sidecar");
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const [n, f] of Object.entries(sidecarCommand.flags)) options[n] = { type: f.type };
  const { values, positionals } = parseArgs({ args: c.args!.slice(1), options, strict: true, allowPositionals: true });
  assert.deepEqual(positionals, []);
  return values as Record<string, string | boolean | undefined>;
}

// ---- a running webhook with generated certificates

export const DAY = 24 * 3600 * 1000;

export async function testCA(name = "test"): Promise<Issued> {
  return createCA({ commonName: `${name}-ca`, validityMs: 30 * DAY, now: new Date() });
}

export async function testServing(ca: Issued): Promise<Issued> {
  return issueServing(ca, {
    commonName: "webhook",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    validityMs: 7 * DAY,
    now: new Date(),
  });
}

export interface TestWebhook {
  server: WebhookServer;
  ca: Issued;
  dir: string;
  certFile: string;
  keyFile: string;
  /** Every log line, parsed. */
  logs: Record<string, unknown>[];
  /** An undici dispatcher trusting `ca` (replace with trust() for another one). */
  agent: Agent;
  trust(caPem: string): Agent;
  /** POST a body to /mutate. */
  post(
    body: unknown,
    opts?: { contentType?: string; raw?: boolean; agent?: Agent },
  ): Promise<{ status: number; body: Json }>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function startTestWebhook(opts: Partial<WebhookServerOptions> = {}): Promise<TestWebhook> {
  const dir = mkdtempSync(join(tmpdir(), "promshard-webhook-"));
  const ca = await testCA();
  const serving = await testServing(ca);
  const certFile = join(dir, "tls.crt");
  const keyFile = join(dir, "tls.key");
  writeFileSync(certFile, serving.certPem);
  writeFileSync(keyFile, serving.keyPem);
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n")) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  const server = await startWebhookServer({
    listen: "127.0.0.1:0",
    metricsListen: "127.0.0.1:0",
    tls: { certFile, keyFile },
    settings,
    log: createLogger({ component: "webhook", level: "debug", destination }),
    registry: createRegistry({ defaultMetrics: false }),
    pollMs: 60_000,
    ...opts,
  });
  const agents: Agent[] = [];
  const trust = (caPem: string) => {
    const a = new Agent({ connect: { ca: caPem }, connections: 16 });
    agents.push(a);
    return a;
  };
  const agent = trust(ca.certPem);
  return {
    server,
    ca,
    dir,
    certFile,
    keyFile,
    logs,
    agent,
    trust,
    async post(body, o = {}) {
      const res = await request(`${server.url}/mutate`, {
        method: "POST",
        dispatcher: o.agent ?? agent,
        headers: { "content-type": o.contentType ?? "application/json" },
        body: o.raw ? (body as string | Buffer) : JSON.stringify(body),
      });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // keep text
      }
      return { status: res.statusCode, body: parsed as Json };
    },
    async metric(name, labels = {}) {
      const res = await request(`${server.metricsUrl}/metrics`);
      const text = await res.body.text();
      let sum = 0;
      for (const line of text.split("\n")) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
          sum += Number(line.split(" ").pop());
      }
      return sum;
    },
    async close() {
      await server.stop(1000);
      await Promise.all(agents.map((a) => a.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An AdmissionReview v1 for a pod CREATE. */
// biome-ignore lint/suspicious/noExplicitAny: tests walk into JSON answers freely
export type Json = any;

export function podReview(pod: unknown, extra: Record<string, unknown> = {}): Record<string, Json> {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      requestResource: { group: "", version: "v1", resource: "pods" },
      name: "prometheus-k8s-0",
      namespace: "monitoring",
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:statefulset-controller", groups: [] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
      ...extra,
    },
  };
}
