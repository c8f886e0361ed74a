/**
 * Kubernetes resource quantities (`100m`, `0.5`, `128Mi`, `1e3`), as the API accepts them for
 * container resources (non-negative). Parsed to a number only to compare a request with its
 * limit; the text itself is what goes into the pod.
 */
const QUANTITY = /^\+?(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

const SUFFIX: Readonly<Record<string, number>> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The quantity's value, or undefined when the text is not a valid non-negative quantity. */
export function parseQuantity(text: string): number | undefined {
  if (text.length > 64) return undefined;
  const m = QUANTITY.exec(text);
  if (!m) return undefined;
  const base = Number(m[1]);
  const suffix = m[2] ?? "";
  const mult = SUFFIX[suffix] ?? 10 ** Number(suffix.slice(1));
  const v = base * mult;
  return Number.isFinite(v) ? v : undefined;
}
