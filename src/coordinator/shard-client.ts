import {
  ASSIGNMENT_PATH,
  type AssignedTarget,
  parseAssignmentReply,
  type RejectedTarget,
} from "../contract/assignment.ts";
import { parseRuntimeReport, RUNTIME_PATH } from "../contract/runtime-report.ts";
import { PromshardError } from "../errors.ts";
import { httpCall } from "../util/http.ts";
import type { ShardClient, ShardRuntime } from "./shards.ts";

/** The coordinator's side of the sidecar API (bearer token; JSON). */
export function httpShardClient(baseUrl: string, token: string, timeoutMs = 5000): ShardClient {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const call = async (method: "GET" | "PUT", path: string, body?: unknown): Promise<unknown> => {
    const where = `${method} ${baseUrl}${path}`;
    const { status, text } = await httpCall(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      timeoutMs,
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
  };
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
