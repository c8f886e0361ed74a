import { readFileSync } from "node:fs";
import { getGlobalDispatcher } from "undici";
import {
  ASSIGNMENT_PATH,
  type AssignmentDelta,
  parseAssignmentReply,
  type RejectedTarget,
} from "../contract/assignment.ts";
import { FLUSH_PATH, type FlushReport, parseFlushReport } from "../contract/flush.ts";
import {
  mergeRuntimeTargets,
  parseRuntimeReport,
  RUNTIME_PATH,
  RUNTIME_REMOVALS_PARAM,
  type ShardReport,
} from "../contract/runtime-report.ts";
import { PromshardError } from "../errors.ts";
import { httpCall } from "../util/http.ts";
import type { ShardClient, ShardRuntime, WholeSet } from "./shards.ts";

/** One call to a sidecar's API: its JSON answer, or an error naming the call. */
async function callSidecar(
  baseUrl: string,
  token: string,
  timeoutMs: number,
  method: "GET" | "PUT" | "PATCH" | "POST",
  path: string,
  body?: unknown,
): Promise<unknown> {
  const where = `${method} ${baseUrl}${path}`;
  const { status, text } = await httpCall(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    timeoutMs,
    // undici's request() rather than fetch: a shard's report of thousands of targets went
    // through web streams, a second of every round at 100,000 targets (issue 16).
    dispatcher: getGlobalDispatcher(),
  });
  if (status === 409 && codeOf(text) === "assignment_base_mismatch")
    throw new PromshardError("assignment_base_mismatch", `HTTP 409: ${text.slice(0, 300)}`, { path: where });
  if (status >= 300)
    throw new PromshardError("sidecar_request_failed", `HTTP ${status}: ${text.slice(0, 300)}`, {
      path: where,
    });
  try {
    return JSON.parse(text);
  } catch {
    throw new PromshardError("sidecar_request_failed", "the sidecar answered something that is not JSON", {
      path: where,
    });
  }
}

/** The `code` of a JSON error answer, if it has one. */
function codeOf(text: string): unknown {
  try {
    return (JSON.parse(text) as { code?: unknown } | null)?.code;
  } catch {
    return undefined;
  }
}

/** A drained shard's flush, one step (contract/flush.ts); a snapshot and a delete may take a while. */
export async function flushShard(baseUrl: string, token: string, release: boolean): Promise<FlushReport> {
  return parseFlushReport(await callSidecar(baseUrl, token, 130_000, "POST", FLUSH_PATH, { release }), baseUrl);
}

/**
 * The token the coordinator sends, read from `path` at each call (once a round): a rotated
 * Secret, or a projected ServiceAccount token the kubelet renews, is sent without a restart.
 */
export function tokenFromFile(path: string): () => string {
  return () => readFileSync(path, "utf8").trim();
}

/**
 * A full runtime report at least this often: a partial one leaves an unchanged target's
 * lastScrape as it was (the status page and /api/v1/targets show it).
 */
const FULL_REPORT_MS = 300_000;

/** The coordinator's side of the sidecar API (bearer token; JSON). */
export function httpShardClient(baseUrl: string, token: string, timeoutMs = 5000): ShardClient {
  const call = (method: "GET" | "PUT" | "PATCH", path: string, body?: unknown) =>
    callSidecar(baseUrl, token, timeoutMs, method, path, body);
  /**
   * The last report's targets and token: the next asks only for what changed since, removals
   * included (a sidecar before `?since=` ignores it and answers whole; one before removals
   * answers whole after a push). While nothing changed the round gets the same lists, which
   * it tells by identity (issue 16).
   */
  let last: { token: string; at: number; targets: ShardReport["targets"]; assigned: string[] } | undefined;
  const report = async (): Promise<ShardReport> => {
    const since = last && Date.now() - last.at < FULL_REPORT_MS ? last : undefined;
    const path = since
      ? `${RUNTIME_PATH}?since=${encodeURIComponent(since.token)}&${RUNTIME_REMOVALS_PARAM}=1`
      : RUNTIME_PATH;
    const r = parseRuntimeReport(await call("GET", path), baseUrl);
    if (!r.partial || !since) {
      last = r.token === null ? undefined : { token: r.token, at: Date.now(), targets: r.targets, assigned: [] };
      if (last) last.assigned = r.targets.map((t) => t.id);
      return r;
    }
    const targets = mergeRuntimeTargets(since.targets, r.targets, r.removed);
    const assigned = targets === since.targets ? since.assigned : targets.map((t) => t.id);
    last = { token: r.token ?? since.token, at: since.at, targets, assigned };
    return { ...r, targets, removed: [], partial: false };
  };
  return {
    async runtime(): Promise<ShardRuntime> {
      const r = await report();
      return {
        healthy: r.ready,
        version: r.version,
        assigned: last?.targets === r.targets ? last.assigned : r.targets.map((t) => t.id),
        targets: r.targets,
        headSeries: r.headSeries,
        reloadError: r.reloadError,
        deltas: r.deltas,
      };
    },
    async assign(version: number, targets: WholeSet, delta?: AssignmentDelta): Promise<readonly RejectedTarget[]> {
      if (delta)
        try {
          return parseAssignmentReply(await call("PATCH", ASSIGNMENT_PATH, delta));
        } catch (err) {
          // The sidecar holds another set than the delta's base (it restarted, or another
          // coordinator pushed): the whole set, at once rather than next round.
          if (!(err instanceof PromshardError) || err.code !== "assignment_base_mismatch") throw err;
        }
      const whole = typeof targets === "function" ? targets() : targets;
      return parseAssignmentReply(await call("PUT", ASSIGNMENT_PATH, { version, targets: whole }));
    },
  };
}
