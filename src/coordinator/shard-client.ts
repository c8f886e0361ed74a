import { readFileSync } from "node:fs";
import { getGlobalDispatcher } from "undici";
import {
  ASSIGNMENT_PATH,
  type AssignedTarget,
  parseAssignmentReply,
  type RejectedTarget,
} from "../contract/assignment.ts";
import { FLUSH_PATH, type FlushReport, parseFlushReport } from "../contract/flush.ts";
import { parseRuntimeReport, RUNTIME_PATH } from "../contract/runtime-report.ts";
import { PromshardError } from "../errors.ts";
import { httpCall } from "../util/http.ts";
import type { ShardClient, ShardRuntime } from "./shards.ts";

/** One call to a sidecar's API: its JSON answer, or an error naming the call. */
async function callSidecar(
  baseUrl: string,
  token: string,
  timeoutMs: number,
  method: "GET" | "PUT" | "POST",
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

/** The coordinator's side of the sidecar API (bearer token; JSON). */
export function httpShardClient(baseUrl: string, token: string, timeoutMs = 5000): ShardClient {
  const call = (method: "GET" | "PUT", path: string, body?: unknown) =>
    callSidecar(baseUrl, token, timeoutMs, method, path, body);
  return {
    async runtime(): Promise<ShardRuntime> {
      const r = parseRuntimeReport(await call("GET", RUNTIME_PATH), baseUrl);
      const targets = r.targets.map((t) => ({ ...t, up: t.health === "up" }));
      return {
        healthy: r.ready,
        version: r.version,
        assigned: targets.map((t) => t.id),
        targets,
        headSeries: r.headSeries,
        reloadError: r.reloadError,
      };
    },
    async assign(version: number, targets: readonly AssignedTarget[]): Promise<readonly RejectedTarget[]> {
      return parseAssignmentReply(await call("PUT", ASSIGNMENT_PATH, { version, targets }));
    },
  };
}
