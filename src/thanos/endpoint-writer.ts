/**
 * Keeps Thanos Query's endpoint file (`--endpoint.sd-config-file`) naming one sidecar per
 * shard index of a coordinator's shard pods, as endpoint-choice.ts decides, from a watch of
 * the pods and their StatefulSets. Query re-reads the file every second (args.ts), so a
 * failover costs about two seconds of failing queries (docs/thanos.md); a pod that is being
 * deleted is left before it stops answering.
 *
 * The choice survives a restart in `<file>.chosen.json` (the file and it live on an emptyDir
 * shared with Query): without it, a restarted writer would list a shard index whose pods are
 * all down as one that never had data, and Query would answer without its series.
 */
import { readFile } from "node:fs/promises";
import type { V1Pod, V1StatefulSet } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { KubeClient } from "../kube/client.ts";
import type { Informer, InformerPool } from "../kube/informers.ts";
import type { Readiness } from "../observability/http.ts";
import { Counter, Gauge, type Registry } from "../observability/metrics.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { chooseEndpoints } from "./endpoint-choice.ts";
import { type Endpoint, endpointSdConfig } from "./files.ts";
import { shardCount, shardReplicaOf } from "./shard-pods.ts";

export interface EndpointWriterOptions {
  readonly client: KubeClient;
  readonly pool: InformerPool;
  readonly namespace: string;
  /** Label selector of the shard pods, e.g. `promshard.io/coordinator=promshard`. */
  readonly selector: string;
  readonly file: string;
  /** Listed as they are, strict (a Store Gateway, a Ruler). */
  readonly extra: readonly Endpoint[];
  readonly log: Logger;
  readonly registry: Registry;
}

export class EndpointWriter {
  readonly #o: EndpointWriterOptions;
  readonly #pods: Informer<V1Pod> & { release(): void };
  readonly #sets: Informer<V1StatefulSet> & { release(): void };
  readonly #unsubscribe: (() => void)[] = [];
  readonly #listed: Gauge;
  readonly #unavailable: Gauge;
  readonly #failovers: Counter;
  readonly #writes: Counter;
  #chosen = new Map<number, string>();
  /** Indices reported unavailable by the last write: logged once when they become so. */
  #unavailableNow = new Set<number>();
  #written: string | undefined;
  #pending: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #lastError: string | undefined;

  constructor(o: EndpointWriterOptions) {
    this.#o = o;
    const spec = { namespace: o.namespace, fieldSelector: "" };
    this.#pods = o.pool.acquire<V1Pod>(o.client, { ...spec, resource: "/api/v1/pods", labelSelector: o.selector });
    this.#sets = o.pool.acquire<V1StatefulSet>(o.client, {
      ...spec,
      resource: "/apis/apps/v1/statefulsets",
      labelSelector: "",
    });
    const r = { registers: [o.registry] };
    this.#listed = new Gauge({ name: "promshard_query_endpoints", help: "Endpoints in Query's file.", ...r });
    this.#unavailable = new Gauge({
      name: "promshard_query_endpoints_unavailable_shards",
      help: "Shard indices that had data and have no ready pod: queries touching them fail.",
      ...r,
    });
    this.#failovers = new Counter({
      name: "promshard_query_endpoints_failovers_total",
      help: "Shard indices that Query was moved to another replica group's pod for.",
      ...r,
    });
    this.#writes = new Counter({ name: "promshard_query_endpoints_writes_total", help: "Endpoint file writes.", ...r });
  }

  async start(): Promise<void> {
    this.#chosen = await this.#readChosen();
    await Promise.all([this.#pods.synced, this.#sets.synced]);
    const changed = () => this.#schedule();
    this.#unsubscribe.push(this.#pods.on(changed), this.#sets.on(changed));
    await this.#update();
  }

  readiness(): Readiness {
    if (this.#written === undefined)
      return { ready: false, reason: this.#lastError ?? "endpoint file not written yet" };
    return { ready: true };
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe.splice(0)) u();
    clearTimeout(this.#pending);
    await this.#running;
    this.#pods.release();
    this.#sets.release();
  }

  /** Events come in bursts (a pod's status changes several times as it starts): one write per burst. */
  #schedule(): void {
    if (this.#pending) return;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      void this.#update();
    }, 50);
  }

  #update(): Promise<void> {
    this.#running = this.#running.then(async () => {
      const pods = this.#pods.list();
      const replicas = pods.flatMap((p) => shardReplicaOf(p) ?? []);
      // An owner not seen yet: keep every index rather than drop one that still has data.
      const shards = shardCount(pods, this.#sets.list()) ?? Number.POSITIVE_INFINITY;
      const choice = chooseEndpoints(replicas, shards, this.#chosen, this.#o.extra);
      const log = this.#o.log;
      for (const index of choice.failovers) {
        log.warn(
          { shard: index, from: this.#chosen.get(index), to: choice.chosen.get(index) },
          "query endpoint failover",
        );
        this.#failovers.inc();
      }
      for (const index of choice.unavailable) {
        if (!this.#unavailableNow.has(index))
          log.error(
            { shard: index, address: choice.chosen.get(index) },
            "no ready pod for a shard index; queries fail",
          );
      }
      this.#unavailable.set(choice.unavailable.length);
      this.#listed.set(choice.endpoints.length);
      const text = endpointSdConfig(choice.endpoints);
      try {
        await writeFileAtomic(`${this.#o.file}.chosen.json`, JSON.stringify(Object.fromEntries(choice.chosen)));
        if (text !== this.#written) {
          await writeFileAtomic(this.#o.file, text);
          this.#writes.inc();
          log.info({ endpoints: choice.endpoints.length, file: this.#o.file }, "query endpoints written");
        }
        this.#chosen = new Map(choice.chosen);
        this.#unavailableNow = new Set(choice.unavailable);
        this.#written = text;
        this.#lastError = undefined;
      } catch (err) {
        this.#lastError = `cannot write ${this.#o.file}: ${(err as Error).message}`;
        log.error({ err, file: this.#o.file }, "cannot write the query endpoint file; retrying");
        setTimeout(() => this.#schedule(), 1_000).unref();
      }
    });
    return this.#running;
  }

  async #readChosen(): Promise<Map<number, string>> {
    const path = `${this.#o.file}.chosen.json`;
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch {
      return new Map();
    }
    try {
      const entries = Object.entries(JSON.parse(text) as Record<string, unknown>);
      return new Map(entries.flatMap(([k, v]) => (typeof v === "string" && /^\d+$/.test(k) ? [[Number(k), v]] : [])));
    } catch (err) {
      this.#o.log.warn({ err, file: path }, "the saved endpoint choice is unreadable; starting without it");
      return new Map();
    }
  }
}
