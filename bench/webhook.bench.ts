/**
 * The admission webhook: latency at a fixed request rate and maximum throughput over HTTPS on
 * loopback, the pure patch builder alone, and certificate generation (node-forge certificates,
 * keys from Node's crypto or from node-forge).
 *
 * The server runs in a child process pinned to one core (taskset, when there is one), this
 * process, the load generator, on another. The load is open-loop: request i is due at
 * start + i/rate whatever happened before, and its latency is counted from that due time, so
 * a slow answer shows up in the latencies of the requests queued behind it (no coordinated
 * omission); at most MAX_IN_FLIGHT are outstanding, later ones count as dropped.
 * Goal (issue 6): p99 < 5 ms at 500 requests/s on one core.
 *
 *   node bench/webhook.bench.ts            everything
 *   node bench/webhook.bench.ts --serve=webhook|floor   (internal) the server child
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { load } from "js-yaml";
import { Pool } from "undici";
import { createLogger } from "../src/observability/log.ts";
import { createRegistry } from "../src/observability/metrics.ts";
import { createCA, issueServing, newKeyPair } from "../src/webhook/certs.ts";
import { injectPod } from "../src/webhook/inject.ts";
import { review } from "../src/webhook/review.ts";
import { startWebhookServer } from "../src/webhook/server.ts";
import { DEFAULT_SETTINGS } from "../src/webhook/settings.ts";
import { measure, printTable, writeResults } from "./lib.ts";

const DAY = 24 * 3600 * 1000;
const settings = { ...DEFAULT_SETTINGS, nativeSidecar: true };
const fixture = (name: string) =>
  load(readFileSync(new URL(`../test/fixtures/webhook/${name}.yaml`, import.meta.url), "utf8")) as {
    metadata: { annotations?: Record<string, string> };
  };

function reviewOf(pod: unknown) {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace: "monitoring",
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:statefulset-controller" },
      object: pod,
      dryRun: false,
    },
  };
}

// ---- the load generator

const MAX_IN_FLIGHT = 256;

function pin(pid: number, core: number): boolean {
  const r = spawnSync("taskset", ["-p", "-c", String(core), String(pid)], { stdio: "ignore" });
  return r.status === 0;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

interface Child {
  proc: ChildProcess;
  ask<T>(m: string): Promise<T>;
}

async function startServer(kind: "webhook" | "floor"): Promise<Child & { port: number; ca: string; pinned: boolean }> {
  // PROMSHARD_BENCH_SERVER_FLAGS: Node flags for the server child (e.g. --max-semi-space-size=32).
  const flags = (process.env.PROMSHARD_BENCH_SERVER_FLAGS ?? "").split(" ").filter((f) => f !== "");
  const proc = spawn(process.execPath, [...flags, fileURLToPath(import.meta.url), `--serve=${kind}`], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ask = <T>(m: string) =>
    new Promise<T>((resolve) => {
      proc.once("message", (x) => resolve(x as T));
      proc.send(m);
    });
  const ready = await new Promise<{ port: number; ca: string }>((resolve) =>
    proc.once("message", (x) => resolve(x as never)),
  );
  // PROMSHARD_BENCH_PIN=0 leaves placement to the kernel (for comparison).
  const pinned = process.env.PROMSHARD_BENCH_PIN !== "0" && pin(proc.pid!, 0) && pin(process.pid, 1);
  return { proc, ask, ...ready, pinned };
}

async function fixedRate(pool: Pool, body: Buffer, rate: number, seconds: number) {
  const total = Math.round(rate * seconds);
  // Preallocated, and no promise kept per request: the generator's own garbage collections
  // would otherwise show up as server latency.
  /** From the due time (what a client waiting in line sees). */
  const latencies = new Float64Array(total);
  /** How late the generator sent (its own noise, part of `latencies`). */
  const lag = new Float64Array(total);
  let done = 0;
  let sentCount = 0;
  let dropped = 0;
  let failed = 0;
  let inFlight = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((r) => {
    allDone = r;
  });
  const clientGc: number[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) clientGc.push(e.duration);
  });
  gcObserver.observe({ entryTypes: ["gc"] });
  const options = { path: "/mutate", method: "POST" as const, headers: { "content-type": "application/json" }, body };
  const start = performance.now() + 50;
  let generating = true;
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    // Sleep most of the wait, then yield until the due time: never early.
    const wait = due - performance.now();
    if (wait > 2) await new Promise((r) => setTimeout(r, wait - 1.5));
    while (performance.now() < due) await new Promise((r) => setImmediate(r));
    if (inFlight >= MAX_IN_FLIGHT) {
      dropped++;
      continue;
    }
    inFlight++;
    lag[sentCount++] = performance.now() - due;
    pool.request(options).then(
      async (res) => {
        await res.body.dump();
        if (res.statusCode !== 200) failed++;
        latencies[done++] = performance.now() - due;
        if (--inFlight === 0 && !generating) allDone();
      },
      () => {
        failed++;
        if (--inFlight === 0 && !generating) allDone();
      },
    );
  }
  generating = false;
  if (inFlight > 0) await finished;
  gcObserver.disconnect();
  const elapsed = (performance.now() - start) / 1000;
  const sorted = (a: Float64Array, n: number) => Array.from(a.subarray(0, n)).sort((x, y) => x - y);
  return {
    total,
    dropped,
    failed,
    achieved: done / elapsed,
    latencies: sorted(latencies, done),
    lag: sorted(lag, sentCount),
    clientGcMaxMs: Math.max(0, ...clientGc),
  };
}

async function closedLoop(pool: Pool, body: Buffer, concurrency: number, seconds: number) {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const res = await pool.request({
          path: "/mutate",
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        await res.body.dump();
        done++;
      }
    }),
  );
  return done / seconds;
}

async function main(): Promise<void> {
  const injectable = fixture("kube-prometheus");
  const plain = structuredClone(injectable);
  delete plain.metadata.annotations;
  const bodies = { inject: JSON.stringify(reviewOf(injectable)), plain: JSON.stringify(reviewOf(plain)) };
  const buffers = { inject: Buffer.from(bodies.inject), plain: Buffer.from(bodies.plain) };

  // 1. The pure parts, in this process.
  const pure = [
    await measure("review(): pod not opted in (baseline)", () => review(JSON.parse(bodies.plain), settings)),
    await measure("review(): kube-prometheus pod injected", () => review(JSON.parse(bodies.inject), settings)),
    await measure("injectPod() alone, kube-prometheus", () => injectPod(injectable, settings)),
    await measure("JSON.parse of the review alone", () => JSON.parse(bodies.inject)),
  ];
  console.log(`\nPure admission work (review JSON ${bodies.inject.length} bytes):`);
  printTable(
    pure.map((m) => ({ ...m })),
    "review(): pod not opted in (baseline)",
  );

  // 2. Over HTTPS: first the platform's floor (node:https answering a fixed AdmissionReview,
  // no parsing), then the webhook.
  const rateRows = [];
  let throughput: { concurrency: number; "reviews/s": number }[] = [];
  let pinned = false;
  for (const [kind, cases] of [
    ["floor", [["node:https, fixed answer (floor)", buffers.inject, 500]]],
    [
      "webhook",
      [
        ["webhook, not opted in", buffers.plain, 500],
        ["webhook, injected", buffers.inject, 500],
        ["webhook, injected", buffers.inject, 1000],
        ["webhook, injected", buffers.inject, 2000],
      ],
    ],
  ] as const) {
    const server = await startServer(kind);
    pinned = server.pinned;
    const pool = new Pool(`https://127.0.0.1:${server.port}`, { connect: { ca: server.ca }, connections: 8 });
    await fixedRate(pool, buffers.inject, 300, 2); // warm-up: JIT, TLS sessions, connections
    for (const [name, body, rate] of cases) {
      await server.ask("reset");
      const seconds = 10;
      const r = await fixedRate(pool, body, rate, seconds);
      const st = await server.ask<{
        cpuMs: number;
        loopP99Ms: number;
        loopMaxMs: number;
        gcCount: number;
        gcMaxMs: number;
        handlerP99Ms?: number;
      }>("cpu");
      rateRows.push({
        server: name,
        "rate/s": rate,
        "achieved/s": Math.round(r.achieved),
        "p50 ms": +percentile(r.latencies, 0.5).toFixed(2),
        "p90 ms": +percentile(r.latencies, 0.9).toFixed(2),
        "p99 ms": +percentile(r.latencies, 0.99).toFixed(2),
        "p99.9 ms": +percentile(r.latencies, 0.999).toFixed(2),
        "max ms": +(r.latencies.at(-1) ?? Number.NaN).toFixed(2),
        "send lag p99 ms": +percentile(r.lag, 0.99).toFixed(2),
        "server CPU %": Math.round((st.cpuMs / (seconds * 1000)) * 100),
        "server loop delay p99/max ms": `${st.loopP99Ms.toFixed(1)}/${st.loopMaxMs.toFixed(1)}`,
        "server GCs, max pause ms": `${st.gcCount}, ${st.gcMaxMs.toFixed(1)}`,
        "handler p99 ms": st.handlerP99Ms === undefined ? "-" : `≤ ${st.handlerP99Ms}`,
        "client GC max ms": +r.clientGcMaxMs.toFixed(1),
        dropped: r.dropped,
        failed: r.failed,
      });
    }
    if (kind === "webhook") {
      throughput = [];
      for (const concurrency of [1, 8, 32]) {
        throughput.push({
          concurrency,
          "reviews/s": Math.round(await closedLoop(pool, buffers.inject, concurrency, 5)),
        });
      }
    }
    await pool.close();
    const exited = new Promise((r) => server.proc.once("exit", r));
    server.proc.send("stop");
    await exited;
  }
  console.log(
    `\nAdmission latency at a fixed rate (open loop, 10 s each, 8 connections; ${pinned ? "server pinned to CPU 0, load generator to CPU 1" : "not pinned: no taskset"}):`,
  );
  console.table(rateRows);
  console.log("\nMaximum throughput, injected pod (closed loop, 5 s each):");
  console.table(throughput);

  // 3. Certificates.
  const now = new Date();
  const ca = await createCA({ commonName: "bench", validityMs: DAY, now });
  const fixedKey = await newKeyPair("node");
  const names = { commonName: "w", dnsNames: ["a", "a.b", "a.b.svc", "a.b.svc.cluster.local"], validityMs: DAY, now };
  const certRows = [
    await measure("RSA-2048 key: Node crypto, async (used; baseline)", () => newKeyPair("node"), { iterations: 20 }),
    await measure("RSA-2048 key: node-forge default (Node's sync generator)", () => newKeyPair("forge"), {
      iterations: 20,
    }),
    await measure("RSA-2048 key: node-forge pure JavaScript", () => newKeyPair("forge-pure-js"), {
      iterations: 5,
      warmup: 1,
    }),
    await measure(
      "CA + serving certificate (2 keys, 2 signatures)",
      async () => {
        const c = await createCA({ commonName: "bench", validityMs: DAY, now });
        await issueServing(c, names);
      },
      { iterations: 20 },
    ),
    await measure("serving certificate from an existing CA", () => issueServing(ca, names), { iterations: 20 }),
    await measure(
      "forge signing + PEM only (key given)",
      async () => {
        await issueServing(ca, { ...names, key: fixedKey });
      },
      { iterations: 50 },
    ),
  ];
  console.log("\nCertificate generation:");
  printTable(
    certRows.map((m) => ({ ...m })),
    "RSA-2048 key: Node crypto, async (used; baseline)",
  );
  console.log(
    "Goal: p99 < 5 ms at 500 reviews/s on one core. Key generation: Node's async generator is used; forge's default calls Node's synchronous one (same speed, blocks the event loop); pure-JavaScript forge is the slow path.",
  );
  writeResults("webhook", { pinned, pure, rateRows, throughput, certRows });
}

// ---- the server child

async function serve(kind: string): Promise<void> {
  const now = new Date();
  const ca = await createCA({ commonName: "bench-ca", validityMs: DAY, now });
  const serving = await issueServing(ca, {
    commonName: "bench",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    validityMs: DAY,
    now,
  });
  const registry = kind === "floor" ? undefined : createRegistry();
  const server =
    kind === "floor"
      ? await floorServer(serving.certPem, serving.keyPem)
      : await startWebhookServer({
          listen: "127.0.0.1:0",
          tls: { cert: serving.certPem, key: serving.keyPem },
          settings,
          log: createLogger({ component: "webhook", level: "silent" }),
          registry: registry!,
        });
  const buckets = async (): Promise<Map<number, number>> => {
    const m = new Map<number, number>();
    if (!registry) return m;
    const metric = (await registry.getMetricsAsJSON()).find(
      (x) => x.name === "promshard_webhook_admission_duration_seconds",
    );
    for (const v of (metric as { values?: { metricName?: string; labels: { le?: number | string }; value: number }[] })
      ?.values ?? []) {
      if (!v.metricName?.endsWith("_bucket")) continue;
      const le = v.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(v.labels.le);
      m.set(le, (m.get(le) ?? 0) + v.value);
    }
    return m;
  };
  let base = await buckets();
  let cpu = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const gcPauses: number[] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push(e.duration);
  }).observe({ entryTypes: ["gc"] });
  process.on("message", async (m: string) => {
    if (m === "reset") {
      cpu = process.cpuUsage();
      base = await buckets();
      loop.reset();
      gcPauses.length = 0;
      process.send!({ reset: true });
    } else if (m === "cpu") {
      const u = process.cpuUsage(cpu);
      const now_ = await buckets();
      const les = [...now_.keys()].sort((a, b) => a - b);
      const count = (le: number) => (now_.get(le) ?? 0) - (base.get(le) ?? 0);
      const total = count(Number.POSITIVE_INFINITY);
      const p99le = total > 0 ? les.find((le) => count(le) >= 0.99 * total) : undefined;
      process.send!({
        handlerP99Ms: p99le === undefined ? undefined : p99le * 1000,
        cpuMs: (u.user + u.system) / 1000,
        loopP99Ms: loop.percentile(99) / 1e6,
        loopMaxMs: loop.max / 1e6,
        gcCount: gcPauses.length,
        gcMaxMs: Math.max(0, ...gcPauses),
      });
    } else if (m === "stop") {
      await server.stop(1000);
      process.exit(0);
    }
  });
  // The parent gone (finished or crashed): go too.
  process.on("disconnect", () => process.exit(0));
  process.send!({ port: server.port, ca: ca.certPem });
}

/** The floor: TLS, HTTP and a fixed answer, nothing else. */
async function floorServer(cert: string, key: string): Promise<{ port: number; stop(ms: number): Promise<void> }> {
  const answer = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true },
  });
  const server = createHttpsServer({ cert, key }, (req, res) => {
    req.on("data", () => {});
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(answer);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const serveArg = process.argv.find((a) => a.startsWith("--serve"));
if (serveArg) await serve(serveArg.split("=")[1] ?? "webhook");
else await main();
