/**
 * Whether a shard pod has scraped its assignment, asked of what it serves without a token:
 * its promshard sidecar's /metrics (the applied assignment's version and size) and its
 * Prometheus's `/api/v1/targets?state=active` (every target scraped once). Query is moved
 * to another replica group's pod only once this holds (endpoint-choice.ts): a pod that has
 * just started has its targets but not their series, and Query would count fewer without
 * an error.
 */
import { httpCall, unreachableReason } from "../util/http.ts";

export interface WarmProbe {
  /** Its Prometheus's base URL (the Thanos sidecar's --prometheus.url, at the pod's IP). */
  readonly prometheus: string;
  /** Its promshard sidecar's /metrics; absent where the pod has none (no assignment to wait for). */
  readonly sidecarMetrics?: string;
}

export interface Warmth {
  readonly warm: boolean;
  /** Why not, for the log. */
  readonly reason?: string;
}

/** The sidecar's applied assignment from its metrics text, or a reason there is none. */
export function appliedAssignment(metrics: string): { version: number; targets: number } | string {
  const value = (name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(metrics);
    return m ? Number(m[1]) : Number.NaN;
  };
  const version = value("promshard_sidecar_assignment_version");
  const targets = value("promshard_sidecar_assigned_targets");
  if (!Number.isFinite(version) || !Number.isFinite(targets)) return "its sidecar's /metrics has no assignment gauges";
  if (version < 0) return "its sidecar has no assignment yet";
  return { version, targets };
}

/** Whether Prometheus's active targets (the `/api/v1/targets` answer) number at least `assigned`, each scraped once. */
export function scrapedAll(answer: unknown, assigned: number): Warmth {
  const active = (answer as { data?: { activeTargets?: unknown } } | null)?.data?.activeTargets;
  if (!Array.isArray(active)) return { warm: false, reason: "its Prometheus's /api/v1/targets has no activeTargets" };
  // Prometheus reads the target files a moment after the sidecar writes them.
  if (active.length < assigned)
    return { warm: false, reason: `its Prometheus has ${active.length} of ${assigned} targets` };
  const waiting = active.filter((t) => (t as { health?: unknown }).health === "unknown").length;
  if (waiting > 0) return { warm: false, reason: `${waiting} of ${active.length} targets not scraped yet` };
  return { warm: true };
}

export async function probeWarm(probe: WarmProbe, timeoutMs = 2_000): Promise<Warmth> {
  try {
    let assigned = 0;
    if (probe.sidecarMetrics) {
      const m = await httpCall(probe.sidecarMetrics, { timeoutMs });
      if (m.status !== 200) return { warm: false, reason: `its sidecar's /metrics answered HTTP ${m.status}` };
      const applied = appliedAssignment(m.text);
      if (typeof applied === "string") return { warm: false, reason: applied };
      assigned = applied.targets;
    }
    const t = await httpCall(`${probe.prometheus.replace(/\/+$/, "")}/api/v1/targets?state=active`, { timeoutMs });
    if (t.status !== 200) return { warm: false, reason: `its Prometheus's /api/v1/targets answered HTTP ${t.status}` };
    return scrapedAll(JSON.parse(t.text), assigned);
  } catch (err) {
    return { warm: false, reason: err instanceof SyntaxError ? "an answer that is not JSON" : unreachableReason(err) };
  }
}
