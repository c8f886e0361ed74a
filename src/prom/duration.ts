/**
 * Prometheus durations (prometheus/common model.Duration): `1y2w3d4h5m6s7ms`, units in
 * descending order, each at most once, or a bare "0". Values are milliseconds.
 */
const UNITS: readonly (readonly [string, number])[] = [
  ["y", 365 * 24 * 3600 * 1000],
  ["w", 7 * 24 * 3600 * 1000],
  ["d", 24 * 3600 * 1000],
  ["h", 3600 * 1000],
  ["m", 60 * 1000],
  ["s", 1000],
  ["ms", 1],
];
const PATTERN = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
/** time.Duration is int64 nanoseconds: about 292 years. */
const MAX_MS = Math.floor(Number(2n ** 63n - 1n) / 1e6);

/** Returns milliseconds, or a reason the text is not a duration. */
export function parseDuration(text: string): number | { error: string } {
  if (text === "0") return 0;
  if (text === "") return { error: "empty duration string" };
  const m = PATTERN.exec(text);
  // The text is not quoted back: a message names the field, and a misplaced value may be a secret.
  if (!m) return { error: "not a valid duration string" };
  let ms = 0;
  for (let i = 0; i < UNITS.length; i++) {
    const v = m[i + 1];
    if (v !== undefined) ms += Number(v) * UNITS[i]![1];
  }
  if (!Number.isSafeInteger(ms) || ms > MAX_MS) return { error: "duration out of range" };
  return ms;
}

/** model.Duration.String(): years and weeks only when exact, so 90d stays 90d, not 12w6d. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const [unit, mult] of UNITS) {
    if ((unit === "y" || unit === "w") && rest % mult !== 0) continue;
    const v = Math.floor(rest / mult);
    if (v > 0) {
      out += `${v}${unit}`;
      rest -= v * mult;
    }
  }
  return out;
}
