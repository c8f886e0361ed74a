import { PromshardError } from "../errors.ts";

/**
 * The coordinator <-> sidecar contract for a drained shard in a cluster: `POST /api/v1/flush`
 * puts the shard's head into the bucket through the pod's Thanos sidecar (src/sidecar/flush.ts
 * says how), `{"release": true}` then drops the head's copy once the coordinator has confirmed
 * the bucket serves it. Every call is idempotent and says where the shard is.
 */
export const FLUSH_PATH = "/api/v1/flush";

export type FlushState =
  /** Targets still scraped, or their staleness markers not yet written: nothing flushed yet. */
  | "draining"
  /** Flushed; the Thanos sidecar has not uploaded every block yet (`unshipped`). */
  | "shipping"
  /** Every block of the shard, head included, is in the bucket. */
  | "shipped"
  /** Shipped, and the head's copy of the flushed range is deleted. */
  | "released";

export interface FlushReport {
  readonly state: FlushState;
  /** The blocks the flush cut from the head (none when the head had no samples). */
  readonly blocks: readonly string[];
  /** Blocks of the shard the Thanos sidecar has not uploaded yet. */
  readonly unshipped: readonly string[];
}

const STATES = new Set<string>(["draining", "shipping", "shipped", "released"]);

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");

/** Checks a sidecar's flush answer; `from` names the sidecar in the error. */
export function parseFlushReport(body: unknown, from: string): FlushReport {
  const b = body as Partial<Record<keyof FlushReport, unknown>> | null;
  if (
    b === null ||
    typeof b !== "object" ||
    !STATES.has(String(b.state)) ||
    !isStrings(b.blocks) ||
    !isStrings(b.unshipped)
  )
    throw new PromshardError(
      "sidecar_request_failed",
      "the flush answer is not {state, blocks, unshipped}; run the same promshard version in the coordinator and the sidecars",
      { path: `POST ${from}${FLUSH_PATH}` },
    );
  return { state: b.state as FlushState, blocks: b.blocks, unshipped: b.unshipped };
}
