/**
 * Time from a new target appearing to its first scrape, end to end with real processes, for
 * each Prometheus binary of prometheusBinaries(): a LocalScaler with one shard (promshard
 * sidecar + Prometheus), a config with one file_sd job over targets.json (scrape_interval 1s),
 * a DiscoveryManager and a Coordinator ticked every TICK_MS (as `promshard local` wires them).
 * A demo exporter is added to targets.json (atomic rename) at t0; then, from t0:
 *
 *   discovered   the coordinator's file_sd provider has it (DiscoveryManager.onChange)
 *   pushed       the coordinator's PUT /api/v1/assignment holding it returned (target files written)
 *   listed       the shard's Prometheus lists it in /api/v1/targets (polled every POLL_MS)
 *   scraped      timestamp of its first `up` sample (Prometheus's own clock: the scrape itself)
 *   queryable    `timestamp(up{instance="…"})` answers (polled every POLL_MS)
 *   runtime up   the sidecar's GET /api/v1/runtime shows it with health "up" (polled every POLL_MS)
 *
 * Settings per row: Prometheus 2.42 with its defaults (its discovery manager sends updates on
 * a fixed 5 s ticker; --scrape.discovery-reload-interval is clamped to >= 5 s, so none is
 * given); 3.x with the default --scrape.discovery-reload-interval=5s, and with 100ms. Between
 * repetitions a seeded random pause of GAP_MIN_MS-GAP_MAX_MS, so t0 falls anywhere in those
 * tickers' periods. Every process is stopped and every temp dir removed, also on failure.
 *
 * REPS=5 TICK_MS=250 node bench/run.ts first-scrape (the defaults).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { dump } from "js-yaml";
import { loadConfigFile } from "../src/config/load.ts";
import { Coordinator } from "../src/coordinator/coordinator.ts";
import { exploreTarget, type ScrapeClient, scrapeClientFor } from "../src/coordinator/explore.ts";
import { httpShardClient } from "../src/coordinator/shard-client.ts";
import type { ShardClient } from "../src/coordinator/shards.ts";
import { type DemoExporter, startDemoExporter } from "../src/demo/exporter.ts";
import { DiscoveryManager } from "../src/discovery/manager.ts";
import { LocalScaler } from "../src/local/scaler.ts";
import { createLogger, parseLogLevel } from "../src/observability/log.ts";
import { dialectFor } from "../src/prom/version.ts";
import { getStrategy } from "../src/scheduler/index.ts";
import { type PrometheusBinary, prometheusBinaries } from "../test/support/prometheus.ts";
import { thanosBinary } from "../test/support/thanos.ts";
import { writeResults } from "./lib.ts";

const REPS = Number(process.env.REPS ?? 5);
const TICK_MS = Number(process.env.TICK_MS ?? 250);
const POLL_MS = 50;
const GAP_MIN_MS = 500;
const GAP_MAX_MS = 7_000;
/** Give up on one repetition after this long. */
const REP_TIMEOUT_MS = 30_000;
const MILESTONES = ["discovered", "pushed", "listed", "scraped", "queryable", "runtime up"] as const;
type Milestone = (typeof MILESTONES)[number];

/** Wall clock with sub-millisecond resolution: Prometheus's sample timestamps are wall clock too. */
const now = () => performance.timeOrigin + performance.now();

let seed = 12_345;
const rand = () => {
  seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

interface Setting {
  readonly bin: PrometheusBinary;
  readonly label: string;
  readonly args: string[];
}

/** ONLY=text keeps the settings whose label contains it. */
function settings(): Setting[] {
  const only = process.env.ONLY;
  return prometheusBinaries()
    .flatMap((bin): Setting[] =>
      bin.major < 3
        ? [{ bin, label: `${bin.version} defaults (SD updates on a fixed 5 s tick)`, args: [] }]
        : [
            { bin, label: `${bin.version} defaults (discovery-reload-interval 5s)`, args: [] },
            {
              bin,
              label: `${bin.version} --scrape.discovery-reload-interval=100ms`,
              args: ["--scrape.discovery-reload-interval=100ms"],
            },
          ],
    )
    .filter((s) => only === undefined || s.label.includes(only));
}

async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<T | undefined> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

const scalers = new Set<LocalScaler>();
process.once("exit", () => {
  for (const s of scalers)
    for (const shard of s.shards())
      for (const pid of [shard.sidecar.pid, shard.prometheus.pid]) if (pid) process.kill(pid, "SIGKILL");
});

type Rep = Record<Milestone, number> & { idleMs: number };

async function runSetting(setting: Setting): Promise<Rep[]> {
  const dir = mkdtempSync(join(tmpdir(), "promshard-bench-first-scrape-"));
  const log = createLogger({ component: "bench", level: parseLogLevel(process.env.LOG_LEVEL ?? "warn") });
  const exporters: DemoExporter[] = [];
  const scrapeClients: ScrapeClient[] = [];
  let scaler: LocalScaler | undefined;
  let discovery: DiscoveryManager | undefined;
  let stopping = false;
  let loop: Promise<void> | undefined;
  try {
    for (let i = 0; i <= REPS; i++) exporters.push(await startDemoExporter({ series: 100 }));
    const address = (e: DemoExporter) => `127.0.0.1:${e.port}`;
    const writeTargets = (n: number) => {
      const tmp = join(dir, ".targets.json.tmp");
      writeFileSync(tmp, JSON.stringify([{ targets: exporters.slice(0, n).map(address) }]));
      renameSync(tmp, join(dir, "targets.json"));
    };
    writeTargets(1);
    const configFile = join(dir, "prometheus.yml");
    writeFileSync(
      configFile,
      dump({
        global: { scrape_interval: "1s", scrape_timeout: "1s" },
        scrape_configs: [{ job_name: "demo", file_sd_configs: [{ files: ["targets.json"], refresh_interval: "5m" }] }],
      }),
    );
    const config = loadConfigFile(configFile, dialectFor(setting.bin.version));
    discovery = new DiscoveryManager({ log });
    discovery.apply(config);
    scaler = new LocalScaler({
      configFile,
      dataDir: join(dir, "data"),
      prometheusBin: setting.bin.bin,
      thanosBin: thanosBinary(),
      prometheusArgs: setting.args,
      log,
    });
    scalers.add(scaler);
    await scaler.scaleTo(1);
    const shard = scaler.shards()[0]!;
    const token = scaler.token;

    // What the current repetition waits for; callbacks fill it in.
    let watching: { address: string; t0: number; at: Partial<Record<Milestone, number>> } | undefined;
    const mark = (m: Milestone, at = now()) => {
      if (watching && watching.at[m] === undefined) watching.at[m] = at - watching.t0;
    };
    discovery.onChange((job) => {
      if (!watching || job !== "demo") return;
      const addr = watching.address;
      if (discovery!.groups("demo").some((g) => g.targets.some((t) => t.__address__ === addr))) mark("discovered");
    });
    const client = httpShardClient(shard.sidecarUrl, token);
    let lastPush = now();
    const shardClient: ShardClient = {
      runtime: () => client.runtime(),
      assign: async (version, targets, delta) => {
        await client.assign(version, targets, delta);
        lastPush = now();
        const sent = delta ? Object.values(delta.set).flat() : typeof targets === "function" ? targets() : targets;
        if (watching && sent.some((t) => t.labels.__address__ === watching!.address)) mark("pushed");
      },
    };
    const scrapeClient = scrapeClientFor(config.scrapeConfigs[0]!, config.directory);
    scrapeClients.push(scrapeClient);
    const coordinator = new Coordinator(config, {
      discovery,
      strategy: getStrategy("series-balanced")!,
      scaler,
      shard: () => shardClient,
      explore: async (target, job) => (await exploreTarget(target, job, scrapeClient)).series,
      budget: 1_000_000,
      minShards: 1,
      maxShards: 1,
      scaleDownDelayMs: 3_600_000,
      log,
    });
    loop = (async () => {
      while (!stopping) {
        try {
          await discovery!.ready();
          await coordinator.tick();
        } catch (err) {
          log.error({ err: (err as Error).message }, "tick failed");
        }
        await sleep(TICK_MS);
      }
    })();

    const prom = shard.prometheusUrl;
    const firstUp = async (addr: string): Promise<number | undefined> => {
      const q = encodeURIComponent(`timestamp(up{instance="${addr}"})`);
      const r = await getJson<{ data: { result: { value: [number, string] }[] } }>(`${prom}/api/v1/query?query=${q}`);
      const v = r?.data.result[0]?.value[1];
      return v === undefined ? undefined : Number(v) * 1000;
    };
    // Steady state: the first exporter scraped.
    const ready = now();
    while ((await firstUp(address(exporters[0]!))) === undefined) {
      if (now() - ready > 60_000) throw new Error(`${setting.label}: the first target was not scraped in 60 s`);
      await sleep(100);
    }

    const reps: Rep[] = [];
    for (let i = 1; i <= REPS; i++) {
      await sleep(GAP_MIN_MS + rand() * (GAP_MAX_MS - GAP_MIN_MS));
      const addr = address(exporters[i]!);
      const rep = { address: addr, t0: now(), at: {} as Partial<Record<Milestone, number>> };
      const idleMs = rep.t0 - lastPush;
      watching = rep;
      writeTargets(i + 1);
      const done = () => MILESTONES.every((m) => rep.at[m] !== undefined);
      const poll = async (fn: () => Promise<void>) => {
        while (!done() && now() - rep.t0 < REP_TIMEOUT_MS) {
          await fn();
          await sleep(POLL_MS);
        }
      };
      await Promise.all([
        poll(async () => {
          if (rep.at.listed !== undefined) return;
          const t = now();
          const r = await getJson<{ data: { activeTargets: { labels: Record<string, string> }[] } }>(
            `${prom}/api/v1/targets?state=active`,
          );
          if (r?.data.activeTargets.some((x) => x.labels.instance === addr)) mark("listed", t);
        }),
        poll(async () => {
          if (rep.at.queryable !== undefined) return;
          const t = now();
          const ts = await firstUp(addr);
          if (ts !== undefined) {
            mark("queryable", t);
            rep.at.scraped = ts - rep.t0;
          }
        }),
        poll(async () => {
          if (rep.at["runtime up"] !== undefined) return;
          const t = now();
          const r = await getJson<{ targets: { address: string; health: string | null }[] }>(
            `${shard.sidecarUrl}/api/v1/runtime`,
            { authorization: `Bearer ${token}` },
          );
          if (r?.targets.some((x) => x.address === addr && x.health === "up")) mark("runtime up", t);
        }),
      ]);
      watching = undefined;
      const missing = MILESTONES.filter((m) => rep.at[m] === undefined);
      if (missing.length > 0) {
        throw new Error(`${setting.label}, repetition ${i}: no ${missing.join(", ")} within ${REP_TIMEOUT_MS} ms`);
      }
      reps.push({ ...(rep.at as Record<Milestone, number>), idleMs });
    }
    return reps;
  } finally {
    stopping = true;
    await loop;
    discovery?.stop();
    if (scaler) {
      await scaler.stopAll();
      scalers.delete(scaler);
    }
    for (const c of scrapeClients) await c.dispatcher.close();
    for (const e of exporters) await e.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const ms = (x: number) => Math.round(x);

/** The phase that ends at each milestone, and the milestone it starts from. */
const PHASES: { name: string; from: Milestone | "t0"; to: Milestone }[] = [
  { name: "t0 → discovered (coordinator's file_sd watch)", from: "t0", to: "discovered" },
  { name: "discovered → pushed (tick, explore, PUT)", from: "discovered", to: "pushed" },
  { name: "pushed → listed (Prometheus file_sd + SD/scrape throttles)", from: "pushed", to: "listed" },
  { name: "listed → scraped (scrape offset within the 1s interval)", from: "listed", to: "scraped" },
  { name: "scraped → queryable", from: "scraped", to: "queryable" },
  { name: "scraped → runtime up (sidecar report)", from: "scraped", to: "runtime up" },
];

async function main(): Promise<void> {
  const all = [];
  const table = [];
  const perRep = [];
  for (const s of settings()) {
    const started = now();
    const reps = await runSetting(s);
    const at = (r: Rep, m: Milestone | "t0") => (m === "t0" ? 0 : r[m]);
    for (const [i, r] of reps.entries()) {
      perRep.push({
        setting: s.label,
        rep: i + 1,
        "idle before (s since last push)": Number((r.idleMs / 1000).toFixed(1)),
        "pushed → listed ms": ms(r.listed - r.pushed),
        "t0 → scraped ms": ms(r.scraped),
      });
    }
    const durations = PHASES.map((p) => reps.map((r) => at(r, p.to) - at(r, p.from)));
    const total = reps.map((r) => r.scraped);
    // The phases on the path to the first scrape (the last two come after it).
    const chain = durations.slice(0, 4).map(median);
    const dominant = PHASES[chain.indexOf(Math.max(...chain))]!.name;
    for (const m of MILESTONES) {
      const xs = reps.map((r) => r[m]);
      const phase = PHASES.find((p) => p.to === m)!;
      const d = durations[PHASES.indexOf(phase)]!;
      table.push({
        setting: s.label,
        "since t0": m,
        "median ms": ms(median(xs)),
        "max ms": ms(Math.max(...xs)),
        phase: phase.name,
        "phase median ms": ms(median(d)),
        "phase max ms": ms(Math.max(...d)),
      });
    }
    all.push({
      setting: s.label,
      prometheus: s.bin.version,
      args: s.args,
      reps,
      firstScrapeMedianMs: median(total),
      firstScrapeMaxMs: Math.max(...total),
      dominantPhase: dominant,
      seconds: (now() - started) / 1000,
    });
    console.log(
      `${s.label}: first scrape ${ms(median(total))} ms median, ${ms(Math.max(...total))} ms max over ${reps.length}; ` +
        `largest phase: ${dominant} (${((now() - started) / 1000).toFixed(0)} s)`,
    );
  }
  console.log(
    `\nnew target → first scrape; ${REPS} repetitions per setting, coordinator tick every ${TICK_MS} ms, ` +
      `polls every ${POLL_MS} ms, pauses ${GAP_MIN_MS}-${GAP_MAX_MS} ms between repetitions`,
  );
  console.table(table);
  console.log("per repetition: Prometheus's SD delay against the time since its previous target-file change");
  console.table(perRep);
  const path = writeResults("first-scrape", { reps: REPS, tickMs: TICK_MS, pollMs: POLL_MS, settings: all });
  console.log(`results: ${path}`);
}

await main();
