/**
 * Keeps Thanos Query's endpoint file (`--endpoint.sd-config-file`) naming one sidecar per
 * shard index of a coordinator's shard pods, as endpoint-choice.ts decides, from a watch of
 * the pods and their StatefulSets. Query re-reads the file every second (args.ts), so a
 * failover costs about two seconds of failing queries (docs/thanos.md); a pod that is being
 * deleted is left before it stops answering (the webhook's preStop pause keeps it answering
 * meanwhile). A failover waits until the other group's pod is warm (warm.ts), asked every
 * second while an index waits; after `maxWaitMs` it goes anyway, with a warning, so that a
 * probe that cannot get through (a NetworkPolicy) does not keep an index failing for good.
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
import { chooseEndpoints, type EndpointChoice } from "./endpoint-choice.ts";
import { type Endpoint, endpointSdConfig } from "./files.ts";
import { shardCount, shardReplicaOf } from "./shard-pods.ts";
import { probeWarm } from "./warm.ts";

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
  /** How long a failover waits for a warm pod before taking a ready one. */
  readonly maxWaitMs: number;
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
  /** Pods found warm, by address (forgotten when the address leaves the list). */
  readonly #warm = new Set<string>();
  readonly #probing = new Set<string>();
  /** Per waiting index: since when, and whether the wait's end was logged. */
  readonly #waitingSince = new Map<number, number>();
  #recheck: NodeJS.Timeout | undefined;
  readonly #waiting: Gauge;

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
    this.#waiting = new Gauge({
      name: "promshard_query_endpoints_waiting_shards",
      help: "Shard indices whose chosen pod is not ready and whose other ready pods have not scraped their assignment yet: the choice is kept.",
      ...r,
    });
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
    clearTimeout(this.#recheck);
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
      const present = new Set(replicas.map((r) => r.address));
      for (const a of this.#warm) if (!present.has(a)) this.#warm.delete(a);
      const now = Date.now();
      const log = this.#o.log;
      const choice = chooseEndpoints(replicas, shards, this.#chosen, this.#o.extra, (r) => {
        if (!r.probe || this.#warm.has(r.address)) return true;
        const since = this.#waitingSince.get(r.index);
        if (since === undefined || now - since < this.#o.maxWaitMs) return false;
        log.warn(
          { shard: r.index, to: r.address, waitedMs: now - since },
          "no pod of another group was seen to scrape its assignment; failing over to a ready one anyway",
        );
        return true;
      });
      this.#awaitWarm(choice.waiting, now);
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
      this.#waiting.set(choice.waiting.length);
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

  /**
   * Asks the waiting indices' candidates whether they are warm (each once at a time), chooses
   * again as soon as one is, and asks again in a second while any index waits.
   */
  #awaitWarm(waiting: EndpointChoice["waiting"], now: number): void {
    const indices = new Set(waiting.map((w) => w.index));
    for (const i of this.#waitingSince.keys()) if (!indices.has(i)) this.#waitingSince.delete(i);
    for (const { index, candidates } of waiting) {
      if (!this.#waitingSince.has(index)) {
        this.#waitingSince.set(index, now);
        this.#o.log.info(
          { shard: index, chosen: this.#chosen.get(index), candidates: candidates.map((c) => c.address) },
          "chosen pod not ready; failing over once another group's pod has scraped its assignment",
        );
      }
      for (const c of candidates) {
        if (!c.probe || this.#probing.has(c.address)) continue;
        this.#probing.add(c.address);
        void probeWarm(c.probe).then((w) => {
          this.#probing.delete(c.address);
          if (w.warm) {
            this.#warm.add(c.address);
            this.#schedule();
          } else this.#o.log.debug({ shard: index, candidate: c.address, reason: w.reason }, "not warm yet");
        });
      }
    }
    clearTimeout(this.#recheck);
    if (waiting.length > 0) this.#recheck = setTimeout(() => this.#schedule(), 1_000).unref();
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
