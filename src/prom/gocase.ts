import { CASE_RANGES, UPPER_LOWER } from "./gocase-table.ts";

/**
 * Go's strings.ToLower / strings.ToUpper, which the lowercase and uppercase relabel actions
 * call. Go maps each code point on its own through Unicode's simple case mapping; JavaScript's
 * toLowerCase/toUpperCase use full, context-sensitive mapping ("ß" -> "SS", final sigma,
 * "İ" -> "i̇"), so non-ASCII text goes through Go's own table.
 */
export function goToLower(s: string): string {
  return isAscii(s) ? s.toLowerCase() : mapCodePoints(s, true);
}

export function goToUpper(s: string): string {
  return isAscii(s) ? s.toUpperCase() : mapCodePoints(s, false);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function mapCodePoints(s: string, lower: boolean): string {
  let out = "";
  for (const ch of s) out += String.fromCodePoint(mapRune(ch.codePointAt(0)!, lower));
  return out;
}

function mapRune(r: number, lower: boolean): number {
  let lo = 0;
  let hi = CASE_RANGES.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    const [first, last, dLower, dUpper] = CASE_RANGES[m]!;
    if (r < first) hi = m;
    else if (r > last) lo = m + 1;
    else {
      const delta = lower ? dLower : dUpper;
      // Alternating upper/lower pairs: even offsets are upper case, odd ones lower.
      if (delta === UPPER_LOWER) return first + (((r - first) & ~1) | (lower ? 1 : 0));
      return r + delta;
    }
  }
  return r;
}
