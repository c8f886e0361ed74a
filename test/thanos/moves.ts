/**
 * The global view while a target moves between shards, measured through Thanos Query; used by
 * test/thanos/moves.test.ts (hard bounds) and bench/thanos-moves.bench.ts (the figures).
 *
 * Two shards of one Prometheus version (external labels shard=0/1, replica=0) with sidecars, a
 * stable target on shard 0 and a target that moves back and forth the way promshard moves it:
 * the new shard gets it, then, once the new shard has scraped it, the old shard's file_sd
 * drops it and the old Prometheus writes end-of-run staleness markers (timestamped one
 * interval after its last scrape, written ~2.1 intervals after it let go). `count` over the
 * job is evaluated every 250 ms by three queriers over the same shards (several targets can
 * move together, each with its own scrape phases):
 * - chain: --deduplication.func=chain, replica labels replica and shard (promshard's flags);
 * - penalty: Thanos's default dedup, same labels;
 * - noShard: chain, replica label `replica` only, so the two shards' copies are two series.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { demoExposition } from "../../src/demo/exporter.ts";
import type { PrometheusBinary } from "../support/prometheus.ts";
import type { ThanosQuery, ThanosStack } from "../support/thanos.ts";
import { JOB, SCRAPE_INTERVAL_S, type Shard, seriesOf, startShard } from "./fixtures.ts";

const COUNT = `count({job="${JOB}"})`;
export const POLL_MS = 250;

export interface Tally {
  evaluations: number;
  below: number;
  above: number;
  errors: number;
  /** Longest run of consecutive evaluations below the true count, and its length in ms. */
  longestHole: number;
  longestHoleMs: number;
  holesPerMove: number[];
}

export interface MoveOptions {
  moves: number;
  /** Series each target exposes (Prometheus adds 5). */
  series?: number;
  /** How long the moving targets take to answer a scrape (slow targets). */
  scrapeDelayMs?: number;
  /** Targets that move together (default 1): each has its own scrape phase on each shard. */
  moving?: number;
}

export interface MoveResult {
  version: string;
  tallies: Record<"chain" | "penalty" | "noShard", Tally>;
  /** Per move: until the new shard scraped the target + until the old shard let it go, ms. */
  timings: [number, number][];
}

/** Evaluates COUNT through each querier every POLL_MS until stopped, tallying misses per move. */
function poll(queriers: Record<string, ThanosQuery>, truth: number, moves: number, move: () => number) {
  const tallies: Record<string, Tally & { run: number; runStart: number }> = {};
  for (const k of Object.keys(queriers)) {
    tallies[k] = {
      evaluations: 0,
      below: 0,
      above: 0,
      errors: 0,
      longestHole: 0,
      longestHoleMs: 0,
      holesPerMove: Array(moves).fill(0),
      run: 0,
      runStart: 0,
    };
  }
  let running = true;
  const loop = (async () => {
    let next = Date.now();
    while (running) {
      await Promise.all(
        Object.entries(queriers).map(async ([k, x]) => {
          const t = tallies[k]!;
          const at = Date.now();
          let v: number | undefined;
          try {
            v = (await x.value(COUNT)) ?? 0;
          } catch {
            t.errors++;
            return;
          }
          t.evaluations++;
          if (v < truth) {
            t.below++;
            const m = move();
            if (m >= 0 && m < moves) t.holesPerMove[m]!++;
            if (t.run === 0) t.runStart = at;
            t.run++;
            if (t.run > t.longestHole) {
              t.longestHole = t.run;
              t.longestHoleMs = at - t.runStart + POLL_MS;
            }
          } else {
            t.run = 0;
            if (v > truth) t.above++;
          }
        }),
      );
      next += POLL_MS;
      await sleep(Math.max(0, next - Date.now()));
    }
  })();
  return {
    stop: async (): Promise<MoveResult["tallies"]> => {
      running = false;
      await loop;
      return Object.fromEntries(
        Object.entries(tallies).map(([k, { run: _r, runStart: _s, ...t }]) => [k, t]),
      ) as MoveResult["tallies"];
    },
  };
}

/** A demo target answering after `delayMs`; closed with the stack. */
async function startTarget(stack: ThanosStack, series: number, delayMs: number): Promise<string> {
  let scrapes = 0;
  const server = createServer((_req, res) => {
    const body = demoExposition(series, ++scrapes);
    const send = () => res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" }).end(body);
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  stack.track(`target ${address}`, {
    logs: () => "",
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
  return address;
}

/** The time of the shard's last successful scrape of `target`, or undefined. */
async function lastGoodScrape(s: Shard, target: string): Promise<number | undefined> {
  const { activeTargets } = await s.prom.targets();
  const t = activeTargets.find((a) => a.labels.instance === target);
  return t && t.health === "up" ? Date.parse(t.lastScrape) : undefined;
}

async function waitFor(what: string, pred: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

export async function measureMoves(stack: ThanosStack, bin: PrometheusBinary, o: MoveOptions): Promise<MoveResult> {
  const series = o.series ?? 100;
  const stable = await startTarget(stack, series, 0);
  const moving = await Promise.all(
    Array.from({ length: o.moving ?? 1 }, () => startTarget(stack, series, o.scrapeDelayMs ?? 0)),
  );
  const shards = await Promise.all([
    startShard(stack, bin, { shard: "0", replica: "0" }, [stable, ...moving]),
    startShard(stack, bin, { shard: "1", replica: "0" }, []),
  ]);
  const endpoints = shards.map((s) => ({ address: s.sidecar.grpcAddress, strict: true }));
  const v = bin.version;
  const [chain, penalty, noShard] = await Promise.all([
    stack.query({ name: `query chain (${v})`, endpoints, dedupFunc: "chain" }),
    stack.query({ name: `query penalty (${v})`, endpoints, dedupFunc: "penalty" }),
    stack.query({ name: `query chain, replica label only (${v})`, endpoints, replicaLabels: ["replica"] }),
  ]);
  const queriers = { chain: chain!, penalty: penalty!, noShard: noShard! };
  const truth = seriesOf(1 + moving.length, series);
  for (const x of Object.values(queriers)) {
    await waitFor(`${x.name}: the true count`, async () => (await x.value(COUNT)) === truth, 60_000);
  }
  // Let the first shard's samples of the moving target age past any start-up effect.
  await sleep(2_000);

  let move = -1;
  const p = poll(queriers, truth, o.moves, () => move);
  const timings: [number, number][] = [];
  const held = [[stable, ...moving], [] as string[]];
  let from = 0;
  for (move = 0; move < o.moves; move++) {
    const to = 1 - from;
    const t0 = Date.now();
    held[to] = [...held[to]!, ...moving];
    await shards[to]!.setTargets(held[to]!);
    for (const m of moving) {
      await waitFor(
        `move ${move}: shard ${to} scrapes ${m}`,
        async () => ((await lastGoodScrape(shards[to]!, m)) ?? 0) > t0,
      );
    }
    const t1 = Date.now();
    held[from] = held[from]!.filter((x) => !moving.includes(x));
    await shards[from]!.setTargets(held[from]!);
    for (const m of moving) {
      await waitFor(
        `move ${move}: shard ${from} lets ${m} go`,
        async () => (await lastGoodScrape(shards[from]!, m)) === undefined,
      );
    }
    timings.push([t1 - t0, Date.now() - t1]);
    // The markers come ~2.1 intervals after the old shard let go; watch well past them.
    await sleep(4 * SCRAPE_INTERVAL_S * 1000);
    from = to;
  }
  move = o.moves;
  return { version: v, tallies: await p.stop(), timings };
}

/** One line per querier, for test diagnostics and the benchmark's log. */
export function describeResult(r: MoveResult): string[] {
  const moves = r.timings.map(([a, b]) => `${a}+${b}`).join(", ");
  return [
    `Prometheus ${r.version}: ${r.timings.length} moves (ms until the new shard scraped + until the old shard let go: ${moves})`,
    ...Object.entries(r.tallies).map(
      ([k, t]) =>
        `Prometheus ${r.version}, ${k}: ${t.evaluations} evaluations, ${t.below} below the true count ` +
        `(per move ${t.holesPerMove}), longest hole ${t.longestHole} evaluations (~${t.longestHoleMs} ms), ` +
        `${t.above} above, ${t.errors} errors`,
    ),
  ];
}
