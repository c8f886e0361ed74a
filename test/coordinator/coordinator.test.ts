/**
 * The control loop with in-memory shards (a unit test: the real sidecars and Prometheus take
 * part in the end-to-end tests). Each fake shard "scrapes" what it was assigned at the end of
 * a tick, so moves, scale-up and scale-down play out tick by tick.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Coordinator, type Scaler, type ShardClient, type ShardRuntime } from "../../src/coordinator/coordinator.ts";
import { DiscoveryManager } from "../../src/discovery/manager.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { getStrategy } from "../../src/scheduler/index.ts";

class FakeShard implements ShardClient {
  assigned: string[] = [];
  scraped = new Set<string>();
  version = -1;
  readonly series: Map<string, number>;
  constructor(series: Map<string, number>) {
    this.series = series;
  }
  async runtime(): Promise<ShardRuntime> {
    return {
      healthy: true,
      version: this.version,
      assigned: this.assigned,
      targets: this.assigned.map((id) => ({
        id,
        up: this.scraped.has(id),
        series: this.scraped.has(id) ? this.series.get(id)! : null,
      })),
      headSeries: null,
    };
  }
  async assign(version: number, targets: readonly { labels: Record<string, string> }[]) {
    assert.ok(version > this.version, "versions only grow");
    this.version = version;
    this.assigned = targets.map((t) => idOf.get(t.labels.__address__!)!);
    this.scraped = new Set([...this.scraped].filter((id) => this.assigned.includes(id)));
  }
  scrape() {
    for (const id of this.assigned) this.scraped.add(id);
  }
}

const idOf = new Map<string, string>();

function setup(addresses: string[], seriesOf: (addr: string) => number) {
  const config = parseConfig(
    `scrape_configs:\n- job_name: demo\n  static_configs: [{targets: ${JSON.stringify(addresses)}}]\n`,
    {
      dialect: dialectFor("3.16"),
    },
  );
  const discovery = new DiscoveryManager();
  discovery.apply(config);
  const series = new Map<string, number>();
  const shards: FakeShard[] = [];
  const scaler: Scaler & { history: number[] } = {
    history: [],
    current: () => shards.length,
    async scaleTo(n) {
      this.history.push(n);
      while (shards.length < n) shards.push(new FakeShard(series));
      shards.length = n;
    },
  };
  let now = 0;
  const coordinator = new Coordinator(config, {
    discovery,
    strategy: getStrategy("series-balanced")!,
    scaler,
    shard: (i) => shards[i]!,
    explore: async (t) => {
      idOf.set(t.internalLabels.__address__!, t.id);
      series.set(t.id, seriesOf(t.internalLabels.__address__!));
      return series.get(t.id)!;
    },
    budget: 30_000,
    minShards: 1,
    maxShards: 20,
    scaleDownDelayMs: 1000,
    now: () => now,
  });
  const tick = async () => {
    const r = await coordinator.tick();
    for (const s of shards) s.scrape();
    now += 600;
    return r;
  };
  return { coordinator, discovery, shards, scaler, tick, config };
}

describe("coordinator control loop", () => {
  it("S1: 6 targets of 10045 series with a 30000 budget end on 3 shards with 2 targets each", async () => {
    const addrs = Array.from({ length: 6 }, (_, i) => `demo-${i}:9100`);
    const { shards, tick } = setup(addrs, () => 10045);
    for (let i = 0; i < 4; i++) await tick();
    assert.equal(shards.length, 3);
    assert.deepEqual(
      shards.map((s) => s.assigned.length),
      [2, 2, 2],
    );
  });

  it("every target is assigned to some shard at every tick while moves and scaling happen", async () => {
    const addrs = Array.from({ length: 9 }, (_, i) => `t-${i}:1`);
    let grow = false;
    const { shards, tick } = setup(addrs, (a) => (grow && a === "t-0:1" ? 25_000 : 10_000));
    for (let i = 0; i < 3; i++) await tick();
    grow = true;
    for (const s of shards) s.series.clear();
    for (let i = 0; i < 8; i++) {
      await tick();
      const everywhere = new Set(shards.flatMap((s) => s.assigned));
      assert.equal(everywhere.size, 9, `tick ${i}: every target is on a shard`);
    }
  });

  it("S6: a restarted coordinator reads the assignment back and moves nothing", async () => {
    const addrs = Array.from({ length: 6 }, (_, i) => `r-${i}:1`);
    const first = setup(addrs, () => 10045);
    for (let i = 0; i < 4; i++) await first.tick();
    const before = first.shards.map((s) => [...s.assigned]);
    const versions = first.shards.map((s) => s.version);
    const again = new Coordinator(first.config, {
      discovery: first.discovery,
      strategy: getStrategy("series-balanced")!,
      scaler: first.scaler,
      shard: (i) => first.shards[i]!,
      explore: async () => 10045,
      budget: 30_000,
      minShards: 1,
      maxShards: 20,
      scaleDownDelayMs: 1000,
    });
    const r = await again.tick();
    assert.deepEqual(r.pushed, [], "nothing pushed");
    assert.deepEqual(
      first.shards.map((s) => s.assigned),
      before,
    );
    assert.deepEqual(
      first.shards.map((s) => s.version),
      versions,
    );
  });

  it("scales down only after the highest shard stayed empty for the delay", async () => {
    const addrs = Array.from({ length: 6 }, (_, i) => `d-${i}:1`);
    const { shards, tick, discovery, config } = setup(addrs, () => 10045);
    for (let i = 0; i < 4; i++) await tick();
    assert.equal(shards.length, 3);
    discovery.apply(
      parseConfig(
        `scrape_configs:\n- job_name: demo\n  static_configs: [{targets: ${JSON.stringify(addrs.slice(0, 2))}}]\n`,
        { dialect: config.dialect },
      ),
    );
    await tick();
    assert.equal(shards.length, 3, "not at once");
    for (let i = 0; i < 8; i++) await tick();
    assert.equal(shards.length, 1);
    assert.equal(new Set(shards.flatMap((s) => s.assigned)).size, 2);
  });
});
