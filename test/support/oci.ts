/**
 * OCI image archives written from Node, for the one-node cluster (no registry is reachable, and
 * no image tool is needed): `ctr -n k8s.io images import <archive>` loads them into containerd.
 *
 * An archive is an OCI image layout (oci-layout, index.json, blobs/sha256/…) in a tar. Layers
 * are uncompressed tars (media type …layer.v1.tar, which the image spec allows): gzip in Node
 * would cost seconds per image for nothing, the archive never leaves the machine. Every entry
 * has mtime 0 and fixed owners, so the same inputs give the same digests.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface TarEntry {
  /** Path inside the archive, without a leading slash; directories may end in `/`. */
  path: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  uid?: number;
  gid?: number;
  /** Files: the content. */
  data?: Buffer;
  /** Symlinks: the target. */
  linkname?: string;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as GNU tar and Go's archive/tar write them.
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function header(fields: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  typeflag: string;
  linkname: string;
}): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(fields.name, 0, 100, "utf8");
  b.write(octal(fields.mode & 0o7777, 8), 100, 8, "ascii");
  b.write(octal(fields.uid, 8), 108, 8, "ascii");
  b.write(octal(fields.gid, 8), 116, 8, "ascii");
  b.write(octal(fields.size, 12), 124, 12, "ascii");
  b.write(octal(0, 12), 136, 12, "ascii"); // mtime
  b.write("        ", 148, 8, "ascii"); // checksum placeholder: spaces while summing
  b.write(fields.typeflag, 156, 1, "ascii");
  b.write(fields.linkname, 157, 100, "utf8");
  b.write("ustar\u000000", 257, 8, "ascii");
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return b;
}

/** A PAX record "<len> key=value\n", where len counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len++;
  return `${len}${body}`;
}

const pad = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/** A tar (ustar, PAX headers for names longer than ustar holds) of `entries`, in their order. */
export function tar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const name = e.type === "dir" && !e.path.endsWith("/") ? `${e.path}/` : e.path;
    const linkname = e.linkname ?? "";
    const pax: string[] = [];
    if (Buffer.byteLength(name) > 100) pax.push(paxRecord("path", name));
    if (Buffer.byteLength(linkname) > 100) pax.push(paxRecord("linkpath", linkname));
    if (pax.length > 0) {
      const data = Buffer.from(pax.join(""));
      parts.push(
        header({ name: "PaxHeader", mode: 0o644, uid: 0, gid: 0, size: data.length, typeflag: "x", linkname: "" }),
      );
      parts.push(data, pad(data.length));
    }
    const size = e.type === "file" ? (e.data?.length ?? 0) : 0;
    parts.push(
      header({
        name: name.slice(0, 100),
        mode: e.mode,
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        size,
        typeflag: e.type === "file" ? "0" : e.type === "dir" ? "5" : "2",
        linkname: linkname.slice(0, 100),
      }),
    );
    if (e.type === "file" && e.data) parts.push(e.data, pad(e.data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/**
 * Entries for a directory tree copied into the image at `dest` (files, directories, symlinks as
 * they are; owned by uid/gid). Sorted by path so the layer is reproducible.
 */
export function treeEntries(src: string, dest: string, owner: { uid: number; gid: number }): TarEntry[] {
  const out: TarEntry[] = [];
  const walk = (from: string, to: string) => {
    const st = lstatSync(from);
    if (st.isSymbolicLink()) {
      out.push({ path: to, type: "symlink", mode: 0o777, linkname: readlinkSync(from), ...owner });
    } else if (st.isDirectory()) {
      out.push({ path: to, type: "dir", mode: st.mode & 0o7777, ...owner });
      for (const name of readdirSync(from).sort()) walk(join(from, name), `${to}/${name}`);
    } else if (st.isFile()) {
      out.push({ path: to, type: "file", mode: st.mode & 0o7777, data: readFileSync(from), ...owner });
    }
    // Sockets, fifos and devices have no place in an image; node_modules holds none.
  };
  walk(src, dest.replace(/^\/+/, ""));
  return out;
}

/** Directories `a/`, `a/b/` … for every parent of the entries' paths not already listed (a tar needs no more). */
export function withParents(entries: readonly TarEntry[]): TarEntry[] {
  const listed = new Set(entries.filter((e) => e.type === "dir").map((e) => e.path.replace(/\/$/, "")));
  const out: TarEntry[] = [];
  for (const e of entries) {
    const segments = e.path.replace(/\/$/, "").split("/");
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join("/");
      if (!listed.has(dir)) {
        listed.add(dir);
        out.push({ path: dir, type: "dir", mode: 0o755 });
      }
    }
    out.push(e);
  }
  return out;
}

export interface ImageConfig {
  /** Full reference, e.g. quay.io/prometheus/prometheus:v3.16.0 (what pods name). */
  name: string;
  entrypoint: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  /** "uid:gid" or "uid". */
  user?: string;
  labels?: Record<string, string>;
}

export interface BuiltImage {
  name: string;
  /** sha256:… of the manifest: what containerd lists as the image's digest. */
  manifestDigest: string;
  /** sha256:… of the config: the image id a pod's status reports. */
  configDigest: string;
  bytes: number;
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Writes an OCI image layout tar to `path`: one image, linux/amd64, the given layers (tars) bottom first. */
export async function writeOciArchive(
  path: string,
  config: ImageConfig,
  layers: readonly Buffer[],
): Promise<BuiltImage> {
  const layerDescs = layers.map((l) => ({
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest: sha256(l),
    size: l.length,
  }));
  const configJson = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: {
        Entrypoint: config.entrypoint,
        ...(config.cmd ? { Cmd: config.cmd } : {}),
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...(config.env ?? [])],
        ...(config.workingDir ? { WorkingDir: config.workingDir } : {}),
        ...(config.user ? { User: config.user } : {}),
        ...(config.labels ? { Labels: config.labels } : {}),
      },
      rootfs: { type: "layers", diff_ids: layerDescs.map((d) => d.digest) },
      history: layers.map(() => ({ created_by: "promshard test/support/oci.ts" })),
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha256(configJson),
        size: configJson.length,
      },
      layers: layerDescs,
    }),
  );
  const tag = config.name.slice(config.name.lastIndexOf(":") + 1);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: sha256(manifest),
          size: manifest.length,
          platform: { architecture: "amd64", os: "linux" },
          // ctr import names the image after io.containerd.image.name (the full reference).
          annotations: { "io.containerd.image.name": config.name, "org.opencontainers.image.ref.name": tag },
        },
      ],
    }),
  );
  const blob = (b: Buffer): TarEntry => ({
    path: `blobs/sha256/${sha256(b).slice(7)}`,
    type: "file",
    mode: 0o644,
    data: b,
  });
  const seen = new Set<string>();
  const blobs = [configJson, manifest, ...layers].map(blob).filter((e) => !seen.has(e.path) && seen.add(e.path));
  const archive = tar([
    { path: "oci-layout", type: "file", mode: 0o644, data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { path: "index.json", type: "file", mode: 0o644, data: index },
    { path: "blobs/", type: "dir", mode: 0o755 },
    { path: "blobs/sha256/", type: "dir", mode: 0o755 },
    ...blobs,
  ]);
  await writeFile(`${path}.tmp`, archive);
  await rename(`${path}.tmp`, path);
  return {
    name: config.name,
    manifestDigest: sha256(manifest),
    configDigest: sha256(configJson),
    bytes: archive.length,
  };
}
