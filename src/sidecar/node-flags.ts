import { setFlagsFromString } from "node:v8";

/**
 * Node flags a sidecar is started with wherever promshard starts it (`promshard local`; the
 * benchmarks). V8 sizes the young generation from the heap limit, which follows the machine's
 * memory: 64 MiB semi-spaces (128 MiB of RSS) on a large host, for a process whose live set is
 * a few MiB between assignments. Each PUT's garbage (the body, its parse, the files) then fills
 * the young generation before a scavenge frees it. With 2 MiB semi-spaces the sidecar held
 * 290 MiB instead of 430 over 30 pushes of 10,000 targets, at the same PUT times
 * (bench/sidecar.bench.ts). A container with a memory limit gets a small heap limit, hence
 * small semi-spaces, from Node itself.
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2"];

/**
 * How the sidecar's old generation grows, set by the sidecar itself so that it holds however
 * the process was started (a pod's container, `promshard local`). After a full GC V8 lets the
 * old generation grow to up to four times what survived before the next one; a sidecar keeps
 * ~30 MiB between PUTs and makes ~50 MiB of garbage in each, so its heap settled at several
 * times its live set. Growing by 25 % holds it near that: 300 whole-set pushes of 6.45 MiB in
 * a row went from 210 to 223 MiB (peak 223) instead of 346 to 446 (peak 464), for PUTs ~25 %
 * slower (385 instead of 295 ms median for a re-PUT of 10,000 targets; 470 instead of 385 when
 * every target changes); the coordinator pushes only on change. `--optimize-for-size` held
 * 153 MiB but made PUTs 7 times slower.
 */
export function tuneSidecarHeap(): void {
  setFlagsFromString("--heap-growing-percent=25");
}
