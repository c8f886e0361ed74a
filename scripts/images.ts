/**
 * The container images of the one-node cluster, built on this machine as OCI archives (no
 * registry is reachable): `node scripts/images.ts [name…]` (`make images`) writes
 * <dir>/<name>.oci.tar, which test/support/cluster.ts imports into containerd.
 *
 * Two kinds:
 * - a binary image: one or more binaries (Go binaries are static; a dynamic one, such as
 *   Debian's Prometheus 2.42 or Node, gets the shared libraries `ldd` lists, from this Debian
 *   host), /etc/passwd and /etc/group, /tmp, an entrypoint. Adding Thanos is one entry below.
 * - the promshard image: Node 24 as a binary image, plus the layer the Dockerfile's final stage
 *   copies (package.json, production node_modules, dist under /app), with the Dockerfile's
 *   ENV, WORKDIR, USER and ENTRYPOINT read from the Dockerfile itself, so the two describe the
 *   same image. What differs is the base: node:24-slim brings a Debian userland (a shell, apt);
 *   here Node, a shell and `test`/`cat`/`ls` with the libraries they load, taken from this
 *   Debian 12 host (node:24-slim is Debian 12 too).
 *
 * Images are named as the references a manifest for a real cluster would use (the webhook's
 * default sidecar image, the official Prometheus images), so manifests run unchanged; pods
 * must not pull them (`imagePullPolicy: IfNotPresent` or `Never`).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type BuiltImage,
  type ImageConfig,
  type TarEntry,
  tar,
  treeEntries,
  withParents,
  writeOciArchive,
} from "../test/support/oci.ts";

const repo = fileURLToPath(new URL("..", import.meta.url));
const cache = process.env.TOOLS_CACHE ?? join(homedir(), ".cache/promshard-tools");
const VERSION = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string }).version;

/** Where `make images` writes the archives (git-ignored). */
export const IMAGES_DIR = process.env.PROMSHARD_IMAGES_DIR ?? join(repo, ".images");

// Keep in step with NODE_VERSION and PROMETHEUS3_VERSION in the Makefile, PAUSE_VERSION in tools/cluster.mk.
export const NODE_VERSION = "24.21.0";
export const PROMETHEUS3_VERSION = "3.16.0";
export const PAUSE_VERSION = "1";
/** Keep in step with THANOS_VERSION in tools/thanos.mk. */
export const THANOS_VERSION = "0.42.4";

export const IMAGE_NAMES = {
  promshard: `ghcr.io/promshard/promshard:v${VERSION}`,
  prometheus3: `quay.io/prometheus/prometheus:v${PROMETHEUS3_VERSION}`,
  prometheus2: "quay.io/prometheus/prometheus:v2.42.0",
  pause: `promshard.local/pause:${PAUSE_VERSION}`,
  thanos: `quay.io/thanos/thanos:v${THANOS_VERSION}`,
} as const;

interface BinarySpec {
  /** Path on this machine. */
  from: string;
  /** Path in the image. */
  to: string;
}

interface ImageSpec {
  /** File name of the archive: <file>.oci.tar. */
  file: string;
  config: ImageConfig;
  binaries: BinarySpec[];
  /** Directories owned by the image's user (a data dir). */
  ownedDirs?: string[];
  /** Extra files: path in the image -> content. */
  files?: Record<string, string>;
  /** The command that builds the binaries when they are missing. */
  buildWith: string;
  /** Further layers on top (the promshard app). */
  extraLayers?: () => Buffer[];
}

/** One line per static binary image: a binary and how it starts. */
function binaryImage(
  file: string,
  name: string,
  binaries: BinarySpec[],
  buildWith: string,
  extra: Partial<Pick<ImageSpec, "ownedDirs" | "files">> & Partial<ImageConfig> = {},
): ImageSpec {
  const { ownedDirs, files, ...config } = extra;
  return {
    file,
    buildWith,
    binaries,
    ...(ownedDirs ? { ownedDirs } : {}),
    ...(files ? { files } : {}),
    config: { name, entrypoint: [binaries[0]!.to], user: "65534:65534", ...config },
  };
}

// Prometheus's images: WORKDIR /prometheus, USER nobody, ENTRYPOINT /bin/prometheus and the
// default args as the official Dockerfile has them (the webhook knows these defaults).
const PROMETHEUS_DEFAULTS = {
  cmd: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
  workingDir: "/prometheus",
  ownedDirs: ["prometheus", "etc/prometheus"],
  files: {
    "etc/prometheus/prometheus.yml":
      "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [localhost:9090]\n",
  },
};

export const IMAGES: Record<string, ImageSpec> = {
  pause: binaryImage(
    "pause",
    IMAGE_NAMES.pause,
    [{ from: join(cache, `pause-${PAUSE_VERSION}/bin/pause`), to: "/pause" }],
    "make cluster-tools",
  ),
  prometheus3: binaryImage(
    "prometheus3",
    IMAGE_NAMES.prometheus3,
    ["prometheus", "promtool"].map((b) => ({
      from: join(cache, `prometheus-${PROMETHEUS3_VERSION}/bin/${b}`),
      to: `/bin/${b}`,
    })),
    "make tools",
    PROMETHEUS_DEFAULTS,
  ),
  // Debian's 2.42 is linked against glibc: its libraries come along.
  prometheus2: binaryImage(
    "prometheus2",
    IMAGE_NAMES.prometheus2,
    ["prometheus", "promtool"].map((b) => ({ from: `/usr/bin/${b}`, to: `/bin/${b}` })),
    "make setup",
    PROMETHEUS_DEFAULTS,
  ),
  // Thanos: the static binary tools/thanos.mk (the thanos branch) builds; USER and ENTRYPOINT as its official image.
  thanos: binaryImage(
    "thanos",
    IMAGE_NAMES.thanos,
    [{ from: join(cache, `thanos-${THANOS_VERSION}/bin/thanos`), to: "/bin/thanos" }],
    "make tools (tools/thanos.mk builds Thanos)",
    { user: "1001" },
  ),
  promshard: promshardImage(),
};

// ---- the promshard image, from the Dockerfile's final stage

interface FinalStage {
  env: string[];
  workdir: string;
  user: string;
  entrypoint: string[];
  /** COPY --from=build <src> <dest>: paths under /src of the build stage and where they go. */
  copies: { from: string; to: string }[];
}

/** The last stage of the Dockerfile: the instructions the local build must follow. */
export function dockerfileFinalStage(text: string): FinalStage {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const last = lines.map((l) => l.startsWith("FROM ")).lastIndexOf(true);
  const stage: FinalStage = { env: [], workdir: "/", user: "", entrypoint: [], copies: [] };
  for (const line of lines.slice(last + 1)) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    if (op === "ENV") {
      for (const m of args.matchAll(/(\w+)=(\S+)/g)) stage.env.push(`${m[1]}=${m[2]}`);
    } else if (op === "WORKDIR") stage.workdir = args;
    else if (op === "USER") stage.user = args;
    else if (op === "ENTRYPOINT") stage.entrypoint = JSON.parse(args) as string[];
    else if (op === "COPY") {
      const [flag, from, to] = rest;
      if (flag !== "--from=build" || from === undefined || to === undefined) {
        throw new Error(
          `Dockerfile: the final stage's "${line}" is not COPY --from=build <src> <dest>; scripts/images.ts builds only that`,
        );
      }
      // `COPY a ./` puts a into the directory; `COPY a ./b` names it b.
      const dest = resolve(stage.workdir, to);
      stage.copies.push({ from, to: to.endsWith("/") ? join(dest, basename(from)) : dest });
    } else {
      throw new Error(
        `Dockerfile: scripts/images.ts does not know "${op}" in the final stage; teach it, so both describe the same image`,
      );
    }
  }
  return stage;
}

/** package.json, the production node_modules (npm ci --omit=dev, as the Dockerfile's npm prune) and dist, staged once per lock file. */
function stageApp(): string {
  const lock = readFileSync(join(repo, "package-lock.json"));
  const key = createHash("sha256")
    .update(lock)
    .update(readFileSync(join(repo, "package.json")))
    .digest("hex")
    .slice(0, 16);
  const dir = join(IMAGES_DIR, `app-deps-${key}`);
  if (!existsSync(join(dir, ".done"))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const f of ["package.json", "package-lock.json"]) writeFileSync(join(dir, f), readFileSync(join(repo, f)));
    execFileSync("npm", ["ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"], {
      cwd: dir,
      stdio: ["ignore", "inherit", "inherit"],
    });
    writeFileSync(join(dir, ".done"), "");
  }
  return dir;
}

function promshardImage(): ImageSpec {
  const stage = dockerfileFinalStage(readFileSync(join(repo, "Dockerfile"), "utf8"));
  const [uid, gid] = stage.user.split(":").map(Number);
  const node = stage.entrypoint[0];
  if (node !== "node") throw new Error(`Dockerfile: ENTRYPOINT starts with ${node}, scripts/images.ts expects node`);
  return {
    file: "promshard",
    buildWith: "make node build",
    binaries: [
      { from: join(cache, `node-${NODE_VERSION}/bin/node`), to: "/usr/local/bin/node" },
      // The few node:24-slim commands pods rely on: the webhook's startup probe of the injected
      // sidecar execs `test -f`, and `kubectl exec` users expect a shell.
      { from: "/usr/bin/dash", to: "/bin/sh" },
      ...["test", "cat", "ls"].map((c) => ({ from: `/usr/bin/${c}`, to: `/usr/bin/${c}` })),
    ],
    config: {
      name: IMAGE_NAMES.promshard,
      entrypoint: stage.entrypoint,
      env: stage.env,
      workingDir: stage.workdir,
      user: stage.user,
    },
    files: {
      "etc/passwd": `root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:${uid}:${gid}:node:/home/node:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
      "etc/group": `root:x:0:\nnode:x:${gid}:\nnogroup:x:65534:\n`,
    },
    extraLayers: () => {
      if (!existsSync(join(repo, "dist/cli.js")))
        throw new Error(`${join(repo, "dist/cli.js")} is missing: run \`make build\``);
      const deps = stageApp();
      const entries: TarEntry[] = [];
      for (const { from, to } of stage.copies) {
        const rel = from.replace(/^\/src\/?/, "");
        const src = rel === "node_modules" || rel === "package.json" ? join(deps, rel) : join(repo, rel);
        if (!existsSync(src)) throw new Error(`the Dockerfile copies ${from}, but ${src} is missing`);
        entries.push(...treeEntries(src, to, { uid: 0, gid: 0 }));
      }
      // Source maps and the build's own outputs only; nothing else of the checkout.
      return [tar(withParents(entries))];
    },
  };
}

// ---- building

/** The shared libraries a dynamic binary loads, with the paths its loader looks them up at (none for a static one). */
function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = execFileSync("ldd", [binary], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch {
    return []; // "not a dynamic executable"
  }
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

function baseLayer(spec: ImageSpec): Buffer {
  const owner = spec.config.user ? spec.config.user.split(":").map(Number) : [0, 0];
  const [uid = 0, gid = uid] = owner;
  const entries: TarEntry[] = [
    { path: "tmp", type: "dir", mode: 0o1777 },
    { path: "etc", type: "dir", mode: 0o755 },
  ];
  const files: Record<string, string> = {
    "etc/passwd":
      "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    ...spec.files,
  };
  for (const dir of spec.ownedDirs ?? []) entries.push({ path: dir, type: "dir", mode: 0o755, uid, gid });
  const libs = new Set<string>();
  for (const b of spec.binaries) {
    if (!existsSync(b.from)) throw new Error(`${b.from} is missing: run \`${spec.buildWith}\``);
    entries.push({ path: b.to.replace(/^\//, ""), type: "file", mode: 0o755, data: readFileSync(b.from) });
    for (const lib of sharedLibraries(b.from)) libs.add(lib);
  }
  for (const lib of [...libs].sort())
    entries.push({ path: lib.replace(/^\//, ""), type: "file", mode: 0o755, data: readFileSync(lib) });
  for (const [path, content] of Object.entries(files)) {
    const owned = (spec.ownedDirs ?? []).some((d) => path.startsWith(`${d}/`));
    entries.push({ path, type: "file", mode: 0o644, data: Buffer.from(content), ...(owned ? { uid, gid } : {}) });
  }
  return tar(withParents(entries));
}

export function archivePath(name: string, dir = IMAGES_DIR): string {
  return join(dir, `${name}.oci.tar`);
}

/**
 * Builds one image's archive. A binary image is rebuilt only when a binary is newer than its
 * archive; the promshard image every time (dist changes with every build).
 */
export async function buildImage(
  name: string,
  dir = IMAGES_DIR,
): Promise<BuiltImage & { path: string; rebuilt: boolean }> {
  const spec = IMAGES[name];
  if (!spec) throw new Error(`no image ${name}; images: ${Object.keys(IMAGES).join(", ")}`);
  mkdirSync(dir, { recursive: true });
  const path = archivePath(spec.file, dir);
  const meta = `${path}.json`;
  if (!spec.extraLayers && existsSync(path) && existsSync(meta)) {
    const built = statSync(path).mtimeMs;
    if (spec.binaries.every((b) => existsSync(b.from) && statSync(b.from).mtimeMs < built)) {
      return { ...(JSON.parse(readFileSync(meta, "utf8")) as BuiltImage), path, rebuilt: false };
    }
  }
  const layers = [baseLayer(spec), ...(spec.extraLayers?.() ?? [])];
  const built = await writeOciArchive(path, spec.config, layers);
  writeFileSync(meta, JSON.stringify(built));
  return { ...built, path, rebuilt: true };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  const rows = [];
  for (const name of names.length > 0 ? names : Object.keys(IMAGES)) {
    const t = Date.now();
    const b = await buildImage(name);
    rows.push({
      image: b.name,
      archive: b.path,
      MB: Math.round(b.bytes / 1e5) / 10,
      seconds: b.rebuilt ? (Date.now() - t) / 1000 : "up to date",
    });
  }
  console.table(rows);
}
