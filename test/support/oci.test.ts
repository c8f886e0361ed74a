/**
 * The OCI archive writer and the promshard image's recipe: GNU tar reads our tars (long names
 * through PAX headers, symlinks, modes, owners), an archive is a valid image layout whose
 * digests match, and the image follows the Dockerfile's final stage.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { dockerfileFinalStage } from "../../scripts/images.ts";
import { tar, withParents, writeOciArchive } from "./oci.ts";

const dir = mkdtempSync(join(tmpdir(), "promshard-oci-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("OCI archives", () => {
  it("writes tars GNU tar lists and extracts exactly (PAX long names, symlinks, modes, owners)", () => {
    const long = `app/node_modules/${"x".repeat(120)}/index.js`;
    const layer = tar(
      withParents([
        { path: "bin/tool", type: "file", mode: 0o755, data: Buffer.from("#!/bin/sh\n") },
        { path: long, type: "file", mode: 0o644, data: Buffer.from("export {};\n"), uid: 1000, gid: 1000 },
        { path: "bin/alias", type: "symlink", mode: 0o777, linkname: "tool" },
        { path: "tmp", type: "dir", mode: 0o1777 },
      ]),
    );
    const file = join(dir, "layer.tar");
    execFileSync("sh", ["-c", `cat > ${file}`], { input: layer });
    const listing = execFileSync("tar", ["tvf", file, "--numeric-owner"], { encoding: "utf8" });
    assert.match(listing, /^-rwxr-xr-x 0\/0 +10 1970-01-01 00:00 bin\/tool$/m);
    assert.match(listing, new RegExp(`^-rw-r--r-- 1000/1000 +11 1970-01-01 00:00 ${long}$`, "m"));
    assert.match(listing, /^lrwxrwxrwx 0\/0 +0 1970-01-01 00:00 bin\/alias -> tool$/m);
    assert.match(listing, /^drwxrwxrwt 0\/0 +0 1970-01-01 00:00 tmp\/$/m);
    const out = join(dir, "out");
    execFileSync("mkdir", [out]);
    execFileSync("tar", ["xf", file, "-C", out]);
    assert.equal(readFileSync(join(out, long), "utf8"), "export {};\n");
  });

  it("writes an image layout whose index, manifest, config and layers agree by digest", async () => {
    const layer = tar([{ path: "hello", type: "file", mode: 0o644, data: Buffer.from("hi\n") }]);
    const path = join(dir, "image.oci.tar");
    const built = await writeOciArchive(
      path,
      { name: "promshard.local/test:1", entrypoint: ["/hello"], user: "65534" },
      [layer],
    );
    const x = join(dir, "x");
    execFileSync("mkdir", [x]);
    execFileSync("tar", ["xf", path, "-C", x]);
    const blob = (digest: string) => readFileSync(join(x, "blobs/sha256", digest.slice(7)));
    const index = JSON.parse(readFileSync(join(x, "index.json"), "utf8"));
    assert.equal(index.manifests[0].annotations["io.containerd.image.name"], "promshard.local/test:1");
    assert.equal(index.manifests[0].digest, built.manifestDigest);
    const manifest = JSON.parse(blob(built.manifestDigest).toString());
    const config = JSON.parse(blob(manifest.config.digest).toString());
    assert.deepEqual(config.config.Entrypoint, ["/hello"]);
    assert.equal(config.rootfs.diff_ids[0], manifest.layers[0].digest);
    for (const d of [built.manifestDigest, manifest.config.digest, manifest.layers[0].digest]) {
      assert.equal(`sha256:${createHash("sha256").update(blob(d)).digest("hex")}`, d);
    }
  });

  it("reads the Dockerfile's final stage: what the promshard image must hold", () => {
    const stage = dockerfileFinalStage(readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8"));
    assert.deepEqual(stage.entrypoint, ["node", "/app/dist/cli.js"]);
    assert.equal(stage.user, "1000:1000");
    assert.equal(stage.workdir, "/app");
    assert.deepEqual(stage.env, ["NODE_ENV=production"]);
    assert.deepEqual(stage.copies, [
      { from: "/src/package.json", to: "/app/package.json" },
      { from: "/src/node_modules", to: "/app/node_modules" },
      { from: "/src/dist", to: "/app/dist" },
    ]);
    assert.throws(() => dockerfileFinalStage("FROM a\nRUN apt-get install x\n"), /does not know "RUN"/);
  });
});
