import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { PromshardError } from "../errors.ts";
import type { KubeApi } from "./api.ts";

interface Lease {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

export interface LeaderElectorOptions {
  readonly api: KubeApi;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  /** How long a lease holds without renewal (client-go's LeaseDuration). Default 15 s. */
  readonly leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down. Default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Time between attempts. Default 2 s. */
  readonly retryPeriodMs?: number;
  readonly log?: Logger;
  readonly onChange?: (leading: boolean) => void;
  readonly now?: () => number;
}

/** Kubernetes' MicroTime: RFC 3339 with microseconds. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
 * take the lease when it is free or expired, renew it every retry period, step down when a
 * renewal has not succeeded within the renew deadline, and release it on stop so that the
 * other replica takes over at once. Expiry is judged by when this process last saw the
 * record change (not by the holder's clock), and every write carries the resourceVersion it
 * read, so two candidates never both win.
 */
export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  #leading = false;
  #stopped = false;
  #observed: { record: string; at: number } | undefined;
  #lastRenew = 0;
  #running: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(opts: LeaderElectorOptions) {
    this.#o = opts;
  }

  get leading(): boolean {
    return this.#leading;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  get #path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/leases`;
  }

  #set(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#o.log?.info(
      { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity, leading },
      leading ? "became the leader" : "stopped leading",
    );
    this.#o.onChange?.(leading);
  }

  /** One attempt to take or renew the lease; true when this process holds it afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const o = this.#o;
    const now = this.#now();
    const durationS = Math.ceil((o.leaseDurationMs ?? 15_000) / 1000);
    const res = await o.api.request<Lease>("GET", `${this.#path}/${encodeURIComponent(o.name)}`);
    if (res.status === 404) {
      const created = await o.api.request<Lease>("POST", this.#path, {
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: o.name, namespace: o.namespace },
          spec: {
            holderIdentity: o.identity,
            leaseDurationSeconds: durationS,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        },
      });
      return created.status === 201;
    }
    if (res.status !== 200)
      throw new PromshardError("kube_request_failed", `HTTP ${res.status}`, {
        path: `GET lease ${o.namespace}/${o.name}`,
      });
    const lease = res.body;
    const spec = lease.spec ?? {};
    const record = JSON.stringify(spec);
    if (this.#observed?.record !== record) this.#observed = { record, at: now };
    const holder = spec.holderIdentity ?? "";
    const mine = holder === o.identity;
    const held = holder !== "" && this.#observed.at + (spec.leaseDurationSeconds ?? durationS) * 1000 > now;
    if (!mine && held) return false;
    const updated = await o.api.request<Lease>("PUT", `${this.#path}/${encodeURIComponent(o.name)}`, {
      body: {
        ...lease,
        spec: {
          holderIdentity: o.identity,
          leaseDurationSeconds: durationS,
          acquireTime: mine ? spec.acquireTime : microTime(now),
          renewTime: microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      },
    });
    // 409: someone else wrote it since we read it; they won this round.
    if (updated.status !== 200) return false;
    this.#observed = { record: JSON.stringify(updated.body.spec ?? {}), at: now };
    return true;
  }

  /** Runs until stop(): acquires, renews, steps down on a missed deadline. */
  start(): void {
    const o = this.#o;
    this.#running = (async () => {
      while (!this.#stopped) {
        let ok = false;
        try {
          ok = await this.tryAcquireOrRenew();
        } catch (err) {
          o.log?.warn({ err }, "lease request failed");
        }
        const now = this.#now();
        if (ok) {
          this.#lastRenew = now;
          this.#set(true);
        } else if (!this.#leading || now - this.#lastRenew > (o.renewDeadlineMs ?? 10_000)) this.#set(false);
        await sleep(o.retryPeriodMs ?? 2000, undefined, { signal: this.#abort.signal }).catch(() => undefined);
      }
    })();
  }

  /**
   * Stops, and releases the lease if held so that the other replica need not wait for expiry
   * (`release: false` leaves it to expire, as a crash would).
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#running;
    if (!this.#leading) return;
    if (opts.release === false) {
      this.#set(false);
      return;
    }
    const o = this.#o;
    try {
      const res = await o.api.request<Lease>("GET", `${this.#path}/${encodeURIComponent(o.name)}`);
      if (res.status === 200 && res.body.spec?.holderIdentity === o.identity) {
        await o.api.request("PUT", `${this.#path}/${encodeURIComponent(o.name)}`, {
          body: { ...res.body, spec: { ...res.body.spec, holderIdentity: null, leaseDurationSeconds: 1 } },
        });
      }
    } catch (err) {
      o.log?.warn({ err }, "could not release the lease; the other replica takes over when it expires");
    }
    this.#set(false);
  }
}

/** Waits until `elector` leads (for tests and start-up ordering). */
export async function untilLeading(elector: LeaderElector, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!elector.leading && Date.now() < deadline) await sleep(50);
  return elector.leading;
}
