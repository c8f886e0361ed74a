/**
 * Delta pushes against a real sidecar and the real Prometheus, both versions, through the
 * coordinator's own client (httpShardClient): the sidecar says it takes deltas; a delta that
 * adds, removes and changes targets leaves Prometheus scraping exactly the new set, without
 * the whole set being made; a delta from a base the sidecar does not hold is refused (409
 * `assignment_base_mismatch`, nothing changed) and the client sends the whole set instead;
 * after a sidecar restart the held set (ids and a split part included) is the base of the
 * next delta. Runtime reports asked `?since=` the last token list only what changed, after a
 * push too (with the ids removed), and the client's merged view equals the whole report.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AssignedTarget, type AssignmentDelta, diffAssignment } from "../../src/contract/assignment.ts";
import type { RuntimeReport } from "../../src/contract/runtime-report.ts";
import { httpShardClient } from "../../src/coordinator/shard-client.ts";
import { createLogger } from "../../src/observability/log.ts";
import { dialectFor } from "../../src/prom/version.ts";
import { PART_LABEL } from "../../src/sidecar/generate.ts";
import { Sidecar } from "../../src/sidecar/sidecar.ts";
import { discoverAll, type Setup, sidecarClient, startSetup, until, writeFiles } from "../fixtures/sidecar/harness.ts";
import { prometheusBinaries, type RunningPrometheus, startPrometheus } from "../support/prometheus.ts";

const TOKEN = "delta-token-0123456789";

for (const bin of prometheusBinaries()) {
  describe(`delta pushes to a sidecar beside Prometheus ${bin.version}`, () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-delta-"));
    let setup: Setup;
    let sidecar: Sidecar | undefined;
    let shard: RunningPrometheus | undefined;

    before(async () => {
      setup = await startSetup(join(dir, "certs"));
    });
    after(async () => {
      await sidecar?.stop();
      await shard?.stop();
      await setup?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("applies deltas, refuses one from another base, and keeps its base across a restart", {
      timeout: 240_000,
    }, async () => {
      const { "prometheus.yml": configText, ...files } = setup.files;
      const configDir = join(dir, "config");
      const configFile = join(configDir, "prometheus.yml");
      writeFiles(configDir, { ...files, "prometheus.yml": configText! });
      const out = join(dir, "out");
      const tokenFile = join(dir, "token");
      writeFileSync(tokenFile, `${TOKEN}\n`);
      const start = async () => {
        const s = new Sidecar({
          configFile,
          prometheusUrl: shard?.url ?? "http://127.0.0.1:9",
          outputDir: out,
          stateDir: join(dir, "state"),
          listen: "127.0.0.1:0",
          tokenFile,
          identity: { shard: 0, replica: "0" },
          configCheckIntervalMs: 500,
          log: createLogger({ component: "sidecar", level: "warn" }),
        });
        await s.start();
        return s;
      };
      sidecar = await start();
      shard = await startPrometheus(bin, {
        config: "# not used\n",
        args: [`--config.file=${join(out, "prometheus.yml")}`],
      });
      // The sidecar asks Prometheus at the URL it was given: started again, it is the real one.
      await sidecar.stop();
      sidecar = await start();

      const all = (await discoverAll(configFile, dialectFor(bin.version))).map(
        (t, i): AssignedTarget => ({ id: `t${i}`, ...t }),
      );
      const live = all.filter(
        (t) => t.labels.__address__ !== setup.deadAddress && t.labels.__address__ !== "127.0.0.1:9",
      );
      assert.ok(live.length >= 5, `${live.length} live targets`);
      let client = httpShardClient(sidecar.url, TOKEN, 30_000);
      assert.equal((await client.runtime()).deltas, true, "the sidecar says it takes deltas");

      /** Prometheus scrapes exactly `want` (the sidecar maps each to Prometheus's target; nothing else). */
      const scrapes = (version: number, want: readonly AssignedTarget[]) =>
        until(
          `Prometheus scrapes version ${version}`,
          async () => {
            const r = (await sidecarClient(sidecar!.url, TOKEN).runtime()) as RuntimeReport;
            const got = r.targets.map((t) => `${t.job} ${t.address} ${t.status}`).sort();
            const expected = want.map((t) => `${t.job} ${t.labels.__address__} scraped`).sort();
            return (
              r.assignment?.version === version &&
              r.unmappedTargets.length === 0 &&
              JSON.stringify(got) === JSON.stringify(expected) &&
              r
            );
          },
          60_000,
        );
      const byId = (ts: readonly AssignedTarget[]) => new Map(ts.map((t) => [t.id!, t]));
      const deltaOf = (
        version: number,
        base: number,
        from: AssignedTarget[],
        to: AssignedTarget[],
      ): AssignmentDelta => ({
        version,
        base,
        count: to.length,
        ...diffAssignment(
          byId(from),
          byId(to),
          (a, b) => a === b,
          (t) => t,
        ),
      });
      let made = 0;
      const whole = (ts: AssignedTarget[]) => () => {
        made++;
        return ts;
      };

      const v1 = live.slice(0, 3);
      await client.assign(1, v1);
      await scrapes(1, v1);

      // One leaves, two come, one changes a label that reaches its final labels.
      const changed: AssignedTarget = { ...v1[1]!, labels: { ...v1[1]!.labels, team: "blue" } };
      const v2 = [changed, v1[2]!, live[3]!, live[4]!];
      const d2 = deltaOf(2, 1, v1, v2);
      assert.deepEqual(d2.remove, [v1[0]!.id]);
      await client.assign(2, whole(v2), d2);
      assert.equal(made, 0, "the whole set was not made");
      const r2 = await scrapes(2, v2);
      const row = r2.targets.find((t) => t.address === changed.labels.__address__ && t.job === changed.job)!;
      assert.equal(row.labels?.team, "blue", "the changed target carries its new label in Prometheus");

      // A delta from a base it does not hold: refused whole, then the whole set.
      const stale = deltaOf(3, 1, v1, live.slice(0, 2));
      const raw = await sidecarClient(sidecar.url, TOKEN).call("PATCH", "/api/v1/assignment", stale);
      assert.equal(raw.status, 409);
      assert.equal(raw.body.code, "assignment_base_mismatch");
      assert.match(raw.body.error ?? "", /holds version 2, not 1/);
      await scrapes(2, v2);
      const v3 = live.slice(0, 2);
      await client.assign(3, whole(v3), stale);
      assert.equal(made, 1, "the client sent the whole set");
      await scrapes(3, v3);

      // A split part, then a restart: the held set (ids, the split) is the next delta's base.
      const part = { ...v3[1]!, split: { part: 0, parts: 2, by: ["__name__"] } };
      const v4 = [v3[0]!, part];
      await client.assign(4, whole(v4), deltaOf(4, 3, v3, v4));
      await until("the part's rules are loaded", async () =>
        readFileSync(join(out, "prometheus.yml"), "utf8").includes(PART_LABEL),
      );
      await sidecar.stop();
      sidecar = await start();
      client = httpShardClient(sidecar.url, TOKEN, 30_000);
      assert.ok(readFileSync(join(out, "prometheus.yml"), "utf8").includes(PART_LABEL), "the part stays a part");
      const r4 = await scrapes(4, v4);
      assert.ok(r4.targets.some((t) => t.id?.endsWith("#0/2")));
      const v5 = [...v4, live[4]!];
      await client.assign(5, whole(v5), deltaOf(5, 4, v4, v5));
      assert.equal(made, 1, "after the restart the delta applied");
      const r5 = await scrapes(5, v5);

      // Reports since a token: only what changed; the client's merged view is the whole one.
      const raw5 = await sidecarClient(sidecar.url, TOKEN).call("GET", "/api/v1/runtime");
      assert.ok((raw5.body.features as string[]).includes("runtime-since"));
      const since = await sidecarClient(sidecar.url, TOKEN).call(
        "GET",
        `/api/v1/runtime?since=${encodeURIComponent(raw5.body.token as string)}`,
      );
      assert.equal(since.body.partial, true);
      assert.ok((since.body.targets as unknown[]).length < r5.targets.length, "not every target again");
      const steady = await until("two reports in a row with nothing changed", async () => {
        const a = await client.runtime();
        const b = await client.runtime();
        return a.assigned === b.assigned && b;
      });
      const full = (await sidecarClient(sidecar.url, TOKEN).runtime()) as RuntimeReport;
      const state = (ts: readonly { id: string | null; health?: string | null; series: number | null }[]) =>
        ts
          .filter((x) => x.id !== null)
          .map((x) => `${x.id} ${x.health} ${x.series}`)
          .sort();
      assert.deepEqual(state(steady.targets), state(full.targets));

      // A push no longer makes the next report whole: the report after it names the id that
      // left and lists the one that came; a client that does not apply removals gets it whole.
      const token5 = (await sidecarClient(sidecar.url, TOKEN).call("GET", "/api/v1/runtime")).body.token as string;
      const v6 = [v5[0]!, v5[1]!, live[2]!];
      await client.assign(6, whole(v6), deltaOf(6, 5, v5, v6));
      const r6 = await scrapes(6, v6);
      const idOf = (r: RuntimeReport, t: AssignedTarget) =>
        r.targets.find((x) => x.job === t.job && x.address === t.labels.__address__)?.id;
      const ask = (query: string) => sidecarClient(sidecar!.url, TOKEN).call("GET", `/api/v1/runtime?${query}`);
      const after6 = await ask(`since=${encodeURIComponent(token5)}&removals=1`);
      assert.equal(after6.body.partial, true, "partial after a push");
      assert.deepEqual(after6.body.removed, [idOf(r5, live[4]!)]);
      assert.ok(
        (after6.body.targets as { id: string }[]).some((t) => t.id === idOf(r6, live[2]!)),
        "the new target is listed",
      );
      const old = await ask(`since=${encodeURIComponent(token5)}`);
      assert.equal(old.body.partial, undefined, "without removals=1: whole");
      assert.equal((old.body.targets as unknown[]).length, 3);
      const steady6 = await until("the client's view after the push settles", async () => {
        const a = await client.runtime();
        const b = await client.runtime();
        return a.assigned === b.assigned && b.version === 6 && b;
      });
      const full6 = (await sidecarClient(sidecar.url, TOKEN).runtime()) as RuntimeReport;
      assert.deepEqual(state(steady6.targets), state(full6.targets));
      assert.equal(steady6.assigned.length, 3);
      assert.equal(made, 1, "the push was a delta");
    });
  });
}
