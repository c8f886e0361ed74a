import assert from "node:assert/strict";
import { linkSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { FileDiscovery } from "../../src/discovery/file-watch.ts";
import { DiscoveryManager } from "../../src/discovery/manager.ts";
import { parseConfig } from "../../src/prom/config.ts";
import type { TargetGroup } from "../../src/prom/targets.ts";
import { dialectFor } from "../../src/prom/version.ts";

const v3 = dialectFor("3.16");
let stops: (() => void)[] = [];
afterEach(() => {
  for (const s of stops) s();
  stops = [];
});

/** Writes through a temp file and a rename, as config management does. */
function put(file: string, groups: unknown): void {
  writeFileSync(`${file}.tmp`, typeof groups === "string" ? groups : JSON.stringify(groups));
  renameSync(`${file}.tmp`, file);
}

async function until<T>(what: string, fn: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

function watcher(dir: string, refreshIntervalMs = 60_000) {
  const state = new Map<string, TargetGroup>();
  let updates = 0;
  const fd = new FileDiscovery({ files: [join(dir, "*.json")], dialect: v3, refreshIntervalMs });
  fd.start((gs) => {
    updates++;
    for (const g of gs) {
      if (g.targets.length === 0) state.delete(g.source);
      else state.set(g.source, g);
    }
  });
  stops.push(() => fd.stop());
  const addresses = () => [...state.values()].flatMap((g) => g.targets.map((t) => t.__address__)).sort();
  return { fd, state, addresses, updates: () => updates };
}

describe("file_sd watching", () => {
  it("reads at start, picks up a change, a new file and a removed file through the directory watch", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-fsd-"));
    put(join(dir, "a.json"), [{ targets: ["a:1"], labels: { env: "prod" } }]);
    const w = watcher(dir);
    assert.deepEqual(w.addresses(), ["a:1"]);
    assert.equal([...w.state.values()][0]!.labels.__meta_filepath, join(dir, "a.json"));

    put(join(dir, "a.json"), [{ targets: ["a:1", "a:2"] }]);
    await until("change", () => (w.addresses().length === 2 ? true : undefined));
    put(join(dir, "b.json"), [{ targets: ["b:1"] }]);
    await until("new file", () => (w.addresses().includes("b:1") ? true : undefined));
    rmSync(join(dir, "a.json"));
    await until("removed file", () => (w.addresses().join() === "b:1" ? true : undefined));
  });

  it("a broken file keeps its last good targets and reports the error; fixing it recovers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-fsd-"));
    const file = join(dir, "a.json");
    put(file, [{ targets: ["a:1"] }, { targets: ["a:2"] }]);
    const w = watcher(dir);
    put(file, "[{ this is not json");
    await until("error", () => (w.fd.errors.has(file) ? true : undefined));
    assert.deepEqual(w.addresses(), ["a:1", "a:2"]);
    assert.match(w.fd.errors.get(file)!.message, /a\.json: invalid JSON/);
    put(file, [{ targets: ["a:1"] }]);
    await until("recovered", () => (w.addresses().join() === "a:1" ? true : undefined));
    assert.equal(w.fd.errors.size, 0);
  });

  it("refresh_interval re-reads without a directory event", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-fsd-"));
    put(join(dir, "a.json"), [{ targets: ["a:1"] }]);
    // Written through a hard link in another directory: the watched directory sees no event.
    const elsewhere = join(mkdtempSync(join(tmpdir(), "promshard-fsd-")), "a.json");
    linkSync(join(dir, "a.json"), elsewhere);
    const w = watcher(dir, 100);
    writeFileSync(elsewhere, JSON.stringify([{ targets: ["a:2"] }]));
    await until("refresh", () => (w.addresses().join() === "a:2" ? true : undefined));
  });

  it("a re-read sends only the groups that changed, and nothing for an unchanged file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-fsd-"));
    const groups = Array.from({ length: 3 }, (_, i) => ({ targets: [`a:${i}`], labels: { n: String(i) } }));
    put(join(dir, "a.json"), groups);
    put(join(dir, "b.json"), [{ targets: ["b:1"] }]);
    const sent: TargetGroup[][] = [];
    const fd = new FileDiscovery({ files: [join(dir, "*.json")], dialect: v3, refreshIntervalMs: 60_000 });
    fd.start((gs) => sent.push(gs));
    stops.push(() => fd.stop());
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.length, 4);

    fd.refresh();
    assert.equal(sent.length, 1, "nothing changed, nothing sent");
    put(join(dir, "a.json"), [groups[0], { targets: ["a:9"], labels: { n: "1" } }]);
    fd.refresh();
    const last = sent.at(-1)!.map((g) => [g.source, g.targets.map((t) => t.__address__)]);
    assert.deepEqual(last.sort(), [
      [`${join(dir, "a.json")}:1`, ["a:9"]],
      [`${join(dir, "a.json")}:2`, []],
    ]);
  });
});

describe("discovery manager", () => {
  it("runs every job's providers, keeps unchanged ones across a reload and stops removed jobs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promshard-dm-"));
    put(join(dir, "t.json"), [{ targets: ["f:1"] }]);
    const yaml = (extra: string) =>
      `scrape_configs:\n- job_name: files\n  file_sd_configs: [{files: ['*.json']}]\n- job_name: static\n  static_configs: [{targets: ['s:1']}]\n${extra}`;
    const m = new DiscoveryManager();
    stops.push(() => m.stop());
    const changed: string[] = [];
    m.onChange((job) => changed.push(job));
    m.apply(parseConfig(yaml(""), { dialect: v3, directory: dir }));
    await m.ready();
    assert.deepEqual(
      m.groups("files").flatMap((g) => g.targets.map((t) => t.__address__)),
      ["f:1"],
    );
    assert.deepEqual(
      m.groups("static").flatMap((g) => g.targets.map((t) => t.__address__)),
      ["s:1"],
    );

    changed.length = 0;
    m.apply(
      parseConfig(yaml("- job_name: more\n  static_configs: [{targets: ['m:1']}]\n"), { dialect: v3, directory: dir }),
    );
    assert.deepEqual(changed, ["more"], "only the new job changes; the others keep their providers");
    m.apply(
      parseConfig("scrape_configs:\n- job_name: more\n  static_configs: [{targets: ['m:1']}]\n", {
        dialect: v3,
        directory: dir,
      }),
    );
    assert.deepEqual(m.jobs(), ["more"]);
    assert.deepEqual(m.groups("files"), []);
  });

  it("names SD mechanisms it cannot run instead of skipping them", () => {
    const m = new DiscoveryManager();
    stops.push(() => m.stop());
    m.apply(
      parseConfig("scrape_configs:\n- job_name: c\n  consul_sd_configs: [{server: 'localhost:8500'}]\n", {
        dialect: v3,
      }),
    );
    assert.equal(m.unsupported.length, 1);
    assert.equal(m.unsupported[0]!.code, "sd_unsupported");
    assert.match(m.unsupported[0]!.message, /job "c"\.consul_sd_configs\[0\]: consul_sd_configs is not supported/);
  });
});
