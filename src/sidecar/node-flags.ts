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
