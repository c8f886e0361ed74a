import { request } from "undici";
import type { AssignedTarget } from "../sidecar/generate.ts";
import type { ShardClient, ShardRuntime } from "./coordinator.ts";

interface TargetJson {
  id?: string | null;
  health?: string | null;
  series?: number | null;
  lastError?: string | null;
  lastScrape?: string | null;
}

const strOrNull = (v: unknown) => (typeof v === "string" ? v : null);

interface RuntimeJson {
  prometheus?: { ready?: boolean; headSeries?: number | null };
  assignment?: { version?: number } | null;
  targets?: TargetJson[];
}

/** The coordinator's side of the sidecar API (bearer token; JSON). */
export function httpShardClient(baseUrl: string, token: string, timeoutMs = 5000): ShardClient {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const call = async (method: "GET" | "PUT", path: string, body?: unknown): Promise<unknown> => {
    const res = await request(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300)
      throw new Error(`${method} ${baseUrl}${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${method} ${baseUrl}${path}: the sidecar answered something that is not JSON`);
    }
  };
  return {
    async runtime(): Promise<ShardRuntime> {
      const r = (await call("GET", "/api/v1/runtime")) as RuntimeJson;
      if (!r || typeof r !== "object" || !Array.isArray(r.targets))
        throw new Error(`${baseUrl}: malformed runtime report`);
      const targets = r.targets
        .filter((t): t is TargetJson & { id: string } => typeof t?.id === "string")
        .map((t) => ({
          id: t.id,
          up: t.health === "up",
          series: typeof t.series === "number" ? t.series : null,
          health: strOrNull(t.health),
          lastError: strOrNull(t.lastError),
          lastScrape: strOrNull(t.lastScrape),
        }));
      return {
        healthy: r.prometheus?.ready === true,
        version: typeof r.assignment?.version === "number" ? r.assignment.version : -1,
        assigned: targets.map((t) => t.id),
        targets,
        headSeries: r.prometheus?.headSeries ?? null,
      };
    },
    async assign(version: number, targets: readonly AssignedTarget[]): Promise<void> {
      await call("PUT", "/api/v1/assignment", { version, targets });
    },
  };
}
