/**
 * The differential test: random jobs (file_sd and static groups with `__meta_*` labels,
 * random valid relabel rules) go to a real Prometheus of every version we support and to
 * promshard; active targets (discovered labels, labels, scrape URL) and dropped targets must
 * be identical. Any difference is a bug in promshard.
 *
 * PROMSHARD_CONFORMANCE_SEED and PROMSHARD_CONFORMANCE_CASES reproduce or widen a run.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dump } from "js-yaml";
import { buildReport } from "../../src/cli/targets.ts";
import { checkReferencedFiles } from "../../src/config/check.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { dialectFor } from "../../src/prom/version.ts";
import {
  type PrometheusBinary,
  prometheusBinaries,
  promtoolCheckConfig,
  type RunningPrometheus,
  startPrometheus,
  waitForTargets,
} from "../support/prometheus.ts";
import { type GeneratedJob, generateJobs } from "./generate.ts";

const CASES = Number(process.env.PROMSHARD_CONFORMANCE_CASES ?? 320);
const SEED = Number(process.env.PROMSHARD_CONFORMANCE_SEED ?? 20261125);
const BATCH = 100;

/** `staticAsFile`: jobs whose static groups go to a file instead (their static targets fail promtool). */
function configFor(
  jobs: GeneratedJob[],
  staticAsFile = new Set<string>(),
): { config: string; files: Record<string, string> } {
  const files: Record<string, string> = {};
  const scrapeConfigs = jobs.map((g) => {
    const job: Record<string, unknown> = { ...g.job };
    const name = String(job.job_name);
    if (g.fileGroups.length > 0) {
      files[`sd/${name}.json`] = JSON.stringify(g.fileGroups);
      // Every third job names its file with a "./" and "..", which __meta_filepath shows cleaned.
      job.file_sd_configs = [{ files: [jobs.indexOf(g) % 3 === 0 ? `./sd/../sd/${name}.json` : `sd/${name}.json`] }];
    }
    if (g.staticGroups.length > 0 && staticAsFile.has(name)) {
      files[`sd/${name}-static.json`] = JSON.stringify(g.staticGroups);
      job.file_sd_configs = [...((job.file_sd_configs as object[]) ?? []), { files: [`sd/${name}-static.json`] }];
    } else if (g.staticGroups.length > 0) {
      job.static_configs = g.staticGroups.map((s) => ({ targets: s.targets, labels: s.labels }));
    }
    return job;
  });
  // Scrapes are beside the point; a long interval keeps the refused connections few.
  const config = dump({ global: { scrape_interval: "1h" }, scrape_configs: scrapeConfigs }, { lineWidth: -1 });
  return { config, files };
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v,
  );
}

/** Elements of `a` not matched one-for-one in `b`. */
function minus(a: string[], b: string[]): string[] {
  const counts = new Map<string, number>();
  for (const x of b) counts.set(x, (counts.get(x) ?? 0) + 1);
  return a.filter((x) => {
    const n = counts.get(x) ?? 0;
    if (n === 0) return true;
    counts.set(x, n - 1);
    return false;
  });
}

/** Writes the generated files and config into a fresh directory; returns the config's path. */
function writeCase(dir: string, name: string, config: string, files: Record<string, string>): string {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  writeFileSync(join(dir, name), config);
  return join(dir, name);
}

for (const bin of prometheusBinaries()) {
  describe(`targets match Prometheus ${bin.version}`, () => {
    let prom: RunningPrometheus | undefined;
    const dir = mkdtempSync(join(tmpdir(), "promshard-conformance-"));
    after(async () => {
      await prom?.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const jobs = generateJobs(CASES, SEED, bin.major);
    const dialect = dialectFor(bin.version);
    const all = configFor(jobs);
    const allPath = writeCase(dir, "all.yml", all.config, all.files);

    // Jobs with targets Prometheus refuses make promtool fail; they are checked one by one,
    // and the rest must pass promtool as a whole.
    const failing = new Map<string, string[]>();
    const staticFailing = new Set<string>();
    before(async () => {
      const ours = await buildReport(loadConfigFile(allPath, dialect));
      for (const f of ours.report.failedTargets) {
        failing.set(f.scrapePool, [...(failing.get(f.scrapePool) ?? []), f.error]);
        if (f.discoveredLabels.__meta_filepath === undefined) staticFailing.add(f.scrapePool);
      }
    });

    it("promtool accepts every generated job whose targets all build", async () => {
      const good = configFor(jobs.filter((j) => !failing.has(String(j.job.job_name))));
      const check = await promtoolCheckConfig(bin, writeCase(dir, "good.yml", good.config, {}));
      assert.ok(check.ok, `promtool rejected the generated config:\n${check.output}`);
      assert.deepEqual(checkReferencedFiles(loadConfigFile(join(dir, "good.yml"), dialect)).errors, []);
    });

    it("promtool refuses exactly the jobs promshard finds refused targets in, for the same reason", async () => {
      for (const [pool, reasons] of failing) {
        const one = configFor(jobs.filter((j) => j.job.job_name === pool));
        const check = await promtoolCheckConfig(bin, writeCase(dir, `fail-${pool}.yml`, one.config, {}));
        assert.equal(
          check.ok,
          false,
          `promtool accepted job ${pool}, where promshard refuses targets: ${reasons.join("; ")}`,
        );
        const reason = reasons.find((r) => check.output.includes(r.replace(/"/g, "")) || check.output.includes(r));
        assert.ok(reason, `job ${pool}: promtool says\n${check.output}\npromshard says ${reasons.join("; ")}`);
        assert.ok(checkReferencedFiles(loadConfigFile(join(dir, `fail-${pool}.yml`), dialect)).errors.length > 0);
      }
    });

    it(`${CASES} generated jobs: identical active and dropped targets (seed ${SEED})`, {
      timeout: 300_000,
    }, async () => {
      // Each file_sd config costs Prometheus an inotify instance, and Linux allows 128 a user
      // by default: the jobs go to Prometheus in batches.
      for (let from = 0; from < jobs.length; from += BATCH) {
        const batch = jobs.slice(from, from + BATCH);
        const served = configFor(batch, staticFailing);
        const servedPath = writeCase(dir, `served-${from}.yml`, served.config, served.files);
        const check = await promtoolCheckConfig(bin, servedPath, ["--syntax-only"]);
        assert.ok(check.ok, `promtool --syntax-only rejected the generated config:\n${check.output}`);
        prom = await startPrometheus(bin, { config: served.config, files: served.files });
        const report = await buildReport(loadConfigFile(join(prom.dir, "prometheus.yml"), dialect));
        assert.deepEqual(report.errors, [], "file_sd files must read cleanly");
        const expectedTotal = report.report.activeTargets.length + report.report.droppedTargets.length;
        const theirs = await waitForTargets(
          prom,
          (t) => t.activeTargets.length + t.droppedTargets.length >= expectedTotal,
          40_000,
        ).catch(() => prom!.targets());
        compare(bin, batch, report.report, theirs);
        compareRefused(report.report.failedTargets, prom.logs());
        await prom.stop();
      }
    });
  });
}

/**
 * Prometheus only logs the targets it refuses ("Creating target failed"); promshard lists
 * them. Same pools, same reasons, same number; and no other error in the log.
 */
function compareRefused(ours: { scrapePool: string; error: string }[], log: string): void {
  const lines = log.split("\n").filter((l) => /level=(error|ERROR)/.test(l));
  const theirs: string[] = [];
  for (const line of lines) {
    const m = /scrape_pool=(\S+).*err="instance \d+ in group .*?:\d+: (.*)"\s*$/.exec(line);
    assert.ok(m && /msg="Creating target failed"/.test(line), `Prometheus logged an unexpected error: ${line}`);
    theirs.push(`${m[1]}: ${m[2]!.replace(/\\"/g, '"')}`);
  }
  const mine = ours.map((f) => `${f.scrapePool}: ${f.error}`);
  assert.deepEqual(minus(mine, theirs), [], "refused by promshard only");
  assert.deepEqual(minus(theirs, mine), [], "refused by Prometheus only");
}

/**
 * Known divergence: Prometheus 2.42 reports discoveredLabels that its own relabeling has
 * overwritten (relabel.Process hands the discovered label slice to the label builder as the
 * buffer for its result). For 2.x the test compares discovered labels only of jobs without
 * relabel_configs, and dropped targets by count; labels and scrape URLs always, exactly.
 */
function compare(
  bin: PrometheusBinary,
  jobs: GeneratedJob[],
  ours: Awaited<ReturnType<typeof buildReport>>["report"],
  theirs: Awaited<ReturnType<RunningPrometheus["targets"]>>,
): void {
  const relabeled = new Set(jobs.filter((j) => j.job.relabel_configs).map((j) => String(j.job.job_name)));
  // Where relabeling made duplicates, Prometheus shows one of them by its own map order.
  const reliable = (pool: string) => (bin.major >= 3 || !relabeled.has(pool)) && !ours.collapsedTargets[pool];
  const active = (list: { discoveredLabels: object; labels: object; scrapePool: string; scrapeUrl: string }[]) =>
    list.map((t) =>
      canonical({
        pool: t.scrapePool,
        d: reliable(t.scrapePool) ? t.discoveredLabels : "(not comparable)",
        l: t.labels,
        url: t.scrapeUrl,
      }),
    );
  const dropped = (list: { discoveredLabels: object }[]) =>
    list.map((t) => (bin.major >= 3 ? canonical(t.discoveredLabels) : "(a dropped target)"));
  const oursActive = active(ours.activeTargets);
  const theirsActive = active(theirs.activeTargets);
  const oursDropped = dropped(ours.droppedTargets);
  const theirsDropped = dropped(theirs.droppedTargets);
  // Interleaved so that a near miss shows next to its counterpart.
  const interleave = (a: string[], b: string[]) =>
    a.flatMap((x, i) => (b[i] === undefined ? [x] : [x, b[i]!])).concat(b.slice(a.length));
  const problems = [
    ...interleave(
      minus(oursActive, theirsActive).map((x) => `active only in promshard:   ${x}`),
      minus(theirsActive, oursActive).map((x) => `active only in Prometheus: ${x}`),
    ),
    ...interleave(
      minus(oursDropped, theirsDropped).map((x) => `dropped only in promshard:   ${x}`),
      minus(theirsDropped, oursDropped).map((x) => `dropped only in Prometheus: ${x}`),
    ),
  ];
  if (problems.length === 0) return;
  const pools = new Set(problems.map((p) => /"pool":"([^"]+)"|"job":"([^"]+)"/.exec(p)).map((m) => m?.[1] ?? m?.[2]));
  const involved = jobs.filter((j) => pools.has(String(j.job.job_name)));
  assert.fail(
    `${problems.length} difference(s) against Prometheus ${bin.version} ` +
      `(${ours.activeTargets.length}/${theirs.activeTargets.length} active, ` +
      `${ours.droppedTargets.length}/${theirs.droppedTargets.length} dropped, ours/theirs):\n` +
      `${problems.slice(0, 12).join("\n")}\n\njobs involved:\n${JSON.stringify(involved.slice(0, 4), null, 1)}`,
  );
}
