import { createRequire } from "node:module";

type ClientNode = typeof import("@kubernetes/client-node");

let loaded: ClientNode | undefined;

/**
 * @kubernetes/client-node, loaded at its first use instead of with every module that names
 * it: ~80 MiB of RSS and a second of CPU at start (its generated API groups), which
 * `promshard local` and a coordinator without kubernetes_sd_configs never use. Node requires
 * its ES modules synchronously, so the builders that use it (kubeClientFor) stay synchronous.
 */
export function clientNode(): ClientNode {
  loaded ??= createRequire(import.meta.url)("@kubernetes/client-node") as ClientNode;
  return loaded;
}
