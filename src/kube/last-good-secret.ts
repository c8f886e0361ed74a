import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import { COORDINATOR_LABEL, LAST_GOOD_KEY, lastGoodSecretName } from "../webhook/inject.ts";
import type { KubeApi } from "./api.ts";

const HASH_ANNOTATION = "promshard.io/config-hash";

/**
 * Keeps the coordinator's last good config in a Secret in every namespace with shards of it
 * (lastGoodSecretName: the webhook mounts it into each sidecar, optional). A pod started while
 * the config file is broken has no last good copy of its own (its state dir is new) and runs
 * this one, so it scrapes what the others do. Written only when the config changed (by hash).
 * The coordinator's own namespace has one too: a coordinator restarted with a broken file
 * reads it there (read), wherever its shards are.
 */
export class LastGoodSecrets {
  readonly #api: KubeApi;
  readonly #name: string;
  readonly #coordinator: string;
  readonly #log: Logger;
  #text: string | undefined;
  #hash = "";
  /** What each namespace's Secret holds, as far as this process wrote or read it. */
  readonly #written = new Map<string, string>();
  /** Problems already logged, by namespace: said once until the write works. */
  readonly #failing = new Map<string, string>();

  constructor(api: KubeApi, coordinator: string, log: Logger) {
    this.#api = api;
    this.#coordinator = coordinator;
    this.#name = lastGoodSecretName(coordinator);
    this.#log = log;
  }

  /** The config that just loaded (service.ts onConfigLoaded). */
  set(text: string): void {
    this.#text = text;
    this.#hash = createHash("sha256").update(text).digest("hex");
  }

  /**
   * The config a previous run kept (the first of `namespaces` whose Secret has one), for a
   * coordinator that starts while its config file is invalid: it runs that instead of nothing.
   * Undefined when there is none; a namespace it cannot read is logged and skipped.
   */
  async read(namespaces: Iterable<string>): Promise<{ text: string; namespace: string } | undefined> {
    for (const ns of new Set(namespaces)) {
      let text: string | undefined;
      let problem: string;
      try {
        const got = await this.#api.request<{ data?: Record<string, string>; message?: string }>(
          "GET",
          `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${this.#name}`,
        );
        if (got.status === 404) continue;
        text = got.status === 200 ? got.body.data?.[LAST_GOOD_KEY] : undefined;
        problem = got.status === 200 ? `no key ${LAST_GOOD_KEY}` : `HTTP ${got.status}: ${got.body?.message ?? ""}`;
      } catch (err) {
        problem = (err as Error).message;
      }
      if (text === undefined) {
        this.#log.warn(
          { namespace: ns, secret: this.#name, err: problem },
          "cannot read the last good config (RBAC needs secrets get)",
        );
        continue;
      }
      const decoded = Buffer.from(text, "base64").toString("utf8");
      this.set(decoded);
      this.#written.set(ns, this.#hash);
      return { text: decoded, namespace: ns };
    }
    return undefined;
  }

  /** Brings each namespace's Secret to the last good config; a failure is logged, never thrown. */
  async sync(namespaces: Iterable<string>): Promise<void> {
    if (this.#text === undefined) return;
    for (const ns of new Set(namespaces)) {
      if (this.#written.get(ns) === this.#hash) continue;
      try {
        await this.#write(ns);
        this.#written.set(ns, this.#hash);
        if (this.#failing.delete(ns)) this.#log.info({ namespace: ns, secret: this.#name }, "last good config kept");
      } catch (err) {
        const problem = (err as Error).message;
        if (this.#failing.get(ns) === problem) continue;
        this.#failing.set(ns, problem);
        this.#log.warn(
          { namespace: ns, secret: this.#name, err: problem },
          "cannot keep the last good config for new shard pods (RBAC needs secrets get, create, update)",
        );
      }
    }
  }

  async #write(ns: string): Promise<void> {
    const path = `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets`;
    const body = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: this.#name,
        namespace: ns,
        labels: { [COORDINATOR_LABEL]: this.#coordinator },
        annotations: { [HASH_ANNOTATION]: this.#hash },
      },
      type: "Opaque",
      data: { [LAST_GOOD_KEY]: Buffer.from(this.#text!).toString("base64") },
    };
    const got = await this.#api.request<{ metadata?: { annotations?: Record<string, string> }; message?: string }>(
      "GET",
      `${path}/${this.#name}`,
    );
    if (got.status === 404) {
      await this.#api.call("POST", path, { body });
      return;
    }
    if (got.status !== 200)
      throw new PromshardError(
        "kube_request_failed",
        `GET Secret ${ns}/${this.#name}: HTTP ${got.status}: ${got.body?.message ?? ""}`,
      );
    if (got.body.metadata?.annotations?.[HASH_ANNOTATION] === this.#hash) return;
    await this.#api.call("PUT", `${path}/${this.#name}`, { body });
  }
}
