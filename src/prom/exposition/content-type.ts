import { PromshardError } from "../../errors.ts";
import { dialectFor, type PromDialect } from "../version.ts";

export type ExpositionFormat = "text" | "openmetrics";

export interface ContentTypeOptions {
  /** Which Prometheus picks the parser; default 3.16. */
  dialect?: PromDialect;
  /** 3.x `fallback_scrape_protocol` (PrometheusText0.0.4 → "text", OpenMetricsText1.0.0 → "openmetrics"). */
  fallback?: ExpositionFormat;
}

/**
 * The parser Prometheus picks for a response's Content-Type (textparse.New).
 *
 * 2.42: no header, an unparsable one or any unknown type → text; only
 * `application/openmetrics-text` → OpenMetrics.
 *
 * 3.x: `text/plain` → text, `application/openmetrics-text` → OpenMetrics (version 2.0.0 only
 * behind the openmetrics2 flag); a missing, unparsable or unknown type uses
 * `fallback_scrape_protocol`, and without one the scrape fails: that is thrown here.
 * Protobuf is not a text exposition and is refused in both.
 */
export function formatFromContentType(
  contentType: string | undefined,
  opts: ContentTypeOptions = {},
): ExpositionFormat {
  const v3 = isV3(opts.dialect ?? dialectFor());
  const ct = contentType ?? "";
  const parsed = ct === "" ? undefined : parseMediaType(ct);
  if (!v3) {
    if (parsed === undefined) return "text";
    if (parsed.type === "application/openmetrics-text") return "openmetrics";
    if (parsed.type === "application/vnd.google.protobuf") throw protobuf(ct);
    return "text";
  }
  let problem: string;
  if (ct === "") problem = "no Content-Type";
  else if (parsed === undefined) problem = `unparsable Content-Type ${JSON.stringify(ct)}`;
  else if (parsed.type === "application/openmetrics-text" && parsed.version === "2.0.0")
    problem = `OpenMetrics 2.0 Content-Type ${JSON.stringify(ct)} (needs --enable-feature=openmetrics2)`;
  else if (parsed.type === "application/openmetrics-text") return "openmetrics";
  else if (parsed.type === "text/plain") return "text";
  else if (parsed.type === "application/vnd.google.protobuf") throw protobuf(ct);
  else problem = `unsupported Content-Type ${JSON.stringify(ct)}`;
  if (opts.fallback !== undefined) return opts.fallback;
  throw new PromshardError(
    "exposition_invalid",
    `${problem} and no fallback_scrape_protocol: Prometheus ${opts.dialect?.version ?? "3"} fails this scrape`,
  );
}

export function isV3(d: PromDialect): boolean {
  return Number.parseInt(d.version, 10) >= 3;
}

function protobuf(ct: string): PromshardError {
  return new PromshardError(
    "exposition_invalid",
    `Content-Type ${JSON.stringify(ct)} is the protobuf exposition, which promshard does not count; scrape with a text format`,
  );
}

// Go's mime.ParseMediaType, far enough to know the type and the version parameter.
const TOKEN = /[!#$%&'*+\-.^_`{|}~0-9A-Za-z]/;
const TSPECIAL = '()<>@,;:\\"/[]?=';

function consumeToken(v: string): [string, string] {
  let i = 0;
  while (i < v.length && TOKEN.test(v[i]!)) i++;
  return [v.slice(0, i), v.slice(i)];
}

function consumeValue(v: string): [string, string] {
  if (v === "") return ["", ""];
  if (v[0] !== '"') return consumeToken(v);
  let out = "";
  for (let i = 1; i < v.length; i++) {
    const r = v[i]!;
    if (r === '"') return [out, v.slice(i + 1)];
    if (r === "\\" && i + 1 < v.length && TSPECIAL.includes(v[i + 1]!)) {
      out += v[i + 1];
      i++;
      continue;
    }
    if (r === "\r" || r === "\n") return ["", v];
    out += r;
  }
  return ["", v];
}

export function parseMediaType(v: string): { type: string; version: string | undefined } | undefined {
  const semi = v.indexOf(";");
  const base = semi === -1 ? v : v.slice(0, semi);
  const type = base.toLowerCase().trim();
  const [t1, rest1] = consumeToken(type);
  if (t1 === "") return undefined;
  if (rest1 !== "") {
    if (!rest1.startsWith("/")) return undefined;
    const [sub, rest2] = consumeToken(rest1.slice(1));
    if (sub === "" || rest2 !== "") return undefined;
  }
  const params = new Map<string, string>();
  let rest = v.slice(base.length);
  while (rest.length > 0) {
    rest = rest.trimStart();
    if (rest === "") break;
    let r = rest.trimStart();
    let key = "";
    let value = "";
    let ok = false;
    if (r.startsWith(";")) {
      r = r.slice(1).trimStart();
      [key, r] = consumeToken(r);
      key = key.toLowerCase();
      r = r.trimStart();
      if (key !== "" && r.startsWith("=")) {
        r = r.slice(1).trimStart();
        const [val, r2] = consumeValue(r);
        if (!(val === "" && r2 === r)) {
          value = val;
          r = r2;
          ok = true;
        }
      }
    }
    if (!ok) {
      if (rest.trim() === ";") break;
      return undefined;
    }
    const prev = params.get(key);
    if (prev !== undefined && prev !== value) return undefined;
    params.set(key, value);
    rest = r;
  }
  return { type, version: params.get("version") };
}
