/**
 * The house's import rules, drawn from the files themselves (nothing here names a room other
 * than src/prom, so moving files elsewhere needs no change to this test):
 *
 * (a) src/prom, the Prometheus domain, imports nothing in src outside itself but the helpers
 *     listed in PROM_MAY_IMPORT, and of packages only the pure ones in PROM_PACKAGES (no I/O);
 * (b) no circle among the files of src (`import type` counts: a type is a dependency too).
 *
 * Every static `import … from "…"`, `import "…"` and `export … from "…"` is read; a line that
 * starts an import the reader does not understand fails the test rather than being skipped.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SRC = join(ROOT, "src");

/** What src/prom may import from the rest of src, with the reason. */
const PROM_MAY_IMPORT: Readonly<Record<string, string>> = {
  "src/errors.ts": "PromshardError and its codes: a pure value type every room shares",
};

/** Packages src/prom may import: pure computation only, no I/O. */
const PROM_PACKAGES: Readonly<Record<string, string>> = {
  "js-yaml": "YAML text to a document",
  re2js: "the regex engine of relabeling",
  "node:crypto": "hashes (target identity), no I/O",
  "node:path": "posix path joining, string work only",
};

/** One static import or re-export: `import … from "x"`, `import "x"`, `export … from "x"`. */
const IMPORT =
  /^(?:import|export)\s+(?:type\s+)?(?:[\w$]+\s*,?\s*)?(?:\{[^}]*\}\s*|\*\s*(?:as\s+[\w$]+\s*)?)?from\s*["']([^"']+)["']|^import\s*["']([^"']+)["']/gm;
/** Lines that begin an import or a re-export (each must be read by IMPORT). */
const STARTS = /^(?:import\b|export\s+(?:type\s+)?(?:\*|\{))/gm;

export interface Graph {
  /** Files as paths relative to the repository root (src/…), each with what it imports. */
  readonly files: ReadonlyMap<string, { readonly local: readonly string[]; readonly packages: readonly string[] }>;
  readonly problems: readonly string[];
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Reads every file under `srcDir` and the imports it makes. */
export function importGraph(srcDir: string, root: string): Graph {
  const files = new Map<string, { local: string[]; packages: string[] }>();
  const problems: string[] = [];
  for (const file of tsFiles(srcDir).sort()) {
    const name = relative(root, file);
    const text = readFileSync(file, "utf8");
    const local: string[] = [];
    const packages: string[] = [];
    const read = new Set<number>();
    for (const m of text.matchAll(IMPORT)) {
      read.add(m.index);
      const spec = (m[1] ?? m[2])!;
      if (!spec.startsWith(".")) {
        packages.push(spec);
        continue;
      }
      const target = resolve(dirname(file), spec);
      if (!existsSync(target)) problems.push(`${name}: imports ${spec}, which does not exist`);
      else local.push(relative(root, target));
    }
    for (const m of text.matchAll(STARTS)) {
      if (!read.has(m.index)) {
        const line = text.slice(0, m.index).split("\n").length;
        problems.push(`${name}:${line}: an import this test cannot read; write it as import … from "…"`);
      }
    }
    files.set(name, { local, packages });
  }
  return { files, problems };
}

/** Arrows out of `room` to src files other than the room's own and the allowed ones. */
export function arrowsOut(graph: Graph, room: string, allowed: readonly string[]): string[] {
  const out: string[] = [];
  for (const [file, { local }] of graph.files) {
    if (!file.startsWith(`${room}/`)) continue;
    for (const to of local) if (!to.startsWith(`${room}/`) && !allowed.includes(to)) out.push(`${file} -> ${to}`);
  }
  return out;
}

/**
 * Every circle: within each strongly connected component of more than one file (or a file
 * importing itself), the shortest closed path through each of its files, each path once.
 */
export function circles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const edges = (f: string) => graph.files.get(f)?.local ?? [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || edges(v).includes(v)) components.push(component);
    }
  };
  for (const f of graph.files.keys()) if (!index.has(f)) visit(f);

  /** The shortest way from `start` back to itself inside the component. */
  const shortestCircle = (start: string, inside: Set<string>): string[] => {
    const from = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0) {
      const v = queue.shift()!;
      for (const w of edges(v)) {
        if (!inside.has(w)) continue;
        if (w === start) {
          const path = [v];
          while (path[0] !== start) path.unshift(from.get(path[0]!)!);
          return [...path, start];
        }
        if (!from.has(w)) {
          from.set(w, v);
          queue.push(w);
        }
      }
    }
    return [start, start];
  };
  const found = new Map<string, string[]>();
  for (const component of components) {
    const inside = new Set(component);
    for (const file of [...component].sort()) {
      const circle = shortestCircle(file, inside);
      // The same circle from another of its files: written from its smallest file, kept once.
      const open = circle.slice(0, -1);
      const first = open.indexOf([...open].sort()[0]!);
      const rotated = [...open.slice(first), ...open.slice(0, first)];
      found.set(rotated.join(" "), [...rotated, rotated[0]!]);
    }
  }
  return [...found.values()];
}

describe("the import graph of src", () => {
  const graph = importGraph(SRC, ROOT);

  it("is read completely", () => {
    assert.ok(graph.files.size > 0, "no files under src");
    assert.deepEqual(graph.problems, []);
  });

  it("src/prom imports nothing outside itself but src/errors.ts and pure helpers", () => {
    assert.deepEqual(arrowsOut(graph, "src/prom", Object.keys(PROM_MAY_IMPORT)), []);
  });

  it("src/prom imports only pure packages", () => {
    const found: string[] = [];
    for (const [file, { packages }] of graph.files) {
      if (!file.startsWith("src/prom/")) continue;
      for (const p of packages) if (!(p in PROM_PACKAGES)) found.push(`${file} -> ${p}`);
    }
    assert.deepEqual(found, []);
  });

  it("has no circle", () => {
    const found = circles(graph).map((c) => c.join(" -> "));
    assert.deepEqual(found, [], `circles:\n${found.join("\n")}`);
  });
});

describe("the import reader and the circle finder", () => {
  const fake = (edges: Record<string, string[]>): Graph => ({
    files: new Map(Object.entries(edges).map(([f, local]) => [f, { local, packages: [] }])),
    problems: [],
  });

  it("finds a circle and prints it closed", () => {
    const g = fake({ a: ["b"], b: ["c"], c: ["a", "d"], d: [] });
    assert.deepEqual(circles(g), [["a", "b", "c", "a"]]);
  });

  it("finds a file importing itself and separate circles", () => {
    const g = fake({ a: ["a"], b: ["c"], c: ["b"], d: ["a", "b"] });
    assert.deepEqual(
      circles(g)
        .map((c) => c.join(" "))
        .sort(),
      ["a a", "b c b"],
    );
  });

  it("reads every form of import", () => {
    const forms = [
      'import a from "./x.ts";',
      'import type { A } from "./x.ts";',
      'import {\n  a,\n  type B,\n} from "./x.ts";',
      'import * as ns from "./x.ts";',
      'import d, { e } from "./x.ts";',
      'import "./x.ts";',
      'export * from "./x.ts";',
      'export type { A } from "./x.ts";',
      'export { a as b } from "./x.ts";',
      'export * as ns from "./x.ts";',
    ];
    for (const form of forms) {
      const specs = [...form.matchAll(IMPORT)].map((m) => m[1] ?? m[2]);
      assert.deepEqual(specs, ["./x.ts"], form);
      assert.equal([...form.matchAll(STARTS)].length, 1, form);
    }
    assert.deepEqual([..."export const x = 1;\nexport function f() {}".matchAll(STARTS)], []);
  });
});
