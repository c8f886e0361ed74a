/**
 * The control loop with in-memory shards (a unit test: the real sidecars and Prometheus take
 * part in the end-to-end tests). Each fake shard "scrapes" what it was assigned at the end of
 * a tick, so moves, scale-up and scale-down play out tick by tick.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePartId } from "../../src/contract/assignment.ts";
import { Coordinator } from "../../src/coordinator/coordinator.ts";
import { parseConfig } from "../../src/prom/config.ts";
import { getStrategy } from "../../src/scheduler/index.ts";
import { type FakeShard, idOf, setup, unreachable } from "./fake-shards.ts";

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

  it("S5: a down shard keeps its targets for the grace period, then they move only into room", async () => {
    const addrs = Array.from({ length: 6 }, (_, i) => `g-${i}:1`);
    const { shards, tick, events } = setup(addrs, () => 10045, { downGraceMs: 3000 });
    for (let i = 0; i < 4; i++) await tick();
    const held = [...shards[1]!.assigned];
    shards[1]!.down = true;
    for (let i = 0; i < 4; i++) {
      const r = await tick(); // 2.4 s of the 3 s grace
      for (const s of r.shards) if (s.id !== 1) assert.deepEqual(s.targets.length, 2, "nobody else takes them yet");
    }
    assert.ok(events.some((e) => e.kind === "shard" && /shard 1 is down/.test(e.text)));
    for (let i = 0; i < 6; i++) {
      const r = await tick();
      for (const s of r.shards) if (s.id !== 1) assert.ok(s.series <= 30_000, `shard ${s.id} within budget`);
    }
    const elsewhere = shards.filter((_, i) => i !== 1).flatMap((s) => s.assigned);
    for (const id of held) assert.ok(elsewhere.includes(id), "its targets are scraped elsewhere after the grace");
    assert.equal(shards.length, 4, "a new shard, not an overfull neighbour");
    shards[1]!.down = false;
    // Back and empty below the new top shard: the top drains into it, so the count can come down.
    for (let i = 0; i < 8; i++) await tick();
    assert.equal(shards.length, 3);
    assert.deepEqual(shards[1]!.assigned.sort(), held.sort());
    const all = shards.flatMap((s) => s.assigned);
    assert.equal(new Set(all).size, 6);
    assert.equal(all.length, 6, "each on one shard");
  });

  it("S5: a shard that keeps restarting gets a lower budget; no other shard goes over its own", async () => {
    const addrs = Array.from({ length: 4 }, (_, i) => `c-${i}:1`);
    const { shards, tick, restarts, events } = setup(addrs, (a) => (a === "c-0:1" ? 12_000 : 8_000), {
      crashWindowMs: 60_000,
    });
    for (let i = 0; i < 4; i++) await tick();
    assert.equal(shards.length, 2);
    const crashing = shards.findIndex((s) => s.assigned.length > 1);
    const heldSeries = (await tick()).shards[crashing]!.series;
    restarts[crashing] = 1;
    await tick();
    restarts[crashing] = 2;
    const r = await tick();
    assert.equal(r.shards[crashing]!.effectiveBudget, Math.floor(heldSeries * 0.8));
    assert.ok(events.some((e) => e.kind === "warning" && /restarted 2 times/.test(e.text)));
    for (let i = 0; i < 4; i++) {
      const t = await tick();
      for (const s of t.shards) assert.ok(s.series <= s.effectiveBudget || s.targets.length === 1, `shard ${s.id}`);
    }
    assert.ok((await tick()).shards[crashing]!.series <= Math.floor(heldSeries * 0.8));
  });

  it("stops drained shards only once their data is safe, or after the wait with a warning", async () => {
    const addrs = Array.from({ length: 6 }, (_, i) => `s-${i}:1`);
    let safe = false;
    const asked: number[] = [];
    const { shards, tick, discovery, config, events } = setup(addrs, () => 10045, {
      scaleDownWaitMs: 5000,
      dataSafe: async (id) => {
        asked.push(id);
        return safe;
      },
    });
    for (let i = 0; i < 4; i++) await tick();
    discovery.apply(
      parseConfig(
        `scrape_configs:\n- job_name: demo\n  static_configs: [{targets: ${JSON.stringify(addrs.slice(0, 2))}}]\n`,
        {
          dialect: config.dialect,
        },
      ),
    );
    for (let i = 0; i < 6; i++) await tick();
    assert.equal(shards.length, 3, "drained, but the data is not safe yet");
    assert.ok(asked.includes(2) && asked.includes(1), "both drained shards save their data at once");
    safe = true;
    await tick();
    assert.equal(shards.length, 1, "both go together once safe");

    // Never safe: they go when the wait is over, and the coordinator says so.
    const again = setup(addrs, () => 10045, { scaleDownWaitMs: 3000, dataSafe: async () => false });
    for (let i = 0; i < 4; i++) await again.tick();
    again.discovery.apply(
      parseConfig(
        `scrape_configs:\n- job_name: demo\n  static_configs: [{targets: ${JSON.stringify(addrs.slice(0, 2))}}]\n`,
        {
          dialect: config.dialect,
        },
      ),
    );
    for (let i = 0; i < 6; i++) await again.tick();
    assert.equal(again.shards.length, 3);
    for (let i = 0; i < 6; i++) await again.tick();
    assert.equal(again.shards.length, 1);
    assert.ok(again.events.some((e) => e.kind === "warning" && /not confirmed safe/.test(e.text)));
    void events;
  });
});

describe("coordinator and a sidecar that leaves targets out", () => {
  it("applies the rest, tells one warning event, and does not push the same set every round", async () => {
    const addrs = Array.from({ length: 3 }, (_, i) => `p-${i}:1`);
    const { shards, tick, events } = setup(addrs, () => 1000);
    await tick();
    assert.equal(shards.length, 1);
    shards[0]!.refuse.add("p-1:1");
    shards[0]!.assigned = shards[0]!.assigned.filter((_, i) => i === 0);
    await tick();
    const pushes = shards[0]!.pushes;
    assert.equal(shards[0]!.assigned.length, 2, "the valid targets are applied");
    const warnings = events.filter((e) => e.kind === "warning" && /left out 1 of 3/.test(e.text));
    assert.equal(warnings.length, 1, JSON.stringify(events));
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(shards[0]!.pushes, pushes, "not pushed again while the shard's answer stands");
    assert.equal(events.filter((e) => /left out/.test(e.text)).length, 1);
  });
});

describe("a move to a target that is down", () => {
  it("ends after the move timeout: the old shard lets go, with a warning event", async () => {
    const addrs = Array.from({ length: 9 }, (_, i) => `m-${i}:1`);
    // Rounds are 600 ms apart: the move times out after 5.
    const { shards, tick, events } = setup(addrs, () => 10_000, { moveTimeoutMs: 3000 });
    try {
      for (let i = 0; i < 3; i++) await tick();
      // One target grows past what its shard has room for: something moves.
      const grown = shards[0]!.assigned[0]!;
      shards[0]!.series.set(grown, 25_000);
      const moving = new Set<string>();
      // The moving targets go down the moment they move: no new shard ever scrapes them.
      const r = await tick(() => {
        const seen = new Map<string, number>();
        for (const s of shards) for (const id of s.assigned) seen.set(id, (seen.get(id) ?? 0) + 1);
        for (const [id, n] of seen) if (n > 1) moving.add(id);
        for (const id of moving) {
          unreachable.add(id);
          for (const s of shards) s.scraped.delete(id);
        }
      });
      assert.ok(r.overlapping > 0 && moving.size > 0, "something moved");
      const held = () => shards.flatMap((s) => s.assigned).filter((id) => moving.has(id)).length;
      for (let i = 0; i < 3; i++) await tick();
      assert.ok(held() > moving.size, "within the timeout the old shard keeps it");
      for (let i = 0; i < 10; i++) await tick();
      assert.equal(held(), moving.size, "each moving target on one shard only");
      assert.ok(
        events.some((e) => e.kind === "warning" && /let it go/.test(e.text)),
        JSON.stringify(events),
      );
    } finally {
      unreachable.clear();
    }
  });
});

describe("a shard whose Prometheus rejected the generated config", () => {
  it("is told: one warning event per error, the reason in the status, one event when it recovers", async () => {
    const { shards, tick, events } = setup(["x-0:1"], () => 1000);
    await tick();
    shards[0]!.reloadError =
      "Prometheus rejected the generated config: error loading rules: bad.yml; Prometheus runs the previous config again";
    const r = await tick();
    assert.match(r.shards[0]!.reloadError ?? "", /rejected the generated config/);
    await tick();
    assert.equal(events.filter((e) => e.kind === "warning" && /shard 0: Prometheus rejected/.test(e.text)).length, 1);
    shards[0]!.reloadError = null;
    await tick();
    assert.ok(events.some((e) => /shard 0: Prometheus runs the generated config again/.test(e.text)));
  });
});

describe("a target that outgrows a shard and shrinks again", () => {
  /** Whether every series of `id` is scraped somewhere: whole, or every part of one split. */
  const covered = (shards: readonly FakeShard[], id: string) => {
    const scraped = shards.flatMap((s) => [...s.scraped]);
    if (scraped.includes(id)) return true;
    const byParts = new Map<number, Set<number>>();
    for (const x of scraped) {
      const p = parsePartId(x);
      if (p?.target === id) byParts.set(p.parts, (byParts.get(p.parts) ?? new Set()).add(p.part));
    }
    return [...byParts].some(([k, got]) => got.size === k);
  };

  it("is split and merged with its series scraped at every round (old items stay until the new are scraped)", async () => {
    let big = 20_000;
    const { shards, tick } = setup(["g:1", "s:1"], (a) => (a === "g:1" ? big : 1_000));
    for (let i = 0; i < 3; i++) await tick();
    const g = [...idOf].find(([a]) => a === "g:1")![1];
    assert.ok(covered(shards, g));
    for (const [size, parts] of [
      [80_000, 3],
      [20_000, 1],
      [80_000, 3],
    ] as const) {
      // The shards measure the new size at their next scrape (and an explore finds it too).
      big = size;
      shards[0]!.series.set(g, size);
      for (let i = 0; i < 8; i++) {
        await tick(() => assert.ok(covered(shards, g), `${size} series, round ${i}: the target is scraped`));
      }
      const items = shards.flatMap((s) => s.assigned).filter((x) => (parsePartId(x)?.target ?? x) === g);
      assert.equal(items.length, parts, `${size} series: ${items.join(", ")}`);
      for (const s of shards)
        assert.ok(
          s.assigned.reduce((n, id) => n + s.seriesOf(id), 0) <= 30_000,
          `a shard holds ${s.assigned.join(", ")}`,
        );
    }
  });
});

describe("delta pushes", () => {
  /** Nine targets on three shards, then one grows: moves follow; returns the pushes per kind. */
  const grow = async (deltas: boolean) => {
    const addrs = Array.from({ length: 9 }, (_, i) => `dp-${deltas}-${i}:1`);
    const { shards, tick, scaler } = setup(addrs, () => 9_000);
    const old = scaler.scaleTo.bind(scaler);
    // Every shard is of one kind, including the ones scaled up later.
    scaler.scaleTo = async (n) => {
      await old(n);
      for (const s of shards) s.deltas = deltas;
    };
    for (let i = 0; i < 4; i++) await tick();
    const whole = shards.map((s) => s.pushes - s.deltaPushes);
    const grown = shards[0]!.assigned[0]!;
    shards[0]!.series.set(grown, 25_000);
    let r = await tick();
    for (let i = 0; i < 6; i++) r = await tick();
    // What each shard holds is what the round planned, with every payload the target's own.
    for (const s of r.shards) {
      const shard = shards[s.id]!;
      assert.deepEqual([...shard.assigned].sort(), s.targets.map((t) => t.id).sort(), `shard ${s.id}`);
      for (const t of shard.held) assert.equal(idOf.get(t.labels.__address__!), t.id);
    }
    return {
      deltas: shards.reduce((n, s) => n + s.deltaPushes, 0),
      // Over the shards that had their first push before the growth (a new shard's first is whole).
      wholeAfterFirst: whole.reduce((n, w, i) => n + shards[i]!.pushes - shards[i]!.deltaPushes - w, 0),
    };
  };

  it("a move reaches sidecars that take deltas as deltas, the first push of each shard whole", async () => {
    const r = await grow(true);
    assert.ok(r.deltas >= 1, `the old shard lets go by a delta: ${JSON.stringify(r)}`);
    assert.equal(r.wholeAfterFirst, 0, JSON.stringify(r));
  });

  it("a sidecar from before deltas gets whole sets, with the same outcome", async () => {
    const r = await grow(false);
    assert.equal(r.deltas, 0);
    assert.ok(r.wholeAfterFirst >= 1, JSON.stringify(r));
  });

  it("a shard that went back to an older set (restarted from an older file) gets the whole set", async () => {
    const addrs = Array.from({ length: 4 }, (_, i) => `dr-${i}:1`);
    const { shards, tick, discovery, config } = setup(addrs, () => 1_000);
    for (let i = 0; i < 3; i++) await tick();
    const s = shards[0]!;
    const old = { version: s.version, held: [...s.held] };
    discovery.apply(
      parseConfig(
        `scrape_configs:\n- job_name: demo\n  static_configs: [{targets: ${JSON.stringify([...addrs, "dr-9:1"])}}]\n`,
        { dialect: config.dialect },
      ),
    );
    await tick();
    assert.equal(s.deltaPushes, 1, "the new target came as a delta");
    // The shard comes back holding what it had before that push.
    Object.assign(s, { version: old.version, held: old.held, assigned: old.held.map((t) => t.id!) });
    const pushes = s.pushes;
    await tick();
    assert.equal(s.pushes, pushes + 1);
    assert.equal(s.deltaPushes, 1, "whole, not a delta from a base it does not hold");
    assert.equal(s.assigned.length, 5);
  });
});

describe("a steady round", () => {
  it("does not run the scheduler again while nothing it decides on changed, and does when something does", async () => {
    const base = getStrategy("series-balanced")!;
    let runs = 0;
    const strategy = {
      ...base,
      schedule: (input: Parameters<typeof base.schedule>[0]) => {
        runs++;
        return base.schedule(input);
      },
    };
    const addrs = Array.from({ length: 6 }, (_, i) => `st-${i}:1`);
    const { shards, tick } = setup(addrs, () => 10_000, { strategy });
    for (let i = 0; i < 4; i++) await tick();
    const settled = runs;
    const r = await tick();
    await tick();
    assert.equal(runs, settled, "steady: the last decision stands");
    assert.deepEqual(
      r.shards.map((s) => s.targets.length),
      shards.map((s) => s.assigned.length),
      "the status still lists every target",
    );
    shards[0]!.series.set(shards[0]!.assigned[0]!, 25_000);
    await tick();
    assert.equal(runs, settled + 1, "a target's series changed: scheduled again");
    for (let i = 0; i < 6; i++) await tick();
    for (const s of shards) assert.ok(s.assigned.reduce((n, id) => n + s.seriesOf(id) + 5, 0) <= 30_000);
  });
});

describe("a push whose answer is lost", () => {
  it("is the next delta's base when the shard reports its version, else the whole set follows", async () => {
    const addrs = Array.from({ length: 3 }, (_, i) => `lost-${i}:1`);
    const { shards, tick, discovery, config } = setup(addrs, () => 1_000);
    for (let i = 0; i < 3; i++) await tick();
    const s = shards[0]!;
    const add = async (extra: string[], lose: "after" | "before") => {
      const assign = s.assign.bind(s);
      s.assign = async (...args) => {
        s.assign = assign;
        if (lose === "after") await assign(...args);
        throw new Error("other side closed");
      };
      discovery.apply(
        parseConfig(
          `scrape_configs:\n- job_name: demo\n  static_configs: [{targets: ${JSON.stringify([...addrs, ...extra])}}]\n`,
          {
            dialect: config.dialect,
          },
        ),
      );
      await tick();
    };
    await add(["lost-7:1"], "after");
    assert.equal(s.assigned.length, 4, "applied, though the coordinator heard nothing");
    const deltas = s.deltaPushes;
    await add(["lost-7:1", "lost-8:1"], "after");
    assert.equal(s.deltaPushes, deltas + 1, "the lost push was the base of the next delta");
    await add(["lost-7:1", "lost-8:1", "lost-9:1"], "before");
    assert.equal(s.assigned.length, 5, "not applied");
    const pushes = s.pushes;
    await tick();
    assert.equal(s.pushes, pushes + 1);
    assert.equal(s.deltaPushes, deltas + 1, "the shard does not hold what was sent: the whole set");
    assert.equal(s.assigned.length, 6);
  });
});
