/**
 * Number syntax as Go's strconv sees it, on bytes. The exposition parsers in Prometheus
 * reject values that strconv.ParseFloat rejects (syntax, or overflow to ±Inf), and text
 * timestamps that strconv.ParseInt(…, 10, 64) rejects; we only need the verdict, not the value.
 */

export const FLOAT_OK = 0;
export const FLOAT_SYNTAX = 1;
export const FLOAT_RANGE = 2;
/** Prometheus refuses `p`, `P` and `_` before calling ParseFloat ("pre-Go 1.13 float formats"). */
export const FLOAT_UNSUPPORTED = 3;
/** Syntactically fine but Inf or NaN (an OpenMetrics timestamp must not be). */
export const FLOAT_NONFINITE = 4;

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/** Common prefix length of b[s:e] and an ASCII lower-case word, ignoring case. */
function prefixIgnoreCase(b: Uint8Array, s: number, e: number, word: string): number {
  let n = 0;
  while (n < word.length && s + n < e && lower(b[s + n]!) === word.charCodeAt(n)) n++;
  return n;
}

/**
 * Checks b[s:e] the way Prometheus' parseFloat does: no p/P/_ at all, then
 * strconv.ParseFloat(…, 64) syntax (decimal, or inf/infinity/nan; hex needs a `p`
 * exponent, so never passes) and range (overflow is an error, underflow is not).
 */
export function checkPromFloat(b: Uint8Array, s: number, e: number): number {
  for (let k = s; k < e; k++) {
    const c = b[k]!;
    if (c === 0x70 || c === 0x50 || c === 0x5f) return FLOAT_UNSUPPORTED;
  }
  if (s >= e) return FLOAT_SYNTAX;
  let i = s;
  const c0 = b[i]!;
  // special(): optional sign then inf/infinity; nan takes no sign.
  if (c0 === 0x2b || c0 === 0x2d || lower(c0) === 0x69) {
    const t = c0 === 0x2b || c0 === 0x2d ? i + 1 : i;
    let n = prefixIgnoreCase(b, t, e, "infinity");
    if (n > 3 && n < 8) n = 3;
    if (n === 3 || n === 8) return t + n === e ? FLOAT_NONFINITE : FLOAT_SYNTAX;
  } else if (lower(c0) === 0x6e) {
    return prefixIgnoreCase(b, i, e, "nan") === 3 && i + 3 === e ? FLOAT_NONFINITE : FLOAT_SYNTAX;
  }
  if (c0 === 0x2b || c0 === 0x2d) i++;
  // A hex mantissa ("0x…") always needs a p exponent, which was refused above.
  if (i + 1 < e && b[i] === 0x30 && lower(b[i + 1]!) === 0x78) return FLOAT_SYNTAX;
  let digits = 0;
  let sawDot = false;
  // Decimal exponent of the first non-zero digit, relative to the digits read.
  let intDigits = 0; // digits before the dot, after leading zeros
  let leadZerosAfterDot = 0; // zeros right after the dot before the first non-zero digit
  let nonZero = false;
  for (; i < e; i++) {
    const c = b[i]!;
    if (c >= 0x30 && c <= 0x39) {
      digits++;
      if (c !== 0x30) nonZero = true;
      if (!sawDot) {
        if (nonZero) intDigits++;
      } else if (!nonZero) leadZerosAfterDot++;
      continue;
    }
    if (c === 0x2e && !sawDot) {
      sawDot = true;
      continue;
    }
    break;
  }
  if (digits === 0) return FLOAT_SYNTAX;
  let exp = 0;
  if (i < e) {
    if (lower(b[i]!) !== 0x65) return FLOAT_SYNTAX;
    i++;
    let neg = false;
    if (i < e && (b[i] === 0x2b || b[i] === 0x2d)) {
      neg = b[i] === 0x2d;
      i++;
    }
    if (i >= e) return FLOAT_SYNTAX;
    for (; i < e; i++) {
      const c = b[i]!;
      if (c < 0x30 || c > 0x39) return FLOAT_SYNTAX;
      if (exp < 100000) exp = exp * 10 + (c - 0x30);
    }
    if (neg) exp = -exp;
  }
  if (!nonZero) return FLOAT_OK;
  // The value is about 10^mag with mag the exponent of its leading digit.
  const mag = (intDigits > 0 ? intDigits - 1 : -(leadZerosAfterDot + 1)) + exp;
  if (mag < 308) return FLOAT_OK;
  if (mag > 308) return FLOAT_RANGE;
  let str = "";
  for (let k = s; k < e; k++) str += String.fromCharCode(b[k]!);
  return Number.isFinite(Number(str)) ? FLOAT_OK : FLOAT_RANGE;
}

/** strconv.ParseInt(b[s:e], 10, 64) for a run of ASCII digits: true when it overflows. */
export function int64Overflows(b: Uint8Array, s: number, e: number): boolean {
  while (s < e && b[s] === 0x30) s++;
  const n = e - s;
  if (n < 19) return false;
  if (n > 19) return true;
  const max = "9223372036854775807";
  for (let k = 0; k < 19; k++) {
    const d = b[s + k]! - 0x30 - (max.charCodeAt(k) - 0x30);
    if (d !== 0) return d > 0;
  }
  return false;
}

/**
 * Go's strconv.ParseFloat(s, 64) for the label-value normalisation Prometheus 3 applies to
 * `le` and `quantile`: undefined when Go would return an error.
 */
export function goParseFloat(s: string): number | undefined {
  if (s.includes("_")) {
    if (!underscoreOK(s)) return undefined;
    s = s.replaceAll("_", "");
  }
  const m =
    /^([+-]?)(?:(inf(?:inity)?)|(nan)|0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+))[pP]([+-]?[0-9]+)|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?))$/i.exec(
      s,
    );
  if (!m) return undefined;
  const sign = m[1] === "-" ? -1 : 1;
  if (m[2] !== undefined) return sign * Number.POSITIVE_INFINITY;
  if (m[3] !== undefined) return m[1] === "" ? Number.NaN : undefined;
  let v: number;
  if (m[4] !== undefined) {
    const [ip = "", fp = ""] = m[4].split(".");
    const mant = BigInt(`0x${ip || "0"}${fp}`);
    const e2 = Number(m[5]) - 4 * fp.length;
    v = hexToFloat(mant, e2);
  } else {
    v = Number(m[6]);
  }
  if (!Number.isFinite(v)) return undefined;
  return sign * v;
}

/** Go's strconv.underscoreOK: underscores only between digits (or after a base prefix). */
function underscoreOK(str: string): boolean {
  let s = str;
  let saw = "^";
  let i = 0;
  if (s.length >= 1 && (s[0] === "-" || s[0] === "+")) s = s.slice(1);
  let hex = false;
  if (s.length >= 2 && s[0] === "0" && "bBoOxX".includes(s[1]!)) {
    i = 2;
    saw = "0";
    hex = s[1] === "x" || s[1] === "X";
  }
  for (; i < s.length; i++) {
    const c = s[i]!;
    if ((c >= "0" && c <= "9") || (hex && /[a-fA-F]/.test(c))) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

function hexToFloat(mant: bigint, e2: number): number {
  if (mant === 0n) return 0;
  // Exact enough for the le/quantile values this is used for; scale in steps to stay finite.
  let v = Number(mant);
  let e = e2;
  while (e > 0) {
    const s = Math.min(e, 1000);
    v *= 2 ** s;
    e -= s;
  }
  while (e < 0) {
    const s = Math.min(-e, 1000);
    v /= 2 ** s;
    e += s;
  }
  return v;
}

/** Go's strconv.FormatFloat(f, 'g', -1, 64). */
export function formatGoFloatG(f: number): string {
  if (Number.isNaN(f)) return "NaN";
  if (f === Number.POSITIVE_INFINITY) return "+Inf";
  if (f === Number.NEGATIVE_INFINITY) return "-Inf";
  if (f === 0) return Object.is(f, -0) ? "-0" : "0";
  const [mant = "", expStr = "0"] = f.toExponential().split("e");
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  const exp = Number(expStr);
  let out: string;
  if (exp < -4 || exp >= 6) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : "";
    const ae = Math.abs(exp);
    out = `${digits[0]}${frac}e${exp < 0 ? "-" : "+"}${ae < 10 ? "0" : ""}${ae}`;
  } else if (exp < 0) {
    out = `0.${"0".repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    out = digits + "0".repeat(exp + 1 - digits.length);
  } else {
    out = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return neg ? `-${out}` : out;
}

/** Prometheus' labels.FormatOpenMetricsFloat. */
export function formatOpenMetricsFloat(f: number): string {
  if (f === 0) return "0.0";
  if (f === 1) return "1.0";
  if (f === -1) return "-1.0";
  const s = formatGoFloatG(f);
  if (Number.isNaN(f) || !Number.isFinite(f)) return s;
  return s.includes("e") || s.includes(".") ? s : `${s}.0`;
}
