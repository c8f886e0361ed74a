/**
 * The global view while targets move between shards, measured through Thanos Query.
 *
 * Per Prometheus version: two shards (external labels shard=0/1, replica=0) with sidecars, a
 * stable target on shard 0 and a target that moves back and forth the way promshard moves it:
 * the new shard gets it, then, once the new shard has scraped it, the old shard's file_sd
 * drops it and the old Prometheus writes end-of-run staleness markers (timestamped one
 * interval after its last scrape, written ~2.1 intervals after it let go). `count` over the
 * job is evaluated every 250 ms by three queriers over the same shards:
 * - chain: --deduplication.func=chain, replica labels replica and shard (promshard's flags):
 *   must never be below or above the true count;
 * - penalty: Thanos's default dedup, same labels: the measured hole this test proves exists;
 * - no shard label: chain, replica label `replica` only: the two shards' copies are two
 *   series, the count doubles during the overlap.
 */
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { PrometheusBinary } from "../support/prometheus.ts";
import { type ThanosQuery, ThanosStack } from "../support/thanos.ts";
import { bins, JOB, SCRAPE_INTERVAL_S, type Shard, seriesOf, startExporters, startShard } from "./fixtures.ts";

const SERIES = 100;
const MOVES = 8;
const COUNT = `count({job="${JOB}"})`;
const POLL_MS = 250;

interface Tally {
  evaluations: number;
  below: number;
  above: number;
  errors: number;
  /** Longest run of consecutive evaluations below the true count, and its length in ms. */
  longestHole: number;
  longestHoleMs: number;
  holesPerMove: number[];
}

/** Evaluates COUNT through each querier every POLL_MS until stopped, tallying misses per move. */
function poll(queriers: Record<string, ThanosQuery>, truth: number, move: () => number) {
  const tallies: Record<string, Tally & { run: number; runStart: number }> = {};
  for (const k of Object.keys(queriers)) {
    tallies[k] = {
      evaluations: 0,
      below: 0,
      above: 0,
      errors: 0,
      longestHole: 0,
      longestHoleMs: 0,
      holesPerMove: Array(MOVES).fill(0),
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
            if (m >= 0 && m < MOVES) t.holesPerMove[m]!++;
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
    stop: async (): Promise<Record<string, Tally>> => {
      running = false;
      await loop;
      return Object.fromEntries(
        Object.entries(tallies).map(([k, { run: _r, runStart: _s, ...t }]) => [k, t]),
      ) as Record<string, Tally>;
    },
  };
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

async function measure(stack: ThanosStack, bin: PrometheusBinary, t: TestContext) {
  const [stable, moving] = await startExporters(stack, 2, SERIES);
  const shards = await Promise.all([
    startShard(stack, bin, { shard: "0", replica: "0" }, [stable!, moving!]),
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
  const truth = seriesOf(2, SERIES);
  for (const x of Object.values(queriers)) {
    await waitFor(`${x.name}: the true count`, async () => (await x.value(COUNT)) === truth, 60_000);
  }
  // Let the first shard's samples of the moving target age past any start-up effect.
  await sleep(2_000);

  let move = -1;
  const p = poll(queriers, truth, () => move);
  const timings: string[] = [];
  const held = [[stable!, moving!], [] as string[]];
  let from = 0;
  for (move = 0; move < MOVES; move++) {
    const to = 1 - from;
    const t0 = Date.now();
    held[to] = [...held[to]!, moving!];
    await shards[to]!.setTargets(held[to]!);
    await waitFor(
      `move ${move}: shard ${to} scrapes the target`,
      async () => ((await lastGoodScrape(shards[to]!, moving!)) ?? 0) > t0,
    );
    const t1 = Date.now();
    held[from] = held[from]!.filter((x) => x !== moving);
    await shards[from]!.setTargets(held[from]!);
    await waitFor(
      `move ${move}: shard ${from} lets it go`,
      async () => (await lastGoodScrape(shards[from]!, moving!)) === undefined,
    );
    const t2 = Date.now();
    // The markers come ~2.1 intervals after the old shard let go; watch well past them.
    await sleep(4 * SCRAPE_INTERVAL_S * 1000);
    timings.push(`${t1 - t0}+${t2 - t1} ms`);
    from = to;
  }
  move = MOVES;
  const tallies = await p.stop();
  t.diagnostic(`Prometheus ${v}: ${MOVES} moves (new shard scraped + old shard let go: ${timings.join(", ")})`);
  for (const [k, r] of Object.entries(tallies)) {
    t.diagnostic(
      `Prometheus ${v}, ${k}: ${r.evaluations} evaluations, ${r.below} below the true count (per move ${r.holesPerMove}), ` +
        `longest hole ${r.longestHole} evaluations (~${r.longestHoleMs} ms), ${r.above} above, ${r.errors} errors`,
    );
  }
  return tallies;
}

describe("the global count through Thanos Query while a target moves between shards", () => {
  const stack = new ThanosStack();
  after(() => stack.stop());
  before(() => {
    stack.bin; // fails early, with the command that builds it, when thanos is missing
  });

  it(
    `is exact at every evaluation with chain dedup over shard and replica (${bins()
      .map((b) => b.version)
      .join(", ")})`,
    { timeout: 600_000 },
    (t: TestContext) =>
      stack.withLogs(async () => {
        // Both versions at once: independent shards and queriers, half the wall time.
        const results = await Promise.all(bins().map((bin) => measure(stack, bin, t)));
        for (const [i, r] of results.entries()) {
          const v = bins()[i]!.version;
          assert.ok(
            r.chain!.evaluations >= MOVES * 20,
            `${v}: too few evaluations to mean anything: ${r.chain!.evaluations}`,
          );
          assert.equal(r.chain!.errors, 0, `${v}: chain: query errors`);
          assert.equal(r.chain!.below, 0, `${v}: chain: evaluations below the true count (a hole)`);
          assert.equal(r.chain!.above, 0, `${v}: chain: evaluations above the true count (a double count)`);
          // The measurement sees holes where they exist: penalty dedup shows them.
          assert.ok(r.penalty!.below > 0, `${v}: penalty dedup showed no hole; the measurement may be blind`);
          // Without shard as a replica label both copies count during the overlap.
          assert.ok(r.noShard!.above > 0, `${v}: the count never doubled without the shard replica label`);
        }
      }),
  );
});
